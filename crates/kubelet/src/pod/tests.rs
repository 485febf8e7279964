//! The pod sync as a specification: given a pod and what the runtime shows,
//! what happens next and what the status says.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ContainerStatus as Status, Pod};
use serde_json::json;

use super::*;
use crate::runtime::{ContainerState, ContainerStatus, SandboxStatus};

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
}

fn pod(policy: &str, init: &[&str], containers: &[&str]) -> Pod {
    let spec = |names: &[&str]| -> Vec<serde_json::Value> {
        names
            .iter()
            .map(|n| json!({"name": n, "image": "busybox"}))
            .collect()
    };
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"restartPolicy": policy, "initContainers": spec(init), "containers": spec(containers)},
    }))
    .unwrap()
}

fn sandbox() -> SandboxStatus {
    SandboxStatus {
        id: "s1".into(),
        labels: BTreeMap::new(),
        ready: true,
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
        created_at: at(0),
    }
}

fn running(name: &str, attempt: u32, since: u64) -> ContainerStatus {
    container(
        name,
        attempt,
        ContainerState::Running {
            started_at: at(since),
        },
    )
}

fn exited(name: &str, attempt: u32, code: i32, finished: u64) -> ContainerStatus {
    let state = ContainerState::Exited {
        exit_code: code,
        reason: if code == 0 { "Completed" } else { "Error" }.into(),
        started_at: Some(at(finished.saturating_sub(1))),
        finished_at: at(finished),
    };
    container(name, attempt, state)
}

fn container(name: &str, attempt: u32, state: ContainerState) -> ContainerStatus {
    ContainerStatus {
        id: format!("{name}-{attempt}"),
        sandbox_id: "s1".into(),
        labels: BTreeMap::new(),
        name: name.into(),
        attempt,
        image: "busybox".into(),
        state,
    }
}

/// A sync at `now` with no probes and no start failures.
struct World {
    pod: Pod,
    sandboxes: Vec<SandboxStatus>,
    containers: Vec<ContainerStatus>,
    probes: BTreeMap<String, ProbeResult>,
    failures: BTreeMap<String, StartFailure>,
    backoff: BackOff,
}

impl World {
    fn new(pod: Pod) -> World {
        World {
            pod,
            sandboxes: vec![sandbox()],
            containers: Vec::new(),
            probes: BTreeMap::new(),
            failures: BTreeMap::new(),
            backoff: BackOff::default(),
        }
    }

    fn with(mut self, containers: Vec<ContainerStatus>) -> World {
        self.containers = containers;
        self
    }

    fn sync(&mut self, now: u64) -> Plan {
        let input = Input {
            pod: &self.pod,
            sandboxes: &self.sandboxes,
            containers: &self.containers,
            probes: &self.probes,
            failures: &self.failures,
            runtime: "hollow",
            host_ip: Some("192.168.0.2"),
            now: at(now),
        };
        sync(&input, &mut self.backoff)
    }
}

fn start(name: &str, init: bool, attempt: u32) -> Action {
    Action::StartContainer {
        name: name.into(),
        init,
        attempt,
    }
}

fn phase(plan: &Plan) -> &str {
    plan.status.phase.as_deref().unwrap()
}

fn status<'a>(plan: &'a Plan, name: &str) -> &'a Status {
    let all = plan.status.container_statuses.iter().flatten();
    let init = plan.status.init_container_statuses.iter().flatten();
    all.chain(init).find(|s| s.name == name).unwrap()
}

fn waiting_reason(plan: &Plan, name: &str) -> Option<String> {
    let state = status(plan, name).state.as_ref()?;
    state.waiting.as_ref()?.reason.clone()
}

fn condition(plan: &Plan, type_: &str) -> String {
    let conditions = plan.status.conditions.iter().flatten();
    conditions
        .filter(|c| c.type_ == type_)
        .map(|c| c.status.clone())
        .collect()
}

#[test]
fn a_new_pod_first_gets_a_sandbox_and_is_pending() {
    let mut world = World::new(pod("Always", &[], &["app"]));
    world.sandboxes.clear();
    let plan = world.sync(0);
    assert_eq!(plan.actions, [Action::CreateSandbox]);
    assert_eq!(phase(&plan), "Pending");
    assert_eq!(
        waiting_reason(&plan, "app").as_deref(),
        Some("ContainerCreating")
    );
    assert_eq!(condition(&plan, "PodScheduled"), "True");
    assert_eq!(condition(&plan, "Ready"), "False");
}

