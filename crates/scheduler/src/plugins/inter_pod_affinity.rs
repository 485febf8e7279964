//! InterPodAffinity: pods placed by the pods already running, per topology
//! domain (the nodes sharing a value of `topologyKey`, such as a zone or a
//! hostname).
//!
//! Filter, as kube-scheduler's: a node is refused when
//! 1. a pod already in its domain has required anti-affinity matching the
//!    incoming pod ("existing pods anti-affinity rules"),
//! 2. some required affinity term of the incoming pod has no matching pod in
//!    its domain — unless no pod anywhere matches and the pod matches its own
//!    terms (the first pod of a group may go anywhere), or
//! 3. a required anti-affinity term of the incoming pod matches a pod in its domain.
//!
//! Score: preferred terms on both sides (and existing pods' required affinity,
//! with weight 1) add or take away their weight for the domain; scores are
//! then scaled from the lowest (0) to the highest (100).
//!
//! # Caveats
//! `namespaceSelector` is honoured only when empty (all namespaces): the
//! scheduler does not watch Namespaces. `matchLabelKeys` is not supported.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Affinity, Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use super::helpers::{selector_is_empty, selects};
use super::tally::{Tallies, Tally};
use crate::framework::{
    impl_plugin, CycleState, FilterPlugin, LabelIndex, LabelKey, LabelValue, NodeInfo, PodInfo,
    PreFilterPlugin, PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};

/// The plugin's name in profiles.
pub const NAME: &str = "InterPodAffinity";
/// Reason: an existing pod's anti-affinity refuses the incoming pod.
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// Reason: the pod's required affinity is not met.
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// Reason: the pod's required anti-affinity is not met.
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// The weight of an existing pod's required affinity in scoring (`hardPodAffinityWeight`).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Counts (or scores) per topology domain: topologyKey → value → count,
/// both as numbers of the snapshot's [`LabelIndex`].
#[derive(Clone, Default)]
struct DomainCounts(HashMap<LabelKey, HashMap<LabelValue, i64>>);

impl DomainCounts {
    /// Adds `by` pods to domain `value` of `key`, forgetting a domain (and
    /// a key) whose count comes back to zero, so a kept count reads as one
    /// made afresh.
    fn count(&mut self, key: LabelKey, value: LabelValue, by: i64) {
        let values = self.0.entry(key).or_default();
        let n = values.entry(value).or_insert(0);
        *n += by;
        if *n == 0 {
            values.remove(&value);
            if values.is_empty() {
                self.0.remove(&key);
            }
        }
    }

    /// Adds `by` to the node's domain of `key` (nothing when it has none).
    fn add(&mut self, node: &NodeInfo, key: Option<LabelKey>, by: i64) {
        let Some((key, value)) = key.and_then(|k| Some((k, node.label_value(k)?))) else {
            return;
        };
        *self.0.entry(key).or_default().entry(value).or_insert(0) += by;
    }

    /// The count of the node's domain for `key`.
    fn get(&self, node: &NodeInfo, key: Option<LabelKey>) -> i64 {
        let Some(key) = key else { return 0 };
        self.0
            .get(&key)
            .and_then(|values| values.get(&node.label_value(key)?))
            .copied()
            .unwrap_or(0)
    }

    /// The sum over every key of the node's domains.
    fn sum(&self, node: &NodeInfo) -> i64 {
        self.0.keys().map(|&k| self.get(node, Some(k))).sum()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds every count of `other`.
    fn merge(&mut self, other: DomainCounts) {
        for (key, values) in other.0 {
            let mine = self.0.entry(key).or_default();
            for (value, count) in values {
                *mine.entry(value).or_insert(0) += count;
            }
        }
    }
}

/// The InterPodAffinity plugin.
pub struct InterPodAffinity {
    /// Existing pods' required anti-affinity terms (one sum for all pods).
    existing: Tallies<ExistingAntiAffinity>,
    /// Pods that a pod's own required terms select, per kind of pod.
    own: Tallies<OwnTermCounts>,
}

impl InterPodAffinity {
    /// The plugin, with no counts remembered yet.
    pub fn new() -> InterPodAffinity {
        InterPodAffinity {
            existing: Tallies::default(),
            own: Tallies::default(),
        }
    }
}

impl Default for InterPodAffinity {
    fn default() -> Self {
        InterPodAffinity::new()
    }
}

/// One required anti-affinity term of existing pods, with the pods holding
/// it per domain of its topologyKey.
#[derive(Clone)]
struct TermDomains {
    namespace: String,
    term: PodAffinityTerm,
    topology_key: LabelKey,
    pods: HashMap<LabelValue, i64>,
}

/// Every distinct required anti-affinity term of existing pods (keyed by
/// its namespace and text), so a cycle matches each term against the pod
/// once instead of once per pod holding it.
#[derive(Clone, Default)]
struct ExistingAntiAffinity(HashMap<String, TermDomains>);

/// One existing pod's term on a node, in the domain `value` of `topology_key`.
struct TermOnNode {
    key: String,
    namespace: String,
    term: PodAffinityTerm,
    topology_key: LabelKey,
    value: LabelValue,
}

impl Tally for ExistingAntiAffinity {
    type Contribution = Vec<TermOnNode>;

