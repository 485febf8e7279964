//! The raft log as raft-rs reads it, kept in the write-ahead log.