#[test]
fn with_a_sandbox_every_app_container_starts_and_running_ones_make_the_pod_ready() {
    let mut world = World::new(pod("Always", &[], &["a", "b"]));
    assert_eq!(
        world.sync(0).actions,
        [start("a", false, 0), start("b", false, 0)]
    );
    let mut world = world.with(vec![running("a", 0, 1), running("b", 0, 1)]);
    let plan = world.sync(2);
    assert!(plan.actions.is_empty());
    assert_eq!(phase(&plan), "Running");
    for type_ in ["Initialized", "ContainersReady", "Ready"] {
        assert_eq!(condition(&plan, type_), "True", "{type_}");
    }
    assert_eq!(plan.status.pod_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(plan.status.host_ip.as_deref(), Some("192.168.0.2"));
    assert_eq!(
        status(&plan, "a").container_id.as_deref(),
        Some("hollow://a-0")
    );
}

#[test]
fn init_containers_run_one_at_a_time_in_order_before_the_app_containers() {
    let mut world = World::new(pod("Always", &["i1", "i2"], &["app"]));
    let plan = world.sync(0);
    assert_eq!(plan.actions, [start("i1", true, 0)]);
    assert_eq!(
        waiting_reason(&plan, "app").as_deref(),
        Some("PodInitializing")
    );

    world.containers = vec![running("i1", 0, 1)];
    assert!(world.sync(2).actions.is_empty(), "i2 waits for i1");

    world.containers = vec![exited("i1", 0, 0, 3)];
    let plan = world.sync(3);
    assert_eq!(plan.actions, [start("i2", true, 0)]);
    assert_eq!(phase(&plan), "Pending");
    assert_eq!(condition(&plan, "Initialized"), "False");

    world.containers = vec![exited("i1", 0, 0, 3), exited("i2", 0, 0, 4)];
    let plan = world.sync(4);
    assert_eq!(plan.actions, [start("app", false, 0)]);
    assert_eq!(condition(&plan, "Initialized"), "True");
}

#[test]
fn a_failed_init_container_fails_the_pod_under_never_and_is_retried_otherwise() {
    let mut never = World::new(pod("Never", &["i1"], &["app"])).with(vec![exited("i1", 0, 1, 5)]);
    let plan = never.sync(5);
    assert!(plan.actions.is_empty());
    assert_eq!(phase(&plan), "Failed");

    for policy in ["Always", "OnFailure"] {
        let mut world =
            World::new(pod(policy, &["i1"], &["app"])).with(vec![exited("i1", 0, 1, 5)]);
        let plan = world.sync(5);
        assert_eq!(plan.actions, [start("i1", true, 1)], "{policy}");
        assert_eq!(phase(&plan), "Pending", "{policy}");
    }
}

/// The phase and actions once the only container exited with `code`.
fn after_exit(policy: &str, code: i32) -> (String, bool) {
    let mut world = World::new(pod(policy, &[], &["app"])).with(vec![exited("app", 0, code, 5)]);
    let plan = world.sync(5);
    let restarts = plan.actions == [start("app", false, 1)];
    (phase(&plan).to_string(), restarts)
}

#[test]
fn restart_policy_decides_restarts_and_phase_as_kubernetes_does() {
    let table = [
        ("Always", 0, "Running", true),
        ("Always", 1, "Running", true),
        ("OnFailure", 0, "Succeeded", false),
        ("OnFailure", 1, "Running", true),
        ("Never", 0, "Succeeded", false),
        ("Never", 1, "Failed", false),
    ];
    for (policy, code, phase, restarts) in table {
        let got = after_exit(policy, code);
        assert_eq!(
            got,
            (phase.to_string(), restarts),
            "{policy} after exit {code}"
        );
    }
}

#[test]
fn one_container_still_running_keeps_a_never_pod_running() {
    let containers = vec![exited("a", 0, 1, 5), running("b", 0, 1)];
    let mut world = World::new(pod("Never", &[], &["a", "b"])).with(containers);
    let plan = world.sync(6);
    assert!(plan.actions.is_empty());
    assert_eq!(phase(&plan), "Running");
    assert_eq!(condition(&plan, "Ready"), "False");
}

#[test]
fn a_crashing_container_backs_off_10s_then_20s_and_says_crash_loop_back_off() {
    let mut world = World::new(pod("Always", &[], &["app"])).with(vec![exited("app", 0, 1, 5)]);
    assert_eq!(
        world.sync(5).actions,
        [start("app", false, 1)],
        "the first restart is immediate"
    );

    world.containers = vec![exited("app", 0, 1, 5), exited("app", 1, 1, 6)];
    let plan = world.sync(6);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(
        waiting_reason(&plan, "app").as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(phase(&plan), "Running");
    assert_eq!(status(&plan, "app").restart_count, 1);
    let last = status(&plan, "app")
        .last_state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(last.exit_code, 1);

    assert!(world.sync(15).actions.is_empty(), "still inside the 10 s");
    assert_eq!(world.sync(16).actions, [start("app", false, 2)]);

    world.containers = vec![exited("app", 1, 1, 6), exited("app", 2, 1, 17)];
    let plan = world.sync(17);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(20)));
    assert_eq!(world.sync(37).actions, [start("app", false, 3)]);
}

