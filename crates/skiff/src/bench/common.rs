//! What every `skiff bench` workload shares: connections, the stop condition
//! ([`Budget`]), error counting ([`ErrorLog`]), latency histograms ([`Tally`],
//! [`Latency`]), the errors ([`BenchError`]), and the key-value operations
//! ([`Op`]) with the [`Report`] printed at the end of their runs (`kv::report`
//! builds it).
//!
//! Every other module of `bench` imports from this one and this one from none
//! of them: [`BenchError::ApiSetup`] names the failed API workload as text.
//!
//! # Caveats
//! Connections are plain `http://`: skiff is built without a TLS stack.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use skiff_proto::conn::Coalesce;
use tonic::transport::{Channel, Endpoint};

/// How long one connection attempt may take before the endpoint counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one request may take before it counts as an error; keeps every loop bounded
/// even when a server stops answering.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many distinct error messages are printed to stderr; the rest are only counted.
const PRINTED_ERRORS: usize = 5;

/// The largest latency the histograms hold; longer ones are clamped to it.
const MAX_LATENCY: Duration = Duration::from_secs(60);

/// Everything that stops a benchmark before it reports.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag's value makes no sense (zero clients, an empty key space, …).
    #[error("invalid benchmark configuration: {0}")]
    InvalidConfig(String),
    /// An endpoint is not a URL skiff can dial.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: String,
    },
    /// No gRPC connection could be made to an endpoint.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint dialled.
        endpoint: String,
        /// The transport error, with its causes.
        reason: String,
    },
    /// The workload could not be set up (a watch was refused, the key space not readable).
    #[error("cannot set up the {op} benchmark: {reason}")]
    Setup {
        /// The workload being set up.
        op: Op,
        /// What went wrong.
        reason: String,
    },
    /// An API benchmark could not be set up (the namespace refused, a watch not opened).
    #[error("cannot set up the {workload} benchmark: {reason}")]
    ApiSetup {
        /// The workload being set up, as `--workload` names it (`create`, `watch`, `list`).
        workload: String,
        /// What went wrong.
        reason: String,
    },
    /// The scheduler benchmark stopped before every pod was bound.
    #[error("the scheduler benchmark failed: {0}")]
    Scheduler(String),
    /// The report could not be encoded as JSON.
    #[error("cannot encode the report: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The operation a benchmark run performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Write a random value to a key.
    Put,
    /// Read one key, linearizably.
    Get,
    /// Read one key from the member's local state.
    GetSerializable,
    /// Compare-and-set one key on its mod_revision.
    Txn,
    /// Receive the events of a paced writer on many watch streams.
    Watch,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::GetSerializable => "get-serializable",
            Op::Txn => "txn",
            Op::Watch => "watch",
        })
    }
}

/// How the final report is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Three or four `name=value` lines, stable enough to paste into docs.
    #[default]
    Text,
    /// One JSON object, for scripts.
    Json,
}

/// Turns an endpoint as users write it (`127.0.0.1:2379`, `http://host:2379/`) into the
/// URL to dial; `https://` is refused because skiff has no TLS stack.
pub(crate) fn normalize_endpoint(endpoint: &str) -> Result<String, BenchError> {
    let invalid = |reason: &str| BenchError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let url = if trimmed.starts_with("https://") {
        return Err(invalid("TLS is not supported; use http://"));
    } else if trimmed.starts_with("http://") {
        trimmed.to_string()
    } else if trimmed.contains("://") {
        return Err(invalid("only http:// endpoints are supported"));
    } else {
        format!("http://{trimmed}")
    };
    Endpoint::from_shared(url.clone()).map_err(|err| invalid(&error_chain(&err)))?;
    Ok(url)
}

