//! `skiff bench api`: load through the API server's gRPC service, as Kubernetes clients
//! put it on kube-apiserver.
//!
//! `skiff bench kv` measures the store; this measures everything above it too: decoding,
//! defaulting and validating an object, the etcd transaction, the watch cache's fan-out
//! and encoding JSON for every watcher. Three workloads, each in its own namespace
//! (`bench-<workload>` unless `--namespace` says otherwise), created first if absent:
//! - `create`: `--clients` closed-loop clients (as in [`super::kv`]) each create distinct
//!   small pods until `--duration` ends. This is the write path of a Deployment scaling up.
//! - `watch`: `--watchers` watch streams on the namespace's pods, spread over the
//!   connections, and one writer patching pods at `--rate` per second. Every
//!   write carries its run, sequence number and send time in an annotation
//!   ([`SENT_ANNOTATION`]); the writer notes when each write was answered, so each watcher
//!   measures the time from the write's answer to its event (the fan-out alone) and from
//!   sending the write (fan-out plus the write). This is the traffic of a cluster of
//!   informers (kubelets, controllers) watching pods.
//! - `list`: `--pods` pods are created once (not measured; existing ones are kept), then
//!   `--repetitions` full lists of the namespace are timed, as a controller's informer
//!   lists when it starts.
//!
//! # Layout
//! - this module: configuration, the report, the create and list workloads and the
//!   helpers they share with watch (the namespace, pod JSON, closed-loop creates).
//! - [`watch`]: the watch workload, its paced writer and its receivers.
//!
//! The run of the watch workload:
//! 1. create the `watch::WATCH_PODS` pods the writer patches unless they exist (not measured),
//!    and list the namespace for the resourceVersion to start from;
//! 2. open every watch from that resourceVersion, so no event of the measured writes can
//!    be missed however late a stream starts;
//! 3. write at the requested pace until `--duration`, in an open loop (a write is sent
//!    on time even while the one before is unanswered): each write merge-patches the
//!    stamp of the next pod, round-robin;
//! 4. tell the watchers how many writes succeeded and let them drain their events, giving
//!    up `watch::DRAIN_GRACE` after the writer stops; whatever is still missing is reported.
//!
//! # Caveats
//! - Created pods are not deleted: the `create` namespace grows with every run.
//! - An event can reach a watcher before the writer has the write's answer; it counts
//!   as zero latency from the answer, and the report says how many did
//!   (`before-response`).
//! - The writer cycles over `watch::WATCH_PODS` pods; a write slower than one lap (a second at
//!   the default rate) overlaps the next write to the same pod, and events of one pod may
//!   then arrive in either order (both are counted).
//! - List latency ends when the whole answer is received; decoding it on the client (to
//!   count the items) is not timed.
//! - One process generates the load, on the same machine as the server in most runs;
//!   parsing a thousand watch streams costs the client CPU the server then lacks.

mod watch;

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use skiff_proto::api::api_client::ApiClient;
use skiff_proto::api::{CreateRequest, ListRequest, ResourceRef};
use tonic::transport::Channel;

use super::common::{
    connect, error_chain, format_latency, normalize_endpoint, status_message, BenchError, Budget,
    ErrorLog, Gaps, Latency, OutputFormat, Stop, Tally, REQUEST_TIMEOUT,
};

/// The annotation every write of the watch workload carries: `<run id>/<nanoseconds since
/// the run began>`.
pub(crate) const SENT_ANNOTATION: &str = "bench.skiff.dev/sent";

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
    fn new(config: &Config, clients: usize, tally: &Tally, elapsed: Duration) -> Self {
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

/// Runs the configured workload and reports on it.
pub(crate) async fn run(config: &Config) -> Result<ApiReport, BenchError> {
    let channels = connect(std::slice::from_ref(&config.server), config.conns).await?;
    let mut client = api_client(&channels[0]);
    ensure_namespace(&mut client, config).await?;
    match config.workload {
        Workload::Create => run_create(config, &channels).await,
        Workload::Watch => watch::run(config, &channels).await,
        Workload::List => run_list(config, &channels).await,
    }
}

/// An API client on `channel` that accepts answers of any size (a list of ten thousand
/// pods is several megabytes, beyond tonic's 4 MiB default).
fn api_client(channel: &Channel) -> ApiClient<Channel> {
    ApiClient::new(channel.clone()).max_decoding_message_size(usize::MAX)
}

/// The pods of `namespace`, or the pod `name` in it.
fn pods_ref(namespace: &str, name: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        version: "v1".into(),
        resource: "pods".into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    })
}

