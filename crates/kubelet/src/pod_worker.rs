//! One pod worker per pod, as the real kubelet's `podWorkers`: a task that
//! syncs its pod whenever there is a hint (the pod changed, the runtime saw
//! a container change, a backoff ended, the periodic resync) and otherwise
//! sleeps.
//!
//! A sync observes the runtime, asks the pure [`crate::pod::sync`] what to
//! do, does it, and observes again until nothing is left to do; then it
//! writes the status through the status subresource, only if it changed.
//! A pod being deleted has its containers stopped with their grace period;
//! then the worker deletes the pod object with grace 0, as the kubelet
//! does, and tears the sandbox down once the pod is gone.
//!
//! # Caveats
//! A sandbox that fails to start is retried at
//! the next hint with no backoff of its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodStatus, Secret};
use serde_json::json;
use skiff_client::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::context::Kubelet;
use crate::pod::backoff::BackOff;
use crate::pod::{self, Action, Input, KillReason, Plan, StartFailure};
use crate::probe::Target;
use crate::runtime::{
    labels, ContainerConfig, ContainerStatus, Resources, RuntimeError, SandboxConfig, SandboxStatus,
};
use crate::volume::{self, env};

/// How many act-then-observe rounds one sync may take before it settles
/// for now (a guard against a runtime that never reaches the spec).
const MAX_ROUNDS: usize = 8;

