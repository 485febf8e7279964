//! Pods in each state, as `kubectl get pods -o wide` shows them.

use serde_json::{json, Value};

use super::{default_cells, meta, names, wide_cells, CREATED};

fn pod(spec: Value, status: Value) -> Value {
    json!({"metadata": meta("web"), "spec": spec, "status": status})
}

fn one_container() -> Value {
    json!({"containers": [{"name": "c", "image": "nginx"}]})
}

/// READY, STATUS and RESTARTS of `pod` 10 minutes after it was created.
fn shown(pod: &Value) -> [String; 3] {
    let cells = default_cells("Pod", pod, CREATED + 600);
    let text = |i: usize| cells[i].as_str().unwrap_or_default().to_string();
    [text(1), text(2), text(3)]
}

#[test]
fn columns_are_kubectls() {
    assert_eq!(
        names("Pod", 0),
        ["Name", "Ready", "Status", "Restarts", "Age"]
    );
    assert_eq!(
        names("Pod", 1),
        ["IP", "Node", "Nominated Node", "Readiness Gates"]
    );
}

#[test]
fn a_pending_pod_shows_its_phase() {
    let pending = pod(one_container(), json!({"phase": "Pending"}));
    assert_eq!(shown(&pending), ["0/1", "Pending", "0"]);
    assert_eq!(
        Value::from(wide_cells("Pod", &pending, CREATED)),
        json!(["<none>", "<none>", "<none>", "<none>"])
    );
}

#[test]
fn a_running_pod_counts_ready_containers_and_shows_its_placement() {
    let running = pod(
        json!({"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}],
               "readinessGates": [{"conditionType": "example.com/lb"}]}),
        json!({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
               "conditions": [{"type": "example.com/lb", "status": "True"}],
               "containerStatuses": [
                   {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                   {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
    );
    assert_eq!(shown(&running), ["2/2", "Running", "0"]);
    assert_eq!(
        Value::from(wide_cells("Pod", &running, CREATED)),
        json!(["10.0.0.5", "node-1", "<none>", "1/1"])
    );
}

#[test]
fn a_crash_looping_container_names_its_waiting_reason_and_last_restart() {
    let crashing = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}]}),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
            {"name": "b", "ready": false, "restartCount": 1,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T10:05:00Z"}}}]}),
    );
    assert_eq!(shown(&crashing), ["1/2", "CrashLoopBackOff", "3 (5m ago)"]);
}

#[test]
fn finished_pods_show_the_terminated_reason_or_exit_code() {
    let completed = pod(
        one_container(),
        json!({"phase": "Succeeded", "containerStatuses": [{"name": "c", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    assert_eq!(shown(&completed), ["0/1", "Completed", "0"]);
    let failed = pod(
        one_container(),
        json!({"phase": "Failed", "containerStatuses": [{"name": "c", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 137}}}]}),
    );
    assert_eq!(shown(&failed), ["0/1", "ExitCode:137", "0"]);
    let evicted = pod(
        one_container(),
        json!({"phase": "Failed", "reason": "Evicted"}),
    );
    assert_eq!(shown(&evicted), ["0/1", "Evicted", "0"]);
}

#[test]
fn init_containers_show_progress_or_their_failure() {
    let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}],
                      "containers": [{"name": "c"}]});
    let waiting = json!({"waiting": {"reason": "PodInitializing"}});
    let second = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "restartCount": 0, "state": {"running": {}}}],
            "containerStatuses": [{"name": "c", "restartCount": 0, "state": waiting}]}),
    );
    assert_eq!(shown(&second), ["0/1", "Init:1/2", "0"]);
    let crashing = pod(
        spec,
        json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
    );
    assert_eq!(shown(&crashing), ["0/1", "Init:CrashLoopBackOff", "4"]);
}

#[test]
fn a_started_sidecar_counts_as_a_container() {
    let with_sidecar = pod(
        json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
               "containers": [{"name": "c"}]}),
        json!({"phase": "Running",
               "conditions": [{"type": "Initialized", "status": "True"}],
               "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true,
                   "restartCount": 1, "state": {"running": {}}}],
               "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                   "state": {"running": {}}}]}),
    );
    assert_eq!(shown(&with_sidecar), ["2/2", "Running", "1"]);
}

#[test]
fn a_deleted_pod_is_terminating_unless_it_finished() {
    let mut running = pod(one_container(), json!({"phase": "Running"}));
    running["metadata"]["deletionTimestamp"] = json!("2024-05-01T10:09:00Z");
    assert_eq!(shown(&running)[1], "Terminating");
    let mut done = pod(one_container(), json!({"phase": "Succeeded"}));
    done["metadata"]["deletionTimestamp"] = json!("2024-05-01T10:09:00Z");
    assert_eq!(shown(&done)[1], "Succeeded");
}

#[test]
fn a_gated_pod_says_so() {
    let gated = pod(
        one_container(),
        json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(shown(&gated)[1], "SchedulingGated");
}

#[test]
fn ages_are_rendered_as_kubernetes_renders_them() {
    let p = pod(one_container(), json!({"phase": "Pending"}));
    let age = |now| default_cells("Pod", &p, now)[4].clone();
    assert_eq!(age(CREATED + 200), "3m20s");
    assert_eq!(age(CREATED + 3 * 3600 + 25 * 60), "3h25m");
    let mut unknown = p.clone();
    unknown["metadata"]["creationTimestamp"] = Value::Null;
    assert_eq!(default_cells("Pod", &unknown, CREATED)[4], "<unknown>");
}
