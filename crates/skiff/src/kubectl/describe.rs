//! `skiff describe`: a readable account of objects and their recent events.
//!
//! Pods, nodes, services and deployments get kubectl's sections (containers,
//! conditions, ports, replicas, …), config maps their `Data` and `BinaryData`
//! as kubectl lays them out; other kinds show their metadata and the rest of
//! the object as indented YAML. Every description ends with the
//! events whose `involvedObject` is the object, oldest first.
//!
//! # Caveats
//! Volumes, QoS class, tolerations and resource totals of nodes are not shown.

use std::fmt::Write as _;

use serde_json::Value;
use skiff_client::{ListParams, Served};

use super::age::{age, now};
use super::apply::LAST_APPLIED;
use super::table::Table;
use super::{print, targets, Error, Session};
use crate::cli::DescribeArgs;
use skiff_api::printers::object::{at, int, label_list, or_none, text};
use skiff_api::printers::{node_roles, pod_status};

/// Runs `skiff describe`.
pub(crate) async fn run(args: DescribeArgs) -> Result<(), Error> {
    let targets = targets(&args.kind, &args.names)?;
    let mut session = Session::connect(args.server.server.as_deref()).await?;
    let mut resources = Vec::new();
    for target in &targets {
        resources.push(session.resource(&target.typed)?);
    }
    let namespace = super::namespace_or_default(&args.namespace);
    let mut failed = false;
    let mut printed = false;
    for (target, resource) in targets.iter().zip(&resources) {
        let (objects, missing) = read(&mut session, resource, &namespace, &target.names).await?;
        failed |= missing;
        for object in &objects {
            let events = events_of(&mut session, resource, object).await?;
            let mut text = if printed {
                "\n\n".to_string()
            } else {
                String::new()
            };
            let kind = &resource.resource.kind;
            text.push_str(&describe(kind, object, now()));
            text.push_str(&describe_events(kind, &events, now()));
            print(&text);
            printed = true;
        }
    }
    if failed {
        Err(Error::Reported)
    } else {
        Ok(())
    }
}

/// The objects `names` name (all in the namespace when none), and whether
/// any was missing; errors are printed as they come.
async fn read(
    session: &mut Session,
    resource: &Served,
    namespace: &str,
    names: &[String],
) -> Result<(Vec<Value>, bool), Error> {
    let api = session.api(resource, namespace);
    let mut objects = Vec::new();
    let mut failed = false;
    if names.is_empty() {
        let list = api
            .list_raw(&ListParams::default())
            .await
            .map_err(|e| session.error(e))?;
        objects = list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if objects.is_empty() {
            let namespaced = resource.namespaced();
            eprintln!("{}", super::get::no_resources(namespaced, namespace));
        }
    }
    for name in names {
        match api.get_raw(name).await {
            Ok(object) => objects.push(object),
            Err(err) => {
                eprintln!("{}", session.error(err));
                failed = true;
            }
        }
    }
    Ok((objects, failed))
}

/// The events about `object`: those whose involvedObject names it.
async fn events_of(
    session: &mut Session,
    resource: &Served,
    object: &Value,
) -> Result<Vec<Value>, Error> {
    let Ok(events) = session.resource("events") else {
        return Ok(Vec::new());
    };
    let name = text(object, &["metadata", "name"]);
    let namespace = text(object, &["metadata", "namespace"]);
    let mut selector = format!(
        "involvedObject.kind={},involvedObject.name={name}",
        resource.resource.kind
    );
    if resource.namespaced() {
        selector.push_str(&format!(",involvedObject.namespace={namespace}"));
    }
    let list = session
        .api(&events, &namespace)
        .list_raw(&ListParams::default().fields(&selector))
        .await
        .map_err(|e| session.error(e))?;
    let mut items = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    items.sort_by_key(|e| {
        let seen = last_seen(e);
        seen.and_then(Value::as_str)
            .and_then(super::age::parse_timestamp)
            .unwrap_or_default()
    });
    Ok(items)
}

fn last_seen(event: &Value) -> Option<&Value> {
    ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .find_map(|field| at(event, &[field]).filter(|v| v.is_string()))
        .or_else(|| at(event, &["metadata", "creationTimestamp"]))
}

