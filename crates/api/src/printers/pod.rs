//! Pods: READY, STATUS and RESTARTS as kubectl shows them, computed the way
//! Kubernetes' `printPod` computes them.
//!
//! STATUS is the pod's reason or phase, overridden while init containers run
//! (`Init:1/2`, `Init:CrashLoopBackOff`), then by the last container with a
//! waiting or terminated reason (`CrashLoopBackOff`, `Completed`,
//! `ExitCode:1`), and finally `Terminating` once the pod is deleted.
//! RESTARTS adds when the last restart happened (`3 (5m ago)`).
//! Native sidecars (init containers with `restartPolicy: Always`) count as
//! containers once started.
//!
//! # Caveats
//! Row conditions (`Completed` pods greyed out by kubectl) are not set.

use serde_json::Value;

use super::age::{human_duration, parse_timestamp};
use super::object::{at, items, len, or_none, text};
use super::{created, name, Column, Printer, AGE, NAME};

const COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Column::new(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last \
         container in this pod has restarted.",
    ),
    AGE,
    Column::new(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not \
         yet allocated.",
    )
    .wide(),
    Column::new(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a \
         candidate for scheduling by the scheduler defined in schedulerName.",
    )
    .wide(),
    Column::new(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it \
         cannot be scheduled right away as preemption victims receive their graceful \
         termination periods.",
    )
    .wide(),
    Column::new(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    )
    .wide(),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    (kind == "Pod").then_some(Printer {
        columns: COLUMNS,
        cells,
    })
}

/// What the container statuses add up to.
#[derive(Default)]
struct Summary {
    reason: String,
    ready: usize,
    total: usize,
    restarts: i64,
    /// When a container last terminated before its restart (Unix seconds).
    last_restart: Option<i64>,
    /// Restarts of sidecars alone, which still count once the pod is initialized.
    sidecar_restarts: (i64, Option<i64>),
}

fn cells(pod: &Value, now: i64) -> Vec<Value> {
    let summary = summarize(pod);
    let restarts = match summary.last_restart {
        Some(at) if summary.restarts != 0 => {
            format!("{} ({} ago)", summary.restarts, human_duration(now - at))
        }
        _ => summary.restarts.to_string(),
    };
    let pod_ip = items(pod, &["status", "podIPs"])
        .first()
        .map(|ip| text(ip, &["ip"]))
        .unwrap_or_else(|| text(pod, &["status", "podIP"]));
    vec![
        name(pod),
        format!("{}/{}", summary.ready, summary.total).into(),
        summary.reason.into(),
        restarts.into(),
        created(pod, now),
        or_none(pod_ip).into(),
        or_none(text(pod, &["spec", "nodeName"])).into(),
        or_none(text(pod, &["status", "nominatedNodeName"])).into(),
        readiness_gates(pod).into(),
    ]
}

/// A pod's STATUS cell, as `kubectl get pods` shows it.
pub fn status(pod: &Value) -> String {
    summarize(pod).reason
}

fn summarize(pod: &Value) -> Summary {
    let phase = text(pod, &["status", "phase"]);
    let mut summary = Summary {
        reason: match text(pod, &["status", "reason"]) {
            reason if reason.is_empty() => phase.clone(),
            reason => reason,
        },
        total: len(pod, &["spec", "containers"]),
        ..Summary::default()
    };
    let gated = items(pod, &["status", "conditions"])
        .iter()
        .any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated");
    if gated {
        summary.reason = "SchedulingGated".into();
    }
    let sidecars = sidecar_names(pod);
    summary.total += sidecars.len();
    let initializing = init_containers(pod, &sidecars, &mut summary);
    if !initializing || condition_true(pod, "Initialized") {
        containers(pod, &mut summary);
    }
    let terminal = phase == "Succeeded" || phase == "Failed";
    if at(pod, &["metadata", "deletionTimestamp"]).is_some() {
        if text(pod, &["status", "reason"]) == "NodeLost" {
            summary.reason = "Unknown".into();
        } else if !terminal {
            summary.reason = "Terminating".into();
        }
    }
    summary
}

/// Init containers with `restartPolicy: Always` (sidecars).
fn sidecar_names(pod: &Value) -> Vec<String> {
    items(pod, &["spec", "initContainers"])
        .iter()
        .filter(|c| text(c, &["restartPolicy"]) == "Always")
        .map(|c| text(c, &["name"]))
        .collect()
}

