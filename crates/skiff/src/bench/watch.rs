//! The watch workload: many watchers on the key prefix, one writer at a steady pace.
//!
//! This is the traffic of a Kubernetes control plane at rest: every informer (and
//! kube-apiserver's watch cache) holds a watch on a key prefix, and each write fans out to all
//! of them. Here `--clients` watch streams are opened on `--key-prefix`, spread over the
//! connections, and one writer puts `--put-rate` keys per second under that prefix. Every
//! value starts with the time its put was sent (nanoseconds since the run began, 8 bytes,
//! little-endian), so each watcher measures the latency from sending a put to receiving its
//! event without any shared bookkeeping. Throughput is events received per second over
//! all watchers, i.e. about `put-rate × clients` when the store keeps up.
//!
//! The run:
//! 1. open every watch and wait until the server confirms it (`created`), so no event of
//!    the measured writes can be missed;
//! 2. start the watchers;
//! 3. write at the requested pace until `--duration` or `--total` puts;
//! 4. tell the watchers how many puts succeeded and let them drain their events, giving
//!    up [`DRAIN_GRACE`] after the writer stops; whatever is still missing is reported.
//!
//! # Caveats
//! - The writer sends one put at a time, so it cannot go faster than one put per put
//!   latency; a `--put-rate` above that is silently a lower rate (the report shows `puts`).
//! - Each watch stream carries one watch; etcd's `benchmark watch` can multiplex several.
//! - Events not written by this run (a value shorter than the timestamp) are ignored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use skiff_proto::etcdserverpb::kv_client::KvClient;
use skiff_proto::etcdserverpb::watch_client::WatchClient;
use skiff_proto::etcdserverpb::watch_request::RequestUnion;
use skiff_proto::etcdserverpb::{PutRequest, WatchCreateRequest, WatchRequest, WatchResponse};
use skiff_proto::keys::prefix_end;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Streaming;

use super::common::{
    bounded, error_chain, status_message, BenchError, Budget, ErrorLog, Op, Report, Stop, Tally,
    WatchCounts, REQUEST_TIMEOUT,
};
use super::kv::{key_name, random_value, report, Config, KeyChooser, TIMESTAMP_LEN};

/// How long watchers keep waiting for events once the writer has stopped.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Runs the watch workload against `channels` and reports on the events received.
pub(crate) async fn run(config: &Config, channels: &[Channel]) -> Result<Report, BenchError> {
    // Send times in values are measured from here, by this process's monotonic clock.
    let base = Instant::now();

    // 1. Open every watch before writing anything.
    let mut watchers = Vec::with_capacity(config.clients);
    for index in 0..config.clients {
        watchers.push(Watcher::open(&config.key_prefix, &channels[index % channels.len()]).await?);
    }

    // 2. Start the watchers.
    let errors = Arc::new(ErrorLog::default());
    let (writer_done, writer_done_rx) = watch::channel(None);
    let tasks: Vec<_> = watchers
        .into_iter()
        .map(|watcher| tokio::spawn(watcher.receive(base, writer_done_rx.clone(), errors.clone())))
        .collect();

    // 3. Write at a steady pace.
    let start = Instant::now();
    let writes = write_paced(
        config,
        channels[0].clone(),
        base,
        config.stop(start),
        &errors,
    )
    .await;
    let writer_end = Instant::now();

    // 4. Let the watchers drain, then merge what they saw.
    let _ = writer_done.send(Some(writes.ops));
    let mut events = Tally::default();
    let mut last_event = writer_end;
    for task in tasks {
        match task.await {
            Ok((tally, last)) => {
                events.merge(&tally);
                last_event = last_event.max(last.unwrap_or(writer_end));
            }
            Err(err) => {
                errors.note(&format!("a watcher stopped: {err}"));
                events.errors += 1;
            }
        }
    }

    let expected = writes.ops.saturating_mul(config.clients as u64);
    let mut report = report(config, &events, last_event.duration_since(start));
    report.errors += writes.errors;
    report.watch = Some(WatchCounts {
        watchers: config.clients,
        puts: writes.ops,
        missed: expected.saturating_sub(events.ops),
    });
    Ok(report)
}

/// Writes `value` with the current send time in its first [`TIMESTAMP_LEN`] bytes.
pub(crate) fn stamp(value: &mut [u8], since_base: Duration) {
    let nanos = u64::try_from(since_base.as_nanos()).unwrap_or(u64::MAX);
    value[..TIMESTAMP_LEN].copy_from_slice(&nanos.to_le_bytes());
}

/// The send time stamped into `value`, or `None` if it is too short to carry one.
pub(crate) fn sent_at(value: &[u8]) -> Option<Duration> {
    let bytes: [u8; TIMESTAMP_LEN] = value.get(..TIMESTAMP_LEN)?.try_into().ok()?;
    Some(Duration::from_nanos(u64::from_le_bytes(bytes)))
}

