//! The registry: every verb of every served resource, free of any transport.
//!
//! As the Kubernetes API server's generic registry (`registry/generic/registry/
//! store.go`), one [`Registry`] serves all resources from their
//! [`Resource`] description: decode → default → validate → write with an etcd
//! txn → answer. resourceVersion is the store's `mod_revision` of the key, so
//! optimistic concurrency is a txn comparing it.
//!
//! # Layout
//! - `mod.rs`: the [`Registry`] handle, get and watch.
//! - `create.rs`: create, with generateName.
//! - `write.rs`: update (main resource, status and finalize subresources,
//!   generation) and patch (merge, JSON, strategic), over `guaranteed_update`;
//!   the txn every write ends in.
//! - `apply.rs`: server-side apply, creating the object when absent.
//! - `managed_fields/`: who owns which fields (`metadata.managedFields`),
//!   recorded on every write that names a field manager; apply's merge,
//!   conflicts and removals.
//! - `delete.rs`: delete with preconditions, finalizers and grace periods.
//! - `binding.rs`: subresources created by POST — pods/binding.
//! - `collection.rs`: deletecollection — every object a list selects, deleted one by one.
//! - `scale.rs`: the `scale` subresource (autoscaling/v1 Scale) of Deployments
//!   and ReplicaSets.
//! - `strategy/`: what each kind does differently — Kubernetes' rest
//!   strategies as one trait with defaults, and the table from kind to
//!   strategy (`pod.rs`, `service.rs`, `namespace.rs`, `node.rs`).
//! - `list.rs`: list — consistent lists from the watch cache, paging and
//!   exact revisions from the store.
//! - `allocator.rs`: Service ClusterIPs and NodePorts, kept in the store.
//! - `tests/`: the behaviour, each scenario run over the in-process store
//!   and over a real etcd (`tests/fixture.rs`), by topic: admission, lists,
//!   restarts, selectors, watches.
//!
//! # Adding a kind
//! A kind is served once it is in `skiff_api::resources::RESOURCES`, with
//! its defaults and validation in `skiff_api::admission`. Only when it
//! behaves unlike the generic store (status set on create, addresses to
//! allocate, a delete of its own, a subresource to create) does it get a
//! strategy: one file under `strategy/` and one entry in its table.
//!
//! # Where to start
//! [`Registry::create`] (`create.rs`) follows a new object from bytes to the
//! store; `strategy/mod.rs` lists every point where a kind may differ.
//!
//! # Caveats
//! No admission plugins beyond defaulting and validation. Every kind gets `generation`,
//! where Kubernetes sets it only for kinds with a spec.

mod allocator;
mod apply;
mod binding;
mod collection;
mod create;
mod delete;
mod list;
mod managed_fields;
mod scale;
mod strategy;
pub mod write;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use skiff_api::fields::FieldSelector;
use skiff_api::labels::LabelSelector;
use skiff_api::resources::{self, Resource};
use skiff_api::status::ApiError;
use skiff_proto::etcdserverpb::RangeRequest;
use tokio::sync::OnceCell;

pub use allocator::ServiceRanges;
pub use delete::DeleteOptions;

use crate::clock::{Clock, Random, SystemClock};
use crate::object::{from_stored, parse_resource_version, FieldValidation};
use crate::storage::{Storage, StorageError};
use crate::watch_cache::{Filter, Retention, WatchCache, WatchStream};

/// The namespaces every cluster has, created by [`Registry::bootstrap`].
pub(crate) const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// How the registry is set up. `Default` gives Kubernetes' defaults.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Service ClusterIP and NodePort ranges.
    pub service_ranges: ServiceRanges,
    /// How many recent events each resource's watch cache keeps at least
    /// (the Kubernetes API server's default is 100).
    pub watch_cache_size: usize,
    /// Events younger than this stay in the watch cache even past
    /// `watch_cache_size` (up to [`crate::watch_cache::WATCH_CACHE_MAX_EVENTS`]), so a watcher
    /// that falls behind during a burst catches up instead of getting 410
    /// Expired: the Kubernetes API server keeps 75 s of events this way.
    /// Zero keeps exactly `watch_cache_size`.
    pub watch_cache_fresh: Duration,
    /// How often a watch that allows bookmarks gets one, when it has progressed.
    pub bookmark_interval: Duration,
    /// How long a list without a resourceVersion waits for the watch cache
    /// to catch up with the store before reading the store instead
    /// (the Kubernetes API server waits up to 3 s).
    pub consistent_list_wait: Duration,
    /// Seed of UIDs, generated names and allocations; `None` = from the OS.
    pub seed: Option<u64>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            service_ranges: ServiceRanges::default(),
            watch_cache_size: 100,
            watch_cache_fresh: Duration::from_secs(75),
            bookmark_interval: Duration::from_secs(60),
            consistent_list_wait: Duration::from_secs(3),
            seed: None,
        }
    }
}

