//! PodDisruptionBudgets (policy/v1) as preemption reads them: how many more
//! pods each budget lets go, and which victims would break one
//! (kube-scheduler's `filterPodsWithPDBViolation`).
//!
//! A budget's `status.disruptionsAllowed` is what the disruption controller
//! computed; when the status is missing or older than the spec
//! (`observedGeneration` behind `generation`), it is computed here as that
//! controller does, from the matching pods in the snapshot: `healthy -
//! desired`, no less than 0, where healthy pods are Ready and not being
//! deleted, and desired is `minAvailable`, or `expected - maxUnavailable`
//! (percentages of the expected count rounded up).
//! <https://kubernetes.io/docs/concepts/workloads/pods/disruptions/>
//!
//! # Caveats
//! The expected count is the matching pods bound to nodes: the scheduler
//! does not read the workloads' replicas (the disruption controller's
//! scale), nor pods still pending.

use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::framework::{PodInfo, Snapshot};
use crate::plugins::helpers::{selector_is_empty, selects};

/// One budget with the evictions it still allows.
#[derive(Clone)]
pub(super) struct Budget<'a> {
    namespace: &'a str,
    selector: &'a LabelSelector,
    budget: &'a PodDisruptionBudget,
    allowed: i64,
}

/// Every budget of the snapshot with its allowance, computed once per
/// preemption attempt.
pub(super) fn budgets(snapshot: &Snapshot) -> Vec<Budget<'_>> {
    snapshot
        .pod_disruption_budgets()
        .iter()
        .filter_map(|budget| {
            let selector = budget.spec.as_ref()?.selector.as_ref()?;
            Some(Budget {
                namespace: budget.metadata.namespace.as_deref().unwrap_or("default"),
                selector,
                budget,
                allowed: disruptions_allowed(budget, snapshot),
            })
        })
        .collect()
}

impl Budget<'_> {
    /// Whether the budget covers `pod`. As in kube-scheduler, an empty
    /// selector covers nothing.
    fn covers(&self, pod: &PodInfo) -> bool {
        !selector_is_empty(self.selector)
            && pod.namespace() == self.namespace
            && selects(self.selector, pod)
    }

    /// Whether the API server already counted the pod's eviction
    /// (`status.disruptedPods`), so it takes nothing more from the budget.
    fn already_disrupted(&self, pod: &PodInfo) -> bool {
        let name = pod.pod.metadata.name.as_deref().unwrap_or_default();
        self.budget
            .status
            .as_ref()
            .and_then(|s| s.disrupted_pods.as_ref())
            .is_some_and(|pods| pods.contains_key(name))
    }
}

