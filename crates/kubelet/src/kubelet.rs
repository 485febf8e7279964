//! The kubelet's main loop: register the Node, keep its Lease, watch the
//! pods bound to the node, and keep one [`crate::pod_worker`] per pod.
//!
//! Alongside the workers, a relist loop (the real kubelet's PLEG, "pod
//! lifecycle event generator") lists the runtime every `relist_period`, and
//! wakes the worker of each pod whose containers changed — a container that
//! exited is noticed this way. The same loop is the housekeeping: sandboxes
//! of pods that no longer exist in the API (deleted while the kubelet was
//! down, or force-deleted) are stopped and removed.
//!
//! A restarted kubelet starts no container twice: the runtime lists what
//! already runs (with the labels naming each pod), and each worker's first
//! sync sees it.
//!
//! # Caveats
//! No admission (the node's capacity is not checked again), no eviction,
//! no static pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use skiff_client::{Api, Change, Client, Informer, InformerConfig, ListParams, Store};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::context::Kubelet;
use crate::events::EventRecorder;
use crate::node::{self, Capacity};
use crate::pod_worker::{self, WorkerHandle};
use crate::probe::ProbeManager;
use crate::runtime::{labels, ContainerState, Runtime};
use crate::server;
use crate::{Config, Error};

/// Runs the kubelet over `runtime` until `shutdown`. Containers keep running
/// after shutdown; the next kubelet adopts them.
pub async fn run_with_runtime(
    mut config: Config,
    client: Client,
    runtime: Arc<dyn Runtime>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    tokio::fs::create_dir_all(&config.root_dir)
        .await
        .map_err(|e| Error::io(format!("cannot create {}", config.root_dir.display()), e))?;
    // The conditions' lastTransitionTime: when this kubelet started.
    config.started_at.get_or_insert(clock.now());
    let capacity = config.capacity.unwrap_or_else(|| Capacity::of_host(110));
    let listener = match config.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Listen { addr, source })?,
        ),
        None => None,
    };
    let port = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let node = node::node_object(&config, capacity, runtime.name(), port, clock.now());
    let Some(node) = node::register_until_done(&client, &node, &shutdown).await else {
        return Ok(());
    };
    tracing::info!(node = %config.node_name, runtime = runtime.name(), "node registered");
    tokio::spawn(node::heartbeat(
        client.clone(),
        node,
        config.clone(),
        capacity,
        runtime.name(),
        port,
        shutdown.child_token(),
    ));

    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={}", config.node_name);
    let informer_config = InformerConfig {
        list: ListParams::default().fields(&selector),
        ..InformerConfig::default()
    };
    let mut informer = Informer::new(pods, informer_config);
    let mut changes = informer.subscribe();
    let cache = informer.store();
    tokio::spawn(informer.run(shutdown.child_token()));
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = cache.wait_for_sync() => {}
    }

    let kubelet = Arc::new(Kubelet {
        probes: ProbeManager::new(runtime.clone(), shutdown.child_token()),
        events: EventRecorder::new(client.clone(), config.node_name.clone()),
        config,
        client,
        runtime,
        clock,
    });
    if let Some(listener) = listener {
        let router = server::router(kubelet.clone(), cache.clone());
        tokio::spawn(server::serve(listener, router, shutdown.child_token()));
    }
    let mut dispatcher = Dispatcher {
        kubelet: kubelet.clone(),
        workers: HashMap::new(),
        fingerprints: HashMap::new(),
        shutdown: shutdown.clone(),
    };
    for pod in cache.list() {
        dispatcher.update(pod);
    }
    let mut relist = tokio::time::interval(kubelet.config.relist_period);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            change = changes.recv() => match change {
                Some(Change::Added(pod)) | Some(Change::Updated { new: pod, .. }) => dispatcher.update(pod),
                Some(Change::Deleted(pod)) => dispatcher.remove(&pod),
                None => break,
            },
            _ = relist.tick() => dispatcher.relist(&cache).await,
        }
    }
    for (_, worker) in dispatcher.workers.drain() {
        let _ = worker.task.await;
    }
    Ok(())
}

/// The workers, by pod uid.
struct Dispatcher {
    kubelet: Arc<Kubelet>,
    workers: HashMap<String, WorkerHandle>,
    /// What the last relist saw of each pod's containers.
    fingerprints: HashMap<String, Vec<String>>,
    shutdown: CancellationToken,
}

impl Dispatcher {
    /// Hands the pod's new version to its worker, starting one if needed.
    fn update(&mut self, pod: Arc<Pod>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match self.workers.get(&uid) {
            Some(worker) if !worker.task.is_finished() => {
                worker.pod.send_replace(Some(pod));
            }
            _ => {
                let worker =
                    pod_worker::spawn(self.kubelet.clone(), pod, self.shutdown.child_token());
                self.workers.insert(uid, worker);
            }
        }
    }

    /// The pod is gone from the API: its worker tears it down and ends.
    fn remove(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(worker) = self.workers.get(&uid) {
            worker.pod.send_replace(None);
        }
    }

    /// Lists the runtime; wakes workers whose containers changed, tears
    /// down sandboxes of pods the API no longer has.
    async fn relist(&mut self, cache: &Store<Pod>) {
        self.workers.retain(|_, w| !w.task.is_finished());
        let runtime = &self.kubelet.runtime;
        let (sandboxes, containers) = match (
            runtime.list_pod_sandboxes().await,
            runtime.list_containers().await,
        ) {
            (Ok(s), Ok(c)) => (s, c),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "relist failed");
                return;
            }
        };
        let mut now: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for container in &containers {
            let Some(uid) = container.labels.get(labels::POD_UID) else {
                continue;
            };
            let state = match &container.state {
                ContainerState::Created => "created".to_string(),
                ContainerState::Running { .. } => "running".to_string(),
                ContainerState::Exited { exit_code, .. } => format!("exited {exit_code}"),
            };
            now.entry(uid.clone())
                .or_default()
                .push(format!("{} {state}", container.id));
        }
        for (uid, fingerprint) in &now {
            if self.fingerprints.get(uid) != Some(fingerprint) {
                if let Some(worker) = self.workers.get(uid) {
                    worker.hint.notify_one();
                }
            }
        }
        self.fingerprints = now.into_iter().collect();

        let known: std::collections::HashSet<String> = cache
            .list()
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        let orphans: std::collections::BTreeSet<String> = sandboxes
            .iter()
            .filter_map(|s| s.labels.get(labels::POD_UID).cloned())
            .filter(|uid| !known.contains(uid) && !self.workers.contains_key(uid))
            .collect();
        for uid in orphans {
            tracing::info!(%uid, "removing the sandbox of a pod that no longer exists");
            self.kubelet.tear_down(&uid).await;
        }
    }
}
