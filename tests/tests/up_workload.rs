//! `skiff up` as the README runs it: one process with a kubelet on the
//! process runtime; `skiff apply -f examples/deployment.yaml` → the
//! Deployment's pods run and it is available; scaled to zero its processes
//! stop; SIGTERM stops the cluster cleanly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::up::UpProcess;

/// `skiff up` as the README runs it, with the process runtime and a known node name.
fn start() -> UpProcess {
    UpProcess::start(&["--runtime", "process", "--node-name", "up-node"])
}

/// `skiff get … -o json`, parsed, or `None` while it fails.
fn get_json(up: &UpProcess, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    let out = up.skiff(&all);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Polls `check` a bounded number of times, 200 ms apart.
async fn eventually(
    up: &UpProcess,
    what: &str,
    mut check: impl FnMut(&UpProcess) -> Result<(), String>,
) {
    let mut last = String::new();
    for _ in 0..450 {
        match check(up) {
            Ok(()) => return,
            Err(seen) => last = seen,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{what} never happened; last seen: {last}\nskiff up's log:\n{}",
        up.log()
    );
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn field<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[key])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_a_deployment_on_the_process_runtime_and_stops_on_sigterm() {
    let mut up = start();
    eventually(&up, "the node registering Ready", |up| {
        let node = get_json(up, &["nodes", "up-node"]).ok_or("no node yet")?;
        let conditions = field(&node, &["status", "conditions"]);
        let ready = conditions
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(()).ok_or(conditions.to_string())
    })
    .await;
    let banner = up.banner();
    assert!(
        banner.contains(&format!("API server:     {}", up.server)),
        "{banner}"
    );
    assert!(banner.contains("skiff apply -f examples/"), "{banner}");
    assert!(
        !up.log().contains('\u{1b}'),
        "no colour codes in a log file"
    );

    let manifest = example("deployment.yaml");
    let applied = up.skiff(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(applied.status.success(), "{applied:?}");
    eventually(&up, "the Deployment becoming available", |up| {
        let d = get_json(up, &["deployment", "clock"]).ok_or("no deployment")?;
        let status = field(&d, &["status"]);
        (status["availableReplicas"] == 2 && status["readyReplicas"] == 2)
            .then_some(())
            .ok_or(status.to_string())
    })
    .await;
    let pods = get_json(&up, &["pods", "-l", "app=clock"]).unwrap();
    let items = pods["items"].as_array().expect("a pod list");
    assert_eq!(items.len(), 2, "{pods}");
    for pod in items {
        assert_eq!(pod["spec"]["nodeName"], "up-node");
        assert_eq!(pod["status"]["phase"], "Running");
    }

    // Scaled to zero, the pods go and the kubelet stops their processes.
    let scaled = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("replicas: 2", "replicas: 0");
    let scaled_path = up.dir().join("clock-zero.yaml");
    std::fs::write(&scaled_path, scaled).unwrap();
    let applied = up.skiff(&["apply", "-f", scaled_path.to_str().unwrap()]);
    assert!(applied.status.success(), "{applied:?}");
    eventually(&up, "the pods going", |up| {
        let pods = get_json(up, &["pods", "-l", "app=clock"]).ok_or("no list")?;
        let left = pods["items"].as_array().map_or(0, Vec::len);
        (left == 0).then_some(()).ok_or(format!("{left} pods left"))
    })
    .await;

    let status = up.stop("TERM");
    assert!(status.success(), "skiff up exited with {status}");
}
