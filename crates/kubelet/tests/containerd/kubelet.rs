//! The whole path on containerd: an API server, the real kubelet over the
//! containerd runtime, and pods bound to its node going through their lives
//! with `pods/log` and `pods/exec` through the API server.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node as NodeObject, Pod};
use serde_json::json;
use skiff_client::{Api, AttachParams, DeleteParams, LogParams, PostParams, TerminalSize};
use skiff_kubelet::runtime::containerd::{netns, ContainerdRuntime};
use skiff_kubelet::runtime::{labels, Runtime};
use skiff_kubelet::{Config, RuntimeChoice};
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, Cluster};
use crate::node::{log_containing, Node};

/// The node's name in the API.
const NODE_NAME: &str = "containerd-node";

/// A containerd with busybox imported, an API server, and the real
/// kubelet's `run` over both. The kubelet runs on a thread and tokio runtime
/// of its own, so stopping it ends every task it started, as a kubelet
/// process exiting would. Dropping it stops the kubelet first; then the
/// node cleans up what is left.
pub struct Kubelet {
    pub cluster: Cluster,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    pub node: Node,
}

impl Kubelet {
    pub async fn start() -> Kubelet {
        let node = Node::start().await;
        node.runtime_with_busybox().await;
        let mut kubelet = Kubelet {
            cluster: Cluster::new().await,
            shutdown: CancellationToken::new(),
            thread: None,
            node,
        };
        kubelet.run();
        kubelet
    }

    fn config(&self) -> Config {
        Config {
            node_name: NODE_NAME.to_string(),
            runtime: RuntimeChoice::Containerd(self.node.config.clone()),
            root_dir: self.root_dir(),
            listen: Some("127.0.0.1:0".parse().expect("an address")),
            relist_period: Duration::from_millis(200),
            resync_period: Duration::from_secs(2),
            ..Config::default()
        }
    }

    pub fn root_dir(&self) -> PathBuf {
        self.node.dir.path().join("kubelet")
    }