/// Walks the init containers' statuses; true while the pod is still
/// initializing (the reason then says why).
fn init_containers(pod: &Value, sidecars: &[String], summary: &mut Summary) -> bool {
    let statuses = items(pod, &["status", "initContainerStatuses"]);
    let declared = len(pod, &["spec", "initContainers"]);
    for (i, container) in statuses.iter().enumerate() {
        count_restarts(container, summary);
        let sidecar = sidecars.contains(&text(container, &["name"]));
        if sidecar {
            let (restarts, last) = restarts_of(container);
            summary.sidecar_restarts.0 += restarts;
            summary.sidecar_restarts.1 = summary.sidecar_restarts.1.max(last);
        }
        let terminated = at(container, &["state", "terminated"]);
        let waiting = text(container, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| exit_code(t) == 0) {
            continue;
        }
        if sidecar && at(container, &["started"]).and_then(Value::as_bool) == Some(true) {
            if is_ready(container) {
                summary.ready += 1;
            }
            continue;
        }
        summary.reason = match terminated {
            Some(terminated) => format!("Init:{}", terminated_reason(terminated)),
            None if !waiting.is_empty() && waiting != "PodInitializing" => {
                format!("Init:{waiting}")
            }
            None => format!("Init:{i}/{declared}"),
        };
        return true;
    }
    false
}

/// Walks the containers' statuses, last first, as `printPod` does: the first
/// container (in spec order) with a reason has the last word.
fn containers(pod: &Value, summary: &mut Summary) {
    // Restarts from here on count the regular containers and sidecars only.
    (summary.restarts, summary.last_restart) = summary.sidecar_restarts;
    let mut running = false;
    for container in items(pod, &["status", "containerStatuses"]).iter().rev() {
        count_restarts(container, summary);
        let waiting = text(container, &["state", "waiting", "reason"]);
        let terminated = at(container, &["state", "terminated"]);
        if !waiting.is_empty() {
            summary.reason = waiting;
        } else if let Some(terminated) = terminated {
            summary.reason = terminated_reason(terminated);
        } else if is_ready(container) && at(container, &["state", "running"]).is_some() {
            running = true;
            summary.ready += 1;
        }
    }
    // A pod whose finished container says Completed is still running while
    // another container runs.
    if summary.reason == "Completed" && running {
        summary.reason = if condition_true(pod, "Ready") {
            "Running".into()
        } else {
            "NotReady".into()
        };
    }
}

fn count_restarts(container: &Value, summary: &mut Summary) {
    let (restarts, last) = restarts_of(container);
    summary.restarts += restarts;
    summary.last_restart = summary.last_restart.max(last);
}

/// A container's restart count and when it last terminated before a restart.
fn restarts_of(container: &Value) -> (i64, Option<i64>) {
    let restarts = container
        .get("restartCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let finished = at(container, &["lastState", "terminated", "finishedAt"])
        .and_then(Value::as_str)
        .and_then(parse_timestamp);
    (restarts, finished)
}

/// A terminated state's reason, else its signal or exit code.
fn terminated_reason(terminated: &Value) -> String {
    match text(terminated, &["reason"]) {
        reason if !reason.is_empty() => reason,
        _ => match terminated.get("signal").and_then(Value::as_i64) {
            Some(signal) if signal != 0 => format!("Signal:{signal}"),
            _ => format!("ExitCode:{}", exit_code(terminated)),
        },
    }
}

fn exit_code(terminated: &Value) -> i64 {
    terminated
        .get("exitCode")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn is_ready(container: &Value) -> bool {
    container.get("ready").and_then(Value::as_bool) == Some(true)
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    items(pod, &["status", "conditions"])
        .iter()
        .any(|c| text(c, &["type"]) == kind && text(c, &["status"]) == "True")
}

/// `true/declared` readiness gates, or `<none>`.
fn readiness_gates(pod: &Value) -> String {
    let gates = items(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = items(pod, &["status", "conditions"]);
    let passed = gates
        .iter()
        .filter(|gate| {
            let kind = text(gate, &["conditionType"]);
            conditions
                .iter()
                .find(|c| text(c, &["type"]) == kind)
                .is_some_and(|c| text(c, &["status"]) == "True")
        })
        .count();
    format!("{passed}/{}", gates.len())
}
