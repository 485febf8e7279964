//! Liveness, readiness and startup probes, as the real kubelet's prober.
//!
//! Each running container with probes gets one prober task per probe. A
//! prober waits `initialDelaySeconds`, then every `periodSeconds` runs its
//! check (exec in the container, an HTTP GET, or a TCP connect) with
//! `timeoutSeconds`; `successThreshold` consecutive successes or
//! `failureThreshold` consecutive failures flip its result ([`Counter`]).
//! Until the startup probe succeeds, liveness and readiness are not run.
//! A flip is written into the pod's results and wakes the pod worker, which
//! reads them in its next sync: a failed liveness or startup probe kills the
//! container, readiness sets `ready`. Failures are recorded as `Unhealthy`
//! Events.
//!
//! # Caveats
//! httpGet speaks plain HTTP/1.1 only (no HTTPS, no custom headers); no
//! gRPC probes; `terminationGracePeriodSeconds` of a probe is ignored.

mod check;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::events::EventRecorder;
use crate::pod::{KillReason, ProbeResult};
use crate::runtime::{ContainerState, ContainerStatus, Runtime};

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Restarts the container when it fails.
    Liveness,
    /// Decides whether the container is ready.
    Readiness,
    /// Holds the other two back until it succeeds; kills when it fails.
    Startup,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

/// Consecutive results against a probe's thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    result: Option<bool>,
}

impl Counter {
    /// A counter for `probe` (Kubernetes' defaults: 1 success, 3 failures).
    pub fn new(probe: &Probe) -> Counter {
        let threshold = |v: Option<i32>, default: u32| {
            v.and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        Counter {
            success_threshold: threshold(probe.success_threshold, 1),
            failure_threshold: threshold(probe.failure_threshold, 3),
            successes: 0,
            failures: 0,
            result: None,
        }
    }

    /// Counts one check; returns the new result when it flips.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let result = match () {
            _ if self.successes >= self.success_threshold => true,
            _ if self.failures >= self.failure_threshold => false,
            _ => return None,
        };
        (self.result != Some(result)).then(|| {
            self.result = Some(result);
            result
        })
    }
}

fn seconds(value: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
}

/// The probers of every pod, and their results.
pub(crate) struct ProbeManager {
    runtime: Arc<dyn Runtime>,
    /// The kubelet's shutdown: every prober stops with it.
    shutdown: CancellationToken,
    pods: Arc<Mutex<HashMap<String, PodProbes>>>,
}

#[derive(Default)]
struct PodProbes {
    results: BTreeMap<String, ProbeResult>,
    /// Running probers by container ID: (container name, stop token).
    probers: HashMap<String, (String, CancellationToken)>,
}

/// What a prober needs of its pod.
#[derive(Clone)]
pub(crate) struct Target {
    pub uid: String,
    pub pod: Arc<Pod>,
    pub pod_ip: Option<String>,
    pub hint: Arc<Notify>,
    pub events: EventRecorder,
}

