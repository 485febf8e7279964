//! The scheduling framework: the extension points as traits, the data a cycle
//! reads (`NodeInfo`, `PodInfo`, `Snapshot`), what plugins answer (`Status`)
//! and pass between points (`CycleState`), and the runtime that runs one
//! profile's plugins in order (`Framework`).
//!
//! # Layout
//! - `interface`: the [`Plugin`] trait and one trait per extension point,
//!   and `impl_plugin!`, which declares the points a plugin serves.
//! - `runtime`: [`Framework`], a cycle from PreFilter to selecting a node,
//!   with `percentageOfNodesToScore`; [`FitError`] and its message.
//! - `node_info`: [`NodeInfo`] and [`PodInfo`] with precomputed requests.
//! - `label_index`: [`LabelIndex`], node labels numbered, so topology
//!   domains are compared as small integers.
//! - `snapshot`: [`Snapshot`], the nodes one cycle sees, with nominations
//!   and PodDisruptionBudgets.
//! - `nominator`: [`Nominator`], pods nominated to nodes by preemption, and
//!   [`with_nominated_pods`], filtering as if they were already there.
//! - `resource`: [`Resource`] amounts and how a pod's request is summed.
//! - `status`, `cycle_state`: [`Status`] with its [`Code`], and [`CycleState`].
//!
//! # Caveats
//! Permit cannot make a pod wait; PreFilter cannot narrow the node list
//! (`PreFilterResult`); PreFilter extensions (AddPod/RemovePod) are not
//! offered, so preemption re-checks nodes with state computed before the
//! victims were taken away, and pods nominated to a node are added to its
//! `NodeInfo` only (PodTopologySpread and InterPodAffinity do not count
//! them). Filtering runs on one thread: at 5,000 nodes a
//! cycle filters 500 of them (10%), which one core does in well under a
//! millisecond, so fanning out would cost more than it saves on two cores.

mod cycle_state;
mod interface;
mod label_index;
mod node_info;
mod nominator;
mod resource;
mod runtime;
mod snapshot;
mod status;

pub use cycle_state::CycleState;
pub(crate) use interface::impl_plugin;
pub use interface::{
    BindPlugin, ClusterEvent, FilterPlugin, NodeFilter, PermitPlugin, Plugin, PostFilterPlugin,
    PostFilterResult, PreBindPlugin, PreFilterPlugin, PreScorePlugin, ReservePlugin, ScorePlugin,
    ALL_EVENTS, MAX_NODE_SCORE, NODE_EVENTS, RESOURCE_EVENTS,
};
pub use label_index::{LabelIndex, LabelKey, LabelValue};
pub use node_info::{pod_key, HostPort, NodeInfo, PodInfo};
pub use nominator::{with_nominated_pods, Nominator};
pub use resource::Resource;
pub use runtime::{num_feasible_nodes_to_find, FitError, Framework, ScheduleResult};
pub use snapshot::Snapshot;
pub use status::{Code, Reason, Status};
