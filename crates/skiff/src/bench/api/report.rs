//! What `skiff bench api` is told ([`Workload`], [`Config`]) and what it
//! reports ([`ApiReport`]), as plain data shared by every workload.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

use super::super::common::{
    format_latency, normalize_endpoint, BenchError, Latency, OutputFormat, Tally,
};

/// Watch streams per connection by default; HTTP/2 servers commonly cap a connection at
/// 100 to 250 concurrent streams.
const WATCHERS_PER_CONN: usize = 100;

/// What `skiff bench api` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Closed-loop pod creates.
    Create,
    /// Many watchers, one paced writer.
    Watch,
    /// Full lists of a namespace of pods.
    List,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Create => "create",
            Workload::Watch => "watch",
            Workload::List => "list",
        })
    }
}

/// What `skiff bench api` does, as plain data; built from the command line in `cli.rs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The API server to dial, normalized (`http://host:port`).
    pub server: String,
    /// The workload.
    pub workload: Workload,
    /// The namespace the workload's pods live in.
    pub namespace: String,
    /// Concurrent creating clients (create, and the list workload's preparation).
    pub clients: usize,
    /// gRPC connections the clients (or watchers) share.
    pub conns: usize,
    /// How long create and watch run.
    pub duration: Duration,
    /// Watch streams of the watch workload.
    pub watchers: usize,
    /// Writes per second of the watch workload's writer.
    pub rate: u32,
    /// Pods the list workload lists.
    pub pods: u64,
    /// Timed lists of the list workload.
    pub repetitions: u32,
    /// The lists' resourceVersion: empty for the newest state (read from the store), `"0"`
    /// for whatever the server has cached.
    pub resource_version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: "http://127.0.0.1:6443".to_string(),
            workload: Workload::Create,
            namespace: Config::default_namespace(Workload::Create),
            clients: 64,
            conns: 8,
            duration: Duration::from_secs(10),
            watchers: 1000,
            rate: 100,
            pods: 10_000,
            repetitions: 10,
            resource_version: String::new(),
        }
    }
}

impl Config {
    /// The namespace a workload uses unless told otherwise: one per workload, so a list
    /// counts only the pods made for it.
    pub fn default_namespace(workload: Workload) -> String {
        format!("bench-{workload}")
    }

    /// The default number of connections: one per client up to eight, and for watch one
    /// per [`WATCHERS_PER_CONN`] watchers, at most sixteen.
    pub fn default_conns(workload: Workload, clients: usize, watchers: usize) -> usize {
        match workload {
            Workload::Watch => watchers.div_ceil(WATCHERS_PER_CONN).clamp(1, 16),
            Workload::Create | Workload::List => clients.clamp(1, 8),
        }
    }

    /// Refuses configurations that cannot run or would measure nothing.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |reason: &str| Err(BenchError::InvalidConfig(reason.to_string()));
        normalize_endpoint(&self.server)?;
        if self.namespace.is_empty() {
            return invalid("--namespace must not be empty");
        }
        if self.clients == 0 {
            return invalid("--clients must be at least 1");
        }
        if self.conns == 0 {
            return invalid("--conns must be at least 1");
        }
        match self.workload {
            Workload::Create | Workload::Watch if self.duration.is_zero() => {
                invalid("--duration must be positive")
            }
            Workload::Watch if self.watchers == 0 => invalid("--watchers must be at least 1"),
            Workload::Watch if self.rate == 0 => invalid("--rate must be at least 1"),
            Workload::List if self.pods == 0 => invalid("--pods must be at least 1"),
            Workload::List if self.repetitions == 0 => invalid("--repetitions must be at least 1"),
            _ => Ok(()),
        }
    }
}

/// Counts specific to the watch workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WatchCounts {
    /// Watch streams open during the run.
    pub watchers: usize,
    /// Writes per second the writer aimed at.
    pub rate: u32,
    /// Writes (patches) that succeeded.
    pub writes: u64,
    /// Events expected: `watchers × writes`.
    pub expected: u64,
    /// Expected events a watcher had not received when it gave up, summed over watchers.
    pub missed: u64,
    /// Events that arrived before the writer had the write's answer (counted with a
    /// latency of zero in the report's main latency).
    pub before_response: u64,
    /// Latency of the same events from sending the write, which includes the write.
    pub latency_from_send: Latency,
    /// The writer's own request latency.
    pub write_latency: Latency,
}

