//! Consistent lists served from the watch cache, the fall back to the store,
//! and the one encoding every watcher and list shares.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use skiff_proto::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};

use super::fixture::{config_map, pod, r, rv, scenarios, Backend, Fixture};
use crate::registry::*;
use crate::storage::{ProgressRequester, StorageWatch};
use crate::watch_cache::{EventType, WatchEvent, WatchStream};

scenarios!(
    a_consistent_list_sees_every_write_before_it_and_a_watch_resumes_from_it,
    watchers_of_one_change_share_one_encoding,
);

/// How a [`Counting`] storage answers progress requests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// As the store does.
    Answered,
    /// The store's watch offers no progress requests.
    Unsupported,
    /// Requests are taken and never answered (a store that lags).
    Ignored,
}

/// A storage that counts the reads of a whole resource prefix (what a list
/// from the store does), opens its watches late, and may withhold watch
/// progress.
struct Counting {
    inner: Arc<dyn Storage>,
    progress: Progress,
    prefix_reads: AtomicUsize,
}

impl Storage for Counting {
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse, StorageError>> {
        if !req.range_end.is_empty() {
            self.prefix_reads.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.range(req)
    }

    fn txn(&self, req: TxnRequest) -> BoxFuture<'_, Result<TxnResponse, StorageError>> {
        self.inner.txn(req)
    }

    fn watch(
        &self,
        prefix: Vec<u8>,
        start_revision: i64,
    ) -> BoxFuture<'_, Result<StorageWatch, StorageError>> {
        let progress = self.progress;
        let watch = self.inner.watch(prefix, start_revision);
        async move {
            // Watches open late, as over a slow network: nothing may rely on
            // a watch being open before its opening was awaited.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let watch = watch.await?;
            Ok(match progress {
                Progress::Answered => watch,
                Progress::Unsupported => StorageWatch::new(watch.boxed()),
                Progress::Ignored => {
                    StorageWatch::with_progress(watch.boxed(), ProgressRequester::new(|| {}))
                }
            })
        }
        .boxed()
    }
}

impl Counting {
    fn reads(&self) -> usize {
        self.prefix_reads.load(Ordering::SeqCst)
    }
}

/// A registry over the fixture's store through a [`Counting`] storage, its
/// watch caches started.
async fn counting_registry(
    f: &Fixture,
    progress: Progress,
    wait: Duration,
) -> (Arc<Registry>, Arc<Counting>) {
    let storage = Arc::new(Counting {
        inner: f.store.storage(),
        progress,
        prefix_reads: AtomicUsize::new(0),
    });
    let config = RegistryConfig {
        consistent_list_wait: wait,
        ..Default::default()
    };
    let registry = Arc::new(Registry::new(storage.clone(), config));
    registry.start_watch_caches().await.unwrap();
    (registry, storage)
}

async fn next(stream: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("an event arrives")
        .expect("the watch is open")
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect()
}

