//! The Deployment controller — ECS's "service": rolls a template out through
//! ReplicaSets, one per template, keeping old ones as revision history.
//!
//! As Kubernetes' `DeploymentController.syncDeployment`
//! (pkg/controller/deployment/), one reconcile:
//! 1. claims ReplicaSets by selector (adopt, release) and splits them into the
//!    new one (its template equals the Deployment's, ignoring the
//!    pod-template-hash label) and old ones;
//! 2. takes one step of the strategy:
//!    - `RollingUpdate`: create or grow the new ReplicaSet while the total
//!      stays within `replicas + maxSurge`; otherwise shrink old ones while
//!      `replicas - maxUnavailable` pods stay available ([`rolling`]);
//!    - `Recreate`: scale every old ReplicaSet to 0, wait until their pods
//!      are gone, then create the new one at full size;
//! 3. deletes old, empty ReplicaSets beyond `revisionHistoryLimit`;
//! 4. writes status with the `Available` and `Progressing` conditions,
//!    `Progressing` turning False with `ProgressDeadlineExceeded` when no
//!    progress was made for `progressDeadlineSeconds`.
//!
//! ECS's `minimumHealthyPercent` and `maximumPercent` are accepted as the
//! annotations [`rolling::ECS_MINIMUM_HEALTHY_PERCENT`] and
//! [`rolling::ECS_MAXIMUM_PERCENT`]: maxUnavailable = 100% − minimum,
//! maxSurge = maximum − 100%.
//!
//! # Caveats
//! A paused Deployment does not scale its ReplicaSets proportionally when its
//! replicas change (Kubernetes' `sync`); it only reports status. Hash
//! collisions are not detected (no `collisionCount` bump).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::meta::{self, Claim};
use crate::pods;

pub(crate) mod controller;
pub mod revision;
pub mod rolling;

pub use revision::{rollback_template, rollout_status};

/// What one reconcile of a Deployment does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// ReplicaSets to adopt.
    pub adopt: Vec<String>,
    /// ReplicaSets to release.
    pub release: Vec<String>,
    /// The new ReplicaSet to create.
    pub create: Option<ReplicaSet>,
    /// ReplicaSets to scale: name, replicas, and the annotations to set.
    pub scale: Vec<Scale>,
    /// Old ReplicaSets to delete (history beyond the limit).
    pub delete: Vec<String>,
    /// The status to write when it differs.
    pub status: DeploymentStatus,
    /// Look again after this long (the progress deadline).
    pub requeue_after: Option<Duration>,
}

/// One ReplicaSet's new size.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    /// The ReplicaSet's name.
    pub name: String,
    /// Its new `spec.replicas`.
    pub replicas: i32,
    /// Annotations to set with it (revision, desired and max replicas).
    pub annotations: Vec<(String, String)>,
}

/// The ReplicaSets of one Deployment, split.
struct Sets<'a> {
    new: Option<&'a ReplicaSet>,
    /// Oldest revision first.
    old: Vec<&'a ReplicaSet>,
}

fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn name_of(rs: &ReplicaSet) -> String {
    rs.metadata.name.clone().unwrap_or_default()
}

/// Reconciles `deployment` against the ReplicaSets of its namespace. An
/// error names why the Deployment cannot be acted on.
pub fn reconcile(
    deployment: &Deployment,
    namespace_sets: &[&ReplicaSet],
    now: Timestamp,
) -> Result<Plan, String> {
    let spec = deployment
        .spec
        .as_ref()
        .ok_or("the Deployment has no spec")?;
    let selector = meta::selector(Some(&spec.selector))?;
    if selector.is_empty() {
        return Err("an empty selector would select every ReplicaSet in the namespace".into());
    }
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .map(|m| meta::labels(m).clone())
        .unwrap_or_default();
    if !selector.matches(&template_labels) {
        return Err("the selector does not match the template's labels".into());
    }
    let (max_surge, max_unavailable) = rolling::fenceposts(deployment)?;
    let uid = deployment.metadata.uid.as_deref().unwrap_or("");
    let deleting = deployment.metadata.deletion_timestamp.is_some();
    let mut plan = Plan::default();
    let mut owned = Vec::new();
    for rs in namespace_sets {
        match meta::claim(uid, deleting, &selector, &rs.metadata) {
            Claim::Owned => owned.push(*rs),
            Claim::Adopt => {
                plan.adopt.push(name_of(rs));
                owned.push(*rs);
            }
            Claim::Release => plan.release.push(name_of(rs)),
            Claim::Ignore => {}
        }
    }
    owned.sort_by_key(|rs| {
        (
            revision::revision(rs),
            rs.metadata.creation_timestamp.clone().map(|t| t.0),
        )
    });
    let sets = Sets {
        new: owned
            .iter()
            .rev()
            .copied()
            .find(|rs| revision::is_new(deployment, rs)),
        old: owned
            .iter()
            .copied()
            .filter(|rs| !revision::is_new(deployment, rs))
            .collect(),
    };
    let paused = spec.paused == Some(true);
    if !deleting && !paused {
        let max_old_revision = sets
            .old
            .iter()
            .map(|rs| revision::revision(rs))
            .max()
            .unwrap_or(0);
        let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
        if recreate {
            step_recreate(deployment, &sets, max_old_revision, &mut plan);
        } else {
            step_rolling(
                deployment,
                &sets,
                max_old_revision,
                (max_surge, max_unavailable),
                &mut plan,
            );
        }
        if plan.create.is_none() {
            plan.delete = history_to_delete(deployment, &sets.old);
        }
    }
    let progressed = plan.create.is_some() || !plan.scale.is_empty();
    plan.status = status(deployment, &sets, max_unavailable, progressed, now);
    plan.requeue_after = deadline_requeue(deployment, &plan.status, now);
    Ok(plan)
}

