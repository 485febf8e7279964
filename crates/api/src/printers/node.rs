//! Nodes: readiness, roles and versions, as Kubernetes' `printNode`.
//!
//! STATUS is `Ready` when the Ready condition is True, `NotReady` when it
//! is anything else and `Unknown` without one; a cordoned node adds
//! `SchedulingDisabled`. ROLES come from `node-role.kubernetes.io/<role>`
//! labels and the older `kubernetes.io/role` label.

use serde_json::Value;

use super::object::{at, items, or_none, text};
use super::{created, name, Column, Printer, AGE, NAME};

const COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", "Kubelet Version reported by the node."),
    Column::new("Internal-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available.").wide(),
    Column::new("External-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available.").wide(),
    Column::new("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).").wide(),
    Column::new("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).").wide(),
    Column::new("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).").wide(),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    (kind == "Node").then_some(Printer {
        columns: COLUMNS,
        cells,
    })
}

fn cells(node: &Value, now: i64) -> Vec<Value> {
    let ready = items(node, &["status", "conditions"])
        .iter()
        .find(|c| text(c, &["type"]) == "Ready")
        .map(|c| match text(c, &["status"]).as_str() {
            "True" => "Ready",
            _ => "NotReady",
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if at(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let info = |field: &str| match text(node, &["status", "nodeInfo", field]) {
        value if value.is_empty() => "<unknown>".to_string(),
        value => value,
    };
    vec![
        name(node),
        status.into(),
        or_none(roles(node).join(",")).into(),
        created(node, now),
        text(node, &["status", "nodeInfo", "kubeletVersion"]).into(),
        or_none(address(node, "InternalIP")).into(),
        or_none(address(node, "ExternalIP")).into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

/// The node's first address of `kind` (`InternalIP`, `ExternalIP`), or empty.
fn address(node: &Value, kind: &str) -> String {
    items(node, &["status", "addresses"])
        .iter()
        .find(|a| text(a, &["type"]) == kind)
        .map(|a| text(a, &["address"]))
        .unwrap_or_default()
}

/// A node's roles, sorted: the `<role>` of each `node-role.kubernetes.io/<role>`
/// label and the value of a `kubernetes.io/role` label.
pub fn roles(node: &Value) -> Vec<String> {
    let Some(Value::Object(labels)) = at(node, &["metadata", "labels"]) else {
        return Vec::new();
    };
    let mut roles: Vec<String> = Vec::new();
    for (key, value) in labels {
        let role = match key.strip_prefix("node-role.kubernetes.io/") {
            Some(role) => role,
            None if key == "kubernetes.io/role" => value.as_str().unwrap_or_default(),
            None => continue,
        };
        if !role.is_empty() {
            roles.push(role.to_string());
        }
    }
    roles.sort();
    roles.dedup();
    roles
}