/// Opens `conns` gRPC connections, spread over `endpoints` round-robin.
///
/// Connections are made eagerly so that an unreachable endpoint fails here, with its
/// name, rather than as a stream of request errors.
pub(crate) async fn connect(
    endpoints: &[String],
    conns: usize,
) -> Result<Vec<Channel>, BenchError> {
    let mut channels = Vec::with_capacity(conns);
    for endpoint in endpoints.iter().cycle().take(conns) {
        let cannot_connect = |reason: String| BenchError::Connect {
            endpoint: endpoint.clone(),
            reason,
        };
        let target = Endpoint::from_shared(endpoint.clone())
            .map_err(|err| cannot_connect(error_chain(&err)))?;
        let connecting = target.connect_with_connector(tower::service_fn(open_connection));
        let channel = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| cannot_connect(format!("no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(|err| cannot_connect(error_chain(&err)))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// A TCP connection to `uri`'s host and port, without Nagle's delay, whose
/// writes are gathered until the clients that are ready have all written
/// (`skiff_proto::conn`): the requests of many clients leave in
/// one segment instead of one each, which leaves more of the machine's CPU to
/// the store being measured.
async fn open_connection(
    uri: tonic::transport::Uri,
) -> std::io::Result<hyper_util::rt::TokioIo<Coalesce<tokio::net::TcpStream>>> {
    let host = uri.host().unwrap_or("127.0.0.1");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(hyper_util::rt::TokioIo::new(Coalesce::new(stream)))
}

/// An error and its causes on one line: tonic's transport errors say only "transport
/// error" at the top and keep the useful part ("Connection refused") in their sources.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    with_causes(err.to_string(), err)
}

/// `text` followed by the causes of `err` that it does not already say.
fn with_causes(mut text: String, err: &dyn std::error::Error) -> String {
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Parses `--duration`: plain seconds (`10`, `2.5`) or with a unit (`10s`, `500ms`, `1m`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(seconds) => {
            Duration::try_from_secs_f64(seconds).map_err(|err| format!("{text:?}: {err}"))
        }
        Err(_) => crate::flags::parse_duration(text),
    }
}

/// When the clients stop: after a wall-clock deadline or after a number of operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Start no operation at or after this instant (`--duration`).
    At(Instant),
    /// Start exactly this many operations in total, over all clients (`--total`).
    After(u64),
}

/// The operations the clients may still start, shared by all of them.
///
/// Each operation gets a sequence number, which `--sequential-keys` turns into its key,
/// so that a `--total` load writes every key of the key space exactly once.
#[derive(Debug)]
pub(crate) struct Budget {
    stop: Stop,
    issued: AtomicU64,
}

impl Budget {
    /// A budget that ends at `stop`.
    pub(crate) fn new(stop: Stop) -> Self {
        Budget {
            stop,
            issued: AtomicU64::new(0),
        }
    }

    /// Claims the next operation, or `None` once the budget is spent. `now` is passed in
    /// so the stop rule can be tested without a clock.
    pub(crate) fn next(&self, now: Instant) -> Option<u64> {
        match self.stop {
            Stop::At(deadline) if now >= deadline => None,
            Stop::At(_) => Some(self.issued.fetch_add(1, Ordering::Relaxed)),
            Stop::After(total) => {
                let seq = self.issued.fetch_add(1, Ordering::Relaxed);
                (seq < total).then_some(seq)
            }
        }
    }
}

/// Counts nothing itself but prints the first few distinct error messages to stderr, so a
/// misconfigured run says why without flooding the terminal.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    printed: Mutex<BTreeSet<String>>,
}

impl ErrorLog {
    /// Notes one failed request; prints it if its message is new and the limit not reached.
    pub(crate) fn note(&self, message: &str) {
        // A poisoned lock only means another client panicked mid-insert; the set is fine.
        let mut printed = self.printed.lock().unwrap_or_else(|p| p.into_inner());
        if printed.len() < PRINTED_ERRORS && printed.insert(message.to_string()) {
            eprintln!("error: {message}");
            if printed.len() == PRINTED_ERRORS {
                eprintln!("error: (further distinct errors are counted, not printed)");
            }
        }
    }
}

/// Awaits one request for at most [`REQUEST_TIMEOUT`] and answers its result; a failure
/// (put in words by `describe`) or a timeout (named `what … timed out`) is noted in `log`,
/// counted in `errors`, and answers `None`, so a load loop goes on with its next request.
pub(crate) async fn bounded<T, E>(
    what: &str,
    log: &ErrorLog,
    errors: &mut u64,
    describe: impl FnOnce(&E) -> String,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    let failure = match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(answer)) => return Some(answer),
        Ok(Err(err)) => describe(&err),
        Err(_) => format!("{what} timed out after {REQUEST_TIMEOUT:?}"),
    };
    *errors += 1;
    log.note(&failure);
    None
}

/// Waits for every client task and merges what they counted. A client task cannot fail
/// on its own; if one panicked, its operations are lost and the run says so (one error)
/// rather than hiding it.
pub(crate) async fn merge_clients(
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
    errors: &ErrorLog,
) -> Tally {
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
    total
}

/// Resident memory (VmRSS) of the process `pid` (a number, or `self`), from
/// /proc; the error says what could not be read.
pub(crate) fn rss_of(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("no VmRSS in {path}"))
}

