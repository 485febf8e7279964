//! Snapshot files: the state machine at one applied index, fsync'd to disk so
//! the raft log before that index can be dropped.
