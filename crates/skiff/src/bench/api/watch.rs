//! The watch workload of `skiff bench api`: many watch streams on one namespace's pods and
//! one writer patching those pods at a steady pace (see the parent module for the run
//! step by step).
//!
//! Every write carries `<run>/<seq>/<send time>` in the [`SENT_ANNOTATION`] annotation.
//! The writer notes in [`WriteTimes`] when each write was answered; a watcher finding the
//! stamp in an event measures both the time since the write's answer and since its send,
//! with no lock between the writer and a thousand watchers.
//!
//! # Caveats
//! - Only this run's writes are timed; other changes to the namespace's pods are ignored.
//! - The writer's open loop spawns one task per write; a stalled server piles up at most
//!   `rate × REQUEST_TIMEOUT` of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::Pod;
use skiff_client::{Api, Patch, PatchParams, RawEvent, WatchParams};
use tokio::sync::watch;
use tonic::transport::Channel;

use super::super::common::{
    connect, error_chain, new_histogram, record_latency, BenchError, Budget, ErrorLog, Latency,
    Stop, Tally, REQUEST_TIMEOUT,
};
use super::pods::{create_pods, list_names, pods, run_id, setup, SENT_ANNOTATION};

/// A watch stream of events as bytes.
type Events = BoxStream<'static, Result<RawEvent, skiff_client::Error>>;
use super::report::{ApiReport, Config, WatchCounts};

/// How many pods the writer cycles through.
const WATCH_PODS: u64 = 100;

/// How long watchers keep waiting for events once the writer has stopped.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Runs the watch workload against `channels` and reports on the events received.
pub(super) async fn run(config: &Config, channels: &[Channel]) -> Result<ApiReport, BenchError> {
    // The writer gets a connection of its own, as a separate client would have.
    let writer_channel = connect(std::slice::from_ref(&config.server), 1).await?;
    let writer_pods = pods(&writer_channel[0], &config.namespace);

    // 1. The pods to write exist, and the watches start after them.
    let (existing, _) = list_names(&writer_pods, config).await?;
    let missing: Vec<String> = (0..WATCH_PODS)
        .map(watch_pod_name)
        .filter(|name| !existing.contains(name))
        .collect();
    if !missing.is_empty() {
        let count = missing.len() as u64;
        let missing = Arc::new(missing);
        let names = Arc::new(move |seq: u64| missing[seq as usize].clone());
        let (tally, _) = create_pods(config, channels, Stop::After(count), names).await;
        if tally.errors > 0 {
            return Err(setup(
                config,
                format!("{} of the pods to write could not be created", tally.errors),
            ));
        }
    }
    let (_, resource_version) = list_names(&writer_pods, config).await?;
    let run = run_id();
    let base = Instant::now();

    // 2. Open every watch before writing anything.
    let mut streams = Vec::with_capacity(config.watchers);
    for index in 0..config.watchers {
        let channel = &channels[index % channels.len()];
        streams.push(open_watch(config, channel, &resource_version).await?);
    }
    let errors = Arc::new(ErrorLog::default());
    let writes = Arc::new(WriteTimes::new(config.rate, config.duration));
    let needle: Arc<[u8]> = format!("\"{SENT_ANNOTATION}\":\"{run}/")
        .into_bytes()
        .into();
    let (writer_done, writer_done_rx) = watch::channel(None);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let receiver = Receiver {
                stream,
                base,
                needle: needle.clone(),
                writes: writes.clone(),
            };
            tokio::spawn(receiver.receive(writer_done_rx.clone(), errors.clone()))
        })
        .collect();

    // 3. Write at a steady pace.
    let start = Instant::now();
    let writer = Writer {
        pods: writer_pods,
        run,
        base,
        times: writes.clone(),
    };
    let written = writer
        .write_paced(config.rate, Stop::At(start + config.duration), &errors)
        .await;
    let writer_end = Instant::now();

    // 4. Let the watchers drain, then merge what they saw.
    let _ = writer_done.send(Some(written.ops));
    let mut events = Tally::default();
    let mut from_send = new_histogram();
    let mut missed = 0;
    let mut before_response = 0;
    let mut last_event = writer_end;
    for task in tasks {
        match task.await {
            Ok(seen) => {
                events.merge(&seen.tally);
                from_send
                    .add(&seen.from_send)
                    .expect("histograms with equal bounds add");
                missed += written.ops.saturating_sub(seen.tally.ops);
                before_response += seen.before_response;
                last_event = last_event.max(seen.last_event.unwrap_or(writer_end));
            }
            Err(err) => {
                errors.note(&format!("a watcher stopped: {err}"));
                events.errors += 1;
                missed += written.ops;
            }
        }
    }
    let mut report = ApiReport::new(
        config,
        config.watchers,
        &events,
        last_event.duration_since(start),
    );
    report.errors += written.errors;
    report.watch = Some(WatchCounts {
        watchers: config.watchers,
        rate: config.rate,
        writes: written.ops,
        expected: written.ops.saturating_mul(config.watchers as u64),
        missed,
        before_response,
        latency_from_send: Latency::from_histogram(&from_send),
        write_latency: Latency::from_histogram(&written.latencies),
    });
    Ok(report)
}

