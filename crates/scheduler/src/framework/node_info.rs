//! What the scheduler knows of one node and of one pod, computed once when the
//! cache learns of them so a cycle only reads: kube-scheduler's `NodeInfo`
//! (the node, its pods, their summed requests, the host ports in use) and
//! `PodInfo` (the pod with its requests and ports precomputed).

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::label_index::{self, LabelIndex, LabelKey, LabelValue, NumberedLabels};
use super::resource::{pod_requests, Resource};

/// A pod with what every cycle would otherwise compute again.
#[derive(Debug)]
pub struct PodInfo {
    /// The pod as the informer (or the scheduler's own assumption) has it.
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    /// `spec.priority`, 0 when unset.
    pub priority: i32,
    /// What the pod requests.
    pub requests: Resource,
    /// What the pod counts as when scoring (with 100m/200Mi defaults).
    pub non_zero_requests: Resource,
    /// The host ports its containers ask for.
    pub host_ports: Vec<HostPort>,
    /// Whether it has any pod affinity or anti-affinity term.
    pub has_affinity: bool,
    /// Whether it has required anti-affinity terms.
    pub has_required_anti_affinity: bool,
    /// Whether its terms weigh in other pods' scores: preferred affinity or
    /// anti-affinity, or required affinity (`hardPodAffinityWeight`).
    pub has_scoring_affinity: bool,
}

/// One host port a container binds: protocol, host IP ("0.0.0.0" when unset) and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The host IP, `0.0.0.0` meaning every address.
    pub ip: String,
    /// The port number.
    pub port: i32,
}

impl PodInfo {
    /// Precomputes what the scheduler needs of `pod`.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let (requests, non_zero_requests) = pod_requests(&pod);
        let spec = pod.spec.as_ref();
        let host_ports = spec
            .into_iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) > 0)
            .map(|p| HostPort {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                port: p.host_port.unwrap_or(0),
            })
            .collect();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let has_affinity =
            affinity.is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some());
        let has_required_anti_affinity = affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|terms| !terms.is_empty());
        let has_scoring_affinity = affinity.is_some_and(|a| {
            let affinity = a.pod_affinity.as_ref();
            let anti_affinity = a.pod_anti_affinity.as_ref();
            let present = |terms: Option<usize>| terms.is_some_and(|n| n > 0);
            present(affinity.and_then(|t| {
                let preferred = t
                    .preferred_during_scheduling_ignored_during_execution
                    .as_ref();
                preferred.map(Vec::len)
            })) || present(affinity.and_then(|t| {
                let required = t
                    .required_during_scheduling_ignored_during_execution
                    .as_ref();
                required.map(Vec::len)
            })) || present(anti_affinity.and_then(|t| {
                let preferred = t
                    .preferred_during_scheduling_ignored_during_execution
                    .as_ref();
                preferred.map(Vec::len)
            }))
        });
        PodInfo {
            key: pod_key(&pod),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests,
            non_zero_requests,
            host_ports,
            has_affinity,
            has_required_anti_affinity,
            has_scoring_affinity,
            pod,
        }
    }

    /// The pod's namespace ("default" when unset).
    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// One node with the pods on it (bound or assumed) and their sums.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    name: String,
    node: Option<Arc<Node>>,
    pods: Vec<Arc<PodInfo>>,
    requested: Resource,
    non_zero_requested: Resource,
    allocatable: Resource,
    used_ports: HashSet<HostPort>,
    pods_with_affinity: usize,
    pods_with_required_anti_affinity: usize,
    pods_with_scoring_affinity: usize,
    /// `spec.unschedulable`, and whether the node has taints: read by
    /// every cycle's filters on every node they look at, so kept here
    /// rather than read from the Node object (one cache miss less per node
    /// at thousands of nodes).
    unschedulable: bool,
    tainted: bool,
    /// The node's labels as numbers of `label_lineage`'s [`LabelIndex`]
    /// (0: not numbered yet), for topology plugins' Filter.
    labels: NumberedLabels,
    label_lineage: u64,
    generation: u64,
}

