//! NodeResourcesFit: a pod fits a node when, for every resource it requests
//! (cpu, memory, ephemeral-storage, extended resources) and for the pod count,
//! what is allocatable minus what the node's pods request leaves room for it.
//! Scoring ranks nodes by how allocated they would be, with one of
//! kube-scheduler's strategies:
//! - `LeastAllocated` (default): `(allocatable - requested) * 100 / allocatable`,
//!   spreading pods;
//! - `MostAllocated`: `requested * 100 / allocatable`, packing them;
//! - `RequestedToCapacityRatio`: a piecewise-linear `shape` of
//!   (utilization %, score 0–10) points.
//!
//! Each resource's score is weighted (`resources: [{name, weight}]`, default
//! cpu and memory with weight 1); cpu and memory count containers without
//! requests as 100m/200Mi, as kube-scheduler does.

use serde::Deserialize;

use super::helpers::default_weight;
use crate::framework::{
    impl_plugin, CycleState, FilterPlugin, NodeInfo, PodInfo, Reason, ScorePlugin, Status,
    MAX_NODE_SCORE, RESOURCE_EVENTS,
};

/// The plugin's name in profiles.
pub const NAME: &str = "NodeResourcesFit";

/// `scoringStrategy.type`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum ScoringStrategyType {
    /// Favour the emptiest nodes.
    #[default]
    LeastAllocated,
    /// Favour the fullest nodes.
    MostAllocated,
    /// Score by a shape over utilization.
    RequestedToCapacityRatio,
}

/// One weighted resource of a scoring strategy.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ResourceSpec {
    /// The resource's name (`cpu`, `memory`, `example.com/gpu`).
    pub name: String,
    /// Its weight (default 1).
    #[serde(default = "default_weight")]
    pub weight: i64,
}

/// One point of a RequestedToCapacityRatio shape.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct UtilizationShapePoint {
    /// Utilization in percent, 0–100.
    pub utilization: i64,
    /// Score at that utilization, 0–10.
    pub score: i64,
}

/// `requestedToCapacityRatio`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct RequestedToCapacityRatioParam {
    /// The shape's points, by increasing utilization.
    pub shape: Vec<UtilizationShapePoint>,
}

/// `scoringStrategy`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScoringStrategy {
    /// Which strategy.
    #[serde(rename = "type", default)]
    pub kind: ScoringStrategyType,
    /// The resources scored, with weights.
    #[serde(default = "default_resources")]
    pub resources: Vec<ResourceSpec>,
    /// The shape, for RequestedToCapacityRatio.
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

impl Default for ScoringStrategy {
    fn default() -> ScoringStrategy {
        ScoringStrategy {
            kind: ScoringStrategyType::LeastAllocated,
            resources: default_resources(),
            requested_to_capacity_ratio: None,
        }
    }
}

/// cpu and memory, weight 1 each.
pub(crate) fn default_resources() -> Vec<ResourceSpec> {
    ["cpu", "memory"]
        .map(|name| ResourceSpec {
            name: name.into(),
            weight: 1,
        })
        .to_vec()
}

/// `NodeResourcesFitArgs`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeResourcesFitArgs {
    /// Resources not checked when filtering.
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    /// How nodes are scored.
    #[serde(default)]
    pub scoring_strategy: ScoringStrategy,
}

/// The NodeResourcesFit plugin.
pub struct NodeResourcesFit {
    args: NodeResourcesFitArgs,
}

impl NodeResourcesFit {
    /// The plugin with validated args.
    pub fn new(args: NodeResourcesFitArgs) -> Result<NodeResourcesFit, String> {
        let strategy = &args.scoring_strategy;
        for resource in &strategy.resources {
            if !(1..=100).contains(&resource.weight) {
                return Err(format!(
                    "scoringStrategy.resources[{}].weight: must be in the range [1, 100], got {}",
                    resource.name, resource.weight
                ));
            }
        }
        if strategy.kind == ScoringStrategyType::RequestedToCapacityRatio {
            let shape = strategy
                .requested_to_capacity_ratio
                .as_ref()
                .map(|r| r.shape.as_slice())
                .unwrap_or_default();
            if shape.is_empty() {
                return Err("scoringStrategy.requestedToCapacityRatio.shape: at least one point is required".into());
            }
            for (i, point) in shape.iter().enumerate() {
                if !(0..=100).contains(&point.utilization) || !(0..=10).contains(&point.score) {
                    return Err(format!(
                        "scoringStrategy.requestedToCapacityRatio.shape[{i}]: utilization must be in [0, 100] and score in [0, 10]"
                    ));
                }
                if i > 0 && shape[i - 1].utilization >= point.utilization {
                    return Err(format!(
                        "scoringStrategy.requestedToCapacityRatio.shape[{i}].utilization: values must be sorted in increasing order"
                    ));
                }
            }
        }
        Ok(NodeResourcesFit { args })
    }
}

