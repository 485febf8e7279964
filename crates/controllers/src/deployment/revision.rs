//! Revisions of a Deployment: the pod-template-hash that names a template's
//! ReplicaSet, the revision annotations, which ReplicaSet is the new one,
//! rollback (`skiff rollout undo`) and the rollout status message
//! (`skiff rollout status`).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::meta;

/// The label that ties a ReplicaSet and its pods to one template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision of the template a ReplicaSet runs.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// replicas + maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// The characters Kubernetes' `rand.SafeEncodeString` maps to: no vowels
/// (no words) and no look-alikes (0/o, 1/l).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The pod-template-hash of `template`, as `controller.ComputeHash`: FNV-1a
/// (32 bits) over the template's encoding and the collision count, written in
/// decimal and mapped through `SafeEncodeString`. The encoding is the
/// template's JSON (Kubernetes hashes Go's printed form), so values differ
/// from Kubernetes' but are as stable: the same template always gives the
/// same hash.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut write = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    write(&serde_json::to_vec(&without_hash(template)).expect("a template always encodes"));
    if let Some(count) = collision_count {
        write(&(count as u32).to_le_bytes());
    }
    hash.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// `template` without the pod-template-hash label, as `EqualIgnoreHash` compares.
pub fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH);
            if labels.is_empty() {
                meta.labels = None;
            }
        }
        if *meta == ObjectMeta::default() {
            template.metadata = None;
        }
    }
    template
}

/// The revision annotation of `rs`, 0 when absent or unreadable.
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Whether `rs` runs `deployment`'s current template.
pub fn is_new(deployment: &Deployment, rs: &ReplicaSet) -> bool {
    let (Some(d), Some(r)) = (deployment.spec.as_ref(), rs.spec.as_ref()) else {
        return false;
    };
    r.template
        .as_ref()
        .is_some_and(|t| without_hash(t) == without_hash(&d.template))
}

/// The ReplicaSet that runs `deployment`'s template with `revision` and
/// `replicas`, named `<deployment>-<hash>`, controlled by the Deployment.
pub fn new_replica_set(
    deployment: &Deployment,
    revision: i64,
    replicas: i32,
    max_surge: i32,
) -> ReplicaSet {
    let spec = deployment.spec.clone().unwrap_or_default();
    let collision = deployment.status.as_ref().and_then(|s| s.collision_count);
    let hash = pod_template_hash(&spec.template, collision);
    let mut template = spec.template.clone();
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: deployment.metadata.namespace.clone(),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            annotations: Some(
                [
                    (REVISION.to_string(), revision.to_string()),
                    (DESIRED_REPLICAS.to_string(), desired.to_string()),
                    (MAX_REPLICAS.to_string(), (desired + max_surge).to_string()),
                ]
                .into(),
            ),
            owner_references: Some(vec![meta::controller_ref(deployment)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

/// The template `skiff rollout undo` puts back: that of `to_revision`, or
/// with `None` the revision before the current one, as kubectl's
/// `DeploymentRollbacker`.
pub fn rollback_template(
    deployment: &Deployment,
    replica_sets: &[&ReplicaSet],
    to_revision: Option<i64>,
) -> Result<PodTemplateSpec, String> {
    let name = deployment.metadata.name.as_deref().unwrap_or("");
    let mut history: Vec<&ReplicaSet> = replica_sets.to_vec();
    history.sort_by_key(|rs| revision(rs));
    let target = match to_revision {
        Some(wanted) if wanted > 0 => history
            .iter()
            .find(|rs| revision(rs) == wanted)
            .ok_or_else(|| format!("unable to find specified revision {wanted} in history"))?,
        _ => {
            let current = history
                .iter()
                .find(|rs| is_new(deployment, rs))
                .map(|rs| revision(rs));
            history
                .iter()
                .rev()
                .find(|rs| Some(revision(rs)) != current)
                .ok_or_else(|| format!("no rollout history found for deployment {name:?}"))?
        }
    };
    let template = target
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .ok_or_else(|| format!("revision {} has no pod template", revision(target)))?;
    Ok(without_hash(template))
}

/// The line `skiff rollout status` prints, and whether the rollout is done,
/// as kubectl's `DeploymentStatusViewer`. An error means the rollout failed.
pub fn rollout_status(deployment: &Deployment) -> Result<(String, bool), String> {
    let name = deployment.metadata.name.as_deref().unwrap_or("");
    let status = deployment.status.clone().unwrap_or_default();
    if deployment.metadata.generation > status.observed_generation {
        return Ok((
            "Waiting for deployment spec update to be observed...".into(),
            false,
        ));
    }
    let exceeded = status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if exceeded {
        return Err(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let waiting = |what: String| {
        Ok((
            format!("Waiting for deployment {name:?} rollout to finish: {what}"),
            false,
        ))
    };
    if updated < desired {
        return waiting(format!(
            "{updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "{} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "{available} of {updated} updated replicas are available..."
        ));
    }
    Ok((format!("deployment {name:?} successfully rolled out"), true))
}
