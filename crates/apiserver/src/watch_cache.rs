//! The watch cache: one store watch per resource, shared by every client watch.
//!
//! As the Kubernetes API server's `Cacher`, each resource has one cache that
//! lists the resource once, then follows a single store watch from that
//! revision. It keeps
//! - the current state (every object, by key), for the synthetic ADDED events
//!   a watch without a resourceVersion starts with, and
//! - a ring of the most recent events, so a watch from a recent
//!   resourceVersion replays exactly what happened after it. As Kubernetes'
//!   ring, it keeps at least `watch_cache_size` events (100 by default) and
//!   every event younger than 75 s, up to [`WATCH_CACHE_MAX_EVENTS`]: a
//!   watcher that falls behind during a burst catches up from the ring.
//!
//! Client watches do not get their own store watch nor their own buffer: each
//! keeps a cursor (the last revision it has delivered) and reads the ring past
//! it whenever the cache's revision moves. A thousand watchers cost one store
//! watch and one copy of each event. A watcher whose cursor has fallen out of
//! the ring (or that asks for a revision older than the ring) gets an ERROR
//! event with a 410 Expired Status, and the client re-lists, as with
//! Kubernetes.
//!
//! # Resuming after a restart
//! A cache knows nothing from before the list it started from. A client that
//! watched an API server which then restarted comes back with a
//! resourceVersion from before the new cache's start; rather than 410 (which
//! would make it list everything again), such a watch is served by a store
//! watch of its own from that revision ([`WatchStream`] over the store), so it
//! gets every change after its resourceVersion exactly once. Only a watcher
//! that fell behind a running cache's ring, or a revision the store has
//! compacted away, gets 410.
//!
//! # Encoded once
//! Each object is held as an [`EncodedObject`]: parsed, with its
//! resourceVersion set, and encoded to JSON once when the change arrives. The
//! state map, the event ring and every watcher share it, so a change seen by a
//! thousand watchers costs one encoding; the gRPC layer sends those bytes.
//!
//! # Consistent lists
//! A list without a resourceVersion must show every write made before it
//! (Kubernetes' "consistent read"). As the Kubernetes API server does since
//! 1.31 (consistent list from cache), the registry reads the store's current
//! revision, then asks the cache to [wait](WatchCache::wait_for_revision)
//! until it is current to at least that revision, and answers from the cache.
//! Only changes under the resource's prefix reach the cache, so it learns that
//! it is current to a store revision from the store watch's *progress*
//! answers ([`WatchBatch::Progress`]), asked for on demand.
//!
//! # Selectors
//! A watch with label or field selectors sees an object that stops matching as
//! DELETED and one that starts matching as ADDED, so a client's view of "the
//! objects matching" stays right (Kubernetes' `watchCacheEvent` filtering).
//!
//! # Caveats
//! Bookmarks carry the cache's own revision (the last change to the resource),
//! not the store's progress. Kubernetes' own watch cache answers a watch from
//! before its start with 410; skiff serves it from the store instead (see
//! above). If the store watch breaks, the cache lists again and every watcher
//! older than that list ends with 410. A watcher that falls behind by more
//! than the ring holds (100 events and whatever is younger than 75 s) ends
//! with 410.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use skiff_api::fields::FieldSelector;
use skiff_api::labels::LabelSelector;
use skiff_api::resources::Resource;
use skiff_api::status::ApiError;
use skiff_proto::etcdserverpb::RangeRequest;
use skiff_proto::mvccpb::event::EventType as StoreEventType;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::object::{self, encoded_from_stored, EncodedObject};
use crate::storage::{
    prefix_end, ProgressRequester, Storage, StorageError, StorageWatch, WatchBatch,
};

/// How often a consistent list waiting for the cache asks the store for
/// progress again (an answer can predate the revision waited for).
const PROGRESS_REASK: Duration = Duration::from_millis(50);

/// The kind of a watch event, as Kubernetes names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object appeared (or started matching the selectors).
    Added,
    /// The object changed.
    Modified,
    /// The object is gone (or stopped matching the selectors).
    Deleted,
    /// Progress: no object changed up to the carried resourceVersion.
    Bookmark,
    /// The watch failed; the object is a Status. Nothing follows.
    Error,
}

