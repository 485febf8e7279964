//! NodePorts: a pod asking for a host port fits only where no pod already
//! holds that port for the same protocol on an overlapping host IP
//! (`0.0.0.0` overlaps every IP).

use crate::framework::{
    impl_plugin, ClusterEvent, CycleState, FilterPlugin, HostPort, NodeInfo, PodInfo,
    PreFilterPlugin, Snapshot, Status,
};

/// The plugin's name in profiles.
pub const NAME: &str = "NodePorts";
/// Kubernetes' reason.
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The NodePorts plugin.
pub struct NodePorts;

impl_plugin!(NodePorts, NAME, events: &[ClusterEvent::NodeAdd, ClusterEvent::AssignedPodDelete], [pre_filter, filter]);

impl PreFilterPlugin for NodePorts {
    fn pre_filter(&self, _: &mut CycleState, pod: &PodInfo, _: &Snapshot) -> Status {
        if pod.host_ports.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

fn conflicts(wanted: &HostPort, used: &HostPort) -> bool {
    wanted.port == used.port
        && wanted.protocol == used.protocol
        && (wanted.ip == used.ip || wanted.ip == "0.0.0.0" || used.ip == "0.0.0.0")
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let used = node.used_ports();
        if pod
            .host_ports
            .iter()
            .any(|w| used.iter().any(|u| conflicts(w, u)))
        {
            Status::unschedulable(REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{filter_in, node, pod, snapshot, PodExt};

    #[test]
    fn a_host_port_in_use_keeps_the_pod_off_that_node() {
        let nodes = [node("a"), node("b")];
        let existing = [pod("web").node_name("a").host_port(8080)];
        let snapshot = snapshot(&nodes, &existing);
        assert_eq!(
            filter_in(&NodePorts, &pod("p").host_port(8080), &snapshot),
            ["b"]
        );
        assert_eq!(
            filter_in(&NodePorts, &pod("p").host_port(9090), &snapshot),
            ["a", "b"]
        );
        assert_eq!(filter_in(&NodePorts, &pod("p"), &snapshot), ["a", "b"]);
    }
}