/// The text of a failed gRPC call, as printed by [`ErrorLog`]: its code, its message and,
/// for transport failures, their causes ("Unavailable: tcp connect error: Connection refused").
pub(crate) fn status_message(status: &tonic::Status) -> String {
    with_causes(format!("{:?}: {}", status.code(), status.message()), status)
}

/// A latency histogram in microseconds, 1µs to a minute, three significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY.as_micros() as u64, 3)
        .expect("constant histogram bounds are valid")
}

/// Records one latency, clamped into the histogram's range.
pub(crate) fn record_latency(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

/// What one client counted; merged over all clients into a [`Report`].
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// Latencies of successful operations, in microseconds.
    pub(crate) latencies: Histogram<u64>,
    /// Successful operations (for watch: events received).
    pub(crate) ops: u64,
    /// Failed operations.
    pub(crate) errors: u64,
    /// Transactions whose compare held.
    pub(crate) txn_succeeded: u64,
    /// Transactions whose compare failed.
    pub(crate) txn_failed: u64,
    /// The longest time with no operation completing successfully (a
    /// failover shows up here).
    pub(crate) longest_gap: Duration,
}

/// Tracks the longest interval between successful operations of all clients.
pub(crate) struct Gaps {
    start: std::time::Instant,
    last_us: std::sync::atomic::AtomicU64,
    longest_us: std::sync::atomic::AtomicU64,
}

impl Gaps {
    pub(crate) fn new(start: std::time::Instant) -> Gaps {
        Gaps {
            start,
            last_us: Default::default(),
            longest_us: Default::default(),
        }
    }

    /// Notes an operation that succeeded now.
    pub(crate) fn success(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.start.elapsed().as_micros() as u64;
        let last = self.last_us.fetch_max(now, Relaxed);
        if now > last {
            self.longest_us.fetch_max(now - last, Relaxed);
        }
    }

    /// The longest gap so far, counting the time since the last success as
    /// one (a run whose writes stopped succeeding shows it).
    pub(crate) fn longest(&self) -> Duration {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.start.elapsed().as_micros() as u64;
        let tail = now.saturating_sub(self.last_us.load(Relaxed));
        Duration::from_micros(self.longest_us.load(Relaxed).max(tail))
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latencies: new_histogram(),
            ops: 0,
            errors: 0,
            txn_succeeded: 0,
            txn_failed: 0,
            longest_gap: Duration::ZERO,
        }
    }
}

impl Tally {
    /// Counts one successful operation that took `latency`.
    pub(crate) fn record_ok(&mut self, latency: Duration) {
        self.ops += 1;
        record_latency(&mut self.latencies, latency);
    }

    /// Adds another client's counts to these.
    pub(crate) fn merge(&mut self, other: &Tally) {
        // Both histograms share the same bounds, so adding cannot fail.
        self.latencies
            .add(&other.latencies)
            .expect("histograms with equal bounds add");
        self.ops += other.ops;
        self.errors += other.errors;
        self.txn_succeeded += other.txn_succeeded;
        self.txn_failed += other.txn_failed;
        self.longest_gap = self.longest_gap.max(other.longest_gap);
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// The slowest recorded operation.
    pub max_us: u64,
    /// The arithmetic mean.
    pub mean_us: f64,
}

impl Latency {
    /// Reads the percentiles out of a histogram; an empty one gives all zeros.
    pub(crate) fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Latency {
                p50_us: 0,
                p90_us: 0,
                p99_us: 0,
                p999_us: 0,
                max_us: 0,
                mean_us: 0.0,
            };
        }
        Latency {
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        }
    }
}

/// Transaction outcomes of a txn run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TxnCounts {
    /// Compare held; the put was applied.
    pub succeeded: u64,
    /// Compare failed (another client changed the key); the range was returned instead.
    pub failed: u64,
}

/// Counts specific to the watch workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WatchCounts {
    /// Watch streams open during the run.
    pub watchers: usize,
    /// Puts the writer completed.
    pub puts: u64,
    /// Events expected (`watchers × puts`) but not received before the watchers gave up.
    pub missed: u64,
}

/// The result of one benchmark run, as printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The workload.
    pub op: Op,
    /// Concurrent clients (for watch: watchers).
    pub clients: usize,
    /// gRPC connections the clients shared.
    pub conns: usize,
    /// Threads the load generator ran on.
    pub threads: usize,
    /// Bytes per value written.
    pub value_size: usize,
    /// Wall-clock seconds the measured part took.
    pub duration_s: f64,
    /// Successful operations (for watch: events received).
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// `ops` per second of `duration_s`.
    pub throughput: f64,
    /// Latency of successful operations (for watch: put sent to event received).
    pub latency: Latency,
    /// The longest time, in milliseconds, with no operation succeeding.
    pub longest_gap_ms: f64,
    /// Transaction outcomes, for txn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<TxnCounts>,
    /// Watch counts, for watch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchCounts>,
}

