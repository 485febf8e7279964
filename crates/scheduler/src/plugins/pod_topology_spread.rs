//! PodTopologySpread: keeps the pods a selector picks evenly spread over
//! topology domains (zones, hosts, any node label).
//!
//! For each of the pod's `topologySpreadConstraints`, the *skew* of a domain
//! is the number of matching pods in it (plus one for the incoming pod, if it
//! matches) minus the smallest count among all domains. `DoNotSchedule`
//! constraints refuse a node whose domain would exceed `maxSkew` (Filter);
//! `ScheduleAnyway` constraints only favour the less crowded domains (Score),
//! as kube-scheduler's plugin of the same name. Only nodes that match the
//! pod's node selector and required node affinity count as domains
//! (`nodeAffinityPolicy: Honor`, the default).
//!
//! # Caveats
//! No cluster-level default constraints; `nodeTaintsPolicy` and
//! `matchLabelKeys` are ignored.

use std::sync::Arc;

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use super::helpers::selects;
use super::node_affinity::matches_required;
use super::tally::{Tallies, Tally};
use crate::framework::{
    impl_plugin, CycleState, FilterPlugin, LabelIndex, LabelKey, LabelValue, NodeInfo, PodInfo,
    PreFilterPlugin, PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};

/// The plugin's name in profiles.
pub const NAME: &str = "PodTopologySpread";
/// Kubernetes' reason when the skew would be too large.
pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
/// Kubernetes' reason when the node lacks the topology label.
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// The PodTopologySpread plugin.
pub struct PodTopologySpread {
    tallies: Tallies<SpreadState>,
}

/// The pod's constraints with `whenUnsatisfiable: <when>`.
fn constraints(pod: &PodInfo, when: &str) -> Vec<TopologySpreadConstraint> {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default()
        .iter()
        .filter(|c| c.when_unsatisfiable == when)
        .cloned()
        .collect()
}

/// Matching pods on one node for a constraint.
fn matching_pods(constraint: &TopologySpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> i64 {
    let Some(selector) = constraint.label_selector.as_ref() else {
        return 0;
    };
    node.pods()
        .iter()
        .filter(|p| p.namespace() == pod.namespace() && p.pod.metadata.deletion_timestamp.is_none())
        .filter(|p| selects(selector, p))
        .count() as i64
}

fn self_match(constraint: &TopologySpreadConstraint, pod: &PodInfo) -> i64 {
    let matches = constraint
        .label_selector
        .as_ref()
        .is_some_and(|s| selects(s, pod));
    i64::from(matches)
}

/// What one node adds to the counts: per constraint, its domain (the
/// value of the topology label) and its matching pods; `None` when the node
/// is not an eligible domain.
type Contribution = Option<Vec<(LabelValue, i64)>>;

/// One constraint with its topology key numbered (`None`: no node has had
/// the label).
#[derive(Clone)]
struct Constraint {
    spec: TopologySpreadConstraint,
    key: Option<LabelKey>,
}

fn contribution(pod: &PodInfo, constraints: &[Constraint], node: &NodeInfo) -> Contribution {
    if !matches_required(pod, node.node()) {
        return None;
    }
    constraints
        .iter()
        .map(|c| Some((node.label_value(c.key?)?, matching_pods(&c.spec, pod, node))))
        .collect()
}

/// One domain's matching pods and eligible nodes (a domain lasts while it
/// has a node).
#[derive(Clone, Copy, Default)]
struct Domain {
    pods: i64,
    nodes: i64,
}

/// Per constraint: the domains, indexed by their value's number.
#[derive(Clone)]
struct SpreadState {
    constraints: Vec<Constraint>,
    domains: Vec<Vec<Domain>>,
}

impl SpreadState {
    fn new(constraints: Vec<TopologySpreadConstraint>, labels: &LabelIndex) -> SpreadState {
        let constraints: Vec<Constraint> = constraints
            .into_iter()
            .map(|spec| Constraint {
                key: labels.key(&spec.topology_key),
                spec,
            })
            .collect();
        let domains = (constraints.iter())
            .map(|c| vec![Domain::default(); c.key.map_or(0, |k| labels.value_count(k))])
            .collect();
        SpreadState {
            constraints,
            domains,
        }
    }

    /// Counts over the nodes that are eligible domains for the pod.
    fn count<'n>(
        pod: &PodInfo,
        constraints: Vec<TopologySpreadConstraint>,
        labels: &LabelIndex,
        nodes: impl Iterator<Item = &'n NodeInfo>,
    ) -> SpreadState {
        let mut state = SpreadState::new(constraints, labels);
        for node in nodes {
            state.apply(&contribution(pod, &state.constraints, node), 1);
        }
        state
    }

    /// The domains of constraint `i` that have an eligible node.
    fn live(&self, i: usize) -> impl Iterator<Item = &Domain> {
        self.domains[i].iter().filter(|d| d.nodes > 0)
    }

    /// How many domains constraint `i` has.
    fn domain_count(&self, i: usize) -> usize {
        self.live(i).count()
    }

    /// Matching pods in the domain `value` of constraint `i`.
    fn pods_in(&self, i: usize, value: LabelValue) -> i64 {
        self.domains[i].get(value.index()).map_or(0, |d| d.pods)
    }

    /// The smallest count among domains, 0 when fewer than `minDomains` exist.
    fn min(&self, i: usize) -> i64 {
        let min_domains = self.constraints[i].spec.min_domains.unwrap_or(1) as usize;
        if self.domain_count(i) < min_domains {
            return 0;
        }
        self.live(i).map(|d| d.pods).min().unwrap_or(0)
    }
}

