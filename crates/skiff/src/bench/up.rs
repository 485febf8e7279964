//! `skiff bench up`: what it costs to have a cluster.
//!
//! 1. **skiff up, start to a Ready node**: this binary's `skiff up` is started
//!    as a process (a fresh data directory, free ports, `--runtime`), and the
//!    time is taken from the spawn until its Node reports Ready=True through
//!    the API — the moment a pod could be scheduled and run. Repeated `--runs`
//!    times; the median is reported.
//! 2. **skiff up, idle memory**: after the last run's node is Ready and
//!    `--idle` has passed with nothing to do, the resident memory (VmRSS) of
//!    the `skiff up` process.
//! 3. **TestCluster, start to a Ready node**: skiff-testing's in-process
//!    cluster with one hollow node, from `start()` until its node is Ready,
//!    in this process, `--runs` times.
//!
//! # Caveats
//! The API is polled every 2 ms, so times are that much late at most. The
//! first `skiff up` run pays for cold file caches; the median hides it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Args;
use k8s_openapi::api::core::v1::Node;
use serde::Serialize;
use skiff_client::{Api, Client};
use skiff_testing::{Runtime, TestCluster};

use super::common::{parse_duration, rss_of, BenchError};

/// How often the API is asked whether the node is Ready.
const POLL: Duration = Duration::from_millis(2);
/// How long a start may take before the run is given up as failed.
const PATIENCE: Duration = Duration::from_secs(60);
/// The node name `skiff up` is started with.
const NODE: &str = "bench-node";

/// The flags of `skiff bench up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Starts of each kind to take the median of.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// How long `skiff up` idles before its memory is read.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub idle: Duration,
    /// The runtime of `skiff up`'s kubelet.
    #[arg(long, value_enum, default_value_t = UpRuntime::Process)]
    pub runtime: UpRuntime,
}

/// The kubelet runtimes `skiff up` is measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UpRuntime {
    /// Plain child processes.
    Process,
    /// Real containers through containerd (needs root and containerd).
    Containerd,
    /// Simulated containers.
    Hollow,
}

/// What `skiff bench up` measured.
#[derive(Debug, Serialize)]
pub(crate) struct UpReport {
    /// `skiff up`'s starts to a Ready node, in milliseconds, in run order.
    pub up_ms: Vec<f64>,
    /// `skiff up`'s resident memory after idling, in bytes.
    pub up_idle_rss_bytes: u64,
    /// TestCluster's starts to a Ready node, in milliseconds, in run order.
    pub test_cluster_ms: Vec<f64>,
}

impl UpReport {
    /// The report as text: one line a measurement, medians with the range.
    pub(crate) fn render(&self, args: &UpArgs) -> String {
        format!(
            "skiff up (--runtime {}), start to a Ready node: {}\n\
             skiff up, resident memory after {:?} idle: {:.1} MiB\n\
             TestCluster (1 hollow node), start to a Ready node: {}\n",
            runtime_flag(args.runtime),
            summary(&self.up_ms),
            args.idle,
            self.up_idle_rss_bytes as f64 / (1024.0 * 1024.0),
            summary(&self.test_cluster_ms),
        )
    }
}

/// `median 412.0 ms (min 390.1, max 450.3, 5 runs)`.
fn summary(ms: &[f64]) -> String {
    let mut sorted = ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    let (min, max) = (sorted.first(), sorted.last());
    format!(
        "median {median:.1} ms (min {:.1}, max {:.1}, {} runs)",
        min.copied().unwrap_or_default(),
        max.copied().unwrap_or_default(),
        ms.len()
    )
}

fn runtime_flag(runtime: UpRuntime) -> &'static str {
    match runtime {
        UpRuntime::Containerd => "containerd",
        UpRuntime::Process => "process",
        UpRuntime::Hollow => "hollow",
    }
}

fn failed(reason: String) -> BenchError {
    BenchError::ApiSetup {
        workload: "up".into(),
        reason,
    }
}

