//! Tables of nodes and the node each strategy and constraint picks.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

use super::*;
use crate::framework::{Framework, PodInfo};
use crate::plugins::node_resources_fit::NodeResourcesFit;
use crate::testing::{node, pod, snapshot, NodeExt, PodExt};

fn framework(args: serde_json::Value, seed: u64) -> Framework {
    let ecs = EcsPlacement::new(serde_json::from_value(args).expect("valid args"), seed)
        .expect("valid args");
    let fit = NodeResourcesFit::new(Default::default()).expect("default args");
    Framework::new(
        "ecs",
        vec![(Arc::new(fit), 0), (Arc::new(ecs), 1)],
        Some(100),
        seed,
    )
}

/// Where the pod goes, or the scheduler's message.
fn place(
    args: serde_json::Value,
    incoming: &Pod,
    nodes: &[Node],
    existing: &[Pod],
) -> Result<String, String> {
    let framework = framework(args, 7);
    let pod = PodInfo::new(Arc::new(incoming.clone()));
    framework
        .schedule(&pod, &snapshot(nodes, existing))
        .map(|r| r.node_name)
        .map_err(|e| e.message())
}

fn strategy(pod: Pod, strategies: serde_json::Value) -> Pod {
    pod.annotation(STRATEGY_ANNOTATION, &strategies.to_string())
}

fn constraints(pod: Pod, constraints: serde_json::Value) -> Pod {
    pod.annotation(CONSTRAINTS_ANNOTATION, &constraints.to_string())
}

#[test]
fn binpack_picks_the_node_with_the_least_left_that_fits() {
    let nodes = [node("roomy"), node("snug"), node("full")];
    let existing = [
        pod("a").node_name("snug").request("memory", "6Gi"),
        pod("b").node_name("full").request("memory", "7800Mi"),
    ];
    let incoming = strategy(
        pod("p").request("memory", "1Gi"),
        json!([{"type": "binpack", "field": "memory"}]),
    );
    assert_eq!(
        place(json!({}), &incoming, &nodes, &existing),
        Ok("snug".into())
    );
    let by_cpu = strategy(
        pod("p").request("cpu", "1"),
        json!([{"type": "binpack", "field": "cpu"}]),
    );
    let cpu_existing = [pod("c").node_name("roomy").request("cpu", "2")];
    assert_eq!(
        place(json!({}), &by_cpu, &nodes, &cpu_existing),
        Ok("roomy".into())
    );
}

#[test]
fn spread_evens_the_group_over_a_label() {
    let nodes = [
        node("a1").label("topology.kubernetes.io/zone", "a"),
        node("a2").label("topology.kubernetes.io/zone", "a"),
        node("b1").label("topology.kubernetes.io/zone", "b"),
    ];
    let existing = [pod("w1").label("app", "web").node_name("a1")];
    let incoming = strategy(
        pod("w2").label("app", "web"),
        json!([{"type": "spread", "field": "attribute:ecs.availability-zone"}]),
    );
    assert_eq!(
        place(json!({}), &incoming, &nodes, &existing),
        Ok("b1".into())
    );
    // Pods of another group do not count.
    let other = [
        pod("d1").label("app", "db").node_name("b1"),
        pod("d2").label("app", "db").node_name("b1"),
    ];
    assert_eq!(
        place(
            json!({}),
            &incoming,
            &nodes,
            &[existing[0].clone(), other[0].clone(), other[1].clone()]
        ),
        Ok("b1".into())
    );
}

#[test]
fn spread_by_instance_then_binpack_breaks_ties() {
    let nodes = [node("n1"), node("n2"), node("n3")];
    let existing = [
        pod("w1").label("app", "web").node_name("n1"),
        pod("big").node_name("n3").request("memory", "4Gi"),
    ];
    let incoming = strategy(
        pod("w2").label("app", "web").request("memory", "1Gi"),
        json!([{"type": "spread", "field": "instanceId"}, {"type": "binpack", "field": "memory"}]),
    );
    // n2 and n3 hold no web pod; n3 has less memory left.
    assert_eq!(
        place(json!({}), &incoming, &nodes, &existing),
        Ok("n3".into())
    );
}

