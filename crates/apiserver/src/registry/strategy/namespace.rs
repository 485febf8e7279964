//! Namespaces: created `Active` with the `kubernetes` finalizer, terminated
//! on delete, finalized through their `finalize` subresource
//! (Kubernetes' `pkg/registry/core/namespace/strategy.go` and `storage.go`).
//!
//! The namespace controller (`registry/namespace.rs`) empties a Terminating
//! namespace and then removes the `kubernetes` finalizer through `finalize`.

use serde_json::{json, Value};
use skiff_api::resources::Resource;

use super::{keep, Strategy};
use crate::object::{is_deleting, meta_mut};

/// The strategy of Namespaces.
pub(super) struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn prepare_for_create(&self, resource: &Resource, object: &mut Value) {
        if resource.has_subresource("status") {
            if let Some(fields) = object.as_object_mut() {
                fields.remove("status");
            }
        }
        object["status"] = json!({"phase": "Active"});
        object["spec"]["finalizers"] = json!(["kubernetes"]);
    }

    /// The spec holds only finalizers, which are the `finalize` subresource's.
    fn prepare_for_update(&self, resource: &Resource, next: &mut Value, old: &Value) {
        if resource.has_subresource("status") {
            keep(next, old, "status");
        }
        next["spec"] = old["spec"].clone();
    }

    /// `finalize` changes `spec.finalizers` and nothing else; `status` the status.
    fn prepare_for_subresource_update(&self, subresource: &str, old: &Value, new: &Value) -> Value {
        let mut next = old.clone();
        if subresource == "finalize" {
            next["spec"]["finalizers"] = new["spec"]["finalizers"].clone();
        } else {
            keep(&mut next, new, "status");
        }
        next
    }

    /// A deleted namespace turns Terminating (once); the namespace
    /// controller empties and finalizes it.
    fn terminate(&self, namespace: &Value, now: &str) -> Option<Value> {
        let mut next = namespace.clone();
        if !is_deleting(namespace) {
            meta_mut(&mut next).insert("deletionTimestamp".into(), json!(now));
            meta_mut(&mut next).insert("deletionGracePeriodSeconds".into(), json!(0));
            next["status"]["phase"] = json!("Terminating");
        }
        Some(next)
    }

    /// A namespace leaves only once its own `spec.finalizers` are empty too.
    fn finalized(&self, namespace: &Value) -> bool {
        namespace["spec"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
    }
}
