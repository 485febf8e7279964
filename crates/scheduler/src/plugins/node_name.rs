//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use crate::framework::{
    impl_plugin, ClusterEvent, CycleState, FilterPlugin, NodeInfo, PodInfo, Status,
};

/// The plugin's name in profiles.
pub const NAME: &str = "NodeName";
/// Kubernetes' reason.
pub const REASON: &str = "node(s) didn't match the requested node name";

/// The NodeName plugin.
pub struct NodeName;

impl_plugin!(NodeName, NAME, events: &[ClusterEvent::NodeAdd], [filter]);

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(name) if !name.is_empty() && name != node.name() => Status::unresolvable(REASON),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{filter_table, node, pod, PodExt};

    #[test]
    fn a_pod_naming_its_node_fits_only_there() {
        let nodes = [node("a"), node("b")];
        assert_eq!(
            filter_table(&NodeName, &pod("p").node_name("b"), &nodes),
            ["b"]
        );
        assert_eq!(filter_table(&NodeName, &pod("p"), &nodes), ["a", "b"]);
    }
}