/// Puts keys under the prefix at `config.put_rate` per second until `stop`; the tally
/// counts completed puts and errors, not latencies (the watchers measure those).
async fn write_paced(
    config: &Config,
    channel: Channel,
    base: Instant,
    stop: Stop,
    errors: &ErrorLog,
) -> Tally {
    let mut kv = KvClient::new(channel);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut value = random_value(&mut rng, config.value_size);
    let mut keys = KeyChooser::new(config.key_space, config.sequential_keys, rng);
    let budget = Budget::new(stop);
    // The default missed-tick behaviour (burst) keeps the average rate when a put is slow.
    let mut ticker =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(config.put_rate)));
    let mut tally = Tally::default();
    loop {
        ticker.tick().await;
        let Some(seq) = budget.next(Instant::now()) else {
            break;
        };
        stamp(&mut value, base.elapsed());
        let request = PutRequest {
            key: key_name(&config.key_prefix, keys.pick(seq)),
            value: value.clone(),
            ..Default::default()
        };
        let put = kv.put(request);
        if bounded("put", errors, &mut tally.errors, status_message, put)
            .await
            .is_some()
        {
            tally.ops += 1;
        }
    }
    tally
}

/// One watch stream with one watch on the key prefix.
struct Watcher {
    /// Kept open: dropping the request side would end the stream.
    _requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
}

impl Watcher {
    /// Opens a watch on `prefix` and waits for the server to confirm it.
    async fn open(prefix: &str, channel: &Channel) -> Result<Self, BenchError> {
        let setup = |reason: String| BenchError::Setup {
            op: Op::Watch,
            reason,
        };
        let (requests, outgoing) = mpsc::channel(1);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                ..Default::default()
            })),
        };
        requests
            .send(create)
            .await
            .map_err(|_| setup("the watch request stream closed".into()))?;
        let mut client = WatchClient::new(channel.clone());
        let opened = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let mut responses = client
                .watch(ReceiverStream::new(outgoing))
                .await?
                .into_inner();
            let first = responses.message().await?;
            Ok::<_, tonic::Status>((responses, first))
        })
        .await
        .map_err(|_| {
            setup(format!(
                "no answer to a watch request in {REQUEST_TIMEOUT:?}"
            ))
        })?
        .map_err(|status| setup(format!("watch refused: {}", error_chain(&status))))?;
        match opened {
            (responses, Some(first)) if first.created && !first.canceled => Ok(Watcher {
                _requests: requests,
                responses,
            }),
            (_, Some(first)) => Err(setup(format!("watch not created: {}", first.cancel_reason))),
            (_, None) => Err(setup(
                "watch stream closed before the watch was created".into(),
            )),
        }
    }

    /// Receives events until it has one for every successful put, the stream fails, or
    /// [`DRAIN_GRACE`] has passed since the writer stopped. Returns the tally of events
    /// and when the last one arrived.
    async fn receive(
        mut self,
        base: Instant,
        mut writer_done: watch::Receiver<Option<u64>>,
        errors: Arc<ErrorLog>,
    ) -> (Tally, Option<Instant>) {
        let mut tally = Tally::default();
        let mut last_event = None;
        let mut expected: Option<u64> = None;
        let grace = tokio::time::sleep(DRAIN_GRACE);
        tokio::pin!(grace);
        loop {
            if expected.is_some_and(|expected| tally.ops >= expected) {
                break;
            }
            tokio::select! {
                message = self.responses.message() => {
                    let response = match message {
                        Ok(Some(response)) => response,
                        Ok(None) => {
                            tally.errors += 1;
                            errors.note("the server closed a watch stream");
                            break;
                        }
                        Err(status) => {
                            tally.errors += 1;
                            errors.note(&status_message(&status));
                            break;
                        }
                    };
                    if response.canceled {
                        tally.errors += 1;
                        errors.note(&format!("watch canceled: {}", response.cancel_reason));
                        break;
                    }
                    let now = Instant::now();
                    for event in &response.events {
                        let Some(sent) = event.kv.as_ref().and_then(|kv| sent_at(&kv.value)) else {
                            continue;
                        };
                        tally.record_ok(now.duration_since(base).saturating_sub(sent));
                        last_event = Some(now);
                    }
                }
                changed = writer_done.changed(), if expected.is_none() => {
                    // A dropped sender means the run is over too: expect nothing more.
                    let puts = if changed.is_ok() { *writer_done.borrow() } else { None };
                    expected = Some(puts.unwrap_or(0));
                    grace
                        .as_mut()
                        .reset(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                () = &mut grace, if expected.is_some() => break,
            }
        }
        (tally, last_event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_value_gives_back_its_send_time() {
        let mut value = vec![0xAB; 256];
        stamp(&mut value, Duration::from_micros(1_234_567));
        assert_eq!(sent_at(&value), Some(Duration::from_micros(1_234_567)));
        assert_eq!(
            value[TIMESTAMP_LEN..],
            [0xAB; 256 - TIMESTAMP_LEN],
            "padding is kept"
        );
    }

    #[test]
    fn values_too_short_for_a_timestamp_are_not_ours() {
        assert_eq!(sent_at(b"short"), None);
        assert_eq!(sent_at(b""), None);
    }
}
