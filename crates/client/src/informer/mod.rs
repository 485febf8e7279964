//! Informers: a resource's objects kept in a local cache by list, then watch.
//!
//! As client-go's reflector and shared informer
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes>):
//!
//! 1. **List** every object (page by page) and replace the cache with them;
//!    the list's resourceVersion is where the watch starts. The first list
//!    marks the cache synced.
//! 2. **Watch** from that resourceVersion and apply each event to the cache,
//!    remembering the resourceVersion of the last event (bookmarks included).
//! 3. When the watch **ends** (the server's timeout) or **breaks** (the
//!    connection), watch again from the last resourceVersion: nothing is missed
//!    and nothing is replayed.
//! 4. When the server answers **410 Expired** (the resourceVersion is older
//!    than what it keeps), go back to 1: the new list is diffed against the
//!    cache, so handlers see the adds, updates and deletes that were missed.
//!
//! Every change to the cache is handed to the registered handlers
//! (`on_add`, `on_update`, `on_delete`) and to every [`Informer::subscribe`]
//! channel, after the cache holds it. Handlers are hints to look again, not a
//! log: a controller reads the cache for the current state.
//!
//! # Caveats
//! No periodic resync and no shared informer factory (one informer per
//! caller); failures are retried with exponential backoff forever.

mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use store::{IndexFn, ObjectKey, Store};

use kube_core::params::{ListParams, WatchParams};
use kube_core::WatchEvent;

use crate::api::{Api, Object};
use crate::error::{from_watch_status, Error};

/// One change to an informer's cache.
#[derive(Debug)]
pub enum Change<K> {
    /// An object appeared.
    Added(Arc<K>),
    /// An object changed from `old` to `new`.
    Updated {
        /// The state the cache held before.
        old: Arc<K>,
        /// The state it holds now.
        new: Arc<K>,
    },
    /// An object disappeared; this is its last known state.
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Added(k) => Change::Added(k.clone()),
            Change::Updated { old, new } => Change::Updated {
                old: old.clone(),
                new: new.clone(),
            },
            Change::Deleted(k) => Change::Deleted(k.clone()),
        }
    }
}

/// How an informer lists, watches and retries. `Default` suits a controller.
#[derive(Clone, Debug, PartialEq)]
pub struct InformerConfig {
    /// Which objects: selectors apply to the list and the watch alike.
    pub list: ListParams,
    /// Items per list page; `None` lists everything in one page.
    pub page_size: Option<u32>,
    /// Ask the server to close each watch after this many seconds; `None`:
    /// the server's default. The informer watches again from where it was.
    pub watch_timeout_seconds: Option<u32>,
    /// The first wait after a failed list or watch.
    pub initial_backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
}

