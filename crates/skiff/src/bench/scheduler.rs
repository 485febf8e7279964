//! `skiff bench scheduler --nodes N --pods M`: pods scheduled and bound per
//! second, as kube-scheduler's `scheduler_perf` measures them.
//!
//! Unlike `kv` and `api`, this benchmark brings its own cluster: a store on a
//! temporary directory (its log synced to disk as `skiff up`'s is) and the API
//! server over it, in this process (skiff-testing's `TestCluster`, API only),
//! reached through the API server's in-process gRPC channel. The N nodes and M
//! pods are real objects in it, and every binding is a real write through the
//! API, as `scheduler_perf` runs against a real kube-apiserver and etcd. The
//! workload itself — pods with requests, one zone spread constraint, one
//! anti-affinity group — is `skiff_scheduler::bench`'s, which documents it.
//!
//! The text report:
//!
//! ```text
//! nodes=1000 pods=10000 bound=10000 duration=8.12s
//! throughput=1231.5 pods/s
//! scheduling attempt p50=310us p99=1.20ms
//! binding p50=4.10ms p99=19.2ms
//! cache memory per node=3.1KiB (resident set growth while caching 1000 nodes)
//! ```
//!
//! # Caveats
//! - The store, the API server, the scheduler and the load generator share
//!   the machine's cores, as `scheduler_perf` shares them with its apiserver.
//! - Creating the nodes and pods is not measured; at thousands it takes a
//!   while, and its progress is written to stderr.

use std::time::Duration;

use serde::Serialize;
use skiff_scheduler::bench::{bench, BenchOptions, BenchReport};
use skiff_scheduler::scheduler::Percentiles;
use skiff_testing::TestCluster;

use super::common::{format_latency, BenchError, OutputFormat};

/// What `skiff bench scheduler` does; built from its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Simulated nodes.
    pub nodes: usize,
    /// Pods to schedule.
    pub pods: usize,
    /// Record a `Scheduled` Event per pod, as kube-scheduler does.
    pub events: bool,
}

impl Default for Config {
    fn default() -> Self {
        let options = BenchOptions::default();
        Config {
            nodes: options.nodes,
            pods: options.pods,
            events: options.record_scheduled_events,
        }
    }
}

impl Config {
    /// Refuses runs that cannot finish or would measure nothing.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |reason: String| Err(BenchError::InvalidConfig(reason));
        if self.nodes == 0 {
            return invalid("--nodes must be at least 1".into());
        }
        if self.pods == 0 {
            return invalid("--pods must be at least 1".into());
        }
        // Every twentieth pod wants a host of its own.
        let solo = self.pods.div_ceil(20);
        if solo > self.nodes {
            return invalid(format!(
                "--pods {} has {solo} pods that each want a node of their own; give at least --nodes {solo}",
                self.pods
            ));
        }
        Ok(())
    }
}

/// One percentile pair, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyUs {
    /// Samples taken.
    pub count: usize,
    /// The median.
    pub p50_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
}

impl From<Percentiles> for LatencyUs {
    fn from(p: Percentiles) -> Self {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        LatencyUs {
            count: p.count,
            p50_us: micros(p.p50),
            p99_us: micros(p.p99),
        }
    }
}

/// The result of one `skiff bench scheduler` run, as printed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SchedulerReport {
    /// Nodes created.
    pub nodes: usize,
    /// Pods created.
    pub pods: usize,
    /// Pods bound when the run ended (all of them unless something failed).
    pub bound: usize,
    /// Seconds from the scheduler's start until the last pod was bound.
    pub duration_s: f64,
    /// `bound / duration_s`.
    pub throughput: f64,
    /// Scheduling attempts: one cycle each, binding excluded.
    pub attempt: LatencyUs,
    /// Bindings: the `pods/binding` write through the API.
    pub binding: LatencyUs,
    /// Resident bytes per node of the scheduler's cache; absent where
    /// `/proc/self/statm` cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_bytes_per_node: Option<u64>,
}

impl SchedulerReport {
    fn new(config: &Config, report: &BenchReport) -> SchedulerReport {
        SchedulerReport {
            nodes: report.nodes,
            pods: config.pods,
            bound: report.pods,
            duration_s: report.elapsed.as_secs_f64(),
            throughput: report.pods_per_second,
            attempt: report.attempts.into(),
            binding: report.bindings.into(),
            cache_bytes_per_node: report.cache_bytes_per_node,
        }
    }

