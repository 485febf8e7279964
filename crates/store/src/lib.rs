//! skiff-store: an etcd-compatible MVCC key-value store.
//!
//! Every object of the cluster lives here, as Kubernetes keeps its objects in
//! etcd. The store speaks etcd's v3 gRPC API, so etcdctl and etcd client
//! libraries work against it unchanged.
//!
//! # Layout
//! - [`Store`] (`store/`): the in-process handle — range, put, delete, txn,
//!   compact, leases, members, watch — with etcd's semantics and no network
//!   hop; `impl Store` is split by service (`kv`, `lease`, `cluster`).
//! - `config`: [`StoreConfig`] (etcd's flags and defaults) and the member and
//!   cluster IDs derived from it.
//! - `shared`: what the handle and the raft thread share — the state machine
//!   behind its lock, the watch hub, the stop signal, [`RaftStatus`].
//! - `node/`: the raft node, one job per file: `bootstrap` (opening the data
//!   directory), `ready` (the Ready loop: send, apply snapshot, apply
//!   committed, persist, advance; group commit to the `wal`), `read_index`
//!   (linearizable reads), `membership` (configuration changes) and `snapshot`
//!   (when and how snapshots are written).
//! - `raft/`: the raft log on the WAL, snapshot files, the peer transport.
//! - `wal/`: the write-ahead log: segmented files of checksummed records. A
//!   write is acknowledged only once it is here.
//! - `mvcc/`: the state machine. `apply(index, entry)` turns one log entry into
//!   a new revision of the key space (kept in sled by `mvcc::backend`); reads
//!   see any revision not compacted.
//! - `lease/`: leases as etcd's lessor keeps them — deadlines, keep-alives, and
//!   the leader's expiry check, which revokes expired leases through the log.
//! - [`watch`]: the watch hub that fans applied events out to watchers, catching
//!   slow or late watchers up from history.
//! - [`grpc`]: etcd's `KV`, `Watch`, `Lease`, `Maintenance` and `Cluster`
//!   services, each a translation onto [`Store`].
//! - [`server`]: `skiff store` — the services on TCP, `run(config, shutdown)`;
//!   `url` parses its `http://host:port` flags.
//!
//! Imports point one way: `server` → `grpc` → `store` → `node` → `lease`,
//! `shared`, `config` → `mvcc`; no two modules import each other.
//!
//! # Where to start
//! A write travels: gRPC `Put` (`grpc::kv`) → [`Store::put`] (`store::kv`) → a
//! `LogEntry` proposed to the raft thread (`node`) → appended to the `wal` and
//! fsync'd on a majority (`node::ready`) → `mvcc` applies it at the next
//! revision on every member → the [`watch`] hub gets its events → the client
//! gets its response. A read goes `grpc::kv` → [`Store::range`] (ReadIndex,
//! `node::read_index`, unless serializable) → `mvcc::range`. Start-up is
//! [`Store::open`] → `node::bootstrap`.
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
pub(crate) mod wal;
pub mod watch;

pub use config::{member_id, ClusterState, MemberIdentity, StoreConfig};
pub use error::StoreError;
pub use revision::Revision;
pub use shared::RaftStatus;
pub use skiff_proto::store::Member;
pub use store::Store;