/// A small pod as JSON: one container, and the send-time annotation when given.
fn pod_json(name: &str, sent: Option<&str>) -> Vec<u8> {
    let annotations = match sent {
        Some(sent) => format!(r#","annotations":{{"{SENT_ANNOTATION}":"{sent}"}}"#),
        None => String::new(),
    };
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"{annotations}}},"spec":{{"containers":[{{"name":"app","image":"registry.k8s.io/pause:3.9"}}]}}}}"#
    )
    .into_bytes()
}

/// A name no earlier run used, so creates never collide with leftovers.
fn run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Creates the namespace unless it exists.
async fn ensure_namespace(
    client: &mut ApiClient<Channel>,
    config: &Config,
) -> Result<(), BenchError> {
    let namespace = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": config.namespace},
    });
    let request = CreateRequest {
        r#ref: Some(ResourceRef {
            version: "v1".into(),
            resource: "namespaces".into(),
            ..Default::default()
        }),
        object: serde_json::to_vec(&namespace)?,
        ..Default::default()
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, client.create(request)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) if status.code() == tonic::Code::AlreadyExists => Ok(()),
        Ok(Err(status)) => Err(setup(
            config,
            format!(
                "cannot create namespace {}: {}",
                config.namespace,
                error_chain(&status)
            ),
        )),
        Err(_) => Err(setup(
            config,
            format!("no answer to creating a namespace in {REQUEST_TIMEOUT:?}"),
        )),
    }
}

fn setup(config: &Config, reason: String) -> BenchError {
    BenchError::ApiSetup {
        workload: config.workload,
        reason,
    }
}

/// The names of the namespace's pods and the list's resourceVersion.
async fn list_names(
    client: &mut ApiClient<Channel>,
    config: &Config,
) -> Result<(HashSet<String>, String), BenchError> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default)]
        name: String,
        #[serde(default, rename = "resourceVersion")]
        resource_version: String,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct List {
        metadata: Meta,
        #[serde(default)]
        items: Vec<Item>,
    }
    let request = ListRequest {
        r#ref: pods_ref(&config.namespace, ""),
        ..Default::default()
    };
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, client.list(request))
        .await
        .map_err(|_| {
            setup(
                config,
                format!("no answer to a list in {REQUEST_TIMEOUT:?}"),
            )
        })?
        .map_err(|status| {
            setup(
                config,
                format!("cannot list pods: {}", error_chain(&status)),
            )
        })?
        .into_inner();
    let list: List = serde_json::from_slice(&answer.list)
        .map_err(|err| setup(config, format!("the pod list is not a list: {err}")))?;
    let names = list.items.into_iter().map(|i| i.metadata.name).collect();
    Ok((names, list.metadata.resource_version))
}

// ---------------------------------------------------------------------------------------
// create

async fn run_create(config: &Config, channels: &[Channel]) -> Result<ApiReport, BenchError> {
    let run = run_id();
    let start = Instant::now();
    let stop = Stop::At(start + config.duration);
    let names = Arc::new(move |seq: u64| format!("bench-{run}-{seq}"));
    let (tally, gaps) = create_pods(config, channels, stop, names).await;
    let mut report = ApiReport::new(config, config.clients, &tally, start.elapsed());
    report.longest_gap_ms = Some(gaps.as_secs_f64() * 1000.0);
    Ok(report)
}