/// The dispatcher's side of a worker.
pub(crate) struct WorkerHandle {
    /// The latest version of the pod; `None` once it is gone from the API.
    pub pod: watch::Sender<Option<Arc<Pod>>>,
    /// Wakes the worker to sync again.
    pub hint: Arc<Notify>,
    /// The task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the worker of `pod`.
pub(crate) fn spawn(
    kubelet: Arc<Kubelet>,
    pod: Arc<Pod>,
    shutdown: CancellationToken,
) -> WorkerHandle {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let (tx, rx) = watch::channel(Some(pod));
    let hint = Arc::new(Notify::new());
    let worker = Worker {
        kubelet,
        uid,
        pod: rx,
        hint: hint.clone(),
        backoff: BackOff::default(),
        failures: BTreeMap::new(),
        last_written: None,
    };
    let task = tokio::spawn(worker.run(shutdown));
    WorkerHandle {
        pod: tx,
        hint,
        task,
    }
}

struct Worker {
    kubelet: Arc<Kubelet>,
    uid: String,
    pod: watch::Receiver<Option<Arc<Pod>>>,
    hint: Arc<Notify>,
    backoff: BackOff,
    failures: BTreeMap<String, StartFailure>,
    last_written: Option<PodStatus>,
}

/// What one sync leaves the worker to do.
enum Next {
    /// Sleep until a hint, or at most this long.
    Wait(Option<Duration>),
    /// The pod has terminated and its object was deleted; wait for it to go.
    Deleted,
}

impl Worker {
    async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let current = self.pod.borrow_and_update().clone();
            let Some(pod) = current else {
                self.tear_down().await;
                return;
            };
            let span = tracing::debug_span!("sync", pod = %key(&pod));
            let next = tracing::Instrument::instrument(self.sync(&pod), span).await;
            let wait = match next {
                Next::Wait(after) => after.unwrap_or(self.kubelet.config.resync_period),
                Next::Deleted => self.kubelet.config.resync_period,
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = self.pod.changed() => if changed.is_err() { return },
                _ = self.hint.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn sync(&mut self, pod: &Arc<Pod>) -> Next {
        for round in 0..MAX_ROUNDS {
            let (sandboxes, containers) = match self.observe().await {
                Ok(observed) => observed,
                Err(error) => {
                    tracing::warn!(%error, "cannot list the runtime's containers");
                    return Next::Wait(Some(Duration::from_secs(1)));
                }
            };
            self.ensure_probers(pod, &sandboxes, &containers);
            let plan = self.plan(pod, &sandboxes, &containers);
            if plan.actions.is_empty() || round + 1 == MAX_ROUNDS {
                self.record_back_offs(pod, &plan.status);
                self.write_status(pod, &plan.status).await;
                if plan.terminated {
                    self.delete(pod).await;
                    return Next::Deleted;
                }
                return Next::Wait(plan.requeue_after);
            }
            for action in plan.actions {
                self.act(pod, &sandboxes, action).await;
            }
        }
        Next::Wait(None)
    }

    fn ensure_probers(
        &self,
        pod: &Arc<Pod>,
        sandboxes: &[SandboxStatus],
        containers: &[ContainerStatus],
    ) {
        let target = Target {
            uid: self.uid.clone(),
            pod: pod.clone(),
            pod_ip: pod::latest_sandbox(sandboxes)
                .and_then(|s| s.ip)
                .map(|ip| ip.to_string()),
            hint: self.hint.clone(),
            events: self.kubelet.events.clone(),
        };
        self.kubelet.probes.ensure(&target, containers);
    }

    fn plan(
        &mut self,
        pod: &Pod,
        sandboxes: &[SandboxStatus],
        containers: &[ContainerStatus],
    ) -> Plan {
        let probes = self.kubelet.probes.results(&self.uid);
        let host_ip = self.kubelet.config.node_ip.to_string();
        let input = Input {
            pod,
            sandboxes,
            containers,
            probes: &probes,
            failures: &self.failures,
            runtime: self.kubelet.runtime.name(),
            host_ip: Some(&host_ip),
            now: self.kubelet.clock.now(),
        };
        pod::sync(&input, &mut self.backoff)
    }

    /// The runtime's sandboxes and containers of this pod.
    async fn observe(&self) -> Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError> {
        let runtime = &self.kubelet.runtime;
        let sandboxes = runtime.pod_sandboxes(&self.uid).await?;
        let containers = runtime.pod_containers(&self.uid).await?;
        Ok((sandboxes, containers))
    }

    async fn act(&mut self, pod: &Pod, sandboxes: &[SandboxStatus], action: Action) {
        let runtime = self.kubelet.runtime.clone();
        let result = match &action {
            Action::CreateSandbox => self.create_sandbox(pod).await,
            Action::StartContainer { name, attempt, .. } => {
                let sandbox = pod::latest_sandbox(sandboxes).filter(|s| s.ready);
                if let Some(sandbox) = sandbox {
                    self.start_container(pod, sandbox, name, *attempt).await;
                }
                Ok(())
            }
            Action::KillContainer {
                id,
                name,
                grace,
                reason,
            } => {
                tracing::info!(container = %name, ?reason, ?grace, "killing container");
                let why = match reason {
                    KillReason::Liveness => "failed liveness probe, will be restarted",
                    KillReason::Startup => "failed startup probe, will be restarted",
                    KillReason::Deletion => "is being stopped",
                    KillReason::NotInSpec => "is not in the pod's spec",
                };
                let message = format!("Stopping container {name}: it {why}");
                self.kubelet
                    .events
                    .normal(pod, "Killing", &message, Some(name));
                runtime.stop_container(id, *grace).await
            }
            Action::RemoveContainer { id } => runtime.remove_container(id).await,
            Action::StopSandbox { id } => runtime.stop_pod_sandbox(id).await,
        };
        if let Err(error) = result {
            tracing::warn!(?action, %error, "action failed");
        }
    }

    async fn create_sandbox(&self, pod: &Pod) -> Result<(), RuntimeError> {
        let log_directory = self.kubelet.pod_log_dir(pod);
        if let Err(error) = tokio::fs::create_dir_all(&log_directory).await {
            return Err(RuntimeError::CreateSandbox(format!(
                "cannot create the log directory: {error}"
            )));
        }
        let spec = pod.spec.as_ref();
        let config = SandboxConfig {
            name: pod.metadata.name.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            uid: self.uid.clone(),
            hostname: spec
                .and_then(|s| s.hostname.clone())
                .or_else(|| pod.metadata.name.clone())
                .unwrap_or_default(),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            log_directory,
            labels: pod_labels(pod),
        };
        self.kubelet
            .runtime
            .run_pod_sandbox(&config)
            .await
            .map(|_| ())
    }

    /// Creates and starts one container; a failure is remembered (and shown
    /// in its Waiting state) until a later start succeeds.
    async fn start_container(
        &mut self,
        pod: &Pod,
        sandbox: &SandboxStatus,
        name: &str,
        attempt: u32,
    ) {
        let spec = pod.spec.as_ref();
        let all = spec.into_iter().flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        });
        let Some(container) = all.into_iter().find(|c| c.name == name) else {
            return;
        };
        match self.try_start(pod, sandbox, container, attempt).await {
            Ok(()) => {
                self.failures.remove(name);
            }
            Err((reason, message)) => {
                tracing::warn!(container = %name, %reason, %message, "container did not start");
                self.kubelet.events.warning(
                    pod,
                    "Failed",
                    &format!("{reason}: {message}"),
                    Some(name),
                );
                let at = self.kubelet.clock.now();
                self.failures.insert(
                    name.to_string(),
                    StartFailure {
                        reason,
                        message,
                        at,
                    },
                );
            }
        }
    }

