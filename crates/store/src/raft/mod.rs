//! Raft replication with tikv's raft-rs: the log storage raft-rs reads from and
//! a deterministic simulation of whole clusters for testing.
//!
//! Not wired into the store yet: one member applies straight from its log
//! (`node`); the replicated store drives the same `Mvcc::apply` from raft's
//! committed entries.
//!
//! # Caveats
//! Work in progress: storage and simulation only.

pub(crate) mod storage;

#[cfg(test)]
mod sim;
