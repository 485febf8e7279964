//! The node lifecycle controller's shell: every monitor period, look at each
//! node's Lease, write Unknown conditions and taints, and evict pods — all
//! from the informers' caches, so a restarted controller simply looks again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use skiff_client::{Api, DeleteParams, Patch, PatchParams, PostParams, Store};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{Health, RateLimiter, ZoneState};
use crate::clock::now;
use crate::context::{Context, Runner};
use crate::error::Error;
use crate::informers::Informers;
use crate::{pods, writes};

/// The namespace where kubelets keep their Leases.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

struct Controller {
    ctx: Context,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    health: Mutex<Health>,
    limiters: Mutex<HashMap<String, RateLimiter>>,
}

/// Registers the controller; its runner monitors nodes every period.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        nodes: informers.get::<Node>()?.store(),
        leases: informers.get::<Lease>()?.store(),
        pods: informers.get::<Pod>()?.store(),
        health: Mutex::default(),
        limiters: Mutex::default(),
    });
    Ok(Box::new(move |shutdown: CancellationToken| {
        Box::pin(async move {
            let mut tick = tokio::time::interval(controller.ctx.config.node_monitor_period);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                if let Err(error) = controller.monitor().await {
                    tracing::info!(%error, "node monitoring failed; trying again next period");
                }
            }
        })
    }))
}

impl Controller {
    async fn monitor(&self) -> Result<(), Error> {
        let now = now();
        let nodes = self.nodes.list();
        let mut ready: BTreeMap<String, String> = BTreeMap::new();
        for node in &nodes {
            ready.insert(
                node.metadata.name.clone().unwrap_or_default(),
                self.health_of(node, now).await?,
            );
        }
        let zones = zone_states(&nodes, &ready);
        let all_down =
            !zones.is_empty() && zones.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let wanted = super::wanted_taint(&ready[&name]);
            let current = super::taints_of(node);
            // NoSchedule at once, whatever the zones' state.
            let no_schedule = super::taints_with(&current, "NoSchedule", wanted, now);
            let changed = no_schedule.is_some();
            let mut taints = no_schedule.unwrap_or(current);
            if let Some(no_execute) = super::taints_with(&taints, "NoExecute", wanted, now) {
                if wanted.is_none() || self.may_taint(node, &zones, all_down, now).await {
                    taints = no_execute;
                } else if !changed {
                    continue;
                }
            } else if !changed {
                continue;
            }
            tracing::info!(node = %name, ?wanted, "node taints change");
            let patch = json!({"spec": {"taints": taints}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        self.evict(&nodes, now).await
    }

    /// Whether a NoExecute taint may be added to `node` now: not when every
    /// zone is down (more likely our own partition), and at its zone's rate.
    async fn may_taint(
        &self,
        node: &Node,
        zones: &BTreeMap<String, (ZoneState, usize)>,
        all_down: bool,
        now: Timestamp,
    ) -> bool {
        if all_down {
            return false;
        }
        let zone = zone_of(node);
        let (state, size) = zones.get(&zone).copied().unwrap_or((ZoneState::Normal, 0));
        let config = &self.ctx.config;
        let rate = super::zone_rate(
            state,
            size,
            config.node_eviction_rate,
            config.secondary_node_eviction_rate,
        );
        let mut limiters = self.limiters.lock().await;
        let limiter = limiters
            .entry(zone)
            .or_insert_with(|| RateLimiter::new(rate));
        limiter.set_qps(rate);
        limiter.try_accept(now)
    }

    /// The node's effective Ready status; a node quiet past the grace period
    /// has its conditions written Unknown.
    async fn health_of(&self, node: &Node, now: Timestamp) -> Result<String, Error> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let renew = self.leases.get(NODE_LEASE_NAMESPACE, &name).and_then(|l| {
            l.spec
                .as_ref()?
                .renew_time
                .as_ref()
                .map(|t| format!("{:?}", t.0))
        });
        let probe = self.health.lock().await.observe(&name, renew, now);
        if pods::elapsed(probe, now) <= self.ctx.config.node_monitor_grace_period {
            return Ok(super::ready_status(node).to_string());
        }
        if let Some(conditions) = super::unknown_conditions(node, now) {
            tracing::info!(node = %name, "node stopped renewing its lease: Unknown");
            let mut next = node.clone();
            next.status.get_or_insert_with(Default::default).conditions = Some(conditions);
            let api: Api<Node> = Api::all(self.ctx.client.clone());
            api.replace_status(
                &next.metadata.name.clone().unwrap_or_default(),
                &PostParams::default(),
                &next,
            )
            .await?;
        }
        Ok("Unknown".into())
    }

    /// Deletes the pods whose NoExecute taints' toleration has run out.
    async fn evict(&self, nodes: &[Arc<Node>], now: Timestamp) -> Result<(), Error> {
        let tainted: HashMap<String, Vec<_>> = nodes
            .iter()
            .filter_map(|n| {
                let taints = n.spec.as_ref()?.taints.clone()?;
                let no_execute: Vec<_> = taints
                    .into_iter()
                    .filter(|t| t.effect == "NoExecute")
                    .collect();
                (!no_execute.is_empty())
                    .then(|| (n.metadata.name.clone().unwrap_or_default(), no_execute))
            })
            .collect();
        if tainted.is_empty() {
            return Ok(());
        }
        let evictions = self.pods.list().into_iter().filter_map(|pod| {
            let node = pod.spec.as_ref()?.node_name.clone()?;
            let taints = tainted.get(&node)?;
            if pod.metadata.deletion_timestamp.is_some() || pods::is_finished(&pod) {
                return None;
            }
            let due = super::eviction_time(&pod, taints, now)?;
            (due <= now).then_some(pod)
        });
        let deletes = evictions.map(|pod| {
            let client = self.ctx.client.clone();
            async move {
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                tracing::info!(pod = %format!("{namespace}/{name}"), "evicting from a tainted node");
                let api: Api<Pod> = Api::namespaced(client, &namespace);
                writes::delete(&api, &name, &DeleteParams::default()).await
            }
        });
        writes::all("pod evictions", deletes.collect()).await
    }
}

fn zone_of(node: &Node) -> String {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(super::ZONE_LABEL).cloned())
        .unwrap_or_default()
}

/// Each zone's state and size.
fn zone_states(
    nodes: &[Arc<Node>],
    ready: &BTreeMap<String, String>,
) -> BTreeMap<String, (ZoneState, usize)> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let entry = counts.entry(zone_of(node)).or_default();
        if ready.get(&name).map(String::as_str) == Some("True") {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(zone, (r, n))| (zone, (super::zone_state(r, n), r + n)))
        .collect()
}