/// The annotations a ReplicaSet carries after being scaled for `deployment`.
fn scale_annotations(deployment: &Deployment, max_surge: i32) -> Vec<(String, String)> {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    vec![
        (revision::DESIRED_REPLICAS.into(), desired.to_string()),
        (
            revision::MAX_REPLICAS.into(),
            (desired + max_surge).to_string(),
        ),
    ]
}

/// The revision the new ReplicaSet must carry; when an old template comes
/// back (a rollback), its ReplicaSet moves to the newest revision.
fn bump_revision(new: &ReplicaSet, max_old_revision: i64) -> Option<(String, String)> {
    (revision::revision(new) <= max_old_revision).then(|| {
        (
            revision::REVISION.to_string(),
            (max_old_revision + 1).to_string(),
        )
    })
}

fn step_rolling(
    deployment: &Deployment,
    sets: &Sets,
    max_old_revision: i64,
    (max_surge, max_unavailable): (i32, i32),
    plan: &mut Plan,
) {
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let total: i32 = sets.old.iter().map(|rs| replicas_of(rs)).sum::<i32>()
        + sets.new.map(replicas_of).unwrap_or(0);
    let Some(new) = sets.new else {
        let size = rolling::new_rs_replicas(replicas, max_surge, 0, total);
        plan.create = Some(revision::new_replica_set(
            deployment,
            max_old_revision + 1,
            size,
            max_surge,
        ));
        return;
    };
    let mut annotations = scale_annotations(deployment, max_surge);
    annotations.extend(bump_revision(new, max_old_revision));
    let size = rolling::new_rs_replicas(replicas, max_surge, replicas_of(new), total);
    if size != replicas_of(new) {
        plan.scale.push(Scale {
            name: name_of(new),
            replicas: size,
            annotations,
        });
        return;
    }
    for (name, replicas) in rolling::scale_down_old(replicas, max_unavailable, new, &sets.old) {
        plan.scale.push(Scale {
            name,
            replicas,
            annotations: Vec::new(),
        });
    }
    if plan.scale.is_empty() && annotations_differ(new, &annotations) {
        plan.scale.push(Scale {
            name: name_of(new),
            replicas: size,
            annotations,
        });
    }
}

fn step_recreate(deployment: &Deployment, sets: &Sets, max_old_revision: i64, plan: &mut Plan) {
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    for old in sets.old.iter().filter(|rs| replicas_of(rs) > 0) {
        plan.scale.push(Scale {
            name: name_of(old),
            replicas: 0,
            annotations: Vec::new(),
        });
    }
    let old_pods: i32 = sets
        .old
        .iter()
        .map(|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0))
        .sum();
    if !plan.scale.is_empty() || old_pods > 0 {
        return; // Recreate: nothing new runs beside the old.
    }
    match sets.new {
        None => {
            plan.create = Some(revision::new_replica_set(
                deployment,
                max_old_revision + 1,
                replicas,
                0,
            ));
        }
        Some(new) => {
            let mut annotations = scale_annotations(deployment, 0);
            annotations.extend(bump_revision(new, max_old_revision));
            if replicas_of(new) != replicas || annotations_differ(new, &annotations) {
                plan.scale.push(Scale {
                    name: name_of(new),
                    replicas,
                    annotations,
                });
            }
        }
    }
}

fn annotations_differ(rs: &ReplicaSet, wanted: &[(String, String)]) -> bool {
    let have = rs.metadata.annotations.clone().unwrap_or_default();
    wanted.iter().any(|(k, v)| have.get(k) != Some(v))
}

/// Old ReplicaSets with no pods beyond `revisionHistoryLimit` (default 10),
/// oldest first, as `cleanupDeployment`.
fn history_to_delete(deployment: &Deployment, old: &[&ReplicaSet]) -> Vec<String> {
    let limit = deployment
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let empty: Vec<&&ReplicaSet> = old
        .iter()
        .filter(|rs| {
            replicas_of(rs) == 0
                && rs.status.as_ref().map(|s| s.replicas).unwrap_or(0) == 0
                && rs.metadata.deletion_timestamp.is_none()
        })
        .collect();
    let surplus = old.len().saturating_sub(limit).min(empty.len());
    empty[..surplus].iter().map(|rs| name_of(rs)).collect()
}

