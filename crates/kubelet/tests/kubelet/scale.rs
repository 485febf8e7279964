//! What a hollow node costs: many hollow kubelets in one process, against
//! one in-process API server. A measurement, not a check: run it with
//! `cargo test -p skiff-kubelet --test kubelet -- --ignored --nocapture`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_client::{Api, ListParams, PostParams};
use skiff_kubelet::runtime::hollow::HollowConfig;
use skiff_kubelet::{Config, RuntimeChoice};
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, Cluster};

const NODES: usize = 200;
const PODS_PER_NODE: usize = 5;

/// This process's resident memory, from /proc/self/status.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: 0 kB");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand"]
async fn memory_per_hollow_node() {
    let cluster = Cluster::new().await;
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let before = rss_bytes();
    for n in 0..NODES {
        let config = Config {
            node_name: format!("hollow-{n}"),
            runtime: RuntimeChoice::Hollow(HollowConfig::default()),
            root_dir: dir.path().join(format!("hollow-{n}")),
            ..Config::default()
        };
        tokio::spawn(skiff_kubelet::run(
            config,
            cluster.client.clone(),
            shutdown.clone(),
        ));
    }
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    for n in 0..NODES {
        for p in 0..PODS_PER_NODE {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("pod-{n}-{p}"), "namespace": "default"},
                "spec": {"nodeName": format!("hollow-{n}"), "containers": [{"name": "app", "image": "busybox"}]},
            }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
        }
    }
    let total = NODES * PODS_PER_NODE;
    eventually("every pod runs", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        (running.count() == total).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_node = rss_bytes().saturating_sub(before) / NODES as u64;
    eprintln!(
        "{NODES} hollow nodes with {PODS_PER_NODE} pods each: {} KiB per node (API server and store included)",
        per_node / 1024
    );
    shutdown.cancel();
}
