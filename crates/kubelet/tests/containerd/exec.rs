//! Interactive exec through containerd, call by call: the streams flow
//! while the command runs, on FIFOs or on a terminal the shim allocates.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_kubelet::runtime::containerd::ContainerdRuntime;
use skiff_kubelet::runtime::{labels, ContainerConfig, Runtime, SandboxConfig, TerminalSize};

use crate::common::ExecSession;
use crate::node::Node;

/// A running `sleep` container in a new sandbox; the runtime and its ID.
async fn sleeper(node: &Node, pod: &str) -> (Arc<ContainerdRuntime>, String) {
    let runtime = Arc::new(node.runtime_with_busybox().await);
    let sandbox = SandboxConfig {
        name: pod.into(),
        namespace: "default".into(),
        uid: format!("uid-{pod}"),
        hostname: pod.into(),
        labels: BTreeMap::from([(labels::POD_UID.to_string(), format!("uid-{pod}"))]),
        ..SandboxConfig::default()
    };
    let sandbox = runtime.run_pod_sandbox(&sandbox).await.expect("sandbox");
    let config = ContainerConfig {
        name: "shell".into(),
        image: "busybox".into(),
        command: vec!["sleep".into(), "1000".into()],
        log_path: node.log_path("shell"),
        labels: BTreeMap::from([(labels::CONTAINER_NAME.to_string(), "shell".to_string())]),
        ..ContainerConfig::default()
    };
    let id = runtime
        .create_container(&sandbox, &config)
        .await
        .expect("create");
    runtime.start_container(&id).await.expect("start");
    (runtime, id)
}

#[tokio::test]
async fn an_exec_answers_each_line_before_stdin_ends_and_stdins_end_reaches_it() {
    let node = Node::start().await;
    let (runtime, id) = sleeper(&node, "converse").await;
    let script =
        r#"while read line; do echo "got $line"; echo "saw $line" >&2; done; echo end; exit 4"#;
    let mut session = ExecSession::start(runtime, &id, &["sh", "-c", script], false);
    session.type_in("one\n").await;
    session.read_until("got one\n").await;
    session.type_in("two\n").await;
    session.read_until("got two\n").await;
    let (code, stdout, stderr) = session.finish().await;
    assert_eq!(code, 4);
    assert_eq!(stdout, "got one\ngot two\nend\n", "CloseIO ended the loop");
    assert_eq!(stderr, "saw one\nsaw two\n", "stderr comes apart");
}

#[tokio::test]
async fn an_exec_on_a_terminal_takes_its_size_and_exits_with_its_code() {
    let node = Node::start().await;
    let (runtime, id) = sleeper(&node, "terminal").await;
    let mut session = ExecSession::start(runtime, &id, &["sh"], true);
    let size = TerminalSize {
        width: 100,
        height: 30,
    };
    session.resize.send(size).await.expect("resized");
    session.type_in("stty size\n").await;
    session.read_until("30 100").await;
    session.type_in("echo hi; exit 3\n").await;
    session.read_until("hi\r\n").await;
    let (code, _, stderr) = session.finish().await;
    assert_eq!(code, 3);
    assert_eq!(stderr, "", "a terminal's output is all stdout");
}