fn list_rv(list: &Value) -> i64 {
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn a_consistent_list_sees_every_write_before_it_and_a_watch_resumes_from_it(
    backend: Backend,
) {
    let f = Fixture::on(backend).await;
    f.create("pods", "default", pod("a")).await;
    let b = f.create("pods", "default", pod("b")).await;
    // A write to another resource moves the store's revision past every pod.
    let cm = f.create("cm", "default", config_map("other", 1)).await;
    assert!(rv(&cm) > rv(&b));

    let list = f
        .registry
        .list(r("pods"), "default", &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&list), ["a", "b"]);
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"][1], b);
    assert!(
        list_rv(&list) >= rv(&cm),
        "the list's resourceVersion {} is older than the last write {}",
        list_rv(&list),
        rv(&cm)
    );
    // The encoded form is the same list.
    let json = f
        .registry
        .list_json(r("pods"), "default", &ListOptions::default())
        .await
        .unwrap();
    let decoded: Value = serde_json::from_slice(&json).expect("the list is JSON");
    assert_eq!(decoded["items"], list["items"]);
    assert_eq!(decoded["apiVersion"], "v1");

    // A watch from the list's resourceVersion (a revision at which no pod
    // changed) sees exactly what follows.
    let options = WatchOptions {
        resource_version: list_rv(&list).to_string(),
        ..Default::default()
    };
    let mut watch = f
        .registry
        .watch(r("pods"), "default", &options)
        .await
        .unwrap();
    let c = f.create("pods", "default", pod("c")).await;
    let event = next(&mut watch).await;
    assert_eq!(event.kind, EventType::Added);
    assert_eq!(event.object, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_list_is_answered_by_the_cache_without_reading_the_store() {
    let f = Fixture::new().await;
    let (registry, storage) =
        counting_registry(&f, Progress::Answered, Duration::from_secs(30)).await;
    f.create("pods", "default", pod("a")).await;
    let cm = f.create("cm", "default", config_map("other", 1)).await;
    let before = storage.reads();
    let list = registry
        .list(r("pods"), "default", &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&list), ["a"]);
    assert!(list_rv(&list) >= rv(&cm));
    assert_eq!(storage.reads(), before, "the list read the store's pods");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_progress_from_the_store_a_consistent_list_reads_the_store() {
    let f = Fixture::new().await;
    for (progress, name) in [
        (Progress::Unsupported, "unsupported"),
        (Progress::Ignored, "ignored"),
    ] {
        let (registry, storage) = counting_registry(&f, progress, Duration::from_millis(100)).await;
        let created = f.create("pods", "default", pod(name)).await;
        // Moves the store on without the pods' cache seeing anything.
        let cm = f
            .create("cm", "default", config_map(&format!("c-{name}"), 1))
            .await;
        let before = storage.reads();
        let list = registry
            .list(r("pods"), "default", &ListOptions::default())
            .await
            .unwrap();
        assert!(names(&list).contains(&name), "{list}");
        assert!(list["items"].as_array().unwrap().contains(&created));
        assert!(list_rv(&list) >= rv(&cm));
        assert_eq!(
            storage.reads(),
            before + 1,
            "the list was not read from the store"
        );
        // A watch from that resourceVersion works as well.
        let options = WatchOptions {
            resource_version: list_rv(&list).to_string(),
            ..Default::default()
        };
        let mut watch = registry
            .watch(r("pods"), "default", &options)
            .await
            .unwrap();
        let next_pod = f
            .create("pods", "default", pod(&format!("{name}-next")))
            .await;
        let event = next(&mut watch).await;
        assert_eq!(event.kind, EventType::Added);
        assert_eq!(event.object, next_pod);
    }
}

async fn watchers_of_one_change_share_one_encoding(backend: Backend) {
    let f = Fixture::on(backend).await;
    let mut first = f
        .registry
        .watch(r("pods"), "default", &WatchOptions::default())
        .await
        .unwrap();
    let selected = WatchOptions {
        label_selector: "app=web".into(),
        ..Default::default()
    };
    let mut second = f
        .registry
        .watch(r("pods"), "default", &selected)
        .await
        .unwrap();
    let created = f.create("pods", "default", pod("shared")).await;
    let (one, two) = (next(&mut first).await, next(&mut second).await);
    assert_eq!(one.object, created);
    assert_eq!(two.object, created);
    assert_eq!(
        one.object.json().as_ptr(),
        two.object.json().as_ptr(),
        "each watcher got its own encoding"
    );
    let sent: Value = serde_json::from_slice(one.object.json()).unwrap();
    assert_eq!(sent, created, "the shared encoding is the object");
    // A watch started later gets the same encoding in its initial ADDED.
    let mut late = f
        .registry
        .watch(r("pods"), "default", &WatchOptions::default())
        .await
        .unwrap();
    let initial = next(&mut late).await;
    assert_eq!(initial.object.json().as_ptr(), one.object.json().as_ptr());
}
