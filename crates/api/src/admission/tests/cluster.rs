//! Namespaces, Nodes, ConfigMaps, Secrets, ServiceAccounts, Events, Leases and PriorityClasses.

use serde_json::{json, Value};

use super::{assert_error, assert_error_starting, assert_valid, check, with};
use crate::admission::validate;

#[test]
fn namespaces_and_nodes() {
    let ns = json!({"metadata": {"name": "team-a"}});
    assert_valid("Namespace", &ns);
    assert_error(
        "Namespace",
        &with(&ns, "/metadata/name", json!("team.a")),
        "metadata.name: Invalid value: \"team.a\": must not contain dots",
    );
    assert_error(
        "Namespace",
        &with(&ns, "/metadata/namespace", json!("x")),
        "metadata.namespace: Forbidden: not allowed on this type",
    );
    let node = json!({"metadata": {"name": "node-a"}, "spec": {"podCIDRs": ["10.244.1.0/24"],
        "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}});
    assert_valid("Node", &node);
    assert_error("Node", &with(&node, "/spec/taints/0/effect", json!("Evict")), "spec.taints[0].effect: Unsupported value: \"Evict\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
    assert_error(
        "Node",
        &with(&node, "/spec/taints/0/effect", Value::Null),
        "spec.taints[0].effect: Required value",
    );
    let mut twice = node.clone();
    twice["spec"]["taints"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "value": "x"}));
    assert_error_starting("Node", &twice, "spec.taints[1]: Duplicate value: {");
    assert_error("Node", &with(&node, "/spec/podCIDRs/0", json!("10.244.1.0")), "spec.podCIDRs[0]: Invalid value: \"10.244.1.0\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
    assert_eq!(
        check("Node", &with(&node, "/spec/podCIDRs/0", json!("10.244.2.0/24")), Some(&node)),
        vec!["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]
    );
    assert!(check(
        "Node",
        &with(&node, "/spec/unschedulable", json!(true)),
        Some(&node)
    )
    .is_empty());
}

#[test]
fn config_maps_and_secrets() {
    let cm = json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"app.properties": "a=b"}});
    assert_valid("ConfigMap", &cm);
    assert_error_starting("ConfigMap", &with(&cm, "/data/bad key", json!("x")), "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'");
    let both = with(&cm, "/binaryData", json!({"app.properties": "eA=="}));
    assert_error("ConfigMap", &both, "data[app.properties]: Invalid value: \"app.properties\": duplicate of key present in binaryData");
    let frozen = with(&cm, "/immutable", json!(true));
    assert_eq!(
        check(
            "ConfigMap",
            &with(&frozen, "/data/app.properties", json!("a=c")),
            Some(&frozen)
        ),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    assert_eq!(
        check("ConfigMap", &cm, Some(&frozen)),
        vec!["immutable: Forbidden: field is immutable when `immutable` is set"]
    );
    assert!(check(
        "ConfigMap",
        &with(&cm, "/data/app.properties", json!("a=c")),
        Some(&cm)
    )
    .is_empty());

    let secret = json!({"metadata": {"name": "creds", "namespace": "default"}, "stringData": {"password": "hunter2"}});
    assert_valid("Secret", &secret);
    let tls = with(&secret, "/type", json!("kubernetes.io/tls"));
    assert_error("Secret", &tls, "data[tls.crt]: Required value");
    let token = with(
        &secret,
        "/type",
        json!("kubernetes.io/service-account-token"),
    );
    assert_error(
        "Secret",
        &token,
        "metadata.annotations[kubernetes.io/service-account.name]: Required value",
    );
    let docker = with(
        &with(&secret, "/type", json!("kubernetes.io/dockerconfigjson")),
        "/stringData",
        json!({".dockerconfigjson": "{not json"}),
    );
    assert_error("Secret", &docker, "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": must be valid JSON");
    assert_eq!(
        check(
            "Secret",
            &with(&tls, "/stringData", json!({"tls.crt": "c", "tls.key": "k"})),
            Some(&secret)
        ),
        vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
    );
    let bad_base64 =
        json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"k": "%%%"}});
    assert!(validate("Secret", &bad_base64, None)[0]
        .to_string()
        .contains("could not be decoded"));
}

#[test]
fn service_accounts_events_and_leases() {
    assert_valid(
        "ServiceAccount",
        &json!({"metadata": {"name": "default", "namespace": "default"}}),
    );
    assert_error_starting(
        "ServiceAccount",
        &json!({"metadata": {"name": "Default", "namespace": "default"}}),
        "metadata.name: Invalid value: \"Default\"",
    );
    let event = json!({"metadata": {"name": "web.17a", "namespace": "prod"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"}, "reason": "Scheduled"});
    assert_valid("Event", &event);
    assert_error(
        "Event",
        &with(&event, "/involvedObject/namespace", json!("dev")),
        "involvedObject.namespace: Invalid value: \"dev\": does not match event.namespace",
    );
    let node_event = json!({"metadata": {"name": "n.1", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "node-a"}});
    assert_valid("Event", &node_event);
    let lease = json!({"metadata": {"name": "node-a", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40}});
    assert_valid("Lease", &lease);
    assert_error(
        "Lease",
        &with(&lease, "/spec/leaseDurationSeconds", json!(0)),
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
    );
    assert_error(
        "Lease",
        &with(&lease, "/spec/leaseTransitions", json!(-1)),
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    );
}

#[test]
fn priority_classes() {
    let pc = json!({"metadata": {"name": "high"}, "value": 1000});
    assert_valid("PriorityClass", &pc);
    assert_error(
        "PriorityClass",
        &with(&pc, "/value", json!(1_000_000_001)),
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
    );
    assert_valid(
        "PriorityClass",
        &json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000}),
    );
    assert_error("PriorityClass", &json!({"metadata": {"name": "system-mine"}, "value": 5}), "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class");
    assert_error("PriorityClass", &with(&pc, "/preemptionPolicy", json!("Sometimes")), "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"Never\", \"PreemptLowerPriority\"");
    assert_eq!(
        check(
            "PriorityClass",
            &with(&pc, "/value", json!(2000)),
            Some(&pc)
        ),
        vec!["value: Forbidden: may not be changed in an update."]
    );
}

#[test]
fn unknown_kinds_get_the_metadata_rules() {
    assert!(validate(
        "Widget",
        &json!({"metadata": {"name": "w", "namespace": "default"}}),
        None
    )
    .is_empty());
    assert_eq!(
        validate(
            "Widget",
            &json!({"metadata": {"namespace": "default"}}),
            None
        )[0]
        .to_string(),
        "metadata.name: Required value: name or generateName is required"
    );
}