/// Lines of `Key:  value`, values aligned in a column as kubectl aligns them.
struct Writer {
    out: String,
    /// Where values start, counted from the key's indentation.
    column: usize,
}

/// Where values start in most descriptions, counted from the key's indentation.
const VALUE_COLUMN: usize = 18;

/// Where kubectl starts the values of a description of `kind`, and the value
/// of its `Events:` line when there are none. kubectl aligns each run of
/// `Key:<tab>value` lines on its own; a config map's keys end with
/// `Annotations:`, and its events line follows a blank line, so it stands alone.
fn value_columns(kind: &str) -> (usize, usize) {
    match kind {
        "ConfigMap" => ("Annotations:".len() + 2, 0),
        _ => (VALUE_COLUMN, VALUE_COLUMN),
    }
}

impl Writer {
    fn new(column: usize) -> Writer {
        Writer {
            out: String::new(),
            column,
        }
    }

    /// The indentation of `level`, the label of `key`, and the width the
    /// label is padded to so that values start at the column.
    fn label(&self, level: usize, key: &str) -> (String, String, usize) {
        let indent = "  ".repeat(level);
        let label = format!("{key}:");
        let width = self
            .column
            .saturating_sub(indent.len())
            .max(label.len() + 2);
        (indent, label, width)
    }

    fn field(&mut self, level: usize, key: &str, value: impl std::fmt::Display) {
        let (indent, label, width) = self.label(level, key);
        let _ = writeln!(self.out, "{indent}{label:<width$}{value}");
    }

    fn line(&mut self, level: usize, text: &str) {
        let _ = writeln!(self.out, "{}{text}", "  ".repeat(level));
    }

    /// A map as `k=v` (or `k: v`), one per line, aligned after the key.
    fn map(&mut self, level: usize, key: &str, map: Option<&Value>, separator: &str) {
        let mut pairs: Vec<String> = match map {
            Some(Value::Object(map)) => map
                .iter()
                .filter(|(k, _)| k.as_str() != LAST_APPLIED)
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}{separator}{s}"),
                    other => format!("{k}{separator}{other}"),
                })
                .collect(),
            _ => Vec::new(),
        };
        pairs.sort();
        if pairs.is_empty() {
            return self.field(level, key, "<none>");
        }
        let (indent, label, width) = self.label(level, key);
        for (i, pair) in pairs.iter().enumerate() {
            let label = if i == 0 { label.as_str() } else { "" };
            let _ = writeln!(self.out, "{indent}{label:<width$}{pair}");
        }
    }

    /// A table indented under the current section.
    fn table(&mut self, level: usize, table: &Table) {
        for line in table.render(false).lines() {
            self.line(level, line);
        }
    }

    /// A value as YAML, indented one level deeper than its key.
    fn yaml(&mut self, level: usize, key: &str, value: &Value) {
        if !value.is_object() && !value.is_array() {
            let shown = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            return self.field(level, key, shown);
        }
        self.line(level, &format!("{key}:"));
        let yaml = super::yaml::to_yaml(value);
        for line in yaml.lines() {
            self.line(level + 1, line);
        }
    }
}

/// The description of one object of `kind`, without its events.
pub(crate) fn describe(kind: &str, object: &Value, now: i64) -> String {
    let mut w = Writer::new(value_columns(kind).0);
    w.field(0, "Name", text(object, &["metadata", "name"]));
    if let Some(namespace) = at(object, &["metadata", "namespace"]).and_then(Value::as_str) {
        w.field(0, "Namespace", namespace);
    }
    match kind {
        "Pod" => describe_pod(&mut w, object),
        "Node" => describe_node(&mut w, object, now),
        "Service" => describe_service(&mut w, object),
        "Deployment" => describe_deployment(&mut w, object),
        "ConfigMap" => describe_config_map(&mut w, object),
        _ => describe_generic(&mut w, object, now),
    }
    w.out
}

fn metadata(w: &mut Writer, object: &Value) {
    w.map(0, "Labels", at(object, &["metadata", "labels"]), "=");
    w.map(
        0,
        "Annotations",
        at(object, &["metadata", "annotations"]),
        ": ",
    );
}

