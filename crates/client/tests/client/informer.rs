//! Informers against a real API server: events, the cache, resuming a cut
//! watch, and re-listing after 410 Expired.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;
use skiff_apiserver::RegistryConfig;
use skiff_client::{
    Api, Change, DeleteParams, Informer, InformerConfig, InformerStats, ListParams, Object, Patch,
    PatchParams, PostParams, ResourceExt, Store,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::api::{config_map, pod};
use crate::common::{eventually, Cluster};

fn quick() -> InformerConfig {
    InformerConfig {
        initial_backoff: std::time::Duration::from_millis(20),
        max_backoff: std::time::Duration::from_millis(200),
        ..Default::default()
    }
}

/// The next change, as `ADDED a` / `UPDATED a` / `DELETED a`.
async fn next<K: Object>(changes: &mut UnboundedReceiver<Change<K>>) -> String {
    let change = tokio::time::timeout(std::time::Duration::from_secs(30), changes.recv())
        .await
        .expect("a change arrives")
        .expect("the informer runs");
    let name = |k: &K| k.name_any();
    match change {
        Change::Added(k) => format!("ADDED {}", name(&k)),
        Change::Updated { new, .. } => format!("UPDATED {}", name(&new)),
        Change::Deleted(k) => format!("DELETED {}", name(&k)),
    }
}

/// An informer running in the test: what it reports, its cache and counters,
/// and the means to stop it.
struct Started<K: Object> {
    changes: UnboundedReceiver<Change<K>>,
    store: Store<K>,
    stats: Arc<InformerStats>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

/// Subscribes to `informer` and runs it.
fn start<K: Object>(mut informer: Informer<K>) -> Started<K> {
    let changes = informer.subscribe();
    let store = informer.store();
    let stats = informer.stats();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(informer.run(shutdown.clone()));
    Started {
        changes,
        store,
        stats,
        shutdown,
        running,
    }
}

impl<K: Object> Started<K> {
    /// Stops the informer and waits until it has.
    async fn stop(self) -> UnboundedReceiver<Change<K>> {
        self.shutdown.cancel();
        self.running.await.unwrap();
        self.changes
    }
}

/// name → resourceVersion, of the cache and of the server.
async fn cache_and_server<K: Object>(
    store: &Store<K>,
    api: &Api<K>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let versions = |items: Vec<&K>| {
        items
            .into_iter()
            .map(|o| {
                let m = o.meta();
                (
                    m.name.clone().unwrap_or_default(),
                    m.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let cached = store.list();
    let server = api.list_all(&ListParams::default()).await.unwrap();
    (
        versions(cached.iter().map(|a| a.as_ref()).collect()),
        versions(server.items.iter().collect()),
    )
}

#[tokio::test]
async fn an_informer_sees_adds_updates_and_deletes_and_its_cache_matches_the_server() {
    let cluster = Cluster::new().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pp = PostParams::default();
    pods.create(&pp, &pod("before", "node-1")).await.unwrap();

    let handled = Arc::new(Mutex::new(Vec::new()));
    let log = |what: &'static str| {
        let handled = handled.clone();
        move |p: &Arc<Pod>| {
            handled
                .lock()
                .unwrap()
                .push(format!("{what} {}", p.metadata.name.clone().unwrap()))
        }
    };
    let updated = handled.clone();
    let mut informer = Informer::new(pods.clone(), quick())
        .with_index("node", |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .into_iter()
                .collect()
        })
        .on_add(log("add"))
        .on_update(move |_old, new| {
            updated
                .lock()
                .unwrap()
                .push(format!("update {}", new.metadata.name.clone().unwrap()))
        })
        .on_delete(log("delete"));
    let store = informer.store();
    assert!(!store.has_synced());
    let mut informer = start(informer);
    store.wait_for_sync().await;
    assert!(store.has_synced());
    assert_eq!(next(&mut informer.changes).await, "ADDED before");

    pods.create(&pp, &pod("a", "node-1")).await.unwrap();
    pods.create(&pp, &pod("b", "node-2")).await.unwrap();
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .unwrap();
    let now = DeleteParams::default().grace_period(0);
    pods.delete("before", &now).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next(&mut informer.changes).await);
    }
    assert_eq!(seen, ["ADDED a", "ADDED b", "UPDATED a", "DELETED before"]);
    assert_eq!(
        *handled.lock().unwrap(),
        ["add before", "add a", "add b", "update a", "delete before"]
    );

    let (cached, server) = cache_and_server(&store, &pods).await;
    assert_eq!(cached, server);
    let on_node_1: Vec<_> = store
        .by_index("node", "node-1")
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(on_node_1, ["a"]);
    let a = store.get("default", "a").expect("a is cached");
    assert_eq!(a.metadata.labels.as_ref().unwrap()["x"], "1");

    informer.stop().await;
}

#[tokio::test]
async fn an_informer_resumes_where_its_cut_watch_stopped() {
    let cluster = Cluster::new().await;
    let writer: Api<ConfigMap> = Api::namespaced(cluster.direct_client().await, "default");
    let pp = PostParams::default();
    writer.create(&pp, &config_map("a", &[])).await.unwrap();

    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let mut informer = start(Informer::new(cms.clone(), quick()));
    assert_eq!(next(&mut informer.changes).await, "ADDED a");
    eventually("the first watch is open", || informer.stats.watches() == 1).await;

    cluster.cut();
    writer.create(&pp, &config_map("b", &[])).await.unwrap();
    writer
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "2"}})),
        )
        .await
        .unwrap();
    cluster.heal();

    assert_eq!(next(&mut informer.changes).await, "ADDED b");
    assert_eq!(next(&mut informer.changes).await, "UPDATED a");
    assert_eq!(
        informer.stats.lists(),
        1,
        "a cut watch resumes without listing again"
    );
    assert!(informer.stats.watches() >= 2);
    let (cached, server) = cache_and_server(&informer.store, &cms).await;
    assert_eq!(cached, server);

    let mut changes = informer.stop().await;
    assert!(
        changes.try_recv().is_err(),
        "nothing was replayed: {:?}",
        changes.try_recv()
    );
}

