//! The containerd runtime alone, call by call, as the kubelet drives it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skiff_kubelet::runtime::containerd::ContainerdRuntime;
use skiff_kubelet::runtime::{
    labels, ContainerConfig, ContainerState, Mount, Resources, Runtime, RuntimeError, SandboxConfig,
};

use crate::node::{busybox_tarball, log_containing, Node, POLL, POLLS};

fn sandbox_config(name: &str) -> SandboxConfig {
    let labels = BTreeMap::from([
        (labels::POD_NAME.to_string(), name.to_string()),
        (labels::POD_NAMESPACE.to_string(), "default".to_string()),
        (labels::POD_UID.to_string(), format!("uid-{name}")),
    ]);
    SandboxConfig {
        name: name.into(),
        namespace: "default".into(),
        uid: format!("uid-{name}"),
        hostname: name.into(),
        labels,
        ..SandboxConfig::default()
    }
}

fn container_config(node: &Node, name: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        image: "busybox".into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: node.log_path(name),
        labels: BTreeMap::from([(labels::CONTAINER_NAME.to_string(), name.to_string())]),
        ..ContainerConfig::default()
    }
}

/// Creates and starts a container in a new sandbox; returns (sandbox, container).
async fn run(runtime: &ContainerdRuntime, pod: &str, config: &ContainerConfig) -> (String, String) {
    let sandbox = runtime
        .run_pod_sandbox(&sandbox_config(pod))
        .await
        .expect("sandbox");
    let container = runtime
        .create_container(&sandbox, config)
        .await
        .expect("create");
    runtime.start_container(&container).await.expect("start");
    (sandbox, container)
}

async fn state(runtime: &ContainerdRuntime, id: &str) -> ContainerState {
    let containers = runtime.list_containers().await.expect("list containers");
    let container = containers.into_iter().find(|c| c.id == id).expect("listed");
    container.state
}

async fn wait_exited(runtime: &ContainerdRuntime, id: &str) -> (i32, String) {
    for _ in 0..POLLS {
        if let ContainerState::Exited {
            exit_code, reason, ..
        } = state(runtime, id).await
        {
            return (exit_code, reason);
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("container {id} did not exit");
}

#[tokio::test]
async fn a_container_writes_its_output_to_a_cri_log_and_completes() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    runtime
        .ensure_image("busybox")
        .await
        .expect("the imported image is present");
    let config = container_config(&node, "hello", &["sh", "-c", "echo hello; echo oops >&2"]);
    let (sandbox, container) = run(&runtime, "hello", &config).await;

    let sandboxes = runtime.list_pod_sandboxes().await.unwrap();
    let listed = sandboxes
        .iter()
        .find(|s| s.id == sandbox)
        .expect("sandbox listed");
    assert!(listed.ready);
    let ip = listed.ip.expect("the pod has an IP").to_string();
    assert!(
        ip.starts_with(&node.subnet_prefix()),
        "{ip} is not in the podCIDR"
    );
    assert_eq!(
        listed.labels.get(labels::POD_NAME).map(String::as_str),
        Some("hello")
    );

    assert_eq!(
        wait_exited(&runtime, &container).await,
        (0, "Completed".to_string())
    );
    let log = log_containing(&config.log_path, "stderr F oops").await;
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.iter().any(|l| l.ends_with(" stdout F hello")),
        "{log}"
    );
    for line in &lines {
        let timestamp = line.split(' ').next().unwrap();
        assert!(
            timestamp.ends_with('Z') && timestamp.contains('T'),
            "{line}"
        );
    }

    runtime.stop_pod_sandbox(&sandbox).await.unwrap();
    let stopped = runtime.list_pod_sandboxes().await.unwrap();
    assert!(!stopped.iter().find(|s| s.id == sandbox).unwrap().ready);
    runtime.remove_pod_sandbox(&sandbox).await.unwrap();
    assert!(runtime.list_pod_sandboxes().await.unwrap().is_empty());
    assert!(runtime.list_containers().await.unwrap().is_empty());
    runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("removing twice succeeds");
}

#[tokio::test]
async fn a_failing_command_reports_its_exit_code_as_an_error() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let config = container_config(&node, "fail", &["sh", "-c", "exit 3"]);
    let (_, container) = run(&runtime, "fail", &config).await;
    assert_eq!(
        wait_exited(&runtime, &container).await,
        (3, "Error".to_string())
    );
}

