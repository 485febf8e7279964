//! Builders for nodes and pods, and tables that run one plugin over nodes:
//! the vocabulary of the scheduler's unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, Node, NodeSpec, NodeStatus, Pod, PodSpec,
    ResourceRequirements, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::framework::{CycleState, NodeFilter, NodeInfo, Plugin, PodInfo, Snapshot, Status};

/// Sets `key` in a label or annotation map, making the map if needed.
fn put(map: &mut Option<BTreeMap<String, String>>, key: &str, value: &str) {
    map.get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
}

/// A node with 4 cpu, 8Gi memory and room for 110 pods, labelled with its hostname.
pub(crate) fn node(name: &str) -> Node {
    let mut node = Node::default();
    node.metadata.name = Some(name.into());
    node.metadata.labels = Some(BTreeMap::from([(
        "kubernetes.io/hostname".to_string(),
        name.to_string(),
    )]));
    node.status = Some(NodeStatus {
        allocatable: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("4".into())),
            ("memory".to_string(), Quantity("8Gi".into())),
            ("pods".to_string(), Quantity("110".into())),
        ])),
        ..Default::default()
    });
    node
}

/// Builder methods for test nodes.
pub(crate) trait NodeExt: Sized {
    fn allocatable(self, name: &str, quantity: &str) -> Self;
    fn label(self, key: &str, value: &str) -> Self;
    fn taint(self, key: &str, value: &str, effect: &str) -> Self;
    fn unschedulable(self) -> Self;
}

impl NodeExt for Node {
    fn allocatable(mut self, name: &str, quantity: &str) -> Node {
        let status = self.status.get_or_insert_with(Default::default);
        status
            .allocatable
            .get_or_insert_with(Default::default)
            .insert(name.into(), Quantity(quantity.into()));
        self
    }
    fn label(mut self, key: &str, value: &str) -> Node {
        put(&mut self.metadata.labels, key, value);
        self
    }
    fn taint(mut self, key: &str, value: &str, effect: &str) -> Node {
        let spec = self.spec.get_or_insert_with(NodeSpec::default);
        spec.taints.get_or_insert_with(Vec::new).push(Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.into()),
            effect: effect.into(),
            ..Default::default()
        });
        self
    }
    fn unschedulable(mut self) -> Node {
        self.spec
            .get_or_insert_with(NodeSpec::default)
            .unschedulable = Some(true);
        self
    }
}