impl_plugin!(NodeResourcesFit, NAME, events: RESOURCE_EVENTS, [filter, score]);

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient_resources(pod, node, &self.args.ignored_resources);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::new(crate::framework::Code::Unschedulable, reasons)
        }
    }
}

/// Kubernetes' reasons for each resource that does not fit: `Too many pods`,
/// `Insufficient cpu`, `Insufficient memory`, `Insufficient <name>`.
pub(crate) fn insufficient_resources(
    pod: &PodInfo,
    node: &NodeInfo,
    ignored: &[String],
) -> Vec<Reason> {
    let mut reasons: Vec<Reason> = Vec::new();
    let allocatable = node.allocatable();
    let requested = node.requested();
    if node.pods().len() as i64 + 1 > allocatable.allowed_pod_number {
        reasons.push("Too many pods".into());
    }
    let asks = &pod.requests;
    let mut check = |name: &str, ask: i64, allocatable: i64, requested: i64| {
        if ask > 0 && ask > allocatable - requested && !ignored.iter().any(|i| i == name) {
            let reason = match name {
                "cpu" => "Insufficient cpu".into(),
                "memory" => "Insufficient memory".into(),
                other => format!("Insufficient {other}").into(),
            };
            reasons.push(reason);
        }
    };
    check(
        "cpu",
        asks.milli_cpu,
        allocatable.milli_cpu,
        requested.milli_cpu,
    );
    check("memory", asks.memory, allocatable.memory, requested.memory);
    check(
        "ephemeral-storage",
        asks.ephemeral_storage,
        allocatable.ephemeral_storage,
        requested.ephemeral_storage,
    );
    for (name, &ask) in &asks.scalar {
        check(name, ask, allocatable.get(name), requested.get(name));
    }
    reasons
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let strategy = &self.args.scoring_strategy;
        let shape = strategy
            .requested_to_capacity_ratio
            .as_ref()
            .map(|r| r.shape.as_slice())
            .unwrap_or_default();
        Ok(weighted_score(
            &strategy.resources,
            pod,
            node,
            false,
            |requested, allocatable| match strategy.kind {
                ScoringStrategyType::LeastAllocated => least_allocated(requested, allocatable),
                ScoringStrategyType::MostAllocated => most_allocated(requested, allocatable),
                ScoringStrategyType::RequestedToCapacityRatio => {
                    requested_to_capacity_ratio(shape, requested, allocatable)
                }
            },
        ))
    }
}

/// What the node would have requested of `name` with the pod on it, and its
/// allocatable; cpu and memory count non-zero requests unless `use_requested`.
pub(crate) fn requested_and_allocatable(
    name: &str,
    pod: &PodInfo,
    node: &NodeInfo,
    use_requested: bool,
) -> (i64, i64) {
    let (node_requested, pod_requested) = if !use_requested && (name == "cpu" || name == "memory") {
        (node.non_zero_requested(), &pod.non_zero_requests)
    } else {
        (node.requested(), &pod.requests)
    };
    (
        node_requested.get(name) + pod_requested.get(name),
        node.allocatable().get(name),
    )
}

/// The weighted mean of `scorer` over the resources the node has.
pub(crate) fn weighted_score(
    resources: &[super::node_resources_fit::ResourceSpec],
    pod: &PodInfo,
    node: &NodeInfo,
    use_requested: bool,
    scorer: impl Fn(i64, i64) -> i64,
) -> i64 {
    let (mut total, mut weights) = (0, 0);
    for resource in resources {
        let (requested, allocatable) =
            requested_and_allocatable(&resource.name, pod, node, use_requested);
        if allocatable == 0 {
            continue;
        }
        total += scorer(requested, allocatable) * resource.weight;
        weights += resource.weight;
    }
    if weights == 0 {
        0
    } else {
        total / weights
    }
}

fn least_allocated(requested: i64, allocatable: i64) -> i64 {
    if allocatable == 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * MAX_NODE_SCORE / allocatable
}

fn most_allocated(requested: i64, allocatable: i64) -> i64 {
    if allocatable == 0 {
        return 0;
    }
    requested.min(allocatable) * MAX_NODE_SCORE / allocatable
}

