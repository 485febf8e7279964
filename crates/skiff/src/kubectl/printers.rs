//! The columns `get` shows for each kind, as kubectl's default printers
//! (Kubernetes' `pkg/printers/internalversion`) show them.
//!
//! Each kind has a header list and a row function over the object's JSON;
//! `-o wide` appends the wide columns, and `-A` puts NAMESPACE first (the
//! caller adds it). Kinds without a printer of their own show NAME and AGE.
//!
//! # Caveats
//! Pod STATUS follows the common cases of kubectl's logic (terminating,
//! a waiting or terminated container's reason, the phase), not every one.

use serde_json::Value;

use super::age::{age, human_duration, parse_timestamp};

/// The column headers for objects of `kind`.
pub(crate) fn headers(kind: &str, wide: bool) -> Vec<&'static str> {
    let (mut base, extra): (Vec<&str>, Vec<&str>) = match kind {
        "Pod" => (
            vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            vec!["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ),
        "Node" => (
            vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            vec![
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ],
        ),
        "Service" => (
            vec![
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            vec!["SELECTOR"],
        ),
        "Deployment" => (
            vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            vec!["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "ReplicaSet" => (
            vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            vec!["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "Job" => (
            vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            vec!["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "CronJob" => (
            vec![
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            vec!["CONTAINERS", "IMAGES", "SELECTOR"],
        ),
        "Namespace" => (vec!["NAME", "STATUS", "AGE"], vec![]),
        "ConfigMap" => (vec!["NAME", "DATA", "AGE"], vec![]),
        "Secret" => (vec!["NAME", "TYPE", "DATA", "AGE"], vec![]),
        "ServiceAccount" => (vec!["NAME", "SECRETS", "AGE"], vec![]),
        "Event" => (
            vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            vec![],
        ),
        "Lease" => (vec!["NAME", "HOLDER", "AGE"], vec![]),
        "Endpoints" => (vec!["NAME", "ENDPOINTS", "AGE"], vec![]),
        "PriorityClass" => (
            vec!["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
            vec![],
        ),
        _ => (vec!["NAME", "AGE"], vec![]),
    };
    if wide {
        base.extend(extra);
    }
    base
}

/// The cells of one object's row, matching [`headers`].
pub(crate) fn row(kind: &str, object: &Value, now: i64, wide: bool) -> Vec<String> {
    let name = text(object, &["metadata", "name"]);
    let created = age(at(object, &["metadata", "creationTimestamp"]), now);
    let (mut base, extra) = match kind {
        "Pod" => pod_row(object, name, created),
        "Node" => node_row(object, name, created),
        "Service" => service_row(object, name, created),
        "Deployment" => (
            vec![
                name,
                format!(
                    "{}/{}",
                    int(object, &["status", "readyReplicas"]),
                    replicas(object)
                ),
                int(object, &["status", "updatedReplicas"]).to_string(),
                int(object, &["status", "availableReplicas"]).to_string(),
                created,
            ],
            workload_wide(object, &["spec", "template"]),
        ),
        "ReplicaSet" => (
            vec![
                name,
                replicas(object).to_string(),
                int(object, &["status", "replicas"]).to_string(),
                int(object, &["status", "readyReplicas"]).to_string(),
                created,
            ],
            workload_wide(object, &["spec", "template"]),
        ),
        "Job" => job_row(object, name, created, now),
        "CronJob" => (
            vec![
                name,
                text(object, &["spec", "schedule"]),
                or_none(text(object, &["spec", "timeZone"])),
                bool_text(object, &["spec", "suspend"]),
                len(object, &["status", "active"]).to_string(),
                match at(object, &["status", "lastScheduleTime"]) {
                    Some(t) => age(Some(t), now),
                    None => "<none>".into(),
                },
                created,
            ],
            workload_wide(object, &["spec", "jobTemplate", "spec", "template"]),
        ),
        "Namespace" => (
            vec![name, text(object, &["status", "phase"]), created],
            vec![],
        ),
        "ConfigMap" => (
            vec![
                name,
                (len(object, &["data"]) + len(object, &["binaryData"])).to_string(),
                created,
            ],
            vec![],
        ),
        "Secret" => (
            vec![
                name,
                text(object, &["type"]),
                (len(object, &["data"]) + len(object, &["stringData"])).to_string(),
                created,
            ],
            vec![],
        ),
        "ServiceAccount" => (
            vec![name, len(object, &["secrets"]).to_string(), created],
            vec![],
        ),
        "Event" => (event_row(object, now), vec![]),
        "Lease" => (
            vec![name, text(object, &["spec", "holderIdentity"]), created],
            vec![],
        ),
        "Endpoints" => (vec![name, endpoints(object), created], vec![]),
        "PriorityClass" => (
            vec![
                name,
                int(object, &["value"]).to_string(),
                bool_text(object, &["globalDefault"]),
                created,
                or_none(text(object, &["preemptionPolicy"])),
            ],
            vec![],
        ),
        _ => (vec![name, created], vec![]),
    };
    if wide {
        base.extend(extra);
    }
    base
}

/// The value at `path`, if every step exists.
pub(crate) fn at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, key| v.get(*key))
}

/// The string at `path`, or empty.
pub(crate) fn text(object: &Value, path: &[&str]) -> String {
    at(object, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The integer at `path`, or 0.
pub(crate) fn int(object: &Value, path: &[&str]) -> i64 {
    at(object, path).and_then(Value::as_i64).unwrap_or_default()
}

/// The number of entries of the object or array at `path`, or 0.
pub(crate) fn len(object: &Value, path: &[&str]) -> usize {
    match at(object, path) {
        Some(Value::Object(map)) => map.len(),
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    }
}

/// `<none>` for an empty cell, as kubectl fills one.
pub(crate) fn or_none(cell: String) -> String {
    if cell.is_empty() {
        "<none>".into()
    } else {
        cell
    }
}

fn bool_text(object: &Value, path: &[&str]) -> String {
    at(object, path)
        .and_then(Value::as_bool)
        .unwrap_or_default()
        .to_string()
}

/// `spec.replicas`, which Kubernetes defaults to 1.
fn replicas(object: &Value) -> i64 {
    at(object, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn items<'a>(object: &'a Value, path: &[&str]) -> &'a [Value] {
    at(object, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `k=v,k=v` of a label map at `path`, keys sorted.
pub(crate) fn label_list(object: &Value, path: &[&str]) -> String {
    let Some(Value::Object(map)) = at(object, path) else {
        return String::new();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

fn pod_row(pod: &Value, name: String, created: String) -> (Vec<String>, Vec<String>) {
    let statuses = items(pod, &["status", "containerStatuses"]);
    let total = len(pod, &["spec", "containers"]);
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|s| s.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    let base = vec![
        name,
        format!("{ready}/{total}"),
        pod_status(pod),
        restarts.to_string(),
        created,
    ];
    let wide = vec![
        or_none(text(pod, &["status", "podIP"])),
        or_none(text(pod, &["spec", "nodeName"])),
        or_none(text(pod, &["status", "nominatedNodeName"])),
        "<none>".into(),
    ];
    (base, wide)
}

/// A pod's STATUS cell: Terminating while deleted, else a container's waiting
/// or terminated reason, else the pod's reason or phase.
pub(crate) fn pod_status(pod: &Value) -> String {
    if at(pod, &["metadata", "deletionTimestamp"]).is_some() {
        return "Terminating".into();
    }
    let mut status = text(pod, &["status", "reason"]);
    if status.is_empty() {
        status = text(pod, &["status", "phase"]);
    }
    if status.is_empty() {
        status = "Pending".into();
    }
    for container in items(pod, &["status", "containerStatuses"]).iter().rev() {
        let waiting = text(container, &["state", "waiting", "reason"]);
        let terminated = text(container, &["state", "terminated", "reason"]);
        if !waiting.is_empty() {
            status = waiting;
        } else if !terminated.is_empty() && status != "Succeeded" && status != "Failed" {
            status = terminated;
        }
    }
    status
}

fn node_row(node: &Value, name: String, created: String) -> (Vec<String>, Vec<String>) {
    let ready = items(node, &["status", "conditions"])
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .map(|c| match c.get("status").and_then(Value::as_str) {
            Some("True") => "Ready",
            Some("False") => "NotReady",
            _ => "Unknown",
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if at(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let base = vec![
        name,
        status,
        or_none(node_roles(node).join(",")),
        created,
        text(node, &["status", "nodeInfo", "kubeletVersion"]),
    ];
    let address = |kind: &str| {
        items(node, &["status", "addresses"])
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
            .map(|a| text(a, &["address"]))
            .unwrap_or_default()
    };
    let wide = vec![
        or_none(address("InternalIP")),
        or_none(address("ExternalIP")),
        text(node, &["status", "nodeInfo", "osImage"]),
        text(node, &["status", "nodeInfo", "kernelVersion"]),
        text(node, &["status", "nodeInfo", "containerRuntimeVersion"]),
    ];
    (base, wide)
}

/// A node's roles: the `<role>` of each `node-role.kubernetes.io/<role>` label.
pub(crate) fn node_roles(node: &Value) -> Vec<String> {
    let mut roles: Vec<String> = match at(node, &["metadata", "labels"]) {
        Some(Value::Object(labels)) => labels
            .keys()
            .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    roles.sort();
    roles
}

fn service_row(svc: &Value, name: String, created: String) -> (Vec<String>, Vec<String>) {
    let kind = text(svc, &["spec", "type"]);
    let kind = if kind.is_empty() {
        "ClusterIP".to_string()
    } else {
        kind
    };
    let mut external: Vec<String> = items(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(|ip| ip.as_str().map(str::to_string))
        .collect();
    if kind == "LoadBalancer" {
        let ingress: Vec<String> = items(svc, &["status", "loadBalancer", "ingress"])
            .iter()
            .map(|i| {
                let ip = text(i, &["ip"]);
                if ip.is_empty() {
                    text(i, &["hostname"])
                } else {
                    ip
                }
            })
            .collect();
        if ingress.is_empty() && external.is_empty() {
            external.push("<pending>".into());
        }
        external.extend(ingress);
    } else if kind == "ExternalName" {
        external.push(text(svc, &["spec", "externalName"]));
    }
    let ports: Vec<String> = items(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = match text(p, &["protocol"]) {
                p if p.is_empty() => "TCP".to_string(),
                p => p,
            };
            match int(p, &["nodePort"]) {
                0 => format!("{}/{protocol}", int(p, &["port"])),
                node_port => format!("{}:{node_port}/{protocol}", int(p, &["port"])),
            }
        })
        .collect();
    let base = vec![
        name,
        kind,
        or_none(text(svc, &["spec", "clusterIP"])),
        or_none(external.join(",")),
        or_none(ports.join(",")),
        created,
    ];
    (base, vec![or_none(label_list(svc, &["spec", "selector"]))])
}

/// CONTAINERS, IMAGES and SELECTOR of a workload whose pod template is at `template`.
fn workload_wide(object: &Value, template: &[&str]) -> Vec<String> {
    let mut containers_path = template.to_vec();
    containers_path.extend(["spec", "containers"]);
    let containers = items(object, &containers_path);
    let names: Vec<String> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| text(c, &["image"])).collect();
    vec![
        names.join(","),
        images.join(","),
        or_none(label_list(object, &["spec", "selector", "matchLabels"])),
    ]
}

fn job_row(job: &Value, name: String, created: String, now: i64) -> (Vec<String>, Vec<String>) {
    let condition = |kind: &str| {
        items(job, &["status", "conditions"]).iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(kind)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    let status = if condition("Complete") {
        "Complete"
    } else if condition("Failed") {
        "Failed"
    } else if condition("FailureTarget") {
        "FailureTarget"
    } else if at(job, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        "Suspended"
    } else {
        "Running"
    };
    let succeeded = int(job, &["status", "succeeded"]);
    let completions = match at(job, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => {
            let parallelism = at(job, &["spec", "parallelism"])
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = at(job, &["status", "startTime"])
        .and_then(Value::as_str)
        .and_then(parse_timestamp);
    let end = at(job, &["status", "completionTime"])
        .and_then(Value::as_str)
        .and_then(parse_timestamp);
    let duration = match (start, end) {
        (Some(start), Some(end)) => human_duration(end - start),
        (Some(start), None) => human_duration(now - start),
        _ => String::new(),
    };
    let base = vec![name, status.into(), completions, duration, created];
    (base, workload_wide(job, &["spec", "template"]))
}

fn event_row(event: &Value, now: i64) -> Vec<String> {
    let last_seen = ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .find_map(|field| at(event, &[field]).filter(|v| v.is_string()))
        .or_else(|| at(event, &["metadata", "creationTimestamp"]));
    let kind = text(event, &["involvedObject", "kind"]).to_ascii_lowercase();
    vec![
        age(last_seen, now),
        text(event, &["type"]),
        text(event, &["reason"]),
        format!("{kind}/{}", text(event, &["involvedObject", "name"])),
        text(event, &["message"]),
    ]
}

fn endpoints(object: &Value) -> String {
    let mut all = Vec::new();
    for subset in items(object, &["subsets"]) {
        let ports = items(subset, &["ports"]);
        for address in items(subset, &["addresses"]) {
            let ip = text(address, &["ip"]);
            if ports.is_empty() {
                all.push(ip.clone());
            }
            for port in ports {
                all.push(format!("{ip}:{}", int(port, &["port"])));
            }
        }
    }
    // kubectl shows three endpoints and counts the rest.
    match all.len() {
        0 => "<none>".into(),
        n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
        _ => all.join(","),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-01T10:00:00Z.
    const CREATED: i64 = 1_714_557_600;

    fn meta(name: &str) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T10:00:00Z"})
    }

    #[test]
    fn pods_show_ready_status_restarts_and_age_and_wide_shows_placement() {
        let pod = json!({"metadata": meta("web"),
            "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2},
                {"name": "b", "ready": false, "restartCount": 1,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(
            row("Pod", &pod, CREATED + 200, false),
            ["web", "1/2", "CrashLoopBackOff", "3", "3m20s"]
        );
        assert_eq!(
            row("Pod", &pod, CREATED + 5, true),
            [
                "web",
                "1/2",
                "CrashLoopBackOff",
                "3",
                "5s",
                "10.0.0.5",
                "node-1",
                "<none>",
                "<none>"
            ]
        );
        assert_eq!(headers("Pod", true).len(), 9);
        let new = json!({"metadata": meta("new"), "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(row("Pod", &new, CREATED, false)[1..3], ["0/1", "Pending"]);
    }

    #[test]
    fn nodes_show_readiness_roles_and_version() {
        let mut metadata = meta("n1");
        metadata["labels"] = json!({"node-role.kubernetes.io/control-plane": ""});
        let node = json!({"metadata": metadata, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.0"}}});
        assert_eq!(
            row("Node", &node, CREATED + 2 * 86_400 + 4 * 3600, false),
            [
                "n1",
                "Ready,SchedulingDisabled",
                "control-plane",
                "2d4h",
                "v1.33.0"
            ]
        );
    }

    #[test]
    fn services_show_type_ips_and_ports() {
        let svc = json!({"metadata": meta("api"),
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                               {"port": 53, "protocol": "UDP"}],
                     "selector": {"app": "api"}}});
        assert_eq!(
            row("Service", &svc, CREATED, true),
            [
                "api",
                "NodePort",
                "10.96.0.10",
                "<none>",
                "80:30080/TCP,53/UDP",
                "0s",
                "app=api"
            ]
        );
        let lb = json!({"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.11"}});
        assert_eq!(row("Service", &lb, CREATED, false)[3], "<pending>");
    }

    #[test]
    fn workloads_show_their_replica_counts() {
        let deploy = json!({"metadata": meta("web"), "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            row("Deployment", &deploy, CREATED + 60, true),
            ["web", "2/3", "3", "2", "60s", "c", "nginx", "app=web"]
        );
        let job = json!({"metadata": meta("pi"), "spec": {"completions": 1},
            "status": {"succeeded": 1, "startTime": "2024-05-01T10:00:00Z",
                       "completionTime": "2024-05-01T10:00:42Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            row("Job", &job, CREATED + 120, false),
            ["pi", "Complete", "1/1", "42s", "2m"]
        );
    }

    #[test]
    fn config_objects_count_their_data_and_events_name_their_object() {
        let cm = json!({"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}});
        assert_eq!(row("ConfigMap", &cm, CREATED, false), ["cfg", "2", "0s"]);
        let secret = json!({"metadata": meta("s"), "type": "Opaque", "data": {"k": "dg=="}});
        assert_eq!(
            row("Secret", &secret, CREATED, false),
            ["s", "Opaque", "1", "0s"]
        );
        let event = json!({"metadata": meta("web.1"), "type": "Normal", "reason": "Scheduled",
            "message": "assigned", "lastTimestamp": "2024-05-01T10:00:00Z",
            "involvedObject": {"kind": "Pod", "name": "web"}});
        assert_eq!(
            row("Event", &event, CREATED + 30, false),
            ["30s", "Normal", "Scheduled", "pod/web", "assigned"]
        );
        assert_eq!(headers("Widget", true), ["NAME", "AGE"]);
    }

    #[test]
    fn endpoints_show_three_addresses_and_count_the_rest() {
        let ep = json!({"metadata": meta("api"), "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(
            row("Endpoints", &ep, CREATED, false)[1],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
        );
    }
}
