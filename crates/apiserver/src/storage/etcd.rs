//! [`EtcdStorage`]: etcd's v3 gRPC API at a list of endpoints (`skiff store`
//! members or a real etcd), through the generated tonic clients.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use skiff_proto::etcdserverpb::kv_client::KvClient;
use skiff_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use skiff_proto::etcdserverpb::watch_client::WatchClient;
use skiff_proto::etcdserverpb::{
    watch_request, RangeRequest, RangeResponse, StatusRequest, TxnRequest, TxnResponse,
    WatchProgressRequest, WatchRequest,
};
use tokio::sync::{mpsc, OnceCell};
use tonic::transport::{Channel, Endpoint};

use super::{ProgressRequester, Storage, StorageError, StorageWatch, WatchBatch};

/// The registry's storage on a remote etcd v3 API.
#[derive(Clone)]
pub struct EtcdStorage {
    kv: KvClient<Channel>,
    watch: WatchClient<Channel>,
    maintenance: MaintenanceClient<Channel>,
    /// Whether the etcd answers progress requests in order with the events
    /// (learnt once, from its version).
    ordered_progress: Arc<OnceCell<bool>>,
}

impl EtcdStorage {
    /// Storage over the etcd members at `endpoints` (`http://host:port`), with
    /// requests spread over them. Connections are made lazily, so a member that
    /// is down when this is called is used once it answers.
    pub fn connect(endpoints: &[String]) -> Result<EtcdStorage, StorageError> {
        if endpoints.is_empty() {
            return Err(StorageError::Unavailable("no etcd endpoints given".into()));
        }
        let mut parsed = Vec::new();
        for url in endpoints {
            let endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| StorageError::Unavailable(format!("invalid etcd URL {url:?}: {e}")))?
                .tcp_nodelay(true);
            parsed.push(endpoint);
        }
        let channel = Channel::balance_list(parsed.into_iter());
        // Objects are up to 1.5 MiB and lists can hold many.
        let max = 256 * 1024 * 1024;
        Ok(EtcdStorage {
            kv: KvClient::new(channel.clone()).max_decoding_message_size(max),
            watch: WatchClient::new(channel.clone()).max_decoding_message_size(max),
            maintenance: MaintenanceClient::new(channel),
            ordered_progress: Arc::new(OnceCell::new()),
        })
    }

    /// Whether this etcd's progress responses come after the events they
    /// cover. etcd before 3.4.31 and 3.5.13 sent them on a separate path,
    /// so one could overtake events still queued for the watcher (the bug
    /// behind Kubernetes' etcd version check for consistent reads from cache).
    async fn has_ordered_progress(&self) -> bool {
        let mut maintenance = self.maintenance.clone();
        *self
            .ordered_progress
            .get_or_init(|| async move {
                match maintenance.status(StatusRequest {}).await {
                    Ok(status) => orders_progress(&status.into_inner().version),
                    Err(status) => {
                        tracing::warn!(%status, "cannot learn the etcd version; not asking for watch progress");
                        false
                    }
                }
            })
            .await
    }
}

/// Whether etcd `version` ("3.5.13") orders progress responses after events.
fn orders_progress(version: &str) -> bool {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (3, m) => m >= 6,
        (m, _) => m > 3,
    }
}

impl EtcdStorage {
    /// The revision etcd is compacted to, 0 when it cannot be learnt. etcd's
    /// `Range` error does not say it, but a watch from revision 1 is canceled
    /// with it — the way etcd clients learn it. Asked only after a compacted
    /// answer, so revision 1 is known to be compacted away.
    async fn compact_revision(&self) -> i64 {
        let watch = async {
            let mut batches = self.watch(vec![0], 1).await.ok()?;
            match batches.next().await? {
                WatchBatch::Compacted { compact_revision } => Some(compact_revision),
                _ => None,
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), watch)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

fn convert(status: tonic::Status) -> StorageError {
    let message = status.message().to_string();
    if message.contains("required revision has been compacted") {
        return StorageError::Compacted {
            compact_revision: 0,
        };
    }
    if message.contains("required revision is a future revision") {
        return StorageError::FutureRevision;
    }
    if message.contains("request is too large") {
        return StorageError::TooLarge;
    }
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            StorageError::Unavailable(message)
        }
        _ => StorageError::Other(message),
    }
}

impl Storage for EtcdStorage {
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse, StorageError>> {
        let mut kv = self.kv.clone();
        async move {
            match kv.range(req).await.map_err(convert) {
                Ok(resp) => Ok(resp.into_inner()),
                Err(StorageError::Compacted { .. }) => Err(StorageError::Compacted {
                    compact_revision: self.compact_revision().await,
                }),
                Err(other) => Err(other),
            }
        }
        .boxed()
    }