/// Opens a watch on the namespace's pods from `resource_version`.
async fn open_watch(
    config: &Config,
    channel: &Channel,
    resource_version: &str,
) -> Result<Events, BenchError> {
    let pods = pods(channel, &config.namespace);
    // No bookmarks: every event is a write of the run or another change.
    let params = WatchParams::default().disable_bookmarks();
    let watch = pods.watch_bytes(&params, resource_version);
    tokio::time::timeout(REQUEST_TIMEOUT, watch)
        .await
        .map_err(|_| {
            setup(
                config,
                format!("no answer to a watch request in {REQUEST_TIMEOUT:?}"),
            )
        })?
        .map_err(|err| setup(config, format!("watch refused: {}", error_chain(&err))))
}

/// When each write of the run had its answer, by sequence number, in nanoseconds since
/// the run began (0: not yet). Shared by the writer and every watcher without a lock.
struct WriteTimes(Vec<AtomicU64>);

impl WriteTimes {
    /// Room for every write `rate` per second can issue in `duration`.
    fn new(rate: u32, duration: Duration) -> Self {
        let capacity = (f64::from(rate) * duration.as_secs_f64()).ceil() as usize + 1;
        WriteTimes((0..capacity).map(|_| AtomicU64::new(0)).collect())
    }

    fn capacity(&self) -> u64 {
        self.0.len() as u64
    }

    /// Notes that write `seq` was answered `since_base` after the run began.
    fn answered(&self, seq: u64, since_base: Duration) {
        if let Some(slot) = self.0.get(seq as usize) {
            let nanos = u64::try_from(since_base.as_nanos()).unwrap_or(u64::MAX);
            slot.store(nanos.max(1), Ordering::Release);
        }
    }

    /// When write `seq` was answered, if it has been.
    fn answer_of(&self, seq: u64) -> Option<Duration> {
        let nanos = self.0.get(seq as usize)?.load(Ordering::Acquire);
        (nanos > 0).then(|| Duration::from_nanos(nanos))
    }
}

/// A write's stamp: `<run>/<seq>/<nanoseconds since the run began>`.
fn stamp(run: &str, seq: u64, since_base: Duration) -> String {
    format!("{run}/{seq}/{}", since_base.as_nanos())
}

/// The sequence number and send time in an event's object, if the object carries this
/// run's stamp; `needle` is `"<annotation>":"<run>/`.
///
/// The stamp is found by its bytes rather than by decoding the object: the client then
/// spends its CPU on receiving, not on parsing a thousand copies of every pod.
fn stamp_in(object: &[u8], needle: &[u8]) -> Option<(u64, Duration)> {
    let at = object
        .windows(needle.len())
        .position(|window| window == needle)?;
    let rest = &object[at + needle.len()..];
    let text = std::str::from_utf8(&rest[..rest.iter().position(|b| *b == b'"')?]).ok()?;
    let (seq, nanos) = text.split_once('/')?;
    Some((seq.parse().ok()?, Duration::from_nanos(nanos.parse().ok()?)))
}

