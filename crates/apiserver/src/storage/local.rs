//! [`LocalStorage`]: a store in this process, reached with no network hop.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use skiff_proto::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};
use skiff_store::watch::{WatchSpec, WatchUpdate};
use skiff_store::{Store, StoreError};

use super::{prefix_end, Storage, StorageError, WatchBatch};

/// The registry's storage on an in-process [`Store`].
#[derive(Clone)]
pub struct LocalStorage {
    store: Store,
}

impl LocalStorage {
    /// Storage over `store`.
    pub fn new(store: Store) -> LocalStorage {
        LocalStorage { store }
    }
}

fn convert(err: StoreError) -> StorageError {
    match err {
        StoreError::Compacted { compact_revision } => StorageError::Compacted { compact_revision },
        StoreError::RequestTooLarge => StorageError::TooLarge,
        StoreError::FutureRevision => StorageError::FutureRevision,
        StoreError::Stopped
        | StoreError::NoLeader
        | StoreError::LeaderChanged
        | StoreError::Timeout => StorageError::Unavailable(err.to_string()),
        other => StorageError::Other(other.to_string()),
    }
}

impl Storage for LocalStorage {
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse, StorageError>> {
        // Linearizable unless the request says serializable, as etcd's Range.
        async move { self.store.range(&req).await.map_err(convert) }.boxed()
    }

    fn txn(&self, req: TxnRequest) -> BoxFuture<'_, Result<TxnResponse, StorageError>> {
        async move { self.store.txn(req).await.map_err(convert) }.boxed()
    }

    fn watch(
        &self,
        prefix: Vec<u8>,
        start_revision: i64,
    ) -> BoxFuture<'_, Result<BoxStream<'static, WatchBatch>, StorageError>> {
        let spec = WatchSpec {
            range_end: prefix_end(&prefix),
            key: prefix,
            start_revision,
            prev_kv: true,
            ..Default::default()
        };
        let watcher = self.store.watch_hub().watch(spec);
        let stream = watcher
            .filter_map(|update| async move {
                match update {
                    WatchUpdate::Events { events, .. } => Some(WatchBatch::Events(events)),
                    WatchUpdate::Progress { .. } => None,
                    WatchUpdate::Canceled {
                        compact_revision,
                        reason,
                    } => Some(if compact_revision > 0 {
                        WatchBatch::Compacted { compact_revision }
                    } else {
                        WatchBatch::Failed(reason)
                    }),
                }
            })
            .boxed();
        futures::future::ready(Ok(stream)).boxed()
    }
}
