//! The node lifecycle controller: notices nodes whose kubelet stopped
//! renewing its Lease, marks them, taints them, and evicts their pods.
//!
//! As Kubernetes' `node_lifecycle_controller.go` and its taint-based
//! eviction (pkg/controller/nodelifecycle/, pkg/controller/tainteviction/):
//! 1. **Health**: a kubelet renews its Lease in `kube-node-lease` every 10 s.
//!    The controller remembers, on its own clock, when it last saw each
//!    Lease's `renewTime` change ([`Health`]); after the grace period
//!    (`--node-monitor-grace-period`, 40 s) without a change, the node's
//!    conditions become `Unknown` (reason `NodeStatusUnknown`).
//! 2. **Taints**: `Ready=Unknown` gets `node.kubernetes.io/unreachable`,
//!    `Ready=False` gets `node.kubernetes.io/not-ready`, `Ready=True`
//!    neither — so a node whose heartbeats resume (and whose kubelet posts
//!    Ready again) is cleaned up. Each comes with two effects, as Kubernetes'
//!    taint-by-condition and taint-based eviction: NoSchedule at once (no new
//!    pod lands on the node, even one that tolerates NoExecute for a while,
//!    as every pod does by default), and NoExecute, whose adding is rate-limited per zone
//!    ([`RateLimiter`]): 0.1 nodes/s; in a zone with more than 55% of its
//!    nodes down, 0.01 nodes/s when it is large (over 50 nodes), else none;
//!    when every zone is wholly down the controller assumes the fault is its
//!    own and taints nothing.
//! 3. **Eviction**: a pod on a node with a NoExecute taint it does not
//!    tolerate is deleted at once; one that tolerates it for
//!    `tolerationSeconds` is deleted that long after the taint was added;
//!    one that tolerates it without a limit stays ([`eviction_time`]).
//!
//! # Caveats
//! Conditions are read from the Node (the kubelet's posts), the heartbeat
//! only from the Lease; no `MarkPodsNotReady`, no NoSchedule taints for
//! the pressure conditions (memory, disk, PID), no CIDR allocation; a restarted controller gives every node a
//! fresh grace period, as Kubernetes' does.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

pub(crate) mod controller;

/// The taint of a node whose Ready condition is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The label naming a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// When each node's Lease was last seen to change, on the controller's clock.
#[derive(Debug, Default)]
pub struct Health {
    seen: HashMap<String, (Option<String>, Timestamp)>,
}

impl Health {
    /// Records the Lease `renew_time` observed for `node` at `now`, and
    /// answers when it last changed (the probe timestamp).
    pub fn observe(&mut self, node: &str, renew_time: Option<String>, now: Timestamp) -> Timestamp {
        match self.seen.get_mut(node) {
            Some((seen, at)) if *seen == renew_time => *at,
            Some(entry) => {
                *entry = (renew_time, now);
                now
            }
            None => {
                self.seen.insert(node.to_string(), (renew_time, now));
                now
            }
        }
    }

    /// Forgets a node that is gone.
    pub fn forget(&mut self, node: &str) {
        self.seen.remove(node);
    }
}

/// A token bucket over an injected clock: `qps` tokens a second, at most one saved.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    qps: f64,
    tokens: f64,
    last: Option<Timestamp>,
}

impl RateLimiter {
    /// A limiter that starts with one token.
    pub fn new(qps: f64) -> RateLimiter {
        RateLimiter {
            qps,
            tokens: 1.0,
            last: None,
        }
    }

    /// Changes the rate, keeping what was saved.
    pub fn set_qps(&mut self, qps: f64) {
        self.qps = qps;
    }

    /// Takes a token if one is there at `now`.
    pub fn try_accept(&mut self, now: Timestamp) -> bool {
        if let Some(last) = self.last {
            self.tokens =
                (self.tokens + pods::elapsed(last, now).as_secs_f64() * self.qps).min(1.0);
        }
        self.last = Some(now);
        if self.qps > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The status of the node's Ready condition ("True", "False", "Unknown").
pub fn ready_status(node: &Node) -> &str {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str())
        .unwrap_or("Unknown")
}

/// The conditions a node gets when its kubelet has gone quiet: every
/// condition Unknown (a missing Ready added), or `None` if they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if !conditions.iter().any(|c| c.type_ == "Ready") {
        conditions.push(NodeCondition {
            type_: "Ready".into(),
            ..Default::default()
        });
    }
    if conditions.iter().all(|c| c.status == "Unknown") {
        return None;
    }
    for c in conditions.iter_mut().filter(|c| c.status != "Unknown") {
        c.status = "Unknown".into();
        c.reason = Some("NodeStatusUnknown".into());
        c.message = Some("Kubelet stopped posting node status.".into());
        c.last_transition_time = Some(Time(now));
    }
    Some(conditions)
}

/// The lifecycle taint key a node with this Ready status should carry, with
/// both effects: NoSchedule (set at once, so nothing new lands there) and
/// NoExecute (rate-limited, evicting what does not tolerate it).
pub fn wanted_taint(ready: &str) -> Option<&'static str> {
    match ready {
        "Unknown" => Some(UNREACHABLE),
        "False" => Some(NOT_READY),
        _ => None,
    }
}

/// The node's taints.
pub fn taints_of(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

/// `taints` with the lifecycle taint of `effect` set to `wanted` (and the
/// other lifecycle key of that effect removed); `None` when nothing changes.
pub fn taints_with(
    taints: &[Taint],
    effect: &str,
    wanted: Option<&str>,
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let ours = |t: &Taint| (t.key == UNREACHABLE || t.key == NOT_READY) && t.effect == effect;
    let has = taints
        .iter()
        .filter(|t| ours(t))
        .map(|t| t.key.as_str())
        .collect::<Vec<_>>();
    if has == wanted.into_iter().collect::<Vec<_>>() {
        return None;
    }
    let mut next: Vec<Taint> = taints.iter().filter(|t| !ours(t)).cloned().collect();
    if let Some(key) = wanted {
        next.push(Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: Some(Time(now)),
            value: None,
        });
    }
    Some(next)
}

/// A zone's state, by how many of its nodes are not Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    /// Most nodes are fine.
    Normal,
    /// More than 55% (and over 2) of the nodes are down.
    PartialDisruption,
    /// Every node is down.
    FullDisruption,
}

/// The state of a zone with `ready` and `not_ready` nodes, as `ComputeZoneState`.
pub fn zone_state(ready: usize, not_ready: usize) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= 0.55 {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The tainting rate of a zone in `state` of `size` nodes.
pub fn zone_rate(state: ZoneState, size: usize, rate: f64, secondary: f64) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => rate,
        ZoneState::PartialDisruption if size > 50 => secondary,
        ZoneState::PartialDisruption => 0.0,
    }
}

fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => {
            key == taint.key
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

/// When a pod on a node with `taints` is to be evicted: `Some(now-or-earlier)`
/// when a NoExecute taint is not tolerated, `Some(added + tolerationSeconds)`
/// when all are tolerated for a while (the shortest), `None` when it may stay.
pub fn eviction_time(pod: &Pod, taints: &[Taint], now: Timestamp) -> Option<Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut due: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        let seconds = matching.iter().filter_map(|t| t.toleration_seconds).min();
        if let Some(seconds) = seconds {
            let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
            let at = pods::after(added, Duration::from_secs(seconds.max(0) as u64));
            due = Some(due.map_or(at, |d| d.min(at)));
        }
    }
    due
}

#[cfg(test)]
mod tests;
