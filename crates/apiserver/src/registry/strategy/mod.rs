//! Per-kind strategies: what the generic registry does differently for each kind.
//!
//! The registry's verbs (create, update, patch, delete) are written once for
//! every resource; where a kind behaves differently they ask its
//! [`Strategy`], as the Kubernetes API server's generic store asks the
//! `RESTCreateStrategy`, `RESTUpdateStrategy` and `RESTDeleteStrategy` of each
//! resource (`pkg/registry/<group>/<resource>/strategy.go`):
//! - `prepare_for_create` / `prepare_for_update`: what the server sets or
//!   keeps before defaulting and validation — above all, that the main
//!   resource cannot change status and the status subresource cannot change
//!   anything else;
//! - `default`, `validate`, `validate_update`, `validate_status_update`:
//!   the kind's defaults and validation (`skiff_api::admission`);
//! - `allocates` / `allocate` / `release`: addresses taken from the store in
//!   the object's own txn (Service ClusterIPs and NodePorts);
//! - `terminate`, `grace_period_seconds`, `finalized`: delete hooks
//!   (namespace termination, graceful pod deletion, a namespace's own
//!   finalizers);
//! - `create_subresource`: subresources created by POST (pods/binding).
//!
//! Every method has a default that fits most kinds, so a kind overrides only
//! what it does differently. [`for_kind`] is the one table from kind to
//! strategy: a kind that needs a strategy of its own is one entry there.
//!
//! # Layout
//! - `mod.rs`: the [`Strategy`] trait, its defaults and the table.
//! - `pod.rs`: Pods — `Pending` on create, graceful deletion, pods/binding.
//! - `service.rs`: Services — ClusterIP and NodePort allocation and release.
//! - `namespace.rs`: Namespaces — `Active` and the `kubernetes` finalizer on
//!   create, termination on delete, the finalize subresource.
//! - `node.rs`: Nodes — a kubelet registers its node with its status.
//!
//! # Caveats
//! Strategies are plain synchronous functions over JSON: checks that need the
//! store (a namespace exists, is empty) stay in the verbs. There are no
//! per-kind `Canonicalize`, `WarningsOnCreate` or table conversions.

mod namespace;
mod node;
mod pod;
mod service;

use std::collections::HashSet;

use serde_json::Value;
use skiff_api::admission::{self, FieldError};
use skiff_api::resources::Resource;

use super::allocator::{Allocation, ServiceRanges};
use crate::clock::Random;

/// What [`Strategy::allocate`] draws addresses from.
pub(crate) struct AllocationContext<'a> {
    /// The configured ClusterIP and NodePort ranges.
    pub(crate) ranges: &'a ServiceRanges,
    /// Where random addresses come from.
    pub(crate) random: &'a Random,
    /// Every allocation key already in the store.
    pub(crate) taken: &'a HashSet<String>,
}

/// A subresource created by POST, served by a verb of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CreateSubresource {
    /// pods/binding: a scheduler binds a pod to a node.
    Binding,
}

/// How the generic registry treats one kind. Every method has the default
/// most kinds want.
pub(crate) trait Strategy: Sync {
    /// PrepareForCreate: clears what clients may not set on a new object.
    /// By default status is the server's when the kind has a status subresource.
    fn prepare_for_create(&self, resource: &Resource, object: &mut Value) {
        if resource.has_subresource("status") {
            if let Some(fields) = object.as_object_mut() {
                fields.remove("status");
            }
        }
    }

    /// PrepareForUpdate of the main resource: what `next` keeps of `old`
    /// whatever the client sent. By default the status, when the kind has a
    /// status subresource (that is the only way to change it).
    fn prepare_for_update(&self, resource: &Resource, next: &mut Value, old: &Value) {
        if resource.has_subresource("status") {
            keep(next, old, "status");
        }
    }

