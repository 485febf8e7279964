//! The container runtime seam: what the kubelet asks of whatever runs containers.
//!
//! The calls follow Kubernetes' Container Runtime Interface (CRI), the gRPC API
//! between the real kubelet and containerd or CRI-O: a pod is a *sandbox* (the
//! shared network namespace and the pod's IP) holding *containers*; each
//! container is created, started, stopped and removed on its own, and a restart
//! is a new container with a higher `attempt`. The kubelet owns the decisions
//! (what to start, when to restart, when to kill); a runtime only carries them
//! out and reports what it sees. That keeps the pod lifecycle in one place,
//! tested once over the hollow runtime, and the runtimes small.
//!
//! Every sandbox and container carries the labels the real kubelet puts on
//! them ([`labels`]), so a restarted kubelet finds what it already runs by
//! listing: no local database, nothing to lose.
//!
//! Logs: the kubelet chooses each container's log file
//! ([`ContainerConfig::log_path`]); the runtime writes the container's stdout
//! and stderr there in CRI's log format, one line per record:
//! `<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <text>` (`P` marks a
//! partial line that continues in the next record).
//!
//! # Caveats
//! No attach, port-forward or checkpointing. Exec ([`Runtime::exec`]) streams
//! stdin, output and terminal resizes; the hollow runtime runs no commands,
//! so it has no interactive exec.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Container;
use skiff_api::admission::quantity::parse_nanos;
pub use skiff_proto::channel::TerminalSize;
use tokio::sync::mpsc;

pub mod containerd;
mod exec_io;
pub mod hollow;
pub mod process;

/// The labels every sandbox and container carries, named as the real kubelet
/// names them, so that a listing maps each back to its pod and container.
pub mod labels {
    /// The pod's UID.
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    /// The pod's name.
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    /// The pod's namespace.
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    /// The container's name in the pod spec (containers only).
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
}

/// What a runtime call can fail with. The variants map onto the reasons the
/// kubelet reports in a container's `Waiting` state.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The image is not present and cannot be pulled (no registry is
    /// configured): reason `ErrImageNeverPull`.
    #[error("container image {image:?} is not present with pull policy of Never")]
    ImageNeverPull {
        /// The image reference as the pod spec gives it.
        image: String,
    },
    /// The image exists but could not be read or unpacked: reason `ErrImagePull`.
    #[error("failed to pull and unpack image {image:?}: {message}")]
    ImagePull {
        /// The image reference.
        image: String,
        /// What went wrong.
        message: String,
    },
    /// The container could not be created (bad spec, missing working
    /// directory, …): reason `CreateContainerError`.
    #[error("{0}")]
    CreateContainer(String),
    /// The container was created but did not start (the command does not
    /// exist, …): reason `RunContainerError`.
    #[error("{0}")]
    RunContainer(String),
    /// The sandbox (network namespace, pod IP) could not be set up.
    #[error("failed to create pod sandbox: {0}")]
    CreateSandbox(String),
    /// No sandbox or container with this ID.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// "sandbox" or "container".
        kind: &'static str,
        /// The ID asked for.
        id: String,
    },
    /// The runtime does not offer this call (for example, interactive exec
    /// on the hollow runtime).
    #[error("the {runtime} runtime does not support {what}")]
    Unsupported {
        /// The runtime's name.
        runtime: &'static str,
        /// The call.
        what: &'static str,
    },
    /// Anything else the runtime reports (a broken connection to containerd, an
    /// I/O error); the text says what.
    #[error("{0}")]
    Other(String),
}

impl RuntimeError {
    /// The reason the kubelet puts in the container's `Waiting` state.
    pub fn reason(&self) -> &'static str {
        match self {
            RuntimeError::ImageNeverPull { .. } => "ErrImageNeverPull",
            RuntimeError::ImagePull { .. } => "ErrImagePull",
            RuntimeError::CreateContainer(_) => "CreateContainerError",
            RuntimeError::RunContainer(_) => "RunContainerError",
            RuntimeError::CreateSandbox(_) => "CreateContainerError",
            RuntimeError::NotFound { .. }
            | RuntimeError::Unsupported { .. }
            | RuntimeError::Other(_) => "RunContainerError",
        }
    }
}