impl Tally for SpreadState {
    type Contribution = Contribution;

    fn apply(&mut self, contribution: &Contribution, sign: i64) {
        let Some(values) = contribution else { return };
        for ((value, pods), domains) in values.iter().zip(self.domains.iter_mut()) {
            // Values numbered after the state was made grow it.
            if domains.len() <= value.index() {
                domains.resize(value.index() + 1, Domain::default());
            }
            let domain = &mut domains[value.index()];
            domain.pods += sign * pods;
            domain.nodes += sign;
        }
    }
}

impl PodTopologySpread {
    /// The plugin, with no counts remembered yet.
    pub fn new() -> PodTopologySpread {
        PodTopologySpread {
            tallies: Tallies::default(),
        }
    }

    /// The DoNotSchedule counts for the pod, kept per kind of pod (same
    /// namespace, constraints and node affinity) and recounted only where
    /// nodes changed since the last pod of that kind. The key also names
    /// the topology keys' numbers: a key no node had when the counts were
    /// made gets counts of its own once a node has it.
    fn hard_counts(
        &self,
        pod: &PodInfo,
        hard: Vec<TopologySpreadConstraint>,
        snapshot: &Snapshot,
    ) -> Arc<SpreadState> {
        let spec = pod.pod.spec.as_ref();
        let numbered: Vec<Option<LabelKey>> = (hard.iter())
            .map(|c| snapshot.labels().key(&c.topology_key))
            .collect();
        let key = serde_json::to_string(&(
            pod.namespace(),
            &hard,
            spec.and_then(|s| s.node_selector.as_ref()),
            spec.and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref()),
        ))
        .unwrap_or_default()
            + &format!("{numbered:?}");
        self.tallies.get(
            key,
            snapshot,
            || SpreadState::new(hard, snapshot.labels()),
            |state, node| contribution(pod, &state.constraints, node),
        )
    }
}

impl Default for PodTopologySpread {
    fn default() -> Self {
        PodTopologySpread::new()
    }
}

/// What Filter reads: the counts, and per constraint the most matching pods
/// a domain may already hold (`maxSkew + min - selfMatch`), computed once
/// per cycle rather than per node.
struct FilterState {
    spread: Arc<SpreadState>,
    limits: Vec<i64>,
}