/// Options of a write (create, update, patch).
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// What to do with unknown fields.
    pub field_validation: FieldValidation,
    /// Check and answer, but store nothing.
    pub dry_run: bool,
    /// Who makes the change (`fieldManager`), recorded in managedFields.
    pub field_manager: String,
    /// Server-side apply: take over fields other managers own instead of
    /// answering 409 Conflict (`force=true`).
    pub force: bool,
}

/// Options of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// A label selector, as `kubectl -l`.
    pub label_selector: String,
    /// A field selector, as `--field-selector`.
    pub field_selector: String,
    /// The most items to return; 0 = all.
    pub limit: i64,
    /// The continue token of the previous page.
    pub continue_token: String,
    /// "" = the latest state (linearizable: from the watch cache once it has
    /// caught up with the store's revision, else from the store); "0" = any
    /// state (the watch cache);
    /// otherwise the state at that exact revision (Kubernetes' `Exact` match).
    pub resource_version: String,
}

/// Options of a watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// "" or "0": the current state as ADDED events, then changes; otherwise
    /// every change after this resourceVersion.
    pub resource_version: String,
    /// A label selector.
    pub label_selector: String,
    /// A field selector.
    pub field_selector: String,
    /// Send BOOKMARK events.
    pub allow_watch_bookmarks: bool,
}

/// The answer to a write: the object (or a Status) and warnings for the client.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The object as stored, with its resourceVersion; or a Success Status.
    pub object: Value,
    /// Warnings, as Kubernetes' `Warning` headers.
    pub warnings: Vec<String>,
}

/// The registry. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Registry {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    random: Random,
    config: RegistryConfig,
    caches: HashMap<&'static str, OnceCell<Arc<WatchCache>>>,
    /// Stops the watch caches' store watches when the registry is dropped.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A key read from the store: the object and its `mod_revision`.
pub(crate) struct Current {
    pub(crate) object: Value,
    pub(crate) mod_revision: i64,
}

