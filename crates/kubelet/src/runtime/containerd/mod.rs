//! The containerd runtime: pods as real containers, through containerd's
//! gRPC API and its `io.containerd.runc.v2` shim (runc), with root
//! filesystems from the overlayfs snapshotter, all in a containerd namespace
//! of skiff's own (`skiff`), apart from whatever else uses the same containerd.
//!
//! A pod *sandbox* is a network namespace the runtime creates (`ip netns add`)
//! and wires to the node's bridge through CNI ([`crate::cni`]), plus a
//! containerd container record without a task that remembers it
//! ([`record`]). Each of the pod's containers is a containerd container whose
//! OCI spec ([`spec`]) joins that network namespace, so the pod's containers
//! share one IP and reach each other on localhost; its task runs under the
//! shim, with its output copied into the kubelet's log file in CRI's format
//! ([`log`]). Nothing is kept in the kubelet's memory: every answer comes from
//! listing containerd, so a restarted kubelet finds what it runs.
//!
//! # Layout
//! - [`connection`]: the gRPC channel and the namespace header.
//! - [`record`]: the labels sandboxes and containers are recorded with.
//! - [`spec`]: the OCI runtime spec (pure).
//! - [`log`]: CRI log records and the FIFO copiers.
//! - [`netns`]: named network namespaces.
//! - `sandbox.rs`, `container.rs`, `exec.rs`: the [`Runtime`] calls, by subject.
//!
//! # Where to start
//! [`ContainerdRuntime::connect`], then `container.rs`'s `start`.
//!
//! # Caveats
//! No pause container: the network namespace is held by a bind mount, and
//! the pod's containers do not share IPC or PID namespaces. No `/etc/hosts`
//! or `/etc/resolv.conf` management, no seccomp or AppArmor profile, no user
//! namespaces, no TTY for containers (exec has one on request, resized with
//! ResizePty; the end of stdin on it is a Ctrl-D, not CloseIO). Log output is
//! copied by the kubelet process: while it is down the shim buffers, and
//! [`ContainerdRuntime::resume_logs`] reattaches after a restart. OOM kills are
//! read from the container's memory cgroup, which exists until the task is
//! deleted (on remove).

mod container;
mod exec;
pub mod log;
pub mod netns;
pub mod record;
mod sandbox;
pub mod spec;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::containerd::Connection;

use crate::cni::{Cni, NetworkConfig};
use crate::containerd::ConnectError;
use crate::image::{ImageError, ImageStore};
use crate::runtime::{
    ContainerConfig, ContainerId, ContainerStatus, ExecRequest, ExecStreams, Result, Runtime,
    RuntimeError, SandboxConfig, SandboxId, SandboxStatus,
};

/// How to reach containerd and lay out the node's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerdConfig {
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    /// The containerd namespace everything is created in.
    pub namespace: String,
    /// Where the runtime keeps each container's stdio FIFOs.
    pub state_dir: PathBuf,
    /// The containerd runtime (shim) containers run under.
    pub shim: String,
    /// The pod network.
    pub network: NetworkConfig,
}

impl Default for ContainerdConfig {
    fn default() -> ContainerdConfig {
        ContainerdConfig {
            socket: PathBuf::from("/run/containerd/containerd.sock"),
            namespace: "skiff".to_string(),
            state_dir: PathBuf::from("/run/skiff/containerd"),
            shim: "io.containerd.runc.v2".to_string(),
            network: NetworkConfig::default(),
        }
    }
}

/// The [`Runtime`] over containerd.
#[derive(Clone, Debug)]
pub struct ContainerdRuntime {
    connection: Connection,
    images: ImageStore,
    cni: Cni,
    config: ContainerdConfig,
}

impl ContainerdRuntime {
    /// Connects to containerd. Nothing is started or changed: state is
    /// whatever containerd already holds in the namespace.
    pub async fn connect(config: ContainerdConfig) -> Result<ContainerdRuntime> {
        let connection = Connection::connect(&config.socket, &config.namespace).await?;
        std::fs::create_dir_all(&config.state_dir).map_err(|error| {
            RuntimeError::Other(format!(
                "cannot create {}: {error}",
                config.state_dir.display()
            ))
        })?;
        Ok(ContainerdRuntime {
            images: ImageStore::new(connection.clone()),
            cni: Cni::new(config.network.clone()),
            connection,
            config,
        })
    }

    /// The images in skiff's containerd namespace (to import tarballs).
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    fn state_dir_of(&self, container: &str) -> PathBuf {
        self.config.state_dir.join(container)
    }
}

/// A containerd error as a runtime error, naming the call.
fn containerd_error(what: &str, status: tonic::Status) -> RuntimeError {
    RuntimeError::Other(format!("containerd {what}: {}", status.message()))
}

#[async_trait::async_trait]
impl Runtime for ContainerdRuntime {
    fn name(&self) -> &'static str {
        "containerd"
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        self.images
            .resolve(image)
            .await
            .map(|_| ())
            .map_err(|error| image_error(error, image))
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<SandboxId> {
        self.run_sandbox(config).await
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.stop_sandbox(id).await
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.remove_sandbox(id).await
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        self.list_sandboxes().await
    }

    async fn create_container(
        &self,
        sandbox: &str,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        self.create(sandbox, config).await
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.start(id).await
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        self.stop(id, grace).await
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.remove(id).await
    }

    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        self.list().await
    }

    async fn exec(&self, id: &str, request: &ExecRequest, streams: ExecStreams) -> Result<i32> {
        self.run_exec(id, request, streams).await
    }
}

impl From<ConnectError> for RuntimeError {
    fn from(error: ConnectError) -> RuntimeError {
        RuntimeError::Other(error.to_string())
    }
}

/// The runtime error for a container whose image is `image`: a missing one
/// is ErrImageNeverPull (nothing can be pulled), anything else ErrImagePull.
pub(crate) fn image_error(error: ImageError, image: &str) -> RuntimeError {
    match error {
        ImageError::NotPresent(_) => RuntimeError::ImageNeverPull {
            image: image.to_string(),
        },
        other => RuntimeError::ImagePull {
            image: image.to_string(),
            message: other.to_string(),
        },
    }
}
