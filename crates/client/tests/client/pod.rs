//! `pods/log` and `pods/exec` end to end: `Api<Pod>` → the API server's gRPC
//! service → the node's kubelet, here a kubelet-like HTTP server in the test.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;
use skiff_api::status::Reason;
use skiff_client::{Api, AttachParams, Error, LogParams, PostParams, TerminalSize};

use crate::common::Cluster;
use crate::kubelet::FakeKubelet;

/// A cluster with node `n1` whose kubelet is `kubelet`, and pods `web` (one
/// container `app`, on n1), `pair` (containers `a` and `b`, on n1) and
/// `pending` (not bound).
async fn setup(kubelet_port: u16) -> (Cluster, Api<Pod>) {
    let cluster = Cluster::new().await;
    let client = cluster.client();
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "status": {
            "addresses": [{"type": "Hostname", "address": "n1.invalid"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        },
    }))
    .expect("a Node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("the node is created");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for (name, node, containers) in [
        ("web", "n1", vec!["app"]),
        ("pair", "n1", vec!["a", "b"]),
        ("pending", "", vec!["app"]),
    ] {
        let containers: Vec<_> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "busybox"}))
            .collect();
        let mut spec = json!({"containers": containers});
        if !node.is_empty() {
            spec["nodeName"] = json!(node);
        }
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
            .expect("a Pod");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("the pod is created");
    }
    (cluster, pods)
}

fn refusal(error: Error) -> (Reason, String) {
    let status = error.status().expect("a Kubernetes Status").clone();
    (status.reason, status.message)
}

fn params(edit: impl FnOnce(&mut LogParams)) -> LogParams {
    let mut params = LogParams::default();
    edit(&mut params);
    params
}

#[tokio::test]
async fn logs_of_the_only_container_come_from_the_kubelet_of_the_pods_node() {
    let kubelet = FakeKubelet::start().await;
    kubelet.set_log("app", false, "one\ntwo\nthree\n");
    let (_cluster, pods) = setup(kubelet.port).await;

    let all = pods
        .logs("web", &LogParams::default())
        .await
        .expect("the log");
    assert_eq!(all, "one\ntwo\nthree\n");
    let tail = pods.logs("web", &params(|p| p.tail_lines = Some(2))).await;
    assert_eq!(tail.expect("the tail"), "two\nthree\n");
    let limited = pods.logs("web", &params(|p| p.limit_bytes = Some(5))).await;
    assert_eq!(limited.expect("the first bytes"), "one\nt");
}

#[tokio::test]
async fn previous_reads_the_attempt_before_and_its_absence_is_the_kubelets_bad_request() {
    let kubelet = FakeKubelet::start().await;
    let (_cluster, pods) = setup(kubelet.port).await;
    kubelet.set_log("a", false, "now\n");
    let missing = pods
        .logs(
            "pair",
            &params(|p| (p.container, p.previous) = (Some("a".into()), true)),
        )
        .await
        .expect_err("no previous attempt");
    assert_eq!(
        refusal(missing),
        (
            Reason::BadRequest,
            "previous terminated container \"a\" in pod \"pair\" not found".into()
        )
    );

    kubelet.set_log("a", true, "before the crash\n");
    let previous = pods
        .logs(
            "pair",
            &params(|p| (p.container, p.previous) = (Some("a".into()), true)),
        )
        .await;
    assert_eq!(previous.expect("the previous log"), "before the crash\n");
}

#[tokio::test]
async fn a_followed_log_grows_as_the_container_writes() {
    let kubelet = FakeKubelet::start().await;
    kubelet.set_log("app", false, "started\n");
    let (_cluster, pods) = setup(kubelet.port).await;

    let mut stream = pods
        .log_stream("web", &params(|p| p.follow = true))
        .await
        .expect("the stream opens");
    let first = stream.next().await.expect("a chunk").expect("no error");
    assert_eq!(first, b"started\n");
    kubelet.append("app", "request 1\n");
    let next = stream.next().await.expect("a chunk").expect("no error");
    assert_eq!(next, b"request 1\n");
    kubelet.append("app", "request 2\n");
    let next = stream.next().await.expect("a chunk").expect("no error");
    assert_eq!(next, b"request 2\n");
}

#[tokio::test]
async fn an_unbound_pod_does_not_have_a_host_assigned() {
    let kubelet = FakeKubelet::start().await;
    let (_cluster, pods) = setup(kubelet.port).await;
    let expected = (
        Reason::BadRequest,
        "pod pending does not have a host assigned".to_string(),
    );
    let logs = pods.logs("pending", &LogParams::default()).await;
    assert_eq!(refusal(logs.expect_err("not bound")), expected);
    let exec = pods
        .exec("pending", ["echo", "hi"], &AttachParams::default())
        .await
        .expect("the exec starts");
    assert_eq!(refusal(exec.join().await.expect_err("not bound")), expected);
}