/// Result of a runtime call.
pub type Result<T> = std::result::Result<T, RuntimeError>;

/// A sandbox's ID, as the runtime chose it.
pub type SandboxId = String;
/// A container's ID, as the runtime chose it.
pub type ContainerId = String;

/// What a pod sandbox is made from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SandboxConfig {
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's UID.
    pub uid: String,
    /// The hostname the pod's containers see (the pod's name, or spec.hostname).
    pub hostname: String,
    /// Whether the pod uses the node's network namespace (spec.hostNetwork).
    pub host_network: bool,
    /// The directory for this pod's logs; the kubelet creates it.
    pub log_directory: PathBuf,
    /// Labels to put on the sandbox; the kubelet fills [`labels`] in.
    pub labels: BTreeMap<String, String>,
}

/// A sandbox as the runtime reports it; the process and hollow runtimes,
/// which have nothing else to a sandbox, keep it as their record.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SandboxStatus {
    /// The runtime's ID for it.
    pub id: SandboxId,
    /// Its labels, as given at creation.
    pub labels: BTreeMap<String, String>,
    /// Whether it is ready to hold containers (false once stopped).
    pub ready: bool,
    /// The pod's IP, when the sandbox has a network of its own.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// When it was created.
    pub created_at: SystemTime,
}

impl SandboxStatus {
    /// A new, ready sandbox made from `config`.
    pub(crate) fn new(
        id: SandboxId,
        config: &SandboxConfig,
        ip: Option<IpAddr>,
        created_at: SystemTime,
    ) -> SandboxStatus {
        SandboxStatus {
            id,
            labels: config.labels.clone(),
            ready: true,
            ip,
            created_at,
        }
    }
}

/// A bind mount into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The path on the node.
    pub host_path: PathBuf,
    /// Where it appears inside the container.
    pub container_path: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Resource limits, as cgroup settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU limit in millicores (the CFS quota over a 100 ms period); `None` is
    /// unlimited.
    pub cpu_limit_millis: Option<u64>,
    /// Memory limit in bytes; `None` is unlimited. Exceeding it is OOMKilled.
    pub memory_limit_bytes: Option<u64>,
}

impl Resources {
    /// The limits of `container`'s `resources.limits` (`cpu`, `memory`), as
    /// the kubelet hands them to the runtime; a limit that is absent or does
    /// not parse (the API server refuses those) is no limit.
    pub fn limits_of(container: &Container) -> Resources {
        let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
        let nanos = |name: &str| {
            let quantity = limits?.get(name)?;
            let nanos = parse_nanos(&quantity.0)?;
            u64::try_from(nanos).ok().filter(|n| *n > 0)
        };
        Resources {
            cpu_limit_millis: nanos("cpu").map(|n| n.div_ceil(1_000_000)),
            memory_limit_bytes: nanos("memory").map(|n| n.div_ceil(1_000_000_000)),
        }
    }
}

/// What a container is made from; the kubelet has resolved everything in the
/// pod spec (env from ConfigMaps and the downward API, volumes to host paths).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerConfig {
    /// The container's name in the pod spec.
    pub name: String,
    /// How many times this container has been started before (0 for the first).
    pub attempt: u32,
    /// The image reference.
    pub image: String,
    /// The entrypoint (spec `command`); empty means the image's.
    pub command: Vec<String>,
    /// The arguments (spec `args`); empty means the image's (when `command` is
    /// empty too).
    pub args: Vec<String>,
    /// The working directory; `None` means the image's.
    pub working_dir: Option<String>,
    /// Environment variables in order.
    pub env: Vec<(String, String)>,
    /// Bind mounts (volumes).
    pub mounts: Vec<Mount>,
    /// cgroup limits.
    pub resources: Resources,
    /// The file the runtime writes the container's output to, in CRI's log format.
    pub log_path: PathBuf,
    /// Allocate a TTY (spec `tty`).
    pub tty: bool,
    /// Keep stdin open (spec `stdin`).
    pub stdin: bool,
    /// Labels to put on the container; the kubelet fills [`labels`] in.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the pod, which the hollow runtime reads for its script.
    pub pod_annotations: BTreeMap<String, String>,
}