#[tokio::test]
async fn an_informer_follows_watches_the_server_closes() {
    let cluster = Cluster::new().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let mut informer = start(Informer::new(
        cms.clone(),
        InformerConfig {
            watch_timeout_seconds: Some(1),
            ..quick()
        },
    ));
    eventually("the server closed a watch and it was reopened", || {
        informer.stats.watches() >= 2
    })
    .await;
    cms.create(&PostParams::default(), &config_map("late", &[]))
        .await
        .unwrap();
    assert_eq!(next(&mut informer.changes).await, "ADDED late");
    assert_eq!(informer.stats.lists(), 1);
    informer.stop().await;
}

#[tokio::test]
async fn an_informer_lists_again_after_410_expired_and_reports_what_it_missed() {
    let cluster = Cluster::with_config(RegistryConfig {
        watch_cache_size: 3,
        watch_cache_fresh: std::time::Duration::ZERO,
        ..Default::default()
    })
    .await;
    let writer: Api<ConfigMap> = Api::namespaced(cluster.direct_client().await, "default");
    let pp = PostParams::default();
    writer.create(&pp, &config_map("gone", &[])).await.unwrap();
    writer.create(&pp, &config_map("kept", &[])).await.unwrap();

    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let mut informer = start(Informer::new(cms.clone(), quick()));
    let mut first = vec![
        next(&mut informer.changes).await,
        next(&mut informer.changes).await,
    ];
    first.sort();
    assert_eq!(first, ["ADDED gone", "ADDED kept"]);
    eventually("the first watch is open", || informer.stats.watches() == 1).await;

    // While the informer is cut off, more changes happen than the server's
    // watch window keeps: its resourceVersion expires.
    cluster.cut();
    writer
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    for i in 0..6 {
        writer
            .create(&pp, &config_map(&format!("new-{i}"), &[]))
            .await
            .unwrap();
    }
    writer
        .patch(
            "kept",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "2"}})),
        )
        .await
        .unwrap();
    cluster.heal();

    eventually("the informer listed again", || informer.stats.lists() >= 2).await;
    let mut missed = Vec::new();
    for _ in 0..8 {
        missed.push(next(&mut informer.changes).await);
    }
    missed.sort();
    let mut expected: Vec<String> = (0..6).map(|i| format!("ADDED new-{i}")).collect();
    expected.push("DELETED gone".into());
    expected.push("UPDATED kept".into());
    expected.sort();
    assert_eq!(missed, expected);
    let (cached, server) = cache_and_server(&informer.store, &cms).await;
    assert_eq!(cached, server);

    // And it watches again from the new list.
    writer.create(&pp, &config_map("after", &[])).await.unwrap();
    assert_eq!(next(&mut informer.changes).await, "ADDED after");
    informer.stop().await;
}