impl Default for InformerConfig {
    fn default() -> Self {
        InformerConfig {
            list: ListParams::default(),
            page_size: Some(500),
            watch_timeout_seconds: None,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Counts of what an informer has done, for tests and metrics.
#[derive(Debug, Default)]
pub struct InformerStats {
    lists: AtomicU64,
    watches: AtomicU64,
}

impl InformerStats {
    /// How many full lists have been stored (1 + one per 410 Expired).
    pub fn lists(&self) -> u64 {
        self.lists.load(Ordering::Relaxed)
    }

    /// How many watches have been opened.
    pub fn watches(&self) -> u64 {
        self.watches.load(Ordering::Relaxed)
    }
}

type AddFn<K> = Box<dyn Fn(&Arc<K>) + Send + Sync>;
type UpdateFn<K> = Box<dyn Fn(&Arc<K>, &Arc<K>) + Send + Sync>;

/// Lists and watches one resource into a [`Store`]. Set it up, take its
/// [`Informer::store`], then [`Informer::run`] it.
pub struct Informer<K: Object> {
    api: Api<K>,
    config: InformerConfig,
    indexers: BTreeMap<String, IndexFn<K>>,
    store: Option<Store<K>>,
    on_add: Vec<AddFn<K>>,
    on_update: Vec<UpdateFn<K>>,
    on_delete: Vec<AddFn<K>>,
    subscribers: Vec<mpsc::UnboundedSender<Change<K>>>,
    stats: Arc<InformerStats>,
}

/// Why a watch stopped.
enum WatchEnd {
    /// The stream ended or broke: watch again from this resourceVersion.
    Resume {
        resource_version: String,
        error: Option<Error>,
    },
    /// 410 Expired: list again.
    Expired,
    /// Shutdown.
    Shutdown,
}

impl<K: Object> Informer<K> {
    /// An informer over `api`'s objects (its namespace, or all).
    pub fn new(api: Api<K>, config: InformerConfig) -> Informer<K> {
        Informer {
            api,
            config,
            indexers: BTreeMap::new(),
            store: None,
            on_add: Vec::new(),
            on_update: Vec::new(),
            on_delete: Vec::new(),
            subscribers: Vec::new(),
            stats: Arc::default(),
        }
    }

    /// Adds an index named `name`: `function` gives the values each object is
    /// filed under, for [`Store::by_index`]. Indexes are fixed once the store
    /// has been taken.
    pub fn with_index(
        mut self,
        name: &str,
        function: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Informer<K> {
        assert!(
            self.store.is_none(),
            "index {name:?} added after the informer's store was taken"
        );
        self.indexers.insert(name.to_string(), Arc::new(function));
        self
    }

    /// Calls `handler` for each object added to the cache.
    pub fn on_add(mut self, handler: impl Fn(&Arc<K>) + Send + Sync + 'static) -> Informer<K> {
        self.on_add.push(Box::new(handler));
        self
    }

    /// Calls `handler(old, new)` for each object changed in the cache.
    pub fn on_update(
        mut self,
        handler: impl Fn(&Arc<K>, &Arc<K>) + Send + Sync + 'static,
    ) -> Informer<K> {
        self.on_update.push(Box::new(handler));
        self
    }

    /// Calls `handler` with the last state of each object removed from the cache.
    pub fn on_delete(mut self, handler: impl Fn(&Arc<K>) + Send + Sync + 'static) -> Informer<K> {
        self.on_delete.push(Box::new(handler));
        self
    }

    /// A channel of every change to the cache, from now on.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Change<K>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.push(tx);
        rx
    }

    /// The cache this informer fills.
    pub fn store(&mut self) -> Store<K> {
        self.store
            .get_or_insert_with(|| Store::new(self.indexers.clone()))
            .clone()
    }

    /// What the informer has done so far.
    pub fn stats(&self) -> Arc<InformerStats> {
        self.stats.clone()
    }

    /// Lists and watches until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let store = self.store();
        let mut backoff = self.config.initial_backoff;
        // `None`: the cache must be (re)filled by a list.
        let mut resource_version: Option<String> = None;
        while !shutdown.is_cancelled() {
            let failure = match resource_version.take() {
                None => match self.relist(&store).await {
                    Ok(rv) => {
                        resource_version = Some(rv);
                        None
                    }
                    Err(err) => Some(err),
                },
                Some(rv) => match self.watch(&store, rv, &shutdown).await {
                    WatchEnd::Shutdown => return,
                    WatchEnd::Expired => None,
                    WatchEnd::Resume {
                        resource_version: rv,
                        error,
                    } => {
                        resource_version = Some(rv);
                        error
                    }
                },
            };
            match failure {
                None => backoff = self.config.initial_backoff,
                Some(err) => {
                    tracing::debug!(kind = %self.api.resource().kind, error = %err, ?backoff, "informer retries");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Steps 1 and 4: list everything, replace the cache, report the
    /// differences, and answer the list's resourceVersion.
    async fn relist(&self, store: &Store<K>) -> Result<String, Error> {
        let params = ListParams {
            limit: self.config.page_size,
            ..self.config.list.clone()
        };
        let list = self.api.list_all(&params).await?;
        self.stats.lists.fetch_add(1, Ordering::Relaxed);
        let mut stale: BTreeSet<ObjectKey> = store.keys().into_iter().collect();
        for object in list.items {
            stale.remove(&ObjectKey::of(&object));
            self.apply(store, WatchEvent::Modified(object));
        }
        for key in stale {
            if let Some(old) = store.remove(&key) {
                self.dispatch(Change::Deleted(old));
            }
        }
        store.mark_synced();
        let resource_version = list.metadata.resource_version.unwrap_or_default();
        let kind = &self.api.resource().kind;
        tracing::debug!(%kind, %resource_version, "informer listed");
        Ok(resource_version)
    }

    /// Steps 2 and 3: apply watch events from `resource_version` until the
    /// stream stops, and say why it stopped.
    async fn watch(
        &self,
        store: &Store<K>,
        mut resource_version: String,
        shutdown: &CancellationToken,
    ) -> WatchEnd {
        let params = WatchParams {
            label_selector: self.config.list.label_selector.clone(),
            field_selector: self.config.list.field_selector.clone(),
            timeout: self.config.watch_timeout_seconds,
            bookmarks: true,
            ..WatchParams::default()
        };
        let mut events = match self.api.watch(&params, &resource_version).await {
            Ok(events) => events,
            Err(err) if err.is_expired() => return WatchEnd::Expired,
            Err(err) => {
                return WatchEnd::Resume {
                    resource_version,
                    error: Some(err),
                }
            }
        };
        self.stats.watches.fetch_add(1, Ordering::Relaxed);
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return WatchEnd::Shutdown,
                event = events.next() => event,
            };
            let event = match event {
                None => {
                    return WatchEnd::Resume {
                        resource_version,
                        error: None,
                    }
                }
                Some(Err(err)) if err.is_expired() => return WatchEnd::Expired,
                Some(Err(err)) => {
                    return WatchEnd::Resume {
                        resource_version,
                        error: Some(err),
                    }
                }
                Some(Ok(event)) => event,
            };
            match event {
                WatchEvent::Error(status) if status.code == 410 => return WatchEnd::Expired,
                WatchEvent::Error(status) => {
                    return WatchEnd::Resume {
                        resource_version,
                        error: Some(from_watch_status(&status)),
                    }
                }
                WatchEvent::Bookmark(bookmark) => {
                    resource_version = bookmark.metadata.resource_version
                }
                WatchEvent::Added(ref o)
                | WatchEvent::Modified(ref o)
                | WatchEvent::Deleted(ref o) => {
                    if let Some(rv) = &o.meta().resource_version {
                        resource_version = rv.clone();
                    }
                    self.apply(store, event);
                }
            }
        }
    }

    /// Applies one event to the cache and reports the change it made.
    fn apply(&self, store: &Store<K>, event: WatchEvent<K>) {
        let change = match event {
            WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                let new = Arc::new(object);
                match store.insert(new.clone()) {
                    None => Change::Added(new),
                    // A relist finds most objects unchanged: no change to report.
                    Some(old) if same_version(old.as_ref(), new.as_ref()) => return,
                    Some(old) => Change::Updated { old, new },
                }
            }
            WatchEvent::Deleted(object) => {
                // The event carries the object's last state, newer than the cache's.
                store.remove(&ObjectKey::of(&object));
                Change::Deleted(Arc::new(object))
            }
            WatchEvent::Bookmark(_) | WatchEvent::Error(_) => return,
        };
        self.dispatch(change);
    }

    fn dispatch(&self, change: Change<K>) {
        match &change {
            Change::Added(new) => self.on_add.iter().for_each(|h| h(new)),
            Change::Updated { old, new } => self.on_update.iter().for_each(|h| h(old, new)),
            Change::Deleted(old) => self.on_delete.iter().for_each(|h| h(old)),
        }
        for subscriber in &self.subscribers {
            // A dropped receiver just stops listening.
            let _ = subscriber.send(change.clone());
        }
    }
}

fn same_version<K: Object>(a: &K, b: &K) -> bool {
    let (a, b) = (a.meta(), b.meta());
    a.resource_version.is_some() && a.resource_version == b.resource_version && a.uid == b.uid
}