    fn txn(&self, req: TxnRequest) -> BoxFuture<'_, Result<TxnResponse, StorageError>> {
        let mut kv = self.kv.clone();
        async move { Ok(kv.txn(req).await.map_err(convert)?.into_inner()) }.boxed()
    }

    fn watch(
        &self,
        prefix: Vec<u8>,
        start_revision: i64,
    ) -> BoxFuture<'_, Result<StorageWatch, StorageError>> {
        let mut client = self.watch.clone();
        async move {
            let create = WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(
                    super::prefix_watch(prefix, start_revision),
                )),
            };
            // The request stream stays open for as long as the watch lives;
            // progress requests are sent on it.
            let (requests_tx, requests) = mpsc::unbounded_channel();
            let _ = requests_tx.send(create);
            let requests = tokio_stream::wrappers::UnboundedReceiverStream::new(requests);
            let responses = client.watch(requests).await.map_err(convert)?.into_inner();
            let batches = futures::stream::unfold(Some(responses), |state| async move {
                let mut responses = state?;
                loop {
                    match responses.next().await {
                        Some(Ok(resp)) if resp.canceled => {
                            let batch = if resp.compact_revision > 0 {
                                WatchBatch::Compacted {
                                    compact_revision: resp.compact_revision,
                                }
                            } else {
                                WatchBatch::Failed(format!(
                                    "etcd canceled the watch: {}",
                                    resp.cancel_reason
                                ))
                            };
                            return Some((batch, None));
                        }
                        // The `created` answer's revision says nothing of
                        // what has been sent: a watch from the past has not
                        // caught up yet.
                        Some(Ok(resp)) if resp.created => continue,
                        Some(Ok(resp)) if resp.events.is_empty() => {
                            let revision = resp.header.map_or(0, |h| h.revision);
                            return Some((WatchBatch::Progress(revision), Some(responses)));
                        }
                        Some(Ok(resp)) => {
                            return Some((WatchBatch::Events(resp.events), Some(responses)))
                        }
                        Some(Err(status)) => {
                            return Some((WatchBatch::Failed(status.to_string()), None))
                        }
                        None => {
                            return Some((
                                WatchBatch::Failed("etcd closed the watch stream".into()),
                                None,
                            ))
                        }
                    }
                }
            })
            .boxed();
            if !self.has_ordered_progress().await {
                // The request stream must stay open all the same.
                let batches = batches.map(move |batch| {
                    let _open = &requests_tx;
                    batch
                });
                return Ok(StorageWatch::new(batches.boxed()));
            }
            let progress = ProgressRequester::new(move || {
                let _ = requests_tx.send(WatchRequest {
                    request_union: Some(watch_request::RequestUnion::ProgressRequest(
                        WatchProgressRequest {},
                    )),
                });
            });
            Ok(StorageWatch::with_progress(batches, progress))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::registry::tests::{open_store, pod, r};
    use crate::registry::{Registry, RegistryConfig, WatchOptions, WriteOptions};
    use crate::watch_cache::EventType;

    #[test]
    fn progress_is_asked_only_of_etcds_that_order_it() {
        for (version, ordered) in [
            ("3.4.23", false),
            ("3.4.31", true),
            ("3.5.0", false),
            ("3.5.12", false),
            ("3.5.13", true),
            ("3.6.0", true),
            ("3.6.0-rc.1", true),
            ("4.0.0", true),
            ("", false),
        ] {
            assert_eq!(orders_progress(version), ordered, "etcd {version:?}");
        }
    }

    #[tokio::test]
    async fn the_registry_works_over_etcds_grpc_api() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let advertised = skiff_store::grpc::Advertised {
            client_urls: vec![endpoint.clone()],
            peer_urls: vec![],
        };
        tokio::spawn(skiff_store::server::serve(
            vec![listener],
            store.clone(),
            advertised,
            shutdown.clone(),
        ));

        let storage = Arc::new(EtcdStorage::connect(std::slice::from_ref(&endpoint)).unwrap());
        assert!(
            storage.has_ordered_progress().await,
            "skiff store orders its progress responses, and says so with its version"
        );
        let registry = Registry::new(storage, RegistryConfig::default());
        registry.start_watch_caches().await.unwrap();
        let write = WriteOptions::default();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        registry
            .create(r("ns"), "", &serde_json::to_vec(&ns).unwrap(), &write)
            .await
            .unwrap();
        let mut watch = registry
            .watch(r("pods"), "default", &WatchOptions::default())
            .await
            .unwrap();
        let created = registry
            .create(
                r("pods"),
                "default",
                &serde_json::to_vec(&pod("web")).unwrap(),
                &write,
            )
            .await
            .unwrap()
            .object;
        let event = tokio::time::timeout(std::time::Duration::from_secs(30), watch.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.kind, EventType::Added);
        assert_eq!(event.object, created);
        let err = registry
            .create(
                r("pods"),
                "default",
                &serde_json::to_vec(&pod("web")).unwrap(),
                &write,
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason, skiff_api::status::Reason::AlreadyExists);
        shutdown.cancel();
    }
}