impl_plugin!(
    PodTopologySpread,
    NAME,
    [pre_filter, filter, pre_score, score]
);

const FILTER_KEY: &str = "PodTopologySpread/filter";
const SCORE_KEY: &str = "PodTopologySpread/score";

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let hard = constraints(pod, "DoNotSchedule");
        if hard.is_empty() {
            return Status::skip();
        }
        let spread = self.hard_counts(pod, hard, snapshot);
        let limits = (spread.constraints.iter().enumerate())
            .map(|(i, c)| i64::from(c.spec.max_skew) + spread.min(i) - self_match(&c.spec, pod))
            .collect();
        state.write(FILTER_KEY, FilterState { spread, limits });
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(FilterState { spread, limits }) = state.read::<FilterState>(FILTER_KEY) else {
            return Status::error("PodTopologySpread: no PreFilter state");
        };
        for (i, c) in spread.constraints.iter().enumerate() {
            let Some(value) = c.key.and_then(|k| node.label_value(k)) else {
                return Status::unresolvable(REASON_MISSING_LABEL);
            };
            // skew = pods_in + selfMatch - min > maxSkew
            if spread.pods_in(i, value) > limits[i] {
                return Status::unschedulable(REASON);
            }
        }
        Status::success()
    }
}

/// Per soft constraint, the counts and the weight kube-scheduler gives it
/// (`log(domains + 2)`, so constraints over more domains weigh more).
struct ScoreState {
    spread: SpreadState,
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        let soft = constraints(pod, "ScheduleAnyway");
        if soft.is_empty() {
            return Status::skip();
        }
        // Per-host constraints only need the feasible nodes; others need all.
        let by_host = soft
            .iter()
            .all(|c| c.topology_key == "kubernetes.io/hostname");
        let labels = snapshot.labels();
        let spread = if by_host {
            SpreadState::count(pod, soft, labels, nodes.iter().copied())
        } else {
            SpreadState::count(pod, soft, labels, snapshot.nodes().iter().map(|n| &**n))
        };
        let weights = (0..spread.constraints.len())
            .map(|i| ((spread.domain_count(i) + 2) as f64).ln())
            .collect();
        state.write(SCORE_KEY, ScoreState { spread, weights });
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(SCORE_KEY) else {
            return Err(Status::error("PodTopologySpread: no PreScore state"));
        };
        let mut score = 0.0;
        for (i, c) in s.spread.constraints.iter().enumerate() {
            let Some(value) = c.key.and_then(|k| node.label_value(k)) else {
                return Ok(-1);
            };
            let count = s.spread.pods_in(i, value);
            score += count as f64 * s.weights[i] + f64::from(c.spec.max_skew - 1);
        }
        Ok(score.round() as i64)
    }

    /// Fewer matching pods scores higher: `100 * (max + min - s) / max`;
    /// nodes without the topology labels (raw -1) score 0.
    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        let labelled = scores.iter().copied().filter(|&s| s >= 0);
        let (min, max) = labelled.fold((i64::MAX, i64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
        for score in scores.iter_mut() {
            *score = if *score < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *score) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        filter_in, filter_statuses, node, pod, score_in, snapshot, NodeExt, PodExt,
    };
    use serde_json::json;

    fn nodes() -> Vec<k8s_openapi::api::core::v1::Node> {
        vec![
            node("a1").label("zone", "a"),
            node("a2").label("zone", "a"),
            node("b1").label("zone", "b"),
            node("c1").label("zone", "c"),
            node("none"),
        ]
    }

    fn spread(max_skew: i32, when: &str) -> k8s_openapi::api::core::v1::Pod {
        pod("p").label("app", "web").spec_json(
            "topologySpreadConstraints",
            json!([{
            "maxSkew": max_skew, "topologyKey": "zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}}]),
        )
    }

    fn web(name: &str, node: &str) -> k8s_openapi::api::core::v1::Pod {
        pod(name).label("app", "web").node_name(node)
    }

    #[test]
    fn do_not_schedule_refuses_domains_that_would_exceed_max_skew() {
        // zone a: 2, b: 1, c: 0 → min 0; with the pod, a would be 3, b 2, c 1.
        let existing = [web("w1", "a1"), web("w2", "a2"), web("w3", "b1")];
        let snapshot = snapshot(&nodes(), &existing);
        assert_eq!(
            filter_in(
                &PodTopologySpread::new(),
                &spread(1, "DoNotSchedule"),
                &snapshot
            ),
            ["c1"]
        );
        assert_eq!(
            filter_in(
                &PodTopologySpread::new(),
                &spread(2, "DoNotSchedule"),
                &snapshot
            ),
            ["b1", "c1"]
        );
        let reasons: Vec<String> = filter_statuses(
            &PodTopologySpread::new(),
            &spread(1, "DoNotSchedule"),
            &snapshot,
        )
        .iter()
        .flat_map(|s| s.reasons().iter().map(|r| r.to_string()))
        .collect();
        assert_eq!(reasons, [REASON, REASON, REASON, REASON_MISSING_LABEL]);
    }

    #[test]
    fn remembered_counts_follow_the_cache_as_a_fresh_count_would() {
        use crate::cache::Cache;
        use crate::framework::Snapshot;
        let plugin = PodTopologySpread::new();
        let mut cache = Cache::default();
        for n in nodes() {
            cache.add_node(Arc::new(n));
        }
        let mut snapshot = Snapshot::default();
        type Step = Box<dyn Fn(&mut Cache)>;
        let steps: Vec<Step> = vec![
            Box::new(|_| {}),
            Box::new(|c| c.add_pod(Arc::new(web("w1", "a1")))),
            Box::new(|c| c.add_pod(Arc::new(web("w2", "c1")))),
            Box::new(|c| c.add_pod(Arc::new(web("w3", "a2")))),
            Box::new(|c| c.remove_pod("default/w2")),
            Box::new(|c| c.remove_node("b1")),
            Box::new(|c| c.add_node(Arc::new(node("b1").label("zone", "b")))),
            // Relabelled: a2 (holding w3) moves to zone c, c1 to a new zone.
            Box::new(|c| c.add_node(Arc::new(node("a2").label("zone", "c")))),
            Box::new(|c| c.add_node(Arc::new(node("c1").label("zone", "d")))),
            // The unlabelled node becomes a domain.
            Box::new(|c| c.add_node(Arc::new(node("none").label("zone", "a")))),
        ];
        for (i, step) in steps.iter().enumerate() {
            step(&mut cache);
            cache.update_snapshot(&mut snapshot);
            let remembered = filter_in(&plugin, &spread(1, "DoNotSchedule"), &snapshot);
            let fresh = filter_in(
                &PodTopologySpread::new(),
                &spread(1, "DoNotSchedule"),
                &snapshot,
            );
            assert_eq!(remembered, fresh, "after step {i}");
        }
    }

    #[test]
    fn pods_of_other_groups_do_not_count() {
        let existing = [
            pod("x").label("app", "db").node_name("a1"),
            pod("y").label("app", "db").node_name("a1"),
        ];
        let snapshot = snapshot(&nodes(), &existing);
        assert_eq!(
            filter_in(
                &PodTopologySpread::new(),
                &spread(1, "DoNotSchedule"),
                &snapshot
            ),
            ["a1", "a2", "b1", "c1"]
        );
    }

    #[test]
    fn schedule_anyway_favours_the_least_crowded_domain() {
        let existing = [web("w1", "a1"), web("w2", "a2"), web("w3", "b1")];
        let scores = score_in(
            &PodTopologySpread::new(),
            &spread(1, "ScheduleAnyway"),
            &snapshot(&nodes(), &existing),
        );
        assert!(scores[3] > scores[2] && scores[2] > scores[0], "{scores:?}");
        assert_eq!(scores[0], scores[1]);
        assert_eq!(scores[4], 0);
    }
}