/// A pod in `default` with one container asking for nothing.
pub(crate) fn pod(name: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.metadata.namespace = Some("default".into());
    pod.spec = Some(PodSpec {
        containers: vec![Container {
            name: "app".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    pod
}

/// Builder methods for test pods.
pub(crate) trait PodExt: Sized {
    fn request(self, name: &str, quantity: &str) -> Self;
    fn node_name(self, node: &str) -> Self;
    fn label(self, key: &str, value: &str) -> Self;
    fn annotation(self, key: &str, value: &str) -> Self;
    fn toleration(self, key: &str, operator: &str, value: &str, effect: &str) -> Self;
    fn host_port(self, port: i32) -> Self;
    fn priority(self, priority: i32) -> Self;
    fn affinity(self, affinity: serde_json::Value) -> Self;
    fn spec_json(self, field: &str, value: serde_json::Value) -> Self;
    fn nominated_node(self, node: &str) -> Self;
    fn ready(self) -> Self;
    fn terminating(self) -> Self;
}

/// The spec every test pod has.
fn spec_mut(pod: &mut Pod) -> &mut PodSpec {
    pod.spec.as_mut().expect("test pods have a spec")
}

impl PodExt for Pod {
    fn request(mut self, name: &str, quantity: &str) -> Pod {
        spec_mut(&mut self).containers[0]
            .resources
            .get_or_insert_with(ResourceRequirements::default)
            .requests
            .get_or_insert_with(Default::default)
            .insert(name.into(), Quantity(quantity.into()));
        self
    }
    fn node_name(mut self, node: &str) -> Pod {
        spec_mut(&mut self).node_name = Some(node.into());
        self
    }
    fn label(mut self, key: &str, value: &str) -> Pod {
        put(&mut self.metadata.labels, key, value);
        self
    }
    fn annotation(mut self, key: &str, value: &str) -> Pod {
        put(&mut self.metadata.annotations, key, value);
        self
    }
    fn toleration(mut self, key: &str, operator: &str, value: &str, effect: &str) -> Pod {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let spec = spec_mut(&mut self);
        spec.tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: some(key),
                operator: some(operator),
                value: some(value),
                effect: some(effect),
                ..Default::default()
            });
        self
    }
    fn host_port(mut self, port: i32) -> Pod {
        spec_mut(&mut self).containers[0]
            .ports
            .get_or_insert_with(Vec::new)
            .push(ContainerPort {
                container_port: port,
                host_port: Some(port),
                ..Default::default()
            });
        self
    }
    fn priority(mut self, priority: i32) -> Pod {
        spec_mut(&mut self).priority = Some(priority);
        self
    }
    fn affinity(mut self, affinity: serde_json::Value) -> Pod {
        let affinity: Affinity = serde_json::from_value(affinity).expect("a valid affinity");
        spec_mut(&mut self).affinity = Some(affinity);
        self
    }
    fn spec_json(self, field: &str, value: serde_json::Value) -> Pod {
        let mut json = serde_json::to_value(&self).expect("pods serialize");
        json["spec"][field] = value;
        serde_json::from_value(json).expect("a valid pod spec")
    }
    fn nominated_node(mut self, node: &str) -> Pod {
        self.status
            .get_or_insert_with(Default::default)
            .nominated_node_name = Some(node.into());
        self
    }
    fn ready(mut self) -> Pod {
        let condition =
            serde_json::from_value(serde_json::json!({"type": "Ready", "status": "True"}))
                .expect("a valid condition");
        let status = self.status.get_or_insert_with(Default::default);
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(condition);
        self
    }
    fn terminating(mut self) -> Pod {
        let now = k8s_openapi::jiff::Timestamp::now();
        self.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        self
    }
}

/// A snapshot of `nodes` with `pods` placed by their `spec.nodeName`.
pub(crate) fn snapshot(nodes: &[Node], pods: &[Pod]) -> Snapshot {
    let infos = nodes.iter().map(|n| {
        let mut info = NodeInfo::new(Arc::new(n.clone()));
        for p in pods {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(info.name()) {
                info.add_pod(Arc::new(PodInfo::new(Arc::new(p.clone()))));
            }
        }
        info
    });
    Snapshot::from_nodes(infos.collect::<Vec<_>>())
}

/// Runs a plugin's PreFilter (if any); `Err` carries a rejection, and
/// `Ok(None)` a Skip (the plugin's Filter does not run).
pub(crate) fn pre_filter(
    plugin: &dyn Plugin,
    pod: &PodInfo,
    snapshot: &Snapshot,
) -> Result<Option<CycleState>, Status> {
    let mut state = CycleState::new();
    if let Some(pre) = plugin.as_pre_filter() {
        let status = pre.pre_filter(&mut state, pod, snapshot);
        match status.code() {
            crate::framework::Code::Skip => return Ok(None),
            crate::framework::Code::Success => {}
            _ => return Err(status),
        }
    }
    Ok(Some(state))
}

/// The names of the nodes `plugin` lets `pod` onto, existing pods placed.
pub(crate) fn filter_in(plugin: &dyn Plugin, pod: &Pod, snapshot: &Snapshot) -> Vec<String> {
    let pod = PodInfo::new(Arc::new(pod.clone()));
    let Ok(state) = pre_filter(plugin, &pod, snapshot) else {
        return Vec::new();
    };
    snapshot
        .nodes()
        .iter()
        .filter(|n| match (&state, plugin.as_filter()) {
            (Some(state), Some(f)) => f.filter(state, &pod, n).is_success(),
            _ => true,
        })
        .map(|n| n.name().to_string())
        .collect()
}

/// The names of the nodes `plugin` lets `pod` onto (no other pods).
pub(crate) fn filter_table(plugin: &dyn Plugin, pod: &Pod, nodes: &[Node]) -> Vec<String> {
    filter_in(plugin, pod, &snapshot(nodes, &[]))
}

/// The status `plugin` gives `pod` on each node, in order.
pub(crate) fn filter_statuses(plugin: &dyn Plugin, pod: &Pod, snapshot: &Snapshot) -> Vec<Status> {
    let pod = PodInfo::new(Arc::new(pod.clone()));
    match pre_filter(plugin, &pod, snapshot) {
        Err(status) => vec![status; snapshot.len()],
        Ok(None) => vec![Status::success(); snapshot.len()],
        Ok(Some(state)) => snapshot
            .nodes()
            .iter()
            .map(|n| {
                plugin
                    .as_filter()
                    .map_or_else(Status::success, |f| f.filter(&state, &pod, n))
            })
            .collect(),
    }
}

/// The normalized scores `plugin` gives `pod` on every node of the snapshot.
pub(crate) fn score_in(plugin: &dyn Plugin, pod: &Pod, snapshot: &Snapshot) -> Vec<i64> {
    let pod = PodInfo::new(Arc::new(pod.clone()));
    let mut state = CycleState::new();
    let nodes: Vec<&NodeInfo> = snapshot.nodes().iter().map(|n| &**n).collect();
    if let Some(pre) = plugin.as_pre_score() {
        let status = pre.pre_score(&mut state, &pod, &nodes, snapshot);
        assert!(!status.is_rejected(), "PreScore failed: {status}");
        if status.code() == crate::framework::Code::Skip {
            return vec![0; nodes.len()];
        }
    }
    let score = plugin.as_score().expect("a Score plugin");
    let mut scores: Vec<i64> = nodes
        .iter()
        .map(|n| score.score(&state, &pod, n).expect("scores"))
        .collect();
    score.normalize_score(&state, &pod, &mut scores);
    scores
}

/// The normalized scores over `nodes` with no other pods.
pub(crate) fn score_table(plugin: &dyn Plugin, pod: &Pod, nodes: &[Node]) -> Vec<i64> {
    score_in(plugin, pod, &snapshot(nodes, &[]))
}

/// A filter that runs one plugin, for PostFilter tests.
pub(crate) struct OneFilter<'a>(pub &'a [&'a dyn Plugin]);

impl NodeFilter for OneFilter<'_> {
    fn run_filters(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for plugin in self.0 {
            if let Some(filter) = plugin.as_filter() {
                let status = filter.filter(state, pod, node);
                if !status.is_success() {
                    return status;
                }
            }
        }
        Status::success()
    }
}