#[tokio::test]
async fn stop_sends_sigterm_and_a_container_that_ignores_it_is_killed_after_the_grace_period() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let polite = container_config(
        &node,
        "polite",
        &[
            "sh",
            "-c",
            "trap 'echo terminated; exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    let (sandbox, polite_id) = run(&runtime, "graceful", &polite).await;
    let stubborn = container_config(&node, "stubborn", &["sh", "-c", "trap '' TERM; sleep 1000"]);
    let stubborn_id = runtime.create_container(&sandbox, &stubborn).await.unwrap();
    runtime.start_container(&stubborn_id).await.unwrap();
    assert!(matches!(
        state(&runtime, &polite_id).await,
        ContainerState::Running { .. }
    ));

    runtime
        .stop_container(&polite_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        wait_exited(&runtime, &polite_id).await,
        (0, "Completed".to_string())
    );
    log_containing(&polite.log_path, "stdout F terminated").await;

    runtime
        .stop_container(&stubborn_id, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        wait_exited(&runtime, &stubborn_id).await,
        (137, "Error".to_string())
    );
    runtime
        .stop_container(&stubborn_id, Duration::from_secs(1))
        .await
        .expect("stopping twice succeeds");

    runtime.remove_container(&polite_id).await.unwrap();
    runtime
        .remove_container(&polite_id)
        .await
        .expect("removing twice succeeds");
    let left: Vec<String> = runtime
        .list_containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, vec![stubborn_id]);
}

#[tokio::test]
async fn a_missing_image_is_err_image_never_pull() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let error = runtime.ensure_image("nginx:1.27").await.unwrap_err();
    assert!(
        matches!(error, RuntimeError::ImageNeverPull { .. }),
        "{error}"
    );
    assert_eq!(error.reason(), "ErrImageNeverPull");

    let sandbox = runtime
        .run_pod_sandbox(&sandbox_config("noimage"))
        .await
        .unwrap();
    let mut config = container_config(&node, "web", &["nginx"]);
    config.image = "nginx:1.27".into();
    let error = runtime
        .create_container(&sandbox, &config)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::ImageNeverPull { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_command_that_does_not_exist_is_a_run_container_error() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let sandbox = runtime
        .run_pod_sandbox(&sandbox_config("typo"))
        .await
        .unwrap();
    let config = container_config(&node, "typo", &["/bin/no-such-program"]);
    let container = runtime.create_container(&sandbox, &config).await.unwrap();
    let error = runtime.start_container(&container).await.unwrap_err();
    assert!(matches!(error, RuntimeError::RunContainer(_)), "{error}");
    assert!(error.to_string().contains("no-such-program"), "{error}");
    assert_eq!(state(&runtime, &container).await, ContainerState::Created);
}

#[tokio::test]
async fn exceeding_the_memory_limit_is_oom_killed() {
    let memory_cgroup = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        || Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert!(memory_cgroup, "no memory cgroup on this machine");
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let mut config = container_config(
        &node,
        "hog",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
    );
    config.resources = Resources {
        cpu_limit_millis: Some(500),
        memory_limit_bytes: Some(32 << 20),
    };
    let (_, container) = run(&runtime, "hog", &config).await;
    assert_eq!(
        wait_exited(&runtime, &container).await,
        (137, "OOMKilled".to_string())
    );
}