#[tokio::test]
async fn containers_are_defaulted_and_checked_as_kubernetes_does() {
    let kubelet = FakeKubelet::start().await;
    let (_cluster, pods) = setup(kubelet.port).await;
    let unnamed = pods.logs("pair", &LogParams::default()).await;
    assert_eq!(
        refusal(unnamed.expect_err("two containers")),
        (
            Reason::BadRequest,
            "a container name must be specified for pod pair, choose one of: [a b]".into()
        )
    );
    let wrong = pods
        .logs("web", &params(|p| p.container = Some("c".into())))
        .await;
    assert_eq!(
        refusal(wrong.expect_err("no such container")),
        (
            Reason::BadRequest,
            "container c is not valid for pod web".into()
        )
    );
    let missing = pods.logs("nope", &LogParams::default()).await;
    assert_eq!(
        refusal(missing.expect_err("no such pod")).0,
        Reason::NotFound
    );
}

#[tokio::test]
async fn a_kubelet_that_cannot_be_reached_is_an_internal_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("an address").port()
    };
    let (_cluster, pods) = setup(port).await;
    let logs = pods.logs("web", &LogParams::default()).await;
    let (reason, message) = refusal(logs.expect_err("nothing listens"));
    assert_eq!(reason, Reason::InternalError);
    assert!(
        message.contains(&format!(
            "Get \"http://127.0.0.1:{port}/containerLogs/default/web/app\": "
        )),
        "{message}"
    );
}

#[tokio::test]
async fn exec_answers_the_commands_output_and_exit_code() {
    let kubelet = FakeKubelet::start().await;
    let (_cluster, pods) = setup(kubelet.port).await;

    let mut echo = pods
        .exec("web", ["echo", "hello", "a&b"], &AttachParams::default())
        .await
        .expect("the exec starts");
    let stdout = echo.stdout().expect("stdout");
    assert_eq!(echo.join().await.expect("an exit code"), 0);
    let out: Vec<Vec<u8>> = stdout.collect().await;
    assert_eq!(out.concat(), b"hello a&b\n");

    let failing = pods
        .exec("web", ["sh", "-c", "exit 3"], &AttachParams::default())
        .await
        .expect("the exec starts");
    assert_eq!(failing.join().await.expect("an exit code"), 3);

    let mut unknown = pods
        .exec("web", ["frobnicate"], &AttachParams::default())
        .await
        .expect("the exec starts");
    let stderr = unknown.stderr().expect("stderr");
    assert_eq!(unknown.join().await.expect("an exit code"), 127);
    let err: Vec<Vec<u8>> = stderr.collect().await;
    assert_eq!(err.concat(), b"frobnicate: not found\n");
}

#[tokio::test]
async fn exec_streams_stdin_and_output_while_the_command_runs() {
    let kubelet = FakeKubelet::start().await;
    let (_cluster, pods) = setup(kubelet.port).await;
    let mut cat = pods
        .exec("web", ["cat"], &AttachParams::default().stdin(true))
        .await
        .expect("the exec starts");
    let mut stdin = cat.stdin().expect("stdin was asked for");
    let mut stdout = cat.stdout().expect("stdout");
    stdin.write_all(b"line 1\n").await.expect("written");
    assert_eq!(
        stdout.next().await.as_deref(),
        Some(&b"line 1\n"[..]),
        "before stdin ends"
    );
    stdin.write_all(b"line 2\n").await.expect("written");
    assert_eq!(stdout.next().await.as_deref(), Some(&b"line 2\n"[..]));
    stdin.close();
    assert_eq!(
        cat.join().await.expect("an exit code"),
        0,
        "stdin's end ended cat"
    );
    assert_eq!(stdout.next().await, None);
}

#[tokio::test]
async fn a_terminal_size_reaches_the_kubelet() {
    let kubelet = FakeKubelet::start().await;
    let (_cluster, pods) = setup(kubelet.port).await;
    let params = AttachParams::default().stdin(true).tty(true);
    let mut stty = pods
        .exec("web", ["stty", "size"], &params)
        .await
        .expect("the exec starts");
    let sizes = stty.terminal_size().expect("a terminal was asked for");
    let size = TerminalSize {
        width: 100,
        height: 30,
    };
    sizes.send(size).await.expect("sent");
    let stdout = stty.stdout().expect("stdout");
    let _stdin = stty.stdin();
    assert_eq!(stty.join().await.expect("an exit code"), 0);
    let out: Vec<Vec<u8>> = stdout.collect().await;
    assert_eq!(out.concat(), b"30 100\r\n");
}

#[tokio::test]
async fn exec_without_a_command_is_a_bad_request() {
    let kubelet = FakeKubelet::start().await;
    let (_cluster, pods) = setup(kubelet.port).await;
    let empty = pods
        .exec("web", Vec::<String>::new(), &AttachParams::default())
        .await
        .expect("the exec starts");
    assert_eq!(
        refusal(empty.join().await.expect_err("no command")),
        (
            Reason::BadRequest,
            "you must specify at least one command for the container".into()
        )
    );
}
