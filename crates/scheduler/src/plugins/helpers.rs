//! Matching shared by several plugins: label selectors, node selector terms
//! (with node affinity's Gt and Lt) and tolerations, with Kubernetes' rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration,
};

use crate::framework::{NodeInfo, PodInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// The labels of an object, empty when it has none.
pub(crate) fn labels_of(labels: &Option<BTreeMap<String, String>>) -> &BTreeMap<String, String> {
    labels.as_ref().unwrap_or(&NO_LABELS)
}

/// Whether `labels` satisfy `selector`: every matchLabels pair and every
/// matchExpressions requirement (In, NotIn, Exists, DoesNotExist). An empty
/// selector matches everything.
pub(crate) fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    pairs
        && selector.match_expressions.iter().flatten().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// Whether `selector` picks `pod` by its labels.
pub(crate) fn selects(selector: &LabelSelector, pod: &PodInfo) -> bool {
    selector_matches(selector, labels_of(&pod.pod.metadata.labels))
}

/// Whether a selector has no requirement at all (it then selects
/// everything, or, where Kubernetes says so, nothing).
pub(crate) fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// The pod's tolerations.
pub(crate) fn tolerations_of(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// The node's taints.
pub(crate) fn taints_of(node: &NodeInfo) -> &[Taint] {
    if !node.tainted() {
        return &[];
    }
    node.node()
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// Whether the node matches one node selector term: all its matchExpressions
/// (on labels) and matchFields (on `metadata.name`). A term with neither
/// matches nothing, as in Kubernetes.
pub(crate) fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = labels_of(&node.metadata.labels);
    let name = node.metadata.name.as_deref().unwrap_or_default();
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(name);
            requirement_matches(r, value)
        })
}

/// One node selector requirement against a value (`None`: label absent).
pub(crate) fn requirement_matches(
    requirement: &NodeSelectorRequirement,
    value: Option<&str>,
) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let number = |text: &str| text.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(number),
                values.first().and_then(|b| number(b)),
            ) else {
                return false;
            };
            if requirement.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether `toleration` tolerates `taint` (Kubernetes' `ToleratesTaint`): an
/// empty effect matches any effect, an empty key with Exists matches any key.
pub(crate) fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub(crate) fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// A resource weight left out of a config: 1.
pub(crate) fn default_weight() -> i64 {
    1
}

/// kube-scheduler's `DefaultNormalizeScore`: scales scores so the highest is
/// [`MAX_NODE_SCORE`](crate::framework::MAX_NODE_SCORE); `reverse` turns the
/// highest into the lowest. All-zero scores become 0 (or the maximum, reversed).
pub(crate) fn default_normalize(scores: &mut [i64], reverse: bool) {
    use crate::framework::MAX_NODE_SCORE;
    let max = scores.iter().copied().max().unwrap_or(0);
    for score in scores.iter_mut() {
        let scaled = if max == 0 {
            0
        } else {
            *score * MAX_NODE_SCORE / max
        };
        *score = if reverse {
            MAX_NODE_SCORE - scaled
        } else {
            scaled
        };
    }
}
