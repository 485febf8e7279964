//! What controllers ask of a Pod: is it active, ready, available; which of a
//! set goes first when some must be deleted; and the pod a template makes.
//!
//! The deletion order is Kubernetes' `ActivePodsWithRanks`
//! (pkg/controller/controller_utils.go): the pod that costs least to lose
//! goes first.
//!
//! # Caveats
//! The pod-deletion-cost annotation is honoured; the "doubled up" rank counts
//! only the pods of the one controller being scaled, not of its siblings.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// The annotation that tells the ReplicaSet controller which pods to delete
/// first (lower cost first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// `status.phase`, "" when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Neither finished (Succeeded/Failed) nor being deleted: a pod that counts
/// toward a controller's replicas, as `IsPodActive`.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// Whether the pod ran to an end (Succeeded or Failed).
pub fn is_finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The time the pod's Ready condition became True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if condition.status != "True" {
        return None;
    }
    Some(
        condition
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready` at `now`, as `IsPodAvailable`.
pub fn is_available(pod: &Pod, min_ready: Duration, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready.is_zero() => true,
        Some(since) => elapsed(since, now) >= min_ready,
    }
}

/// How long after `since` `now` is; zero when `now` is earlier.
pub fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    let seconds = now.as_second() - since.as_second();
    let nanos = i64::from(now.subsec_nanosecond()) - i64::from(since.subsec_nanosecond());
    let total = seconds as i128 * 1_000_000_000 + nanos as i128;
    if total <= 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(total.min(u64::MAX as i128) as u64)
    }
}

/// `at` plus `delta`.
pub fn after(at: Timestamp, delta: Duration) -> Timestamp {
    let delta = k8s_openapi::jiff::SignedDuration::try_from(delta)
        .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
    at.checked_add(delta).unwrap_or(Timestamp::MAX)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Orders pods so that the first ones are the cheapest to delete, as
/// `ActivePodsWithRanks.Less`: unassigned before assigned; Pending before
/// Unknown before Running; not ready before ready; lower deletion cost first;
/// more pods of the same owner on the node first; ready for less time first;
/// more restarts first; newer before older. Ties go by name, so the order is
/// the same on every run.
pub fn deletion_order(pods: &mut [&Pod]) {
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in pods.iter() {
        *per_node.entry(node_name(pod)).or_default() += 1;
    }
    let rank = |pod: &Pod| per_node.get(node_name(pod)).copied().unwrap_or(0);
    pods.sort_by(|a, b| {
        node_name(a)
            .is_empty()
            .cmp(&node_name(b).is_empty())
            .reverse()
            .then(phase_rank(a).cmp(&phase_rank(b)))
            .then(is_ready(a).cmp(&is_ready(b)))
            .then(deletion_cost(a).cmp(&deletion_cost(b)))
            .then(rank(b).cmp(&rank(a)))
            .then(ready_longer(a, b))
            .then(restarts(b).cmp(&restarts(a)))
            .then(created_later_first(a, b))
            .then(a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The pod ready for less time first (both ready); equal otherwise.
fn ready_longer(a: &Pod, b: &Pod) -> Ordering {
    match (ready_since(a), ready_since(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        _ => Ordering::Equal,
    }
}

/// Pods without a creation time first, then newer before older.
fn created_later_first(a: &Pod, b: &Pod) -> Ordering {
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match (created(a), created(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    }
}

/// The pod a controller creates from `template`: the template's labels,
/// annotations, finalizers and spec, a name generated from `generate_name`,
/// and a controller reference to `owner`, as `GetPodFromTemplate`.
pub fn from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: &str,
    owner: OwnerReference,
) -> Pod {
    let source = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: source.labels,
            annotations: source.annotations,
            finalizers: source.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{at, pod, Phase};

    fn names(pods: &[&Pod]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn deletion_order_puts_the_cheapest_pod_first() {
        let unassigned = pod("unassigned").phase(Phase::Pending).build();
        let pending = pod("pending").node("n1").phase(Phase::Pending).build();
        let not_ready = pod("not-ready").node("n1").phase(Phase::Running).build();
        let ready_new = pod("ready-new").node("n2").ready_at(at(100)).build();
        let ready_old = pod("ready-old").node("n3").ready_at(at(10)).build();
        let costly = pod("costly").node("n4").ready_at(at(100)).cost(10).build();
        let mut pods = vec![
            &costly,
            &ready_old,
            &ready_new,
            &not_ready,
            &pending,
            &unassigned,
        ];
        deletion_order(&mut pods);
        assert_eq!(
            names(&pods),
            [
                "unassigned",
                "pending",
                "not-ready",
                "ready-new",
                "ready-old",
                "costly"
            ]
        );
    }

    #[test]
    fn deletion_order_prefers_doubled_up_nodes_then_restarts_then_newer() {
        let a = pod("a").node("n1").ready_at(at(10)).build();
        let b = pod("b").node("n1").ready_at(at(10)).build();
        let c = pod("c").node("n2").ready_at(at(10)).build();
        let d = pod("d").node("n3").ready_at(at(10)).restarts(3).build();
        let e = pod("e").node("n4").ready_at(at(10)).created(at(5)).build();
        let f = pod("f").node("n5").ready_at(at(10)).created(at(1)).build();
        let mut pods = vec![&f, &e, &d, &c, &b, &a];
        deletion_order(&mut pods);
        assert_eq!(names(&pods), ["a", "b", "d", "c", "e", "f"]);
    }

    #[test]
    fn available_means_ready_for_min_ready_seconds() {
        let ready = pod("p").ready_at(at(100)).build();
        assert!(!is_available(&ready, Duration::from_secs(10), at(105)));
        assert!(is_available(&ready, Duration::from_secs(10), at(110)));
        assert!(is_available(&ready, Duration::ZERO, at(100)));
        assert!(!is_available(&pod("q").build(), Duration::ZERO, at(100)));
    }
}
