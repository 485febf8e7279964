//! Raft replication with tikv's raft-rs: the log raft-rs reads from, snapshot
//! files, the transport between members, and a deterministic simulation of
//! whole clusters for testing. The Ready loop that drives raft-rs lives in
//! `crate::node`.
//!
//! # Layout
//! - `storage`: [`storage::RaftLog`], raft's entries, HardState and ConfState kept
//!   in the write-ahead log, with a reader that implements `raft::Storage` and
//!   takes snapshots from a [`storage::SnapshotSource`].
//! - `snapshot`: snapshot files — the state machine at one applied index, written
//!   atomically and fsync'd, so the log before it can be dropped.
//! - `transport`: raft messages and snapshots between members over gRPC
//!   (`skiff.raft.v1`), with per-peer batching, backoff and chunked snapshots.
//! - `sim` (tests only): N `RawNode`s over a simulated network driven by one
//!   seeded RNG — drop, delay, reorder, partition, heal, crash, restart — with
//!   invariants checked after every step ("two leaders in term …").
//!
//! # Where to start
//! `crate::node::ready` for the Ready loop; <https://docs.rs/raft/0.7.0/raft/> for raft-rs.
//!
//! # Caveats
//! Peers are authenticated by cluster ID only; there is no TLS.

pub(crate) mod snapshot;
pub(crate) mod storage;
pub(crate) mod transport;

#[cfg(test)]
mod sim;