impl NodeInfo {
    /// A node with no pods yet.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut info = NodeInfo::empty(node.metadata.name.clone().unwrap_or_default());
        info.set_node(node);
        info
    }

    /// A placeholder for pods whose node the cache has not seen (yet, or any more).
    pub(crate) fn empty(name: String) -> NodeInfo {
        NodeInfo {
            name,
            node: None,
            pods: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable: Resource::default(),
            used_ports: HashSet::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            pods_with_scoring_affinity: 0,
            unschedulable: false,
            tainted: false,
            labels: NumberedLabels::default(),
            label_lineage: 0,
            generation: 0,
        }
    }

    /// Replaces the node object (allocatable, labels, taints). Its labels
    /// are numbered again by whoever keeps the [`LabelIndex`]
    /// ([`NodeInfo::number_labels`]).
    pub(crate) fn set_node(&mut self, node: Arc<Node>) {
        self.labels = NumberedLabels::default();
        self.label_lineage = 0;
        self.allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        let spec = node.spec.as_ref();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.tainted = spec
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| !t.is_empty());
        self.node = Some(node);
    }

    pub(crate) fn clear_node(&mut self) {
        self.node = None;
        self.labels = NumberedLabels::default();
        self.allocatable = Resource::default();
        self.unschedulable = false;
        self.tainted = false;
    }

    /// The node's `spec.unschedulable` (cordoned).
    pub fn unschedulable(&self) -> bool {
        self.unschedulable
    }

    /// Whether the node has any taint.
    pub fn tainted(&self) -> bool {
        self.tainted
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node, `None` for a placeholder.
    pub fn node_opt(&self) -> Option<&Node> {
        self.node.as_deref()
    }

    /// The node. Snapshots only hold NodeInfos that have one.
    pub fn node(&self) -> &Node {
        self.node
            .as_deref()
            .expect("a snapshot holds only NodeInfos with a node")
    }

    /// The node's labels.
    pub fn labels(&self) -> Option<&std::collections::BTreeMap<String, String>> {
        self.node.as_ref()?.metadata.labels.as_ref()
    }

    /// One label of the node.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels()?.get(key).map(String::as_str)
    }

    /// Numbers the node's labels with `index`, adding what it lacks (see
    /// [`LabelIndex::number_node`]).
    pub(crate) fn number_labels(&mut self, index: &mut Arc<LabelIndex>) {
        let numbered = LabelIndex::number_node(index, self.node.as_deref());
        self.set_numbered_labels(numbered, index.lineage());
    }

    /// Sets the node's labels as numbered by an index of `lineage`.
    pub(crate) fn set_numbered_labels(&mut self, labels: NumberedLabels, lineage: u64) {
        self.labels = labels;
        self.label_lineage = lineage;
    }

    /// Whether the labels are numbered by (a copy of) `index`.
    pub(crate) fn labels_numbered_by(&self, index: &LabelIndex) -> bool {
        self.label_lineage == index.lineage()
    }

    /// The node's value of the label `key` as a number of the snapshot's
    /// [`LabelIndex`]; `None` when the node lacks the label.
    pub fn label_value(&self, key: LabelKey) -> Option<LabelValue> {
        label_index::find(&self.labels, key)
    }

    /// The pods on the node, bound or assumed.
    pub fn pods(&self) -> &[Arc<PodInfo>] {
        &self.pods
    }

    /// The sum of the pods' requests.
    pub fn requested(&self) -> &Resource {
        &self.requested
    }

    /// The sum of the pods' non-zero requests (for scoring).
    pub fn non_zero_requested(&self) -> &Resource {
        &self.non_zero_requested
    }

    /// The node's `status.allocatable`.
    pub fn allocatable(&self) -> &Resource {
        &self.allocatable
    }

    /// The host ports pods on the node use.
    pub fn used_ports(&self) -> &HashSet<HostPort> {
        &self.used_ports
    }

    /// Whether any pod on the node has pod affinity or anti-affinity terms.
    pub fn has_pods_with_affinity(&self) -> bool {
        self.pods_with_affinity > 0
    }

    /// Whether any pod on the node has required anti-affinity terms.
    pub fn has_pods_with_required_anti_affinity(&self) -> bool {
        self.pods_with_required_anti_affinity > 0
    }

    /// Whether any pod on the node has terms that weigh in other pods'
    /// scores (see [`PodInfo::has_scoring_affinity`]).
    pub fn has_pods_with_scoring_affinity(&self) -> bool {
        self.pods_with_scoring_affinity > 0
    }

    /// Bumped on every change, so a snapshot can tell a stale copy.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    /// Adds a pod and its requests and ports.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods_with_affinity += usize::from(pod.has_affinity);
        self.pods_with_required_anti_affinity += usize::from(pod.has_required_anti_affinity);
        self.pods_with_scoring_affinity += usize::from(pod.has_scoring_affinity);
        self.pods.push(pod);
    }

    /// Removes the pod with `key`; whether it was there.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(index) = self.pods.iter().position(|p| p.key == key) else {
            return false;
        };
        let pod = self.pods.swap_remove(index);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in &pod.host_ports {
            self.used_ports.remove(port);
        }
        self.pods_with_affinity -= usize::from(pod.has_affinity);
        self.pods_with_required_anti_affinity -= usize::from(pod.has_required_anti_affinity);
        self.pods_with_scoring_affinity -= usize::from(pod.has_scoring_affinity);
        true
    }
}
