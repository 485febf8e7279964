//! The extension points, as traits: a plugin implements [`Plugin`] and hands
//! out the extension points it serves through its `as_*` methods, as a
//! kube-scheduler plugin implements only the interfaces it needs.
//!
//! The order of a cycle (kube-scheduler's "scheduling framework"):
//! PreFilter → Filter (per node) → PostFilter (only when no node fits) →
//! PreScore → Score (per node) → NormalizeScore → Reserve → Permit, then,
//! off the scheduling loop, PreBind → Bind. Unreserve undoes Reserve when a
//! later step fails. <https://kubernetes.io/docs/concepts/scheduling-eviction/scheduling-framework/>

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;

use super::{CycleState, NodeInfo, PodInfo, Snapshot, Status};

/// The highest score a Score plugin gives after normalizing.
pub const MAX_NODE_SCORE: i64 = 100;

/// A change in the cluster that may make an unschedulable pod fit
/// (kube-scheduler's `ClusterEvent`, reduced to what skiff's plugins watch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    /// A node was added.
    NodeAdd,
    /// A node's allocatable, labels, taints or unschedulable flag changed.
    NodeUpdate,
    /// A pod was bound to a node.
    AssignedPodAdd,
    /// A pod on a node changed (labels, for affinity and spreading).
    AssignedPodUpdate,
    /// A pod on a node went away, freeing its resources and ports.
    AssignedPodDelete,
}

/// Every event: what a plugin that does not say otherwise is woken by.
pub const ALL_EVENTS: &[ClusterEvent] = &[
    ClusterEvent::NodeAdd,
    ClusterEvent::NodeUpdate,
    ClusterEvent::AssignedPodAdd,
    ClusterEvent::AssignedPodUpdate,
    ClusterEvent::AssignedPodDelete,
];

/// A node added or changed: all that can make a node-only check pass
/// (NodeAffinity, TaintToleration, NodeUnschedulable).
pub const NODE_EVENTS: &[ClusterEvent] = &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate];

/// A node added or changed, or a pod leaving one: all that can free room
/// (NodeResourcesFit, BalancedAllocation).
pub const RESOURCE_EVENTS: &[ClusterEvent] = &[
    ClusterEvent::NodeAdd,
    ClusterEvent::NodeUpdate,
    ClusterEvent::AssignedPodDelete,
];

/// A scheduling plugin: its name and the extension points it implements.
pub trait Plugin: Send + Sync {
    /// The name profiles use for it (`NodeResourcesFit`).
    fn name(&self) -> &'static str;

    /// The events that may make a pod this plugin rejected fit again
    /// (kube-scheduler's `EventsToRegister`).
    fn events(&self) -> &'static [ClusterEvent] {
        ALL_EVENTS
    }

    /// Its PreFilter, if it has one.
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    /// Its Filter, if it has one.
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    /// Its PostFilter, if it has one.
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    /// Its PreScore, if it has one.
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    /// Its Score (with NormalizeScore), if it has one.
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    /// Its Reserve/Unreserve, if it has one.
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    /// Its Permit, if it has one.
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
}

