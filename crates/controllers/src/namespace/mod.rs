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
//! A round whose deletes fail reports them in the
//! `NamespaceDeletionContentFailure` condition and is tried again.
//!
//! # Layout
//! - this file: the pure decisions — [`reconcile`] (what to delete, whether
//!   to finalize), [`content_failure`] and [`merge_conditions`].
//! - `controller.rs`: the shell — an informer on Namespaces, and per
//!   Terminating namespace a round over every discovered namespaced resource.
//!
//! # Caveats
//! Objects are deleted one by one (no `deletecollection`); a round with
//! content left is repeated every [`RESYNC`] rather than on the content's
//! own events; no `NamespaceFinalizersRemaining` or discovery-failure
//! conditions.

pub(crate) mod controller;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The finalizer the namespace controller owns.
pub const FINALIZER: &str = "kubernetes";

/// How soon a namespace whose content is still going is looked at again
/// (pods in their grace period, objects with finalizers).
pub const RESYNC: Duration = Duration::from_secs(1);

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
            reason: Some("ContentRemoved".into()),
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

/// The `NamespaceDeletionContentFailure` condition after a round whose
/// deletes failed with `failures` (one message per failed resource).
pub fn content_failure(failures: &[String], now: Timestamp) -> NamespaceCondition {
    let (status, reason, message) = if failures.is_empty() {
        (
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".to_string(),
        )
    } else {
        (
            "True",
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                failures.len(),
                failures.join(", ")
            ),
        )
    };
    NamespaceCondition {
        type_: "NamespaceDeletionContentFailure".into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
    }
}

/// `existing` conditions with `updates` written over those of the same type;
/// a condition whose status did not change keeps its `lastTransitionTime`.
pub fn merge_conditions(
    existing: &[NamespaceCondition],
    updates: Vec<NamespaceCondition>,
) -> Vec<NamespaceCondition> {
    let mut merged = existing.to_vec();
    for mut update in updates {
        match merged.iter_mut().find(|c| c.type_ == update.type_) {
            Some(current) => {
                if current.status == update.status {
                    update.last_transition_time = current.last_transition_time.clone();
                }
                *current = update;
            }
            None => merged.push(update),
        }
    }
    merged
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

    #[test]
    fn failed_deletes_are_named_in_the_content_failure_condition() {
        let failed = content_failure(&["pods: the server is unavailable".into()], at(5));
        assert_eq!(failed.status, "True");
        assert_eq!(
            failed.message.as_deref(),
            Some(
                "Failed to delete all resource types, 1 remaining: pods: the server is unavailable"
            )
        );
        let fine = content_failure(&[], at(6));
        assert_eq!(
            (fine.status.as_str(), fine.reason.as_deref()),
            ("False", Some("ContentDeleted"))
        );
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let remaining = BTreeMap::from([("pods".to_string(), 2)]);
        let first = reconcile(&terminating(), &remaining, at(5))
            .condition
            .unwrap();
        let later = reconcile(&terminating(), &remaining, at(9))
            .condition
            .unwrap();
        let merged = merge_conditions(&[first], vec![later, content_failure(&[], at(9))]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].last_transition_time, Some(Time(at(5))));
        let emptied = reconcile(&terminating(), &BTreeMap::new(), at(12))
            .condition
            .unwrap();
        let merged = merge_conditions(&merged, vec![emptied]);
        assert_eq!(merged[0].status, "False");
        assert_eq!(merged[0].last_transition_time, Some(Time(at(12))));
    }
}