    async fn try_start(
        &self,
        pod: &Pod,
        sandbox: &SandboxStatus,
        container: &Container,
        attempt: u32,
    ) -> Result<(), (String, String)> {
        let runtime = &self.kubelet.runtime;
        let failed = |e: RuntimeError| (e.reason().to_string(), e.to_string());
        let config_error = |e: String| ("CreateContainerConfigError".to_string(), e);
        let image = container.image.clone().unwrap_or_default();
        runtime.ensure_image(&image).await.map_err(failed)?;
        let sources = self.sources(pod, sandbox).await.map_err(config_error)?;
        let env =
            env::resolve(pod, container, &sources).map_err(|e| config_error(e.to_string()))?;
        let pod_dir = self.kubelet.pod_dir(&self.uid);
        let volumes = volume::prepare(pod, &pod_dir, &sources)
            .await
            .map_err(|e| config_error(e.to_string()))?;
        let mounts =
            volume::mounts(container, &volumes).map_err(|e| config_error(e.to_string()))?;
        let mut labels = pod_labels(pod);
        labels.insert(labels::CONTAINER_NAME.to_string(), container.name.clone());
        let config = ContainerConfig {
            name: container.name.clone(),
            attempt,
            image,
            command: container.command.clone().unwrap_or_default(),
            args: container.args.clone().unwrap_or_default(),
            working_dir: container.working_dir.clone(),
            env,
            mounts,
            resources: Resources::limits_of(container),
            log_path: crate::logs::container_log_path(
                &self.kubelet.pod_log_dir(pod),
                &container.name,
                attempt,
            ),
            tty: container.tty.unwrap_or(false),
            stdin: container.stdin.unwrap_or(false),
            labels,
            pod_annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        };
        let id = runtime
            .create_container(&sandbox.id, &config)
            .await
            .map_err(failed)?;
        if let Err(error) = runtime.start_container(&id).await {
            let _ = runtime.remove_container(&id).await;
            return Err(failed(error));
        }
        Ok(())
    }

    /// The ConfigMaps and Secrets the pod refers to, and its IPs.
    async fn sources(&self, pod: &Pod, sandbox: &SandboxStatus) -> Result<env::Sources, String> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let client = self.kubelet.client.clone();
        let (maps, secrets) = env::referenced(pod);
        let mut sources = env::Sources {
            pod_ip: sandbox.ip.map(|ip| ip.to_string()),
            host_ip: Some(self.kubelet.config.node_ip.to_string()),
            ..env::Sources::default()
        };
        if !maps.is_empty() {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
            for name in maps {
                if let Some(map) = api.get_opt(&name).await.map_err(|e| e.to_string())? {
                    sources.config_maps.insert(name, map);
                }
            }
        }
        if !secrets.is_empty() {
            let api: Api<Secret> = Api::namespaced(client, &namespace);
            for name in secrets {
                if let Some(secret) = api.get_opt(&name).await.map_err(|e| e.to_string())? {
                    sources.secrets.insert(name, secret);
                }
            }
        }
        Ok(sources)
    }

    /// A `BackOff` Event for each container whose status has just turned
    /// to CrashLoopBackOff or ImagePullBackOff, as the kubelet records.
    fn record_back_offs(&self, pod: &Pod, status: &PodStatus) {
        let before = self.last_written.as_ref().or(pod.status.as_ref());
        for (container, message) in entered_back_off(before, status) {
            self.kubelet
                .events
                .warning(pod, "BackOff", &message, Some(&container));
        }
    }

    /// Writes the status if it differs from the pod's and from the last one
    /// written (the server may normalise what it stores).
    async fn write_status(&mut self, pod: &Pod, status: &PodStatus) {
        if pod.status.as_ref() == Some(status) || self.last_written.as_ref() == Some(status) {
            return;
        }
        let api = self.pods(pod);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let patch = Patch::Merge(json!({ "status": status }));
        match api
            .patch_status(&name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => self.last_written = Some(status.clone()),
            Err(error) => tracing::warn!(%error, "cannot write the pod status"),
        }
    }

    /// Deletes the terminated pod's object for good (grace 0, this uid only).
    async fn delete(&self, pod: &Pod) {
        let api = self.pods(pod);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(error) => tracing::warn!(%error, "cannot delete the terminated pod"),
        }
    }

    fn pods(&self, pod: &Pod) -> Api<Pod> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        Api::namespaced(self.kubelet.client.clone(), &namespace)
    }

    /// The pod is gone from the API: stop and remove what is left of it.
    async fn tear_down(&self) {
        self.kubelet.tear_down(&self.uid).await;
    }
}