/// The name of the pod a create with a sequence number makes.
type Names = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// Runs `config.clients` closed-loop clients creating pods named by `names` until `stop`;
/// returns their merged tally and the longest gap between successful creates.
async fn create_pods(
    config: &Config,
    channels: &[Channel],
    stop: Stop,
    names: Names,
) -> (Tally, Duration) {
    let budget = Arc::new(Budget::new(stop));
    let errors = Arc::new(ErrorLog::default());
    let gaps = Arc::new(Gaps::new(Instant::now()));
    let tasks: Vec<_> = (0..config.clients)
        .map(|index| {
            tokio::spawn(create_loop(
                api_client(&channels[index % channels.len()]),
                config.namespace.clone(),
                names.clone(),
                budget.clone(),
                errors.clone(),
                gaps.clone(),
            ))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        match task.await {
            Ok(tally) => total.merge(&tally),
            Err(err) => {
                errors.note(&format!("a client stopped: {err}"));
                total.errors += 1;
            }
        }
    }
    (total, gaps.longest())
}

/// One client: claims a sequence number, creates that pod, records how long it took.
async fn create_loop(
    mut client: ApiClient<Channel>,
    namespace: String,
    names: Names,
    budget: Arc<Budget>,
    errors: Arc<ErrorLog>,
    gaps: Arc<Gaps>,
) -> Tally {
    let mut tally = Tally::default();
    while let Some(seq) = budget.next(Instant::now()) {
        let request = CreateRequest {
            r#ref: pods_ref(&namespace, ""),
            object: pod_json(&names(seq), None),
            ..Default::default()
        };
        let started = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, client.create(request)).await {
            Ok(Ok(_)) => {
                tally.record_ok(started.elapsed());
                gaps.success();
            }
            Ok(Err(status)) => {
                tally.errors += 1;
                errors.note(&status_message(&status));
            }
            Err(_) => {
                tally.errors += 1;
                errors.note(&format!("create timed out after {REQUEST_TIMEOUT:?}"));
            }
        }
    }
    tally
}

// ---------------------------------------------------------------------------------------
// list

async fn run_list(config: &Config, channels: &[Channel]) -> Result<ApiReport, BenchError> {
    let mut client = api_client(&channels[0]);
    let (existing, _) = list_names(&mut client, config).await?;
    let missing: Vec<String> = (0..config.pods)
        .map(|index| format!("list-{index:06}"))
        .filter(|name| !existing.contains(name))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "prepare: creating {} pods in namespace {} (not measured)",
            missing.len(),
            config.namespace
        );
        let started = Instant::now();
        let stop = Stop::After(missing.len() as u64);
        let missing = Arc::new(missing);
        let names = Arc::new(move |seq: u64| missing[seq as usize].clone());
        let (tally, _) = create_pods(config, channels, stop, names).await;
        eprintln!(
            "prepare: created {} pods in {:.1}s, {} errors",
            tally.ops,
            started.elapsed().as_secs_f64(),
            tally.errors
        );
        if tally.errors > 0 {
            return Err(setup(
                config,
                format!("{} of the pods to list could not be created", tally.errors),
            ));
        }
    }

    let errors = ErrorLog::default();
    let mut tally = Tally::default();
    let mut items = 0;
    let start = Instant::now();
    for _ in 0..config.repetitions {
        let request = ListRequest {
            r#ref: pods_ref(&config.namespace, ""),
            resource_version: config.resource_version.clone(),
            ..Default::default()
        };
        let started = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, client.list(request)).await;
        let elapsed = started.elapsed();
        match answer {
            Ok(Ok(answer)) => match count_items(&answer.into_inner().list) {
                Ok(count) if count >= config.pods => {
                    tally.record_ok(elapsed);
                    items = count;
                }
                Ok(count) => {
                    tally.errors += 1;
                    errors.note(&format!(
                        "a list returned {count} items, fewer than the {} pods created",
                        config.pods
                    ));
                }
                Err(err) => {
                    tally.errors += 1;
                    errors.note(&format!("the pod list is not a list: {err}"));
                }
            },
            Ok(Err(status)) => {
                tally.errors += 1;
                errors.note(&status_message(&status));
            }
            Err(_) => {
                tally.errors += 1;
                errors.note(&format!("list timed out after {REQUEST_TIMEOUT:?}"));
            }
        }
    }
    let mut report = ApiReport::new(config, 1, &tally, start.elapsed());
    report.list = Some(ListCounts {
        pods: config.pods,
        items,
        resource_version: config.resource_version.clone(),
    });
    Ok(report)
}

