//! Amazon ECS's task placement, as one plugin of the same framework:
//! placement *constraints* filter nodes and placement *strategies* rank them.
//!
//! A profile turns it on with `EcsPlacement` (and usually disables the other
//! score plugins, so the strategies decide alone); its args give the defaults
//! (`placementStrategy`, `placementConstraints`, in ECS's API shape), and a pod
//! may bring its own in annotations, as JSON in the same shape:
//!
//! - [`STRATEGY_ANNOTATION`] (`ecs.skiff.dev/placement-strategy`):
//!   `[{"type":"spread","field":"attribute:topology.kubernetes.io/zone"},{"type":"binpack","field":"memory"}]`
//!   replaces the profile's strategies;
//! - [`CONSTRAINTS_ANNOTATION`] (`ecs.skiff.dev/placement-constraints`):
//!   `[{"type":"distinctInstance"},{"type":"memberOf","expression":"attribute:node.kubernetes.io/instance-type =~ t2.*"}]`
//!   adds to the profile's constraints;
//! - [`GROUP_ANNOTATION`] (`ecs.skiff.dev/group`): the pods that spread and
//!   distinctInstance count together (ECS's service or task group). Without
//!   it, a pod's group is the pods of its namespace with exactly its labels.
//!
//! How strategies become scores: every feasible node gets a key per strategy
//! (binpack: what is left of cpu/memory after the pod; spread: the group's
//! pods in the node's domain; random: a random number), nodes are sorted by
//! the keys in order, and the score falls with the rank — so the first
//! strategy decides and each next one only breaks ties, as in ECS.
//!
//! # Layout
//! - `query`: the cluster query language parser, with positioned errors.
//! - `strategy`: binpack, spread and random as sort keys.
//! - `constraint`: distinctInstance and memberOf.
//!
//! # Caveats
//! Strategies are best effort, as in ECS: they only rank nodes that pass
//! every filter, Kubernetes' included.

pub mod constraint;
pub mod query;
pub mod strategy;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Deserialize;

use crate::framework::{
    impl_plugin, CycleState, FilterPlugin, NodeInfo, PodInfo, PreFilterPlugin, PreScorePlugin,
    ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};
use constraint::{PlacementConstraint, PlacementConstraintSpec};
use strategy::PlacementStrategy;

/// The plugin's name in profiles.
pub const NAME: &str = "EcsPlacement";
/// The pod annotation with its placement strategies (JSON list).
pub const STRATEGY_ANNOTATION: &str = "ecs.skiff.dev/placement-strategy";
/// The pod annotation with its placement constraints (JSON list).
pub const CONSTRAINTS_ANNOTATION: &str = "ecs.skiff.dev/placement-constraints";
/// The pod annotation naming its group.
pub const GROUP_ANNOTATION: &str = "ecs.skiff.dev/group";

/// `EcsPlacementArgs`: the profile's defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EcsPlacementArgs {
    /// Strategies for pods without the strategy annotation.
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    /// Constraints every pod of the profile gets.
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraintSpec>,
}

/// The pods a pod is placed relative to.
#[derive(Clone, Debug)]
pub(crate) enum Group {
    /// Pods with the same `ecs.skiff.dev/group` annotation.
    Named(String),
    /// Pods without a group annotation and with exactly these labels.
    Labels(BTreeMap<String, String>),
}

impl Group {
    fn of(pod: &PodInfo) -> Group {
        let meta = &pod.pod.metadata;
        match meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(GROUP_ANNOTATION))
        {
            Some(name) => Group::Named(name.clone()),
            None => Group::Labels(meta.labels.clone().unwrap_or_default()),
        }
    }

    /// Whether `other` belongs to `pod`'s group.
    pub(crate) fn contains(&self, pod: &PodInfo, other: &PodInfo) -> bool {
        if other.namespace() != pod.namespace() || other.key == pod.key {
            return false;
        }
        let annotation = other
            .pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(GROUP_ANNOTATION));
        match self {
            Group::Named(name) => annotation == Some(name),
            Group::Labels(labels) => {
                annotation.is_none()
                    && other
                        .pod
                        .metadata
                        .labels
                        .as_ref()
                        .map_or(labels.is_empty(), |l| l == labels)
            }
        }
    }
}

/// The EcsPlacement plugin.
pub struct EcsPlacement {
    args: EcsPlacementArgs,
    rng: Mutex<StdRng>,
}

impl EcsPlacement {
    /// The plugin with validated defaults; the error names the bad entry.
    pub fn new(args: EcsPlacementArgs, seed: u64) -> Result<EcsPlacement, String> {
        for (i, s) in args.placement_strategy.iter().enumerate() {
            s.validate()
                .map_err(|e| format!("placementStrategy[{i}]: {e}"))?;
        }
        for (i, c) in args.placement_constraints.iter().enumerate() {
            c.compile()
                .map_err(|e| format!("placementConstraints[{i}].expression: {e}"))?;
        }
        Ok(EcsPlacement {
            args,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        })
    }

