//! The key-value workloads: put, get, get-serializable and txn.
//!
//! Each client runs a closed loop over one [`KvClient`]: claim an operation from the shared
//! [`Budget`], pick a key, send one request, record its latency. What each operation sends:
//! - `put`: a `PutRequest` of a random value of `--value-size` bytes.
//! - `get`: a linearizable `RangeRequest` of one key. etcd answers it only after confirming
//!   with a quorum (the ReadIndex protocol, Raft thesis §6.4), so it costs a round of
//!   consensus even though nothing is written.
//! - `get-serializable`: the same with `serializable = true`, answered from the member's
//!   local state without consensus: cheaper, and possibly stale.
//! - `txn`: a compare-and-set, the shape of every Kubernetes update: "if the key's
//!   `mod_revision` is still the one I last saw, put; otherwise give me the key". That is
//!   how kube-apiserver turns `resourceVersion` into optimistic concurrency. Clients share
//!   what they learn of each key's mod_revision (as kube-apiserver's watch cache gives every
//!   update the newest resourceVersion it knows), so a compare fails only when another
//!   client changed the key in between. Succeeded and failed transactions are counted
//!   apart; both are successful requests.
//!
//! Reads and transactions need keys to exist, so before they are measured the key space is
//! written once (sequentially, by all clients) unless it is already full, and before txn the
//! keys' mod_revisions are read. That preparation is reported on stderr and not measured.
//!
//! # Caveats
//! - Keys are `<prefix><index>` with a ten-digit decimal index, so the key space is capped at
//!   10^9 keys and keys sort in index order.
//! - Each client reuses one random value for all its puts, as etcd's `benchmark` does; a
//!   store that compressed values would look better than it should.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use skiff_proto::etcdserverpb::kv_client::KvClient;
use skiff_proto::etcdserverpb::{
    compare, request_op, response_op, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tonic::transport::Channel;

use super::common::{
    bounded, error_chain, merge_clients, normalize_endpoint, status_message, BenchError, Budget,
    ErrorLog, Gaps, Latency, Op, Report, Stop, Tally, TxnCounts,
};

/// Bytes at the start of every value of the watch workload that carry its put's send
/// time, so a watcher can tell how long the event took to reach it.
pub(crate) const TIMESTAMP_LEN: usize = 8;

/// Digits in a key's index: fixed, so every key has the same length and sorts by index.
const KEY_DIGITS: usize = 10;

/// Keys per page when reading the key space's mod_revisions before a txn run.
const RANGE_PAGE: i64 = 10_000;

/// The largest key space: indexes up to `MAX_KEY_SPACE` keep [`KEY_DIGITS`] digits, which
/// lets `key_name(prefix, key_space)` serve as the exclusive end of the key space.
pub(crate) const MAX_KEY_SPACE: u64 = 1_000_000_000;

/// What `skiff bench kv` does, as plain data; built from the command line in `cli.rs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Endpoints to dial, already normalized (`http://host:port`).
    pub endpoints: Vec<String>,
    /// The workload.
    pub op: Op,
    /// Concurrent clients (for watch: watchers).
    pub clients: usize,
    /// gRPC connections; clients use them round-robin.
    pub conns: usize,
    /// Threads the load generator runs on (see `bench::runtime`).
    pub threads: usize,
    /// How long to run when `total` is not set.
    pub duration: Duration,
    /// Bytes per value.
    pub value_size: usize,
    /// Keys are chosen among this many.
    pub key_space: u64,
    /// Prefix of every key the benchmark touches.
    pub key_prefix: String,
    /// Stop after this many operations instead of after `duration`.
    pub total: Option<u64>,
    /// Use keys in order (operation n writes key n mod key_space) instead of at random.
    pub sequential_keys: bool,
    /// Puts per second of the watch workload's writer.
    pub put_rate: u32,
    /// Seed of the random key and value choices; client i uses `seed + i`.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            op: Op::Put,
            clients: 16,
            conns: 8,
            threads: Config::default_threads(),
            duration: Duration::from_secs(10),
            value_size: 256,
            key_space: 10_000,
            key_prefix: "/bench/".to_string(),
            total: None,
            sequential_keys: false,
            put_rate: 1000,
            seed: 1,
        }
    }
}

