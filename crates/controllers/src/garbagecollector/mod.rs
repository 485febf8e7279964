//! The garbage collector: which objects go, or lose owner references,
//! because of their owners — over a dependency graph of every object, as
//! Kubernetes' `GarbageCollector` (pkg/controller/garbagecollector/).
//!
//! - A dependent all of whose owners are gone is deleted (Background); one
//!   with some owners gone loses the dangling references.
//! - An owner being deleted with the `orphan` finalizer (propagationPolicy
//!   Orphan) first has its references removed from every dependent, then
//!   the finalizer goes.
//! - An owner being deleted with the `foregroundDeletion` finalizer
//!   (Foreground) has its dependents deleted first (Foreground themselves
//!   when they own others); the finalizer goes once no dependent with
//!   `blockOwnerDeletion: true` remains. A dependent that another, "solid"
//!   owner still keeps only loses its reference instead.
//!
//! See <https://kubernetes.io/docs/concepts/architecture/garbage-collection/>.
//!
//! # Layout
//! - this file: the pure core — a [`Graph`] of objects by uid with the
//!   reverse (owner → dependents) index, kept up to date one object at a
//!   time, and [`Graph::decide`], what to do about one object now.
//! - `controller.rs`: the shell — an informer per discovered resource feeds
//!   the graph; workers take uids off a queue, confirm with live reads and
//!   write.
//!
//! # Caveats
//! "Gone" is first judged from the graph; the shell confirms an owner's
//! absence with a live read (by name, compared by uid) before deleting or
//! removing a reference, as Kubernetes' `attemptToDeleteItem` does, because
//! caches lag. The shell watches metadata only (`crate::metadata`): an
//! object another controller caches whole is not cached whole twice. Events are not watched, as in Kubernetes' default ignored resources.

pub(crate) mod controller;

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
    /// `metadata.resourceVersion`, to guard the writes decided from this state.
    pub resource_version: String,
}

impl Object {
    fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }
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

/// Every object known, by uid, and who depends on whom.
#[derive(Debug, Default)]
pub struct Graph {
    objects: BTreeMap<String, Object>,
    /// Owner uid → the uids of the objects that reference it. An owner may
    /// be here before (or without) being in `objects`.
    dependents: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// The object with this uid, if the graph holds it.
    pub fn get(&self, uid: &str) -> Option<&Object> {
        self.objects.get(uid)
    }

    /// Whether the graph holds an object with this uid.
    pub fn contains(&self, uid: &str) -> bool {
        self.objects.contains_key(uid)
    }

    /// Records `object` as it is now; answers the uids whose decisions may
    /// have changed: the object, its owners before and after (an owner
    /// waiting for its dependents), and its dependents (no longer dangling).
    pub fn upsert(&mut self, object: Object) -> BTreeSet<String> {
        let mut touched = BTreeSet::from([object.uid.clone()]);
        if let Some(old) = self.objects.remove(&object.uid) {
            self.unlink(&old);
            touched.extend(old.owners.iter().map(|r| r.uid.clone()));
        } else {
            touched.extend(self.dependents_of(&object.uid));
        }
        for owner in &object.owners {
            touched.insert(owner.uid.clone());
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(object.uid.clone());
        }
        self.objects.insert(object.uid.clone(), object);
        touched
    }

    /// Forgets the object with this uid; answers the uids whose decisions may
    /// have changed: its owners and its dependents.
    pub fn remove(&mut self, uid: &str) -> BTreeSet<String> {
        let Some(old) = self.objects.remove(uid) else {
            return BTreeSet::new();
        };
        self.unlink(&old);
        let mut touched: BTreeSet<String> = old.owners.iter().map(|r| r.uid.clone()).collect();
        touched.extend(self.dependents_of(uid));
        touched
    }

    fn unlink(&mut self, object: &Object) {
        for owner in &object.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(&object.uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn dependents(&self, uid: &str) -> Vec<&Object> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.objects.get(d))
            .collect()
    }

    /// What to do now about the object with this uid: as an owner being
    /// deleted (orphan or delete its dependents, then drop its finalizer),
    /// and as a dependent (go with its owners, or lose dangling references).
    pub fn decide(&self, uid: &str) -> Vec<Action> {
        let Some(object) = self.objects.get(uid) else {
            return Vec::new();
        };
        let mut actions = BTreeSet::new();
        if object.deleting {
            self.as_owner(object, &mut actions);
        } else {
            self.as_dependent(object, &mut actions);
        }
        actions.into_iter().collect()
    }

    fn as_owner(&self, owner: &Object, actions: &mut BTreeSet<Action>) {
        let deps = self.dependents(&owner.uid);
        if owner.has_finalizer(ORPHAN) {
            for d in &deps {
                actions.insert(Action::RemoveOwners(d.uid.clone(), vec![owner.uid.clone()]));
            }
            if deps.is_empty() {
                actions.insert(Action::RemoveFinalizer(owner.uid.clone(), ORPHAN));
            }
        } else if owner.has_finalizer(FOREGROUND) {
            for d in deps.iter().filter(|d| !d.deleting) {
                if self.has_solid_owner(d, &owner.uid) {
                    // Another owner keeps it: it only lets go of this one.
                    actions.insert(Action::RemoveOwners(d.uid.clone(), vec![owner.uid.clone()]));
                    continue;
                }
                let propagation = if self.dependents.contains_key(&d.uid) {
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

    /// Whether `dependent` has an owner other than `except` that exists and
    /// is not itself waiting for its dependents to go (Kubernetes' "solid"
    /// owners, as opposed to dangling and waiting ones).
    fn has_solid_owner(&self, dependent: &Object, except: &str) -> bool {
        dependent.owners.iter().any(|r| {
            r.uid != except
                && self
                    .objects
                    .get(&r.uid)
                    .is_some_and(|o| !(o.deleting && o.has_finalizer(FOREGROUND)))
        })
    }

    fn as_dependent(&self, object: &Object, actions: &mut BTreeSet<Action>) {
        if object.owners.is_empty() {
            return;
        }
        let absent: Vec<String> = object
            .owners
            .iter()
            .filter(|r| !self.objects.contains_key(&r.uid))
            .map(|r| r.uid.clone())
            .collect();
        if absent.len() == object.owners.len() {
            actions.insert(Action::Delete(object.uid.clone(), Propagation::Background));
        } else if !absent.is_empty() {
            actions.insert(Action::RemoveOwners(object.uid.clone(), absent));
        }
    }
}

/// What the garbage collector does now, given every object: the decisions
/// about each, together and sorted.
pub fn reconcile(objects: &[Object]) -> Vec<Action> {
    let mut graph = Graph::default();
    for object in objects {
        graph.upsert(object.clone());
    }
    let all: BTreeSet<Action> = objects.iter().flat_map(|o| graph.decide(&o.uid)).collect();
    all.into_iter().collect()
}

#[cfg(test)]
mod tests;