    /// The pod's strategies and constraints: the profile's, overridden or
    /// extended by its annotations.
    fn placement(&self, pod: &PodInfo) -> Result<Placement, String> {
        let annotations = pod.pod.metadata.annotations.as_ref();
        let strategies = match annotations.and_then(|a| a.get(STRATEGY_ANNOTATION)) {
            None => self.args.placement_strategy.clone(),
            Some(json) => {
                let list: Vec<PlacementStrategy> = serde_json::from_str(json)
                    .map_err(|e| format!("invalid {STRATEGY_ANNOTATION}: {e}"))?;
                for (i, s) in list.iter().enumerate() {
                    s.validate()
                        .map_err(|e| format!("invalid {STRATEGY_ANNOTATION}: [{i}]: {e}"))?;
                }
                list
            }
        };
        let mut specs = self.args.placement_constraints.clone();
        if let Some(json) = annotations.and_then(|a| a.get(CONSTRAINTS_ANNOTATION)) {
            let list: Vec<PlacementConstraintSpec> = serde_json::from_str(json)
                .map_err(|e| format!("invalid {CONSTRAINTS_ANNOTATION}: {e}"))?;
            specs.extend(list);
        }
        let constraints = specs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.compile()
                    .map_err(|e| format!("invalid {CONSTRAINTS_ANNOTATION}: [{i}].expression: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Placement {
            strategies,
            constraints,
            group: Group::of(pod),
        })
    }
}

/// What the plugin decided for the pod in PreFilter.
struct Placement {
    strategies: Vec<PlacementStrategy>,
    constraints: Vec<PlacementConstraint>,
    group: Group,
}

/// Each feasible node's score, from its rank.
struct Ranks(HashMap<String, i64>);

impl_plugin!(EcsPlacement, NAME, [pre_filter, filter, pre_score, score]);

impl PreFilterPlugin for EcsPlacement {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, _: &Snapshot) -> Status {
        match self.placement(pod) {
            Ok(placement) => {
                state.write(NAME, placement);
                Status::success()
            }
            Err(message) => Status::unresolvable(message),
        }
    }
}

impl FilterPlugin for EcsPlacement {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(placement) = state.read::<Placement>(NAME) else {
            return Status::error("EcsPlacement: no PreFilter state");
        };
        for constraint in &placement.constraints {
            match constraint {
                PlacementConstraint::DistinctInstance => {
                    if node.pods().iter().any(|p| placement.group.contains(pod, p)) {
                        return Status::unschedulable(
                            "node(s) already ran a pod of the group (distinctInstance)",
                        );
                    }
                }
                PlacementConstraint::MemberOf(expression, text) => {
                    let no_labels = std::collections::BTreeMap::new();
                    let labels = node.node().metadata.labels.as_ref().unwrap_or(&no_labels);
                    if !expression.matches(labels) {
                        return Status::unresolvable(format!(
                            "node(s) didn't match memberOf({text})"
                        ));
                    }
                }
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for EcsPlacement {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        let Some(placement) = state.read::<Placement>(NAME) else {
            return Status::error("EcsPlacement: no PreFilter state");
        };
        if placement.strategies.is_empty() {
            return Status::skip();
        }
        let spread =
            strategy::spread_counts(&placement.strategies, &placement.group, pod, snapshot);
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut keyed: Vec<(Vec<i64>, &str)> = nodes
            .iter()
            .map(|n| {
                (
                    strategy::sort_key(&placement.strategies, &spread, pod, n, &mut *rng),
                    n.name(),
                )
            })
            .collect();
        keyed.sort();
        // Equal keys share a rank; the best rank scores MAX_NODE_SCORE.
        let mut ranks = HashMap::with_capacity(keyed.len());
        let mut rank = 0;
        for i in 0..keyed.len() {
            if i > 0 && keyed[i].0 != keyed[i - 1].0 {
                rank += 1;
            }
            ranks.insert(keyed[i].1.to_string(), rank);
        }
        let worst = rank.max(1);
        let scores = ranks
            .into_iter()
            .map(|(name, rank)| (name, MAX_NODE_SCORE * (worst - rank) / worst))
            .collect();
        state.write("EcsPlacement/ranks", Ranks(scores));
        Status::success()
    }
}

impl ScorePlugin for EcsPlacement {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(Ranks(scores)) = state.read::<Ranks>("EcsPlacement/ranks") else {
            return Err(Status::error("EcsPlacement: no PreScore state"));
        };
        Ok(scores.get(node.name()).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests;