impl Config {
    /// The default number of connections for `clients` clients: one each, at most eight.
    pub fn default_conns(clients: usize) -> usize {
        clients.clamp(1, 8)
    }

    /// The default number of threads: half the machine's cores, rounded up. A
    /// side-by-side benchmark runs its servers on the same machine, and what the load
    /// generator spends is taken from them.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
    }

    /// Refuses configurations that cannot run or would measure nothing.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |reason: String| Err(BenchError::InvalidConfig(reason));
        if self.endpoints.is_empty() {
            return invalid("at least one endpoint is needed".into());
        }
        for endpoint in &self.endpoints {
            normalize_endpoint(endpoint)?;
        }
        if self.clients == 0 {
            return invalid("--clients must be at least 1".into());
        }
        if self.threads == 0 {
            return invalid("--threads must be at least 1".into());
        }
        if self.conns == 0 {
            return invalid("--conns must be at least 1".into());
        }
        if self.key_space == 0 || self.key_space > MAX_KEY_SPACE {
            return invalid(format!("--key-space must be between 1 and {MAX_KEY_SPACE}"));
        }
        if self.key_prefix.is_empty() {
            return invalid("--key-prefix must not be empty".into());
        }
        if self.total.is_none() && self.duration.is_zero() {
            return invalid("--duration must be positive".into());
        }
        if self.total == Some(0) {
            return invalid("--total must be at least 1".into());
        }
        if self.op == Op::Watch && self.value_size < TIMESTAMP_LEN {
            return invalid(format!(
                "watch values carry an {}-byte send timestamp: --value-size must be at least {}",
                TIMESTAMP_LEN, TIMESTAMP_LEN
            ));
        }
        if self.op == Op::Watch && self.put_rate == 0 {
            return invalid("--put-rate must be at least 1".into());
        }
        Ok(())
    }

    /// When the measured run stops, counted from `start`.
    pub(crate) fn stop(&self, start: Instant) -> Stop {
        match self.total {
            Some(total) => Stop::After(total),
            None => Stop::At(start + self.duration),
        }
    }
}

/// The key with index `index`: `<prefix>` followed by the index in [`KEY_DIGITS`] digits.
pub(crate) fn key_name(prefix: &str, index: u64) -> Vec<u8> {
    format!("{prefix}{index:0KEY_DIGITS$}").into_bytes()
}