/// What one watcher saw.
struct Seen {
    /// Events of this run, with their latency from the write's answer.
    tally: Tally,
    /// The same events' latency from sending the write.
    from_send: Histogram<u64>,
    /// Events that arrived before the writer had the write's answer.
    before_response: u64,
    last_event: Option<Instant>,
}

/// One watch stream and what it needs to time events.
struct Receiver {
    stream: Events,
    base: Instant,
    needle: Arc<[u8]>,
    writes: Arc<WriteTimes>,
}

impl Receiver {
    /// Receives events until there is one for every successful write, the stream fails,
    /// or [`DRAIN_GRACE`] has passed since the writer stopped.
    async fn receive(
        mut self,
        mut writer_done: watch::Receiver<Option<u64>>,
        errors: Arc<ErrorLog>,
    ) -> Seen {
        let mut seen = Seen {
            tally: Tally::default(),
            from_send: new_histogram(),
            before_response: 0,
            last_event: None,
        };
        let mut expected: Option<u64> = None;
        let grace = tokio::time::sleep(DRAIN_GRACE);
        tokio::pin!(grace);
        loop {
            if expected.is_some_and(|expected| seen.tally.ops >= expected) {
                break;
            }
            tokio::select! {
                message = self.stream.next() => {
                    let event = match message {
                        Some(Ok(event)) => event,
                        None => {
                            seen.tally.errors += 1;
                            errors.note("the server closed a watch stream");
                            break;
                        }
                        Some(Err(err)) => {
                            seen.tally.errors += 1;
                            errors.note(&error_chain(&err));
                            break;
                        }
                    };
                    if event.event_type == "ERROR" {
                        seen.tally.errors += 1;
                        errors.note(&format!(
                            "watch ended with an error: {}",
                            String::from_utf8_lossy(&event.object)
                        ));
                        break;
                    }
                    self.time(&event, &mut seen);
                }
                changed = writer_done.changed(), if expected.is_none() => {
                    // A dropped sender means the run is over too: expect nothing more.
                    let writes = if changed.is_ok() { *writer_done.borrow() } else { None };
                    expected = Some(writes.unwrap_or(0));
                    grace.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                () = &mut grace, if expected.is_some() => break,
            }
        }
        seen
    }

    /// Records the latencies of one event, if it is one of this run's writes.
    fn time(&self, event: &RawEvent, seen: &mut Seen) {
        let Some((seq, sent)) = stamp_in(&event.object, &self.needle) else {
            return;
        };
        let now = Instant::now();
        let since_base = now.duration_since(self.base);
        record_latency(&mut seen.from_send, since_base.saturating_sub(sent));
        match self.writes.answer_of(seq) {
            Some(answered) => seen.tally.record_ok(since_base.saturating_sub(answered)),
            None => {
                // The event beat the write's answer to this process: no time after it.
                seen.before_response += 1;
                seen.tally.record_ok(Duration::ZERO);
            }
        }
        seen.last_event = Some(now);
    }
}

/// The name of the watch workload's pod `index`.
fn watch_pod_name(index: u64) -> String {
    format!("watch-{index:03}")
}

/// The watch workload's single writer.
struct Writer {
    pods: Api<Pod>,
    run: String,
    base: Instant,
    times: Arc<WriteTimes>,
}

impl Writer {
    /// Starts a write `rate` times a second until `stop`, without waiting for the one
    /// before (an open loop, so a slow write does not lower the rate), cycling over
    /// [`WATCH_PODS`] pods; the tally holds the writes' latencies and errors.
    async fn write_paced(self, rate: u32, stop: Stop, errors: &ErrorLog) -> Tally {
        let budget = Budget::new(stop);
        // The default missed-tick behaviour (burst) keeps the average rate when the
        // writer falls behind.
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        let mut writes = tokio::task::JoinSet::new();
        loop {
            ticker.tick().await;
            let Some(seq) = budget
                .next(Instant::now())
                .filter(|seq| *seq < self.times.capacity())
            else {
                break;
            };
            writes.spawn(self.write(seq));
        }
        let mut tally = Tally::default();
        while let Some(result) = writes.join_next().await {
            match result {
                Ok(Ok(latency)) => tally.record_ok(latency),
                Ok(Err(message)) => {
                    tally.errors += 1;
                    errors.note(&message);
                }
                Err(err) => {
                    tally.errors += 1;
                    errors.note(&format!("a write stopped: {err}"));
                }
            }
        }
        tally
    }