pub(crate) fn storage_error(err: StorageError) -> ApiError {
    match err {
        StorageError::TooLarge => {
            ApiError::too_large("etcdserver: request is too large")
        }
        StorageError::Compacted { compact_revision } => ApiError::new(
            skiff_api::status::Reason::Expired,
            format!("The resourceVersion for the provided list is too old (compacted to {compact_revision})."),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

impl Registry {
    /// A registry over `storage`, with the system clock.
    pub fn new(storage: Arc<dyn Storage>, config: RegistryConfig) -> Registry {
        Registry::with_clock(storage, config, Arc::new(SystemClock))
    }

    /// A registry over `storage` reading the time from `clock`.
    pub fn with_clock(
        storage: Arc<dyn Storage>,
        config: RegistryConfig,
        clock: Arc<dyn Clock>,
    ) -> Registry {
        let caches = resources::RESOURCES
            .iter()
            .map(|r| (r.resource, OnceCell::new()))
            .collect();
        Registry {
            storage,
            clock,
            random: Random::new(config.seed),
            config,
            caches,
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// The storage the registry writes to.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The resource's watch cache, started on first use.
    async fn cache(&self, resource: &'static Resource) -> Result<Arc<WatchCache>, ApiError> {
        let cell = self.caches.get(resource.resource).ok_or_else(|| {
            ApiError::internal(format!("no watch cache for {}", resource.resource))
        })?;
        let cache = cell
            .get_or_try_init(|| {
                WatchCache::start(
                    resource,
                    self.storage.clone(),
                    Retention {
                        events: self.config.watch_cache_size,
                        fresh: self.config.watch_cache_fresh,
                    },
                    self.stop.clone(),
                )
            })
            .await
            .map_err(storage_error)?;
        Ok(cache.clone())
    }

    /// Starts every resource's watch cache now, as the Kubernetes API server
    /// does at startup, so that a watch from any resourceVersion seen after
    /// this point can be served (a cache started later begins at its own list).
    pub(crate) async fn start_watch_caches(&self) -> Result<(), ApiError> {
        let started = resources::RESOURCES
            .iter()
            .map(|resource| self.cache(resource));
        futures::future::try_join_all(started).await?;
        Ok(())
    }

    /// Prepares a fresh or restarted API server: starts the watch caches,
    /// creates Kubernetes' system namespaces (`default`, `kube-system`,
    /// `kube-public`, `kube-node-lease`) when they are missing, as the
    /// Kubernetes API server's bootstrap controller does.
    pub async fn bootstrap(self: &Arc<Self>) -> Result<(), ApiError> {
        self.start_watch_caches().await?;
        let namespaces = resources::lookup("namespaces").expect("namespaces are served");
        // All at once: the store commits them together, with one sync of its log.
        let created = SYSTEM_NAMESPACES.iter().map(|name| async move {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let body = serde_json::to_vec(&namespace).expect("a Value always encodes");
            match self
                .create(namespaces, "", &body, &WriteOptions::default())
                .await
            {
                Ok(_) => tracing::info!(namespace = name, "created system namespace"),
                Err(e) if e.reason == skiff_api::status::Reason::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            Ok(())
        });
        futures::future::try_join_all(created).await?;
        Ok(())
    }

    /// Reads one key at the newest revision.
    pub(crate) async fn read(&self, key: &str) -> Result<Option<Current>, ApiError> {
        let resp = self
            .storage
            .range(RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .map_err(storage_error)?;
        match resp.kvs.into_iter().next() {
            Some(kv) => Ok(Some(Current {
                object: from_stored(&kv.value, kv.mod_revision)?,
                mod_revision: kv.mod_revision,
            })),
            None => Ok(None),
        }
    }

    /// Reads one object, NotFound when it does not exist.
    pub(crate) async fn read_existing(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Current, ApiError> {
        self.read(&resource.key(namespace, name))
            .await?
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// Gets one object. Every resourceVersion is served from the store's newest
    /// state, which is at least as new as any the client can have seen.
    pub async fn get(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<Value, ApiError> {
        parse_resource_version(resource_version)?;
        tracing::trace!(resource = resource.resource, namespace, name, "get");
        Ok(self.read_existing(resource, namespace, name).await?.object)
    }

    /// Watches a resource through its watch cache.
    pub async fn watch(
        &self,
        resource: &'static Resource,
        namespace: &str,
        options: &WatchOptions,
    ) -> Result<WatchStream, ApiError> {
        let labels =
            LabelSelector::parse(&options.label_selector).map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(resource.kind, &options.field_selector)
            .map_err(ApiError::bad_request)?;
        let start = parse_resource_version(&options.resource_version)?.filter(|&rv| rv > 0);
        let cache = self.cache(resource).await?;
        let filter = Filter::new(resource.namespace_prefix(namespace), labels, fields);
        let bookmarks = options
            .allow_watch_bookmarks
            .then_some(self.config.bookmark_interval);
        match start {
            // History from before this cache started (a client resuming
            // across an API server restart) comes from the store itself.
            Some(rv) if rv < cache.started_at() => {
                WatchStream::from_store(cache, self.storage.as_ref(), filter, rv, bookmarks)
                    .await
                    .map_err(storage_error)
            }
            _ => Ok(WatchStream::new(cache, filter, start, bookmarks)),
        }
    }

    /// The newest revision a resource's watch cache has seen, if it runs (for messages).
    pub(crate) fn cache_revision_hint(&self, resource: &Resource) -> i64 {
        self.caches
            .get(resource.resource)
            .and_then(|cell| cell.get())
            .map_or(0, |cache| cache.revision())
    }

    /// The registry clock's time in Unix seconds (ages in tables).
    pub(crate) fn unix_now(&self) -> i64 {
        crate::clock::unix_seconds(&*self.clock)
    }

    pub(crate) fn now(&self) -> String {
        crate::clock::rfc3339(self.clock.now())
    }

    /// The registry's clock, for what renders times outside it (a Table's ages).
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub(crate) fn now_plus(&self, seconds: i64) -> String {
        let at = self.clock.now() + Duration::from_secs(seconds.max(0) as u64);
        crate::clock::rfc3339(at)
    }
}