fn status(
    deployment: &Deployment,
    sets: &Sets,
    max_unavailable: i32,
    progressed: bool,
    now: Timestamp,
) -> DeploymentStatus {
    let all: Vec<&ReplicaSet> = sets.old.iter().copied().chain(sets.new).collect();
    let sum = |f: fn(&ReplicaSet) -> i32| all.iter().map(|rs| f(rs)).sum::<i32>();
    let replicas = sum(|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0));
    let ready = sum(|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available = sum(|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    });
    let updated = sets
        .new
        .and_then(|rs| rs.status.as_ref())
        .map(|s| s.replicas)
        .unwrap_or(0);
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let old = deployment.status.clone().unwrap_or_default();
    let mut next = DeploymentStatus {
        observed_generation: deployment.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((desired - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    let (status, reason) = if available >= desired - max_unavailable {
        ("True", "MinimumReplicasAvailable")
    } else {
        ("False", "MinimumReplicasUnavailable")
    };
    let message = if status == "True" {
        "Deployment has minimum availability."
    } else {
        "Deployment does not have minimum availability."
    };
    set_condition(&mut next, "Available", status, reason, message, now, false);
    progressing(deployment, sets, &old, &mut next, progressed, now);
    next
}

fn progressing(
    deployment: &Deployment,
    sets: &Sets,
    old: &DeploymentStatus,
    next: &mut DeploymentStatus,
    progressed: bool,
    now: Timestamp,
) {
    let name = deployment.metadata.name.as_deref().unwrap_or("");
    let spec = deployment.spec.clone().unwrap_or_default();
    if spec.paused == Some(true) {
        set_condition(
            next,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            now,
            true,
        );
        return;
    }
    let desired = spec.replicas.unwrap_or(1);
    let new_name = sets.new.map(name_of).unwrap_or_default();
    let complete = sets.new.is_some()
        && next.updated_replicas == Some(desired)
        && next.replicas == Some(desired)
        && next.available_replicas >= Some(desired);
    if complete {
        let message = format!("ReplicaSet {new_name:?} has successfully progressed.");
        set_condition(
            next,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &message,
            now,
            false,
        );
        return;
    }
    let counts_moved = old.updated_replicas != next.updated_replicas
        || old.ready_replicas != next.ready_replicas
        || old.available_replicas != next.available_replicas
        || old.replicas != next.replicas;
    let current = condition(next, "Progressing");
    let exceeded = current.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
    if progressed
        || counts_moved
        || current.is_none()
        || current.is_some_and(|c| c.status != "True") && !exceeded
    {
        let message = if sets.new.is_none() {
            format!("Created new replica set for deployment {name:?}.")
        } else {
            format!("ReplicaSet {new_name:?} is progressing.")
        };
        let reason = if sets.new.is_none() {
            "NewReplicaSetCreated"
        } else {
            "ReplicaSetUpdated"
        };
        set_condition(next, "Progressing", "True", reason, &message, now, true);
        return;
    }
    if let (Some(deadline), Some(c)) = (spec.progress_deadline_seconds, current) {
        let since = c.last_update_time.as_ref().map(|t| t.0).unwrap_or(now);
        if c.status == "True"
            && pods::elapsed(since, now) > Duration::from_secs(deadline.max(0) as u64)
        {
            let message = format!("ReplicaSet {new_name:?} has timed out progressing.");
            set_condition(
                next,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &message,
                now,
                true,
            );
        }
    }
}

fn condition<'a>(status: &'a DeploymentStatus, kind: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == kind)
}

/// Sets a condition; the transition time moves only when the status
/// changes, the update time also when `touch` (progress was made).
fn set_condition(
    status: &mut DeploymentStatus,
    kind: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
    touch: bool,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let existing = conditions.iter_mut().find(|c| c.type_ == kind);
    let now = Some(Time(now));
    match existing {
        Some(c) if c.status == value && c.reason.as_deref() == Some(reason) && !touch => {}
        Some(c) => {
            if c.status != value {
                c.last_transition_time = now.clone();
            }
            c.status = value.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_update_time = now;
        }
        None => conditions.push(DeploymentCondition {
            type_: kind.into(),
            status: value.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: now.clone(),
            last_update_time: now,
        }),
    }
}

/// How long until the progress deadline passes, while the rollout is in progress.
fn deadline_requeue(
    deployment: &Deployment,
    status: &DeploymentStatus,
    now: Timestamp,
) -> Option<Duration> {
    let deadline = deployment.spec.as_ref()?.progress_deadline_seconds?;
    let c = condition(status, "Progressing")?;
    if c.status != "True" || c.reason.as_deref() == Some("NewReplicaSetAvailable") {
        return None;
    }
    let since = c.last_update_time.as_ref()?.0;
    let due = pods::after(since, Duration::from_secs(deadline.max(0) as u64 + 1));
    Some(pods::elapsed(now, due))
}

#[cfg(test)]
mod tests;
