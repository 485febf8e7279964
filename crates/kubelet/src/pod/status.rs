//! The PodStatus a sync reports: phase (Kubernetes' `getPhase`), the
//! PodScheduled, Initialized, ContainersReady and Ready conditions, and a
//! status per container with its state, last state, readiness and
//! restartCount.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{
    Container, ContainerState as State, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as Status, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::{latest_attempt, latest_sandbox, restart_policy, Input, StartFailure};
use crate::runtime::{ContainerState, ContainerStatus};

/// A wall-clock time as Kubernetes writes it (whole seconds, as the API
/// server would truncate it anyway, so a written status reads back equal).
pub fn time(at: SystemTime) -> Time {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Whether the last status written says Succeeded or Failed: such a pod
/// never runs again.
pub(super) fn previous_phase_is_terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// Collects what the sync learns, then builds the PodStatus.
pub(super) struct Context<'a> {
    input: &'a Input<'a>,
    /// Containers held back, by name: (reason, message).
    waiting: BTreeMap<String, (String, String)>,
}

impl<'a> Context<'a> {
    pub(super) fn new(input: &'a Input<'a>) -> Context<'a> {
        Context {
            input,
            waiting: BTreeMap::new(),
        }
    }

    /// `name` waits out a backoff of `delay` after a crash or a failed start.
    pub(super) fn backing_off(
        &mut self,
        name: &str,
        delay: Duration,
        failure: Option<&StartFailure>,
    ) {
        let waiting = match failure {
            Some(f) if f.reason == "ErrImagePull" => {
                let image = self
                    .spec_container(name)
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                (
                    "ImagePullBackOff".to_string(),
                    format!("Back-off pulling image {image:?}"),
                )
            }
            Some(f) => (f.reason.clone(), f.message.clone()),
            None => {
                let meta = &self.input.pod.metadata;
                let pod = format!(
                    "{}_{}({})",
                    meta.name.as_deref().unwrap_or_default(),
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.uid.as_deref().unwrap_or_default()
                );
                let message = format!(
                    "back-off {}s restarting failed container={name} pod={pod}",
                    delay.as_secs()
                );
                ("CrashLoopBackOff".to_string(), message)
            }
        };
        self.waiting.insert(name.to_string(), waiting);
    }

    fn spec_container(&self, name: &str) -> Option<&'a Container> {
        let spec = self.input.pod.spec.as_ref()?;
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name)
    }

    /// The status, given whether a deleted pod has finished terminating.
    pub(super) fn finish(self, terminated: bool) -> PodStatus {
        let input = self.input;
        let previous = input.pod.status.clone().unwrap_or_default();
        let spec = input.pod.spec.clone().unwrap_or_default();
        let init: Vec<Status> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| self.container(c))
            .collect();
        let apps: Vec<Status> = spec.containers.iter().map(|c| self.container(c)).collect();
        let phase = match previous.phase.as_deref() {
            Some(p @ ("Succeeded" | "Failed")) => p.to_string(),
            _ if terminated => terminated_phase(&apps).to_string(),
            _ => phase(restart_policy(input.pod), &init, &apps).to_string(),
        };
        let pod_ip = latest_sandbox(input.sandboxes)
            .filter(|s| s.ready)
            .and_then(|s| s.ip)
            .map(|ip| ip.to_string())
            .or(previous.pod_ip.clone());
        let conditions = conditions(&previous, &phase, &init, &apps, input.now);
        PodStatus {
            phase: Some(phase),
            conditions: Some(conditions),
            host_ip: input
                .host_ip
                .map(str::to_string)
                .or(previous.host_ip.clone()),
            pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
            pod_ip,
            start_time: previous.start_time.clone().or(Some(time(input.now))),
            init_container_statuses: (!init.is_empty()).then_some(init),
            container_statuses: Some(apps),
            qos_class: previous.qos_class.clone(),
            ..PodStatus::default()
        }
    }

    /// One container's status.
    fn container(&self, spec: &Container) -> Status {
        let input = self.input;
        let name = &spec.name;
        let latest = latest_attempt(input.containers, name);
        let previous = latest.and_then(|l| {
            input
                .containers
                .iter()
                .filter(|c| c.name == *name && c.attempt < l.attempt)
                .max_by_key(|c| c.attempt)
        });
        let running = latest.is_some_and(|c| matches!(c.state, ContainerState::Running { .. }));
        let probe = input.probes.get(name);
        let started = running && probe.map_or(spec.startup_probe.is_none(), |p| p.started);
        let ready = started && probe.map_or(spec.readiness_probe.is_none(), |p| p.ready);
        let (state, last_state) = match (self.waiting.get(name), input.failures.get(name), latest) {
            (Some((reason, message)), _, latest) => {
                let last = latest
                    .filter(|c| matches!(c.state, ContainerState::Exited { .. }))
                    .or(previous);
                (waiting(reason, message), last.map(|c| self.state(c)))
            }
            (None, Some(failure), _) if !running => (
                waiting(&failure.reason, &failure.message),
                previous.or(latest).map(|c| self.state(c)),
            ),
            (None, _, Some(latest)) => (self.state(latest), previous.map(|c| self.state(c))),
            (None, _, None) => (waiting(self.not_yet_reason(spec), ""), None),
        };
        Status {
            name: name.clone(),
            image: spec.image.clone().unwrap_or_default(),
            image_id: String::new(),
            container_id: latest.map(|c| format!("{}://{}", input.runtime, c.id)),
            ready,
            started: Some(started),
            restart_count: latest.map_or(0, |c| i32::try_from(c.attempt).unwrap_or(i32::MAX)),
            state: Some(state),
            last_state: last_state.or_else(|| Some(State::default())),
            ..Status::default()
        }
    }

    /// Why a container that never started waits: its pod's init containers
    /// are still running, or it is being created.
    fn not_yet_reason(&self, spec: &Container) -> &'static str {
        let is_init = self.input.pod.spec.as_ref().is_some_and(|s| {
            s.init_containers
                .iter()
                .flatten()
                .any(|c| c.name == spec.name)
        });
        if is_init {
            return "PodInitializing";
        }
        let init_done = self.input.pod.spec.as_ref().is_none_or(|s| {
            s.init_containers.iter().flatten().all(|c| {
                latest_attempt(self.input.containers, &c.name)
                    .is_some_and(|l| matches!(l.state, ContainerState::Exited { exit_code: 0, .. }))
            })
        });
        if init_done {
            "ContainerCreating"
        } else {
            "PodInitializing"
        }
    }

    fn state(&self, container: &ContainerStatus) -> State {
        let id = format!("{}://{}", self.input.runtime, container.id);
        match &container.state {
            ContainerState::Created => waiting("ContainerCreating", ""),
            ContainerState::Running { started_at } => State {
                running: Some(ContainerStateRunning {
                    started_at: Some(time(*started_at)),
                }),
                ..State::default()
            },
            ContainerState::Exited {
                exit_code,
                reason,
                started_at,
                finished_at,
            } => State {
                terminated: Some(ContainerStateTerminated {
                    exit_code: *exit_code,
                    reason: Some(reason.clone()),
                    started_at: started_at.map(time),
                    finished_at: Some(time(*finished_at)),
                    container_id: Some(id),
                    ..ContainerStateTerminated::default()
                }),
                ..State::default()
            },
        }
    }
}