/// The containers (all kinds) waiting in a back-off in `now` but not in
/// `before`, each with the message of its `BackOff` Event.
fn entered_back_off(before: Option<&PodStatus>, now: &PodStatus) -> Vec<(String, String)> {
    let waiting_in = |status: Option<&PodStatus>| -> BTreeMap<String, (String, String)> {
        let all = status.into_iter().flat_map(|s| {
            let init = s.init_container_statuses.iter().flatten();
            init.chain(s.container_statuses.iter().flatten())
        });
        all.filter_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.clone()?;
            let message = waiting.message.clone().unwrap_or_default();
            Some((c.name.clone(), (reason, message)))
        })
        .collect()
    };
    let (before, now) = (waiting_in(before), waiting_in(Some(now)));
    now.into_iter()
        .filter(|(name, (reason, _))| before.get(name).map(|(r, _)| r) != Some(reason))
        .filter_map(|(name, (reason, message))| match reason.as_str() {
            "CrashLoopBackOff" => {
                let message = format!("Back-off restarting failed container {name}");
                Some((name, message))
            }
            "ImagePullBackOff" => Some((name, message)),
            _ => None,
        })
        .collect()
}

/// The labels every sandbox and container of `pod` carries.
fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    let meta = &pod.metadata;
    [
        (labels::POD_UID, meta.uid.clone()),
        (labels::POD_NAME, meta.name.clone()),
        (labels::POD_NAMESPACE, meta.namespace.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.unwrap_or_default()))
    .collect()
}

/// `namespace/name`, for logs.
pub(crate) fn key(pod: &Pod) -> String {
    let meta = &pod.metadata;
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(pairs: &[(&str, &str)]) -> PodStatus {
        let statuses = pairs
            .iter()
            .map(|(name, reason)| {
                serde_json::from_value(json!({
                    "name": name, "ready": false, "restartCount": 1, "image": "i", "imageID": "",
                    "state": {"waiting": {"reason": reason, "message": format!("about {name}")}},
                }))
                .expect("a container status")
            })
            .collect();
        PodStatus {
            container_statuses: Some(statuses),
            ..PodStatus::default()
        }
    }

    #[test]
    fn a_back_off_event_is_due_once_when_a_container_enters_it() {
        let before = waiting(&[("a", "ContainerCreating"), ("b", "CrashLoopBackOff")]);
        let now = waiting(&[
            ("a", "CrashLoopBackOff"),
            ("b", "CrashLoopBackOff"),
            ("c", "ImagePullBackOff"),
            ("d", "ErrImageNeverPull"),
        ]);
        assert_eq!(
            entered_back_off(Some(&before), &now),
            [
                (
                    "a".to_string(),
                    "Back-off restarting failed container a".to_string()
                ),
                ("c".to_string(), "about c".to_string()),
            ]
        );
        assert!(entered_back_off(Some(&now), &now).is_empty());
    }
}
