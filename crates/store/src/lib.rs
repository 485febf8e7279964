//! skiff-store: an etcd-compatible MVCC key-value store.
//!
//! Every object of the cluster lives here, as Kubernetes keeps its objects in
//! etcd. The store speaks etcd's v3 gRPC API, so etcdctl and etcd client
//! libraries work against it unchanged.
//!
//! # Layout
//! - [`Store`] (`store`): the in-process handle — range, put, delete, txn, compact,
//!   leases, watch — with etcd's semantics and no network hop.
//! - `node`: the raft node. Proposals go through raft-rs; entries are appended to
//!   the [`wal`] and fsync'd in batches (group commit), replicated to the other
//!   members, applied once committed, announced, and answered.
//! - `raft`: the raft log on the WAL, snapshot files, the peer transport.
//! - [`wal`]: the write-ahead log: segmented files of checksummed records. A write
//!   is acknowledged only once it is here.
//! - `mvcc`: the state machine. `apply(index, entry)` turns one log entry into a new
//!   revision of the key space (kept in sled); reads see any revision not compacted.
//! - `lessor`: lease deadlines; expired leases are revoked through the log.
//! - [`watch`]: the watch hub that fans applied events out to watchers, catching slow
//!   or late watchers up from history.
//! - [`grpc`]: etcd's `KV`, `Watch`, `Lease`, `Maintenance` and `Cluster` services.
//! - [`server`]: `skiff store` — the services on TCP, `run(config, shutdown)`.
//!
//! # Where to start
//! A write travels: gRPC `Put` (`grpc::kv`) → [`Store::put`] → a `LogEntry` proposed
//! to raft (`node`) → appended to the [`wal`] and fsync'd on a majority → `mvcc`
//! applies it at the next revision on every member → the [`watch`] hub gets its
//! events → the client gets its response. A read goes `grpc::kv` → [`Store::range`]
//! (ReadIndex unless serializable) → `mvcc::range`.
//!
//! # Caveats
//! Auth, etcd's `Snapshot` download RPC, `MoveLeader` and alarms are not served.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;
pub mod grpc;
mod lease;
mod mvcc;
mod node;
pub(crate) mod raft;
mod revision;
pub mod server;
mod shared;
mod store;
mod url;
pub mod wal;
pub mod watch;

pub use config::{member_id, ClusterState, MemberIdentity, StoreConfig};
pub use error::StoreError;
pub use revision::Revision;
pub use shared::RaftStatus;
pub use skiff_proto::store::Member;
pub use store::Store;
