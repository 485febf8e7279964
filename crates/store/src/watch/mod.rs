//! The watch hub: fans applied events out to watchers, as etcd's `watchableStore`.
//!
//! A watcher asks for every change to a key or a range of keys from a *start
//! revision* on. Every write the store applies gets the next revision; the apply
//! loop hands that revision's events to [`WatchHub::notify`], and each watcher
//! receives the events it wants, in revision order, without gaps or duplicates.
//! See etcd's [watch API](https://etcd.io/docs/v3.5/learning/api/#watch-api)
//! and [`mvcc/watchable_store.go`](https://github.com/etcd-io/etcd/blob/main/server/storage/mvcc/watchable_store.go).
//!
//! # Synced and unsynced watchers
//! Like etcd, the hub splits watchers in two groups:
//! - **synced** watchers have been sent everything up to the current revision.
//!   `notify` hands them each new revision directly, with a non-blocking
//!   `try_send` into their bounded channel.
//! - **unsynced** watchers are behind: they started at a past revision, or their
//!   channel was full when `notify` came. Each gets a catch-up task
//!   (`catch_up`) that reads the missed events from [`WatchHistory`] (the MVCC
//!   store's past revisions), starting at the first revision the watcher has not
//!   been sent, sends them when the channel has room, and moves the watcher back
//!   to the synced group once it has reached the current revision.
//!
//! # Why a slow watcher never blocks writers
//! `notify` runs on the apply loop, which every write waits for. It never awaits a
//! watcher: when a channel is full it only marks the watcher unsynced and leaves
//! the rest to the catch-up task, which waits on that one channel. Nothing is lost,
//! because history still holds the events; if history was compacted past the
//! watcher's position meanwhile, the watcher is canceled with the compaction
//! revision, exactly as a watch started below the compaction is (etcd's
//! `ErrCompacted`), and the client re-lists.
//!
//! # Exactly once
//! The current revision and the watcher set live under one lock, which `notify`,
//! [`WatchHub::watch`] and the catch-up step all take. A watcher is created
//! against the revision current at that instant, and moves between the groups
//! only under the lock, so each revision reaches it exactly once: either from
//! `notify` or from history, never both.
//!
//! # Caveats
//! - History is read in one `spawn_blocking` call per chunk of
//!   [`CATCH_UP_REVISIONS`] revisions per watcher; etcd batches unsynced watchers
//!   into one shared read every 100ms. skiff favours one obvious task per watcher.
//! - There is no "victim" list and no limit on the number of catching-up watchers.
//! - `WatchHub::new` must run inside a tokio runtime; catch-up tasks are spawned on it.

mod catch_up;
mod history;
#[cfg(test)]
pub(crate) mod mock;
#[cfg(test)]
mod tests;
mod watcher;

// Developed here until it moves to `grpc/mod.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use skiff_proto::mvccpb::event::EventType;
use skiff_proto::mvccpb::Event;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

pub use history::{HistoryError, WatchHistory};
pub use watcher::{WatchSpec, WatchUpdate, Watcher};
use watcher::{WatcherKey, WatcherState};

/// How many revisions a catch-up task reads from history at a time.
pub const CATCH_UP_REVISIONS: i64 = 1000;

/// Tuning of the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// How many updates a watcher's channel holds before the watcher falls
    /// behind and catches up from history.
    pub channel_capacity: usize,
    /// How often an idle watcher that asked for `progress_notify` gets an
    /// empty response with the current revision (etcd's default: 10 minutes).
    pub progress_notify_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            // etcd's chanBufLen.
            channel_capacity: 128,
            progress_notify_interval: Duration::from_secs(10 * 60),
        }
    }
}

/// The watch hub. Cheap to clone; all clones share one set of watchers.
#[derive(Clone)]
pub struct WatchHub {
    shared: Arc<Shared>,
}

/// What the hub, its watchers and their catch-up tasks share.
pub(crate) struct Shared {
    state: Mutex<HubState>,
    history: Arc<dyn WatchHistory>,
    options: WatchOptions,
    runtime: tokio::runtime::Handle,
}

/// Everything that must change together, under one lock.
pub(crate) struct HubState {
    current_revision: i64,
    next_key: u64,
    pub(crate) watchers: HashMap<WatcherKey, WatcherState>,
}

impl WatchHub {
    /// A hub over `history`, whose latest applied revision is `current_revision`.
    /// Must be called inside a tokio runtime.
    pub fn new(
        history: Arc<dyn WatchHistory>,
        current_revision: i64,
        options: WatchOptions,
    ) -> Self {
        let state = HubState {
            current_revision,
            next_key: 0,
            watchers: HashMap::new(),
        };
        let shared = Shared {
            state: Mutex::new(state),
            history,
            options,
            runtime: tokio::runtime::Handle::current(),
        };
        WatchHub {
            shared: Arc::new(shared),
        }
    }

    /// Called by the apply loop after revision `revision` is applied, strictly in
    /// revision order (revisions may skip only if a revision produced no events).
    /// Events carry `prev_kv` always (the hub strips it for watchers that did not
    /// ask). Never blocks on watchers.
    /// Events may lack `prev_kv`: the hub reads it from history for the watchers
    /// that ask for it, and only then.
    pub fn notify(&self, revision: i64, mut events: Vec<Event>) {
        let mut state = self.shared.lock();
        assert!(
            revision > state.current_revision,
            "watch hub notified of revision {revision} after revision {}",
            state.current_revision
        );
        if state.watchers.values().any(|w| w.spec.prev_kv) {
            fill_prev_kv(self.shared.history.as_ref(), &mut events);
        }
        state.current_revision = revision;
        let mut fell_behind = Vec::new();
        state.watchers.retain(|&key, watcher| {
            if !watcher.synced || watcher.next_revision > revision {
                // Catching up, or waiting for a future start revision.
                return true;
            }
            match deliver(watcher, revision, &events) {
                Delivery::Sent => true,
                Delivery::FellBehind => {
                    watcher.synced = false;
                    fell_behind.push(key);
                    true
                }
                Delivery::Closed => false,
            }
        });
        for key in fell_behind {
            self.shared.start_catch_up(&state, key);
        }
    }

