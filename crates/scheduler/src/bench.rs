//! `skiff bench scheduler --nodes N --pods M`: pods scheduled and bound per
//! second through a real API server.
//!
//! The workload: N nodes (8 cpu, 32Gi, 110 pods; three zones), then M pending
//! pods, each asking for 100m cpu and 128Mi, spread over zones
//! (`maxSkew: 1`, `DoNotSchedule`), and every twentieth pod in one anti-affinity
//! group (one per host). Only then does the scheduler start, so the figure
//! is the scheduler's: from its start (informers listing included) until the
//! last pod has `spec.nodeName` — every binding a real write through the API.
//! The scheduler records how long each scheduling attempt and each binding
//! took ([`Metrics`]), for their p50 and p99.
//!
//! Memory per node in the cache is measured apart, first, while the process
//! is still small: the growth of the resident set (`/proc/self/statm`) while
//! a [`Cache`] of the same N nodes is built, divided by N. It counts the
//! Node objects the cache holds with their `NodeInfo`s, and whole pages only,
//! so it is a rough figure at a few hundred nodes and a good one at thousands.
//!
//! The caller brings an already-connected client (an in-process API server
//! for the benchmark proper).
//!
//! # Caveats
//! Every twentieth pod carries required anti-affinity by hostname, so at
//! most N of them fit: give at least `M / 20` nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;
use skiff_client::{Api, Client, Informer, InformerConfig, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use futures::{StreamExt, TryStreamExt};

use crate::cache::Cache;
use crate::scheduler::{run, Config, Metrics, Percentiles};
use crate::Error;

/// Objects created at once while setting up (not measured).
const SETUP_CONCURRENCY: usize = 32;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Simulated nodes.
    pub nodes: usize,
    /// Pods to schedule.
    pub pods: usize,
    /// Namespace of the pods.
    pub namespace: String,
    /// Record a `Scheduled` Event per pod, as kube-scheduler does.
    pub record_scheduled_events: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            nodes: 1_000,
            pods: 10_000,
            namespace: "default".into(),
            record_scheduled_events: true,
        }
    }
}

/// What was measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Nodes created.
    pub nodes: usize,
    /// Pods bound.
    pub pods: usize,
    /// From the scheduler's start until the last pod was bound.
    pub elapsed: Duration,
    /// `pods / elapsed`.
    pub pods_per_second: f64,
    /// Resident bytes per node of a cache holding the nodes (`None` where
    /// /proc is not readable).
    pub cache_bytes_per_node: Option<u64>,
    /// Scheduling attempts (one cycle each, binding excluded).
    pub attempts: Percentiles,
    /// Bindings (the `pods/binding` write through the API).
    pub bindings: Percentiles,
}

fn bench_node(i: usize) -> Node {
    let name = format!("bench-node-{i:05}");
    let zone = ["zone-a", "zone-b", "zone-c"][i % 3];
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}},
        "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                   "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}},
    }))
    .expect("the bench node is a valid Node")
}

fn bench_pod(i: usize, namespace: &str) -> Pod {
    let solo = i.is_multiple_of(20);
    let mut spec = json!({
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "bench"}}}],
    });
    if solo {
        spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"group": "solo"}}, "topologyKey": "kubernetes.io/hostname"}]}});
    }
    let group = if solo { "solo" } else { "plain" };
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("bench-pod-{i:06}"), "namespace": namespace,
                     "labels": {"app": "bench", "group": group}},
        "spec": spec,
    }))
    .expect("the bench pod is a valid Pod")
}

/// Creates the nodes, the pods, runs the scheduler until every pod is bound.
pub async fn bench(client: Client, options: BenchOptions) -> Result<BenchReport, Error> {
    let cache_bytes_per_node = cache_bytes_per_node(options.nodes);
    create_nodes(&client, options.nodes).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &options.namespace);
    futures::stream::iter(0..options.pods)
        .map(|i| {
            let (pods, pod) = (&pods, bench_pod(i, &options.namespace));
            async move { pods.create(&PostParams::default(), &pod).await }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await?;

    // Watch for bindings, then start the scheduler and the clock.
    let shutdown = CancellationToken::new();
    let mut watcher = Informer::new(
        Api::<Pod>::namespaced(client.clone(), &options.namespace),
        InformerConfig::default(),
    );
    let store = watcher.store();
    tokio::spawn(watcher.run(shutdown.clone()));
    store.wait_for_sync().await;
    let metrics = Arc::new(Metrics::default());
    let config = Config {
        record_scheduled_events: options.record_scheduled_events,
        metrics: Some(metrics.clone()),
        ..Config::default()
    };
    let start = Instant::now();
    let scheduler = tokio::spawn(run(config, client, shutdown.clone()));
    let bound = |pod: &Arc<Pod>| {
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some()
    };
    while store.list().iter().filter(|p| bound(p)).count() < options.pods {
        if scheduler.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    let bound_pods = store.list().iter().filter(|p| bound(p)).count();
    // A binding task notes its latency after the write returns, which may be
    // after the watch delivered the bound pod: give the last ones a moment.
    for _ in 0..100 {
        if metrics.bindings().count >= bound_pods {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    match scheduler.await {
        Ok(result) => result?,
        Err(join) => tracing::error!(%join, "the scheduler task failed"),
    }
    Ok(BenchReport {
        nodes: options.nodes,
        pods: bound_pods,
        elapsed,
        pods_per_second: bound_pods as f64 / elapsed.as_secs_f64(),
        cache_bytes_per_node,
        attempts: metrics.scheduling_attempts(),
        bindings: metrics.bindings(),
    })
}

/// Creates the bench nodes, each with its allocatable (patched in when the
/// API server drops the status of a create).
async fn create_nodes(client: &Client, count: usize) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..count)
        .map(|i| {
            let nodes = &nodes;
            async move {
                let created = nodes.create(&PostParams::default(), &bench_node(i)).await?;
                let allocatable = created.status.as_ref().and_then(|s| s.allocatable.as_ref());
                if allocatable.is_none() {
                    let status = json!({"status": bench_node(i).status});
                    let name = created.metadata.name.unwrap_or_default();
                    nodes
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                        .await?;
                }
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_for_each(|()| async { Ok(()) })
        .await
}

/// The resident set's growth per node when a cache of `count` nodes is built.
fn cache_bytes_per_node(count: usize) -> Option<u64> {
    let before = resident_bytes()?;
    let mut cache = Cache::default();
    for i in 0..count {
        cache.add_node(Arc::new(bench_node(i)));
    }
    let after = resident_bytes()?;
    let per_node = after.saturating_sub(before) / count.max(1) as u64;
    drop(cache);
    Some(per_node)
}

/// The process's resident set in bytes, from /proc/self/statm (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
