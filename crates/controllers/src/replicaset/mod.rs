//! The ReplicaSet controller: keeps `spec.replicas` active pods matching the
//! selector, created from the template, and reports what it sees in status.
//!
//! As Kubernetes' `ReplicaSetController.syncReplicaSet`
//! (pkg/controller/replicaset/replica_set.go), one reconcile:
//! 1. claims pods: owned ones stay, matching orphans are adopted, owned pods
//!    whose labels no longer match are released ([`crate::meta::claim`]);
//! 2. if the cache has caught up with the last round ([`crate::expectations`]),
//!    creates the missing pods (at most [`BURST_REPLICAS`] a round, in
//!    slow-start batches of 1, 2, 4, … so a template that cannot be created
//!    fails once, not five hundred times) or deletes the surplus, cheapest
//!    first ([`crate::pods::deletion_order`]);
//! 3. writes `status`: replicas, fullyLabeledReplicas, readyReplicas,
//!    availableReplicas (ready for `minReadySeconds`), observedGeneration.
//!
//! # Caveats
//! No ReplicaFailure condition; the deletion rank counts only this
//! ReplicaSet's pods per node.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::meta::{self, Claim};
use crate::pods;

pub(crate) mod controller;

/// The most pods created or deleted in one reconcile (Kubernetes' `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// How long pod events that only change a ReplicaSet's status are gathered
/// before it is synced again, as the Job controller's `syncJobBatchPeriod`
/// (1 s there; shorter here, since a Deployment's rollout waits on the
/// ReplicaSet's status). A sync reads every pod of the ReplicaSet, so one
/// per pod event makes a scale-up quadratic.
pub const POD_EVENT_BATCH: Duration = Duration::from_millis(100);

/// What one reconcile of a ReplicaSet does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods to adopt (set this ReplicaSet as their controller).
    pub adopt: Vec<String>,
    /// Pods to release (remove this ReplicaSet's reference).
    pub release: Vec<String>,
    /// How many pods to create from the template.
    pub create: usize,
    /// Pods to delete, cheapest first.
    pub delete: Vec<String>,
    /// The status to write when it differs from the stored one.
    pub status: ReplicaSetStatus,
    /// Look again after this long (a ready pod becomes available).
    pub requeue_after: Option<Duration>,
}

/// Reconciles `replica_set` against `candidates`: the pods of its namespace
/// it controls or could adopt (others are ignored). `may_manage`
/// is false while earlier creations or deletions are not yet in the cache.
/// An error names why the ReplicaSet cannot be acted on.
pub fn reconcile(
    replica_set: &ReplicaSet,
    candidates: &[&Pod],
    may_manage: bool,
    now: Timestamp,
) -> Result<Plan, String> {
    let spec = replica_set
        .spec
        .as_ref()
        .ok_or("the ReplicaSet has no spec")?;
    let selector = meta::selector(Some(&spec.selector))?;
    if selector.is_empty() {
        return Err("an empty selector would select every pod in the namespace".into());
    }
    let uid = replica_set.metadata.uid.as_deref().unwrap_or("");
    let deleting = replica_set.metadata.deletion_timestamp.is_some();
    let mut plan = Plan::default();
    let mut owned: Vec<&Pod> = Vec::new();
    for pod in candidates {
        let name = pod.metadata.name.clone().unwrap_or_default();
        match meta::claim(uid, deleting, &selector, &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                plan.adopt.push(name);
                owned.push(pod);
            }
            Claim::Release => plan.release.push(name),
            Claim::Ignore => {}
        }
    }
    let mut active: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| pods::is_active(p))
        .collect();
    let min_ready = Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
    plan.status = status(replica_set, &active, min_ready, now);
    plan.requeue_after = next_available(&active, min_ready, now);
    if may_manage && !deleting {
        let desired = spec.replicas.unwrap_or(1).max(0) as usize;
        if active.len() < desired {
            plan.create = (desired - active.len()).min(BURST_REPLICAS);
        } else if active.len() > desired {
            let surplus = (active.len() - desired).min(BURST_REPLICAS);
            pods::deletion_order(&mut active);
            plan.delete = active[..surplus]
                .iter()
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
        }
    }
    Ok(plan)
}

/// The status a ReplicaSet reports for its `active` pods.
fn status(
    replica_set: &ReplicaSet,
    active: &[&Pod],
    min_ready: Duration,
    now: Timestamp,
) -> ReplicaSetStatus {
    let template_labels = replica_set
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let labels = meta::labels(&p.metadata);
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| pods::is_ready(p)).count();
    let available = active
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now))
        .count();
    let old = replica_set.status.clone().unwrap_or_default();
    ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(ready as i32),
        available_replicas: Some(available as i32),
        observed_generation: replica_set.metadata.generation,
        conditions: old.conditions,
        terminating_replicas: old.terminating_replicas,
    }
}

/// How long until the first ready-but-not-yet-available pod becomes available.
pub(crate) fn next_available(
    active: &[&Pod],
    min_ready: Duration,
    now: Timestamp,
) -> Option<Duration> {
    if min_ready.is_zero() {
        return None;
    }
    active
        .iter()
        .filter_map(|p| pods::ready_since(p))
        .map(|since| pods::after(since, min_ready))
        .filter(|when| *when > now)
        .map(|when| pods::elapsed(now, when))
        .min()
}

/// The pod `replica_set` creates: its template, a name generated from its
/// own, and a controller reference to it.
pub fn new_pod(replica_set: &ReplicaSet) -> Pod {
    let meta = &replica_set.metadata;
    let template = replica_set.spec.as_ref().and_then(|s| s.template.clone());
    pods::from_template(
        &template.unwrap_or_default(),
        meta.namespace.as_deref().unwrap_or(""),
        &format!("{}-", meta.name.as_deref().unwrap_or("")),
        meta::controller_ref(replica_set),
    )
}

#[cfg(test)]
mod tests;