fn waiting(reason: &str, message: &str) -> State {
    State {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: (!message.is_empty()).then(|| message.to_string()),
        }),
        ..State::default()
    }
}

fn exit_code(status: &Status) -> Option<i32> {
    let terminated = |s: &Option<State>| {
        s.as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code)
    };
    terminated(&status.state)
}

fn last_exit_code(status: &Status) -> Option<i32> {
    let state = status.last_state.as_ref()?;
    state.terminated.as_ref().map(|t| t.exit_code)
}

fn is_waiting(status: &Status) -> bool {
    status.state.as_ref().is_some_and(|s| s.waiting.is_some())
}

fn is_running(status: &Status) -> bool {
    status.state.as_ref().is_some_and(|s| s.running.is_some())
}

/// Kubernetes' `getPhase`, from the container statuses just built.
fn phase(policy: &str, init: &[Status], apps: &[Status]) -> &'static str {
    let mut pending_init = 0;
    let mut failed_init = 0;
    for status in init {
        match exit_code(status) {
            Some(0) => {}
            Some(_) => failed_init += 1,
            None if is_waiting(status) && last_exit_code(status).is_some_and(|c| c != 0) => {
                failed_init += 1
            }
            None => pending_init += 1,
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for status in apps {
        if is_running(status) {
            running += 1;
        } else if let Some(code) = exit_code(status) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if is_waiting(status) && last_exit_code(status).is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    match () {
        _ if pending_init > 0 || failed_init > 0 => "Pending",
        _ if waiting > 0 => "Pending",
        _ if running > 0 => "Running",
        _ if stopped > 0 && policy == "Always" => "Running",
        _ if stopped > 0 && stopped == succeeded => "Succeeded",
        _ if stopped > 0 && policy == "Never" => "Failed",
        _ if stopped > 0 => "Running",
        _ => "Pending",
    }
}

/// The phase of a deleted pod once nothing runs: Succeeded if every
/// container exited 0, else Failed (as the kubelet since Kubernetes 1.27).
fn terminated_phase(apps: &[Status]) -> &'static str {
    if apps.iter().all(|s| exit_code(s) == Some(0)) {
        "Succeeded"
    } else {
        "Failed"
    }
}

fn conditions(
    previous: &PodStatus,
    phase: &str,
    init: &[Status],
    apps: &[Status],
    now: SystemTime,
) -> Vec<PodCondition> {
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|s| exit_code(s) != Some(0))
        .map(|s| s.name.as_str())
        .collect();
    let unready: Vec<&str> = apps
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let initialized = incomplete.is_empty() || phase == "Succeeded";
    let ready = unready.is_empty() && !terminal;
    let not_ready = match terminal {
        true => ("PodCompleted", String::new()),
        false => (
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        ),
    };
    let not_initialized = (
        "ContainersNotInitialized",
        format!(
            "containers with incomplete status: [{}]",
            incomplete.join(" ")
        ),
    );
    let scheduled = previous
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition(previous, "PodScheduled", true, None, now));
    vec![
        scheduled,
        condition(
            previous,
            "Initialized",
            initialized,
            Some(not_initialized),
            now,
        ),
        condition(
            previous,
            "ContainersReady",
            ready,
            Some(not_ready.clone()),
            now,
        ),
        condition(previous, "Ready", ready, Some(not_ready), now),
    ]
}

/// A condition; its lastTransitionTime stays as it was unless the status flips.
fn condition(
    previous: &PodStatus,
    type_: &str,
    value: bool,
    when_false: Option<(&str, String)>,
    now: SystemTime,
) -> PodCondition {
    let status = if value { "True" } else { "False" };
    let before = previous
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_);
    let since = match before {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(time(now)),
    };
    let (reason, message) = match when_false {
        Some((reason, message)) if !value => (
            Some(reason.to_string()),
            (!message.is_empty()).then_some(message),
        ),
        _ => (None, None),
    };
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_transition_time: since,
        reason,
        message,
        ..PodCondition::default()
    }
}
