//! etcd's v3 gRPC services over a [`Store`]: thin adapters that turn requests
//! into `Store` calls and [`StoreError`]s into etcd's status codes and messages.
//!
//! # Layout
//! - `kv`: `etcdserverpb.KV` (Range, Put, DeleteRange, Txn, Compact).
//! - `lease`: `etcdserverpb.Lease`, including the keep-alive stream.
//! - `maintenance`: `etcdserverpb.Maintenance` (Status, Hash, HashKV, Defragment, Alarm).
//! - `cluster`: `etcdserverpb.Cluster` (MemberList).
//! - `watch`: `etcdserverpb.Watch`, many watchers per stream.
//!
//! # Caveats
//! Auth is not served. Membership changes and MoveLeader need the replicated
//! store and answer `Unimplemented` on a single member; `Snapshot` (a bbolt file
//! in etcd) is not offered.

mod cluster;
mod kv;
mod lease;
mod maintenance;
pub mod watch;

use std::sync::Arc;

use skiff_proto::etcdserverpb::cluster_server::ClusterServer;
use skiff_proto::etcdserverpb::kv_server::KvServer;
use skiff_proto::etcdserverpb::lease_server::LeaseServer;
use skiff_proto::etcdserverpb::maintenance_server::MaintenanceServer;
use skiff_proto::etcdserverpb::watch_server::WatchServer;
use tonic::{Code, Status};

use crate::error::StoreError;
use crate::store::Store;

/// How this member is reached, for MemberList and Status.
#[derive(Clone, Debug, Default)]
pub struct Advertised {
    /// The URLs clients use (etcd's `--advertise-client-urls`).
    pub client_urls: Vec<String>,
    /// The URLs peers use (etcd's `--initial-advertise-peer-urls`).
    pub peer_urls: Vec<String>,
}

/// Every etcd service this crate serves, ready to add to a tonic server.
pub fn routes(store: Store, advertised: Advertised) -> tonic::service::Routes {
    let max = store.config().max_request_bytes + GRPC_OVERHEAD_BYTES;
    let header_store = store.clone();
    let header = Arc::new(move |rev| header_store.header(rev));
    let watch = watch::WatchService::new(store.watch_hub().clone(), header);
    tonic::service::Routes::new(
        KvServer::new(kv::KvService::new(store.clone())).max_decoding_message_size(max),
    )
    .add_service(WatchServer::new(watch).max_decoding_message_size(max))
    .add_service(LeaseServer::new(lease::LeaseService::new(store.clone())))
    .add_service(MaintenanceServer::new(
        maintenance::MaintenanceService::new(store.clone()),
    ))
    .add_service(ClusterServer::new(cluster::ClusterService::new(
        store, advertised,
    )))
}

/// Room for gRPC framing above the largest request, as etcd allows.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// The one place store errors become gRPC statuses; codes and texts are etcd's
/// (`etcdserver/api/v3rpc/rpctypes`), which clients match on.
pub(crate) fn status(err: StoreError) -> Status {
    let code = match &err {
        StoreError::EmptyKey
        | StoreError::KeyNotFound
        | StoreError::ValueProvided
        | StoreError::LeaseProvided
        | StoreError::TooManyOps
        | StoreError::DuplicateKey
        | StoreError::RequestTooLarge
        | StoreError::InvalidRequest(_) => Code::InvalidArgument,
        StoreError::Compacted { .. }
        | StoreError::FutureRevision
        | StoreError::LeaseTtlTooLarge => Code::OutOfRange,
        StoreError::LeaseNotFound | StoreError::MemberNotFound => Code::NotFound,
        StoreError::NoLeader
        | StoreError::LeaderChanged
        | StoreError::Timeout
        | StoreError::NotSupportedForLearner => Code::Unavailable,
        StoreError::MemberExists | StoreError::PeerUrlExists => Code::FailedPrecondition,
        StoreError::MemberNotLearner
        | StoreError::NotLeader
        | StoreError::LearnerNotReady
        | StoreError::ConfChangeInProgress => Code::FailedPrecondition,
        StoreError::LeaseExists => Code::FailedPrecondition,
        StoreError::LogWrite(_) | StoreError::Stopped => Code::Unavailable,
        StoreError::Storage(_) => Code::Internal,
    };
    let message = match &err {
        // etcd prefixes the MVCC layer's texts at its gRPC edge.
        StoreError::Compacted { .. } | StoreError::FutureRevision => format!("etcdserver: {err}"),
        _ => err.to_string(),
    };
    Status::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_etcds_codes_and_texts() {
        let s = status(StoreError::Compacted {
            compact_revision: 3,
        });
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(
            s.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let s = status(StoreError::LeaseNotFound);
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "etcdserver: requested lease not found")
        );
        let s = status(StoreError::EmptyKey);
        assert_eq!(
            (s.code(), s.message()),
            (Code::InvalidArgument, "etcdserver: key is not provided")
        );
    }
}