#[test]
fn random_spreads_over_nodes_and_replays_from_its_seed() {
    let nodes: Vec<Node> = (0..5).map(|i| node(&format!("n{i}"))).collect();
    let incoming = strategy(pod("p"), json!([{"type": "random"}]));
    let framework = framework(json!({}), 3);
    let snapshot = snapshot(&nodes, &[]);
    let pod = PodInfo::new(Arc::new(incoming));
    let picks: Vec<String> = (0..40)
        .map(|_| {
            framework
                .schedule(&pod, &snapshot)
                .map(|r| r.node_name)
                .expect("fits")
        })
        .collect();
    let mut distinct = picks.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 4,
        "random placement used only {distinct:?}"
    );
    let again = framework_picks(3, &nodes);
    assert_eq!(picks, again, "the same seed replays the same placements");
}

fn framework_picks(seed: u64, nodes: &[Node]) -> Vec<String> {
    let framework = framework(json!({}), seed);
    let snapshot = snapshot(nodes, &[]);
    let pod = PodInfo::new(Arc::new(strategy(pod("p"), json!([{"type": "random"}]))));
    (0..40)
        .map(|_| {
            framework
                .schedule(&pod, &snapshot)
                .map(|r| r.node_name)
                .expect("fits")
        })
        .collect()
}

#[test]
fn distinct_instance_keeps_the_group_one_per_node() {
    let nodes = [node("n1"), node("n2")];
    let existing = [pod("w1")
        .annotation(GROUP_ANNOTATION, "web")
        .node_name("n1")];
    let incoming = constraints(
        pod("w2").annotation(GROUP_ANNOTATION, "web"),
        json!([{"type": "distinctInstance"}]),
    );
    assert_eq!(
        place(json!({}), &incoming, &nodes, &existing),
        Ok("n2".into())
    );
    let crowded = [
        existing[0].clone(),
        pod("w3")
            .annotation(GROUP_ANNOTATION, "web")
            .node_name("n2"),
    ];
    let message = place(json!({}), &incoming, &nodes, &crowded).expect_err("no node left");
    assert_eq!(
        message,
        "0/2 nodes are available: 2 node(s) already ran a pod of the group (distinctInstance)."
    );
}

#[test]
fn member_of_keeps_only_nodes_matching_the_expression() {
    let nodes = [
        node("micro").label("node.kubernetes.io/instance-type", "t2.micro"),
        node("large").label("node.kubernetes.io/instance-type", "m5.large"),
    ];
    for (expression, expected) in [
        (
            "attribute:node.kubernetes.io/instance-type =~ t2.*",
            "micro",
        ),
        ("attribute:ecs.instance-type == m5.large", "large"),
        (
            "!(attribute:ecs.instance-type in [t2.micro, t2.small])",
            "large",
        ),
    ] {
        let incoming = constraints(
            pod("p"),
            json!([{"type": "memberOf", "expression": expression}]),
        );
        assert_eq!(
            place(json!({}), &incoming, &nodes, &[]),
            Ok(expected.to_string()),
            "{expression}"
        );
    }
}

#[test]
fn profile_defaults_apply_to_pods_without_annotations() {
    let nodes = [node("roomy"), node("snug")];
    let existing = [pod("a").node_name("snug").request("cpu", "3")];
    let args = json!({"placementStrategy": [{"type": "binpack", "field": "cpu"}]});
    assert_eq!(
        place(args, &pod("p").request("cpu", "500m"), &nodes, &existing),
        Ok("snug".into())
    );
}

#[test]
fn a_bad_expression_fails_the_pod_with_the_position() {
    let nodes = [node("n1")];
    let incoming = constraints(
        pod("p"),
        json!([{"type": "memberOf", "expression": "attribute:zone ~= a"}]),
    );
    let message = place(json!({}), &incoming, &nodes, &[]).expect_err("refused");
    assert!(message.contains("at position 15"), "{message}");
    assert!(message.contains(CONSTRAINTS_ANNOTATION), "{message}");
}

#[test]
fn bad_profile_args_are_refused_with_the_entry() {
    let args: EcsPlacementArgs = serde_json::from_value(
        json!({"placementStrategy": [{"type": "binpack", "field": "disk"}]}),
    )
    .expect("parses");
    let error = EcsPlacement::new(args, 0).err().expect("refused");
    assert!(error.starts_with("placementStrategy[0]"), "{error}");
}
