//! skiff's node agent: registers its Node, renews its Lease, and runs the pods
//! bound to it through a container runtime (containerd with the runc v2 shim, plain
//! processes, or a hollow simulation for scale tests).
//!
//! # Layout
//! - [`runtime`]: the [`runtime::Runtime`] trait every container runtime implements
//!   (CRI's calls: sandboxes, containers, exec), and its error and status types;
//!   [`runtime::process`], [`runtime::hollow`] and [`runtime::containerd`]
//!   implement it.
//! - [`image`]: OCI image layout tarballs, imported into containerd, and a
//!   builder for tiny ones.
//! - [`cni`]: pod networking through the standard CNI plugins.
//! - [`clock`]: injected wall-clock time.
//! - [`logs`]: container logs in CRI's format, written and read.
//! - [`volume`]: volumes (emptyDir, hostPath, configMap, secret) and env
//!   resolution (ConfigMap, Secret, downward API).
//! - [`probe`]: liveness, readiness and startup probes.
//! - [`node`]: Node registration, node status and the node Lease.
//! - `context`: what the kubelet's parts share.
//! - `kubelet`: [`run`] — the main loop, the pod informer, one worker per pod
//!   (`pod_worker`), the relist (PLEG) and housekeeping.
//! - `server`: the kubelet's HTTP server (port 10250): container logs, and
//!   exec streamed over an upgraded connection (`server/exec.rs`).
//! - [`pod`]: the pure pod sync — from spec and observed containers to actions
//!   and a PodStatus; CrashLoopBackOff.
//!
//! # Where to start
//! [`run`], then `pod_worker.rs` (one pod's loop), then [`pod::sync`] (the
//! decisions, as a pure function with its table of tests).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
pub mod cni;
pub mod containerd;
pub mod image;
pub mod logs;
pub mod node;
pub mod pod;
pub mod probe;
pub mod runtime;
pub mod volume;

mod config;
mod context;
mod error;
mod events;
mod kubelet;
mod pod_worker;
mod server;

use std::sync::Arc;

pub use config::{Config, RuntimeChoice};
pub use error::Error;
pub use kubelet::run_with_runtime;

use clock::SystemClock;
use runtime::containerd::ContainerdRuntime;
use runtime::hollow::HollowRuntime;
use runtime::process::{ProcessConfig, ProcessRuntime};
use runtime::Runtime;

/// Runs the kubelet with the runtime `config.runtime` names, until
/// `shutdown`. See the crate doc.
pub async fn run(
    config: Config,
    client: skiff_client::Client,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), Error> {
    let runtime: Arc<dyn Runtime> = match &config.runtime {
        RuntimeChoice::Process => {
            let process = ProcessConfig {
                root_dir: config.root_dir.join("process"),
                pod_ip: config.node_ip,
            };
            Arc::new(ProcessRuntime::open(process).await?)
        }
        RuntimeChoice::Containerd(containerd) => {
            let runtime = ContainerdRuntime::connect(containerd.clone()).await?;
            // Containers that ran on while no kubelet was here write their
            // output to the log again.
            if let Err(error) = runtime.resume_logs().await {
                tracing::warn!(%error, "cannot reattach the logs of running containers");
            }
            Arc::new(runtime)
        }
        RuntimeChoice::Hollow(hollow) => {
            Arc::new(HollowRuntime::new(hollow.clone(), Arc::new(SystemClock)))
        }
    };
    run_with_runtime(config, client, runtime, Arc::new(SystemClock), shutdown).await
}