/// A container's state, as Kubernetes' ContainerState.
#[derive(Clone, Debug, PartialEq)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Running since `started_at`.
    Running {
        /// When its process started.
        started_at: SystemTime,
    },
    /// Its process ended.
    Exited {
        /// The exit code (128 + the signal for a killed process).
        exit_code: i32,
        /// "Completed" (code 0), "Error", or "OOMKilled".
        reason: String,
        /// When its process started, if it did.
        started_at: Option<SystemTime>,
        /// When it ended.
        finished_at: SystemTime,
    },
}

/// A container as the runtime reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerStatus {
    /// The runtime's ID for it.
    pub id: ContainerId,
    /// The sandbox it belongs to.
    pub sandbox_id: SandboxId,
    /// Its labels, as given at creation.
    pub labels: BTreeMap<String, String>,
    /// The container's name in the pod spec.
    pub name: String,
    /// Its attempt number, as given at creation.
    pub attempt: u32,
    /// The image it runs.
    pub image: String,
    /// Its state now.
    pub state: ContainerState,
}

/// The result of a command run to completion inside a container
/// ([`Runtime::exec_sync`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The command's exit code.
    pub exit_code: i32,
    /// What it wrote to stdout.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// A command to run in a running container ([`Runtime::exec`]), as CRI's
/// `ExecRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The command and its arguments, not run through a shell.
    pub command: Vec<String>,
    /// Run it on a terminal: stdin, stdout and stderr are one pseudo-terminal
    /// and all output comes as stdout.
    pub tty: bool,
    /// Give it stdin; without, its stdin is empty.
    pub stdin: bool,
    /// Kill it and fail after this long (exec probes); `None` lets it run
    /// until it ends or the caller goes.
    pub timeout: Option<Duration>,
}

/// A piece of an exec'd command's output, as it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecChunk {
    /// Bytes written to stdout (or to the terminal).
    Stdout(Vec<u8>),
    /// Bytes written to stderr.
    Stderr(Vec<u8>),
}

/// The streams of one exec, as the runtime sees them.
#[derive(Debug)]
pub struct ExecStreams {
    /// Bytes for the command's stdin as they are typed; when every sender is
    /// gone, stdin ends (on a terminal: a Ctrl-D, as at a keyboard).
    pub stdin: mpsc::Receiver<Vec<u8>>,
    /// New terminal sizes (with `tty`): the first before or right after the
    /// start, then on every change.
    pub resize: mpsc::Receiver<TerminalSize>,
    /// Where the output goes as it comes. When its receiver is gone the
    /// caller has gone, and the command is killed.
    pub output: mpsc::Sender<ExecChunk>,
}

impl ExecStreams {
    /// Streams with no stdin and no resizes, and the receiver of the output.
    pub fn without_input() -> (ExecStreams, mpsc::Receiver<ExecChunk>) {
        let (_, stdin) = mpsc::channel(1);
        let (_, resize) = mpsc::channel(1);
        let (output, received) = mpsc::channel(16);
        let streams = ExecStreams {
            stdin,
            resize,
            output,
        };
        (streams, received)
    }
}

/// The text of a runtime's refusal of an exec in a container that does not run.
pub(crate) fn not_running(id: &str) -> RuntimeError {
    RuntimeError::Other(format!("container {id:?} is not running"))
}

/// Whether labels say their sandbox or container belongs to the pod `uid`.
pub(crate) fn of_pod(pod_labels: &BTreeMap<String, String>, uid: &str) -> bool {
    pod_labels.get(labels::POD_UID).is_some_and(|l| l == uid)
}

