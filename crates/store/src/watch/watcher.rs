//! One watcher: what it watches, what it receives, and the hub's record of it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use skiff_proto::etcdserverpb::watch_create_request::FilterType;
use skiff_proto::etcdserverpb::WatchCreateRequest;
use skiff_proto::mvccpb::event::EventType;
use skiff_proto::mvccpb::Event;
use tokio::sync::mpsc;

use super::Shared;
use crate::mvcc::in_range;

/// What a watcher watches, as in etcd's `WatchCreateRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSpec {
    /// The first key of the range (or the single key).
    pub key: Vec<u8>,
    /// The end of the range, exclusive; empty = only `key`, `"\0"` = every key `>= key`.
    pub range_end: Vec<u8>,
    /// The first revision to deliver; `<= 0` means "from now" (current revision + 1).
    pub start_revision: i64,
    /// Deliver each event with the key's previous version.
    pub prev_kv: bool,
    /// etcd's `NOPUT` filter: drop put events.
    pub no_put: bool,
    /// etcd's `NODELETE` filter: drop delete events.
    pub no_delete: bool,
}

impl From<&WatchCreateRequest> for WatchSpec {
    /// The watch an etcd `WatchCreateRequest` asks for; unknown filter values are ignored,
    /// as etcd does.
    fn from(create: &WatchCreateRequest) -> WatchSpec {
        let filters = || {
            create
                .filters
                .iter()
                .filter_map(|f| FilterType::try_from(*f).ok())
        };
        WatchSpec {
            key: create.key.clone(),
            range_end: create.range_end.clone(),
            start_revision: create.start_revision,
            prev_kv: create.prev_kv,
            no_put: filters().any(|f| f == FilterType::Noput),
            no_delete: filters().any(|f| f == FilterType::Nodelete),
        }
    }
}

impl WatchSpec {
    /// Whether this watcher wants `event` (range and filters).
    pub(crate) fn wants(&self, event: &Event) -> bool {
        let Some(kv) = &event.kv else { return false };
        let filtered = match EventType::try_from(event.r#type) {
            Ok(EventType::Put) => self.no_put,
            Ok(EventType::Delete) => self.no_delete,
            Err(_) => false,
        };
        !filtered && in_range(&kv.key, &self.key, &self.range_end)
    }

    /// The events of `events` this watcher wants, `prev_kv` stripped unless asked for.
    pub(crate) fn select<'a>(&self, events: impl IntoIterator<Item = &'a Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|event| self.wants(event))
            .map(|event| {
                let mut event = event.clone();
                if !self.prev_kv {
                    event.prev_kv = None;
                }
                event
            })
            .collect()
    }
}

/// What a watcher receives, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchUpdate {
    /// Events in revision order; the watcher has now seen everything up to
    /// `revision` (the store revision to put in the response header).
    Events {
        /// The store revision this batch brings the watcher up to.
        revision: i64,
        /// The events, in revision order, never empty.
        events: Vec<Event>,
    },
    /// Answer to [`Watcher::request_progress`]: nothing is pending for this
    /// watcher up to `revision`.
    Progress {
        /// The store revision the watcher has fully seen.
        revision: i64,
    },
    /// The watcher is dead; nothing follows. `compact_revision` is non-zero when
    /// its position was compacted away, and `reason` is etcd's message.
    Canceled {
        /// The compaction revision, or 0 if canceled for another reason.
        compact_revision: i64,
        /// Why, as etcd words it.
        reason: String,
    },
}

/// The hub's key for a watcher (not the client's `watch_id`, which belongs to a gRPC stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct WatcherKey(pub(crate) u64);

/// The hub's record of one watcher.
pub(crate) struct WatcherState {
    pub(crate) spec: WatchSpec,
    pub(crate) tx: mpsc::Sender<WatchUpdate>,
    /// The first revision this watcher has not yet been sent.
    pub(crate) next_revision: i64,
    /// Synced watchers get events straight from `notify`; unsynced ones are
    /// owned by their catch-up task until they reach the current revision.
    pub(crate) synced: bool,
    /// A progress request is waiting for the watcher to catch up.
    pub(crate) progress_requested: bool,
}

/// A live watcher: receive its updates with [`Watcher::recv`] (or as a `Stream`).
/// Dropping it cancels the watch.
pub struct Watcher {
    pub(crate) key: WatcherKey,
    pub(crate) rx: mpsc::Receiver<WatchUpdate>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) created_revision: i64,
}

impl Watcher {
    /// The next update; `None` once the watcher is canceled and drained.
    pub async fn recv(&mut self) -> Option<WatchUpdate> {
        self.rx.recv().await
    }

    /// The store revision when this watcher was created (etcd puts it in the
    /// header of the `created` response).
    pub fn created_revision(&self) -> i64 {
        self.created_revision
    }

    /// Asks for a [`WatchUpdate::Progress`] once this watcher has been sent
    /// every event up to the current revision. A watcher whose start revision
    /// is still in the future answers once the store reaches it, as etcd does.
    pub fn request_progress(&self) {
        self.shared.request_progress(self.key);
    }
}

impl futures::Stream for Watcher {
    type Item = WatchUpdate;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchUpdate>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shared.lock().watchers.remove(&self.key);
    }
}
