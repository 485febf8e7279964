//! `skiff kubelet`: one node agent, and the choice of its container runtime
//! (also made by `skiff up` for the kubelet it runs).
//!
//! The kubelet registers its Node (labelled `kubernetes.io/hostname`, and
//! `topology.kubernetes.io/zone` and `node.kubernetes.io/instance-type` when
//! given), renews the node's Lease and runs the pods bound to it. Everything
//! it does is `skiff_kubelet::run`'s; this module turns flags into its
//! `Config` and picks the runtime.
//!
//! # Choosing a runtime
//! `--runtime auto` (the default) takes containerd when its socket answers
//! and this process runs as root, as runc needs; otherwise plain processes.
//! `containerd`, `process` and `hollow` choose one outright.
//!
//! # Caveats
//! No TLS to the API server or on the kubelet's own server; the node's IP is
//! a flag, not discovered.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use skiff_client::Client;
use skiff_kubelet::clock::SystemClock;
use skiff_kubelet::runtime::containerd::{ContainerdConfig, ContainerdRuntime};
use skiff_kubelet::runtime::hollow::HollowConfig;
use skiff_kubelet::{Config, RuntimeChoice};
use tokio_util::sync::CancellationToken;

use crate::cli::{KubeletArgs, RuntimeName};
use crate::shutdown::cancel_on_signal;

/// A runtime once `auto` is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// containerd and runc.
    Containerd,
    /// Plain processes.
    Process,
    /// Simulated containers.
    Hollow,
}

/// `auto` is containerd when its socket answers and we are root, else
/// process; the others are taken as named.
pub(crate) fn choose(name: RuntimeName, containerd_reachable: bool, root: bool) -> Runtime {
    match name {
        RuntimeName::Auto if containerd_reachable && root => Runtime::Containerd,
        RuntimeName::Auto | RuntimeName::Process => Runtime::Process,
        RuntimeName::Containerd => Runtime::Containerd,
        RuntimeName::Hollow => Runtime::Hollow,
    }
}

/// Decides `name` on this host: is containerd's socket answering, are we root?
pub(crate) async fn choose_on_host(name: RuntimeName, containerd_socket: &Path) -> Runtime {
    if name != RuntimeName::Auto {
        return choose(name, false, false);
    }
    let reachable = tokio::net::UnixStream::connect(containerd_socket)
        .await
        .is_ok();
    choose(name, reachable, running_as_root())
}

/// Whether this process's effective user is root: `/proc/self` belongs to it.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// What a kubelet is started with, beyond its `Config`.
pub(crate) struct Start {
    /// The kubelet's configuration (its `runtime` is set from `runtime`).
    pub config: Config,
    /// The runtime, decided.
    pub runtime: Runtime,
    /// containerd's socket, for the containerd runtime.
    pub containerd_socket: PathBuf,
    /// OCI image tarballs to import before starting (containerd only).
    pub image_dir: Option<PathBuf>,
}

/// Runs one kubelet until `shutdown`, with the runtime `start` names.
pub(crate) async fn start(
    start: Start,
    client: Client,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut config = start.config;
    tracing::info!(node = %config.node_name, runtime = ?start.runtime, "starting the kubelet");
    match start.runtime {
        Runtime::Containerd => {
            let containerd = ContainerdRuntime::connect(ContainerdConfig {
                socket: start.containerd_socket.clone(),
                ..ContainerdConfig::default()
            })
            .await
            .with_context(|| {
                format!(
                    "connecting to containerd at {}",
                    start.containerd_socket.display()
                )
            })?;
            if let Some(dir) = &start.image_dir {
                let names = containerd
                    .images()
                    .import_directory(dir)
                    .await
                    .with_context(|| format!("importing the images in {}", dir.display()))?;
                tracing::info!(images = ?names, "imported images");
            }
            skiff_kubelet::run_with_runtime(
                config,
                client,
                Arc::new(containerd),
                Arc::new(SystemClock),
                shutdown,
            )
            .await
        }
        Runtime::Process => {
            config.runtime = RuntimeChoice::Process;
            skiff_kubelet::run(config, client, shutdown).await
        }
        Runtime::Hollow => {
            config.runtime = RuntimeChoice::Hollow(HollowConfig::default());
            skiff_kubelet::run(config, client, shutdown).await
        }
    }
    .context("the kubelet")
}

/// The kubelet's `Config` from its flags; `node_name` is decided already.
fn config(args: &KubeletArgs, node_name: String) -> Config {
    Config {
        node_name,
        node_ip: args.node_ip,
        root_dir: args.root_dir.clone(),
        zone: args.zone.clone(),
        instance_type: args.instance_type.clone(),
        listen: (args.port != 0).then(|| SocketAddr::new(args.address, args.port)),
        lease_duration_seconds: args.node_lease_duration_seconds.max(1),
        // As the kubelet's nodeLeaseRenewIntervalFraction: a quarter of the duration.
        lease_renew_interval: Duration::from_secs(args.node_lease_duration_seconds.max(1) as u64)
            / 4,
        node_status_update_frequency: args.node_status_update_frequency,
        ..Config::default()
    }
}

/// `skiff kubelet`: flags to config, then run until a signal.
pub fn run(args: KubeletArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = cancel_on_signal();
        let client = crate::component::client(args.server.server.as_deref())?;
        let node_name = args
            .node_name
            .clone()
            .unwrap_or_else(crate::component::host_name);
        let start = Start {
            config: config(&args, node_name),
            runtime: choose_on_host(args.runtime, &args.containerd_socket).await,
            containerd_socket: args.containerd_socket.clone(),
            image_dir: args.image_dir.clone(),
        };
        self::start(start, client, shutdown).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_containerd_only_when_it_answers_and_we_are_root() {
        assert_eq!(choose(RuntimeName::Auto, true, true), Runtime::Containerd);
        assert_eq!(choose(RuntimeName::Auto, true, false), Runtime::Process);
        assert_eq!(choose(RuntimeName::Auto, false, true), Runtime::Process);
        assert_eq!(choose(RuntimeName::Auto, false, false), Runtime::Process);
    }

    #[test]
    fn a_named_runtime_is_taken_as_named() {
        assert_eq!(
            choose(RuntimeName::Containerd, false, false),
            Runtime::Containerd
        );
        assert_eq!(choose(RuntimeName::Process, true, true), Runtime::Process);
        assert_eq!(choose(RuntimeName::Hollow, true, true), Runtime::Hollow);
    }

    #[test]
    fn the_host_name_is_a_lower_case_node_name() {
        let name = crate::component::host_name();
        assert!(!name.is_empty());
        assert_eq!(name, name.to_ascii_lowercase());
    }
}
