//! The process runtime under the whole kubelet.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;
use skiff_client::{Api, AttachParams, DeleteParams, PostParams, TerminalSize};
use skiff_kubelet::logs::{self, LogOptions};
use skiff_kubelet::{Config, RuntimeChoice};
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, http, Cluster};

fn config(root: &Path, node: &str) -> Config {
    Config {
        node_name: node.to_string(),
        runtime: RuntimeChoice::Process,
        root_dir: root.to_path_buf(),
        zone: Some("zone-a".into()),
        relist_period: Duration::from_millis(100),
        ..Config::default()
    }
}

/// Waits until the process runtime under the kubelet's `root` holds no
/// container: every process of the test's pods is stopped and removed, so
/// none outlives the test.
async fn no_containers_left(root: &Path) {
    let containers = root.join("process/containers");
    eventually("every container is removed", || async {
        let left = std::fs::read_dir(&containers).map_or(0, |d| d.count());
        (left == 0).then_some(())
    })
    .await;
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_pod_runs_as_a_process_logs_and_is_gone_after_deletion() {
    let cluster = Cluster::new().await;
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let config = Config {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..config(&dir.path().join("kubelet"), "node-a")
    };
    let kubelet = tokio::spawn(skiff_kubelet::run(
        config,
        cluster.client.clone(),
        shutdown.clone(),
    ));

    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node = eventually("the node registers", || async {
        nodes.get_opt("node-a").await.ok().flatten()
    })
    .await;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("topology.kubernetes.io/zone")
            .map(String::as_str),
        Some("zone-a")
    );
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    eventually("the node lease exists", || async {
        leases.get_opt("node-a").await.ok().flatten()
    })
    .await;

    let pid_file = dir.path().join("pid");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "node-a", "containers": [{
            "name": "app",
            "image": "none",
            "command": ["sh", "-c", format!("echo $$ > {}; echo hello from $POD_NAME; exec sleep 1000", pid_file.display())],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        }]},
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let uid = created.metadata.uid.clone().unwrap();

    let running = eventually("the pod is Running and ready", || async {
        let pod = pods.get("web").await.ok()?;
        let ready = pod
            .status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .first()?
            .ready;
        (phase(&pod) == Some("Running") && ready).then_some(pod)
    })
    .await;
    let status = running.status.unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.1"));
    let conditions: Vec<(String, String)> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    assert!(
        conditions.contains(&("Ready".into(), "True".into())),
        "{conditions:?}"
    );
    let container = &status.container_statuses.unwrap()[0];
    assert!(container
        .container_id
        .as_deref()
        .unwrap()
        .starts_with("process://"));
    assert_eq!(container.restart_count, 0);

    let log = dir
        .path()
        .join(format!("kubelet/logs/default_web_{uid}/app/0.log"));
    let text = eventually("the log shows the greeting", || async {
        let text = logs::read(&log, LogOptions::default()).await.ok()?;
        text.contains("hello from web").then_some(text)
    })
    .await;
    assert_eq!(text, "hello from web\n");

    let endpoints = node
        .status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint);
    let port = u16::try_from(endpoints.expect("the node names its kubelet port").port).unwrap();
    let (code, body) = http(port, "GET", "/containerLogs/default/web/app?tailLines=1").await;
    assert_eq!((code, body.as_str()), (200, "hello from web\n"));
    let (code, body) = http(
        port,
        "POST",
        "/exec/default/web/app?command=sh&command=-c&command=echo+in+$POD_NAME",
    )
    .await;
    assert_eq!(code, 400, "exec needs the connection upgraded: {body}");
    assert!(body.contains("skiff-channel/1"), "{body}");
    let (code, _) = http(port, "GET", "/containerLogs/default/web/app?previous=true").await;
    assert_eq!(code, 400, "there is no previous attempt yet");

    // `skiff exec -i web -- sh -c …`: a conversation through the API server,
    // each answer read before stdin ends.
    let script = r#"echo in $POD_NAME; while read line; do echo "got $line"; echo "saw $line" >&2; done; exit 5"#;
    let mut shell = pods
        .exec(
            "web",
            ["sh", "-c", script],
            &AttachParams::default().stdin(true),
        )
        .await
        .unwrap();
    let mut stdin = shell.stdin().expect("stdin was asked for");
    let mut stdout = shell.stdout().expect("stdout");
    let stderr = shell.stderr().expect("stderr");
    let mut seen = Vec::new();
    for (line, answer) in [
        ("", "in web\n"),
        ("one\n", "got one\n"),
        ("two\n", "got two\n"),
    ] {
        stdin.write_all(line.as_bytes()).await.unwrap();
        while !String::from_utf8_lossy(&seen).ends_with(answer) {
            seen.extend(stdout.next().await.expect("more output before stdin ends"));
        }
    }
    stdin.close();
    assert_eq!(
        shell.join().await.unwrap(),
        5,
        "the exit code after stdin's end"
    );
    assert_eq!(stderr.concat().await, b"saw one\nsaw two\n", "stderr apart");

    // `skiff exec -it web -- sh`: a shell on a terminal, resized, typed at.
    let params = AttachParams::default().stdin(true).tty(true);
    let mut shell = pods.exec("web", ["sh"], &params).await.unwrap();
    let sizes = shell.terminal_size().expect("a terminal was asked for");
    let size = TerminalSize {
        width: 90,
        height: 20,
    };
    sizes.send(size).await.unwrap();
    let mut stdin = shell.stdin().expect("stdin");
    let mut stdout = shell.stdout().expect("stdout");
    let mut seen = String::new();
    for (typed, answer) in [("stty size\n", "20 90"), ("echo hi; exit 3\n", "hi\r\n")] {
        stdin.write_all(typed.as_bytes()).await.unwrap();
        while !seen.contains(answer) {
            let more = stdout.next().await.expect("the answer before stdin ends");
            seen.push_str(&String::from_utf8_lossy(&more));
        }
    }
    assert_eq!(shell.join().await.unwrap(), 3, "{seen:?}");

    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the pod object is gone", || async {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually("the process is gone", || async {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;

    shutdown.cancel();
    kubelet.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_command_is_reported_and_other_pods_still_run() {
    let cluster = Cluster::new().await;
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let kubelet = tokio::spawn(skiff_kubelet::run(
        config(&dir.path().join("kubelet"), "node-b"),
        cluster.client.clone(),
        shutdown.clone(),
    ));
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    for (name, command) in [("broken", "no-such-command-here"), ("fine", "sleep")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "node-b", "containers": [{"name": "app", "image": "none", "command": [command, "1000"]}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    eventually(
        "the broken pod says RunContainerError or backs off",
        || async {
            let pod = pods.get("broken").await.ok()?;
            let status = pod.status?.container_statuses?.into_iter().next()?;
            let reason = status.state?.waiting?.reason?;
            (reason == "RunContainerError").then_some(())
        },
    )
    .await;
    eventually("the fine pod runs", || async {
        let pod = pods.get("fine").await.ok()?;
        (phase(&pod) == Some("Running")).then_some(())
    })
    .await;
    for name in ["broken", "fine"] {
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        pods.delete(name, &now).await.unwrap();
    }
    no_containers_left(&dir.path().join("kubelet")).await;
    shutdown.cancel();
    kubelet.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kubelet_adopts_its_containers_and_cleans_up_pods_deleted_meanwhile() {
    let cluster = Cluster::new().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kubelet");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let first = CancellationToken::new();
    let kubelet = tokio::spawn(skiff_kubelet::run(
        config(&root, "node-c"),
        cluster.client.clone(),
        first.clone(),
    ));
    let mut pids = Vec::new();
    for name in ["keep", "drop"] {
        let pid_file = dir.path().join(name);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "node-c", "containers": [{"name": "app", "image": "none",
                "command": ["sh", "-c", format!("echo $$ > {}; exec sleep 1000", pid_file.display())]}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let pid: u32 = eventually("the container writes its pid", || async {
            std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
        })
        .await;
        pids.push(pid);
    }
    eventually("both pods run", || async {
        let keep = pods.get("keep").await.ok()?;
        let drop = pods.get("drop").await.ok()?;
        (phase(&keep) == Some("Running") && phase(&drop) == Some("Running")).then_some(())
    })
    .await;
    first.cancel();
    kubelet.await.unwrap().unwrap();

    // While the kubelet is down, one pod is force-deleted.
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete("drop", &now).await.unwrap();

    let second = CancellationToken::new();
    let kubelet = tokio::spawn(skiff_kubelet::run(
        config(&root, "node-c"),
        cluster.client.clone(),
        second.clone(),
    ));
    let drop_pid = pids[1];
    eventually("the deleted pod's process is stopped", || async {
        (!Path::new(&format!("/proc/{drop_pid}")).exists()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        Path::new(&format!("/proc/{}", pids[0])).exists(),
        "the kept pod's process was adopted, not restarted"
    );
    let keep = pods.get("keep").await.unwrap();
    let status = keep.status.unwrap().container_statuses.unwrap().remove(0);
    assert_eq!(status.restart_count, 0);
    let containers = std::fs::read_dir(root.join("process/containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 1, "no duplicate and no orphan container");

    pods.delete("keep", &now).await.unwrap();
    eventually(
        "the kept pod's process is stopped after deletion",
        || async { (!Path::new(&format!("/proc/{}", pids[0])).exists()).then_some(()) },
    )
    .await;
    second.cancel();
    kubelet.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container() {
    let cluster = Cluster::new().await;
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let config = Config {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..config(&dir.path().join("kubelet"), "node-d")
    };
    let kubelet = tokio::spawn(skiff_kubelet::run(
        config,
        cluster.client.clone(),
        shutdown.clone(),
    ));
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let unhealthy = dir.path().join("unhealthy");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "flaky", "namespace": "default"},
        "spec": {"nodeName": "node-d", "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "app",
            "image": "none",
            "command": ["sh", "-c", "echo attempt; exec sleep 1000"],
            "livenessProbe": {
                "exec": {"command": ["test", "!", "-e", unhealthy.display().to_string()]},
                "periodSeconds": 1,
                "failureThreshold": 1,
            },
        }]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the pod runs", || async {
        let pod = pods.get("flaky").await.ok()?;
        (phase(&pod) == Some("Running")).then_some(())
    })
    .await;
    std::fs::write(&unhealthy, b"").unwrap();
    let status = eventually("the container is restarted", || async {
        let pod = pods.get("flaky").await.ok()?;
        let status = pod.status?.container_statuses?.into_iter().next()?;
        (status.restart_count >= 1).then_some(status)
    })
    .await;
    let last = status
        .last_state
        .and_then(|s| s.terminated)
        .expect("the killed attempt is the last state");
    assert_eq!(last.exit_code, 143, "killed with SIGTERM");
    std::fs::remove_file(&unhealthy).unwrap();

    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node = nodes.get("node-d").await.unwrap();
    let endpoints = node
        .status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint);
    let port = u16::try_from(endpoints.unwrap().port).unwrap();
    let (code, body) = http(
        port,
        "GET",
        "/containerLogs/default/flaky/app?previous=true",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.starts_with("attempt\n"),
        "the killed attempt's log: {body:?}"
    );
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete("flaky", &now).await.unwrap();
    no_containers_left(&dir.path().join("kubelet")).await;
    shutdown.cancel();
    kubelet.await.unwrap().unwrap();
}
