//! The namespace controller's decisions: deleting a namespace deletes
//! everything in it, then the namespace, as Kubernetes'
//! `NamespacedResourcesDeleter` (pkg/controller/namespace/deletion/).
//!
//! A namespace being deleted (`deletionTimestamp` set, phase Terminating)
//! keeps the `kubernetes` finalizer in `spec.finalizers` while it has
//! content. Each round the controller deletes every remaining object of each
//! resource, reports what remains in the `NamespaceContentRemaining`
//! condition, and once nothing remains removes its finalizer through the
//! namespace's `finalize` subresource.
//!
//! # Caveats
//! Only the decision is built: there is no shell yet (the client has no
//! `finalize` call), and the API server's own small namespace finalizer
//! (`registry/namespace.rs`) still does the work.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The finalizer the namespace controller owns.
pub const FINALIZER: &str = "kubernetes";

/// What one round of a namespace's deletion does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Resources (`pods`, `replicasets.apps`) whose objects in the namespace
    /// are all to be deleted now.
    pub delete: Vec<String>,
    /// The condition reporting what remains.
    pub condition: Option<NamespaceCondition>,
    /// Nothing remains: remove [`FINALIZER`] (the `finalize` subresource).
    pub finalize: bool,
}

/// Decides a round for `namespace`, given how many objects of each resource
/// remain in it (resources with none may be left out).
pub fn reconcile(
    namespace: &Namespace,
    remaining: &BTreeMap<String, usize>,
    now: Timestamp,
) -> Plan {
    if namespace.metadata.deletion_timestamp.is_none() {
        return Plan::default();
    }
    let ours = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if !ours {
        return Plan::default();
    }
    let left: Vec<(&String, &usize)> = remaining.iter().filter(|(_, n)| **n > 0).collect();
    let condition = if left.is_empty() {
        NamespaceCondition {
            type_: "NamespaceContentRemaining".into(),
            status: "False".into(),
            reason: Some("ContentDeleted".into()),
            message: Some("All content successfully removed".into()),
            last_transition_time: Some(Time(now)),
        }
    } else {
        let listed: Vec<String> = left
            .iter()
            .map(|(resource, n)| format!("{resource} has {n} resource instances"))
            .collect();
        NamespaceCondition {
            type_: "NamespaceContentRemaining".into(),
            status: "True".into(),
            reason: Some("SomeResourcesRemain".into()),
            message: Some(format!(
                "Some resources are remaining: {}",
                listed.join(", ")
            )),
            last_transition_time: Some(Time(now)),
        }
    };
    Plan {
        delete: left.iter().map(|(r, _)| r.to_string()).collect(),
        finalize: left.is_empty(),
        condition: Some(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::at;
    use k8s_openapi::api::core::v1::NamespaceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn terminating() -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("team".into()),
                deletion_timestamp: Some(Time(at(1))),
                ..Default::default()
            },
            spec: Some(NamespaceSpec {
                finalizers: Some(vec![FINALIZER.into()]),
            }),
            status: None,
        }
    }

    #[test]
    fn content_is_deleted_first_then_the_namespace_is_finalized() {
        let remaining = BTreeMap::from([
            ("pods".to_string(), 2),
            ("replicasets.apps".to_string(), 1),
            ("secrets".to_string(), 0),
        ]);
        let plan = reconcile(&terminating(), &remaining, at(5));
        assert_eq!(plan.delete, ["pods", "replicasets.apps"]);
        assert!(!plan.finalize);
        assert_eq!(
            plan.condition.unwrap().message.as_deref(),
            Some("Some resources are remaining: pods has 2 resource instances, replicasets.apps has 1 resource instances")
        );
        let plan = reconcile(&terminating(), &BTreeMap::new(), at(6));
        assert!(plan.finalize && plan.delete.is_empty());
    }

    #[test]
    fn a_live_namespace_is_left_alone() {
        let mut ns = terminating();
        ns.metadata.deletion_timestamp = None;
        let remaining = BTreeMap::from([("pods".to_string(), 2)]);
        assert_eq!(reconcile(&ns, &remaining, at(5)), Plan::default());
    }
}