fn describe_generic(w: &mut Writer, object: &Value, now: i64) {
    metadata(w, object);
    w.field(
        0,
        "Age",
        age(at(object, &["metadata", "creationTimestamp"]), now),
    );
    let Value::Object(map) = object else { return };
    let order = |key: &str| match key {
        "spec" => 0,
        "status" => 2,
        _ => 1,
    };
    let mut keys: Vec<&String> = map
        .keys()
        .filter(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
        .collect();
    keys.sort_by_key(|k| (order(k), k.to_string()));
    for key in keys {
        w.yaml(0, &capitalize(key), &map[key]);
    }
}

/// As kubectl: each data key, a rule, and its value as it is; binary data as
/// a size.
fn describe_config_map(w: &mut Writer, cm: &Value) {
    metadata(w, cm);
    w.line(0, "\nData\n====");
    if let Some(Value::Object(data)) = at(cm, &["data"]) {
        for (key, value) in data {
            let value = value.as_str().unwrap_or_default();
            w.line(0, &format!("{key}:\n----\n{value}\n"));
        }
    }
    w.line(0, "\nBinaryData\n====");
    if let Some(Value::Object(data)) = at(cm, &["binaryData"]) {
        for (key, value) in data {
            let bytes = base64_len(value.as_str().unwrap_or_default());
            w.line(0, &format!("{key}: {bytes} bytes"));
        }
    }
    w.line(0, "");
}

/// The number of bytes a base64 text (as JSON carries binary data) decodes to.
fn base64_len(text: &str) -> usize {
    let text = text.trim_end();
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
    (text.len() * 3 / 4).saturating_sub(padding)
}

fn capitalize(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn describe_pod(w: &mut Writer, pod: &Value) {
    w.field(0, "Priority", int(pod, &["spec", "priority"]));
    w.field(
        0,
        "Service Account",
        or_none(text(pod, &["spec", "serviceAccountName"])),
    );
    let node = text(pod, &["spec", "nodeName"]);
    let host_ip = text(pod, &["status", "hostIP"]);
    let node = match (node.is_empty(), host_ip.is_empty()) {
        (true, _) => "<none>".to_string(),
        (false, true) => node,
        (false, false) => format!("{node}/{host_ip}"),
    };
    w.field(0, "Node", node);
    if let Some(start) = at(pod, &["status", "startTime"]).and_then(Value::as_str) {
        w.field(0, "Start Time", start);
    }
    metadata(w, pod);
    w.field(0, "Status", pod_status(pod));
    w.field(0, "IP", text(pod, &["status", "podIP"]));
    if let Some(owner) = controller(pod) {
        w.field(0, "Controlled By", owner);
    }
    let statuses = at(pod, &["status", "containerStatuses"]);
    containers(w, 0, at(pod, &["spec", "containers"]), statuses);
    conditions(w, pod, false);
    w.map(0, "Node-Selectors", at(pod, &["spec", "nodeSelector"]), "=");
}

fn controller(object: &Value) -> Option<String> {
    at(object, &["metadata", "ownerReferences"])?
        .as_array()?
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|o| format!("{}/{}", text(o, &["kind"]), text(o, &["name"])))
}

fn containers(w: &mut Writer, level: usize, specs: Option<&Value>, statuses: Option<&Value>) {
    let specs = specs.and_then(Value::as_array).cloned().unwrap_or_default();
    if specs.is_empty() {
        return w.field(level, "Containers", "<none>");
    }
    w.line(level, "Containers:");
    for container in &specs {
        let name = text(container, &["name"]);
        w.line(level + 1, &format!("{name}:"));
        let l = level + 2;
        w.field(l, "Image", text(container, &["image"]));
        let ports: Vec<String> = container
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let protocol = match text(p, &["protocol"]) {
                    p if p.is_empty() => "TCP".to_string(),
                    p => p,
                };
                format!("{}/{protocol}", int(p, &["containerPort"]))
            })
            .collect();
        w.field(l, "Port", or_none(ports.join(", ")));
        for (key, field) in [("Command", "command"), ("Args", "args")] {
            if let Some(Value::Array(words)) = container.get(field) {
                w.line(l, &format!("{key}:"));
                for word in words {
                    w.line(l + 1, word.as_str().unwrap_or_default());
                }
            }
        }
        let status = statuses
            .and_then(Value::as_array)
            .and_then(|all| all.iter().find(|s| text(s, &["name"]) == name));
        if let Some(status) = status {
            let state = at(status, &["state"]).and_then(Value::as_object);
            let (state_name, detail) = match state.and_then(|s| s.iter().next()) {
                Some((name, detail)) => (capitalize(name), Some(detail)),
                None => ("Waiting".to_string(), None),
            };
            w.field(l, "State", state_name);
            if let Some(reason) = detail
                .map(|d| text(d, &["reason"]))
                .filter(|r| !r.is_empty())
            {
                w.field(l + 1, "Reason", reason);
            }
            let ready = status
                .get("ready")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            w.field(l, "Ready", if ready { "True" } else { "False" });
            w.field(l, "Restart Count", int(status, &["restartCount"]));
        }
        for (key, field) in [("Limits", "limits"), ("Requests", "requests")] {
            if let Some(Value::Object(amounts)) = at(container, &["resources", field]) {
                w.line(l, &format!("{key}:"));
                for (resource, amount) in amounts {
                    let amount = amount
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or(amount.to_string());
                    w.field(l + 1, resource, amount);
                }
            }
        }
        let env: Vec<String> = container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| match e.get("value").and_then(Value::as_str) {
                Some(value) => format!("{}:  {value}", text(e, &["name"])),
                None => format!("{}:  (from a reference)", text(e, &["name"])),
            })
            .collect();
        if env.is_empty() {
            w.field(l, "Environment", "<none>");
        } else {
            w.line(l, "Environment:");
            for line in env {
                w.line(l + 1, &line);
            }
        }
    }
}