/// The shape's score (scaled from 0–10 to 0–100) at this utilization,
/// linear between points and flat beyond the ends.
fn requested_to_capacity_ratio(
    shape: &[super::node_resources_fit::UtilizationShapePoint],
    requested: i64,
    allocatable: i64,
) -> i64 {
    if allocatable == 0 || requested > allocatable || shape.is_empty() {
        return shape.last().map_or(0, |p| p.score * 10);
    }
    let utilization = requested * 100 / allocatable;
    let scale = MAX_NODE_SCORE / 10;
    if utilization <= shape[0].utilization {
        return shape[0].score * scale;
    }
    for pair in shape.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if utilization <= b.utilization {
            let (sa, sb) = (a.score * scale, b.score * scale);
            return sa
                + (sb - sa) * (utilization - a.utilization) / (b.utilization - a.utilization);
        }
    }
    shape[shape.len() - 1].score * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{filter_statuses, node, pod, score_in, snapshot, NodeExt, PodExt};

    fn plugin(args: serde_json::Value) -> NodeResourcesFit {
        NodeResourcesFit::new(serde_json::from_value(args).expect("valid args"))
            .expect("valid args")
    }

    #[test]
    fn a_pod_fits_only_where_every_requested_resource_has_room() {
        let nodes = [
            node("big"),
            node("small").allocatable("cpu", "1"),
            node("tiny-mem").allocatable("memory", "1Gi"),
            node("full").allocatable("pods", "1"),
            node("gpu").allocatable("example.com/gpu", "2"),
        ];
        let existing = [pod("old").node_name("full")];
        let snapshot = snapshot(&nodes, &existing);
        let asking = pod("p").request("cpu", "2").request("memory", "2Gi");
        let reasons: Vec<Vec<String>> =
            filter_statuses(&plugin(serde_json::json!({})), &asking, &snapshot)
                .iter()
                .map(|s| s.reasons().iter().map(|r| r.to_string()).collect())
                .collect();
        assert_eq!(
            reasons,
            [
                vec![],
                vec!["Insufficient cpu".to_string()],
                vec!["Insufficient memory".to_string()],
                vec!["Too many pods".to_string()],
                vec![],
            ]
        );
        let gpu = pod("g").request("example.com/gpu", "1");
        let fits: Vec<bool> = filter_statuses(&plugin(serde_json::json!({})), &gpu, &snapshot)
            .iter()
            .map(Status::is_success)
            .collect();
        assert_eq!(fits, [false, false, false, false, true]);
    }

    #[test]
    fn requests_already_on_the_node_count_against_it() {
        let nodes = [node("a"), node("b")];
        let existing = [pod("x").node_name("a").request("cpu", "3500m")];
        let asking = pod("p").request("cpu", "1");
        let fits: Vec<bool> = filter_statuses(
            &plugin(serde_json::json!({})),
            &asking,
            &snapshot(&nodes, &existing),
        )
        .iter()
        .map(Status::is_success)
        .collect();
        assert_eq!(fits, [false, true]);
    }

    #[test]
    fn scoring_strategies_rank_nodes_as_kube_scheduler_does() {
        // a: 3 of 4 cpu used, b: empty; memory equal (8Gi, pod asks 1Gi).
        let nodes = [node("a"), node("b")];
        let existing = [pod("x")
            .node_name("a")
            .request("cpu", "3")
            .request("memory", "1Gi")];
        let snapshot = snapshot(&nodes, &existing);
        let asking = pod("p").request("cpu", "1").request("memory", "1Gi");
        let cpu_only = serde_json::json!([{"name": "cpu", "weight": 1}]);
        let least = plugin(
            serde_json::json!({"scoringStrategy": {"type": "LeastAllocated", "resources": cpu_only}}),
        );
        assert_eq!(score_in(&least, &asking, &snapshot), [0, 75]);
        let most = plugin(
            serde_json::json!({"scoringStrategy": {"type": "MostAllocated", "resources": cpu_only}}),
        );
        assert_eq!(score_in(&most, &asking, &snapshot), [100, 25]);
        let ratio = plugin(serde_json::json!({"scoringStrategy": {
            "type": "RequestedToCapacityRatio", "resources": cpu_only,
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}}));
        assert_eq!(score_in(&ratio, &asking, &snapshot), [100, 25]);
        // Default: cpu and memory, weight 1 each: a = (0 + 75) / 2, b = (75 + 87) / 2.
        assert_eq!(
            score_in(&plugin(serde_json::json!({})), &asking, &snapshot),
            [37, 81]
        );
    }

    #[test]
    fn weights_out_of_range_are_refused() {
        let args =
            serde_json::json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 101}]}});
        let error = NodeResourcesFit::new(serde_json::from_value(args).expect("parses"))
            .err()
            .expect("refused");
        assert!(error.contains("weight"), "{error}");
    }
}
