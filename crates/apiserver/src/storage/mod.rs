//! The registry's view of its store: etcd's range, txn and watch, behind one
//! small trait.
//!
//! The Kubernetes API server talks to etcd through a thin `storage.Interface`;
//! skiff does the same, with two implementations:
//! - [`LocalStorage`]: a [`skiff_store::Store`] in this process, no network hop
//!   (`skiff up`).
//! - [`EtcdStorage`]: etcd's v3 gRPC API at a list of endpoints, which may be
//!   `skiff store` members or a real etcd (`skiff apiserver --etcd-servers`).
//!
//! Requests and responses are etcd's own protobuf messages, so both sides speak
//! the same semantics: revisions, `mod_revision` compares, compaction.
//!
//! A watch can also be asked for *progress*: etcd's `progress_request`,
//! answered with a response that has no events and whose header revision means
//! "every event up to here has been sent". The watch cache uses it to learn
//! that it is current to a store revision although none of its keys changed,
//! which lets it answer consistent lists (see [`StorageWatch`]).
//!
//! # Caveats
//! No TLS to etcd, no leases, no auth. Progress is only asked of an etcd that
//! orders its progress responses after the events they cover (etcd 3.4.31,
//! 3.5.13 and later, and `skiff store`, which answers as 3.5.13); with an
//! older one consistent lists are read from the store.

mod etcd;
mod local;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::Stream;
use skiff_proto::etcdserverpb::{
    RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchCreateRequest,
};
use skiff_proto::mvccpb::Event;

pub use etcd::EtcdStorage;
pub use local::LocalStorage;

/// Why a storage request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The requested revision is below the compaction.
    #[error("required revision has been compacted (compacted to {compact_revision})")]
    Compacted {
        /// The revision the store is compacted to.
        compact_revision: i64,
    },
    /// A read at a revision the store has not reached.
    #[error("required revision is a future revision")]
    FutureRevision,
    /// The request is larger than the store accepts.
    #[error("request is too large for the store")]
    TooLarge,
    /// The store cannot be reached or is stopping.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else the store answered.
    #[error("store error: {0}")]
    Other(String),
}

/// What a storage watch delivers, in revision order.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchBatch {
    /// Changes, each with its `prev_kv` when the key existed before.
    Events(Vec<Event>),
    /// The watch's start is compacted away; nothing follows.
    Compacted {
        /// The revision the store is compacted to.
        compact_revision: i64,
    },
    /// The watch broke for another reason; nothing follows.
    Failed(String),
    /// The answer to a progress request: every event up to this store
    /// revision has been delivered.
    Progress(i64),
}

/// Asks a running storage watch for a [`WatchBatch::Progress`]. Cheap to
/// clone; asking a watch that has ended does nothing.
#[derive(Clone)]
pub struct ProgressRequester(Arc<dyn Fn() + Send + Sync>);

impl ProgressRequester {
    /// A requester that calls `request` for each request.
    pub fn new(request: impl Fn() + Send + Sync + 'static) -> ProgressRequester {
        ProgressRequester(Arc::new(request))
    }

    /// Asks for progress: a [`WatchBatch::Progress`] follows once the watch
    /// has delivered every event up to the store's current revision.
    pub fn request(&self) {
        (self.0)()
    }
}

/// A storage watch: a stream of [`WatchBatch`]es, and a [`ProgressRequester`]
/// when the store promises that a progress answer comes after every event it
/// covers.
pub struct StorageWatch {
    batches: BoxStream<'static, WatchBatch>,
    progress: Option<ProgressRequester>,
}

impl StorageWatch {
    /// A watch whose store cannot be asked for progress.
    pub fn new(batches: BoxStream<'static, WatchBatch>) -> StorageWatch {
        StorageWatch {
            batches,
            progress: None,
        }
    }

    /// A watch that answers progress requests made through `progress`.
    pub fn with_progress(
        batches: BoxStream<'static, WatchBatch>,
        progress: ProgressRequester,
    ) -> StorageWatch {
        StorageWatch {
            batches,
            progress: Some(progress),
        }
    }

    /// The handle that asks this watch for progress, if the store offers it.
    pub fn progress_requester(&self) -> Option<ProgressRequester> {
        self.progress.clone()
    }
}

impl Stream for StorageWatch {
    type Item = WatchBatch;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchBatch>> {
        self.batches.as_mut().poll_next(cx)
    }
}

/// The store operations the registry needs.
pub trait Storage: Send + Sync + 'static {
    /// Reads keys, as etcd's `Range`.
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse, StorageError>>;

    /// Runs a transaction, as etcd's `Txn`.
    fn txn(&self, req: TxnRequest) -> BoxFuture<'_, Result<TxnResponse, StorageError>>;

    /// Watches every key under `prefix` from `start_revision`, with `prev_kv`.
    fn watch(
        &self,
        prefix: Vec<u8>,
        start_revision: i64,
    ) -> BoxFuture<'_, Result<StorageWatch, StorageError>>;
}

pub use skiff_proto::keys::prefix_end;

/// The etcd watch behind [`Storage::watch`]: every key under `prefix`, from
/// `start_revision`, each event with the key's previous value (the watch cache
/// needs it to tell a DELETED object and to filter by old labels).
fn prefix_watch(prefix: Vec<u8>, start_revision: i64) -> WatchCreateRequest {
    WatchCreateRequest {
        range_end: prefix_end(&prefix),
        key: prefix,
        start_revision,
        prev_kv: true,
        ..Default::default()
    }
}
