//! The view of the cluster one scheduling cycle works on: every node's
//! `NodeInfo` as it was when the cycle began. The cache brings it up to date
//! before each cycle by replacing only the nodes that changed (see
//! `crate::cache`), so a cycle at 5,000 nodes copies one or two `Arc`s, not
//! 5,000 NodeInfos.

use std::collections::HashMap;
use std::sync::Arc;

use super::node_info::NodeInfo;

/// Every schedulable node's `NodeInfo`, in a stable order.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    with_affinity: Vec<usize>,
    with_required_anti_affinity: Vec<usize>,
}

impl Snapshot {
    /// A snapshot of the given nodes (tests and benchmarks build them so).
    pub fn from_nodes(nodes: impl IntoIterator<Item = NodeInfo>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for node in nodes {
            snapshot.upsert(Arc::new(node));
        }
        snapshot.reindex_affinity();
        snapshot
    }

    /// All nodes.
    pub fn nodes(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// One node by name.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.nodes.get(*self.index.get(name)?)
    }

    /// Nodes with at least one pod that has pod affinity or anti-affinity.
    pub fn nodes_with_affinity(&self) -> impl Iterator<Item = &NodeInfo> {
        self.with_affinity.iter().map(|&i| &*self.nodes[i])
    }

    /// Nodes with at least one pod that has required anti-affinity.
    pub fn nodes_with_required_anti_affinity(&self) -> impl Iterator<Item = &NodeInfo> {
        self.with_required_anti_affinity
            .iter()
            .map(|&i| &*self.nodes[i])
    }

    /// Puts `info` in place of the node of the same name, or appends it.
    pub(crate) fn upsert(&mut self, info: Arc<NodeInfo>) {
        match self.index.get(info.name()) {
            Some(&i) => self.nodes[i] = info,
            None => {
                self.index.insert(info.name().to_string(), self.nodes.len());
                self.nodes.push(info);
            }
        }
    }

    /// Removes the node named `name`, if present.
    pub(crate) fn remove(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name().to_string(), i);
        }
    }

    /// Recomputes the lists of nodes with affinity pods (a scan of flags).
    pub(crate) fn reindex_affinity(&mut self) {
        self.with_affinity.clear();
        self.with_required_anti_affinity.clear();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.has_pods_with_affinity() {
                self.with_affinity.push(i);
            }
            if node.has_pods_with_required_anti_affinity() {
                self.with_required_anti_affinity.push(i);
            }
        }
    }
}
