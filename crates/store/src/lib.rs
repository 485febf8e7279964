//! skiff-store: an etcd-compatible MVCC key-value store.
//!
//! Every object of the cluster lives here, as Kubernetes keeps its objects in
//! etcd. The store speaks etcd's v3 gRPC API, so etcdctl and etcd client
//! libraries work against it unchanged.
//!
//! # Layout
//! - [`wal`]: the write-ahead log: segmented files of checksummed records, fsync'd
//!   in batches. A write is acknowledged only once it is here.
//! - `mvcc`: the state machine. `apply(index, entry)` turns one log entry into a new
//!   revision of the key space in sled; reads see any revision not yet compacted.
//! - `watch`: the watch hub that fans applied events out to watchers, catching slow
//!   or late watchers up from history.
//! - `grpc`: etcd's `KV`, `Watch`, `Lease`, `Maintenance` and `Cluster` services.
//!
//! # Where to start
//! A write travels: gRPC `Put` → a `LogEntry` appended to the [`wal`] and fsync'd →
//! `mvcc` applies it at the next revision → watchers get the event → the client
//! gets its response.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod grpc;
mod lessor;
mod mvcc;
mod node;
mod revision;
pub mod server;
mod store;
pub mod wal;
pub mod watch;

pub use error::StoreError;
pub use revision::Revision;
pub use store::{MemberIdentity, Store, StoreConfig};