    /// The report in the requested format, ending with a newline.
    pub fn render(&self, format: OutputFormat) -> Result<String, BenchError> {
        match format {
            OutputFormat::Text => Ok(self.to_text()),
            OutputFormat::Json => Ok(serde_json::to_string(self)? + "\n"),
        }
    }

    /// The text form shown in the module doc.
    pub fn to_text(&self) -> String {
        let pair = |l: &LatencyUs| {
            format!(
                "p50={} p99={}",
                format_latency(l.p50_us),
                format_latency(l.p99_us)
            )
        };
        let memory = match self.cache_bytes_per_node {
            Some(bytes) => format!(
                "{:.1}KiB (resident set growth while caching {} nodes)",
                bytes as f64 / 1024.0,
                self.nodes
            ),
            None => "unknown (/proc/self/statm not readable)".to_string(),
        };
        format!(
            "nodes={} pods={} bound={} duration={:.2}s\n\
             throughput={:.1} pods/s\n\
             scheduling attempt {}\n\
             binding {}\n\
             cache memory per node={memory}\n",
            self.nodes,
            self.pods,
            self.bound,
            self.duration_s,
            self.throughput,
            pair(&self.attempt),
            pair(&self.binding),
        )
    }
}

/// Starts the cluster, runs the workload and reports on it.
pub(crate) async fn run(config: &Config) -> Result<SchedulerReport, BenchError> {
    let setup = |reason: String| BenchError::ApiSetup {
        workload: "scheduler".into(),
        reason,
    };
    let cluster = TestCluster::builder()
        .api_only()
        .start()
        .await
        .map_err(|e| setup(e.to_string()))?;
    let client = cluster.client().await.map_err(|e| setup(e.to_string()))?;
    eprintln!(
        "prepare: creating {} nodes and {} pods (not measured)",
        config.nodes, config.pods
    );
    let options = BenchOptions {
        nodes: config.nodes,
        pods: config.pods,
        record_scheduled_events: config.events,
        ..BenchOptions::default()
    };
    let report = bench(client, options)
        .await
        .map_err(|e| BenchError::Scheduler(e.to_string()))?;
    cluster.stop().await;
    Ok(SchedulerReport::new(config, &report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SchedulerReport {
        SchedulerReport {
            nodes: 1000,
            pods: 10_000,
            bound: 10_000,
            duration_s: 8.123,
            throughput: 1231.49,
            attempt: LatencyUs {
                count: 10_000,
                p50_us: 310,
                p99_us: 1200,
            },
            binding: LatencyUs {
                count: 10_000,
                p50_us: 4100,
                p99_us: 19_200,
            },
            cache_bytes_per_node: Some(3174),
        }
    }

    #[test]
    fn the_text_report_is_five_stable_lines() {
        assert_eq!(
            sample().to_text(),
            "nodes=1000 pods=10000 bound=10000 duration=8.12s\n\
             throughput=1231.5 pods/s\n\
             scheduling attempt p50=310us p99=1.20ms\n\
             binding p50=4.10ms p99=19.2ms\n\
             cache memory per node=3.1KiB (resident set growth while caching 1000 nodes)\n"
        );
    }

    #[test]
    fn more_solo_pods_than_nodes_are_refused_before_anything_starts() {
        let config = Config {
            nodes: 10,
            pods: 201,
            events: true,
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--nodes 11"), "{err}");
        assert!(Config {
            pods: 200,
            ..config
        }
        .validate()
        .is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_run_binds_every_pod_and_reports_each_figure() {
        let config = Config {
            nodes: 6,
            pods: 40,
            events: true,
        };
        let report = run(&config).await.expect("the benchmark runs");
        assert_eq!((report.nodes, report.pods, report.bound), (6, 40, 40));
        assert!(report.throughput > 0.0);
        assert!(report.attempt.count >= 40, "{:?}", report.attempt);
        assert_eq!(report.binding.count, 40);
        assert!(report.attempt.p50_us <= report.attempt.p99_us);
        let json: serde_json::Value =
            serde_json::from_str(&report.render(OutputFormat::Json).expect("renders"))
                .expect("the JSON report parses");
        assert_eq!(json["bound"], 40);
        assert!(json["binding"]["p99_us"].is_u64());
        let text = report.to_text();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.starts_with("nodes=6 pods=40 bound=40 "), "{text}");
    }
}