    fn apply(&mut self, terms: &Vec<TermOnNode>, sign: i64) {
        for t in terms {
            let entry = self.0.entry(t.key.clone()).or_insert_with(|| TermDomains {
                namespace: t.namespace.clone(),
                term: t.term.clone(),
                topology_key: t.topology_key,
                pods: HashMap::new(),
            });
            let n = entry.pods.entry(t.value).or_insert(0);
            *n += sign;
            if *n == 0 {
                entry.pods.remove(&t.value);
                if entry.pods.is_empty() {
                    self.0.remove(&t.key);
                }
            }
        }
    }
}

/// The required anti-affinity terms of the pods on `node`.
fn existing_terms(node: &NodeInfo, labels: &LabelIndex) -> Vec<TermOnNode> {
    if !node.has_pods_with_required_anti_affinity() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    for existing in node.pods().iter().filter(|p| p.has_required_anti_affinity) {
        for term in anti_affinity(&existing.pod).required {
            let Some(topology_key) = labels.key(&term.topology_key) else {
                continue;
            };
            let Some(value) = node.label_value(topology_key) else {
                continue;
            };
            let namespace = existing.namespace();
            terms.push(TermOnNode {
                key: serde_json::to_string(&(namespace, term)).unwrap_or_default(),
                namespace: namespace.to_string(),
                term: term.clone(),
                topology_key,
                value,
            });
        }
    }
    terms
}

/// Pods a pod's own required terms select, per domain: for affinity, pods
/// matching all its terms; for anti-affinity, pods matching each term.
#[derive(Clone, Default)]
struct OwnTermCounts {
    affinity: DomainCounts,
    anti_affinity: DomainCounts,
}

/// What one node adds to [`OwnTermCounts`]: (topologyKey, value) pairs.
type OwnTermsOnNode = (Vec<(LabelKey, LabelValue)>, Vec<(LabelKey, LabelValue)>);

impl Tally for OwnTermCounts {
    type Contribution = OwnTermsOnNode;

    fn apply(&mut self, (affinity, anti_affinity): &OwnTermsOnNode, sign: i64) {
        for &(key, value) in affinity {
            self.affinity.count(key, value, sign);
        }
        for &(key, value) in anti_affinity {
            self.anti_affinity.count(key, value, sign);
        }
    }
}

/// A pod's required terms of one kind with their topology keys numbered
/// (`None`: no node has had the label).
struct RequiredTerms {
    terms: Vec<PodAffinityTerm>,
    keys: Vec<Option<LabelKey>>,
}

impl RequiredTerms {
    fn new(terms: &[PodAffinityTerm], labels: &LabelIndex) -> RequiredTerms {
        RequiredTerms {
            keys: terms.iter().map(|t| labels.key(&t.topology_key)).collect(),
            terms: terms.to_vec(),
        }
    }

    fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// The pods on `node` that the terms (written in `namespace`) select.
fn own_terms_on(
    node: &NodeInfo,
    namespace: &str,
    affinity: &RequiredTerms,
    anti_affinity: &RequiredTerms,
) -> OwnTermsOnNode {
    let mut on_node: OwnTermsOnNode = Default::default();
    let note = |list: &mut Vec<(LabelKey, LabelValue)>, key: Option<LabelKey>| {
        if let Some(key) = key {
            if let Some(value) = node.label_value(key) {
                list.push((key, value));
            }
        }
    };
    for existing in node.pods() {
        if !affinity.is_empty()
            && (affinity.terms.iter()).all(|t| term_matches(t, namespace, existing))
        {
            for &key in &affinity.keys {
                note(&mut on_node.0, key);
            }
        }
        for (term, &key) in anti_affinity.terms.iter().zip(&anti_affinity.keys) {
            if term_matches(term, namespace, existing) {
                note(&mut on_node.1, key);
            }
        }
    }
    on_node
}

struct PreFilterState {
    /// Existing pods' anti-affinity terms, and the keys of those that
    /// select the incoming pod.
    existing: Arc<ExistingAntiAffinity>,
    selecting: Vec<String>,
    own: Arc<OwnTermCounts>,
    affinity: RequiredTerms,
    anti_affinity: RequiredTerms,
}

impl PreFilterState {
    /// Whether an existing pod in the node's domain refuses the pod.
    fn existing_refuses(&self, node: &NodeInfo) -> bool {
        self.selecting.iter().any(|key| {
            self.existing.0.get(key).is_some_and(|t| {
                node.label_value(t.topology_key)
                    .and_then(|value| t.pods.get(&value))
                    .is_some_and(|&n| n > 0)
            })
        })
    }
}

#[derive(Default)]
struct PreScoreState {
    scores: DomainCounts,
}

/// A pod's terms of one kind, affinity or anti-affinity (the two are shaped alike).
struct Terms<'p> {
    required: &'p [PodAffinityTerm],
    preferred: &'p [WeightedPodAffinityTerm],
}

impl<'p> Terms<'p> {
    fn new(
        required: Option<&'p Vec<PodAffinityTerm>>,
        preferred: Option<&'p Vec<WeightedPodAffinityTerm>>,
    ) -> Terms<'p> {
        Terms {
            required: required.map_or(&[], Vec::as_slice),
            preferred: preferred.map_or(&[], Vec::as_slice),
        }
    }
}

fn affinity_of(pod: &Pod) -> Option<&Affinity> {
    pod.spec.as_ref()?.affinity.as_ref()
}

fn affinity(pod: &Pod) -> Terms<'_> {
    let terms = affinity_of(pod).and_then(|a| a.pod_affinity.as_ref());
    Terms::new(
        terms.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }),
        terms.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }),
    )
}

fn anti_affinity(pod: &Pod) -> Terms<'_> {
    let terms = affinity_of(pod).and_then(|a| a.pod_anti_affinity.as_ref());
    Terms::new(
        terms.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }),
        terms.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }),
    )
}

/// Whether `term`, written in a pod of namespace `owner_namespace`, selects `pod`.
pub(crate) fn term_matches(term: &PodAffinityTerm, owner_namespace: &str, pod: &PodInfo) -> bool {
    let namespace = pod.namespace();
    let all_namespaces = term
        .namespace_selector
        .as_ref()
        .is_some_and(selector_is_empty);
    let namespace_ok = all_namespaces
        || match term.namespaces.as_deref() {
            Some(list) if !list.is_empty() => list.iter().any(|n| n == namespace),
            _ => namespace == owner_namespace,
        };
    namespace_ok
        && term
            .label_selector
            .as_ref()
            .is_some_and(|s| selects(s, pod))
}

