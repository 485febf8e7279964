//! A rate-limited work queue of keys, as client-go's `workqueue`.
//!
//! Controllers do not act on events; they put the *key* of what changed
//! (`namespace/name`) on a queue, and workers take keys off it and reconcile.
//! The queue's rules are what make that safe with many workers:
//!
//! - **De-duplication**: a key already waiting is not queued twice; ten
//!   updates before a worker gets to it are one reconcile.
//! - **One worker per key**: a key being processed (handed out by
//!   [`WorkQueue::get`], not yet [`WorkQueue::done`]) is not handed out again;
//!   adding it meanwhile queues it once, for after `done`.
//! - **Per-key backoff**: [`WorkQueue::requeue_rate_limited`] brings the key
//!   back after `base × 2^failures` (5 ms doubling to 1000 s, as client-go's
//!   default controller rate limiter), and [`WorkQueue::forget`] resets it
//!   once the key succeeds.
//! - **An overall token bucket** (optional, 10 per second with a burst of 100
//!   by default) caps the rate of retries across all keys; a retry waits for
//!   the longer of its key's backoff and the bucket.
//! - **Delays**: [`WorkQueue::add_after`] queues a key later (a requeue after a
//!   fixed time); the earliest of several delays for one key wins.
//!
//! Time is tokio's, so tests run it with `tokio::time::pause`.
//!
//! # Caveats
//! No metrics; `shutdown` drops delayed keys and hands out the keys already queued.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// An overall token bucket: `qps` tokens a second, at most `burst` saved up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    /// Tokens added per second.
    pub qps: f64,
    /// The most tokens held.
    pub burst: u32,
}

/// How a queue rate-limits retries. `Default` is client-go's default
/// controller rate limiter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueueConfig {
    /// The first retry's delay.
    pub base_delay: Duration,
    /// The longest per-key delay.
    pub max_delay: Duration,
    /// The overall bucket; `None` for per-key backoff alone.
    pub bucket: Option<TokenBucket>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(1000),
            bucket: Some(TokenBucket {
                qps: 10.0,
                burst: 100,
            }),
        }
    }
}

/// The delay before retry number `failures + 1` of one key:
/// `base × 2^failures`, at most `max`.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.checked_pow(failures).unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

struct Bucket {
    config: TokenBucket,
    /// May go negative: reservations made ahead of time.
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes a token, answering how long to wait until it is really there.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.config.qps).min(self.config.burst as f64);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 || self.config.qps <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.config.qps)
        }
    }
}

struct State<T> {
    /// Keys ready for a worker, in order.
    queue: VecDeque<T>,
    /// Keys that need processing: queued, or added again while processing.
    dirty: HashSet<T>,
    /// Keys handed out and not yet done.
    processing: HashSet<T>,
    /// Delayed keys by when they are due (the sequence number breaks ties).
    waiting: BTreeMap<(Instant, u64), T>,
    /// When each delayed key is due.
    due: HashMap<T, (Instant, u64)>,
    sequence: u64,
    failures: HashMap<T, u32>,
    bucket: Option<Bucket>,
    shutting_down: bool,
}

impl<T: Clone + Eq + Hash> State<T> {
    fn add(&mut self, key: T) {
        if self.shutting_down || !self.dirty.insert(key.clone()) {
            return;
        }
        if !self.processing.contains(&key) {
            self.queue.push_back(key);
        }
    }

    /// Moves delayed keys that are due onto the queue.
    fn promote_due(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.due.remove(&key);
            self.add(key);
        }
    }
}

