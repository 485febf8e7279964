//! Raft replication with tikv's raft-rs: the log storage raft-rs reads from and
//! a deterministic simulation of whole clusters for testing.
//!
//! # Layout
//! - `storage`: [`storage::RaftLog`], raft's entries, HardState and ConfState kept
//!   in the write-ahead log, with a reader that implements `raft::Storage`.
//! - `sim` (tests only): N `RawNode`s over a simulated network driven by one
//!   seeded RNG — drop, delay, reorder, partition, heal, crash, restart — with
//!   invariants checked after every step ("two leaders in term …").
//!
//! Not wired into the store yet: one member applies straight from its log
//! (`node`); the replicated store will drive the same `Mvcc::apply` from raft's
//! committed entries. See <https://docs.rs/raft/0.7.0/raft/> for the Ready loop.
//!
//! # Caveats
//! Storage and simulation only: no peer transport, membership or state-machine
//! snapshots yet, so snapshots carry no data.

pub(crate) mod snapshot;
pub(crate) mod storage;
pub(crate) mod transport;

#[cfg(test)]
mod sim;
