//! The process runtime, for real: `sh -c` children, their logs, signals and
//! adoption by a runtime reopened over the same directory.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::logs::{self, LogOptions};

async fn open(root: &Path) -> ProcessRuntime {
    ProcessRuntime::open(ProcessConfig {
        root_dir: root.to_path_buf(),
        pod_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    })
    .await
    .expect("the runtime opens")
}

fn shell(name: &str, script: &str, log_dir: &Path) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        image: "none".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![("GREETING".into(), "hello".into())],
        log_path: log_dir.join(format!("{name}.log")),
        ..Default::default()
    }
}

async fn state(rt: &ProcessRuntime, id: &str) -> ContainerState {
    let all = rt.list_containers().await.unwrap();
    all.into_iter().find(|c| c.id == id).expect("listed").state
}

/// Polls until the container has exited (a bound only against a hung test).
async fn exited(rt: &ProcessRuntime, id: &str) -> ContainerState {
    for _ in 0..500 {
        let now = state(rt, id).await;
        if matches!(now, ContainerState::Exited { .. }) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("container {id} never exited");
}

async fn log_text(path: &Path, until: &str) -> String {
    for _ in 0..500 {
        if let Ok(text) = logs::read(path, LogOptions::default()).await {
            if text.contains(until) {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the log at {} never showed {until:?}", path.display());
}

#[tokio::test]
async fn a_container_runs_with_its_env_and_args_and_its_output_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(&dir.path().join("rt")).await;
    let sandbox = rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
    let mut config = shell(
        "app",
        "echo $GREETING $0 $1; echo oops >&2; exit 3",
        dir.path(),
    );
    config.args = vec!["first".into(), "second".into()];
    let id = rt.create_container(&sandbox, &config).await.unwrap();
    assert_eq!(state(&rt, &id).await, ContainerState::Created);
    rt.start_container(&id).await.unwrap();
    let ContainerState::Exited {
        exit_code, reason, ..
    } = exited(&rt, &id).await
    else {
        unreachable!()
    };
    assert_eq!((exit_code, reason.as_str()), (3, "Error"));
    let text = log_text(&config.log_path, "oops").await;
    assert!(text.contains("hello first second\n"), "{text}");
    let raw = std::fs::read_to_string(&config.log_path).unwrap();
    assert!(raw.lines().any(|l| l.contains(" stderr F oops")), "{raw}");
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(&dir.path().join("rt")).await;
    let sandbox = rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
    let polite = shell("polite", "sleep 1000", dir.path());
    let stubborn = shell("stubborn", "trap '' TERM; echo up; sleep 1000", dir.path());
    let polite = rt.create_container(&sandbox, &polite).await.unwrap();
    let stubborn_id = rt.create_container(&sandbox, &stubborn).await.unwrap();
    rt.start_container(&polite).await.unwrap();
    rt.start_container(&stubborn_id).await.unwrap();
    log_text(&stubborn.log_path, "up").await;

    rt.stop_container(&polite, Duration::from_secs(60))
        .await
        .unwrap();
    let ContainerState::Exited { exit_code, .. } = state(&rt, &polite).await else {
        panic!("stopped means exited");
    };
    assert_eq!(exit_code, 143, "sleep dies of SIGTERM");

    rt.stop_container(&stubborn_id, Duration::from_millis(200))
        .await
        .unwrap();
    let ContainerState::Exited { exit_code, .. } = state(&rt, &stubborn_id).await else {
        panic!("stopped means exited");
    };
    assert_eq!(exit_code, 137, "ignoring SIGTERM earns SIGKILL");
}

#[tokio::test]
async fn a_missing_command_is_a_run_container_error() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(&dir.path().join("rt")).await;
    let sandbox = rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
    let mut config = shell("app", "", dir.path());
    config.command = vec!["no-such-command-anywhere".into()];
    let id = rt.create_container(&sandbox, &config).await.unwrap();
    let error = rt.start_container(&id).await.unwrap_err();
    assert_eq!(error.reason(), "RunContainerError");
}

#[tokio::test]
async fn exec_runs_in_the_containers_directory_with_its_env_and_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(&dir.path().join("rt")).await;
    let sandbox = rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
    let mut config = shell("app", "touch marker; sleep 1000", dir.path());
    config.working_dir = Some("/work".into());
    let id = rt.create_container(&sandbox, &config).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let command = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    let mut output = crate::runtime::ExecOutput::default();
    for _ in 0..500 {
        let check = command("test -e marker && echo $GREETING; pwd");
        output = rt
            .exec_sync(&id, &check, Duration::from_secs(30))
            .await
            .unwrap();
        if output.stdout.starts_with(b"hello") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("hello\n") && stdout.trim_end().ends_with("rootfs/work"),
        "{stdout}"
    );
    let pid_file = dir.path().join("sleeper");
    let script = format!("sleep 1000 & echo $! > {}; wait", pid_file.display());
    let hang = rt
        .exec_sync(&id, &command(&script), Duration::from_millis(300))
        .await;
    assert!(hang.is_err(), "a command past its timeout is an error");
    let sleeper = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = Path::new("/proc").join(sleeper.trim());
    for _ in 0..500 {
        if !proc_dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!proc_dir.exists(), "the command's children are killed too");
    rt.stop_container(&id, Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn exec_of_a_missing_command_or_in_an_ended_container_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(&dir.path().join("rt")).await;
    let sandbox = rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
    let config = shell("app", "sleep 1000", dir.path());
    let id = rt.create_container(&sandbox, &config).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let second = Duration::from_secs(30);
    let missing = rt.exec_sync(&id, &["no-such-command".into()], second).await;
    let error = missing.unwrap_err().to_string();
    assert!(error.contains("executable file not found"), "{error}");
    rt.stop_container(&id, Duration::ZERO).await.unwrap();
    let ended = rt.exec_sync(&id, &["true".into()], second).await;
    let error = ended.unwrap_err().to_string();
    assert!(error.contains("is not running"), "{error}");
}

#[tokio::test]
async fn a_reopened_runtime_adopts_running_processes_and_learns_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rt");
    let first = open(&root).await;
    let sandbox = first
        .run_pod_sandbox(&SandboxConfig::default())
        .await
        .unwrap();
    let config = shell(
        "app",
        "while [ ! -e stop ]; do sleep 0.05; done; exit 7",
        dir.path(),
    );
    let id = first.create_container(&sandbox, &config).await.unwrap();
    first.start_container(&id).await.unwrap();

    let second = open(&root).await;
    assert_eq!(second.list_pod_sandboxes().await.unwrap().len(), 1);
    let listed = second.list_containers().await.unwrap();
    assert_eq!(listed.len(), 1, "nothing started twice, nothing lost");
    assert!(matches!(listed[0].state, ContainerState::Running { .. }));

    let (record, _) = second.record(&id).unwrap();
    std::fs::write(record.cwd.join("stop"), b"").unwrap();
    let ContainerState::Exited { exit_code, .. } = exited(&second, &id).await else {
        unreachable!()
    };
    assert_eq!(exit_code, 7);
    second.remove_pod_sandbox(&sandbox).await.unwrap();
    assert!(second.list_containers().await.unwrap().is_empty());
}