/// Runs the three measurements.
pub(crate) async fn run(args: &UpArgs) -> Result<UpReport, BenchError> {
    if args.runs == 0 {
        return Err(BenchError::InvalidConfig(
            "--runs must be at least 1".into(),
        ));
    }
    let mut up_ms = Vec::new();
    let mut up_idle_rss_bytes = 0;
    for run in 0..args.runs {
        let last = run + 1 == args.runs;
        let (elapsed, rss) = one_up(args, last).await?;
        up_ms.push(elapsed.as_secs_f64() * 1000.0);
        up_idle_rss_bytes = rss.unwrap_or(up_idle_rss_bytes);
    }
    let mut test_cluster_ms = Vec::new();
    for _ in 0..args.runs {
        test_cluster_ms.push(one_test_cluster().await?.as_secs_f64() * 1000.0);
    }
    Ok(UpReport {
        up_ms,
        up_idle_rss_bytes,
        test_cluster_ms,
    })
}

/// One `skiff up` from spawn to a Ready node; with `measure_idle`, also its
/// memory after idling.
async fn one_up(args: &UpArgs, measure_idle: bool) -> Result<(Duration, Option<u64>), BenchError> {
    let dir = tempfile::tempdir().map_err(|e| failed(format!("a temporary directory: {e}")))?;
    let (api, store, kubelet) = (free_port()?, free_port()?, free_port()?);
    let exe = std::env::current_exe().map_err(|e| failed(format!("this binary's path: {e}")))?;
    let log = std::fs::File::create(dir.path().join("up.log"))
        .map_err(|e| failed(format!("the log file: {e}")))?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(exe)
        .arg("up")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{api}")])
        .args(["--listen-client-urls", &format!("http://127.0.0.1:{store}")])
        .args(["--kubelet-port", &kubelet.to_string()])
        .args(["--runtime", runtime_flag(args.runtime), "--node-name", NODE])
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("starting skiff up: {e}")))?;
    let ready = wait_ready(&format!("http://127.0.0.1:{api}"), started).await;
    let elapsed = started.elapsed();
    let rss = match (&ready, measure_idle, child.id()) {
        (Ok(()), true, Some(pid)) => {
            tokio::time::sleep(args.idle).await;
            Some(rss_of(&pid.to_string()).map_err(failed)?)
        }
        _ => None,
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    ready.map_err(|reason| failed(format!("{reason}; its log:\n{}", log_of(dir.path()))))?;
    Ok((elapsed, rss))
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("up.log")).unwrap_or_default()
}

/// Polls `server` until the node is Ready, giving up after [`PATIENCE`].
async fn wait_ready(server: &str, started: Instant) -> Result<(), String> {
    let mut client = None;
    while started.elapsed() < PATIENCE {
        if client.is_none() {
            client = Client::connect(server.to_string()).await.ok();
        }
        if let Some(client) = &client {
            if node_ready(client, NODE).await {
                return Ok(());
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Err(format!("skiff up's node was not Ready within {PATIENCE:?}"))
}

/// Whether the Node `name` reports Ready=True.
async fn node_ready(client: &Client, name: &str) -> bool {
    let nodes: Api<Node> = Api::all(client.clone());
    let Ok(node) = nodes.get(name).await else {
        return false;
    };
    let conditions = node.status.and_then(|s| s.conditions).unwrap_or_default();
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// One in-process TestCluster with one hollow node, until the node is Ready.
async fn one_test_cluster() -> Result<Duration, BenchError> {
    let started = Instant::now();
    let cluster = TestCluster::builder()
        .nodes(1)
        .runtime(Runtime::Hollow)
        .start()
        .await
        .map_err(|e| failed(format!("TestCluster: {e}")))?;
    let client = cluster
        .client()
        .await
        .map_err(|e| failed(format!("TestCluster's client: {e}")))?;
    while !node_ready(&client, "node-1").await {
        if started.elapsed() > PATIENCE {
            return Err(failed(format!(
                "TestCluster's node was not Ready within {PATIENCE:?}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
    let elapsed = started.elapsed();
    cluster.stop().await;
    Ok(elapsed)
}

fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| failed(format!("a free port: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| failed(format!("a free port: {e}")))?;
    Ok(port.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_median_with_the_range() {
        assert_eq!(
            summary(&[30.0, 10.0, 20.0]),
            "median 20.0 ms (min 10.0, max 30.0, 3 runs)"
        );
        assert_eq!(summary(&[5.0]), "median 5.0 ms (min 5.0, max 5.0, 1 runs)");
    }

    #[tokio::test]
    async fn a_test_cluster_s_node_becomes_ready() {
        let elapsed = one_test_cluster().await.expect("the cluster starts");
        assert!(elapsed > Duration::ZERO);
    }
}