impl Report {
    /// The report in the requested format, ending with a newline.
    pub fn render(&self, format: OutputFormat) -> Result<String, BenchError> {
        match format {
            OutputFormat::Text => Ok(self.to_text()),
            OutputFormat::Json => Ok(serde_json::to_string(self)? + "\n"),
        }
    }

    /// The text form:
    ///
    /// ```text
    /// op=put clients=16 conns=8 threads=1 value-size=256 duration=10.0s
    /// ops=123456 errors=0 throughput=12345.6 ops/s
    /// latency p50=1.23ms p90=2.10ms p99=4.56ms p99.9=9.80ms max=12.3ms
    /// ```
    ///
    /// txn adds `txn succeeded=… failed=…`; watch counts events instead of ops and adds
    /// `watch watchers=… puts=… missed=…`.
    pub fn to_text(&self) -> String {
        let (count_name, unit) = match self.op {
            Op::Watch => ("events", "events/s"),
            _ => ("ops", "ops/s"),
        };
        let l = &self.latency;
        let mut text = format!(
            "op={} clients={} conns={} threads={} value-size={} duration={:.1}s\n\
             {count_name}={} errors={} throughput={:.1} {unit}\n\
             latency p50={} p90={} p99={} p99.9={} max={}\n\
             longest gap between successes={:.1}ms\n",
            self.op,
            self.clients,
            self.conns,
            self.threads,
            self.value_size,
            self.duration_s,
            self.ops,
            self.errors,
            self.throughput,
            format_latency(l.p50_us),
            format_latency(l.p90_us),
            format_latency(l.p99_us),
            format_latency(l.p999_us),
            format_latency(l.max_us),
            self.longest_gap_ms,
        );
        if let Some(txn) = self.txn {
            let _ = writeln!(
                text,
                "txn succeeded={} failed={}",
                txn.succeeded, txn.failed
            );
        }
        if let Some(watch) = self.watch {
            let _ = writeln!(
                text,
                "watch watchers={} puts={} missed={}",
                watch.watchers, watch.puts, watch.missed
            );
        }
        text
    }
}