/// The number of items in a list object, without decoding them.
fn count_items(list: &[u8]) -> Result<u64, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Items {
        #[serde(default)]
        items: Vec<serde::de::IgnoredAny>,
    }
    let items: Items = serde_json::from_slice(list)?;
    Ok(items.items.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_counted_without_decoding_them() {
        let list = br#"{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[{"a":1},{"b":[2]},{}]}"#;
        assert_eq!(count_items(list).unwrap(), 3);
        assert_eq!(
            count_items(br#"{"kind":"PodList","metadata":{}}"#).unwrap(),
            0
        );
        assert!(count_items(b"not json").is_err());
    }

    #[test]
    fn watchers_are_spread_about_a_hundred_to_a_connection() {
        assert_eq!(Config::default_conns(Workload::Watch, 64, 1000), 10);
        assert_eq!(Config::default_conns(Workload::Watch, 64, 5), 1);
        assert_eq!(Config::default_conns(Workload::Watch, 64, 100_000), 16);
        assert_eq!(Config::default_conns(Workload::Create, 64, 1000), 8);
        assert_eq!(Config::default_conns(Workload::List, 2, 1000), 2);
    }

    #[test]
    fn configurations_that_measure_nothing_are_refused() {
        let ok = Config::default();
        assert!(ok.validate().is_ok());
        let cases = [
            (
                Config {
                    clients: 0,
                    ..ok.clone()
                },
                "--clients",
            ),
            (
                Config {
                    workload: Workload::Watch,
                    watchers: 0,
                    ..ok.clone()
                },
                "--watchers",
            ),
            (
                Config {
                    workload: Workload::Watch,
                    rate: 0,
                    ..ok.clone()
                },
                "--rate",
            ),
            (
                Config {
                    workload: Workload::List,
                    pods: 0,
                    ..ok.clone()
                },
                "--pods",
            ),
            (
                Config {
                    duration: Duration::ZERO,
                    ..ok.clone()
                },
                "--duration",
            ),
        ];
        for (config, flag) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
        let list_ignores_duration = Config {
            workload: Workload::List,
            duration: Duration::ZERO,
            ..ok
        };
        assert!(list_ignores_duration.validate().is_ok());
    }

    fn sample(workload: Workload) -> ApiReport {
        ApiReport {
            workload,
            namespace: Config::default_namespace(workload),
            clients: 64,
            conns: 8,
            duration_s: 10.0,
            ops: 51_234,
            errors: 0,
            throughput: 5_123.4,
            latency: Latency {
                p50_us: 11_200,
                p90_us: 15_000,
                p99_us: 21_300,
                p999_us: 40_100,
                max_us: 52_000,
                mean_us: 11_500.0,
            },
            longest_gap_ms: None,
            watch: None,
            list: None,
        }
    }

    #[test]
    fn the_create_report_reads_like_the_kv_one() {
        let mut report = sample(Workload::Create);
        report.longest_gap_ms = Some(40.1);
        assert_eq!(
            report.to_text(),
            "workload=create namespace=bench-create clients=64 conns=8 duration=10.0s\n\
             creates=51234 errors=0 throughput=5123.4 creates/s\n\
             latency p50=11.2ms p90=15.0ms p99=21.3ms p99.9=40.1ms max=52.0ms\n\
             longest gap between successes=40.1ms\n"
        );
    }

    #[test]
    fn watch_and_list_reports_add_their_counts() {
        let mut watch = sample(Workload::Watch);
        watch.watch = Some(WatchCounts {
            watchers: 64,
            rate: 100,
            writes: 1000,
            expected: 64_000,
            missed: 0,
            before_response: 3,
            latency_from_send: watch.latency,
            write_latency: watch.latency,
        });
        let text = watch.to_text();
        assert!(text.starts_with("workload=watch namespace=bench-watch watchers=64 "));
        assert!(text.contains("\nevents=51234 errors=0 throughput=5123.4 events/s\n"));
        assert!(text.contains(
            "\nwatch rate=100/s writes=1000 expected=64000 missed=0 before-response=3\n"
        ));
        assert!(text.contains("\nlatency from send p50=11.2ms "));
        assert!(text
            .ends_with("write latency p50=11.2ms p90=15.0ms p99=21.3ms p99.9=40.1ms max=52.0ms\n"));

        let mut list = sample(Workload::List);
        list.list = Some(ListCounts {
            pods: 10_000,
            items: 10_000,
            resource_version: String::new(),
        });
        assert!(list
            .to_text()
            .ends_with("list pods=10000 items=10000 resource-version=\"\"\n"));
        let json: serde_json::Value =
            serde_json::from_str(&list.render(OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(json["workload"], "list");
        assert_eq!(json["list"]["items"], 10_000);
        assert!(json.get("watch").is_none(), "absent counts are left out");
    }
}
