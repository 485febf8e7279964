//! The pod sync: one pure function that compares a pod's spec with what the
//! runtime shows for it and says what to do next and what status to report —
//! the heart of the real kubelet's `SyncPod` / `computePodActions`.
//!
//! Level-triggered: [`sync`] looks only at the pod as it is now, the
//! containers as they are now, the probe results and the clock. The pod
//! worker runs the [`Action`]s it returns, observes again and calls it again,
//! until there is nothing left to do; then it writes the status (if it
//! changed) and waits for the next hint (a pod update, a container event, a
//! probe result, or [`Plan::requeue_after`]).
//!
//! The rules, as Kubernetes':
//! 1. A pod needs a ready sandbox; without one, create it.
//! 2. Init containers run one at a time, in order; each must exit 0 before
//!    the next starts. A failed one is restarted (subject to backoff) unless
//!    the restartPolicy is Never, which fails the pod.
//! 3. Then every app container is started. An exited container is restarted
//!    for `Always`, for `OnFailure` when its exit code is not 0, never for
//!    `Never`; restarts wait out the [`backoff::BackOff`] (CrashLoopBackOff).
//! 4. A running container whose liveness or startup probe failed is killed,
//!    then restarted as its restartPolicy says.
//! 5. A pod with a deletionTimestamp has every container stopped with its
//!    grace period; when none runs, it is [`Plan::terminated`] and the worker
//!    deletes the pod object.
//! 6. A pod in phase Succeeded or Failed never runs anything again.
//!
//! # Layout
//! - [`backoff`]: CrashLoopBackOff delays.
//! - `status`: the PodStatus — phase, conditions, container statuses.
//!
//! # Caveats
//! No sidecar (restartable init) containers, ephemeral containers, readiness
//! gates or in-place resize; a sandbox that dies is replaced but its
//! containers are not restarted into it until they exit.

pub mod backoff;
mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};

use crate::runtime::{ContainerState, ContainerStatus, SandboxStatus};
use backoff::BackOff;
pub use status::time as status_time;

/// What the probes say about one running container, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// The readiness probe's verdict (false until it succeeds).
    pub ready: bool,
    /// The startup probe has succeeded (or there is none).
    pub started: bool,
    /// The liveness or startup probe has failed past its threshold: kill it.
    pub failed: Option<KillReason>,
}

/// A failed attempt to start a container, which the worker remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartFailure {
    /// The reason: ErrImagePull, CreateContainerError, RunContainerError, ….
    pub reason: String,
    /// What the runtime said.
    pub message: String,
    /// When it failed.
    pub at: SystemTime,
}

/// Everything [`sync`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The pod, spec and last written status.
    pub pod: &'a Pod,
    /// The runtime's sandboxes of this pod.
    pub sandboxes: &'a [SandboxStatus],
    /// The runtime's containers of this pod, every attempt.
    pub containers: &'a [ContainerStatus],
    /// Probe results by container name, for the running attempt.
    pub probes: &'a BTreeMap<String, ProbeResult>,
    /// The last failed start of each container, by name.
    pub failures: &'a BTreeMap<String, StartFailure>,
    /// The runtime's name, for containerIDs (`process://…`).
    pub runtime: &'a str,
    /// The node's IP (status.hostIP).
    pub host_ip: Option<&'a str>,
    /// Now.
    pub now: SystemTime,
}

/// Why a container is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillReason {
    /// Its liveness probe failed.
    Liveness,
    /// Its startup probe failed.
    Startup,
    /// The pod is being deleted.
    Deletion,
    /// No container of that name is in the spec.
    NotInSpec,
}

/// One step for the worker to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create (and start) the pod's sandbox.
    CreateSandbox,
    /// Create and start a container in the ready sandbox.
    StartContainer {
        /// Its name in the spec.
        name: String,
        /// An init container.
        init: bool,
        /// Its attempt (0 first, one more per restart).
        attempt: u32,
    },
    /// Stop a running container.
    KillContainer {
        /// The runtime's ID.
        id: String,
        /// Its name.
        name: String,
        /// SIGTERM, then SIGKILL after this long.
        grace: Duration,
        /// Why.
        reason: KillReason,
    },
    /// Remove an exited container of an older attempt.
    RemoveContainer {
        /// The runtime's ID.
        id: String,
    },
    /// Stop the sandbox (nothing runs in the pod any more).
    StopSandbox {
        /// The runtime's ID.
        id: String,
    },
}

/// What [`sync`] decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Steps to carry out now, in order.
    pub actions: Vec<Action>,
    /// The pod's status as it stands.
    pub status: PodStatus,
    /// Sync again after this long (a backoff ends), if nothing else comes.
    pub requeue_after: Option<Duration>,
    /// The pod is being deleted and nothing of it runs any more.
    pub terminated: bool,
}

/// Computes the next steps and the status of one pod. See the module doc.
pub fn sync(input: &Input<'_>, backoff: &mut BackOff) -> Plan {
    let mut ctx = status::Context::new(input);
    let deleting = input.pod.metadata.deletion_timestamp.is_some();
    let terminal = status::previous_phase_is_terminal(input.pod);
    let mut actions = Vec::new();
    let mut requeue: Option<SystemTime> = None;

    actions.extend(remove_old_attempts(input));
    actions.extend(kill_unknown(input));
    let sandbox = latest_sandbox(input.sandboxes);
    let running = input.containers.iter().any(is_running);
    if deleting || terminal {
        let grace = grace_period(input.pod);
        let reason = KillReason::Deletion;
        actions.extend(
            input
                .containers
                .iter()
                .filter(|c| is_running(c))
                .map(|c| kill(c, grace, reason)),
        );
        if let (Some(sandbox), false) = (sandbox.filter(|s| s.ready), running) {
            actions.push(Action::StopSandbox {
                id: sandbox.id.clone(),
            });
        }
    } else if sandbox.is_none_or(|s| !s.ready) {
        actions.push(Action::CreateSandbox);
    } else {
        let (more, until) = start_or_restart(input, &mut ctx, backoff);
        actions.extend(more);
        requeue = until;
    }
    let terminated = deleting && !running;
    let status = ctx.finish(terminated);
    Plan {
        actions,
        status,
        requeue_after: requeue.map(|t| t.duration_since(input.now).unwrap_or_default()),
        terminated,
    }
}

