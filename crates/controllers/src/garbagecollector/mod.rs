//! The garbage collector's decisions: which objects go, or lose owner
//! references, because of their owners — over a dependency graph of every
//! object, as Kubernetes' `GarbageCollector` (pkg/controller/garbagecollector/).
//!
//! - A dependent all of whose owners are gone is deleted (Background); one
//!   with some owners gone loses the dangling references.
//! - An owner being deleted with the `orphan` finalizer (propagationPolicy
//!   Orphan) first has its references removed from every dependent, then
//!   the finalizer goes.
//! - An owner being deleted with the `foregroundDeletion` finalizer
//!   (Foreground) has its dependents deleted first (Foreground themselves
//!   when they own others); the finalizer goes once no dependent with
//!   `blockOwnerDeletion: true` remains.
//!
//! # Caveats
//! Only the pure graph is built: there is no shell yet, so the manager does
//! not run a garbage collector. "Gone" is judged from the graph; the shell
//! must confirm an owner's absence with a live read (by uid) before deleting,
//! as Kubernetes' `attemptToDeleteItem` does, because caches lag.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// The finalizer that asks for dependents to be orphaned.
pub const ORPHAN: &str = "orphan";
/// The finalizer that asks for dependents to be deleted first.
pub const FOREGROUND: &str = "foregroundDeletion";

/// One object of the graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object {
    /// Its uid.
    pub uid: String,
    /// `apiVersion`, `kind`, namespace and name, to address it.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace ("" when cluster-scoped).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerReference>,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// How a dependent is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Propagation {
    /// Delete it now; its own dependents follow.
    Background,
    /// Delete its dependents first.
    Foreground,
}

/// One thing the garbage collector does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Delete the object with this uid.
    Delete(String, Propagation),
    /// Remove the references to these owner uids from the object with this uid.
    RemoveOwners(String, Vec<String>),
    /// Remove this finalizer from the object with this uid.
    RemoveFinalizer(String, &'static str),
}

/// What the garbage collector does now, given every object (sorted).
pub fn reconcile(objects: &[Object]) -> Vec<Action> {
    let by_uid: BTreeMap<&str, &Object> = objects.iter().map(|o| (o.uid.as_str(), o)).collect();
    let mut dependents: BTreeMap<&str, Vec<&Object>> = BTreeMap::new();
    for object in objects {
        for owner in &object.owners {
            dependents
                .entry(owner.uid.as_str())
                .or_default()
                .push(object);
        }
    }
    let mut actions = BTreeSet::new();
    for owner in objects.iter().filter(|o| o.deleting) {
        let deps = dependents
            .get(owner.uid.as_str())
            .cloned()
            .unwrap_or_default();
        if owner.finalizers.iter().any(|f| f == ORPHAN) {
            for d in &deps {
                actions.insert(Action::RemoveOwners(d.uid.clone(), vec![owner.uid.clone()]));
            }
            if deps.is_empty() {
                actions.insert(Action::RemoveFinalizer(owner.uid.clone(), ORPHAN));
            }
        } else if owner.finalizers.iter().any(|f| f == FOREGROUND) {
            for d in deps.iter().filter(|d| !d.deleting) {
                let propagation = if dependents.contains_key(d.uid.as_str()) {
                    Propagation::Foreground
                } else {
                    Propagation::Background
                };
                actions.insert(Action::Delete(d.uid.clone(), propagation));
            }
            let blocking = deps.iter().any(|d| {
                d.owners
                    .iter()
                    .any(|r| r.uid == owner.uid && r.block_owner_deletion == Some(true))
            });
            if !blocking {
                actions.insert(Action::RemoveFinalizer(owner.uid.clone(), FOREGROUND));
            }
        }
    }
    for object in objects
        .iter()
        .filter(|o| !o.deleting && !o.owners.is_empty())
    {
        let absent: Vec<String> = object
            .owners
            .iter()
            .filter(|r| !by_uid.contains_key(r.uid.as_str()))
            .map(|r| r.uid.clone())
            .collect();
        if absent.len() == object.owners.len() {
            actions.insert(Action::Delete(object.uid.clone(), Propagation::Background));
        } else if !absent.is_empty() {
            actions.insert(Action::RemoveOwners(object.uid.clone(), absent));
        }
    }
    actions.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str, owners: &[(&str, bool)]) -> Object {
        Object {
            uid: uid.into(),
            kind: "Pod".into(),
            name: uid.into(),
            owners: owners
                .iter()
                .map(|(owner, block)| OwnerReference {
                    uid: owner.to_string(),
                    block_owner_deletion: Some(*block),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn deleting(mut o: Object, finalizer: &str) -> Object {
        o.deleting = true;
        o.finalizers = vec![finalizer.into()];
        o
    }

    #[test]
    fn dependents_of_a_vanished_owner_are_deleted_in_the_background() {
        let pod = object("pod", &[("rs", true)]);
        assert_eq!(
            reconcile(&[pod]),
            [Action::Delete("pod".into(), Propagation::Background)]
        );
    }

    #[test]
    fn a_dependent_with_a_living_owner_only_loses_the_dangling_reference() {
        let owner = object("cm", &[]);
        let pod = object("pod", &[("cm", false), ("gone", false)]);
        assert_eq!(
            reconcile(&[owner, pod]),
            [Action::RemoveOwners("pod".into(), vec!["gone".into()])]
        );
    }

    #[test]
    fn orphan_removes_references_then_the_finalizer() {
        let rs = deleting(object("rs", &[]), ORPHAN);
        let pod = object("pod", &[("rs", true)]);
        assert_eq!(
            reconcile(&[rs.clone(), pod]),
            [Action::RemoveOwners("pod".into(), vec!["rs".into()])]
        );
        assert_eq!(
            reconcile(&[rs]),
            [Action::RemoveFinalizer("rs".into(), ORPHAN)]
        );
    }

    #[test]
    fn foreground_deletes_dependents_first_and_waits_for_blocking_ones() {
        let deploy = deleting(object("d", &[]), FOREGROUND);
        let rs = object("rs", &[("d", true)]);
        let pod = object("pod", &[("rs", true)]);
        assert_eq!(
            reconcile(&[deploy.clone(), rs.clone(), pod]),
            [Action::Delete("rs".into(), Propagation::Foreground)],
            "the ReplicaSet owns pods, so it goes in the foreground too"
        );
        let going = deleting(rs, FOREGROUND);
        assert_eq!(
            reconcile(&[deploy.clone(), going]),
            [Action::RemoveFinalizer("rs".into(), FOREGROUND)],
            "the ReplicaSet's pods are gone, so it may go; the Deployment still waits for it"
        );
        let loose = object("cm", &[("d", false)]);
        assert_eq!(
            reconcile(&[deploy, loose]),
            [
                Action::Delete("cm".into(), Propagation::Background),
                Action::RemoveFinalizer("d".into(), FOREGROUND),
            ]
        );
    }
}
