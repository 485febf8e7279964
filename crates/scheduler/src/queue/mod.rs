//! The scheduling queue: kube-scheduler's `PriorityQueue` with its three
//! sub-queues.
//!
//! - **active**: pods ready to be tried, highest `spec.priority` first, then
//!   oldest (the `PrioritySort` plugin);
//! - **backoff**: pods that failed and wait out their backoff — 1s after the
//!   first attempt, doubling per attempt up to 10s — before going back to
//!   active;
//! - **unschedulable**: pods no node could take. They stay until a cluster
//!   event one of the plugins that rejected them cares about (a node added, a
//!   pod deleted, …) moves them to backoff or active, or for at most 5 minutes.
//!
//! A pod rejected while a move was requested during its own cycle goes to
//! backoff rather than unschedulable: the event it might have needed has
//! already passed (kube's `moveRequestCycle`).
//!
//! The queue also keeps the nominations of its pods (kube's `PodNominator`):
//! the node preemption found for a pod, from the cycle that preempted or from
//! the pod's `status.nominatedNodeName`, until the pod is bound or deleted.
//!
//! The queue is pure: every method that depends on time takes `now`, so tests
//! drive it with a logical clock.
//!
//! # Caveats
//! No QueueingHints beyond "which plugins registered this event"; no
//! gated pods (`schedulingGates`).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::framework::{ClusterEvent, Nominator, PodInfo};

/// Backoff and flush periods.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// The backoff after the first failed attempt (`podInitialBackoffSeconds`, 1s).
    pub initial_backoff: Duration,
    /// The longest backoff (`podMaxBackoffSeconds`, 10s).
    pub max_backoff: Duration,
    /// How long a pod may stay unschedulable without an event (5 minutes).
    pub max_in_unschedulable: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_in_unschedulable: Duration::from_secs(300),
        }
    }
}

/// A pod in the queue with its attempt count.
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    /// The pod.
    pub pod: Arc<PodInfo>,
    /// How many times it was popped.
    pub attempts: u32,
    /// When it last entered the queue (orders pods of equal priority).
    pub timestamp: Instant,
    /// The plugins that rejected it last time.
    pub unschedulable_plugins: Vec<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active(u64),
    Backoff(u64),
    Unschedulable,
    /// Popped; the cycle in which it was.
    InFlight(u64),
}

struct Entry {
    info: QueuedPodInfo,
    place: Place,
    /// When it entered `unschedulable` or failed last.
    since: Instant,
}

/// Active-queue order: priority, then age, then arrival.
#[derive(PartialEq, Eq)]
struct ActiveKey {
    priority: i32,
    timestamp: Reverse<Instant>,
    seq: Reverse<u64>,
    key: String,
}

impl Ord for ActiveKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.priority, self.timestamp, self.seq).cmp(&(other.priority, other.timestamp, other.seq))
    }
}

impl PartialOrd for ActiveKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The three sub-queues.
pub struct SchedulingQueue {
    config: QueueConfig,
    pods: HashMap<String, Entry>,
    active: BinaryHeap<ActiveKey>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    unschedulable: HashSet<String>,
    /// Which plugins registered each event.
    interest: HashMap<ClusterEvent, HashSet<&'static str>>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    /// Shared with snapshots, copied on write.
    nominator: Arc<Nominator>,
}

impl SchedulingQueue {
    /// An empty queue; `interest` says which plugins care about each event.
    pub fn new(
        config: QueueConfig,
        interest: HashMap<ClusterEvent, HashSet<&'static str>>,
    ) -> SchedulingQueue {
        SchedulingQueue {
            config,
            pods: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            unschedulable: HashSet::new(),
            interest,
            seq: 0,
            scheduling_cycle: 0,
            move_request_cycle: 0,
            nominator: Arc::default(),
        }
    }

    fn push_active(&mut self, key: &str) {
        self.seq += 1;
        let Some(entry) = self.pods.get_mut(key) else {
            return;
        };
        entry.place = Place::Active(self.seq);
        self.unschedulable.remove(key);
        self.active.push(ActiveKey {
            priority: entry.info.pod.priority,
            timestamp: Reverse(entry.info.timestamp),
            seq: Reverse(self.seq),
            key: key.to_string(),
        });
    }

