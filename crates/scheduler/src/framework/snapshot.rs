//! The view of the cluster one scheduling cycle works on: every node's
//! `NodeInfo` as it was when the cycle began. The cache brings it up to date
//! before each cycle by replacing only the nodes that changed (see
//! `crate::cache`), so a cycle at 5,000 nodes copies one or two `Arc`s, not
//! 5,000 NodeInfos.
//!
//! Besides the nodes, a snapshot carries the [`LabelIndex`] its nodes'
//! labels are numbered by (the cache's, shared), and what the queue and
//! the cache know beyond them: the pods nominated to nodes by preemption ([`Nominator`]) and
//! the PodDisruptionBudgets preemption respects, each shared by `Arc`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::label_index::LabelIndex;
use super::node_info::NodeInfo;
use super::nominator::Nominator;

/// Gives every snapshot its own identity.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Every schedulable node's `NodeInfo`, in a stable order, with a log of
/// which nodes changed so plugins can keep their own sums up to date.
#[derive(Debug)]
pub struct Snapshot {
    id: u64,
    nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    /// Indexes of the nodes with pods whose (anti-)affinity terms weigh in
    /// other pods' scores or refuse them, kept as nodes are replaced, so no
    /// cycle scans every node for them.
    with_scoring_affinity: BTreeSet<usize>,
    with_required_anti_affinity: BTreeSet<usize>,
    /// Names of the nodes changed (replaced, added or removed), in order;
    /// entry `i` is version `log_base + i + 1`.
    log: Vec<String>,
    log_base: u64,
    labels: Arc<LabelIndex>,
    nominator: Arc<Nominator>,
    pod_disruption_budgets: Arc<Vec<Arc<PodDisruptionBudget>>>,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            nodes: Vec::new(),
            index: HashMap::new(),
            with_scoring_affinity: BTreeSet::new(),
            with_required_anti_affinity: BTreeSet::new(),
            log: Vec::new(),
            log_base: 0,
            labels: Arc::default(),
            nominator: Arc::default(),
            pod_disruption_budgets: Arc::default(),
        }
    }
}

/// A clone is a new snapshot: it gets its own identity, so what a plugin
/// derived from the original is not taken for the clone's.
impl Clone for Snapshot {
    fn clone(&self) -> Snapshot {
        Snapshot {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            nodes: self.nodes.clone(),
            index: self.index.clone(),
            with_scoring_affinity: self.with_scoring_affinity.clone(),
            with_required_anti_affinity: self.with_required_anti_affinity.clone(),
            log: self.log.clone(),
            log_base: self.log_base,
            labels: self.labels.clone(),
            nominator: self.nominator.clone(),
            pod_disruption_budgets: self.pod_disruption_budgets.clone(),
        }
    }
}

impl Snapshot {
    /// A snapshot of the given nodes (tests and benchmarks build them so).
    pub fn from_nodes(nodes: impl IntoIterator<Item = NodeInfo>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for mut node in nodes {
            node.number_labels(&mut snapshot.labels);
            snapshot.upsert(Arc::new(node));
        }
        snapshot
    }

    /// The index the nodes' labels are numbered by.
    pub fn labels(&self) -> &LabelIndex {
        &self.labels
    }

    /// Takes `index` (a newer copy of the same lineage, or another one) as
    /// the snapshot's. Nodes numbered by another lineage are numbered again
    /// with it, and the change log starts over, so every sum kept from it is
    /// counted afresh.
    pub(crate) fn set_labels(&mut self, index: &mut Arc<LabelIndex>) {
        if self.labels.lineage() != index.lineage() && !self.nodes.is_empty() {
            for node in &mut self.nodes {
                Arc::make_mut(node).number_labels(index);
            }
            self.log_base = self.version() + 1;
            self.log.clear();
        }
        self.labels = index.clone();
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

    /// Nodes with at least one pod whose affinity terms weigh in other
    /// pods' scores (preferred terms, or required affinity).
    pub fn nodes_with_scoring_affinity(&self) -> impl Iterator<Item = &NodeInfo> {
        self.with_scoring_affinity.iter().map(|&i| &*self.nodes[i])
    }

    /// Nodes with at least one pod that has required anti-affinity.
    pub fn nodes_with_required_anti_affinity(&self) -> impl Iterator<Item = &NodeInfo> {
        self.with_required_anti_affinity
            .iter()
            .map(|&i| &*self.nodes[i])
    }

    /// The pods nominated to nodes, as the queue had them when the cycle began.
    pub fn nominator(&self) -> &Nominator {
        &self.nominator
    }

    /// Replaces the nominations (the queue's, shared copy-on-write).
    pub fn set_nominator(&mut self, nominator: Arc<Nominator>) {
        self.nominator = nominator;
    }

    /// Every PodDisruptionBudget, as the cache had them.
    pub fn pod_disruption_budgets(&self) -> &[Arc<PodDisruptionBudget>] {
        &self.pod_disruption_budgets
    }

    /// Replaces the PodDisruptionBudgets.
    pub fn set_pod_disruption_budgets(&mut self, budgets: Arc<Vec<Arc<PodDisruptionBudget>>>) {
        self.pod_disruption_budgets = budgets;
    }

    /// This snapshot's identity (clones get their own).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many changes the snapshot has seen.
    pub fn version(&self) -> u64 {
        self.log_base + self.log.len() as u64
    }

    /// The names of the nodes changed after `version`, oldest first (a name
    /// may repeat); `None` when that part of the log is gone and a consumer
    /// must start over.
    pub fn changed_since(&self, version: u64) -> Option<&[String]> {
        let start = version.checked_sub(self.log_base)?;
        self.log.get(usize::try_from(start).ok()?..)
    }

    fn record(&mut self, name: &str) {
        // Keep the log to a few entries per node; older readers start over.
        if self.log.len() > 4 * self.nodes.len() + 1024 {
            self.log_base += self.log.len() as u64;
            self.log.clear();
        }
        self.log.push(name.to_string());
    }

    /// Puts `info` in place of the node of the same name, or appends it.
    pub(crate) fn upsert(&mut self, info: Arc<NodeInfo>) {
        assert!(
            info.labels_numbered_by(&self.labels),
            "node {} joins a snapshot with labels numbered by another index",
            info.name()
        );
        self.record(info.name());
        let i = match self.index.get(info.name()) {
            Some(&i) => {
                self.nodes[i] = info;
                i
            }
            None => {
                self.index.insert(info.name().to_string(), self.nodes.len());
                self.nodes.push(info);
                self.nodes.len() - 1
            }
        };
        let node = &self.nodes[i];
        let (affinity, anti_affinity) = (
            node.has_pods_with_scoring_affinity(),
            node.has_pods_with_required_anti_affinity(),
        );
        mark(&mut self.with_scoring_affinity, i, affinity);
        mark(&mut self.with_required_anti_affinity, i, anti_affinity);
    }

    /// Removes the node named `name`, if present.
    pub(crate) fn remove(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        self.record(name);
        self.nodes.swap_remove(i);
        // The last node moved from index `len` into `i`.
        let moved_from = self.nodes.len();
        for set in [
            &mut self.with_scoring_affinity,
            &mut self.with_required_anti_affinity,
        ] {
            set.remove(&i);
            if set.remove(&moved_from) {
                set.insert(i);
            }
        }
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name().to_string(), i);
        }
    }
}

/// Puts `i` in `set` or takes it out.
fn mark(set: &mut BTreeSet<usize>, i: usize, member: bool) {
    if member {
        set.insert(i);
    } else {
        set.remove(&i);
    }
}