impl EventType {
    /// The type as Kubernetes spells it (`ADDED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Bookmark => "BOOKMARK",
            EventType::Error => "ERROR",
        }
    }
}

/// One event of a client watch.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventType,
    /// The object (with its resourceVersion), or a Status for ERROR; the
    /// encoding is shared with every other watcher of the same change.
    pub object: EncodedObject,
}

/// The most events a watch cache keeps, however fresh (Kubernetes' upper
/// bound of its watch cache's capacity).
pub const WATCH_CACHE_MAX_EVENTS: usize = 100 * 1024;

/// How many events a watch cache keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retention {
    /// At least this many of the most recent events.
    pub(crate) events: usize,
    /// And every event younger than this, up to [`WATCH_CACHE_MAX_EVENTS`].
    pub(crate) fresh: Duration,
}

impl Retention {
    /// Whether the oldest of `len` kept events, seen at `oldest_seen`, goes.
    fn drops_oldest(&self, len: usize, oldest_seen: Instant) -> bool {
        len > self.events && (len > WATCH_CACHE_MAX_EVENTS || oldest_seen.elapsed() >= self.fresh)
    }
}

/// One change the cache saw.
#[derive(Debug)]
struct CachedEvent {
    /// When the cache saw it, for [`Retention::fresh`].
    seen: Instant,
    revision: i64,
    key: String,
    kind: EventType,
    /// The object after the change; for a delete, its last state with the
    /// delete's revision as resourceVersion.
    object: EncodedObject,
    /// The object before the change, for modifications and deletes.
    prev: Option<EncodedObject>,
}

struct CacheState {
    objects: BTreeMap<String, EncodedObject>,
    events: VecDeque<CachedEvent>,
    /// Every event after this revision is in `events`.
    oldest: i64,
    /// The revision of the list the cache (re)started from: it never saw
    /// what happened before, not even briefly.
    started_at: i64,
    /// The newest revision the cache has applied.
    revision: i64,
    /// The store revision the cache is known to be current to: every change
    /// of the resource up to it has been applied (`>= revision`).
    progress: i64,
}

/// The per-resource cache. Created by the registry on first use.
pub(crate) struct WatchCache {
    resource: &'static Resource,
    retention: Retention,
    state: RwLock<CacheState>,
    revision_tx: watch::Sender<i64>,
    /// `progress`, for consistent lists waiting on it.
    progress_tx: watch::Sender<i64>,
    /// Asks the current store watch for progress; `None` while no watch runs
    /// or when the store cannot answer in order.
    requester: Mutex<Option<ProgressRequester>>,
}