/// What runs containers for the kubelet: containerd, plain processes, or a
/// simulation. Calls are idempotent where CRI's are (stopping a stopped
/// container, removing a removed one, succeed).
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's name, as `--runtime` spells it: "containerd", "process", "hollow".
    fn name(&self) -> &'static str;

    /// Makes sure the image is present locally. Without a registry, a missing
    /// image is [`RuntimeError::ImageNeverPull`].
    async fn ensure_image(&self, image: &str) -> Result<()>;

    /// Creates and starts a pod's sandbox; returns its ID.
    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<SandboxId>;

    /// Stops a sandbox: kills what still runs in it and tears its network down.
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;

    /// Removes a stopped sandbox and its containers.
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;

    /// Every sandbox this runtime holds for the kubelet.
    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>>;

    /// The sandboxes of the pod `uid` (CRI's ListPodSandbox with a label
    /// filter): what a pod worker reads on every sync. By default the whole
    /// list, filtered; a runtime that can filter first should.
    async fn pod_sandboxes(&self, uid: &str) -> Result<Vec<SandboxStatus>> {
        let all = self.list_pod_sandboxes().await?;
        Ok(all.into_iter().filter(|s| of_pod(&s.labels, uid)).collect())
    }

    /// Creates a container in a sandbox (not started); returns its ID.
    async fn create_container(
        &self,
        sandbox: &str,
        config: &ContainerConfig,
    ) -> Result<ContainerId>;

    /// Starts a created container.
    async fn start_container(&self, id: &str) -> Result<()>;

    /// Stops a container: SIGTERM, then SIGKILL after `grace`.
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()>;

    /// Removes a stopped container.
    async fn remove_container(&self, id: &str) -> Result<()>;

    /// Every container this runtime holds for the kubelet, in any state.
    async fn list_containers(&self) -> Result<Vec<ContainerStatus>>;

    /// The containers of the pod `uid` (CRI's ListContainers with a label
    /// filter). By default the whole list, filtered.
    async fn pod_containers(&self, uid: &str) -> Result<Vec<ContainerStatus>> {
        let all = self.list_containers().await?;
        Ok(all.into_iter().filter(|c| of_pod(&c.labels, uid)).collect())
    }

    /// Runs a command in a running container, streaming: stdin and resizes
    /// go in and output comes out through `streams` while it runs. Returns
    /// its exit code once it has ended and all its output is sent. What a
    /// runtime cannot do (a terminal, stdin) is [`RuntimeError::Unsupported`].
    async fn exec(&self, id: &str, request: &ExecRequest, streams: ExecStreams) -> Result<i32>;

    /// Runs `command` to its end with no stdin, its output gathered, as exec
    /// probes need: [`Runtime::exec`] killed after `timeout`.
    async fn exec_sync(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let request = ExecRequest {
            command: command.to_vec(),
            timeout: Some(timeout),
            ..ExecRequest::default()
        };
        let (streams, mut chunks) = ExecStreams::without_input();
        let mut output = ExecOutput::default();
        let gather = async {
            while let Some(chunk) = chunks.recv().await {
                match chunk {
                    ExecChunk::Stdout(data) => output.stdout.extend(data),
                    ExecChunk::Stderr(data) => output.stderr.extend(data),
                }
            }
        };
        let (exit_code, ()) = tokio::join!(self.exec(id, &request, streams), gather);
        output.exit_code = exit_code?;
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn with_limits(limits: &[(&str, &str)]) -> Container {
        let limits = limits
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
        Container {
            resources: Some(ResourceRequirements {
                limits: Some(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_s_limits_become_its_cgroup_settings() {
        let limits = Resources::limits_of(&with_limits(&[("cpu", "250m"), ("memory", "32Mi")]));
        assert_eq!(
            limits,
            Resources {
                cpu_limit_millis: Some(250),
                memory_limit_bytes: Some(32 * 1024 * 1024),
            }
        );
        let whole = Resources::limits_of(&with_limits(&[("cpu", "1.5"), ("memory", "1G")]));
        assert_eq!(whole.cpu_limit_millis, Some(1500));
        assert_eq!(whole.memory_limit_bytes, Some(1_000_000_000));
    }

    #[test]
    fn no_limits_and_requests_alone_are_no_limits() {
        assert_eq!(
            Resources::limits_of(&Container::default()),
            Resources::default()
        );
        let requests_only = Container {
            resources: Some(ResourceRequirements {
                requests: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(Resources::limits_of(&requests_only), Resources::default());
    }
}