#[test]
fn older_attempts_than_the_previous_one_are_removed() {
    let containers = vec![
        exited("app", 0, 1, 1),
        exited("app", 1, 1, 2),
        running("app", 2, 3),
    ];
    let mut world = World::new(pod("Always", &[], &["app"])).with(containers);
    let plan = world.sync(4);
    assert_eq!(
        plan.actions,
        [Action::RemoveContainer { id: "app-0".into() }]
    );
}

#[test]
fn a_failed_liveness_probe_kills_the_container_with_the_pods_grace_period() {
    let mut world = World::new(pod("Always", &[], &["app"])).with(vec![running("app", 0, 1)]);
    let failed = ProbeResult {
        ready: false,
        started: true,
        failed: Some(KillReason::Liveness),
    };
    world.probes.insert("app".into(), failed);
    let plan = world.sync(40);
    let kill = Action::KillContainer {
        id: "app-0".into(),
        name: "app".into(),
        grace: Duration::from_secs(30),
        reason: KillReason::Liveness,
    };
    assert_eq!(plan.actions, [kill]);
}

#[test]
fn readiness_comes_from_the_readiness_probe_once_the_startup_probe_passed() {
    let mut spec = pod("Always", &[], &["app"]);
    let probe: k8s_openapi::api::core::v1::Probe =
        serde_json::from_value(json!({"exec": {"command": ["true"]}})).unwrap();
    let container = &mut spec.spec.as_mut().unwrap().containers[0];
    container.readiness_probe = Some(probe.clone());
    container.startup_probe = Some(probe);
    let mut world = World::new(spec).with(vec![running("app", 0, 1)]);
    let plan = world.sync(2);
    assert!(
        !status(&plan, "app").ready,
        "no probe result yet means not ready"
    );
    assert_eq!(status(&plan, "app").started, Some(false));
    world.probes.insert(
        "app".into(),
        ProbeResult {
            ready: true,
            started: true,
            failed: None,
        },
    );
    let plan = world.sync(3);
    assert!(status(&plan, "app").ready);
    assert_eq!(condition(&plan, "ContainersReady"), "True");
}

#[test]
fn an_image_that_cannot_be_pulled_shows_err_image_pull_then_image_pull_back_off() {
    let mut world = World::new(pod("Always", &[], &["app"]));
    let failure = StartFailure {
        reason: "ErrImagePull".into(),
        message: "not found".into(),
        at: at(5),
    };
    world.failures.insert("app".into(), failure.clone());
    let plan = world.sync(5);
    assert_eq!(
        plan.actions,
        [start("app", false, 0)],
        "the first retry is immediate"
    );
    assert_eq!(
        waiting_reason(&plan, "app").as_deref(),
        Some("ErrImagePull")
    );

    world.failures.insert(
        "app".into(),
        StartFailure {
            at: at(6),
            ..failure
        },
    );
    let plan = world.sync(6);
    assert!(plan.actions.is_empty());
    assert_eq!(
        waiting_reason(&plan, "app").as_deref(),
        Some("ImagePullBackOff")
    );
    assert_eq!(phase(&plan), "Pending");
}

#[test]
fn a_deleted_pod_has_its_containers_killed_then_is_terminated() {
    let mut spec = pod("Always", &[], &["app"]);
    spec.metadata.deletion_timestamp = Some(status::time(at(10)));
    spec.metadata.deletion_grace_period_seconds = Some(5);
    let mut world = World::new(spec).with(vec![running("app", 0, 1)]);
    let plan = world.sync(10);
    let kill = Action::KillContainer {
        id: "app-0".into(),
        name: "app".into(),
        grace: Duration::from_secs(5),
        reason: KillReason::Deletion,
    };
    assert_eq!(plan.actions, [kill]);
    assert!(!plan.terminated);

    world.containers = vec![exited("app", 0, 143, 11)];
    let plan = world.sync(11);
    assert_eq!(plan.actions, [Action::StopSandbox { id: "s1".into() }]);
    assert!(plan.terminated);
    assert_eq!(phase(&plan), "Failed");
}

#[test]
fn a_pod_that_succeeded_never_runs_again() {
    let mut spec = pod("Never", &[], &["app"]);
    spec.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
    let mut world = World::new(spec);
    world.sandboxes.clear();
    let plan = world.sync(1);
    assert!(plan.actions.is_empty());
    assert_eq!(phase(&plan), "Succeeded");
}

#[test]
fn an_unchanged_pod_yields_an_identical_status_so_nothing_is_written() {
    let mut world = World::new(pod("Always", &[], &["app"])).with(vec![running("app", 0, 1)]);
    let first = world.sync(2);
    world.pod.status = Some(first.status.clone());
    let second = world.sync(500);
    assert_eq!(first.status, second.status);
}

#[test]
fn a_container_not_in_the_spec_is_killed() {
    let containers = vec![running("app", 0, 1), running("stray", 0, 1)];
    let mut world = World::new(pod("Always", &[], &["app"])).with(containers);
    let plan = world.sync(2);
    assert!(matches!(
        plan.actions.as_slice(),
        [Action::KillContainer {
            reason: KillReason::NotInSpec,
            ..
        }]
    ));
}
