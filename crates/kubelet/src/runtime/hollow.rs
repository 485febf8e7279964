//! The hollow runtime: no processes at all. A container goes Running the
//! moment it is started and then follows the pod's annotations — as
//! kubemark's hollow nodes and kwok do, for scale tests with thousands of
//! nodes in one process.
//!
//! The script, read from the pod's annotations (a `.<container>` suffix
//! makes a key apply to one container only, and wins over the plain key):
//! - `hollow.skiff.dev/run-seconds`: the container exits after this many
//!   seconds of running (absent: it runs until stopped).
//! - `hollow.skiff.dev/exit-code`: the code it exits with then (default 0).
//! - `hollow.skiff.dev/ready`: `"false"` makes every exec in the container —
//!   exec probes included — exit with 1, so a readiness probe keeps it unready.
//!
//! A container's state is computed from the clock when it is listed; nothing
//! runs in between (no thread, no task, no timer per container), so a hollow
//! node costs a few hundred bytes per container.
//!
//! # Caveats
//! Images listed in [`HollowConfig::absent_images`] fail to pull; every other
//! image is present. Stopping a container ends it at once with 143 (SIGTERM),
//! whatever the grace period. Exec runs nothing: its output is empty, and an
//! interactive one (stdin or a terminal) is refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{
    not_running, of_pod, ContainerConfig, ContainerId, ContainerState, ContainerStatus,
    ExecRequest, ExecStreams, Result, Runtime, RuntimeError, SandboxConfig, SandboxId,
    SandboxStatus,
};
use crate::clock::Clock;

/// The annotation giving how long a container runs.
pub const RUN_SECONDS: &str = "hollow.skiff.dev/run-seconds";
/// The annotation giving the code a container exits with.
pub const EXIT_CODE: &str = "hollow.skiff.dev/exit-code";
/// The annotation that makes execs (and so exec probes) fail when `"false"`.
pub const READY: &str = "hollow.skiff.dev/ready";

/// How a hollow runtime is set up.
#[derive(Clone, Debug)]
pub struct HollowConfig {
    /// Pod IPs are handed out counting up from this address.
    pub pod_ip_base: Ipv4Addr,
    /// Images that fail to pull, to exercise ErrImagePull.
    pub absent_images: Vec<String>,
}

impl Default for HollowConfig {
    fn default() -> Self {
        HollowConfig {
            pod_ip_base: Ipv4Addr::new(10, 244, 0, 0),
            absent_images: Vec::new(),
        }
    }
}

/// A runtime that simulates containers. See the module doc.
pub struct HollowRuntime {
    config: HollowConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    sandboxes: BTreeMap<SandboxId, SandboxStatus>,
    containers: BTreeMap<ContainerId, Container>,
}

struct Container {
    sandbox_id: SandboxId,
    labels: BTreeMap<String, String>,
    name: String,
    attempt: u32,
    image: String,
    script: Script,
    started_at: Option<SystemTime>,
    /// Set when stopped before the script ended it: when, and the code.
    stopped: Option<(SystemTime, i32)>,
}

/// What the annotations ask of one container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Script {
    run_for: Option<Duration>,
    exit_code: i32,
    ready: bool,
}

impl Script {
    fn read(annotations: &BTreeMap<String, String>, container: &str) -> Script {
        let value = |key: &str| {
            annotations
                .get(&format!("{key}.{container}"))
                .or_else(|| annotations.get(key))
        };
        Script {
            run_for: value(RUN_SECONDS)
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
            exit_code: value(EXIT_CODE).and_then(|s| s.parse().ok()).unwrap_or(0),
            ready: value(READY).is_none_or(|s| s != "false"),
        }
    }
}