/// A latency in microseconds with three significant digits and a readable unit:
/// `850us`, `1.23ms`, `12.3ms`, `123ms`, `1.23s`.
pub(crate) fn format_latency(micros: u64) -> String {
    let ms = micros as f64 / 1000.0;
    match micros {
        0..1_000 => format!("{micros}us"),
        1_000..10_000 => format!("{ms:.2}ms"),
        10_000..100_000 => format!("{ms:.1}ms"),
        100_000..1_000_000 => format!("{ms:.0}ms"),
        _ => format!("{:.2}s", ms / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_without_a_scheme_are_dialled_over_http() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:2379").unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            normalize_endpoint("http://etcd-0:2379/").unwrap(),
            "http://etcd-0:2379"
        );
    }

    #[test]
    fn tls_and_other_schemes_are_refused_with_a_reason() {
        let err = normalize_endpoint("https://etcd:2379").unwrap_err();
        assert!(err.to_string().contains("TLS is not supported"), "{err}");
        let err = normalize_endpoint("unix:///run/etcd.sock").unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        assert!(normalize_endpoint("  ").is_err());
    }

    #[test]
    fn durations_are_seconds_unless_a_unit_says_otherwise() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("ten").is_err());
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("10d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn a_total_budget_hands_out_exactly_that_many_sequence_numbers() {
        let budget = Budget::new(Stop::After(3));
        let now = Instant::now();
        let seqs: Vec<_> = std::iter::from_fn(|| budget.next(now)).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(budget.next(now), None, "a spent budget stays spent");
    }

    #[test]
    fn a_deadline_budget_stops_at_the_deadline() {
        let start = Instant::now();
        let budget = Budget::new(Stop::At(start + Duration::from_secs(1)));
        assert_eq!(budget.next(start), Some(0));
        assert_eq!(budget.next(start + Duration::from_millis(999)), Some(1));
        assert_eq!(budget.next(start + Duration::from_secs(1)), None);
    }

    #[test]
    fn latencies_are_formatted_with_three_significant_digits() {
        assert_eq!(format_latency(0), "0us");
        assert_eq!(format_latency(850), "850us");
        assert_eq!(format_latency(1_234), "1.23ms");
        assert_eq!(format_latency(12_345), "12.3ms");
        assert_eq!(format_latency(123_456), "123ms");
        assert_eq!(format_latency(1_234_567), "1.23s");
    }

    #[test]
    fn an_empty_histogram_reports_zero_latency() {
        let latency = Latency::from_histogram(&new_histogram());
        assert_eq!(latency.p50_us, 0);
        assert_eq!(latency.max_us, 0);
    }

    #[test]
    fn percentiles_come_from_the_merged_histogram_of_all_clients() {
        let mut first = Tally::default();
        let mut second = Tally::default();
        for ms in 1..=50 {
            first.record_ok(Duration::from_millis(ms));
        }
        for ms in 51..=100 {
            second.record_ok(Duration::from_millis(ms));
        }
        second.errors = 2;
        first.merge(&second);
        let latency = Latency::from_histogram(&first.latencies);
        assert_eq!(first.ops, 100);
        assert_eq!(first.errors, 2);
        // Three significant digits: each value is within 0.1% of the exact one.
        assert!(latency.p50_us.abs_diff(50_000) <= 50, "{latency:?}");
        assert!(latency.p99_us.abs_diff(99_000) <= 99, "{latency:?}");
        assert!(latency.max_us.abs_diff(100_000) <= 100, "{latency:?}");
    }

    #[test]
    fn latencies_beyond_a_minute_are_clamped_not_lost() {
        let mut tally = Tally::default();
        tally.record_ok(Duration::from_secs(3600));
        assert_eq!(tally.ops, 1);
        assert!(tally.latencies.max() >= MAX_LATENCY.as_micros() as u64);
    }

    fn sample_report(op: Op) -> Report {
        Report {
            op,
            clients: 16,
            conns: 8,
            threads: 1,
            value_size: 256,
            duration_s: 10.0,
            ops: 123_456,
            errors: 0,
            throughput: 12_345.6,
            latency: Latency {
                p50_us: 1_234,
                p90_us: 2_100,
                p99_us: 4_560,
                p999_us: 9_800,
                max_us: 12_300,
                mean_us: 1_400.0,
            },
            longest_gap_ms: 12.5,
            txn: None,
            watch: None,
        }
    }

    #[test]
    fn the_text_report_is_four_stable_lines() {
        assert_eq!(
            sample_report(Op::Put).to_text(),
            "op=put clients=16 conns=8 threads=1 value-size=256 duration=10.0s\n\
             ops=123456 errors=0 throughput=12345.6 ops/s\n\
             latency p50=1.23ms p90=2.10ms p99=4.56ms p99.9=9.80ms max=12.3ms\n\
             longest gap between successes=12.5ms\n"
        );
    }

    #[test]
    fn gaps_keep_the_longest_interval_between_successes() {
        let start = std::time::Instant::now() - Duration::from_millis(50);
        let gaps = Gaps::new(start);
        gaps.success();
        let first = gaps.longest();
        assert!(first >= Duration::from_millis(50), "{first:?}");
        std::thread::sleep(Duration::from_millis(5));
        gaps.success();
        assert_eq!(
            gaps.longest(),
            first,
            "a shorter gap does not replace a longer one"
        );
    }

    #[test]
    fn txn_and_watch_reports_add_their_own_line() {
        let mut txn = sample_report(Op::Txn);
        txn.txn = Some(TxnCounts {
            succeeded: 100,
            failed: 23,
        });
        assert!(txn.to_text().ends_with("txn succeeded=100 failed=23\n"));

        let mut watch = sample_report(Op::Watch);
        watch.watch = Some(WatchCounts {
            watchers: 16,
            puts: 7716,
            missed: 0,
        });
        let text = watch.to_text();
        assert!(text.contains("\nevents=123456 errors=0 throughput=12345.6 events/s\n"));
        assert!(text.ends_with("watch watchers=16 puts=7716 missed=0\n"));
    }

    #[test]
    fn the_json_report_names_the_op_as_on_the_command_line() {
        let json = sample_report(Op::GetSerializable)
            .render(OutputFormat::Json)
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["op"], "get-serializable");
        assert_eq!(value["ops"], 123_456);
        assert_eq!(value["latency"]["p99_us"], 4_560);
        assert!(value.get("txn").is_none(), "absent counts are left out");
    }

    #[test]
    fn error_chains_name_every_cause_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = tonic::Status::from_error(Box::new(refused));
        let text = status_message(&status);
        assert!(text.starts_with("Unknown: "), "{text}");
        assert_eq!(text.matches("refused").count(), 1, "{text}");
    }
}