impl WatchCache {
    /// Lists the resource and starts following it; the returned cache is
    /// current as of the list.
    pub(crate) async fn start(
        resource: &'static Resource,
        storage: Arc<dyn Storage>,
        retention: Retention,
        stop: CancellationToken,
    ) -> Result<Arc<WatchCache>, StorageError> {
        let (objects, revision) = list_all(resource, storage.as_ref()).await?;
        let (revision_tx, _) = watch::channel(revision);
        let (progress_tx, _) = watch::channel(revision);
        let cache = Arc::new(WatchCache {
            resource,
            retention: Retention {
                events: retention.events.max(1),
                ..retention
            },
            state: RwLock::new(CacheState {
                objects,
                events: VecDeque::new(),
                oldest: revision,
                started_at: revision,
                revision,
                progress: revision,
            }),
            revision_tx,
            progress_tx,
            requester: Mutex::new(None),
        });
        // The store watch is open, and its progress requester in place,
        // before the cache is handed out: a consistent list made right away
        // can already ask the store for progress.
        let prefix = resource.prefix().into_bytes();
        let stream = storage.watch(prefix, revision + 1).await?;
        cache.set_requester(stream.progress_requester());
        let follower = follow(Arc::downgrade(&cache), storage, stream);
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = follower => {}
            }
        });
        Ok(cache)
    }

    fn read(&self) -> RwLockReadGuard<'_, CacheState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, CacheState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The revision the cache is current to.
    pub(crate) fn revision(&self) -> i64 {
        self.read().revision
    }

    /// The revision of the list the cache started from; a watch from before
    /// it asks for history this cache never held.
    pub(crate) fn started_at(&self) -> i64 {
        self.read().started_at
    }

    /// The objects under `prefix` now, and the revision they are current to.
    pub(crate) fn snapshot(&self, prefix: &str) -> (Vec<EncodedObject>, i64) {
        let state = self.read();
        (Self::objects_under(&state, prefix), state.revision)
    }

    /// The objects under `prefix` now, and the store revision the cache is
    /// known to be current to: the resourceVersion of a list served from the
    /// cache. A watch from it sees every later change.
    pub(crate) fn current(&self, prefix: &str) -> (Vec<EncodedObject>, i64) {
        let state = self.read();
        (Self::objects_under(&state, prefix), state.progress)
    }

    fn objects_under(state: &CacheState, prefix: &str) -> Vec<EncodedObject> {
        state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Waits until the cache is current to at least store revision
    /// `revision`, asking the store watch for progress, for at most `bound`.
    /// False when it is not by then, or when the store cannot be asked: the
    /// caller reads the store instead.
    pub(crate) async fn wait_for_revision(&self, revision: i64, bound: Duration) -> bool {
        let mut progress = self.progress_tx.subscribe();
        if *progress.borrow_and_update() >= revision {
            return true;
        }
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let requester = self
                .requester
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let Some(requester) = requester else {
                return false;
            };
            requester.request();
            let reask = (tokio::time::Instant::now() + PROGRESS_REASK).min(deadline);
            match tokio::time::timeout_at(reask, progress.changed()).await {
                Ok(Ok(())) if *progress.borrow_and_update() >= revision => return true,
                Ok(Ok(())) => {} // Progress, but not yet far enough: ask again.
                Ok(Err(_)) => return false, // The cache is gone.
                Err(_) if reask >= deadline => return false,
                Err(_) => {}
            }
        }
    }

    fn set_requester(&self, requester: Option<ProgressRequester>) {
        *self.requester.lock().unwrap_or_else(|p| p.into_inner()) = requester;
    }

    /// Records a progress answer: the cache has every change up to `revision`.
    fn progress(&self, revision: i64) {
        let mut state = self.write();
        if revision <= state.progress {
            return;
        }
        state.progress = revision;
        drop(state);
        self.progress_tx.send_replace(revision);
    }

    /// Applies one batch of store events, in revision order.
    fn apply(&self, events: Vec<skiff_proto::mvccpb::Event>) {
        let mut state = self.write();
        // One txn can change several keys at one revision, and a batch always
        // holds whole revisions: compare against the revision before the batch.
        let seen = state.revision;
        for event in events {
            let Some(kv) = event.kv else { continue };
            if kv.mod_revision <= seen {
                continue; // Already part of the list the cache started from.
            }
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            let prev = state.objects.get(&key).cloned();
            let cached = if event.r#type == StoreEventType::Delete as i32 {
                let Some(last) = prev.clone() else { continue };
                let mut last = last.value().clone();
                object::set_resource_version(&mut last, kv.mod_revision);
                state.objects.remove(&key);
                CachedEvent {
                    seen: Instant::now(),
                    revision: kv.mod_revision,
                    key,
                    kind: EventType::Deleted,
                    object: EncodedObject::new(last),
                    prev,
                }
            } else {
                let Ok(value) = encoded_from_stored(&kv.value, kv.mod_revision) else {
                    tracing::warn!(key, "skipping a stored value that is not JSON");
                    continue;
                };
                state.objects.insert(key.clone(), value.clone());
                CachedEvent {
                    seen: Instant::now(),
                    revision: kv.mod_revision,
                    key,
                    kind: if prev.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    object: value,
                    prev,
                }
            };
            state.revision = cached.revision;
            state.events.push_back(cached);
            while let Some(front) = state.events.front() {
                if !self.retention.drops_oldest(state.events.len(), front.seen) {
                    break;
                }
                state.oldest = front.revision;
                state.events.pop_front();
            }
        }
        let revision = state.revision;
        let moved = revision > state.progress;
        state.progress = state.progress.max(revision);
        drop(state);
        self.revision_tx.send_replace(revision);
        if moved {
            self.progress_tx.send_replace(revision);
        }
    }

    /// Replaces the state after the store watch broke.
    fn reset(&self, objects: BTreeMap<String, EncodedObject>, revision: i64) {
        let mut state = self.write();
        state.objects = objects;
        state.events.clear();
        state.oldest = revision;
        state.started_at = revision;
        state.revision = revision;
        state.progress = revision;
        drop(state);
        self.revision_tx.send_replace(revision);
        self.progress_tx.send_replace(revision);
    }
}

