//! A containerd of a test's own, with a bridge for its pods, cleaned up
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use skiff_kubelet::cni::NetworkConfig;
use skiff_kubelet::runtime::containerd::{ContainerdConfig, ContainerdRuntime};
use skiff_kubelet::runtime::Runtime;

/// Distinguishes the bridges and subnets of tests running at once.
static NEXT_NODE: AtomicU32 = AtomicU32::new(0);

/// How often a test looks again while waiting for a container, and how many
/// times before it gives up (a guard against hanging, not a timing check).
pub const POLL: Duration = Duration::from_millis(100);
pub const POLLS: u32 = 600;

/// A containerd of the test's own, and the bridge its pods use.
pub struct Node {
    pub dir: tempfile::TempDir,
    containerd: Child,
    pub config: ContainerdConfig,
}

impl Node {
    pub async fn start() -> Node {
        let n = NEXT_NODE.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("containerd.sock");
        let config_file = dir.path().join("config.toml");
        std::fs::write(&config_file, containerd_config(dir.path(), &socket))
            .expect("write containerd config");
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log file");
        let containerd = Command::new("containerd")
            .arg("--config")
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd is installed");
        let network = NetworkConfig {
            name: format!("skiff-test-{n}"),
            bridge: format!("sktest{}x{n}", std::process::id() % 10_000),
            pod_cidr: format!("10.213.{}.0/24", (std::process::id() as u32 * 7 + n) % 250),
            plugin_dir: PathBuf::from("/usr/lib/cni"),
            ipam_data_dir: dir.path().join("ipam"),
        };
        let config = ContainerdConfig {
            socket,
            namespace: "skiff".to_string(),
            state_dir: dir.path().join("run"),
            network,
            ..ContainerdConfig::default()
        };
        let mut node = Node {
            dir,
            containerd,
            config,
        };
        node.wait_for_socket().await;
        node
    }

    async fn wait_for_socket(&mut self) {
        for _ in 0..POLLS {
            if let Some(status) = self.containerd.try_wait().expect("containerd status") {
                panic!(
                    "containerd exited: {status}; see {}",
                    self.dir.path().display()
                );
            }
            if self.config.socket.exists() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("containerd did not create its socket");
    }

    /// A runtime connected to this node's containerd. A containerd that has
    /// just created its socket may not answer yet on a loaded machine, so a
    /// refused connection is tried again.
    pub async fn runtime(&self) -> ContainerdRuntime {
        let mut last = None;
        for _ in 0..POLLS {
            match ContainerdRuntime::connect(self.config.clone()).await {
                Ok(runtime) => return runtime,
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("cannot connect to containerd: {last:?}");
    }

    /// A runtime with the busybox image imported.
    pub async fn runtime_with_busybox(&self) -> ContainerdRuntime {
        let runtime = self.runtime().await;
        let name = runtime
            .images()
            .import(&busybox_tarball())
            .await
            .expect("import");
        assert_eq!(name, "docker.io/library/busybox:latest");
        runtime
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join("logs").join(format!("{name}.log"))
    }

    pub fn subnet_prefix(&self) -> String {
        let cidr = &self.config.network.pod_cidr;
        cidr[..cidr.rfind('.').expect("a dotted CIDR")].to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let config = self.config.clone();
        // The pods first, through the runtime (CNI DEL, netns, tasks), on a
        // thread of its own: drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(runtime) = ContainerdRuntime::connect(config).await else {
                    return;
                };
                for sandbox in runtime.list_pod_sandboxes().await.unwrap_or_default() {
                    let _ = runtime.remove_pod_sandbox(&sandbox.id).await;
                }
            });
        })
        .join();
        let socket = self.config.socket.display().to_string();
        for pid in pids_with_argument(&socket) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = self.containerd.kill();
        let _ = self.containerd.wait();
        unmount_under(self.dir.path());
        let _ = Command::new("ip")
            .args(["link", "delete", &self.config.network.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

/// An OCI image layout tarball of the node's static busybox.
pub fn busybox_tarball() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    skiff_kubelet::image::busybox_tarball(busybox).expect("build the image")
}

fn containerd_config(dir: &Path, socket: &Path) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{socket}"
[plugins."io.containerd.service.v1.diff-service"]
  default = ["walking"]
"#,
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        socket = socket.display(),
    )
}

/// The shims this test's containerd started: their command line names its socket.
fn pids_with_argument(argument: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let is_shim = cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == argument.as_bytes())
            && String::from_utf8_lossy(&cmdline).contains("containerd-shim");
        if is_shim {
            pids.push(pid);
        }
    }
    pids
}

/// Lazily unmounts whatever is still mounted under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&prefix))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

/// The log file once it holds `needle` (the copier runs after the task ends).
pub async fn log_containing(path: &Path, needle: &str) -> String {
    for _ in 0..POLLS {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!(
        "{} never held {needle:?}: {:?}",
        path.display(),
        std::fs::read_to_string(path)
    );
}