#[tokio::test]
async fn exec_sync_runs_a_command_inside_a_running_container() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let mut config = container_config(&node, "shell", &["sleep", "1000"]);
    config.env = vec![("GREETING".into(), "hi".into())];
    let (_, container) = run(&runtime, "exec-pod", &config).await;

    let command = |script: &str| vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    let output = runtime
        .exec_sync(
            &container,
            &command("echo $GREETING; echo err >&2; exit 4"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(output.exit_code, 4);
    assert_eq!(output.stdout, b"hi\n");
    assert_eq!(output.stderr, b"err\n");

    let hostname = runtime
        .exec_sync(
            &container,
            &["hostname".to_string()],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(hostname.stdout, b"exec-pod\n");

    let error = runtime
        .exec_sync(
            &container,
            &command("sleep 1000"),
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("timed out"), "{error}");

    let mut left: Vec<String> = std::fs::read_dir(node.config.state_dir.join(&container))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["stderr", "stdout"], "every exec's FIFOs are removed");
}

#[tokio::test]
async fn two_pods_on_the_bridge_reach_each_other_by_ip() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let server = container_config(
        &node,
        "server",
        &[
            "sh",
            "-c",
            "echo hello-from-server > /www/index.html; exec httpd -f -p 8080 -h /www",
        ],
    );
    let (server_sandbox, _) = run(&runtime, "server", &server).await;
    let client = container_config(&node, "client", &["sleep", "1000"]);
    let (client_sandbox, client_id) = run(&runtime, "client", &client).await;

    let sandboxes = runtime.list_pod_sandboxes().await.unwrap();
    let ip_of = |id: &str| -> IpAddr { sandboxes.iter().find(|s| s.id == id).unwrap().ip.unwrap() };
    let (server_ip, client_ip) = (ip_of(&server_sandbox), ip_of(&client_sandbox));
    assert_ne!(server_ip, client_ip);

    let url = format!("http://{server_ip}:8080/index.html");
    let fetch = ["wget", "-q", "-O", "-", url.as_str()].map(String::from);
    for _ in 0..POLLS {
        let output = runtime
            .exec_sync(&client_id, &fetch, Duration::from_secs(30))
            .await
            .unwrap();
        if output.exit_code == 0 {
            assert_eq!(output.stdout, b"hello-from-server\n");
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("the client pod never reached {url}");
}

#[tokio::test]
async fn a_restarted_runtime_finds_its_sandboxes_and_containers_by_listing() {
    let node = Node::start().await;
    let (sandbox, container) = {
        let runtime = node.runtime_with_busybox().await;
        let config = container_config(&node, "long", &["sleep", "1000"]);
        run(&runtime, "survivor", &config).await
    };

    let restarted = node.runtime().await;
    let sandboxes = restarted.list_pod_sandboxes().await.unwrap();
    assert_eq!(sandboxes.len(), 1);
    assert_eq!(sandboxes[0].id, sandbox);
    assert!(sandboxes[0].ready && sandboxes[0].ip.is_some());
    assert_eq!(
        sandboxes[0].labels.get(labels::POD_UID).map(String::as_str),
        Some("uid-survivor")
    );
    let containers = restarted.list_containers().await.unwrap();
    assert_eq!(containers.len(), 1);
    let found = &containers[0];
    assert_eq!(
        (found.id.as_str(), found.sandbox_id.as_str()),
        (container.as_str(), sandbox.as_str())
    );
    assert_eq!(
        (found.name.as_str(), found.attempt, found.image.as_str()),
        ("long", 0, "busybox")
    );
    assert!(
        matches!(found.state, ContainerState::Running { .. }),
        "{:?}",
        found.state
    );
    restarted.remove_pod_sandbox(&sandbox).await.unwrap();
    assert!(restarted.list_containers().await.unwrap().is_empty());
}

#[tokio::test]
async fn limits_become_the_containers_cgroup_settings() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let mut config = container_config(&node, "limited", &["sleep", "1000"]);
    config.resources = Resources {
        cpu_limit_millis: Some(250),
        memory_limit_bytes: Some(64 << 20),
    };
    let (_, container) = run(&runtime, "limited", &config).await;
    let read = |path: String| std::fs::read_to_string(path).map(|s| s.trim().to_string());
    let v1 = (
        read(format!(
            "/sys/fs/cgroup/cpu/skiff/{container}/cpu.cfs_quota_us"
        )),
        read(format!(
            "/sys/fs/cgroup/memory/skiff/{container}/memory.limit_in_bytes"
        )),
    );
    let (cpu, memory) = match v1 {
        (Ok(quota), Ok(limit)) => (quota, limit),
        _ => (
            read(format!("/sys/fs/cgroup/skiff/{container}/cpu.max")).expect("cpu.max"),
            read(format!("/sys/fs/cgroup/skiff/{container}/memory.max")).expect("memory.max"),
        ),
    };
    assert!(cpu == "25000" || cpu == "25000 100000", "cpu quota {cpu}");
    assert_eq!(memory, (64u64 << 20).to_string());
}

#[tokio::test]
async fn a_volume_is_bind_mounted_read_write_or_read_only() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let data = node.dir.path().join("volumes/data");
    let config_dir = node.dir.path().join("volumes/config");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("setting"), "blue").unwrap();
    let mut config = container_config(
        &node,
        "writer",
        &[
            "sh",
            "-c",
            "cat /config/setting > /data/copy; echo x > /config/other || echo read-only",
        ],
    );
    config.mounts = vec![
        Mount {
            host_path: data.clone(),
            container_path: PathBuf::from("/data"),
            read_only: false,
        },
        Mount {
            host_path: config_dir.clone(),
            container_path: PathBuf::from("/config"),
            read_only: true,
        },
    ];
    let (_, container) = run(&runtime, "volumes", &config).await;
    assert_eq!(wait_exited(&runtime, &container).await.0, 0);
    assert_eq!(std::fs::read_to_string(data.join("copy")).unwrap(), "blue");
    assert!(!config_dir.join("other").exists());
    log_containing(&config.log_path, "stdout F read-only").await;
}