async fn list_all(
    resource: &Resource,
    storage: &dyn Storage,
) -> Result<(BTreeMap<String, EncodedObject>, i64), StorageError> {
    let prefix = resource.prefix().into_bytes();
    let resp = storage
        .range(RangeRequest {
            range_end: prefix_end(&prefix),
            key: prefix,
            ..Default::default()
        })
        .await?;
    let revision = resp.header.map(|h| h.revision).unwrap_or_default();
    let mut objects = BTreeMap::new();
    for kv in resp.kvs {
        if let Ok(value) = encoded_from_stored(&kv.value, kv.mod_revision) {
            objects.insert(String::from_utf8_lossy(&kv.key).into_owned(), value);
        }
    }
    Ok((objects, revision))
}

/// Follows the store watch `stream` until the cache is dropped; when the watch
/// breaks, lists again and opens a new watch from that list.
async fn follow(
    cache: std::sync::Weak<WatchCache>,
    storage: Arc<dyn Storage>,
    stream: StorageWatch,
) {
    let Some(resource) = cache.upgrade().map(|c| c.resource) else {
        return;
    };
    let prefix = resource.prefix().into_bytes();
    let mut stream = Some(stream);
    loop {
        let opened = match stream.take() {
            Some(stream) => Ok(stream),
            None => {
                // From what the cache holds: the list just made, or, when
                // that list failed, the last event applied.
                let Some(from) = cache.upgrade().map(|c| c.revision()) else {
                    return;
                };
                storage.watch(prefix.clone(), from + 1).await
            }
        };
        if let Ok(mut stream) = opened {
            if let Some(cache) = cache.upgrade() {
                cache.set_requester(stream.progress_requester());
            }
            while let Some(batch) = stream.next().await {
                let Some(cache) = cache.upgrade() else { return };
                match batch {
                    WatchBatch::Events(events) => cache.apply(events),
                    WatchBatch::Progress(revision) => cache.progress(revision),
                    WatchBatch::Compacted { .. } | WatchBatch::Failed(_) => break,
                }
            }
        }
        let Some(strong) = cache.upgrade() else {
            return;
        };
        strong.set_requester(None);
        drop(strong);
        tracing::warn!(
            resource = resource.resource,
            "store watch ended; listing again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        match list_all(resource, storage.as_ref()).await {
            Ok((objects, revision)) => {
                let Some(cache) = cache.upgrade() else { return };
                cache.reset(objects, revision);
            }
            Err(err) => tracing::warn!(%err, "listing for the watch cache failed"),
        }
    }
}

/// What a client watch (or a list) selects: keys under `prefix` whose object
/// the selectors match.
#[derive(Clone)]
pub(crate) struct Filter {
    pub(crate) prefix: String,
    pub(crate) selects: Arc<dyn Fn(&Value) -> bool + Send + Sync>,
}

impl Filter {
    /// A filter from parsed label and field selectors.
    pub(crate) fn new(prefix: String, labels: LabelSelector, fields: FieldSelector) -> Filter {
        Filter {
            prefix,
            selects: Arc::new(move |object: &Value| {
                (labels.is_empty() || labels.matches(&object::labels(object)))
                    && (fields.is_empty() || fields.matches(object))
            }),
        }
    }