    /// Write `seq`: a merge patch of one pod's stamp. Returns the write's latency.
    fn write(&self, seq: u64) -> impl std::future::Future<Output = Result<Duration, String>> {
        let pods = self.pods.clone();
        let (base, times) = (self.base, self.times.clone());
        let sent = stamp(&self.run, seq, base.elapsed());
        let patch = serde_json::json!({"metadata": {"annotations": {SENT_ANNOTATION: sent}}});
        async move {
            let started = Instant::now();
            let name = watch_pod_name(seq % WATCH_PODS);
            let (params, patch) = (PatchParams::default(), Patch::Merge(patch));
            let request = pods.patch_bytes(&name, &params, &patch);
            match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
                Ok(Ok(_)) => {
                    times.answered(seq, base.elapsed());
                    Ok(started.elapsed())
                }
                Ok(Err(err)) => Err(error_chain(&err)),
                Err(_) => Err(format!("write timed out after {REQUEST_TIMEOUT:?}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pods::pod_json;
    use super::*;

    #[test]
    fn a_pod_carries_its_stamp_where_watchers_find_it() {
        let needle = format!("\"{SENT_ANNOTATION}\":\"abcd0123/");
        let sent = stamp("abcd0123", 42, Duration::from_nanos(1_234_567));
        let pod = pod_json("watch-007", Some(&sent));
        let value: serde_json::Value = serde_json::from_slice(&pod).unwrap();
        assert_eq!(value["metadata"]["name"], "watch-007");
        assert_eq!(value["spec"]["containers"][0]["name"], "app");
        let expected = Some((42, Duration::from_nanos(1_234_567)));
        assert_eq!(stamp_in(&pod, needle.as_bytes()), expected);
        // The server re-encodes objects with serde_json: the bytes searched for survive.
        let reencoded = serde_json::to_vec(&value).unwrap();
        assert_eq!(stamp_in(&reencoded, needle.as_bytes()), expected);
    }

    #[test]
    fn writes_of_another_run_or_without_a_stamp_are_not_counted() {
        let needle = format!("\"{SENT_ANNOTATION}\":\"abcd0123/");
        let other_run = pod_json("watch-001", Some("ffff0000/1/99"));
        assert_eq!(stamp_in(&other_run, needle.as_bytes()), None);
        assert_eq!(stamp_in(&pod_json("p", None), needle.as_bytes()), None);
        let truncated = format!("{{\"{SENT_ANNOTATION}\":\"abcd0123/1/12");
        assert_eq!(stamp_in(truncated.as_bytes(), needle.as_bytes()), None);
    }

    #[test]
    fn write_times_are_known_only_once_answered() {
        let times = WriteTimes::new(10, Duration::from_secs(2));
        assert_eq!(times.capacity(), 21);
        assert_eq!(times.answer_of(3), None);
        times.answered(3, Duration::from_millis(250));
        assert_eq!(times.answer_of(3), Some(Duration::from_millis(250)));
        times.answered(99, Duration::from_millis(1));
        assert_eq!(
            times.answer_of(99),
            None,
            "beyond the capacity nothing is kept"
        );
    }
}
