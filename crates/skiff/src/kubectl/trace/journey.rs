//! A pod's journey as steps in time, from what the API holds about it: the
//! pod itself (created, its conditions' transitions, its containers' starts
//! and ends) and the Events that the controllers, the scheduler and the
//! kubelet wrote about it. Pure: the objects in, the table out.
//!
//! # Caveats
//! Kubernetes' object times (`creationTimestamp`, `lastTransitionTime`,
//! `startedAt`) have whole seconds; Events carry `eventTime` to the
//! microsecond. Steps are ordered by the second first, then, within one
//! second, by the order a pod's life runs in (created, scheduled, started,
//! ready, ended), then by the finer time. Steps without a time are left out.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// Where a step falls in a pod's life, for ordering steps within one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// The pod is written by its owner.
    Created,
    /// A node is chosen.
    Scheduled,
    /// The kubelet prepares and starts containers.
    Starting,
    /// Containers run and become ready.
    Running,
    /// Containers end, the pod is deleted.
    Ending,
}

/// One step of the journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// When, in microseconds since the epoch.
    pub micros: i64,
    /// Whether `micros` is finer than a whole second.
    pub precise: bool,
    /// Where in the pod's life the step falls.
    pub phase: Phase,
    /// Who took the step: a component, a kubelet with its node, or the pod's status.
    pub who: String,
    /// What happened.
    pub what: String,
}

/// The steps of `pod`'s journey: its own record and `events` (those about
/// the pod and those its owner wrote about it), in order.
pub(crate) fn journey(pod: &Value, events: &[Value]) -> Vec<Step> {
    let mut steps = Vec::new();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if let Some((micros, precise)) = time(&pod["metadata"]["creationTimestamp"]) {
        steps.push(Step {
            micros,
            precise,
            phase: Phase::Created,
            who: "api server".into(),
            what: format!("pod {name} stored"),
        });
    }
    steps.extend(events.iter().filter_map(event_step));
    // Containers before conditions: at one time, a container runs before the pod is Ready.
    steps.extend(container_steps(pod));
    steps.extend(condition_steps(pod));
    steps.sort_by_key(|s| (s.micros.div_euclid(1_000_000), s.phase, s.micros));
    steps
}

/// One Event as a step: `Reason: message`, by its reporting component.
fn event_step(event: &Value) -> Option<Step> {
    let (micros, precise) = time(&event["eventTime"])
        .or_else(|| time(&event["firstTimestamp"]))
        .or_else(|| time(&event["metadata"]["creationTimestamp"]))?;
    let reason = event["reason"].as_str().unwrap_or_default();
    let message = event["message"].as_str().unwrap_or_default();
    let count = event["count"].as_i64().unwrap_or(1);
    let repeated = match count > 1 {
        true => format!(" (x{count})"),
        false => String::new(),
    };
    Some(Step {
        micros,
        precise,
        phase: event_phase(reason),
        who: reporter(event),
        what: format!("{reason}: {message}{repeated}"),
    })
}

/// Where Kubernetes' usual Event reasons fall in a pod's life.
fn event_phase(reason: &str) -> Phase {
    match reason {
        "SuccessfulCreate" => Phase::Created,
        "Scheduled" | "FailedScheduling" | "Preempted" => Phase::Scheduled,
        "Pulling" | "Pulled" | "Created" | "Failed" | "ErrImageNeverPull" => Phase::Starting,
        "Started" | "Unhealthy" | "BackOff" => Phase::Running,
        _ => Phase::Ending,
    }
}

/// `component (host)`, from `reportingComponent` or the older `source`.
fn reporter(event: &Value) -> String {
    let component = [&event["reportingComponent"], &event["source"]["component"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|c| !c.is_empty())
        .unwrap_or("unknown");
    let host = [&event["source"]["host"], &event["reportingInstance"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|h| !h.is_empty() && *h != component);
    match host {
        Some(host) => format!("{component} ({host})"),
        None => component.to_string(),
    }
}

/// The conditions' transitions: `Ready=True`, with the reason when there is one.
fn condition_steps(pod: &Value) -> Vec<Step> {
    let conditions = pod["status"]["conditions"].as_array().into_iter().flatten();
    conditions
        .filter_map(|c| {
            let (micros, precise) = time(&c["lastTransitionTime"])?;
            let kind = c["type"].as_str()?;
            let status = c["status"].as_str().unwrap_or("Unknown");
            let phase = match kind {
                "PodScheduled" => Phase::Scheduled,
                "Initialized" | "PodReadyToStartContainers" => Phase::Starting,
                _ if status == "True" => Phase::Running,
                _ => Phase::Ending,
            };
            let reason = c["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            Some(Step {
                micros,
                precise,
                phase,
                who: "pod status".into(),
                what: format!("condition {kind}={status}{reason}"),
            })
        })
        .collect()
}

/// Each container's start and, if it ended, its end.
fn container_steps(pod: &Value) -> Vec<Step> {
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .into_iter()
        .flat_map(|field| pod["status"][field].as_array().into_iter().flatten());
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let who = format!("kubelet ({node})");
    let mut steps = Vec::new();
    for status in statuses {
        let name = status["name"].as_str().unwrap_or_default();
        let state = &status["state"];
        let started = [
            &state["running"]["startedAt"],
            &state["terminated"]["startedAt"],
        ];
        if let Some((micros, precise)) = started.into_iter().find_map(time) {
            steps.push(Step {
                micros,
                precise,
                phase: Phase::Running,
                who: who.clone(),
                what: format!("container {name} running"),
            });
        }
        let terminated = &state["terminated"];
        if let Some((micros, precise)) = time(&terminated["finishedAt"]) {
            let reason = terminated["reason"].as_str().unwrap_or("Terminated");
            let code = terminated["exitCode"].as_i64().unwrap_or_default();
            steps.push(Step {
                micros,
                precise,
                phase: Phase::Ending,
                who: who.clone(),
                what: format!("container {name} terminated: {reason}, exit code {code}"),
            });
        }
    }
    steps
}

/// A Kubernetes time (whole seconds or finer) as microseconds since the
/// epoch, and whether it has a fraction of a second.
fn time(value: &Value) -> Option<(i64, bool)> {
    let text = value.as_str()?;
    let parsed: Timestamp = text.parse().ok()?;
    Some((parsed.as_microsecond(), text.contains('.')))
}

/// The steps as a table: `TIME` (UTC, to the millisecond where known), `WHO`, `STEP`.
pub(crate) fn render(steps: &[Step]) -> String {
    let rows: Vec<[String; 3]> = steps
        .iter()
        .map(|s| [clock(s), s.who.clone(), s.what.clone()])
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([["TIME", "WHO"][i].len()])
            .max()
            .unwrap_or_default()
    };
    let (time_width, who_width) = (width(0), width(1));
    let mut out = format!("{:time_width$}   {:who_width$}   STEP\n", "TIME", "WHO");
    for [time, who, what] in rows {
        out.push_str(&format!("{time:time_width$}   {who:who_width$}   {what}\n"));
    }
    out
}