    /// Moves the hub to `revision` without events: the state machine was
    /// replaced by a snapshot, so the changes in between are only in history.
    /// Every watcher that was live catches up from there.
    pub(crate) fn jump_to(&self, revision: i64) {
        let mut state = self.shared.lock();
        if revision <= state.current_revision {
            return;
        }
        state.current_revision = revision;
        let behind: Vec<WatcherKey> = state
            .watchers
            .iter_mut()
            .filter(|(_, w)| w.synced && w.next_revision <= revision)
            .map(|(key, w)| {
                w.synced = false;
                *key
            })
            .collect();
        for key in behind {
            self.shared.start_catch_up(&state, key);
        }
    }

    /// The latest revision the hub has been notified of.
    pub fn current_revision(&self) -> i64 {
        self.shared.lock().current_revision
    }

    /// How many watchers are registered (for tests).
    #[cfg(test)]
    pub(crate) fn watcher_count(&self) -> usize {
        self.shared.lock().watchers.len()
    }

    /// How often idle `progress_notify` watchers get a progress response.
    pub fn progress_notify_interval(&self) -> Duration {
        self.shared.options.progress_notify_interval
    }

    /// Creates a watcher for `spec`. It is sent every wanted event from its
    /// start revision on (a past start replays history first; a start below the
    /// compaction cancels it with [`WatchUpdate::Canceled`]), then live events,
    /// until it is dropped.
    pub fn watch(&self, spec: WatchSpec) -> Watcher {
        let (tx, rx) = mpsc::channel(self.shared.options.channel_capacity.max(1));
        let mut state = self.shared.lock();
        let current = state.current_revision;
        let key = WatcherKey(state.next_key);
        state.next_key += 1;
        let next_revision = if spec.start_revision <= 0 {
            current + 1
        } else {
            spec.start_revision
        };
        // A start at or below the current revision must read history first.
        let synced = next_revision > current;
        let record = WatcherState {
            spec,
            tx,
            next_revision,
            synced,
            progress_requested: false,
        };
        state.watchers.insert(key, record);
        if !synced {
            self.shared.start_catch_up(&state, key);
        }
        drop(state);
        Watcher {
            key,
            rx,
            shared: Arc::clone(&self.shared),
            created_revision: current,
        }
    }
}

/// How handing one revision to a synced watcher went.
enum Delivery {
    Sent,
    /// The channel is full: the watcher must catch up from `next_revision`.
    FellBehind,
    /// The watcher's receiver is gone.
    Closed,
}

/// Hands revision `revision` to a synced watcher without waiting, followed by
/// the answer to a pending progress request.
fn deliver(watcher: &mut WatcherState, revision: i64, events: &[Event]) -> Delivery {
    let events = watcher.spec.select(events);
    if !events.is_empty() {
        match watcher
            .tx
            .try_send(WatchUpdate::Events { revision, events })
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Delivery::FellBehind,
            Err(TrySendError::Closed(_)) => return Delivery::Closed,
        }
    }
    watcher.next_revision = revision + 1;
    if watcher.progress_requested {
        // A watcher with a future start revision has just reached it.
        match watcher.tx.try_send(WatchUpdate::Progress { revision }) {
            Ok(()) => watcher.progress_requested = false,
            Err(TrySendError::Full(_)) => return Delivery::FellBehind,
            Err(TrySendError::Closed(_)) => return Delivery::Closed,
        }
    }
    Delivery::Sent
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HubState> {
        // The state stays consistent even if a holder panicked: every update
        // under the lock is a single assignment or insert.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns the task that brings watcher `key` (already marked unsynced) up to date.
    fn start_catch_up(self: &Arc<Self>, state: &HubState, key: WatcherKey) {
        let Some(watcher) = state.watchers.get(&key) else {
            return;
        };
        let tx = watcher.tx.clone();
        self.runtime
            .spawn(catch_up::catch_up(Arc::clone(self), key, tx));
    }

    /// See [`Watcher::request_progress`].
    pub(crate) fn request_progress(self: &Arc<Self>, key: WatcherKey) {
        let mut state = self.lock();
        let current = state.current_revision;
        let Some(watcher) = state.watchers.get_mut(&key) else {
            return;
        };
        if !watcher.synced || watcher.next_revision != current + 1 {
            // Catching up or not yet started: answered when it reaches the present.
            watcher.progress_requested = true;
            return;
        }
        match watcher
            .tx
            .try_send(WatchUpdate::Progress { revision: current })
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                watcher.progress_requested = true;
                watcher.synced = false;
                self.start_catch_up(&state, key);
            }
            Err(TrySendError::Closed(_)) => {
                state.watchers.remove(&key);
            }
        }
    }
}

/// Reads the missing `prev_kv` of every change that had a previous version (a
/// delete, or a put that did not create its key).
fn fill_prev_kv(history: &dyn WatchHistory, events: &mut [Event]) {
    for event in events.iter_mut().filter(|e| e.prev_kv.is_none()) {
        let Some(kv) = &event.kv else { continue };
        let creation = event.r#type == EventType::Put as i32 && kv.version == 1;
        if !creation {
            event.prev_kv = history.prev_kv(&kv.key, kv.mod_revision);
        }
    }
}