impl_plugin!(
    InterPodAffinity,
    NAME,
    [pre_filter, filter, pre_score, score]
);

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let labels = snapshot.labels();
        let affinity = RequiredTerms::new(affinity(&pod.pod).required, labels);
        let anti_affinity = RequiredTerms::new(anti_affinity(&pod.pod).required, labels);
        // 1. Existing pods whose required anti-affinity selects this pod.
        let existing = self.existing.get(
            String::new(),
            snapshot,
            ExistingAntiAffinity::default,
            |_, node| existing_terms(node, labels),
        );
        let selecting: Vec<String> = (existing.0.iter())
            .filter(|(_, t)| term_matches(&t.term, &t.namespace, pod))
            .map(|(key, _)| key.clone())
            .collect();
        if selecting.is_empty() && affinity.is_empty() && anti_affinity.is_empty() {
            return Status::skip();
        }
        // 2 and 3. Pods this pod's own required terms select, by domain.
        let own = if affinity.is_empty() && anti_affinity.is_empty() {
            Arc::default()
        } else {
            let namespace = pod.namespace();
            let key = serde_json::to_string(&(namespace, &affinity.terms, &anti_affinity.terms))
                .unwrap_or_default();
            self.own
                .get(key, snapshot, OwnTermCounts::default, |_, node| {
                    own_terms_on(node, namespace, &affinity, &anti_affinity)
                })
        };
        let s = PreFilterState {
            existing,
            selecting,
            own,
            affinity,
            anti_affinity,
        };
        state.write(NAME, s);
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(NAME) else {
            return Status::error("InterPodAffinity: no PreFilter state");
        };
        if s.existing_refuses(node) {
            return Status::unschedulable(REASON_EXISTING_ANTI_AFFINITY);
        }
        if !s.affinity.is_empty() {
            let keys = &s.affinity.keys;
            let satisfied = keys.iter().all(|&k| s.own.affinity.get(node, k) > 0);
            let first_of_group = s.own.affinity.is_empty()
                && (s.affinity.terms.iter()).all(|t| term_matches(t, pod.namespace(), pod));
            let labelled = (keys.iter()).all(|k| k.and_then(|k| node.label_value(k)).is_some());
            let allowed = satisfied || (first_of_group && labelled);
            if !allowed {
                return Status::unresolvable(REASON_AFFINITY);
            }
        }
        let keys = &s.anti_affinity.keys;
        if keys.iter().any(|&k| s.own.anti_affinity.get(node, k) > 0) {
            return Status::unschedulable(REASON_ANTI_AFFINITY);
        }
        Status::success()
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Status {
        let has_own_preferences = !affinity(&pod.pod).preferred.is_empty()
            || !anti_affinity(&pod.pod).preferred.is_empty();
        let labels = snapshot.labels();
        let mut scores = DomainCounts::default();
        // Preferred terms of `owner` (in `namespace`) that select `target`
        // add their weight to the node's domain: affinity up, anti-affinity down.
        let mut weigh = |node: &NodeInfo, owner: &Pod, namespace: &str, target: &PodInfo| {
            for (terms, sign) in [
                (affinity(owner).preferred, 1),
                (anti_affinity(owner).preferred, -1),
            ] {
                for t in terms {
                    if term_matches(&t.pod_affinity_term, namespace, target) {
                        let key = labels.key(&t.pod_affinity_term.topology_key);
                        scores.add(node, key, sign * i64::from(t.weight));
                    }
                }
            }
        };
        let nodes: Box<dyn Iterator<Item = &NodeInfo>> = if has_own_preferences {
            Box::new(snapshot.nodes().iter().map(|n| &**n))
        } else {
            // Only existing pods' preferred terms and required affinity
            // can weigh: the nodes holding such pods are enough.
            Box::new(snapshot.nodes_with_scoring_affinity())
        };
        let mut required = DomainCounts::default();
        for node in nodes {
            for existing in node.pods() {
                weigh(node, &pod.pod, pod.namespace(), existing);
                if !existing.has_affinity {
                    continue;
                }
                weigh(node, &existing.pod, existing.namespace(), pod);
                for t in affinity(&existing.pod).required {
                    if term_matches(t, existing.namespace(), pod) {
                        let key = labels.key(&t.topology_key);
                        required.add(node, key, HARD_POD_AFFINITY_WEIGHT);
                    }
                }
            }
        }
        scores.merge(required);
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(NAME, PreScoreState { scores });
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(NAME) else {
            return Err(Status::error("InterPodAffinity: no PreScore state"));
        };
        Ok(s.scores.sum(node))
    }

    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        for score in scores.iter_mut() {
            *score = if max == min {
                0
            } else {
                (*score - min) * MAX_NODE_SCORE / (max - min)
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

    fn zoned_nodes() -> Vec<k8s_openapi::api::core::v1::Node> {
        vec![
            node("a1").label("zone", "a"),
            node("a2").label("zone", "a"),
            node("b1").label("zone", "b"),
            node("none"),
        ]
    }

    fn term(app: &str, key: &str) -> serde_json::Value {
        json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
    }

    #[test]
    fn required_affinity_follows_matching_pods_into_their_zone() {
        let existing = [pod("db").label("app", "db").node_name("a2")];
        let web = pod("web").affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("db", "zone")]}}));
        assert_eq!(
            filter_in(
                &InterPodAffinity::new(),
                &web,
                &snapshot(&zoned_nodes(), &existing)
            ),
            ["a1", "a2"]
        );
    }

    #[test]
    fn the_first_pod_of_a_self_affine_group_may_go_anywhere_labelled() {
        let first = pod("web").label("app", "web")
            .affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web", "zone")]}}));
        assert_eq!(
            filter_in(
                &InterPodAffinity::new(),
                &first,
                &snapshot(&zoned_nodes(), &[])
            ),
            ["a1", "a2", "b1"]
        );
        let other = pod("x").affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web", "zone")]}}));
        assert!(filter_in(
            &InterPodAffinity::new(),
            &other,
            &snapshot(&zoned_nodes(), &[])
        )
        .is_empty());
    }

    #[test]
    fn required_anti_affinity_keeps_pods_of_a_group_apart() {
        let existing = [pod("w1").label("app", "web").node_name("a1")];
        let by_host = pod("w2").label("app", "web")
            .affinity(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web", "kubernetes.io/hostname")]}}));
        assert_eq!(
            filter_in(
                &InterPodAffinity::new(),
                &by_host,
                &snapshot(&zoned_nodes(), &existing)
            ),
            ["a2", "b1", "none"]
        );
        let by_zone = pod("w2").label("app", "web")
            .affinity(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web", "zone")]}}));
        assert_eq!(
            filter_in(
                &InterPodAffinity::new(),
                &by_zone,
                &snapshot(&zoned_nodes(), &existing)
            ),
            ["b1", "none"]
        );
    }

    #[test]
    fn an_existing_pods_anti_affinity_refuses_the_incoming_pod() {
        let existing = [pod("loner").node_name("a1")
            .affinity(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("noisy", "zone")]}}))];
        let snapshot = snapshot(&zoned_nodes(), &existing);
        let noisy = pod("n").label("app", "noisy");
        assert_eq!(
            filter_in(&InterPodAffinity::new(), &noisy, &snapshot),
            ["b1", "none"]
        );
        let reasons: Vec<String> = filter_statuses(&InterPodAffinity::new(), &noisy, &snapshot)
            .iter()
            .flat_map(|s| s.reasons().iter().map(|r| r.to_string()))
            .collect();
        assert_eq!(
            reasons,
            [REASON_EXISTING_ANTI_AFFINITY, REASON_EXISTING_ANTI_AFFINITY]
        );
        assert_eq!(
            filter_in(&InterPodAffinity::new(), &pod("quiet"), &snapshot),
            ["a1", "a2", "b1", "none"]
        );
    }

    #[test]
    fn remembered_counts_follow_the_cache_as_a_fresh_count_would() {
        use crate::cache::Cache;
        use crate::framework::Snapshot;
        use std::sync::Arc;
        let plugin = InterPodAffinity::new();
        let mut cache = Cache::default();
        for n in zoned_nodes() {
            cache.add_node(Arc::new(n));
        }
        let mut snapshot = Snapshot::default();
        let loner = |name: &str, node: &str, key: &str| {
            pod(name)
                .label("app", "web")
                .node_name(node)
                .affinity(json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term("noisy", key)]}}))
        };
        let incoming = [
            pod("n").label("app", "noisy"),
            pod("follower").affinity(json!({"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term("web", "zone")]}})),
            pod("apart").affinity(json!({"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term("web", "kubernetes.io/hostname")]}})),
        ];
        type Step = Box<dyn Fn(&mut Cache)>;
        let steps: Vec<Step> = vec![
            Box::new(|_| {}),
            Box::new(move |c| c.add_pod(Arc::new(loner("l1", "a1", "zone")))),
            Box::new(move |c| c.add_pod(Arc::new(loner("l2", "b1", "kubernetes.io/hostname")))),
            Box::new(move |c| c.add_pod(Arc::new(loner("l3", "none", "zone")))),
            Box::new(|c| c.add_pod(Arc::new(pod("w").label("app", "web").node_name("a2")))),
            // Relabelled: no longer selected by "follower" and "apart".
            Box::new(|c| c.update_pod(Arc::new(pod("w").label("app", "db").node_name("a2")))),
            Box::new(|c| c.remove_pod("default/l1")),
            Box::new(|c| c.remove_node("b1")),
            Box::new(|c| c.add_node(Arc::new(node("b1").label("zone", "b")))),
            Box::new(|c| c.remove_pod("default/l2")),
            // Relabelled: a2 (holding w) moves to zone b; a1 loses its zone.
            Box::new(|c| c.add_node(Arc::new(node("a2").label("zone", "b")))),
            Box::new(|c| c.add_node(Arc::new(node("a1")))),
            Box::new(|c| c.add_pod(Arc::new(pod("w2").label("app", "web").node_name("b1")))),
        ];
        for (i, step) in steps.iter().enumerate() {
            step(&mut cache);
            cache.update_snapshot(&mut snapshot);
            for p in &incoming {
                let remembered = filter_statuses(&plugin, p, &snapshot);
                let fresh = filter_statuses(&InterPodAffinity::new(), p, &snapshot);
                assert_eq!(
                    remembered, fresh,
                    "after step {i}, pod {:?}",
                    p.metadata.name
                );
            }
        }
    }

    #[test]
    fn preferred_terms_score_domains_from_lowest_to_highest() {
        let existing = [
            pod("c1").label("app", "cache").node_name("a1"),
            pod("n1").label("app", "noisy").node_name("b1"),
        ];
        let p = pod("p").affinity(json!({
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term("cache", "zone")}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term("noisy", "zone")}]}}));
        // zone a: +10, zone b: -10, unlabelled: 0.
        assert_eq!(
            score_in(
                &InterPodAffinity::new(),
                &p,
                &snapshot(&zoned_nodes(), &existing)
            ),
            [100, 100, 0, 50]
        );
    }
}