    /// PrepareForUpdate of a subresource: the object a write of `new` to
    /// `subresource` stores. By default ("status") the old object with the
    /// new status: nothing but the status changes.
    fn prepare_for_subresource_update(
        &self,
        _subresource: &str,
        old: &Value,
        new: &Value,
    ) -> Value {
        let mut next = old.clone();
        keep(&mut next, new, "status");
        next
    }

    /// Fills in the kind's defaults.
    fn default(&self, resource: &Resource, object: &mut Value) {
        admission::default(resource.kind, object);
    }

    /// Validates a new object.
    fn validate(&self, resource: &Resource, object: &Value) -> Vec<FieldError> {
        admission::validate(resource.kind, object, None)
    }

    /// Validates an update of the main resource.
    fn validate_update(&self, resource: &Resource, object: &Value, old: &Value) -> Vec<FieldError> {
        admission::validate(resource.kind, object, Some(old))
    }

    /// Validates a write to a subresource: only the metadata rules of an
    /// update apply, not the kind's spec update rules (a pod's spec is
    /// immutable, but its status is the kubelet's to write).
    fn validate_status_update(
        &self,
        resource: &Resource,
        object: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        admission::validate_status_update(resource.kind, object, old)
    }

    /// Whether writes of this kind take addresses, so the registry reads the
    /// taken ones before each attempt.
    fn allocates(&self) -> bool {
        false
    }

    /// Fills in the addresses `object` needs, keeping those of `old` (an
    /// update), and returns the store operations that take them.
    fn allocate(
        &self,
        _context: &AllocationContext<'_>,
        _object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<Allocation, Vec<FieldError>> {
        Ok(Allocation::default())
    }

    /// The store operations that free what `object` holds, when it goes.
    fn release(&self, _object: &Value) -> Allocation {
        Allocation::default()
    }

    /// A delete the kind answers itself, instead of the generic finalizers
    /// and grace period: the object to keep (a namespace turns Terminating;
    /// the same object again changes nothing). `None`, by default, goes the
    /// generic way.
    fn terminate(&self, _object: &Value, _now: &str) -> Option<Value> {
        None
    }

    /// CheckGracefulDelete: how many seconds `object` stays after a delete
    /// that asked for `requested` seconds (`DeleteOptions.gracePeriodSeconds`)
    /// before it goes; 0 (at once) by default.
    fn grace_period_seconds(&self, _object: &Value, _requested: Option<i64>) -> i64 {
        0
    }

    /// Whether a deleting object whose `metadata.finalizers` are empty may
    /// go; true by default (a namespace also waits for its `spec.finalizers`).
    fn finalized(&self, _object: &Value) -> bool {
        true
    }

    /// The subresource `name` that the kind serves to create, if any.
    fn create_subresource(&self, _name: &str) -> Option<CreateSubresource> {
        None
    }
}

/// The strategy of every kind without one of its own.
struct DefaultStrategy;

impl Strategy for DefaultStrategy {}

/// Kinds with a strategy of their own; every other kind gets the defaults.
static STRATEGIES: &[(&str, &dyn Strategy)] = &[
    ("Namespace", &namespace::NamespaceStrategy),
    ("Node", &node::NodeStrategy),
    ("Pod", &pod::PodStrategy),
    ("Service", &service::ServiceStrategy),
];

/// The strategy of `resource`'s kind.
pub(crate) fn for_kind(resource: &Resource) -> &'static dyn Strategy {
    STRATEGIES
        .iter()
        .find(|(kind, _)| *kind == resource.kind)
        .map_or(&DefaultStrategy, |(_, strategy)| *strategy)
}

/// Sets `field` of `object` to that of `from`, or removes it when `from` has none.
fn keep(object: &mut Value, from: &Value, field: &str) {
    match from.get(field) {
        Some(value) => object[field] = value.clone(),
        None => {
            if let Some(fields) = object.as_object_mut() {
                fields.remove(field);
            }
        }
    }
}

#[cfg(test)]
mod tests;