impl Container {
    fn state(&self, now: SystemTime) -> ContainerState {
        let Some(started_at) = self.started_at else {
            return ContainerState::Created;
        };
        let scripted_end = self
            .script
            .run_for
            .map(|run| (started_at + run, self.script.exit_code));
        let end = match (self.stopped, scripted_end) {
            (Some(stop), Some(script)) if script.0 <= stop.0 => Some(script),
            (Some(stop), _) => Some(stop),
            (None, Some(script)) if script.0 <= now => Some(script),
            (None, _) => None,
        };
        match end {
            Some((finished_at, exit_code)) => ContainerState::Exited {
                exit_code,
                reason: if exit_code == 0 { "Completed" } else { "Error" }.to_string(),
                started_at: Some(started_at),
                finished_at,
            },
            None => ContainerState::Running { started_at },
        }
    }
}

fn not_found(kind: &'static str, id: &str) -> RuntimeError {
    RuntimeError::NotFound {
        kind,
        id: id.to_string(),
    }
}

impl HollowRuntime {
    /// The statuses of the containers whose labels `keep` accepts.
    fn containers_where(
        &self,
        keep: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> Vec<ContainerStatus> {
        let now = self.clock.now();
        let state = self.lock();
        let kept = state.containers.iter().filter(|(_, c)| keep(&c.labels));
        kept.map(|(id, c)| ContainerStatus {
            id: id.clone(),
            sandbox_id: c.sandbox_id.clone(),
            labels: c.labels.clone(),
            name: c.name.clone(),
            attempt: c.attempt,
            image: c.image.clone(),
            state: c.state(now),
        })
        .collect()
    }

    /// A hollow runtime reading time from `clock`.
    pub fn new(config: HollowConfig, clock: Arc<dyn Clock>) -> HollowRuntime {
        HollowRuntime {
            config,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("the hollow runtime's lock is never poisoned")
    }

    /// Runs `f` on the container `id` with the time now.
    fn with_container<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container, SystemTime) -> T,
    ) -> Result<T> {
        let now = self.clock.now();
        let mut state = self.lock();
        let container = state
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        Ok(f(container, now))
    }
}

impl State {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:08x}", self.next_id)
    }
}