/// Implements [`Plugin`] for a plugin type: its name, the events that may
/// make a pod it rejected fit (every event when left out), and the extension
/// points it serves — each one a trait the type implements:
///
/// ```ignore
/// impl_plugin!(NodeAffinity, NAME, events: NODE_EVENTS, [filter, score]);
/// ```
macro_rules! impl_plugin {
    ($plugin:ty, $name:expr, events: $events:expr, [$($point:ident),* $(,)?]) => {
        impl $crate::framework::Plugin for $plugin {
            fn name(&self) -> &'static str {
                $name
            }
            fn events(&self) -> &'static [$crate::framework::ClusterEvent] {
                $events
            }
            $($crate::framework::impl_plugin!(@point $point);)*
        }
    };
    ($plugin:ty, $name:expr, [$($point:ident),* $(,)?]) => {
        impl $crate::framework::Plugin for $plugin {
            fn name(&self) -> &'static str {
                $name
            }
            $($crate::framework::impl_plugin!(@point $point);)*
        }
    };
    (@point pre_filter) => {
        fn as_pre_filter(&self) -> Option<&dyn $crate::framework::PreFilterPlugin> {
            Some(self)
        }
    };
    (@point filter) => {
        fn as_filter(&self) -> Option<&dyn $crate::framework::FilterPlugin> {
            Some(self)
        }
    };
    (@point post_filter) => {
        fn as_post_filter(&self) -> Option<&dyn $crate::framework::PostFilterPlugin> {
            Some(self)
        }
    };
    (@point pre_score) => {
        fn as_pre_score(&self) -> Option<&dyn $crate::framework::PreScorePlugin> {
            Some(self)
        }
    };
    (@point score) => {
        fn as_score(&self) -> Option<&dyn $crate::framework::ScorePlugin> {
            Some(self)
        }
    };
    (@point reserve) => {
        fn as_reserve(&self) -> Option<&dyn $crate::framework::ReservePlugin> {
            Some(self)
        }
    };
    (@point permit) => {
        fn as_permit(&self) -> Option<&dyn $crate::framework::PermitPlugin> {
            Some(self)
        }
    };
}
pub(crate) use impl_plugin;

/// Checks or precomputes something about the pod once per cycle.
pub trait PreFilterPlugin {
    /// Success to go on, Skip to skip this plugin's Filter, or a rejection
    /// that applies to every node.
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status;
}

/// Whether the pod can run on one node.
pub trait FilterPlugin {
    /// Success when the pod fits `node`.
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// Runs the filters of a framework on a node; given to PostFilter plugins so
/// preemption can ask "would the pod fit if these pods were gone?".
pub trait NodeFilter {
    /// The combined status of every Filter plugin on `node`.
    fn run_filters(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// What a PostFilter found: a node the pod may fit on once `victims` are gone.
#[derive(Clone, Debug)]
pub struct PostFilterResult {
    /// The node to nominate (`status.nominatedNodeName`).
    pub nominated_node_name: String,
    /// The pods to evict from it, lowest priority first.
    pub victims: Vec<Arc<PodInfo>>,
}

/// Runs when no node fits, to make one fit (preemption).
pub trait PostFilterPlugin {
    /// A nominated node and victims, or why there is none.
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &HashMap<String, Status>,
        filters: &dyn NodeFilter,
    ) -> Result<PostFilterResult, Status>;
}

/// Precomputes scoring data over the feasible nodes.
pub trait PreScorePlugin {
    /// Success, Skip (skip this plugin's Score) or Error.
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status;
}

/// Ranks feasible nodes.
pub trait ScorePlugin {
    /// The node's raw score.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;

    /// Brings raw scores into 0..=[`MAX_NODE_SCORE`]; the default leaves them.
    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) -> Status {
        Status::success()
    }
}

/// Holds (and releases) something for the pod on its chosen node.
pub trait ReservePlugin {
    /// Reserves; a failure aborts the cycle and unreserves.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str) -> Status;
    /// Undoes `reserve`; must not fail.
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str);
}

/// Lets a pod go on to binding, or rejects it at the last moment.
pub trait PermitPlugin {
    /// Success to bind, a rejection to unreserve and retry later.
    fn permit(&self, state: &CycleState, pod: &PodInfo, node_name: &str) -> Status;
}

/// Work before binding (volumes, in kube-scheduler), off the scheduling loop.
#[async_trait]
pub trait PreBindPlugin: Send + Sync {
    /// Success to go on binding.
    async fn pre_bind(&self, pod: &Pod, node_name: &str) -> Status;
}

/// Binds the pod to the node; the first binder that does not Skip wins.
#[async_trait]
pub trait BindPlugin: Send + Sync {
    /// Success once bound, Skip to leave it to the next binder.
    async fn bind(&self, pod: &Pod, node_name: &str) -> Status;
}