impl ProbeManager {
    pub fn new(runtime: Arc<dyn Runtime>, shutdown: CancellationToken) -> ProbeManager {
        ProbeManager {
            runtime,
            shutdown,
            pods: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodProbes>> {
        self.pods
            .lock()
            .expect("the probe manager's lock is never poisoned")
    }

    /// The results of the pod's probes, by container name.
    pub fn results(&self, uid: &str) -> BTreeMap<String, ProbeResult> {
        self.lock()
            .get(uid)
            .map(|p| p.results.clone())
            .unwrap_or_default()
    }

    /// Stops every prober of the pod.
    pub fn forget(&self, uid: &str) {
        if let Some(pod) = self.lock().remove(uid) {
            for (_, (_, stop)) in pod.probers {
                stop.cancel();
            }
        }
    }

    /// Starts probers for running containers that have probes and none yet;
    /// stops those of containers no longer running.
    pub fn ensure(&self, target: &Target, containers: &[ContainerStatus]) {
        let spec = target.pod.spec.as_ref();
        let mut pods = self.lock();
        let pod = pods.entry(target.uid.clone()).or_default();
        let running: Vec<&ContainerStatus> = containers
            .iter()
            .filter(|c| matches!(c.state, ContainerState::Running { .. }))
            .collect();
        pod.probers.retain(|id, (name, stop)| {
            let keep = running.iter().any(|c| c.id == *id);
            if !keep {
                stop.cancel();
                pod.results.remove(name.as_str());
            }
            keep
        });
        for container in running {
            if pod.probers.contains_key(&container.id) {
                continue;
            }
            let Some(spec) =
                spec.and_then(|s| s.containers.iter().find(|c| c.name == container.name))
            else {
                continue;
            };
            if spec.liveness_probe.is_none()
                && spec.readiness_probe.is_none()
                && spec.startup_probe.is_none()
            {
                continue;
            }
            let initial = ProbeResult {
                ready: spec.readiness_probe.is_none(),
                started: spec.startup_probe.is_none(),
                failed: None,
            };
            pod.results.insert(spec.name.clone(), initial);
            let stop = self.shutdown.child_token();
            for (kind, probe) in [
                (Kind::Startup, &spec.startup_probe),
                (Kind::Liveness, &spec.liveness_probe),
                (Kind::Readiness, &spec.readiness_probe),
            ] {
                let Some(probe) = probe.clone() else { continue };
                let prober = Prober {
                    kind,
                    probe,
                    container: spec.clone(),
                    container_id: container.id.clone(),
                    target: target.clone(),
                    runtime: self.runtime.clone(),
                    pods: self.pods.clone(),
                };
                tokio::spawn(prober.run(stop.clone()));
            }
            pod.probers
                .insert(container.id.clone(), (spec.name.clone(), stop));
        }
    }
}

struct Prober {
    kind: Kind,
    probe: Probe,
    container: Container,
    container_id: String,
    target: Target,
    runtime: Arc<dyn Runtime>,
    pods: Arc<Mutex<HashMap<String, PodProbes>>>,
}

impl Prober {
    async fn run(self, stop: CancellationToken) {
        let period = seconds(self.probe.period_seconds, 10).max(Duration::from_secs(1));
        let timeout = seconds(self.probe.timeout_seconds, 1).max(Duration::from_secs(1));
        let mut counter = Counter::new(&self.probe);
        let delay = seconds(self.probe.initial_delay_seconds, 0);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        loop {
            if self.kind == Kind::Startup || self.started() {
                let outcome = check::run(
                    &self.probe,
                    &self.container,
                    &self.container_id,
                    &self.target,
                    &*self.runtime,
                    timeout,
                )
                .await;
                if let Err(message) = &outcome {
                    let message = format!("{} probe failed: {message}", self.kind.name());
                    self.target.events.warning(
                        &self.target.pod,
                        "Unhealthy",
                        &message,
                        Some(&self.container.name),
                    );
                }
                if let Some(ok) = counter.observe(outcome.is_ok()) {
                    self.record(ok);
                    if self.kind == Kind::Startup && ok {
                        return;
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }

    fn started(&self) -> bool {
        let pods = self
            .pods
            .lock()
            .expect("the probe manager's lock is never poisoned");
        let result = pods
            .get(&self.target.uid)
            .and_then(|p| p.results.get(&self.container.name));
        result.is_some_and(|r| r.started)
    }

    /// Writes a flipped result and wakes the pod worker.
    fn record(&self, ok: bool) {
        {
            let mut pods = self
                .pods
                .lock()
                .expect("the probe manager's lock is never poisoned");
            let Some(pod) = pods.get_mut(&self.target.uid) else {
                return;
            };
            if !pod.probers.contains_key(&self.container_id) {
                return;
            }
            let Some(result) = pod.results.get_mut(&self.container.name) else {
                return;
            };
            match (self.kind, ok) {
                (Kind::Readiness, ok) => result.ready = ok,
                (Kind::Startup, true) => result.started = true,
                (Kind::Startup, false) => result.failed = Some(KillReason::Startup),
                (Kind::Liveness, false) => result.failed = Some(KillReason::Liveness),
                (Kind::Liveness, true) => {}
            }
        }
        self.target.hint.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(success: i32, failure: i32) -> Probe {
        Probe {
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            ..Probe::default()
        }
    }

    #[test]
    fn a_result_flips_only_after_its_threshold_of_consecutive_checks() {
        let mut counter = Counter::new(&probe(2, 3));
        assert_eq!(counter.observe(true), None, "one success of two");
        assert_eq!(counter.observe(true), Some(true));
        assert_eq!(counter.observe(true), None, "no flip, no news");
        assert_eq!(counter.observe(false), None);
        assert_eq!(counter.observe(false), None);
        assert_eq!(counter.observe(true), None, "a success resets the failures");
        for _ in 0..2 {
            assert_eq!(counter.observe(false), None);
        }
        assert_eq!(
            counter.observe(false),
            Some(false),
            "the third failure in a row"
        );
    }

    #[test]
    fn defaults_are_one_success_and_three_failures() {
        let mut counter = Counter::new(&Probe::default());
        assert_eq!(counter.observe(true), Some(true));
        assert_eq!(
            (counter.observe(false), counter.observe(false)),
            (None, None)
        );
        assert_eq!(counter.observe(false), Some(false));
    }
}
