//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods
//! that tolerate the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use super::helpers::{tolerated, tolerations_of};
use crate::framework::{
    impl_plugin, CycleState, FilterPlugin, NodeInfo, PodInfo, Status, NODE_EVENTS,
};

/// The plugin's name in profiles.
pub const NAME: &str = "NodeUnschedulable";
/// Kubernetes' reason.
pub const REASON: &str = "node(s) were unschedulable";

/// The NodeUnschedulable plugin.
pub struct NodeUnschedulable;

impl_plugin!(NodeUnschedulable, NAME, events: NODE_EVENTS, [filter]);

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable() {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if tolerated(tolerations_of(pod), &taint) {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{filter_table, node, pod, NodeExt, PodExt};

    #[test]
    fn cordoned_nodes_take_only_pods_tolerating_unschedulable() {
        let nodes = [node("open"), node("cordoned").unschedulable()];
        assert_eq!(
            filter_table(&NodeUnschedulable, &pod("p"), &nodes),
            ["open"]
        );
        let tolerant = pod("p").toleration(
            "node.kubernetes.io/unschedulable",
            "Exists",
            "",
            "NoSchedule",
        );
        assert_eq!(
            filter_table(&NodeUnschedulable, &tolerant, &nodes),
            ["open", "cordoned"]
        );
    }
}
