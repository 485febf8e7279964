//! Preemption over tables of nodes and pods: who is evicted, and where.

use super::*;
use crate::framework::{Nominator, Plugin};
use crate::plugins::node_resources_fit::NodeResourcesFit;
use crate::plugins::taint_toleration::TaintToleration;
use crate::testing::{node, pod, snapshot, NodeExt, OneFilter, PodExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;

/// Where preemption puts `incoming` and whom it evicts, over `nodes` with
/// `existing` pods placed.
fn preempt(
    incoming: &Pod,
    nodes: &[Node],
    existing: &[Pod],
) -> Result<(String, Vec<String>), Status> {
    preempt_in(incoming, snapshot(nodes, existing))
}

/// The same over a snapshot with budgets.
fn preempt_with_budgets(
    incoming: &Pod,
    nodes: &[Node],
    existing: &[Pod],
    budgets: &[PodDisruptionBudget],
) -> Result<(String, Vec<String>), Status> {
    let mut snapshot = snapshot(nodes, existing);
    let budgets = budgets.iter().cloned().map(Arc::new).collect();
    snapshot.set_pod_disruption_budgets(Arc::new(budgets));
    preempt_in(incoming, snapshot)
}

/// A budget over `app: <app>` that allows `allowed` more disruptions.
fn budget(app: &str, allowed: i32) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": app, "namespace": "default", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": app}}, "minAvailable": 1},
        "status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
                   "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0},
    }))
    .expect("a valid budget")
}

fn preempt_in(incoming: &Pod, snapshot: Snapshot) -> Result<(String, Vec<String>), Status> {
    let fit = NodeResourcesFit::new(Default::default()).expect("default args");
    let plugins: [&dyn Plugin; 2] = [&fit, &TaintToleration];
    let filters = OneFilter(&plugins);
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

#[test]
fn the_node_with_fewer_budget_violations_wins_over_lower_priorities() {
    let nodes = [node("a"), node("b")];
    let existing = [
        pod("guarded")
            .label("app", "db")
            .node_name("a")
            .priority(1)
            .request("cpu", "4"),
        pod("free")
            .label("app", "web")
            .node_name("b")
            .priority(5)
            .request("cpu", "4"),
    ];
    let incoming = pod("urgent").priority(10).request("cpu", "2");
    assert_eq!(
        preempt(&incoming, &nodes, &existing),
        Ok(("a".to_string(), vec!["default/guarded".to_string()])),
        "without budgets the lowest priority goes"
    );
    assert_eq!(
        preempt_with_budgets(&incoming, &nodes, &existing, &[budget("db", 0)]),
        Ok(("b".to_string(), vec!["default/free".to_string()]))
    );
    assert_eq!(
        preempt_with_budgets(&incoming, &nodes, &existing, &[budget("db", 1)]),
        Ok(("a".to_string(), vec!["default/guarded".to_string()])),
        "a budget with room left is no violation"
    );
}

#[test]
fn pods_a_budget_protects_are_reprieved_first_on_a_node() {
    let nodes = [node("a")];
    let existing = [
        pod("guarded")
            .label("app", "db")
            .node_name("a")
            .priority(1)
            .request("cpu", "2"),
        pod("free")
            .label("app", "web")
            .node_name("a")
            .priority(2)
            .request("cpu", "2"),
    ];
    let incoming = pod("urgent").priority(10).request("cpu", "2");
    assert_eq!(
        preempt(&incoming, &nodes, &existing),
        Ok(("a".to_string(), vec!["default/guarded".to_string()]))
    );
    assert_eq!(
        preempt_with_budgets(&incoming, &nodes, &existing, &[budget("db", 0)]),
        Ok(("a".to_string(), vec!["default/free".to_string()]))
    );
}

#[test]
fn a_budget_is_broken_when_nothing_else_makes_room() {
    let nodes = [node("a")];
    let existing = [pod("guarded")
        .label("app", "db")
        .node_name("a")
        .priority(1)
        .request("cpu", "4")];
    let incoming = pod("urgent").priority(10).request("cpu", "2");
    assert_eq!(
        preempt_with_budgets(&incoming, &nodes, &existing, &[budget("db", 0)]),
        Ok(("a".to_string(), vec!["default/guarded".to_string()]))
    );
}

#[test]
fn room_held_by_a_nominated_pod_is_not_preempted_for_a_less_important_one() {
    let nodes = [node("a"), node("b")];
    let existing = [
        pod("a-low").node_name("a").priority(1).request("cpu", "4"),
        pod("b-low").node_name("b").priority(2).request("cpu", "4"),
    ];
    let nominated = Arc::new(PodInfo::new(Arc::new(
        pod("first").priority(50).request("cpu", "3"),
    )));
    let mut snapshot = snapshot(&nodes, &existing);
    let mut nominator = Nominator::default();
    nominator.add(nominated, "a");
    snapshot.set_nominator(Arc::new(nominator));
    // On a, the nominated pod takes 3 of the 4 cpu once a-low is gone: no room for 2.
    let incoming = pod("second").priority(10).request("cpu", "2");
    assert_eq!(
        preempt_in(&incoming, snapshot.clone()),
        Ok(("b".to_string(), vec!["default/b-low".to_string()]))
    );
    // A more important pod does not see the nomination.
    let urgent = pod("urgent").priority(100).request("cpu", "2");
    assert_eq!(
        preempt_in(&urgent, snapshot),
        Ok(("a".to_string(), vec!["default/a-low".to_string()]))
    );
}

#[test]
fn a_nominated_pod_waits_while_its_victims_terminate() {
    let nodes = [node("a"), node("b")];
    let existing = [
        pod("leaving")
            .node_name("a")
            .priority(1)
            .request("cpu", "4")
            .terminating(),
        pod("b-low").node_name("b").priority(1).request("cpu", "4"),
    ];
    let incoming = pod("urgent").priority(10).request("cpu", "2");
    let err = preempt(&incoming.clone().nominated_node("a"), &nodes, &existing)
        .expect_err("not eligible");
    assert_eq!(err.code(), Code::UnschedulableAndUnresolvable);
    assert_eq!(err.reasons(), [REASON_TERMINATING]);
    assert!(
        preempt(&incoming, &nodes, &existing).is_ok(),
        "a pod not yet nominated may preempt"
    );
}