/// The index of a key made by [`key_name`], or `None` for any other key.
pub(crate) fn key_index(prefix: &str, key: &[u8]) -> Option<u64> {
    let digits = key.strip_prefix(prefix.as_bytes())?;
    if digits.len() != KEY_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The newest mod_revision seen per key index, shared by the txn clients.
#[derive(Clone, Debug, Default)]
pub(crate) struct ModRevisions(Arc<Mutex<HashMap<u64, i64>>>);

impl ModRevisions {
    /// The newest mod_revision seen for key `index`; 0 if none, which etcd's compare
    /// treats as "the key does not exist".
    pub(crate) fn get(&self, index: u64) -> i64 {
        self.lock().get(&index).copied().unwrap_or(0)
    }

    /// Notes that key `index` had `mod_revision`; an older answer arriving late is ignored.
    pub(crate) fn saw(&self, index: u64, mod_revision: i64) {
        let mut map = self.lock();
        let newest = map.entry(index).or_insert(mod_revision);
        *newest = (*newest).max(mod_revision);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, i64>> {
        // Never held across an await, and a map poisoned mid-insert is still a valid map.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How a client picks the key of its next operation.
#[derive(Debug)]
pub(crate) struct KeyChooser {
    key_space: u64,
    /// `None` for sequential keys: the operation's sequence number is its key.
    rng: Option<StdRng>,
}

impl KeyChooser {
    /// Sequential keys if `sequential`, otherwise uniformly random ones from `rng`.
    pub(crate) fn new(key_space: u64, sequential: bool, rng: StdRng) -> Self {
        KeyChooser {
            key_space,
            rng: (!sequential).then_some(rng),
        }
    }

    /// The key index for the operation with sequence number `seq`.
    pub(crate) fn pick(&mut self, seq: u64) -> u64 {
        match &mut self.rng {
            Some(rng) => rng.random_range(0..self.key_space),
            None => seq % self.key_space,
        }
    }
}

/// `len` random bytes: the value a client writes.
pub(crate) fn random_value(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut value = vec![0; len];
    rng.fill_bytes(&mut value);
    value
}

/// Runs put, get, get-serializable or txn against `channels` and reports on it.
pub(crate) async fn run(config: &Config, channels: &[Channel]) -> Result<Report, BenchError> {
    if matches!(config.op, Op::Get | Op::GetSerializable | Op::Txn) {
        prepare(config, channels).await?;
    }
    let seen = ModRevisions::default();
    if config.op == Op::Txn {
        learn_mod_revisions(config, &channels[0], &seen).await?;
    }
    let start = Instant::now();
    let tally = closed_loop(config, config.op, channels, config.stop(start), &seen).await;
    Ok(report(config, &tally, start.elapsed()))
}

/// The report of a put, get, get-serializable, txn or watch run, built from the merged tally and the measured wall-clock time.
pub(crate) fn report(config: &Config, tally: &Tally, elapsed: Duration) -> Report {
    let seconds = elapsed.as_secs_f64();
    let throughput = if seconds > 0.0 {
        tally.ops as f64 / seconds
    } else {
        0.0
    };
    Report {
        op: config.op,
        clients: config.clients,
        conns: config.conns,
        threads: config.threads,
        value_size: config.value_size,
        duration_s: seconds,
        ops: tally.ops,
        errors: tally.errors,
        throughput,
        latency: Latency::from_histogram(&tally.latencies),
        longest_gap_ms: tally.longest_gap.as_secs_f64() * 1000.0,
        txn: (config.op == Op::Txn).then_some(TxnCounts {
            succeeded: tally.txn_succeeded,
            failed: tally.txn_failed,
        }),
        watch: None,
    }
}

/// Writes the whole key space once unless it is already full, so reads find their keys.
async fn prepare(config: &Config, channels: &[Channel]) -> Result<(), BenchError> {
    let mut kv = KvClient::new(channels[0].clone());
    // Keys have a fixed width, so [key 0, key key_space) holds exactly the key space.
    let count = kv
        .range(RangeRequest {
            key: key_name(&config.key_prefix, 0),
            range_end: key_name(&config.key_prefix, config.key_space),
            count_only: true,
            ..Default::default()
        })
        .await
        .map_err(|status| BenchError::Setup {
            op: config.op,
            reason: format!("cannot count the key space: {}", error_chain(&status)),
        })?
        .into_inner()
        .count;
    if u64::try_from(count).unwrap_or(0) >= config.key_space {
        return Ok(());
    }
    eprintln!(
        "prepare: writing {} keys under {} (not measured)",
        config.key_space, config.key_prefix
    );
    let prepare = Config {
        sequential_keys: true,
        ..config.clone()
    };
    let start = Instant::now();
    let stop = Stop::After(config.key_space);
    let tally = closed_loop(&prepare, Op::Put, channels, stop, &ModRevisions::default()).await;
    eprintln!(
        "prepare: wrote {} keys in {:.1}s, {} errors",
        tally.ops,
        start.elapsed().as_secs_f64(),
        tally.errors
    );
    Ok(())
}

/// Reads the mod_revision of every key in the key space, a page at a time, so the first
/// compare-and-set on each key does not fail for want of knowing it.
async fn learn_mod_revisions(
    config: &Config,
    channel: &Channel,
    seen: &ModRevisions,
) -> Result<(), BenchError> {
    let start = Instant::now();
    let mut kv = KvClient::new(channel.clone());
    let range_end = key_name(&config.key_prefix, config.key_space);
    let mut from = key_name(&config.key_prefix, 0);
    let mut learned = 0;
    loop {
        let page = kv
            .range(RangeRequest {
                key: from.clone(),
                range_end: range_end.clone(),
                limit: RANGE_PAGE,
                keys_only: true,
                ..Default::default()
            })
            .await
            .map_err(|status| BenchError::Setup {
                op: config.op,
                reason: format!("cannot read the key space: {}", error_chain(&status)),
            })?
            .into_inner();
        for kv in &page.kvs {
            if let Some(index) = key_index(&config.key_prefix, &kv.key) {
                seen.saw(index, kv.mod_revision);
                learned += 1;
            }
        }
        match page.kvs.last() {
            // The next page starts just after the last key of this one.
            Some(last) if page.more => {
                from = last.key.clone();
                from.push(0);
            }
            _ => break,
        }
    }
    eprintln!(
        "prepare: read the mod_revision of {learned} keys in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `config.clients` clients doing `op` until `stop`, and merges what they counted.
async fn closed_loop(
    config: &Config,
    op: Op,
    channels: &[Channel],
    stop: Stop,
    seen: &ModRevisions,
) -> Tally {
    let budget = Arc::new(Budget::new(stop));
    let errors = Arc::new(ErrorLog::default());
    let gaps = Arc::new(Gaps::new(Instant::now()));
    let mut tasks = Vec::with_capacity(config.clients);
    for index in 0..config.clients {
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(index as u64));
        let client = Client {
            kv: KvClient::new(channels[index % channels.len()].clone()),
            op,
            prefix: config.key_prefix.clone(),
            value: random_value(&mut rng, config.value_size),
            keys: KeyChooser::new(config.key_space, config.sequential_keys, rng),
            seen_mod_revisions: seen.clone(),
        };
        tasks.push(tokio::spawn(client.run(
            budget.clone(),
            errors.clone(),
            gaps.clone(),
        )));
    }
    let mut total = merge_clients(tasks, &errors).await;
    total.longest_gap = gaps.longest();
    total
}

/// What a successful request told us, beyond its latency.
enum Outcome {
    /// A put or a range.
    Done,
    /// A txn whose compare held.
    TxnSucceeded,
    /// A txn whose compare failed.
    TxnFailed,
}

/// One closed-loop client.
struct Client {
    kv: KvClient<Channel>,
    op: Op,
    prefix: String,
    value: Vec<u8>,
    keys: KeyChooser,
    /// For txn: the newest mod_revision any client saw, per key index.
    seen_mod_revisions: ModRevisions,
}

impl Client {
    /// Issues operations until the budget is spent; every request is bounded by
    /// [`REQUEST_TIMEOUT`], so this returns even if the server stops answering.
    async fn run(mut self, budget: Arc<Budget>, errors: Arc<ErrorLog>, gaps: Arc<Gaps>) -> Tally {
        let mut tally = Tally::default();
        while let Some(seq) = budget.next(Instant::now()) {
            let index = self.keys.pick(seq);
            let started = Instant::now();
            let call = self.call(index);
            let answer = bounded("request", &errors, &mut tally.errors, status_message, call);
            if let Some(outcome) = answer.await {
                tally.record_ok(started.elapsed());
                gaps.success();
                match outcome {
                    Outcome::Done => {}
                    Outcome::TxnSucceeded => tally.txn_succeeded += 1,
                    Outcome::TxnFailed => tally.txn_failed += 1,
                }
            }
        }
        tally
    }

    /// Sends the request for key `index`.
    async fn call(&mut self, index: u64) -> Result<Outcome, tonic::Status> {
        let key = key_name(&self.prefix, index);
        match self.op {
            Op::Put | Op::Watch => {
                self.kv
                    .put(PutRequest {
                        key,
                        value: self.value.clone(),
                        ..Default::default()
                    })
                    .await?;
                Ok(Outcome::Done)
            }
            Op::Get | Op::GetSerializable => {
                self.kv
                    .range(RangeRequest {
                        key,
                        serializable: self.op == Op::GetSerializable,
                        ..Default::default()
                    })
                    .await?;
                Ok(Outcome::Done)
            }
            Op::Txn => {
                let seen = self.seen_mod_revisions.get(index);
                let request = compare_and_set(key, seen, self.value.clone());
                let response = self.kv.txn(request).await?.into_inner();
                let (outcome, mod_revision) = if response.succeeded {
                    let revision = response.header.map_or(0, |h| h.revision);
                    (Outcome::TxnSucceeded, revision)
                } else {
                    (
                        Outcome::TxnFailed,
                        current_mod_revision(&response.responses),
                    )
                };
                self.seen_mod_revisions.saw(index, mod_revision);
                Ok(outcome)
            }
        }
    }
}

/// The compare-and-set transaction: if `key`'s mod_revision is still `seen`, put `value`;
/// otherwise read the key, to learn its current mod_revision.
pub(crate) fn compare_and_set(key: Vec<u8>, seen: i64, value: Vec<u8>) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Mod as i32,
            key: key.clone(),
            range_end: Vec::new(),
            target_union: Some(compare::TargetUnion::ModRevision(seen)),
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.clone(),
                value,
                ..Default::default()
            })),
        }],
        failure: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key,
                ..Default::default()
            })),
        }],
    }
}