#[tokio::test]
async fn a_host_network_pod_has_no_ip_of_its_own_and_sees_the_nodes_interfaces() {
    let node = Node::start().await;
    let runtime = node.runtime_with_busybox().await;
    let mut sandbox_config = sandbox_config("host");
    sandbox_config.host_network = true;
    let sandbox = runtime.run_pod_sandbox(&sandbox_config).await.unwrap();
    let config = container_config(&node, "host", &["sleep", "1000"]);
    let container = runtime.create_container(&sandbox, &config).await.unwrap();
    runtime.start_container(&container).await.unwrap();

    let listed = runtime.list_pod_sandboxes().await.unwrap();
    assert_eq!(listed[0].ip, None);
    let node_interfaces = std::fs::read_to_string("/proc/net/dev").unwrap();
    let output = runtime
        .exec_sync(
            &container,
            &["cat".to_string(), "/proc/net/dev".to_string()],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let seen = String::from_utf8_lossy(&output.stdout);
    let interfaces = |table: &str| -> Vec<String> {
        let mut names: Vec<String> = table
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_string())
            .collect();
        names.sort();
        names
    };
    // Other tests add veths and bridges meanwhile; the node's own links stay.
    let lasting: Vec<String> = interfaces(&node_interfaces)
        .into_iter()
        .filter(|name| name != "lo" && !name.starts_with("veth") && !name.starts_with("sktest"))
        .collect();
    assert!(!lasting.is_empty(), "the node has no network interface");
    let seen = interfaces(&seen);
    for name in &lasting {
        assert!(seen.contains(name), "{name} not seen in the pod: {seen:?}");
    }
}

#[tokio::test]
async fn after_a_restart_resume_logs_copies_what_running_containers_write_next() {
    let node = Node::start().await;
    let signal = node.dir.path().join("signal");
    std::fs::create_dir_all(&signal).unwrap();
    let mut config = container_config(
        &node,
        "chatty",
        &[
            "sh",
            "-c",
            "echo before; while [ ! -e /signal/go ]; do sleep 0.1; done; echo after; sleep 1000",
        ],
    );
    config.mounts = vec![Mount {
        host_path: signal.clone(),
        container_path: PathBuf::from("/signal"),
        read_only: true,
    }];
    // The first kubelet runs on a tokio runtime of its own; shutting that
    // runtime down ends its log copiers, as a kubelet process exiting would.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let first = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                first.block_on(async {
                    let runtime = node.runtime_with_busybox().await;
                    run(&runtime, "chatty", &config).await;
                    log_containing(&config.log_path, "stdout F before").await;
                });
            })
            .join()
            .expect("the first kubelet ran the container");
    });

    let restarted = node.runtime().await;
    restarted.resume_logs().await.unwrap();
    std::fs::write(signal.join("go"), "").unwrap();
    let log = log_containing(&config.log_path, "stdout F after").await;
    assert_eq!(log.matches(" stdout F before").count(), 1, "{log}");
}

#[tokio::test]
async fn an_image_imported_by_ctr_without_unpacking_is_unpacked_on_first_use() {
    let node = Node::start().await;
    let tarball = node.dir.path().join("busybox.tar");
    std::fs::write(&tarball, busybox_tarball()).unwrap();
    let imported = Command::new("ctr")
        .arg("--address")
        .arg(&node.config.socket)
        .args(["--namespace", "skiff", "images", "import", "--no-unpack"])
        .arg(&tarball)
        .output()
        .expect("ctr is installed with containerd");
    assert!(imported.status.success(), "{imported:?}");

    let runtime = node.runtime().await;
    runtime
        .ensure_image("busybox")
        .await
        .expect("unpacked on demand");
    let config = container_config(&node, "late", &["echo", "unpacked"]);
    let (_, container) = run(&runtime, "late", &config).await;
    assert_eq!(wait_exited(&runtime, &container).await.0, 0);
    log_containing(&config.log_path, "stdout F unpacked").await;
}

#[tokio::test]
async fn importing_an_image_again_or_twice_at_once_is_harmless() {
    let node = Node::start().await;
    let runtime = node.runtime().await;
    let tarball = busybox_tarball();
    let (first, second) = tokio::join!(
        runtime.images().import(&tarball),
        runtime.images().import(&tarball)
    );
    assert_eq!(first.unwrap(), "docker.io/library/busybox:latest");
    assert_eq!(second.unwrap(), "docker.io/library/busybox:latest");
    runtime
        .images()
        .import(&tarball)
        .await
        .expect("a third import");
    let config = container_config(&node, "again", &["echo", "fine"]);
    let (_, container) = run(&runtime, "again", &config).await;
    assert_eq!(wait_exited(&runtime, &container).await.0, 0);
}
