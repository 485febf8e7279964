//! NodeAffinity: the pod's `nodeSelector` and required node affinity
//! (`requiredDuringSchedulingIgnoredDuringExecution`: any term, each term all
//! its requirements, with In, NotIn, Exists, DoesNotExist, Gt, Lt) must match
//! the node; preferred terms add their weights to the node's score, then
//! scores are scaled so the best node has 100.

use crate::framework::{
    impl_plugin, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin, Status, NODE_EVENTS,
};

use super::helpers::{default_normalize, labels_of, node_selector_term_matches};

/// The plugin's name in profiles.
pub const NAME: &str = "NodeAffinity";
/// Kubernetes' reason.
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// The NodeAffinity plugin.
pub struct NodeAffinity;

impl_plugin!(NodeAffinity, NAME, events: NODE_EVENTS, [filter, score]);

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
pub(crate) fn matches_required(pod: &PodInfo, node: &k8s_openapi::api::core::v1::Node) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return true;
    };
    // The node's labels are read only when there is something to match.
    let selector_ok = spec.node_selector.as_ref().is_none_or(|selector| {
        let labels = labels_of(&node.metadata.labels);
        selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    });
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    selector_ok
        && required.is_none_or(|r| {
            r.node_selector_terms
                .iter()
                .any(|term| node_selector_term_matches(term, node))
        })
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if matches_required(pod, node.node()) {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let preferred = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        Ok(preferred
            .into_iter()
            .flatten()
            .filter(|term| {
                term.weight != 0 && node_selector_term_matches(&term.preference, node.node())
            })
            .map(|term| i64::from(term.weight))
            .sum())
    }

    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize(scores, false);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{filter_table, node, pod, score_table, NodeExt, PodExt};
    use serde_json::json;

    fn nodes() -> Vec<k8s_openapi::api::core::v1::Node> {
        vec![
            node("a").label("zone", "z1").label("cores", "8"),
            node("b").label("zone", "z2").label("cores", "16"),
            node("c").label("disk", "ssd"),
        ]
    }

    fn required(expressions: serde_json::Value) -> serde_json::Value {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": expressions}]}}})
    }

    #[test]
    fn node_selector_must_match_every_label() {
        let p = pod("p").spec_json("nodeSelector", json!({"zone": "z2"}));
        assert_eq!(filter_table(&NodeAffinity, &p, &nodes()), ["b"]);
    }

    #[test]
    fn required_terms_use_each_operator() {
        for (expression, expected) in [
            (
                json!({"key": "zone", "operator": "In", "values": ["z1", "z3"]}),
                vec!["a"],
            ),
            (
                json!({"key": "zone", "operator": "NotIn", "values": ["z1"]}),
                vec!["b", "c"],
            ),
            (json!({"key": "disk", "operator": "Exists"}), vec!["c"]),
            (
                json!({"key": "zone", "operator": "DoesNotExist"}),
                vec!["c"],
            ),
            (
                json!({"key": "cores", "operator": "Gt", "values": ["8"]}),
                vec!["b"],
            ),
            (
                json!({"key": "cores", "operator": "Lt", "values": ["16"]}),
                vec!["a"],
            ),
        ] {
            let p = pod("p").affinity(required(json!([expression.clone()])));
            assert_eq!(
                filter_table(&NodeAffinity, &p, &nodes()),
                expected,
                "{expression}"
            );
        }
    }

    #[test]
    fn any_required_term_is_enough_and_match_fields_name_the_node() {
        let p = pod("p").affinity(
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "Exists"}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}}),
        );
        assert_eq!(filter_table(&NodeAffinity, &p, &nodes()), ["a", "c"]);
    }

    #[test]
    fn preferred_terms_add_weights_scaled_to_the_best_node() {
        let p = pod("p").affinity(json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 20, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
            {"weight": 60, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}}]}}));
        assert_eq!(score_table(&NodeAffinity, &p, &nodes()), [25, 100, 0]);
    }
}