    fn push_backoff(&mut self, key: &str) {
        self.seq += 1;
        let Some(entry) = self.pods.get_mut(key) else {
            return;
        };
        entry.place = Place::Backoff(self.seq);
        self.unschedulable.remove(key);
        let expiry = entry.since + backoff_duration(&self.config, entry.info.attempts);
        self.backoff
            .push(Reverse((expiry, self.seq, key.to_string())));
    }

    fn backoff_expiry(&self, entry: &Entry) -> Instant {
        entry.since + backoff_duration(&self.config, entry.info.attempts)
    }

    /// A new pending pod, or a newer version of one already queued.
    pub fn add(&mut self, pod: Arc<PodInfo>, now: Instant) {
        self.update_nomination(&pod);
        let key = pod.key.clone();
        if let Some(entry) = self.pods.get_mut(&key) {
            entry.info.pod = pod;
            // An update may make an unschedulable pod fit: try it again.
            if entry.place == Place::Unschedulable {
                if self.backoff_expiry(&self.pods[&key]) > now {
                    self.push_backoff(&key);
                } else {
                    self.push_active(&key);
                }
            }
            return;
        }
        let info = QueuedPodInfo {
            pod,
            attempts: 0,
            timestamp: now,
            unschedulable_plugins: Vec::new(),
        };
        self.pods.insert(
            key.clone(),
            Entry {
                info,
                place: Place::Unschedulable,
                since: now,
            },
        );
        self.push_active(&key);
    }

    /// A newer version of a queued pod that changes nothing scheduling reads
    /// (its status, say, or the PodScheduled condition the scheduler wrote):
    /// kept, but not a reason to try the pod again.
    pub fn update_quietly(&mut self, pod: Arc<PodInfo>) {
        self.update_nomination(&pod);
        if let Some(entry) = self.pods.get_mut(&pod.key) {
            entry.info.pod = pod;
        }
    }

    /// The pod is gone (deleted, or bound by someone else).
    pub fn delete(&mut self, key: &str) {
        self.pods.remove(key);
        self.unschedulable.remove(key);
        self.nominate(key, None);
    }

    /// Nominates a queued pod to `node` (preemption made room there), or
    /// takes its nomination back (`None`).
    pub fn nominate(&mut self, key: &str, node: Option<&str>) {
        match (node, self.pods.get(key)) {
            (Some(node), Some(entry)) => {
                let pod = entry.info.pod.clone();
                Arc::make_mut(&mut self.nominator).add(pod, node);
            }
            _ if self.nominator.node_of(key).is_some() => {
                Arc::make_mut(&mut self.nominator).remove(key);
            }
            _ => {}
        }
    }

    /// The nominations, to hand to a cycle's snapshot.
    pub fn nominator(&self) -> &Arc<Nominator> {
        &self.nominator
    }

    /// Follows a newer version of a pod: its `status.nominatedNodeName`, or
    /// the nomination it already had.
    fn update_nomination(&mut self, pod: &Arc<PodInfo>) {
        let nominated = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if nominated || self.nominator.node_of(&pod.key).is_some() {
            Arc::make_mut(&mut self.nominator).update(pod.clone());
        }
    }

    /// Moves pods whose backoff is over to active.
    pub fn flush_backoff_completed(&mut self, now: Instant) {
        while let Some(Reverse((expiry, seq, _))) = self.backoff.peek() {
            if *expiry > now {
                break;
            }
            let (seq, key) = (
                *seq,
                self.backoff
                    .pop()
                    .map(|Reverse((_, _, k))| k)
                    .unwrap_or_default(),
            );
            if self
                .pods
                .get(&key)
                .is_some_and(|e| e.place == Place::Backoff(seq))
            {
                self.push_active(&key);
            }
        }
    }