/// The key's mod_revision from a failed compare-and-set's range, or 0 if it does not exist.
pub(crate) fn current_mod_revision(responses: &[skiff_proto::etcdserverpb::ResponseOp]) -> i64 {
    responses
        .iter()
        .find_map(|op| match &op.response {
            Some(response_op::Response::ResponseRange(range)) => {
                Some(range.kvs.first().map_or(0, |kv| kv.mod_revision))
            }
            _ => None,
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_proto::etcdserverpb::{RangeResponse, ResponseOp};
    use skiff_proto::mvccpb::KeyValue;

    #[test]
    fn the_defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn default_connections_are_one_per_client_up_to_eight() {
        assert_eq!(Config::default_conns(1), 1);
        assert_eq!(Config::default_conns(4), 4);
        assert_eq!(Config::default_conns(64), 8);
    }

    #[test]
    fn configurations_that_measure_nothing_are_refused() {
        let refused = |config: Config| config.validate().unwrap_err().to_string();
        let base = Config::default();
        assert!(refused(Config {
            clients: 0,
            ..base.clone()
        })
        .contains("--clients"));
        assert!(refused(Config {
            conns: 0,
            ..base.clone()
        })
        .contains("--conns"));
        assert!(refused(Config {
            threads: 0,
            ..base.clone()
        })
        .contains("--threads"));
        assert!(refused(Config {
            key_space: 0,
            ..base.clone()
        })
        .contains("--key-space"));
        assert!(refused(Config {
            key_space: MAX_KEY_SPACE + 1,
            ..base.clone()
        })
        .contains("--key-space"));
        assert!(refused(Config {
            duration: Duration::ZERO,
            ..base.clone()
        })
        .contains("--duration"));
        assert!(refused(Config {
            total: Some(0),
            ..base.clone()
        })
        .contains("--total"));
        assert!(refused(Config {
            op: Op::Watch,
            value_size: 4,
            ..base.clone()
        })
        .contains("--value-size"));
        assert!(refused(Config {
            endpoints: vec!["https://etcd:2379".into()],
            ..base
        })
        .contains("TLS"));
    }

    #[test]
    fn a_total_replaces_the_duration() {
        let config = Config {
            duration: Duration::ZERO,
            total: Some(1_000_000),
            ..Config::default()
        };
        config.validate().unwrap();
        assert_eq!(config.stop(Instant::now()), Stop::After(1_000_000));
    }

    #[test]
    fn keys_have_a_fixed_width_so_they_sort_by_index() {
        assert_eq!(key_name("/bench/", 42), b"/bench/0000000042".to_vec());
        assert!(key_name("/bench/", 9) < key_name("/bench/", 10));
        assert!(key_name("/bench/", MAX_KEY_SPACE - 1) < key_name("/bench/", MAX_KEY_SPACE));
    }

    #[test]
    fn key_index_reads_back_only_keys_made_by_key_name() {
        assert_eq!(key_index("/bench/", &key_name("/bench/", 42)), Some(42));
        assert_eq!(key_index("/bench/", b"/bench/42"), None, "wrong width");
        assert_eq!(key_index("/bench/", b"/other/0000000042"), None);
        assert_eq!(key_index("/bench/", b"/bench/00000000x2"), None);
    }

    #[test]
    fn mod_revisions_keep_the_newest_seen() {
        let seen = ModRevisions::default();
        assert_eq!(seen.get(7), 0, "never seen: compare as absent");
        seen.saw(7, 20);
        seen.saw(7, 15);
        assert_eq!(seen.get(7), 20, "a late, older answer does not win");
        let shared = seen.clone();
        shared.saw(7, 31);
        assert_eq!(seen.get(7), 31, "clones share one map");
    }

    #[test]
    fn sequential_keys_cover_the_key_space_once_per_lap() {
        let mut keys = KeyChooser::new(3, true, StdRng::seed_from_u64(1));
        let picked: Vec<_> = (0..7).map(|seq| keys.pick(seq)).collect();
        assert_eq!(picked, vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn random_keys_stay_in_the_key_space_and_replay_from_the_seed() {
        let picks = |seed| {
            let mut keys = KeyChooser::new(10, false, StdRng::seed_from_u64(seed));
            (0..100).map(|seq| keys.pick(seq)).collect::<Vec<_>>()
        };
        assert!(picks(7).iter().all(|&k| k < 10));
        assert_eq!(picks(7), picks(7));
        assert_ne!(picks(7), picks(8));
    }

    #[test]
    fn values_have_the_requested_size() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(random_value(&mut rng, 256).len(), 256);
        assert!(random_value(&mut rng, 0).is_empty());
    }

    #[test]
    fn compare_and_set_puts_only_if_the_mod_revision_is_unchanged() {
        let txn = compare_and_set(b"/bench/1".to_vec(), 17, b"v".to_vec());
        assert_eq!(txn.compare.len(), 1);
        let compare = &txn.compare[0];
        assert_eq!(compare.target, compare::CompareTarget::Mod as i32);
        assert_eq!(compare.result, compare::CompareResult::Equal as i32);
        assert_eq!(
            compare.target_union,
            Some(compare::TargetUnion::ModRevision(17))
        );
        assert!(matches!(
            txn.success[0].request,
            Some(request_op::Request::RequestPut(ref put)) if put.value == b"v"
        ));
        assert!(matches!(
            txn.failure[0].request,
            Some(request_op::Request::RequestRange(ref range)) if range.key == b"/bench/1"
        ));
    }

    #[test]
    fn a_failed_compare_and_set_learns_the_current_mod_revision() {
        let range = |kvs: Vec<KeyValue>| {
            vec![ResponseOp {
                response: Some(response_op::Response::ResponseRange(RangeResponse {
                    kvs,
                    ..Default::default()
                })),
            }]
        };
        let kv = KeyValue {
            key: b"/bench/1".to_vec(),
            mod_revision: 99,
            ..Default::default()
        };
        assert_eq!(current_mod_revision(&range(vec![kv])), 99);
        assert_eq!(current_mod_revision(&range(vec![])), 0, "deleted key");
        assert_eq!(current_mod_revision(&[]), 0);
    }

    #[test]
    fn a_report_divides_successful_operations_by_wall_clock_time() {
        let mut tally = Tally::default();
        for _ in 0..500 {
            tally.record_ok(Duration::from_millis(2));
        }
        tally.errors = 3;
        tally.txn_succeeded = 450;
        tally.txn_failed = 50;
        let config = Config {
            op: Op::Txn,
            ..Config::default()
        };
        let txn = report(&config, &tally, Duration::from_millis(2500));
        assert_eq!((txn.ops, txn.errors), (500, 3));
        assert_eq!(txn.throughput, 200.0, "errors do not count as throughput");
        assert!(txn.latency.p50_us.abs_diff(2_000) <= 2, "{:?}", txn.latency);
        assert_eq!(
            txn.txn,
            Some(TxnCounts {
                succeeded: 450,
                failed: 50
            })
        );
        let put = report(&Config::default(), &tally, Duration::ZERO);
        assert_eq!(put.txn, None, "only txn reports transaction outcomes");
        assert_eq!(put.throughput, 0.0, "no time, no throughput");
    }
}