/// `HH:MM:SS.mmm` in UTC, or `HH:MM:SS` for a time of whole seconds.
fn clock(step: &Step) -> String {
    let of_day = step.micros.rem_euclid(86_400 * 1_000_000);
    let seconds = of_day / 1_000_000;
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match step.precise {
        true => format!("{h:02}:{m:02}:{s:02}.{:03}", of_day % 1_000_000 / 1000),
        false => format!("{h:02}:{m:02}:{s:02}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2026-12-07T10:00:00Z"},
            "spec": {"nodeName": "node-a"},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T10:00:01Z"},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-07T10:00:00Z"},
                ],
                "containerStatuses": [
                    {"name": "web", "state": {"running": {"startedAt": "2026-12-07T10:00:01Z"}}},
                ],
            },
        })
    }

    fn event(reason: &str, at: &str, component: &str, host: &str) -> Value {
        json!({
            "reason": reason, "message": format!("{reason} web-1"), "count": 1,
            "eventTime": at, "reportingComponent": component, "source": {"host": host},
        })
    }

    fn whats(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.what.as_str()).collect()
    }

    #[test]
    fn steps_follow_the_pod_s_life_within_a_second_and_time_across_seconds() {
        let events = [
            event(
                "Started",
                "2026-12-07T10:00:00.900000Z",
                "kubelet",
                "node-a",
            ),
            event(
                "Scheduled",
                "2026-12-07T10:00:00.300000Z",
                "default-scheduler",
                "",
            ),
            event(
                "SuccessfulCreate",
                "2026-12-07T10:00:00.100000Z",
                "replicaset-controller",
                "",
            ),
        ];
        let steps = journey(&pod(), &events);
        assert_eq!(
            whats(&steps),
            [
                "pod web-1 stored",
                "SuccessfulCreate: SuccessfulCreate web-1",
                "condition PodScheduled=True",
                "Scheduled: Scheduled web-1",
                "Started: Started web-1",
                "container web running",
                "condition Ready=True",
            ]
        );
        assert_eq!(steps[3].who, "default-scheduler");
        assert_eq!(steps[4].who, "kubelet (node-a)");
    }

    #[test]
    fn a_repeated_event_shows_its_count_and_an_ended_container_its_exit() {
        let mut backoff = event(
            "BackOff",
            "2026-12-07T10:00:05.000001Z",
            "kubelet",
            "node-a",
        );
        backoff["count"] = json!(4);
        let mut pod = pod();
        pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
            "startedAt": "2026-12-07T10:00:01Z", "finishedAt": "2026-12-07T10:00:03Z",
            "reason": "Error", "exitCode": 2,
        }});
        let steps = journey(&pod, &[backoff]);
        let whats = whats(&steps);
        assert!(whats.contains(&"BackOff: BackOff web-1 (x4)"), "{whats:?}");
        assert!(whats.contains(&"container web terminated: Error, exit code 2"));
        assert_eq!(whats.last(), Some(&"BackOff: BackOff web-1 (x4)"));
    }

    #[test]
    fn the_table_shows_milliseconds_only_where_they_are_known() {
        let steps = journey(
            &pod(),
            &[event(
                "Scheduled",
                "2026-12-07T10:00:00.345678Z",
                "default-scheduler",
                "",
            )],
        );
        let table = render(&steps);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("TIME "), "{table}");
        assert!(lines[1].starts_with("10:00:00       api server"), "{table}");
        let scheduled = lines.iter().find(|l| l.contains("default-scheduler"));
        assert!(
            scheduled.is_some_and(|l| l.starts_with("10:00:00.345   default-scheduler")),
            "{table}"
        );
    }

    #[test]
    fn steps_without_a_time_are_left_out() {
        let pod = json!({"metadata": {"name": "p"}, "status": {"conditions": [{"type": "Ready"}]}});
        assert!(journey(&pod, &[json!({"reason": "Scheduled"})]).is_empty());
    }
}
