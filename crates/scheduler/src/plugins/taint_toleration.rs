//! TaintToleration: a node's NoSchedule and NoExecute taints keep off every
//! pod that does not tolerate them; PreferNoSchedule taints the pod does not
//! tolerate lower the node's score (fewest such taints scores 100).

use k8s_openapi::api::core::v1::Toleration;

use super::helpers::{default_normalize, taints_of, tolerated, tolerates, tolerations_of};
use crate::framework::{
    impl_plugin, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin, Status, NODE_EVENTS,
};

/// The plugin's name in profiles.
pub const NAME: &str = "TaintToleration";

/// The TaintToleration plugin.
pub struct TaintToleration;

impl_plugin!(TaintToleration, NAME, events: NODE_EVENTS, [filter, score]);

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let taints = taints_of(node);
        let tolerations = tolerations_of(pod);
        let untolerated = taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .find(|t| !tolerated(tolerations, t));
        match untolerated {
            None => Status::success(),
            Some(taint) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or_default()
            )),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        // Only tolerations that could apply to PreferNoSchedule count here.
        let soft = |t: &&Toleration| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        };
        let tolerations = tolerations_of(pod);
        let taints = taints_of(node);
        Ok(taints
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule")
            .filter(|taint| !tolerations.iter().filter(soft).any(|t| tolerates(t, taint)))
            .count() as i64)
    }

    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) -> Status {
        default_normalize(scores, true);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::PodInfo;
    use crate::testing::{filter_table, node, pod, score_table, snapshot, NodeExt, PodExt};
    use std::sync::Arc;

    #[test]
    fn hard_taints_keep_off_pods_that_do_not_tolerate_them() {
        let nodes = [
            node("plain"),
            node("gpu").taint("dedicated", "gpu", "NoSchedule"),
            node("draining").taint("drain", "", "NoExecute"),
            node("soft").taint("cheap", "", "PreferNoSchedule"),
        ];
        assert_eq!(
            filter_table(&TaintToleration, &pod("p"), &nodes),
            ["plain", "soft"]
        );
        let equal = pod("p").toleration("dedicated", "Equal", "gpu", "NoSchedule");
        assert_eq!(
            filter_table(&TaintToleration, &equal, &nodes),
            ["plain", "gpu", "soft"]
        );
        let wrong_value = pod("p").toleration("dedicated", "Equal", "tpu", "NoSchedule");
        assert_eq!(
            filter_table(&TaintToleration, &wrong_value, &nodes),
            ["plain", "soft"]
        );
        let everything = pod("p").toleration("", "Exists", "", "");
        assert_eq!(
            filter_table(&TaintToleration, &everything, &nodes),
            ["plain", "gpu", "draining", "soft"]
        );
    }

    #[test]
    fn the_reason_names_the_taint() {
        let snapshot = snapshot(&[node("gpu").taint("dedicated", "gpu", "NoSchedule")], &[]);
        let pod = PodInfo::new(Arc::new(pod("p")));
        let status = TaintToleration.filter(&CycleState::new(), &pod, &snapshot.nodes()[0]);
        assert_eq!(
            status.reasons(),
            ["node(s) had untolerated taint {dedicated: gpu}"]
        );
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let nodes = [
            node("none"),
            node("one").taint("a", "", "PreferNoSchedule"),
            node("two")
                .taint("a", "", "PreferNoSchedule")
                .taint("b", "", "PreferNoSchedule"),
        ];
        assert_eq!(
            score_table(&TaintToleration, &pod("p"), &nodes),
            [100, 50, 0]
        );
        let tolerates_a = pod("p").toleration("a", "Exists", "", "PreferNoSchedule");
        assert_eq!(
            score_table(&TaintToleration, &tolerates_a, &nodes),
            [100, 100, 0]
        );
    }
}