#[async_trait::async_trait]
impl Runtime for HollowRuntime {
    fn name(&self) -> &'static str {
        "hollow"
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        if self.config.absent_images.iter().any(|i| i == image) {
            return Err(RuntimeError::ImagePull {
                image: image.to_string(),
                message: "not found".to_string(),
            });
        }
        Ok(())
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<SandboxId> {
        let now = self.clock.now();
        let mut state = self.lock();
        let id = state.new_id("hs");
        let offset = u32::try_from(state.next_id).unwrap_or(u32::MAX);
        let ip = Ipv4Addr::from(u32::from(self.config.pod_ip_base).wrapping_add(offset));
        let sandbox = SandboxStatus::new(id.clone(), config, Some(IpAddr::V4(ip)), now);
        state.sandboxes.insert(id.clone(), sandbox);
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let now = self.clock.now();
        let mut state = self.lock();
        let sandbox = state
            .sandboxes
            .get_mut(id)
            .ok_or_else(|| not_found("sandbox", id))?;
        sandbox.ready = false;
        for container in state.containers.values_mut() {
            if container.sandbox_id == id {
                stop(container, now);
            }
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut state = self.lock();
        state.sandboxes.remove(id);
        state.containers.retain(|_, c| c.sandbox_id != id);
        Ok(())
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        Ok(self.lock().sandboxes.values().cloned().collect())
    }

    /// Filters before copying: a pod worker asks on every sync, and a node
    /// holds a hundred pods.
    async fn pod_sandboxes(&self, uid: &str) -> Result<Vec<SandboxStatus>> {
        let state = self.lock();
        let ours = state.sandboxes.values().filter(|s| of_pod(&s.labels, uid));
        Ok(ours.cloned().collect())
    }

    async fn create_container(
        &self,
        sandbox: &str,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        let mut state = self.lock();
        if !state.sandboxes.contains_key(sandbox) {
            return Err(not_found("sandbox", sandbox));
        }
        let id = state.new_id("hc");
        let container = Container {
            sandbox_id: sandbox.to_string(),
            labels: config.labels.clone(),
            name: config.name.clone(),
            attempt: config.attempt,
            image: config.image.clone(),
            script: Script::read(&config.pod_annotations, &config.name),
            started_at: None,
            stopped: None,
        };
        state.containers.insert(id.clone(), container);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.with_container(id, |container, now| {
            container.started_at.get_or_insert(now);
        })
    }

    async fn stop_container(&self, id: &str, _grace: Duration) -> Result<()> {
        self.with_container(id, stop)
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.lock().containers.remove(id);
        Ok(())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        Ok(self.containers_where(|_| true))
    }

    /// Filters before copying, as [`Runtime::pod_sandboxes`] here.
    async fn pod_containers(&self, uid: &str) -> Result<Vec<ContainerStatus>> {
        Ok(self.containers_where(|labels| of_pod(labels, uid)))
    }

    /// No command runs: the exit code is the container's scripted
    /// readiness (0 ready, 1 not), whatever the command, and there is no
    /// output. With stdin or a terminal there is nothing to talk to: refused.
    async fn exec(&self, id: &str, request: &ExecRequest, _streams: ExecStreams) -> Result<i32> {
        if request.stdin || request.tty {
            return Err(RuntimeError::Unsupported {
                runtime: "hollow",
                what: "interactive exec (stdin or a terminal): it runs no commands",
            });
        }
        let (running, ready) = self.with_container(id, |container, now| {
            let running = matches!(container.state(now), ContainerState::Running { .. });
            (running, container.script.ready)
        })?;
        if !running {
            return Err(not_running(id));
        }
        Ok(if ready { 0 } else { 1 })
    }
}

/// Ends a running container now with SIGTERM's code, unless it already ended.
fn stop(container: &mut Container, now: SystemTime) {
    if matches!(container.state(now), ContainerState::Running { .. }) {
        container.stopped = Some((now, 143));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use crate::runtime::labels;

    fn runtime(clock: &TestClock) -> HollowRuntime {
        HollowRuntime::new(HollowConfig::default(), Arc::new(clock.clone()))
    }

    fn container(name: &str, annotations: &[(&str, &str)]) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image: "busybox".into(),
            pod_annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    async fn start(rt: &HollowRuntime, config: &ContainerConfig) -> ContainerId {
        let sandbox = rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
        let id = rt.create_container(&sandbox, config).await.unwrap();
        rt.start_container(&id).await.unwrap();
        id
    }

    async fn state(rt: &HollowRuntime, id: &str) -> ContainerState {
        let all = rt.list_containers().await.unwrap();
        all.into_iter().find(|c| c.id == id).unwrap().state
    }

    #[tokio::test]
    async fn a_pod_s_sandboxes_and_containers_are_those_its_uid_labels() {
        let clock = TestClock::at(SystemTime::UNIX_EPOCH);
        let rt = runtime(&clock);
        let uid_label =
            |uid: &str| BTreeMap::from([(labels::POD_UID.to_string(), uid.to_string())]);
        let mut ids = Vec::new();
        for uid in ["a", "b"] {
            let sandbox_config = SandboxConfig {
                uid: uid.into(),
                labels: uid_label(uid),
                ..Default::default()
            };
            let sandbox = rt.run_pod_sandbox(&sandbox_config).await.unwrap();
            let mut config = container("app", &[]);
            config.labels = uid_label(uid);
            ids.push((
                sandbox.clone(),
                rt.create_container(&sandbox, &config).await.unwrap(),
            ));
        }
        let sandboxes = rt.pod_sandboxes("a").await.unwrap();
        assert_eq!(
            sandboxes.iter().map(|s| &s.id).collect::<Vec<_>>(),
            [&ids[0].0]
        );
        let containers = rt.pod_containers("b").await.unwrap();
        assert_eq!(
            containers.iter().map(|c| &c.id).collect::<Vec<_>>(),
            [&ids[1].1]
        );
        assert!(rt.pod_containers("c").await.unwrap().is_empty());
        assert_eq!(rt.list_containers().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_container_without_a_script_runs_until_stopped_with_sigterms_code() {
        let clock = TestClock::at(SystemTime::UNIX_EPOCH);
        let rt = runtime(&clock);
        let id = start(&rt, &container("app", &[])).await;
        clock.advance(Duration::from_secs(3600));
        let started_at = SystemTime::UNIX_EPOCH;
        assert_eq!(
            state(&rt, &id).await,
            ContainerState::Running { started_at }
        );
        rt.stop_container(&id, Duration::from_secs(30))
            .await
            .unwrap();
        let ContainerState::Exited { exit_code, .. } = state(&rt, &id).await else {
            panic!("a stopped container has exited");
        };
        assert_eq!(exit_code, 143);
    }

    #[tokio::test]
    async fn run_seconds_and_exit_code_end_the_container_on_time() {
        let clock = TestClock::at(SystemTime::UNIX_EPOCH);
        let rt = runtime(&clock);
        let script = [(RUN_SECONDS, "10"), (EXIT_CODE, "3")];
        let id = start(&rt, &container("app", &script)).await;
        clock.advance(Duration::from_secs(9));
        assert!(matches!(
            state(&rt, &id).await,
            ContainerState::Running { .. }
        ));
        clock.advance(Duration::from_secs(5));
        let expected = ContainerState::Exited {
            exit_code: 3,
            reason: "Error".into(),
            started_at: Some(SystemTime::UNIX_EPOCH),
            finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
        };
        assert_eq!(state(&rt, &id).await, expected);
    }

    #[tokio::test]
    async fn a_per_container_key_wins_over_the_pod_wide_one() {
        let clock = TestClock::at(SystemTime::UNIX_EPOCH);
        let rt = runtime(&clock);
        let script = [
            (RUN_SECONDS, "1"),
            ("hollow.skiff.dev/run-seconds.web", "100"),
        ];
        let web = start(&rt, &container("web", &script)).await;
        let job = start(&rt, &container("job", &script)).await;
        clock.advance(Duration::from_secs(2));
        assert!(matches!(
            state(&rt, &web).await,
            ContainerState::Running { .. }
        ));
        assert!(matches!(
            state(&rt, &job).await,
            ContainerState::Exited { exit_code: 0, .. }
        ));
    }

    #[tokio::test]
    async fn ready_false_makes_execs_fail() {
        let clock = TestClock::at(SystemTime::UNIX_EPOCH);
        let rt = runtime(&clock);
        let unready = start(&rt, &container("a", &[(READY, "false")])).await;
        let ready = start(&rt, &container("b", &[])).await;
        let second = Duration::from_secs(1);
        assert_eq!(
            rt.exec_sync(&unready, &[], second).await.unwrap().exit_code,
            1
        );
        assert_eq!(
            rt.exec_sync(&ready, &[], second).await.unwrap().exit_code,
            0
        );
    }

    #[tokio::test]
    async fn an_interactive_exec_is_refused_with_the_reason() {
        let clock = TestClock::at(SystemTime::UNIX_EPOCH);
        let rt = runtime(&clock);
        let id = start(&rt, &container("a", &[])).await;
        let request = ExecRequest {
            command: vec!["sh".into()],
            stdin: true,
            tty: true,
            timeout: None,
        };
        let (streams, _output) = ExecStreams::without_input();
        let refused = rt.exec(&id, &request, streams).await.unwrap_err();
        assert!(
            matches!(
                refused,
                RuntimeError::Unsupported {
                    runtime: "hollow",
                    ..
                }
            ),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("runs no commands"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn sandboxes_get_distinct_ips_and_absent_images_fail_to_pull() {
        let clock = TestClock::at(SystemTime::UNIX_EPOCH);
        let config = HollowConfig {
            absent_images: vec!["nope:1".into()],
            ..Default::default()
        };
        let rt = HollowRuntime::new(config, Arc::new(clock));
        rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
        rt.run_pod_sandbox(&SandboxConfig::default()).await.unwrap();
        let sandboxes = rt.list_pod_sandboxes().await.unwrap();
        assert_ne!(sandboxes[0].ip, sandboxes[1].ip);
        let error = rt.ensure_image("nope:1").await.unwrap_err();
        assert_eq!(error.reason(), "ErrImagePull");
        assert!(rt.ensure_image("busybox").await.is_ok());
    }
}