/// A work queue of keys; clones share it.
pub struct WorkQueue<T> {
    state: Arc<Mutex<State<T>>>,
    changed: Arc<Notify>,
    config: QueueConfig,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            state: self.state.clone(),
            changed: self.changed.clone(),
            config: self.config,
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> WorkQueue<T> {
        let bucket = config.bucket.map(|b| Bucket {
            config: b,
            tokens: b.burst as f64,
            last: Instant::now(),
        });
        WorkQueue {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                waiting: BTreeMap::new(),
                due: HashMap::new(),
                sequence: 0,
                failures: HashMap::new(),
                bucket,
                shutting_down: false,
            })),
            changed: Arc::new(Notify::new()),
            config,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // Every method leaves the state whole before anything can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key`, unless it is queued already.
    pub fn add(&self, key: T) {
        self.lock().add(key);
        self.changed.notify_waiters();
    }

    /// Queues `key` after `delay`; an earlier pending delay for it wins.
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let mut state = self.lock();
        if state.shutting_down {
            return;
        }
        let at = Instant::now() + delay;
        if let Some(&(current, sequence)) = state.due.get(&key) {
            if current <= at {
                return;
            }
            state.waiting.remove(&(current, sequence));
        }
        state.sequence += 1;
        let slot = (at, state.sequence);
        state.waiting.insert(slot, key.clone());
        state.due.insert(key, slot);
        drop(state);
        self.changed.notify_waiters();
    }

    /// Queues `key` again after its backoff (and the bucket's wait), and
    /// counts one more failure for it. Answers the delay chosen.
    pub fn requeue_rate_limited(&self, key: T) -> Duration {
        let delay = {
            let mut state = self.lock();
            let failures = state.failures.entry(key.clone()).or_insert(0);
            let per_key = backoff(self.config.base_delay, self.config.max_delay, *failures);
            *failures = failures.saturating_add(1);
            let overall = match &mut state.bucket {
                Some(bucket) => bucket.reserve(Instant::now()),
                None => Duration::ZERO,
            };
            per_key.max(overall)
        };
        self.add_after(key, delay);
        delay
    }

    /// Forgets `key`'s failures: its next retry starts from the base delay.
    pub fn forget(&self, key: &T) {
        self.lock().failures.remove(key);
    }

    /// How many times `key` has been requeued since it was last forgotten.
    pub fn num_requeues(&self, key: &T) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Waits for a key to process; `None` once the queue is shut down and
    /// empty. Call [`WorkQueue::done`] with the key when finished.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a change in between still wakes us.
            notified.as_mut().enable();
            let next_due = {
                let mut state = self.lock();
                state.promote_due(Instant::now());
                if let Some(key) = state.queue.pop_front() {
                    state.dirty.remove(&key);
                    state.processing.insert(key.clone());
                    return Some(key);
                }
                if state.shutting_down {
                    return None;
                }
                state.waiting.keys().next().map(|(at, _)| *at)
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` processed; if it was added meanwhile, it is queued now.
    pub fn done(&self, key: &T) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.contains(key) {
            state.queue.push_back(key.clone());
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// How many keys are ready for a worker.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is ready for a worker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops accepting keys and drops delayed ones; `get` hands out what is
    /// queued, then answers `None`.
    pub fn shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        state.waiting.clear();
        state.due.clear();
        drop(state);
        self.changed.notify_waiters();
    }

    /// Whether [`WorkQueue::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<String> {
        WorkQueue::new(QueueConfig {
            bucket: None,
            ..Default::default()
        })
    }

    /// The next key, if one is ready now (paused time does not move).
    async fn ready(q: &WorkQueue<String>) -> Option<String> {
        tokio::select! {
            biased;
            key = q.get() => key,
            _ = std::future::ready(()) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_twice_is_handed_out_once() {
        let q = queue();
        q.add("default/a".to_string());
        q.add("default/b".to_string());
        q.add("default/a".to_string());
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.as_deref(), Some("default/a"));
        assert_eq!(q.get().await.as_deref(), Some("default/b"));
        assert_eq!(ready(&q).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_in_flight_is_not_handed_out_again_and_requeues_once_after_done() {
        let q = queue();
        let a = "default/a".to_string();
        q.add(a.clone());
        let taken = q.get().await.unwrap();
        q.add(a.clone());
        q.add(a.clone());
        assert_eq!(ready(&q).await, None, "a key in flight is not handed out");
        q.done(&taken);
        assert_eq!(q.get().await.as_deref(), Some("default/a"));
        assert_eq!(ready(&q).await, None, "re-adds while in flight count once");
        q.done(&a);
        assert_eq!(ready(&q).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_get_wakes_on_add() {
        let q = queue();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::task::yield_now().await;
        q.add("x".to_string());
        assert_eq!(waiter.await.unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn backoff_doubles_from_five_milliseconds_to_a_thousand_seconds() {
        let base = Duration::from_millis(5);
        let max = Duration::from_secs(1000);
        assert_eq!(backoff(base, max, 0), Duration::from_millis(5));
        assert_eq!(backoff(base, max, 1), Duration::from_millis(10));
        assert_eq!(backoff(base, max, 10), Duration::from_millis(5120));
        assert_eq!(backoff(base, max, 18), max, "5ms × 2^18 is past the cap");
        assert_eq!(backoff(base, max, 100), max);
    }

    #[tokio::test(start_paused = true)]
    async fn requeues_back_off_per_key_until_forgotten() {
        let q = queue();
        let a = "default/a".to_string();
        let mut delays = Vec::new();
        for _ in 0..4 {
            delays.push(q.requeue_rate_limited(a.clone()));
            let start = Instant::now();
            assert_eq!(q.get().await.as_deref(), Some("default/a"));
            assert_eq!(Instant::now() - start, *delays.last().unwrap());
            q.done(&a);
        }
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, [ms(5), ms(10), ms(20), ms(40)]);
        assert_eq!(q.num_requeues(&a), 4);
        assert_eq!(
            q.requeue_rate_limited("default/b".to_string()),
            ms(5),
            "backoff is per key"
        );
        q.forget(&a);
        assert_eq!(q.num_requeues(&a), 0);
        assert_eq!(q.requeue_rate_limited(a), ms(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_slows_retries_across_keys_past_its_burst() {
        let q = WorkQueue::new(QueueConfig {
            bucket: Some(TokenBucket {
                qps: 10.0,
                burst: 2,
            }),
            ..Default::default()
        });
        let d1 = q.requeue_rate_limited("a".to_string());
        let d2 = q.requeue_rate_limited("b".to_string());
        let d3 = q.requeue_rate_limited("c".to_string());
        let d4 = q.requeue_rate_limited("d".to_string());
        assert_eq!(
            (d1, d2),
            (Duration::from_millis(5), Duration::from_millis(5))
        );
        assert_eq!(d3, Duration::from_millis(100), "one token every 100ms");
        assert_eq!(d4, Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_waits_and_the_earliest_delay_wins() {
        let q = queue();
        let start = Instant::now();
        q.add_after("a".to_string(), Duration::from_secs(10));
        q.add_after("a".to_string(), Duration::from_secs(3));
        q.add_after("a".to_string(), Duration::from_secs(7));
        assert_eq!(ready(&q).await, None);
        assert_eq!(q.get().await.as_deref(), Some("a"));
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
        q.done(&"a".to_string());
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(ready(&q).await, None, "the later delays were merged away");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_hands_out_what_is_queued_then_none() {
        let q = queue();
        q.add("a".to_string());
        q.add_after("b".to_string(), Duration::from_secs(1));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move {
                let first = q.get().await;
                let second = q.get().await;
                (first, second)
            }
        });
        tokio::task::yield_now().await;
        q.shutdown();
        q.add("c".to_string());
        let (first, second) = waiter.await.unwrap();
        assert_eq!(first.as_deref(), Some("a"));
        assert_eq!(second, None);
        assert!(q.is_shutting_down());
    }
}