/// Counts specific to the list workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListCounts {
    /// Pods the workload made sure exist.
    pub pods: u64,
    /// Items in the last successful list.
    pub items: u64,
    /// The lists' resourceVersion.
    pub resource_version: String,
}

/// The result of one `skiff bench api` run, as printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiReport {
    /// The workload.
    pub workload: Workload,
    /// The namespace used.
    pub namespace: String,
    /// Concurrent clients (watch: watchers; list: one).
    pub clients: usize,
    /// gRPC connections they shared.
    pub conns: usize,
    /// Wall-clock seconds the measured part took.
    pub duration_s: f64,
    /// Successful operations: creates, events received or lists.
    pub ops: u64,
    /// Failed requests, broken streams and short lists.
    pub errors: u64,
    /// `ops` per second of `duration_s`.
    pub throughput: f64,
    /// Latency of successful operations (watch: the writer having the write's answer
    /// to a watcher having its event).
    pub latency: Latency,
    /// The longest time, in milliseconds, with no create succeeding (create only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_gap_ms: Option<f64>,
    /// Watch counts, for watch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchCounts>,
    /// List counts, for list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<ListCounts>,
}

impl ApiReport {
    /// A report of `tally` over `elapsed`, without the workload's own counts.
    pub(super) fn new(config: &Config, clients: usize, tally: &Tally, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        ApiReport {
            workload: config.workload,
            namespace: config.namespace.clone(),
            clients,
            conns: config.conns,
            duration_s: seconds,
            ops: tally.ops,
            errors: tally.errors,
            throughput: if seconds > 0.0 {
                tally.ops as f64 / seconds
            } else {
                0.0
            },
            latency: Latency::from_histogram(&tally.latencies),
            longest_gap_ms: None,
            watch: None,
            list: None,
        }
    }

    /// The report in the requested format, ending with a newline.
    pub fn render(&self, format: OutputFormat) -> Result<String, BenchError> {
        match format {
            OutputFormat::Text => Ok(self.to_text()),
            OutputFormat::Json => Ok(serde_json::to_string(self)? + "\n"),
        }
    }

    /// The text form, in the style of `skiff bench kv`:
    ///
    /// ```text
    /// workload=create namespace=bench-create clients=64 conns=8 duration=10.0s
    /// creates=51234 errors=0 throughput=5123.4 creates/s
    /// latency p50=11.2ms p90=15.0ms p99=21.3ms p99.9=40.1ms max=52.0ms
    /// longest gap between successes=40.1ms
    /// ```
    ///
    /// Watch counts `events` and adds the writer's counts and latency; list counts `lists`
    /// and adds the items listed.
    pub fn to_text(&self) -> String {
        let (count, who) = match self.workload {
            Workload::Create => ("creates", "clients"),
            Workload::Watch => ("events", "watchers"),
            Workload::List => ("lists", "clients"),
        };
        let mut text = format!(
            "workload={} namespace={} {who}={} conns={} duration={:.1}s\n\
             {count}={} errors={} throughput={:.1} {count}/s\n\
             latency {}\n",
            self.workload,
            self.namespace,
            self.clients,
            self.conns,
            self.duration_s,
            self.ops,
            self.errors,
            self.throughput,
            percentiles(&self.latency),
        );
        if let Some(gap) = self.longest_gap_ms {
            let _ = writeln!(text, "longest gap between successes={gap:.1}ms");
        }
        if let Some(watch) = &self.watch {
            let _ = writeln!(
                text,
                "watch rate={}/s writes={} expected={} missed={} before-response={}\n\
                 latency from send {}\n\
                 write latency {}",
                watch.rate,
                watch.writes,
                watch.expected,
                watch.missed,
                watch.before_response,
                percentiles(&watch.latency_from_send),
                percentiles(&watch.write_latency),
            );
        }
        if let Some(list) = &self.list {
            let _ = writeln!(
                text,
                "list pods={} items={} resource-version={:?}",
                list.pods, list.items, list.resource_version
            );
        }
        text
    }
}

/// `p50=… p90=… p99=… p99.9=… max=…`.
fn percentiles(l: &Latency) -> String {
    format!(
        "p50={} p90={} p99={} p99.9={} max={}",
        format_latency(l.p50_us),
        format_latency(l.p90_us),
        format_latency(l.p99_us),
        format_latency(l.p999_us),
        format_latency(l.max_us),
    )
}
