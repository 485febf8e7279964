//! [`LocalStorage`]: a store in this process, reached with no network hop.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use skiff_proto::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};
use skiff_store::watch::{WatchSpec, WatchUpdate, Watcher};
use skiff_store::{Store, StoreError};
use tokio::sync::mpsc;

use super::{ProgressRequester, Storage, StorageError, StorageWatch, WatchBatch};

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
    ) -> BoxFuture<'_, Result<StorageWatch, StorageError>> {
        let spec = WatchSpec::from(&super::prefix_watch(prefix, start_revision));
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let updates = LocalWatch {
            watcher: self.store.watch_hub().watch(spec),
            requests,
        };
        let batches = updates
            .filter_map(|update| async move {
                match update {
                    WatchUpdate::Events { events, .. } => Some(WatchBatch::Events(events)),
                    WatchUpdate::Progress { revision } => Some(WatchBatch::Progress(revision)),
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
        // The store's hub answers a progress request only after every event
        // up to its current revision, through the same channel as the events.
        let progress = ProgressRequester::new(move || {
            let _ = requests_tx.send(());
        });
        futures::future::ready(Ok(StorageWatch::with_progress(batches, progress))).boxed()
    }
}

/// A store watcher and the progress requests made for it. The requests reach
/// the watcher whenever its stream is polled, so whoever reads the stream
/// needs no other task.
struct LocalWatch {
    watcher: Watcher,
    requests: mpsc::UnboundedReceiver<()>,
}

impl Stream for LocalWatch {
    type Item = WatchUpdate;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchUpdate>> {
        let mut asked = false;
        while let Poll::Ready(Some(())) = self.requests.poll_recv(cx) {
            asked = true;
        }
        if asked {
            self.watcher.request_progress();
        }
        Pin::new(&mut self.watcher).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use skiff_proto::etcdserverpb::{request_op, PutRequest, RequestOp, TxnRequest};

    use super::*;
    use crate::registry::tests::open_store;

    async fn put(storage: &LocalStorage, key: &str) -> i64 {
        let resp = storage
            .txn(TxnRequest {
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: key.as_bytes().to_vec(),
                        value: b"{}".to_vec(),
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        resp.header.unwrap().revision
    }

    #[tokio::test]
    async fn progress_reports_revisions_of_keys_outside_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(open_store(dir.path()).await);
        let first = put(&storage, "/a/1").await;
        let mut watch = storage.watch(b"/a/".to_vec(), first + 1).await.unwrap();
        let elsewhere = put(&storage, "/b/1").await;
        let requester = watch
            .progress_requester()
            .expect("the local store answers progress");
        requester.request();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                match watch.next().await {
                    Some(WatchBatch::Progress(revision)) if revision >= elsewhere => {
                        return revision
                    }
                    Some(WatchBatch::Progress(_)) => requester.request(),
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
        .await
        .expect("progress is answered");
        assert!(answer >= elsewhere);
        // Events still come after progress, and in order.
        let next = put(&storage, "/a/2").await;
        match watch.next().await {
            Some(WatchBatch::Events(events)) => {
                assert_eq!(events[0].kv.as_ref().unwrap().mod_revision, next)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