    /// Whether the selectors match `object`.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        (self.selects)(object)
    }
}

/// A client watch on a [`WatchCache`]. Read it with [`WatchStream::next`].
pub struct WatchStream {
    cache: Arc<WatchCache>,
    filter: Filter,
    /// A watch of the store itself, for a start the cache never held.
    direct: Option<StorageWatch>,
    cursor: i64,
    pending: VecDeque<WatchEvent>,
    revisions: watch::Receiver<i64>,
    bookmarks: Option<Duration>,
    last_bookmark: i64,
    ended: bool,
}

impl WatchStream {
    /// A watch from `start`: `None` sends the current state as ADDED events
    /// first; `Some(rv)` sends exactly the changes after `rv`.
    pub(crate) fn new(
        cache: Arc<WatchCache>,
        filter: Filter,
        start: Option<i64>,
        bookmarks: Option<Duration>,
    ) -> WatchStream {
        let revisions = cache.revision_tx.subscribe();
        let mut pending = VecDeque::new();
        let cursor =
            match start {
                Some(rv) => rv,
                None => {
                    let (objects, revision) = cache.snapshot(&filter.prefix);
                    pending.extend(objects.into_iter().filter(|o| filter.matches(o)).map(
                        |object| WatchEvent {
                            kind: EventType::Added,
                            object,
                        },
                    ));
                    revision
                }
            };
        WatchStream {
            cache,
            filter,
            direct: None,
            cursor,
            pending,
            revisions,
            bookmarks,
            last_bookmark: cursor,
            ended: false,
        }
    }

    /// A watch of every change after `start`, read from the store rather than
    /// the cache: for a client resuming from a resourceVersion older than the
    /// cache's start (the API server restarted since it last read), while the
    /// store still holds that history. Below the store's compaction it ends
    /// with 410 Expired, as a cache watch does.
    pub(crate) async fn from_store(
        cache: Arc<WatchCache>,
        storage: &dyn Storage,
        filter: Filter,
        start: i64,
        bookmarks: Option<Duration>,
    ) -> Result<WatchStream, StorageError> {
        let direct = storage
            .watch(filter.prefix.clone().into_bytes(), start + 1)
            .await?;
        let mut stream = WatchStream::new(cache, filter, Some(start), bookmarks);
        stream.direct = Some(direct);
        Ok(stream)
    }

