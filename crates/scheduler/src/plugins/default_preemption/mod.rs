//! DefaultPreemption: when no node fits, find a node where evicting pods of
//! lower priority would make room, as kube-scheduler's PostFilter does:
//!
//! 1. Candidates are the nodes that refused the pod with `Unschedulable`
//!    (not `UnschedulableAndUnresolvable`: evicting cannot fix a taint).
//! 2. On each, take away every pod of lower priority; if the pod still does
//!    not fit, the node is no candidate.
//! 3. Give back ("reprieve") those pods one by one, highest priority first,
//!    keeping each one the pod still fits beside; the rest are the victims.
//! 4. Pick the node whose most important victim has the lowest priority,
//!    then the lowest sum of victim priorities, then the fewest victims.
//!
//! The scheduler then deletes the victims and writes
//! `status.nominatedNodeName`; the pod is retried when they are gone.
//!
//! # Caveats
//! No PodDisruptionBudgets; nominated pods do not hold their room against
//! other pods; cross-node state (affinity, spreading) is not recomputed
//! without the victims.

use std::collections::HashMap;
use std::sync::Arc;

use crate::framework::{
    Code, CycleState, NodeFilter, NodeInfo, Plugin, PodInfo, PostFilterPlugin, PostFilterResult,
    Snapshot, Status,
};

/// The plugin's name in profiles.
pub const NAME: &str = "DefaultPreemption";

/// The DefaultPreemption plugin.
pub struct DefaultPreemption;

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

/// The victims a node would need, and the key it is ranked by.
struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
}

impl Candidate {
    fn rank(&self) -> (i32, i64, usize) {
        let highest = self
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum = self.victims.iter().map(|v| i64::from(v.priority)).sum();
        (highest, sum, self.victims.len())
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &HashMap<String, Status>,
        filters: &dyn NodeFilter,
    ) -> Result<PostFilterResult, Status> {
        let policy = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref());
        if policy == Some("Never") {
            return Err(Status::unresolvable(
                "not eligible due to preemptionPolicy=Never.",
            ));
        }
        let mut best: Option<Candidate> = None;
        let mut names: Vec<&String> = statuses
            .iter()
            .filter(|(_, s)| s.code() == Code::Unschedulable)
            .map(|(name, _)| name)
            .collect();
        names.sort();
        for name in names {
            let Some(node) = snapshot.get(name) else {
                continue;
            };
            let Some(candidate) = victims_on(state, pod, node, filters) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| candidate.rank() < b.rank()) {
                best = Some(candidate);
            }
        }
        match best {
            Some(c) => Ok(PostFilterResult {
                nominated_node_name: c.node,
                victims: c.victims,
            }),
            None => Err(Status::unschedulable(
                "No preemption victims found for incoming pod",
            )),
        }
    }
}

/// The fewest, least important pods to evict from `node` so the pod fits.
fn victims_on(
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    filters: &dyn NodeFilter,
) -> Option<Candidate> {
    let mut reduced = node.clone();
    let mut lower: Vec<Arc<PodInfo>> = node
        .pods()
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return None;
    }
    for p in &lower {
        reduced.remove_pod(&p.key);
    }
    if !filters.run_filters(state, pod, &reduced).is_success() {
        return None;
    }
    lower.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.key.cmp(&b.key)));
    let mut victims = Vec::new();
    for p in lower {
        reduced.add_pod(p.clone());
        if !filters.run_filters(state, pod, &reduced).is_success() {
            reduced.remove_pod(&p.key);
            victims.push(p);
        }
    }
    victims.sort_by_key(|v| v.priority);
    Some(Candidate {
        node: node.name().to_string(),
        victims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::node_resources_fit::NodeResourcesFit;
    use crate::plugins::taint_toleration::TaintToleration;
    use crate::testing::{node, pod, snapshot, NodeExt, OneFilter, PodExt};

    fn preempt(
        incoming: &k8s_openapi::api::core::v1::Pod,
        nodes: &[k8s_openapi::api::core::v1::Node],
        existing: &[k8s_openapi::api::core::v1::Pod],
    ) -> Result<(String, Vec<String>), Status> {
        let fit = NodeResourcesFit::new(Default::default()).expect("default args");
        let plugins: [&dyn Plugin; 2] = [&fit, &TaintToleration];
        let filters = OneFilter(&plugins);
        let snapshot = snapshot(nodes, existing);
        let pod = PodInfo::new(Arc::new(incoming.clone()));
        let state = CycleState::new();
        let statuses: HashMap<String, Status> = snapshot
            .nodes()
            .iter()
            .map(|n| (n.name().to_string(), filters.run_filters(&state, &pod, n)))
            .filter(|(_, s)| !s.is_success())
            .collect();
        DefaultPreemption
            .post_filter(&state, &pod, &snapshot, &statuses, &filters)
            .map(|r| {
                (
                    r.nominated_node_name,
                    r.victims.iter().map(|v| v.key.clone()).collect(),
                )
            })
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let nodes = [node("a"), node("b")];
        let existing = [
            pod("a-low").node_name("a").priority(1).request("cpu", "2"),
            pod("a-mid").node_name("a").priority(5).request("cpu", "2"),
            pod("b-mid1").node_name("b").priority(5).request("cpu", "2"),
            pod("b-mid2").node_name("b").priority(5).request("cpu", "2"),
        ];
        let incoming = pod("urgent").priority(10).request("cpu", "2");
        // On a, evicting a-low (priority 1) is enough; on b a priority-5 pod must go.
        assert_eq!(
            preempt(&incoming, &nodes, &existing),
            Ok(("a".to_string(), vec!["default/a-low".to_string()]))
        );
    }

    #[test]
    fn pods_of_equal_or_higher_priority_are_never_victims() {
        let nodes = [node("a")];
        let existing = [pod("same").node_name("a").priority(10).request("cpu", "4")];
        let incoming = pod("p").priority(10).request("cpu", "1");
        assert!(preempt(&incoming, &nodes, &existing).is_err());
    }

    #[test]
    fn unresolvable_nodes_are_no_candidates() {
        let nodes = [node("tainted").taint("dedicated", "x", "NoSchedule")];
        let existing = [pod("low")
            .node_name("tainted")
            .priority(0)
            .request("cpu", "4")];
        let incoming = pod("p").priority(10).request("cpu", "1");
        assert!(preempt(&incoming, &nodes, &existing).is_err());
    }

    #[test]
    fn preemption_policy_never_opts_out() {
        let nodes = [node("a")];
        let existing = [pod("low").node_name("a").request("cpu", "4")];
        let incoming = pod("p")
            .priority(10)
            .request("cpu", "1")
            .spec_json("preemptionPolicy", serde_json::json!("Never"));
        assert!(preempt(&incoming, &nodes, &existing).is_err());
    }
}