/// Splits `pods` (most important first) into those whose eviction would
/// break a budget and those whose would not, taking each budget's allowance
/// down as its pods are counted, in order.
pub(super) fn split_by_violation(
    pods: Vec<Arc<PodInfo>>,
    budgets: &mut [Budget<'_>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut violating = Vec::new();
    let mut non_violating = Vec::new();
    for pod in pods {
        let mut violated = false;
        for budget in budgets.iter_mut() {
            if budget.covers(&pod) && !budget.already_disrupted(&pod) {
                budget.allowed -= 1;
                violated |= budget.allowed < 0;
            }
        }
        if violated {
            violating.push(pod);
        } else {
            non_violating.push(pod);
        }
    }
    (violating, non_violating)
}

/// The budget's `disruptionsAllowed`: from its status when that is current,
/// else computed from the pods in the snapshot.
pub(super) fn disruptions_allowed(budget: &PodDisruptionBudget, snapshot: &Snapshot) -> i64 {
    let generation = budget.metadata.generation.unwrap_or(0);
    if let Some(status) = &budget.status {
        if status.observed_generation.is_some_and(|g| g >= generation) {
            return i64::from(status.disruptions_allowed);
        }
    }
    let (Some(spec), namespace) = (
        budget.spec.as_ref(),
        budget.metadata.namespace.as_deref().unwrap_or("default"),
    ) else {
        return 0;
    };
    let selector = spec.selector.clone().unwrap_or_default();
    let (mut expected, mut healthy) = (0i64, 0i64);
    for node in snapshot.nodes() {
        for pod in node.pods() {
            if pod.namespace() == namespace && selects(&selector, pod) {
                expected += 1;
                healthy += i64::from(is_healthy(pod));
            }
        }
    }
    let desired = match (&spec.min_available, &spec.max_unavailable) {
        (_, Some(max_unavailable)) => scaled(max_unavailable, expected).map(|m| expected - m),
        (Some(min_available), None) => scaled(min_available, expected),
        (None, None) => Some(0),
    };
    match desired {
        Some(desired) if expected > 0 => (healthy - desired).max(0),
        _ => 0,
    }
}

/// An integer, or a percentage of `total` rounded up; `None` when malformed.
fn scaled(value: &IntOrString, total: i64) -> Option<i64> {
    match value {
        IntOrString::Int(n) => Some(i64::from(*n)),
        IntOrString::String(text) => {
            let percent: u32 = text.strip_suffix('%')?.parse().ok()?;
            let product = i64::from(percent).checked_mul(total)?;
            Some((product + 99) / 100)
        }
    }
}

/// Ready and not being deleted, as the disruption controller counts pods.
fn is_healthy(pod: &PodInfo) -> bool {
    let ready = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && pod.pod.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, snapshot, PodExt};
    use serde_json::json;

    fn budget(spec: serde_json::Value, status: Option<serde_json::Value>) -> PodDisruptionBudget {
        let mut budget = json!({
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": spec,
        });
        if let Some(status) = status {
            budget["status"] = status;
        }
        serde_json::from_value(budget).expect("a valid budget")
    }

    fn selector() -> serde_json::Value {
        json!({"matchLabels": {"app": "web"}})
    }

    #[test]
    fn allowed_disruptions_follow_the_spec_when_the_status_is_not_filled() {
        // Four web pods, three of them Ready, one Ready but being deleted.
        let pods = [
            pod("w1").label("app", "web").ready().node_name("a"),
            pod("w2").label("app", "web").ready().node_name("a"),
            pod("w3").label("app", "web").node_name("a"),
            pod("w4")
                .label("app", "web")
                .ready()
                .terminating()
                .node_name("a"),
            pod("db").label("app", "db").ready().node_name("a"),
        ];
        let snapshot = snapshot(&[node("a")], &pods);
        for (spec, allowed) in [
            (json!({"selector": selector(), "minAvailable": 1}), 1),
            (json!({"selector": selector(), "minAvailable": 2}), 0),
            (json!({"selector": selector(), "minAvailable": 5}), 0),
            (json!({"selector": selector(), "minAvailable": "25%"}), 1),
            (json!({"selector": selector(), "maxUnavailable": 1}), 0),
            (json!({"selector": selector(), "maxUnavailable": 3}), 1),
            (json!({"selector": selector(), "maxUnavailable": "50%"}), 0),
            (json!({"selector": selector(), "maxUnavailable": "100%"}), 2),
            (json!({"selector": selector(), "minAvailable": "half"}), 0),
            (
                json!({"selector": {"matchLabels": {"app": "none"}}, "minAvailable": 0}),
                0,
            ),
        ] {
            let allowed_now = disruptions_allowed(&budget(spec.clone(), None), &snapshot);
            assert_eq!(allowed_now, allowed, "{spec}");
        }
    }

    #[test]
    fn a_current_status_is_trusted_and_a_stale_one_is_not() {
        let snapshot = snapshot(
            &[node("a")],
            &[pod("w1").label("app", "web").ready().node_name("a")],
        );
        let spec = json!({"selector": selector(), "minAvailable": 0});
        let current = json!({"observedGeneration": 2, "disruptionsAllowed": 5,
            "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0});
        assert_eq!(
            disruptions_allowed(&budget(spec.clone(), Some(current)), &snapshot),
            5
        );
        let stale = json!({"observedGeneration": 1, "disruptionsAllowed": 5,
            "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0});
        assert_eq!(
            disruptions_allowed(&budget(spec, Some(stale)), &snapshot),
            1
        );
    }

    #[test]
    fn victims_beyond_the_allowance_violate_and_disrupted_pods_count_once() {
        let spec = json!({"selector": selector(), "minAvailable": 0});
        let status = json!({"observedGeneration": 2, "disruptionsAllowed": 1,
            "currentHealthy": 3, "desiredHealthy": 0, "expectedPods": 3,
            "disruptedPods": {"w0": "2024-01-01T00:00:00Z"}});
        let budget = budget(spec, Some(status));
        let empty = Snapshot::default();
        let pods: Vec<Arc<PodInfo>> = ["w0", "w1", "w2"]
            .iter()
            .map(|n| pod(n).label("app", "web"))
            .chain([pod("db").label("app", "db"), pod("bare")])
            .map(|p| Arc::new(PodInfo::new(Arc::new(p))))
            .collect();
        let mut budgets = vec![Budget {
            namespace: "default",
            selector: budget
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .expect("a selector"),
            budget: &budget,
            allowed: disruptions_allowed(&budget, &empty),
        }];
        let (violating, non_violating) = split_by_violation(pods, &mut budgets);
        let names = |pods: &[Arc<PodInfo>]| pods.iter().map(|p| p.key.clone()).collect::<Vec<_>>();
        assert_eq!(names(&violating), ["default/w2"]);
        assert_eq!(
            names(&non_violating),
            ["default/w0", "default/w1", "default/db", "default/bare"]
        );
    }
}