    /// The next event; `None` after an ERROR event.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            if self.direct.is_none() {
                self.fill();
                if !self.pending.is_empty() || self.ended {
                    continue;
                }
            }
            let tick = async {
                match self.bookmarks {
                    Some(every) => tokio::time::sleep(every).await,
                    None => futures::future::pending().await,
                }
            };
            let from_cache = self.direct.is_none();
            let direct = async {
                match self.direct.as_mut() {
                    Some(direct) => direct.next().await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.revisions.changed(), if from_cache => {
                    if changed.is_err() {
                        self.ended = true; // The cache is gone.
                    }
                }
                batch = direct => self.take_batch(batch),
                _ = tick => {
                    if self.cursor > self.last_bookmark {
                        self.last_bookmark = self.cursor;
                        self.pending.push_back(self.bookmark());
                    }
                }
            }
        }
    }

    /// Queues the events of one batch of a store watch.
    fn take_batch(&mut self, batch: Option<WatchBatch>) {
        match batch {
            Some(WatchBatch::Events(events)) => {
                for event in events {
                    let Some(kv) = event.kv else { continue };
                    let revision = kv.mod_revision;
                    let key = String::from_utf8_lossy(&kv.key).into_owned();
                    let prev = event
                        .prev_kv
                        .and_then(|p| encoded_from_stored(&p.value, p.mod_revision).ok());
                    let cached = if event.r#type == StoreEventType::Delete as i32 {
                        let Some(last) = prev.clone() else { continue };
                        let mut last = last.value().clone();
                        object::set_resource_version(&mut last, revision);
                        CachedEvent {
                            seen: Instant::now(),
                            revision,
                            key,
                            kind: EventType::Deleted,
                            object: EncodedObject::new(last),
                            prev,
                        }
                    } else {
                        let Ok(value) = encoded_from_stored(&kv.value, revision) else {
                            continue;
                        };
                        let created = kv.create_revision == revision;
                        CachedEvent {
                            seen: Instant::now(),
                            revision,
                            key,
                            kind: if created {
                                EventType::Added
                            } else {
                                EventType::Modified
                            },
                            object: value,
                            prev: if created { None } else { prev },
                        }
                    };
                    if let Some(out) = self.translate(&cached) {
                        self.pending.push_back(out);
                    }
                    self.cursor = self.cursor.max(revision);
                }
            }
            // Never asked for on a client's own store watch.
            Some(WatchBatch::Progress(_)) => {}
            Some(WatchBatch::Compacted { compact_revision }) => {
                self.pending.push_back(WatchEvent {
                    kind: EventType::Error,
                    object: EncodedObject::new(
                        ApiError::expired(self.cursor, compact_revision).to_json(),
                    ),
                });
                self.ended = true;
            }
            Some(WatchBatch::Failed(why)) => {
                self.pending.push_back(WatchEvent {
                    kind: EventType::Error,
                    object: EncodedObject::new(
                        ApiError::internal(format!("the store watch ended: {why}")).to_json(),
                    ),
                });
                self.ended = true;
            }
            None => self.ended = true,
        }
    }

    fn bookmark(&self) -> WatchEvent {
        WatchEvent {
            kind: EventType::Bookmark,
            object: EncodedObject::new(json!({
                "kind": self.cache.resource.kind,
                "apiVersion": self.cache.resource.api_version(),
                "metadata": {"resourceVersion": self.cursor.to_string()},
            })),
        }
    }

    /// Moves every cached event past the cursor into `pending`.
    fn fill(&mut self) {
        let state = self.cache.read();
        if self.cursor < state.oldest {
            let oldest = state.events.front().map_or(state.revision, |e| e.revision);
            self.pending.push_back(WatchEvent {
                kind: EventType::Error,
                object: EncodedObject::new(ApiError::expired(self.cursor, oldest).to_json()),
            });
            self.ended = true;
            return;
        }
        let start = state.events.partition_point(|e| e.revision <= self.cursor);
        for event in state.events.iter().skip(start) {
            if !event.key.starts_with(&self.filter.prefix) {
                continue;
            }
            if let Some(out) = self.translate(event) {
                self.pending.push_back(out);
            }
        }
        self.cursor = self.cursor.max(state.revision);
    }

    /// The event this watch sees for `event`, given its selectors.
    fn translate(&self, event: &CachedEvent) -> Option<WatchEvent> {
        let now = self.filter.matches(&event.object);
        let before = event.prev.as_ref().is_some_and(|p| self.filter.matches(p));
        let kind = match event.kind {
            EventType::Added if now => EventType::Added,
            EventType::Modified if now && before => EventType::Modified,
            EventType::Modified if now => EventType::Added,
            EventType::Modified if before => EventType::Deleted,
            EventType::Deleted if before => EventType::Deleted,
            _ => return None,
        };
        Some(WatchEvent {
            kind,
            object: event.object.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_its_minimum_and_fresh_events_up_to_the_bound() {
        let keep = Retention {
            events: 100,
            fresh: Duration::from_secs(75),
        };
        let now = Instant::now();
        assert!(!keep.drops_oldest(100, now), "the minimum always stays");
        assert!(!keep.drops_oldest(5_000, now), "fresh events stay past it");
        assert!(
            keep.drops_oldest(WATCH_CACHE_MAX_EVENTS + 1, now),
            "but not past the bound"
        );
        let stale = now - Duration::from_secs(76);
        assert!(
            keep.drops_oldest(101, stale),
            "stale events past the minimum go"
        );
        assert!(
            !keep.drops_oldest(100, stale),
            "the minimum stays even when stale"
        );
        let exact = Retention {
            events: 3,
            fresh: Duration::ZERO,
        };
        assert!(
            exact.drops_oldest(4, now),
            "no freshness: exactly the minimum"
        );
    }
}