/// Rules 2–4: the init containers in order, then the app containers.
fn start_or_restart(
    input: &Input<'_>,
    ctx: &mut status::Context<'_>,
    backoff: &mut BackOff,
) -> (Vec<Action>, Option<SystemTime>) {
    let spec = input.pod.spec.as_ref();
    let policy = restart_policy(input.pod);
    let mut actions = Vec::new();
    let mut requeue = None;
    let init_containers = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    for container in init_containers {
        let latest = latest_attempt(input.containers, &container.name);
        match latest.map(|c| &c.state) {
            Some(ContainerState::Exited { exit_code: 0, .. }) => continue,
            Some(ContainerState::Running { .. }) => return (actions, None),
            Some(ContainerState::Exited { .. }) if policy == "Never" => return (actions, None),
            _ => {}
        }
        let step = next_start(input, ctx, backoff, container, latest, true);
        return (step.0.into_iter().collect(), step.1);
    }
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    for container in containers {
        let latest = latest_attempt(input.containers, &container.name);
        match latest {
            Some(c) if is_running(c) => {
                if let Some(reason) = input.probes.get(&container.name).and_then(|p| p.failed) {
                    actions.push(kill(c, grace_period(input.pod), reason));
                }
                continue;
            }
            Some(ContainerStatus {
                state: ContainerState::Exited { exit_code, .. },
                ..
            }) if !should_restart(policy, *exit_code) => continue,
            _ => {}
        }
        let (start, until) = next_start(input, ctx, backoff, container, latest, false);
        actions.extend(start);
        requeue = earliest(requeue, until);
    }
    (actions, requeue)
}

/// Whether a container that exited with `exit_code` is started again.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// Starts a container that never ran, or restarts one that exited or failed
/// to start, unless the backoff holds it back (then its status says so).
fn next_start(
    input: &Input<'_>,
    ctx: &mut status::Context<'_>,
    backoff: &mut BackOff,
    container: &Container,
    latest: Option<&ContainerStatus>,
    init: bool,
) -> (Option<Action>, Option<SystemTime>) {
    let name = &container.name;
    let failure = input.failures.get(name);
    let failed_at = match (failure, latest.map(|c| &c.state)) {
        (Some(f), _) => Some(f.at),
        (None, Some(ContainerState::Exited { finished_at, .. })) => Some(*finished_at),
        _ => None,
    };
    let attempt = match (failure, latest) {
        (Some(_), Some(c)) if !matches!(c.state, ContainerState::Exited { .. }) => c.attempt,
        (_, Some(c)) => c.attempt + 1,
        (_, None) => 0,
    };
    if let Some(failed_at) = failed_at {
        if let Some(until) = backoff.blocked_until(name, failed_at, input.now) {
            ctx.backing_off(name, backoff.delay(name).unwrap_or_default(), failure);
            return (None, Some(until));
        }
        backoff.restarted(name, input.now);
    }
    let start = Action::StartContainer {
        name: name.clone(),
        init,
        attempt,
    };
    (Some(start), None)
}

fn earliest(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The pod's restartPolicy, `Always` by default.
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// The grace period of a kill: the deletion's, else the spec's, else 30 s.
pub fn grace_period(pod: &Pod) -> Duration {
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

fn is_running(container: &ContainerStatus) -> bool {
    matches!(container.state, ContainerState::Running { .. })
}

fn kill(container: &ContainerStatus, grace: Duration, reason: KillReason) -> Action {
    Action::KillContainer {
        id: container.id.clone(),
        name: container.name.clone(),
        grace,
        reason,
    }
}

/// The newest sandbox (the one containers start in).
pub(crate) fn latest_sandbox(sandboxes: &[SandboxStatus]) -> Option<&SandboxStatus> {
    sandboxes
        .iter()
        .max_by_key(|s| (s.created_at, s.id.clone()))
}

/// The highest attempt of the container called `name`.
pub(crate) fn latest_attempt<'a>(
    containers: &'a [ContainerStatus],
    name: &str,
) -> Option<&'a ContainerStatus> {
    containers
        .iter()
        .filter(|c| c.name == name)
        .max_by_key(|c| c.attempt)
}

/// Exited attempts older than the previous one go (the previous one stays
/// for `logs --previous`).
fn remove_old_attempts(input: &Input<'_>) -> Vec<Action> {
    input
        .containers
        .iter()
        .filter(|c| !is_running(c))
        .filter(|c| {
            latest_attempt(input.containers, &c.name).is_some_and(|l| c.attempt + 1 < l.attempt)
        })
        .map(|c| Action::RemoveContainer { id: c.id.clone() })
        .collect()
}

/// Running containers whose name is not in the spec are killed.
fn kill_unknown(input: &Input<'_>) -> Vec<Action> {
    let spec = input.pod.spec.as_ref();
    let known = |name: &str| {
        spec.is_some_and(|s| {
            s.containers.iter().any(|c| c.name == name)
                || s.init_containers.iter().flatten().any(|c| c.name == name)
        })
    };
    input
        .containers
        .iter()
        .filter(|c| is_running(c) && !known(&c.name))
        .map(|c| kill(c, grace_period(input.pod), KillReason::NotInSpec))
        .collect()
}