fn conditions(w: &mut Writer, object: &Value, with_reason: bool) {
    let conditions = at(object, &["status", "conditions"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conditions.is_empty() {
        return w.field(0, "Conditions", "<none>");
    }
    w.line(0, "Conditions:");
    let mut headers = vec!["Type".to_string(), "Status".to_string()];
    if with_reason {
        headers.extend(["Reason".to_string(), "Message".to_string()]);
    }
    let mut table = Table {
        rows: vec![headers.iter().map(|h| "-".repeat(h.len())).collect()],
        headers,
    };
    for c in &conditions {
        let mut row = vec![text(c, &["type"]), text(c, &["status"])];
        if with_reason {
            row.extend([text(c, &["reason"]), text(c, &["message"])]);
        }
        table.rows.push(row);
    }
    w.table(1, &table);
}

fn describe_node(w: &mut Writer, node: &Value, now: i64) {
    w.field(0, "Roles", or_none(node_roles(node).join(",")));
    metadata(w, node);
    w.field(
        0,
        "CreationTimestamp",
        text(node, &["metadata", "creationTimestamp"]),
    );
    w.field(
        0,
        "Age",
        age(at(node, &["metadata", "creationTimestamp"]), now),
    );
    let taints: Vec<String> = at(node, &["spec", "taints"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            let value = text(t, &["value"]);
            let value = if value.is_empty() {
                String::new()
            } else {
                format!("={value}")
            };
            format!("{}{value}:{}", text(t, &["key"]), text(t, &["effect"]))
        })
        .collect();
    w.field(0, "Taints", or_none(taints.join(", ")));
    let unschedulable = at(node, &["spec", "unschedulable"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    w.field(0, "Unschedulable", unschedulable);
    conditions(w, node, true);
    let addresses: Vec<(String, String)> = at(node, &["status", "addresses"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| (text(a, &["type"]), text(a, &["address"])))
        .collect();
    if addresses.is_empty() {
        w.field(0, "Addresses", "<none>");
    } else {
        w.line(0, "Addresses:");
        for (kind, address) in addresses {
            w.field(1, &kind, address);
        }
    }
    for (key, field) in [("Capacity", "capacity"), ("Allocatable", "allocatable")] {
        if let Some(Value::Object(amounts)) = at(node, &["status", field]) {
            w.line(0, &format!("{key}:"));
            for (resource, amount) in amounts {
                w.field(1, resource, amount.as_str().unwrap_or_default());
            }
        }
    }
    if let Some(Value::Object(info)) = at(node, &["status", "nodeInfo"]) {
        w.line(0, "System Info:");
        for (key, value) in info {
            w.field(1, &capitalize(key), value.as_str().unwrap_or_default());
        }
    }
    w.field(0, "PodCIDR", text(node, &["spec", "podCIDR"]));
}

fn describe_service(w: &mut Writer, svc: &Value) {
    metadata(w, svc);
    w.field(
        0,
        "Selector",
        or_none(label_list(svc, &["spec", "selector"])),
    );
    let kind = text(svc, &["spec", "type"]);
    w.field(
        0,
        "Type",
        if kind.is_empty() {
            "ClusterIP".into()
        } else {
            kind
        },
    );
    w.field(0, "IP", or_none(text(svc, &["spec", "clusterIP"])));
    let ips: Vec<&str> = at(svc, &["spec", "clusterIPs"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !ips.is_empty() {
        w.field(0, "IPs", ips.join(","));
    }
    for port in at(svc, &["spec", "ports"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = match text(port, &["name"]) {
            n if n.is_empty() => "<unset>".to_string(),
            n => n,
        };
        let protocol = match text(port, &["protocol"]) {
            p if p.is_empty() => "TCP".to_string(),
            p => p,
        };
        w.field(
            0,
            "Port",
            format!("{name}  {}/{protocol}", int(port, &["port"])),
        );
        let target = match port.get("targetPort") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => int(port, &["port"]).to_string(),
        };
        w.field(0, "TargetPort", format!("{target}/{protocol}"));
        if let Some(node_port) = port.get("nodePort").and_then(Value::as_i64) {
            w.field(0, "NodePort", format!("{name}  {node_port}/{protocol}"));
        }
    }
    let affinity = text(svc, &["spec", "sessionAffinity"]);
    w.field(
        0,
        "Session Affinity",
        if affinity.is_empty() {
            "None".into()
        } else {
            affinity
        },
    );
}

fn describe_deployment(w: &mut Writer, deploy: &Value) {
    w.field(
        0,
        "CreationTimestamp",
        text(deploy, &["metadata", "creationTimestamp"]),
    );
    metadata(w, deploy);
    w.field(
        0,
        "Selector",
        or_none(label_list(deploy, &["spec", "selector", "matchLabels"])),
    );
    let desired = at(deploy, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    w.field(
        0,
        "Replicas",
        format!(
            "{desired} desired | {} updated | {} total | {} available | {} unavailable",
            int(deploy, &["status", "updatedReplicas"]),
            int(deploy, &["status", "replicas"]),
            int(deploy, &["status", "availableReplicas"]),
            int(deploy, &["status", "unavailableReplicas"]),
        ),
    );
    let strategy = text(deploy, &["spec", "strategy", "type"]);
    w.field(
        0,
        "StrategyType",
        if strategy.is_empty() {
            "RollingUpdate".into()
        } else {
            strategy
        },
    );
    w.field(
        0,
        "MinReadySeconds",
        int(deploy, &["spec", "minReadySeconds"]),
    );
    if let Some(rolling) = at(deploy, &["spec", "strategy", "rollingUpdate"]) {
        let show = |field: &str| match rolling.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "25%".into(),
        };
        w.field(
            0,
            "RollingUpdateStrategy",
            format!(
                "{} max unavailable, {} max surge",
                show("maxUnavailable"),
                show("maxSurge")
            ),
        );
    }
    w.line(0, "Pod Template:");
    w.map(
        1,
        "Labels",
        at(deploy, &["spec", "template", "metadata", "labels"]),
        "=",
    );
    containers(
        w,
        1,
        at(deploy, &["spec", "template", "spec", "containers"]),
        None,
    );
    conditions(w, deploy, true);
}

/// The Events section of an object of `kind`: a table of type, reason, age,
/// source and message, oldest first, or `<none>`.
pub(crate) fn describe_events(kind: &str, events: &[Value], now: i64) -> String {
    let mut w = Writer::new(value_columns(kind).1);
    if events.is_empty() {
        w.field(0, "Events", "<none>");
        return w.out;
    }
    w.line(0, "Events:");
    let headers: Vec<String> = ["Type", "Reason", "Age", "From", "Message"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    let mut table = Table {
        rows: vec![headers.iter().map(|h| "-".repeat(h.len())).collect()],
        headers,
    };
    for event in events {
        let mut when = age(last_seen(event), now);
        let count = int(event, &["count"]);
        if count > 1 {
            if let Some(first) = at(event, &["firstTimestamp"]).filter(|v| v.is_string()) {
                when = format!("{when} (x{count} over {})", age(Some(first), now));
            }
        }
        let mut from = text(event, &["source", "component"]);
        if from.is_empty() {
            from = text(event, &["reportingController"]);
        }
        let host = text(event, &["source", "host"]);
        if !host.is_empty() {
            from = format!("{from}, {host}");
        }
        table.rows.push(vec![
            text(event, &["type"]),
            text(event, &["reason"]),
            when,
            from,
            text(event, &["message"]),
        ]);
    }
    w.table(1, &table);
    w.out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CREATED: i64 = 1_714_557_600;

    #[test]
    fn a_pod_description_names_its_sections_and_aligns_values() {
        let pod = json!({"metadata": {"name": "web", "namespace": "default",
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {LAST_APPLIED: "{}"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx",
                "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2024-05-01T10:00:01Z"}}}]}});
        let text = describe("Pod", &pod, CREATED);
        assert!(
            text.starts_with("Name:             web\nNamespace:        default\n"),
            "{text}"
        );
        assert!(
            text.contains("Node:             node-1/10.0.0.1\n"),
            "{text}"
        );
        assert!(
            text.contains("Labels:           app=web\n                  tier=front\n"),
            "{text}"
        );
        // The last-applied annotation is left out, as kubectl leaves it out.
        assert!(text.contains("Annotations:      <none>\n"), "{text}");
        assert!(text.contains("Status:           Running\n"), "{text}");
        assert!(text.contains("  c:\n    Image:"), "{text}");
        assert!(text.contains("    Port:         80/TCP\n"), "{text}");
        assert!(text.contains("    State:        Running\n"), "{text}");
        assert!(
            text.contains("  Type    Status\n  ----    ------\n  Ready   True\n"),
            "{text}"
        );
    }

    #[test]
    fn other_kinds_show_the_rest_as_yaml() {
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": "default"},
            "secrets": [{"name": "builder-token"}]});
        let text = describe("ServiceAccount", &sa, CREATED);
        assert!(
            text.contains("Secrets:\n  - name: builder-token\n"),
            "{text}"
        );
        assert!(!text.contains("apiVersion"), "{text}");
    }

    #[test]
    fn a_config_map_lists_its_data_as_kubectl_does() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default", "labels": {"app": "web"}},
            "data": {"b.conf": "x=1\ny=2", "a": "value"},
            "binaryData": {"logo": "AAECAwQ="}});
        let text = describe("ConfigMap", &cm, CREATED);
        assert_eq!(
            text,
            "Name:         cfg\n\
             Namespace:    default\n\
             Labels:       app=web\n\
             Annotations:  <none>\n\
             \n\
             Data\n\
             ====\n\
             a:\n\
             ----\n\
             value\n\
             \n\
             b.conf:\n\
             ----\n\
             x=1\n\
             y=2\n\
             \n\
             \n\
             BinaryData\n\
             ====\n\
             logo: 5 bytes\n\
             \n"
        );
        assert_eq!(base64_len(""), 0);
        assert_eq!(base64_len("AA=="), 1);
        assert_eq!(base64_len("AAA="), 2);
        assert_eq!(base64_len("AAAA"), 3);
    }

    #[test]
    fn events_are_listed_or_none() {
        assert_eq!(
            describe_events("Pod", &[], CREATED),
            "Events:           <none>\n"
        );
        assert_eq!(
            describe_events("ConfigMap", &[], CREATED),
            "Events:  <none>\n"
        );
        let event = json!({"type": "Normal", "reason": "Scheduled", "message": "assigned",
            "count": 3, "firstTimestamp": "2024-05-01T09:55:00Z",
            "lastTimestamp": "2024-05-01T10:00:00Z", "source": {"component": "default-scheduler"}});
        let text = describe_events("Pod", &[event], CREATED + 10);
        assert!(
            text.starts_with("Events:\n  Type     Reason      Age"),
            "{text}"
        );
        assert!(
            text.contains(
                "Normal   Scheduled   10s (x3 over 5m10s)   default-scheduler   assigned"
            ),
            "{text}"
        );
    }
}
