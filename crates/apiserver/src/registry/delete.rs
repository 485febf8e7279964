//! Deletes: preconditions, finalizers, graceful pod deletion and namespace
//! termination.
//!
//! As Kubernetes' graceful deletion (`registry/rest/delete.go`):
//! - an object with finalizers gets `deletionTimestamp` and stays until an
//!   update empties its finalizers;
//! - `propagationPolicy` Foreground and Orphan are recorded as the
//!   `foregroundDeletion` and `orphan` finalizers for the garbage collector.
//!
//! The kind's [`Strategy`] says what differs (`terminate`,
//! `grace_period_seconds`, `release`):
//! - a pod bound to a node gets `deletionTimestamp` (now + grace period) and
//!   `deletionGracePeriodSeconds`; its kubelet stops it and deletes it again
//!   with grace period 0. An unbound pod goes at once;
//! - a namespace turns `Terminating` and keeps its `kubernetes` finalizer until
//!   the namespace controller (skiff-controllers) has emptied it and calls `finalize`;
//! - a Service frees its ClusterIP and NodePorts in the txn that deletes it.

use serde::Deserialize;
use serde_json::{json, Value};
use skiff_api::resources::{self, Resource, RESOURCES};
use skiff_api::status::ApiError;
use skiff_proto::etcdserverpb::RangeRequest;

use super::strategy::{self, Strategy};
use super::write::{success_status, Change, Outcome};
use super::{storage_error, Registry, Reply};
use crate::object::{finalizers, meta_mut, meta_str};
use crate::storage::prefix_end;

/// A meta/v1 `DeleteOptions`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    /// Seconds before the object is deleted; 0 = at once. Only pods honour it.
    pub grace_period_seconds: Option<i64>,
    /// Conditions the object must meet for the delete to go ahead.
    #[serde(default)]
    pub preconditions: Preconditions,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    /// Check and answer, but store nothing.
    #[serde(skip)]
    pub dry_run: bool,
}

/// `DeleteOptions.preconditions`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// The object's uid must be this.
    pub uid: Option<String>,
    /// The object's resourceVersion must be this.
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    /// Parses a DeleteOptions JSON body; empty means the defaults.
    pub fn from_json(body: &[u8]) -> Result<DeleteOptions, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(DeleteOptions::default());
        }
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))
    }
}

impl Registry {
    /// Deletes an object, or marks it for deletion when something must happen
    /// first. Answers the object when it stays, a Success Status when it is gone.
    pub async fn delete(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Reply, ApiError> {
        tracing::debug!(resource = resource.resource, namespace, name, "delete");
        let now = self.now();
        let strategy = strategy::for_kind(resource);
        let outcome = self
            .guaranteed_update(resource, namespace, name, options.dry_run, |current, _| {
                check_preconditions(resource, name, current, &options.preconditions)?;
                self.plan_delete(strategy, current, options, &now)
            })
            .await?;
        let object = match outcome {
            Outcome::Stored(object) => object,
            Outcome::Deleted(object) => success_status(
                200,
                Some(json!({
                    "name": name,
                    "group": resource.group,
                    "kind": resource.resource,
                    "uid": meta_str(&object, "uid"),
                })),
            ),
        };
        Ok(Reply {
            object,
            warnings: Vec::new(),
        })
    }

    /// What a delete does to `current`: the kind's own termination, or the
    /// finalizers and grace period that keep it a while, or its removal.
    fn plan_delete(
        &self,
        strategy: &dyn Strategy,
        current: &Value,
        options: &DeleteOptions,
        now: &str,
    ) -> Result<Change, ApiError> {
        if let Some(next) = strategy.terminate(current, now) {
            return Ok(if next == *current {
                Change::Unchanged
            } else {
                Change::Put(next, Default::default())
            });
        }
        let mut next = current.clone();
        let mut pending = finalizers(current);
        match options.propagation_policy.as_deref() {
            None | Some("Background") => {}
            Some("Foreground") => add_finalizer(&mut next, &mut pending, "foregroundDeletion"),
            Some("Orphan") => add_finalizer(&mut next, &mut pending, "orphan"),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy {other:?} is not one of Orphan, Background, Foreground"
                )))
            }
        }
        let grace = strategy.grace_period_seconds(current, options.grace_period_seconds);
        let graceful = grace > 0;
        if pending.is_empty() && !graceful {
            return Ok(Change::Delete(strategy.release(current)));
        }
        // The object stays for now: stamp it, or shorten a grace period already running.
        let running = current["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if running.is_some_and(|r| r <= grace) && next == *current {
            return Ok(Change::Unchanged);
        }
        let meta = meta_mut(&mut next);
        meta.insert(
            "deletionTimestamp".into(),
            json!(if graceful {
                self.now_plus(grace)
            } else {
                now.to_string()
            }),
        );
        meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        Ok(Change::Put(next, Default::default()))
    }

    /// A terminating namespace may be finalized only once it holds nothing.
    pub(crate) async fn check_namespace_empty(&self, namespace: &str) -> Result<(), ApiError> {
        let namespaces = resources::lookup("namespaces").expect("namespaces are served");
        for resource in RESOURCES.iter().filter(|r| r.namespaced) {
            let prefix = resource.namespace_prefix(namespace);
            let resp = self
                .storage
                .range(RangeRequest {
                    key: prefix.as_bytes().to_vec(),
                    range_end: prefix_end(prefix.as_bytes()),
                    count_only: true,
                    ..Default::default()
                })
                .await
                .map_err(storage_error)?;
            if resp.count > 0 {
                return Err(ApiError::conflict(
                    namespaces,
                    namespace,
                    &format!(
                        "the namespace still holds {} {}",
                        resp.count, resource.resource
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn add_finalizer(object: &mut Value, pending: &mut Vec<String>, finalizer: &str) {
    if !pending.iter().any(|f| f == finalizer) {
        pending.push(finalizer.to_string());
        meta_mut(object).insert("finalizers".into(), json!(pending));
    }
}

fn check_preconditions(
    resource: &Resource,
    name: &str,
    current: &Value,
    preconditions: &Preconditions,
) -> Result<(), ApiError> {
    if let Some(uid) = &preconditions.uid {
        let actual = meta_str(current, "uid");
        if uid != actual {
            return Err(ApiError::conflict(
                resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &preconditions.resource_version {
        let actual = meta_str(current, "resourceVersion");
        if rv != actual {
            return Err(ApiError::conflict(
                resource,
                name,
                &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"),
            ));
        }
    }
    Ok(())
}
