//! Interactive exec on the process runtime, call by call: a conversation on
//! pipes, a terminal of the kubelet's own with a resize, stdin's end, and a
//! caller that goes.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use skiff_kubelet::runtime::process::{ProcessConfig, ProcessRuntime};
use skiff_kubelet::runtime::{ContainerConfig, Runtime, SandboxConfig, TerminalSize};

use crate::common::ExecSession;

/// A process runtime under `dir` with one running `sleep` container.
async fn sleeper(dir: &Path) -> (Arc<ProcessRuntime>, String) {
    let config = ProcessConfig {
        root_dir: dir.join("rt"),
        pod_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let runtime = Arc::new(
        ProcessRuntime::open(config)
            .await
            .expect("the runtime opens"),
    );
    let sandbox = runtime
        .run_pod_sandbox(&SandboxConfig::default())
        .await
        .expect("a sandbox");
    let config = ContainerConfig {
        name: "app".into(),
        image: "none".into(),
        command: vec!["sleep".into(), "1000".into()],
        log_path: dir.join("app.log"),
        ..ContainerConfig::default()
    };
    let id = runtime
        .create_container(&sandbox, &config)
        .await
        .expect("created");
    runtime.start_container(&id).await.expect("started");
    (runtime, id)
}

#[tokio::test]
async fn exec_answers_each_line_before_stdin_ends_then_reports_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, id) = sleeper(dir.path()).await;
    let script =
        r#"while read line; do echo "got $line"; echo "saw $line" >&2; done; echo end; exit 4"#;
    let mut session = ExecSession::start(rt.clone(), &id, &["sh", "-c", script], false);
    session.type_in("one\n").await;
    session.read_until("got one\n").await;
    session.type_in("two\n").await;
    session.read_until("got two\n").await;
    let (code, stdout, stderr) = session.finish().await;
    assert_eq!(code, 4, "the exit code after stdin's end");
    assert_eq!(
        stdout, "got one\ngot two\nend\n",
        "stdin's end reached the command"
    );
    assert_eq!(
        stderr, "saw one\nsaw two\n",
        "stderr comes apart from stdout"
    );
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn exec_feeds_a_large_stdin_through() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, id) = sleeper(dir.path()).await;
    let session = ExecSession::start(rt.clone(), &id, &["wc", "-c"], false);
    for _ in 0..16 {
        session.type_in(&"x".repeat(64 * 1024)).await;
    }
    let (code, stdout, _) = session.finish().await;
    assert_eq!((code, stdout.trim()), (0, "1048576"));
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn exec_on_a_terminal_is_interactive_and_takes_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, id) = sleeper(dir.path()).await;
    let mut session = ExecSession::start(rt.clone(), &id, &["sh"], true);
    let size = TerminalSize {
        width: 123,
        height: 45,
    };
    session.resize.send(size).await.unwrap();
    session.type_in("tty; stty size\n").await;
    let seen = session.read_until("45 123").await;
    assert!(
        seen.contains("/dev/pts/"),
        "the command is on a terminal: {seen}"
    );
    session.type_in("echo hi; exit 3\n").await;
    session.read_until("hi\r\n").await;
    let (code, _, stderr) = session.finish().await;
    assert_eq!(code, 3);
    assert_eq!(stderr, "", "a terminal's output is all stdout");
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn the_end_of_stdin_on_a_terminal_is_ctrl_d() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, id) = sleeper(dir.path()).await;
    let session = ExecSession::start(rt.clone(), &id, &["cat"], true);
    session.type_in("typed\n").await;
    let (code, stdout, _) = session.finish().await;
    assert_eq!(code, 0, "cat read the end of its input: {stdout:?}");
    assert_eq!(
        stdout.matches("typed\r\n").count(),
        2,
        "echoed, then written: {stdout:?}"
    );
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn an_exec_whose_caller_goes_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, id) = sleeper(dir.path()).await;
    let command = ["sh", "-c", "echo $$; exec sleep 1000"];
    let mut session = ExecSession::start(rt.clone(), &id, &command, false);
    let pid = session.read_until("\n").await;
    let proc_dir = Path::new("/proc").join(pid.trim());
    let ended = session.hang_up().await;
    assert!(
        ended.is_err(),
        "an exec with nobody reading is not a success"
    );
    assert!(!proc_dir.exists(), "the command was killed and reaped");
    rt.remove_container(&id).await.unwrap();
}