    fn run(&mut self) {
        self.shutdown = CancellationToken::new();
        let (config, client) = (self.config(), self.cluster.client.clone());
        let shutdown = self.shutdown.clone();
        self.thread = Some(std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let ran = runtime.block_on(skiff_kubelet::run(config, client, shutdown));
            ran.map_err(|e| e.to_string())
        }));
    }

    /// Stops the kubelet; its containers keep running.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            let ran = joined.expect("joined").expect("the kubelet did not panic");
            ran.expect("the kubelet ran");
        }
    }

    /// Starts a new kubelet on the same node, as after a process restart.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run();
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.cluster.client.clone(), "default")
    }

    pub async fn runtime(&self) -> ContainerdRuntime {
        self.node.runtime().await
    }

    /// Creates the pod from JSON bound to this node; returns it with its uid.
    pub async fn create(&self, pod: serde_json::Value) -> Pod {
        let mut pod: Pod = serde_json::from_value(pod).expect("a pod");
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name = Some(NODE_NAME.to_string());
        }
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("the pod is created")
    }

    /// Waits until the pod `name` is Running with every container ready.
    pub async fn wait_ready(&self, name: &str) -> Pod {
        let pods = self.pods();
        eventually(&format!("pod {name} is Running and Ready"), || async {
            let pod = pods.get(name).await.ok()?;
            let status = pod.status.as_ref()?;
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (status.phase.as_deref() == Some("Running") && ready).then_some(pod)
        })
        .await
    }

    /// Waits until the pod `name` is gone from the API.
    pub async fn wait_gone(&self, name: &str) {
        let pods = self.pods();
        eventually(&format!("pod {name} is gone"), || async {
            pods.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await
    }

    /// The pod's log directory, as the kubelet names it.
    pub fn log_of(&self, pod: &Pod, container: &str, attempt: u32) -> PathBuf {
        let uid = pod.metadata.uid.as_deref().expect("a uid");
        let name = pod.metadata.name.as_deref().expect("a name");
        self.root_dir().join(format!(
            "logs/default_{name}_{uid}/{container}/{attempt}.log"
        ))
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The pod's container log through the API server (`pods/log`).
pub async fn pod_log(pods: &Api<Pod>, pod: &str, container: &str) -> String {
    let params = LogParams {
        container: Some(container.to_string()),
        ..LogParams::default()
    };
    pods.logs(pod, &params).await.unwrap_or_default()
}

/// Waits until `pods/log` of the container holds `needle`.
pub async fn pod_log_containing(pods: &Api<Pod>, pod: &str, container: &str, needle: &str) {
    eventually(
        &format!("the log of {pod}/{container} holds {needle:?}"),
        || async {
            pod_log(pods, pod, container)
                .await
                .contains(needle)
                .then_some(())
        },
    )
    .await
}

/// Runs `command` in the container through the API server (`pods/exec`),
/// with `stdin` when given; its exit code and stdout.
async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[&str],
    stdin: Option<&[u8]>,
) -> (i32, String) {
    exec_on(pods, (pod, container), command, stdin, false).await
}

/// [`exec`], on a terminal when `tty`.
async fn exec_on(
    pods: &Api<Pod>,
    (pod, container): (&str, &str),
    command: &[&str],
    stdin: Option<&[u8]>,
    tty: bool,
) -> (i32, String) {
    let mut params = AttachParams::default().stdin(stdin.is_some()).tty(tty);
    params.container = Some(container.to_string());
    let mut process = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .expect("the exec is accepted");
    if let (Some(mut writer), Some(data)) = (process.stdin(), stdin) {
        writer.write_all(data).await.expect("stdin is sent");
        writer.close();
    }
    let stdout = process.stdout().expect("stdout");
    let code = process.join().await.expect("the command ran");
    let stdout = stdout.concat().await;
    (code, String::from_utf8_lossy(&stdout).into_owned())
}

/// The IDs of the runtime's sandboxes and containers of the pod `uid`.
async fn held_for(runtime: &ContainerdRuntime, uid: &str) -> (Vec<String>, Vec<String>) {
    let ours = |l: &std::collections::BTreeMap<String, String>| {
        l.get(labels::POD_UID).map(String::as_str) == Some(uid)
    };
    let sandboxes = runtime.list_pod_sandboxes().await.expect("sandboxes list");
    let containers = runtime.list_containers().await.expect("containers list");
    (
        sandboxes
            .into_iter()
            .filter(|s| ours(&s.labels))
            .map(|s| s.id)
            .collect(),
        containers
            .into_iter()
            .filter(|c| ours(&c.labels))
            .map(|c| c.id)
            .collect(),
    )
}

/// Two containers sharing the pod's network namespace, prepared by an init
/// container through an emptyDir, told about themselves by the downward API.
fn shared_pod() -> serde_json::Value {
    let work = json!([{"name": "work", "mountPath": "/work"}]);
    let downward = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    json!({
        "metadata": {"name": "shared", "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 20,
            "volumes": [{"name": "work", "emptyDir": {}}],
            "initContainers": [{
                "name": "init",
                "image": "busybox",
                "command": ["sh", "-c", "echo prepared-by-init > /work/index.html"],
                "volumeMounts": work,
            }],
            "containers": [{
                "name": "web",
                "image": "busybox",
                "command": ["sh", "-c", concat!(
                    "echo $POD_NAME in $POD_NAMESPACE at $POD_IP on $NODE_NAME; ",
                    "trap 'echo web stopping; exit 0' TERM; ",
                    "httpd -f -p 8080 -h /work & wait"
                )],
                "env": [
                    downward("POD_NAME", "metadata.name"),
                    downward("POD_NAMESPACE", "metadata.namespace"),
                    downward("POD_IP", "status.podIP"),
                    downward("NODE_NAME", "spec.nodeName"),
                ],
                "volumeMounts": work,
                "readinessProbe": {
                    "httpGet": {"path": "/index.html", "port": 8080},
                    "periodSeconds": 1,
                },
            }, {
                "name": "sidecar",
                "image": "busybox",
                "command": ["sh", "-c", concat!(
                    "until wget -q -O /tmp/page http://127.0.0.1:8080/index.html; do sleep 0.2; done; ",
                    "echo sidecar saw $(cat /tmp/page) on localhost; ",
                    "trap 'echo sidecar stopping; exit 0' TERM; ",
                    "while true; do sleep 0.2; done"
                )],
            }],
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_on_containerd_through_the_api_server_from_creation_to_deletion() {
    let mut kubelet = Kubelet::start().await;
    let pods = kubelet.pods();
    let created = kubelet.create(shared_pod()).await;
    let uid = created.metadata.uid.clone().expect("a uid");

    let running = kubelet.wait_ready("shared").await;
    let status = running.status.clone().expect("a status");
    let nodes: Api<NodeObject> = Api::all(kubelet.cluster.client.clone());
    let node = nodes.get(NODE_NAME).await.expect("the node is registered");
    let pod_cidr = node.spec.and_then(|s| s.pod_cidr);
    assert_eq!(
        pod_cidr.as_ref(),
        Some(&kubelet.node.config.network.pod_cidr)
    );
    let ip = status.pod_ip.clone().expect("the pod has an IP");
    assert!(
        ip.starts_with(&kubelet.node.subnet_prefix()),
        "{ip} is not in the node's podCIDR {pod_cidr:?}"
    );
    let init = &status
        .init_container_statuses
        .clone()
        .expect("init statuses")[0];
    let done = init.state.as_ref().and_then(|s| s.terminated.as_ref());
    assert_eq!(
        done.map(|t| (t.exit_code, t.reason.as_deref())),
        Some((0, Some("Completed")))
    );
    let containers = status
        .container_statuses
        .clone()
        .expect("container statuses");
    assert_eq!(containers.len(), 2);
    for container in &containers {
        assert!(container.ready, "{} is not ready", container.name);
        let id = container.container_id.as_deref().unwrap_or_default();
        assert!(id.starts_with("containerd://"), "{id}");
    }

    // pods/log through the API server: the downward API, the shared netns.
    let greeting = format!("shared in default at {ip} on {NODE_NAME}");
    pod_log_containing(&pods, "shared", "web", &greeting).await;
    let seen = "sidecar saw prepared-by-init on localhost";
    pod_log_containing(&pods, "shared", "sidecar", seen).await;

    // pods/exec through the API server, with and without stdin.
    let read = exec(&pods, "shared", "web", &["cat", "/work/index.html"], None).await;
    assert_eq!(read, (0, "prepared-by-init\n".to_string()));
    let hostname = exec(&pods, "shared", "sidecar", &["hostname"], None).await;
    assert_eq!(hostname, (0, "shared\n".to_string()));
    let echoed = exec(
        &pods,
        "shared",
        "sidecar",
        &["sh", "-c", "cat; echo more"],
        Some(b"hi\n"),
    )
    .await;
    assert_eq!(echoed, (0, "hi\nmore\n".to_string()));
    let failed = exec(&pods, "shared", "web", &["sh", "-c", "exit 3"], None).await;
    assert_eq!(failed.0, 3);
    // -t: a terminal, so output lines end in CR LF and the input is echoed.
    let (code, terminal) = exec_on(&pods, ("shared", "web"), &["busybox", "tty"], None, true).await;
    assert_eq!(code, 0);
    assert!(terminal.starts_with("/dev/pts/"), "{terminal:?}");
    let (code, typed) = exec_on(&pods, ("shared", "web"), &["cat"], Some(b"hi\n"), true).await;
    assert_eq!((code, typed.matches("hi\r\n").count()), (0, 2), "{typed:?}");
    // `skiff exec -it shared -- sh`: a shell on a terminal, typed at, resized.
    let mut params = AttachParams::default().stdin(true).tty(true);
    params.container = Some("web".into());
    let mut shell = pods
        .exec("shared", ["sh"], &params)
        .await
        .expect("accepted");
    let sizes = shell.terminal_size().expect("a terminal");
    let size = TerminalSize {
        width: 100,
        height: 30,
    };
    sizes.send(size).await.expect("resized");
    let mut stdin = shell.stdin().expect("stdin");
    let mut stdout = shell.stdout().expect("stdout");
    let mut seen = String::new();
    for (typed, answer) in [("stty size\n", "30 100"), ("echo hi; exit 3\n", "hi\r\n")] {
        stdin.write_all(typed.as_bytes()).await.expect("typed");
        while !seen.contains(answer) {
            let more = stdout.next().await.expect("the answer before stdin ends");
            seen.push_str(&String::from_utf8_lossy(&more));
        }
    }
    assert_eq!(shell.join().await.expect("the shell ran"), 3, "{seen:?}");

    let runtime = kubelet.runtime().await;
    let (sandboxes, held) = held_for(&runtime, &uid).await;
    assert_eq!(
        (sandboxes.len(), held.len()),
        (1, 3),
        "a sandbox, init, web, sidecar"
    );
    let netns = netns::path_of(&netns::name_for(&sandboxes[0]));
    assert!(
        netns.exists(),
        "{} exists while the pod runs",
        netns.display()
    );
    let network = &kubelet.node.config.network;
    let allocation = network.ipam_data_dir.join(&network.name).join(&ip);
    assert!(
        allocation.exists(),
        "host-local holds {}",
        allocation.display()
    );

    pods.delete("shared", &DeleteParams::default())
        .await
        .expect("the pod is deleted");
    kubelet.wait_gone("shared").await;
    // Graceful: both containers got SIGTERM and ran their traps.
    log_containing(&kubelet.log_of(&created, "web", 0), "stdout F web stopping").await;
    log_containing(
        &kubelet.log_of(&created, "sidecar", 0),
        "stdout F sidecar stopping",
    )
    .await;
    eventually("the pod's sandbox and containers are removed", || async {
        let (sandboxes, containers) = held_for(&runtime, &uid).await;
        (sandboxes.is_empty() && containers.is_empty()).then_some(())
    })
    .await;
    assert!(!netns.exists(), "{} is gone", netns.display());
    assert!(!allocation.exists(), "{} is released", allocation.display());
    kubelet.stop().await;
}

/// A pod whose container writes one line, then another once `/signal/go`
/// exists on the node.
fn waiting_pod(name: &str, signal: &std::path::Path) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "volumes": [{"name": "signal", "hostPath": {"path": signal.display().to_string()}}],
            "containers": [{
                "name": "app",
                "image": "busybox",
                "command": ["sh", "-c", concat!(
                    "echo started; until [ -e /signal/go ]; do sleep 0.1; done; ",
                    "echo after-restart; exec sleep 1000"
                )],
                "volumeMounts": [{"name": "signal", "mountPath": "/signal", "readOnly": true}],
            }],
        },
    })
}

fn container_ids(pod: &Pod) -> Vec<(String, Option<String>, i32)> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone());
    statuses
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.name, c.container_id, c.restart_count))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kubelet_adopts_running_containers_and_removes_a_pod_deleted_while_down() {
    let mut kubelet = Kubelet::start().await;
    let pods = kubelet.pods();
    let signal = kubelet.node.dir.path().join("signal");
    std::fs::create_dir_all(&signal).expect("the signal directory");
    let keeper = kubelet.create(waiting_pod("keeper", &signal)).await;
    let goner = kubelet.create(waiting_pod("goner", &signal)).await;
    let before = kubelet.wait_ready("keeper").await;
    kubelet.wait_ready("goner").await;
    pod_log_containing(&pods, "keeper", "app", "started").await;
    let keeper_uid = keeper.metadata.uid.clone().expect("a uid");
    let goner_uid = goner.metadata.uid.clone().expect("a uid");
    let runtime = kubelet.runtime().await;
    let (goner_sandboxes, _) = held_for(&runtime, &goner_uid).await;
    let goner_netns = netns::path_of(&netns::name_for(&goner_sandboxes[0]));

    kubelet.stop().await;
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete("goner", &force).await.expect("deleted at once");
    kubelet.wait_gone("goner").await;
    assert!(
        goner_netns.exists(),
        "nothing cleans up while the kubelet is down"
    );

    kubelet.restart().await;
    eventually("the deleted pod's sandbox is removed", || async {
        let (sandboxes, containers) = held_for(&runtime, &goner_uid).await;
        (sandboxes.is_empty() && containers.is_empty()).then_some(())
    })
    .await;
    assert!(!goner_netns.exists(), "{} is gone", goner_netns.display());

    // The keeper's container ran on, and its output reaches the log again.
    std::fs::write(signal.join("go"), "").expect("the signal");
    pod_log_containing(&pods, "keeper", "app", "after-restart").await;
    let log = pod_log(&pods, "keeper", "app").await;
    assert_eq!(log, "started\nafter-restart\n");
    let after = kubelet.wait_ready("keeper").await;
    assert_eq!(container_ids(&after), container_ids(&before));
    assert_eq!(container_ids(&after)[0].2, 0, "not restarted");
    let (sandboxes, containers) = held_for(&runtime, &keeper_uid).await;
    assert_eq!((sandboxes.len(), containers.len()), (1, 1), "no duplicates");
    kubelet.stop().await;
}