    /// Moves pods unschedulable for longer than the limit back to be tried.
    pub fn flush_unschedulable_leftover(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.pods.get(*k).is_some_and(|e| {
                    now.duration_since(e.since) >= self.config.max_in_unschedulable
                })
            })
            .cloned()
            .collect();
        for key in stale {
            self.move_to_active_or_backoff(&key, now);
        }
    }

    fn move_to_active_or_backoff(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.pods.get(key) else {
            return;
        };
        if self.backoff_expiry(entry) > now {
            self.push_backoff(key);
        } else {
            self.push_active(key);
        }
    }

    /// The next pod to schedule, if any is ready now.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPodInfo> {
        self.flush_backoff_completed(now);
        while let Some(top) = self.active.pop() {
            let Some(entry) = self.pods.get_mut(&top.key) else {
                continue;
            };
            if entry.place != Place::Active(top.seq.0) {
                continue;
            }
            self.scheduling_cycle += 1;
            entry.place = Place::InFlight(self.scheduling_cycle);
            entry.info.attempts += 1;
            return Some(entry.info.clone());
        }
        None
    }

    /// No node fits the pod: park it until an event may help.
    pub fn add_unschedulable(&mut self, key: &str, plugins: Vec<&'static str>, now: Instant) {
        let move_request_cycle = self.move_request_cycle;
        let Some(entry) = self.pods.get_mut(key) else {
            return;
        };
        let Place::InFlight(cycle) = entry.place else {
            return;
        };
        entry.info.unschedulable_plugins = plugins;
        entry.info.timestamp = now;
        entry.since = now;
        if move_request_cycle >= cycle {
            self.push_backoff(key);
        } else {
            entry.place = Place::Unschedulable;
            self.unschedulable.insert(key.to_string());
        }
    }

    /// The cycle failed for a reason other than fit (an error): retry after backoff.
    pub fn add_backoff(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.pods.get_mut(key) else {
            return;
        };
        entry.since = now;
        entry.info.timestamp = now;
        self.push_backoff(key);
    }

    /// The pod was bound: it leaves the queue.
    pub fn done(&mut self, key: &str) {
        self.delete(key);
    }

    /// A cluster event: unschedulable pods rejected by a plugin that cares
    /// (or by no plugin in particular) go to backoff or active.
    pub fn move_all_on_event(&mut self, event: ClusterEvent, now: Instant) {
        self.move_request_cycle = self.scheduling_cycle;
        let interested = self.interest.get(&event);
        let moving: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.pods.get(*k).is_some_and(|e| {
                    let plugins = &e.info.unschedulable_plugins;
                    plugins.is_empty()
                        || plugins
                            .iter()
                            .any(|p| interested.is_some_and(|i| i.contains(p)))
                })
            })
            .cloned()
            .collect();
        for key in moving {
            self.move_to_active_or_backoff(&key, now);
        }
    }

    /// When the earliest backoff ends, to sleep until then.
    pub fn next_backoff_expiry(&self) -> Option<Instant> {
        self.backoff.peek().map(|Reverse((expiry, _, _))| *expiry)
    }

    /// Sizes of (active, backoff, unschedulable), counting only live entries.
    pub fn lengths(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for entry in self.pods.values() {
            match entry.place {
                Place::Active(_) => counts.0 += 1,
                Place::Backoff(_) => counts.1 += 1,
                Place::Unschedulable => counts.2 += 1,
                Place::InFlight(_) => {}
            }
        }
        counts
    }

    /// Whether the pod is queued (in any sub-queue or in flight).
    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }
}

/// 1s, 2s, 4s, … up to the maximum, by attempts made.
fn backoff_duration(config: &QueueConfig, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    config
        .initial_backoff
        .saturating_mul(1 << doublings)
        .min(config.max_backoff)
}

/// Which plugins (across profiles) registered each event.
pub fn interest_of<'a>(
    plugins: impl IntoIterator<Item = &'a Arc<dyn crate::framework::Plugin>>,
) -> HashMap<ClusterEvent, HashSet<&'static str>> {
    let mut interest: HashMap<ClusterEvent, HashSet<&'static str>> = HashMap::new();
    for plugin in plugins {
        for event in plugin.events() {
            interest.entry(*event).or_default().insert(plugin.name());
        }
    }
    interest
}

#[cfg(test)]
mod tests;
