//! The namespace controller: empties Terminating namespaces and finalizes them.
//!
//! Deleting a namespace only marks it: it gets `deletionTimestamp`, turns
//! `status.phase: Terminating`, and keeps its `spec.finalizers: ["kubernetes"]`.
//! As the Kubernetes controller-manager's namespace controller
//! (`pkg/controller/namespace/deletion`), this loop then deletes everything in
//! the namespace, resource by resource, and once nothing is left calls the
//! namespace's `finalize` subresource without the `kubernetes` finalizer, which
//! removes the namespace. skiff runs it inside the API server (started by
//! [`Registry::bootstrap`]), so a one-process `skiff up` cleans up namespaces
//! without a controller manager.
//!
//! The loop is level-triggered: a watch of Terminating namespaces says which
//! to look at, and each look compares what is left with nothing. Content that
//! cannot go at once (a bound pod in its grace period, an object with
//! finalizers) is looked at again every `namespace_resync`.
//!
//! # Caveats
//! No discovery of resources beyond the served ones, no `NamespaceDeletion*`
//! status conditions, and other finalizers in `spec.finalizers` are left for
//! their owners.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;
use skiff_api::resources::{self, RESOURCES};
use skiff_api::status::{ApiError, Reason};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{DeleteOptions, ListOptions, Registry, WatchOptions, WriteOptions};
use crate::object::is_deleting;
use crate::watch_cache::EventType;

/// The finalizer the namespace controller owns.
const KUBERNETES_FINALIZER: &str = "kubernetes";

/// Where one look at a namespace ended.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Finalized (or already gone): nothing more to do.
    Done,
    /// Content is still going; look again later.
    Waiting,
}

/// Runs the namespace controller until `stop` or until the registry is dropped.
pub(crate) async fn run(registry: Weak<Registry>, resync: Duration, stop: CancellationToken) {
    let namespaces = resources::lookup("namespaces").expect("namespaces are served");
    let options = WatchOptions {
        field_selector: "status.phase=Terminating".into(),
        ..Default::default()
    };
    loop {
        let watch = match registry.upgrade() {
            Some(registry) => registry.watch(namespaces, "", &options).await,
            None => return,
        };
        let mut watch = match watch {
            Ok(watch) => watch,
            Err(err) => {
                tracing::warn!(%err, "namespace controller: cannot watch namespaces");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(resync) => continue,
                }
            }
        };
        let mut terminating = BTreeSet::new();
        loop {
            let pending = !terminating.is_empty();
            tokio::select! {
                _ = stop.cancelled() => return,
                event = watch.next() => match event {
                    Some(event) if event.kind == EventType::Added || event.kind == EventType::Modified => {
                        terminating.insert(name_of(&event.object));
                    }
                    Some(event) if event.kind == EventType::Deleted => {
                        terminating.remove(&name_of(&event.object));
                        continue;
                    }
                    Some(_) => continue,
                    None => break, // The watch ended: watch again, from the current state.
                },
                _ = tokio::time::sleep(resync), if pending => {}
            }
            let Some(registry) = registry.upgrade() else {
                return;
            };
            let mut done = Vec::new();
            for namespace in &terminating {
                let span = tracing::debug_span!("namespace sync", namespace);
                match registry.sync_namespace(namespace).instrument(span).await {
                    Ok(Progress::Done) => done.push(namespace.clone()),
                    Ok(Progress::Waiting) => {}
                    Err(err) => {
                        tracing::warn!(namespace, %err, "namespace controller: sync failed")
                    }
                }
            }
            for namespace in done {
                terminating.remove(&namespace);
            }
        }
    }
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

impl Registry {
    /// Starts the namespace controller on this registry's runtime.
    pub(crate) fn start_namespace_controller(self: &Arc<Self>) {
        if self
            .namespace_controller
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return; // Already running.
        }
        let registry = Arc::downgrade(self);
        let resync = self.config.namespace_resync;
        tokio::spawn(run(registry, resync, self.stop.clone()));
    }

    /// Deletes what is left in a terminating namespace and finalizes it once
    /// it is empty.
    async fn sync_namespace(&self, namespace: &str) -> Result<Progress, ApiError> {
        let namespaces = resources::lookup("namespaces").expect("namespaces are served");
        let current = match self.read_existing(namespaces, "", namespace).await {
            Ok(current) => current.object,
            Err(err) if err.reason == Reason::NotFound => return Ok(Progress::Done),
            Err(err) => return Err(err),
        };
        if !is_deleting(&current) {
            return Ok(Progress::Done); // Not being deleted (anymore): nothing to do.
        }
        let mut left = 0;
        for resource in RESOURCES.iter().filter(|r| r.namespaced) {
            let list = self
                .list(resource, namespace, &ListOptions::default())
                .await?;
            for item in list["items"].as_array().into_iter().flatten() {
                left += 1;
                if is_deleting(item) {
                    continue; // Already going: its grace period or finalizers decide when.
                }
                let name = name_of(item);
                match self
                    .delete(resource, namespace, &name, &DeleteOptions::default())
                    .await
                {
                    Ok(_) => {}
                    Err(err) if err.reason == Reason::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        tracing::debug!(namespace, objects = left, "deleted the namespace's content");
        let mut finalize = current;
        let remaining: Vec<Value> = finalize["spec"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f.as_str() != Some(KUBERNETES_FINALIZER))
            .cloned()
            .collect();
        finalize["spec"]["finalizers"] = Value::Array(remaining);
        if let Some(meta) = finalize["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        let body = serde_json::to_vec(&finalize).expect("a Value always encodes");
        match self
            .update(
                namespaces,
                "",
                namespace,
                "finalize",
                &body,
                &WriteOptions::default(),
            )
            .await
        {
            Ok(_) => Ok(Progress::Done),
            // Content still there (bound pods in their grace period, finalizers).
            Err(err) if err.reason == Reason::Conflict => Ok(Progress::Waiting),
            Err(err) if err.reason == Reason::NotFound => Ok(Progress::Done),
            Err(err) => Err(err),
        }
    }
}
