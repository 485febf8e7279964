//! NodeResourcesBalancedAllocation: favours nodes where, with the pod on them,
//! cpu and memory (by default) would be used in similar fractions —
//! `(1 - standard deviation of the fractions) * 100`, as kube-scheduler's
//! `balancedResourceScorer`, over what pods actually request.

use serde::Deserialize;

use super::node_resources_fit::{default_resources, requested_and_allocatable, ResourceSpec};
use crate::framework::{
    impl_plugin, CycleState, NodeInfo, PodInfo, ScorePlugin, Status, MAX_NODE_SCORE,
    RESOURCE_EVENTS,
};

/// The plugin's name in profiles.
pub const NAME: &str = "NodeResourcesBalancedAllocation";

/// `NodeResourcesBalancedAllocationArgs`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BalancedAllocationArgs {
    /// The resources to balance (default cpu and memory).
    #[serde(default = "default_resources")]
    pub resources: Vec<ResourceSpec>,
}

impl Default for BalancedAllocationArgs {
    fn default() -> Self {
        BalancedAllocationArgs {
            resources: default_resources(),
        }
    }
}

/// The BalancedAllocation plugin.
pub struct BalancedAllocation {
    args: BalancedAllocationArgs,
}

impl BalancedAllocation {
    /// The plugin with its args.
    pub fn new(args: BalancedAllocationArgs) -> BalancedAllocation {
        BalancedAllocation { args }
    }
}

impl_plugin!(BalancedAllocation, NAME, events: RESOURCE_EVENTS, [score]);

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        // The fractions are computed twice (mean, then deviation) rather
        // than collected: this runs for every feasible node of every cycle.
        let fractions = || {
            self.args.resources.iter().filter_map(|r| {
                let (requested, allocatable) = requested_and_allocatable(&r.name, pod, node, true);
                (allocatable > 0).then(|| (requested as f64 / allocatable as f64).min(1.0))
            })
        };
        let n = fractions().count();
        let std = if n < 2 {
            0.0
        } else {
            let mean = fractions().sum::<f64>() / n as f64;
            (fractions().map(|f| (f - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
        };
        Ok(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, score_in, snapshot, PodExt};

    #[test]
    fn nodes_left_balanced_score_higher() {
        // a: the pod would bring cpu to 50% and memory to 50%; b: cpu 100%, memory 12.5%.
        let nodes = [node("a"), node("b")];
        let existing = [
            pod("x")
                .node_name("a")
                .request("cpu", "1")
                .request("memory", "3Gi"),
            pod("y").node_name("b").request("cpu", "3"),
        ];
        let asking = pod("p").request("cpu", "1").request("memory", "1Gi");
        let plugin = BalancedAllocation::new(BalancedAllocationArgs::default());
        assert_eq!(
            score_in(&plugin, &asking, &snapshot(&nodes, &existing)),
            [100, 56]
        );
    }
}
