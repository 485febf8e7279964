//! The strategies as the verbs see them: what each kind keeps, resets and
//! takes, read through the one table.

use std::collections::HashSet;

use serde_json::{json, Value};
use skiff_api::resources::{self, Resource};

use super::*;
use crate::registry::allocator::ServiceRanges;

fn resource(name: &str) -> &'static Resource {
    resources::lookup(name).expect("a served resource")
}

fn bound_pod(grace: Option<i64>) -> Value {
    let mut pod = json!({"metadata": {"name": "web"}, "spec": {"nodeName": "node-a"}});
    if let Some(grace) = grace {
        pod["spec"]["terminationGracePeriodSeconds"] = json!(grace);
    }
    pod
}

#[test]
fn a_kind_with_a_status_subresource_gets_no_status_from_the_client_on_create() {
    let deployments = resource("deployments");
    let mut object = json!({"spec": {}, "status": {"replicas": 3}});
    for_kind(deployments).prepare_for_create(deployments, &mut object);
    assert_eq!(object, json!({"spec": {}}));
}

#[test]
fn a_kind_without_a_status_subresource_keeps_what_the_client_sent() {
    let config_maps = resource("configmaps");
    let mut object = json!({"data": {"a": "1"}, "status": "kept"});
    for_kind(config_maps).prepare_for_create(config_maps, &mut object);
    assert_eq!(object["status"], "kept");
}

#[test]
fn a_node_registers_with_its_status() {
    let nodes = resource("nodes");
    let mut node = json!({"status": {"capacity": {"cpu": "4"}}});
    for_kind(nodes).prepare_for_create(nodes, &mut node);
    assert_eq!(node["status"]["capacity"]["cpu"], "4");
}

#[test]
fn a_new_pod_is_pending_whatever_status_it_was_sent_with() {
    let pods = resource("pods");
    let mut pod = json!({"status": {"phase": "Running", "podIP": "10.0.0.1"}});
    for_kind(pods).prepare_for_create(pods, &mut pod);
    assert_eq!(pod["status"], json!({"phase": "Pending"}));
}

#[test]
fn an_update_of_the_main_resource_keeps_the_old_status() {
    let deployments = resource("deployments");
    let old = json!({"spec": {"replicas": 1}, "status": {"replicas": 1}});
    let mut next = json!({"spec": {"replicas": 2}, "status": {"replicas": 9}});
    for_kind(deployments).prepare_for_update(deployments, &mut next, &old);
    assert_eq!(
        next,
        json!({"spec": {"replicas": 2}, "status": {"replicas": 1}})
    );
}

#[test]
fn a_status_update_changes_the_status_and_nothing_else() {
    let deployments = resource("deployments");
    let old = json!({"spec": {"replicas": 1}, "status": {"replicas": 1}});
    let new = json!({"spec": {"replicas": 5}, "status": {"replicas": 2}});
    let next = for_kind(deployments).prepare_for_subresource_update("status", &old, &new);
    assert_eq!(
        next,
        json!({"spec": {"replicas": 1}, "status": {"replicas": 2}})
    );
}

#[test]
fn a_namespace_spec_changes_only_through_finalize() {
    let namespaces = resource("namespaces");
    let strategy = for_kind(namespaces);
    let old = json!({"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}});
    let emptied = json!({"spec": {"finalizers": []}, "status": {"phase": "Active"}});
    let mut updated = emptied.clone();
    strategy.prepare_for_update(namespaces, &mut updated, &old);
    assert_eq!(updated, old);
    let finalized = strategy.prepare_for_subresource_update("finalize", &old, &emptied);
    assert_eq!(
        finalized,
        json!({"spec": {"finalizers": []}, "status": {"phase": "Terminating"}})
    );
    assert!(strategy.finalized(&finalized));
    assert!(!strategy.finalized(&old));
}

#[test]
fn a_deleted_namespace_turns_terminating_once() {
    let namespaces = resource("namespaces");
    let strategy = for_kind(namespaces);
    let active = json!({"metadata": {"name": "team"}, "status": {"phase": "Active"}});
    let terminating = strategy
        .terminate(&active, "2026-01-01T00:00:00Z")
        .expect("a namespace is terminated, not deleted");
    assert_eq!(terminating["status"]["phase"], "Terminating");
    assert_eq!(
        terminating["metadata"]["deletionTimestamp"],
        "2026-01-01T00:00:00Z"
    );
    let again = strategy.terminate(&terminating, "2026-01-01T00:01:00Z");
    assert_eq!(
        again.as_ref(),
        Some(&terminating),
        "a second delete changes nothing"
    );
}

#[test]
fn other_kinds_are_deleted_the_generic_way() {
    for name in ["pods", "services", "configmaps"] {
        let r = resource(name);
        assert!(for_kind(r).terminate(&json!({}), "now").is_none(), "{name}");
    }
}

#[test]
fn a_bound_pod_gets_the_requested_then_its_own_then_thirty_seconds() {
    let pods = resource("pods");
    let strategy = for_kind(pods);
    assert_eq!(
        strategy.grace_period_seconds(&bound_pod(Some(60)), Some(5)),
        5
    );
    assert_eq!(
        strategy.grace_period_seconds(&bound_pod(Some(60)), None),
        60
    );
    assert_eq!(strategy.grace_period_seconds(&bound_pod(None), None), 30);
    assert_eq!(strategy.grace_period_seconds(&bound_pod(None), Some(-3)), 0);
}

#[test]
fn an_unbound_pod_and_other_kinds_go_at_once() {
    let unbound = json!({"spec": {"terminationGracePeriodSeconds": 60}});
    assert_eq!(
        for_kind(resource("pods")).grace_period_seconds(&unbound, None),
        0
    );
    assert_eq!(
        for_kind(resource("deployments")).grace_period_seconds(&bound_pod(Some(60)), Some(9)),
        0
    );
}

#[test]
fn only_pods_serve_binding() {
    assert_eq!(
        for_kind(resource("pods")).create_subresource("binding"),
        Some(CreateSubresource::Binding)
    );
    assert_eq!(for_kind(resource("pods")).create_subresource("log"), None);
    assert_eq!(
        for_kind(resource("nodes")).create_subresource("binding"),
        None
    );
}

#[test]
fn only_services_take_addresses() {
    let ranges = ServiceRanges::default();
    let random = Random::new(Some(7));
    let taken = HashSet::new();
    let context = AllocationContext {
        ranges: &ranges,
        random: &random,
        taken: &taken,
    };
    let mut service = json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
    });
    let services = for_kind(resource("services"));
    assert!(services.allocates());
    let allocation = services
        .allocate(&context, &mut service, None)
        .expect("the range has room");
    assert!(service["spec"]["clusterIP"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.")));
    assert_eq!(allocation.ops.len(), 1);
    assert_eq!(services.release(&service).ops.len(), 1);

    let pods = for_kind(resource("pods"));
    assert!(!pods.allocates());
    let mut pod = json!({"spec": {}});
    let none = pods
        .allocate(&context, &mut pod, None)
        .expect("nothing to take");
    assert!(none.ops.is_empty() && none.compares.is_empty());
    assert_eq!(pod, json!({"spec": {}}));
}
