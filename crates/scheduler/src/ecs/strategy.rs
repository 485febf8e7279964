//! ECS placement strategies — `binpack`, `spread`, `random` — as sort keys:
//! each strategy gives every feasible node a key, and several strategies in
//! order compare nodes by the first key, then the next (ECS applies them in
//! order, each one breaking the ties of the one before).

use std::collections::HashMap;

use rand::Rng;
use serde::Deserialize;

use super::query::label_for;
use super::Group;
use crate::framework::{NodeInfo, PodInfo, Snapshot};

/// One entry of `placementStrategy`, as ECS's API writes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum PlacementStrategy {
    /// Fill the node with the least of `field` (cpu or memory) left.
    Binpack {
        /// `cpu` or `memory`.
        field: String,
    },
    /// Even out the group's pods over the values of `field`.
    Spread {
        /// `instanceId` / `host` (the node), or `attribute:LABEL`.
        field: String,
    },
    /// Any node.
    Random {
        /// Ignored, as ECS ignores it.
        #[serde(default)]
        field: Option<String>,
    },
}

impl PlacementStrategy {
    /// Checks the field; the error names it.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            PlacementStrategy::Binpack { field } if field != "cpu" && field != "memory" => Err(
                format!("binpack field must be cpu or memory, got {field:?}"),
            ),
            PlacementStrategy::Spread { field } if spread_label(field).is_none() => Err(format!(
                "spread field must be instanceId, host or attribute:NAME, got {field:?}"
            )),
            _ => Ok(()),
        }
    }
}

/// The node label a spread field reads (`instanceId` → the hostname label).
pub(crate) fn spread_label(field: &str) -> Option<&str> {
    match field {
        "instanceId" | "host" => Some("kubernetes.io/hostname"),
        other => other
            .strip_prefix("attribute:")
            .filter(|n| !n.is_empty())
            .map(label_for),
    }
}

/// Per spread strategy, the group's pods per label value, over every node.
pub(crate) fn spread_counts(
    strategies: &[PlacementStrategy],
    group: &Group,
    pod: &PodInfo,
    snapshot: &Snapshot,
) -> Vec<HashMap<String, i64>> {
    let labels: Vec<&str> = strategies
        .iter()
        .filter_map(|s| match s {
            PlacementStrategy::Spread { field } => spread_label(field),
            _ => None,
        })
        .collect();
    let mut counts = vec![HashMap::new(); labels.len()];
    if labels.is_empty() {
        return counts;
    }
    for node in snapshot.nodes() {
        let members = node
            .pods()
            .iter()
            .filter(|p| group.contains(pod, p))
            .count() as i64;
        for (label, count) in labels.iter().zip(counts.iter_mut()) {
            if let Some(value) = node
                .label(label)
                .or_else(|| (*label == "kubernetes.io/hostname").then(|| node.name()))
            {
                *count.entry(value.to_string()).or_insert(0) += members;
            }
        }
    }
    counts
}

/// The node's key under each strategy: lower is better.
pub(crate) fn sort_key(
    strategies: &[PlacementStrategy],
    spread: &[HashMap<String, i64>],
    pod: &PodInfo,
    node: &NodeInfo,
    rng: &mut impl Rng,
) -> Vec<i64> {
    let mut spread = spread.iter();
    strategies
        .iter()
        .map(|strategy| match strategy {
            PlacementStrategy::Binpack { field } => {
                let allocatable = node.allocatable().get(field);
                allocatable - node.requested().get(field) - pod.requests.get(field)
            }
            PlacementStrategy::Spread { field } => {
                let counts = spread.next().expect("one count map per spread strategy");
                let label = spread_label(field).unwrap_or_default();
                let value = node
                    .label(label)
                    .or_else(|| (label == "kubernetes.io/hostname").then(|| node.name()));
                value.map_or(i64::MAX, |v| counts.get(v).copied().unwrap_or(0))
            }
            PlacementStrategy::Random { .. } => rng.random_range(0..i64::MAX),
        })
        .collect()
}
