//! Kubernetes' in-tree plugins, one module each, named as in the config, and
//! the registry that builds a plugin from its name and args.
//!
//! # Layout
//! - `node_name`, `node_unschedulable`, `taint_toleration`, `node_affinity`,
//!   `node_ports`: per-node checks (and scores).
//! - `node_resources_fit`, `balanced_allocation`: requests against allocatable.
//! - `inter_pod_affinity`, `pod_topology_spread`: placement relative to other pods.
//! - `default_preemption`: the PostFilter that evicts lower-priority pods.
//! - `helpers`: label selectors, node selector terms, tolerations.
//! - `tally`: per-node sums kept from cycle to cycle, recounted where nodes changed.
//!
//! The ECS placement plugin lives in `crate::ecs` and is registered here too.

use std::sync::Arc;

use crate::framework::Plugin;

pub mod balanced_allocation;
pub mod default_preemption;
pub(crate) mod helpers;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
mod tally;

/// The queue-sort plugin's name: the queue orders by priority, then age.
pub const PRIORITY_SORT: &str = "PrioritySort";
/// The binder's name: binding goes through the API (`pods/binding`).
pub const DEFAULT_BINDER: &str = "DefaultBinder";

/// The default profile's plugins with their score weights, in kube-scheduler's
/// order and with its weights.
pub const DEFAULT_PLUGINS: &[(&str, i64)] = &[
    (node_unschedulable::NAME, 1),
    (node_name::NAME, 1),
    (taint_toleration::NAME, 3),
    (node_affinity::NAME, 2),
    (node_ports::NAME, 1),
    (node_resources_fit::NAME, 1),
    (pod_topology_spread::NAME, 2),
    (inter_pod_affinity::NAME, 2),
    (default_preemption::NAME, 1),
    (balanced_allocation::NAME, 1),
];

/// Every plugin name a profile may use.
pub fn known_plugins() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = DEFAULT_PLUGINS.iter().map(|(n, _)| *n).collect();
    names.extend([crate::ecs::NAME, PRIORITY_SORT, DEFAULT_BINDER]);
    names
}

/// Builds the plugin `name` from its args (`pluginConfig[].args`); the error
/// says what is wrong with the args.
pub fn build(
    name: &str,
    args: Option<&serde_json::Value>,
    seed: u64,
) -> Result<Option<Arc<dyn Plugin>>, String> {
    fn parse<T: serde::de::DeserializeOwned + Default>(
        args: Option<&serde_json::Value>,
    ) -> Result<T, String> {
        match args {
            None => Ok(T::default()),
            Some(value) => serde_json::from_value(value.clone()).map_err(|e| e.to_string()),
        }
    }
    let plugin: Arc<dyn Plugin> = match name {
        node_unschedulable::NAME => Arc::new(node_unschedulable::NodeUnschedulable),
        node_name::NAME => Arc::new(node_name::NodeName),
        taint_toleration::NAME => Arc::new(taint_toleration::TaintToleration),
        node_affinity::NAME => Arc::new(node_affinity::NodeAffinity),
        node_ports::NAME => Arc::new(node_ports::NodePorts),
        node_resources_fit::NAME => {
            Arc::new(node_resources_fit::NodeResourcesFit::new(parse(args)?)?)
        }
        balanced_allocation::NAME => {
            Arc::new(balanced_allocation::BalancedAllocation::new(parse(args)?))
        }
        inter_pod_affinity::NAME => Arc::new(inter_pod_affinity::InterPodAffinity::new()),
        pod_topology_spread::NAME => Arc::new(pod_topology_spread::PodTopologySpread::new()),
        default_preemption::NAME => Arc::new(default_preemption::DefaultPreemption),
        crate::ecs::NAME => Arc::new(crate::ecs::EcsPlacement::new(parse(args)?, seed)?),
        // Served by the queue and the shell, not by a framework plugin.
        PRIORITY_SORT | DEFAULT_BINDER => return Ok(None),
        other => return Err(format!("unknown plugin {other:?}")),
    };
    Ok(Some(plugin))
}
