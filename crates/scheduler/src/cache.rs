//! The scheduler's cache: every node and every pod bound (or about to be
//! bound) to one, as kube-scheduler's `internal/cache`.
//!
//! Binding is asynchronous, so the scheduling loop does not wait for the API:
//! it *assumes* the pod on its node at once (the next cycle already sees the
//! node's resources taken), binds in the background, and then either the
//! informer's update confirms the pod, or the binding failed and the pod is
//! *forgotten*. An assumed pod whose binding finished but that the informer
//! never confirms expires after a TTL.
//!
//! Snapshots are kept up to date incrementally: every change marks its node
//! dirty, and [`Cache::update_snapshot`] replaces only the dirty nodes'
//! `Arc<NodeInfo>` in the snapshot. NodeInfos are shared copy-on-write
//! between cache and snapshot (`Arc::make_mut`), so a change copies one node,
//! and a cycle at 5,000 nodes copies nothing.
//!
//! Node labels are numbered here, as nodes enter or change, in one
//! [`LabelIndex`] the snapshots share, so a cycle's topology plugins compare
//! numbers (see `framework::label_index`).
//!
//! The cache also keeps the PodDisruptionBudgets (preemption reads them from
//! the snapshot), as one shared list rebuilt when one of them changes.
//!
//! # Caveats
//! No node image states or volume bookkeeping.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::framework::{pod_key, LabelIndex, NodeInfo, PodInfo, Snapshot};

/// How long an assumed pod whose binding finished waits for the informer.
pub const DEFAULT_ASSUMED_POD_TTL: Duration = Duration::from_secs(30);

/// What the cache knows of one pod.
#[derive(Debug)]
struct PodState {
    node: String,
    assumed: bool,
    /// When an assumed pod whose binding finished expires.
    deadline: Option<Instant>,
}

/// Why the cache refused an operation.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The pod is already in the cache.
    #[error("pod {0} is already in the cache")]
    AlreadyPresent(String),
    /// The pod was never assumed (or was confirmed meanwhile).
    #[error("pod {0} is not assumed")]
    NotAssumed(String),
}

/// Nodes and their pods, with assumed pods.
#[derive(Debug)]
pub struct Cache {
    nodes: HashMap<String, Arc<NodeInfo>>,
    pods: HashMap<String, PodState>,
    dirty: HashSet<String>,
    generation: u64,
    /// Every node's labels as numbers; snapshots share it.
    labels: Arc<LabelIndex>,
    ttl: Duration,
    pod_disruption_budgets: BTreeMap<String, Arc<PodDisruptionBudget>>,
    /// The budgets above as the snapshot shares them.
    budget_list: Arc<Vec<Arc<PodDisruptionBudget>>>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(DEFAULT_ASSUMED_POD_TTL)
    }
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// `namespace/name` of a budget.
fn budget_key(budget: &PodDisruptionBudget) -> String {
    let meta = &budget.metadata;
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default()
    )
}

impl Cache {
    /// An empty cache whose assumed pods expire `ttl` after binding.
    pub fn new(ttl: Duration) -> Cache {
        Cache {
            nodes: HashMap::new(),
            pods: HashMap::new(),
            dirty: HashSet::new(),
            generation: 0,
            labels: Arc::default(),
            ttl,
            pod_disruption_budgets: BTreeMap::new(),
            budget_list: Arc::default(),
        }
    }

    /// The NodeInfo to change, marked dirty with a new generation.
    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        self.generation += 1;
        self.dirty.insert(name.to_string());
        let info = self
            .nodes
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(NodeInfo::empty(name.to_string())));
        let info = Arc::make_mut(info);
        info.set_generation(self.generation);
        info
    }

    /// Drops a placeholder that has neither node nor pods left.
    fn prune(&mut self, name: &str) {
        if self
            .nodes
            .get(name)
            .is_some_and(|n| n.node_opt().is_none() && n.pods().is_empty())
        {
            self.nodes.remove(name);
        }
    }

    /// Adds or replaces a node.
    pub fn add_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = LabelIndex::number_node(&mut self.labels, Some(&node));
        let lineage = self.labels.lineage();
        let info = self.node_mut(&name);
        info.set_node(node);
        info.set_numbered_labels(labels, lineage);
    }

    /// Removes a node; its pods stay until they are deleted.
    pub fn remove_node(&mut self, name: &str) {
        if self.nodes.contains_key(name) {
            self.node_mut(name).clear_node();
            self.prune(name);
        }
    }

    /// A pod the informer saw bound to a node: confirms an assumed pod, or adds it.
    pub fn add_pod(&mut self, pod: Arc<Pod>) {
        let Some(node) = node_of(&pod).map(str::to_string) else {
            return;
        };
        let key = pod_key(&pod);
        if let Some(state) = self.pods.get(&key) {
            // Confirmed (or changed): take it off wherever it was.
            let old = state.node.clone();
            self.node_mut(&old).remove_pod(&key);
            self.prune(&old);
        }
        self.node_mut(&node).add_pod(Arc::new(PodInfo::new(pod)));
        self.pods.insert(
            key,
            PodState {
                node,
                assumed: false,
                deadline: None,
            },
        );
    }

    /// A bound pod changed (labels, or it was bound): same as adding it again.
    pub fn update_pod(&mut self, pod: Arc<Pod>) {
        self.add_pod(pod);
    }

    /// A pod went away (deleted, or finished and no longer needs its room).
    pub fn remove_pod(&mut self, key: &str) {
        if let Some(state) = self.pods.remove(key) {
            self.node_mut(&state.node).remove_pod(key);
            self.prune(&state.node);
        }
    }

    /// Puts the pod on `node` before it is bound.
    pub fn assume_pod(&mut self, pod: Arc<PodInfo>, node: &str) -> Result<(), CacheError> {
        if self.pods.contains_key(&pod.key) {
            return Err(CacheError::AlreadyPresent(pod.key.clone()));
        }
        self.pods.insert(
            pod.key.clone(),
            PodState {
                node: node.to_string(),
                assumed: true,
                deadline: None,
            },
        );
        self.node_mut(node).add_pod(pod);
        Ok(())
    }

    /// The binding call returned: the assumption now expires after the TTL
    /// unless the informer confirms it first.
    pub fn finish_binding(&mut self, key: &str, now: Instant) {
        if let Some(state) = self.pods.get_mut(key).filter(|s| s.assumed) {
            state.deadline = Some(now + self.ttl);
        }
    }

    /// Binding failed: takes the assumed pod off its node.
    pub fn forget_pod(&mut self, key: &str) -> Result<(), CacheError> {
        match self.pods.get(key) {
            Some(state) if state.assumed => {
                self.remove_pod(key);
                Ok(())
            }
            _ => Err(CacheError::NotAssumed(key.to_string())),
        }
    }

    /// Drops assumed pods whose binding finished more than the TTL ago.
    pub fn cleanup_assumed_pods(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, s)| s.assumed && s.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.remove_pod(key);
        }
        expired
    }

    /// Whether the pod is assumed and not yet confirmed.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|s| s.assumed)
    }

    /// Whether the cache holds the pod (assumed or bound).
    pub fn has_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// The number of nodes (with a Node object).
    pub fn node_count(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| n.node_opt().is_some())
            .count()
    }

    /// The number of pods (bound and assumed).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// One node's info.
    pub fn node(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.nodes.get(name)
    }

    /// Adds or replaces a PodDisruptionBudget.
    pub fn add_pod_disruption_budget(&mut self, budget: Arc<PodDisruptionBudget>) {
        self.pod_disruption_budgets
            .insert(budget_key(&budget), budget);
        self.rebuild_budget_list();
    }

    /// Removes a PodDisruptionBudget.
    pub fn remove_pod_disruption_budget(&mut self, budget: &PodDisruptionBudget) {
        if self
            .pod_disruption_budgets
            .remove(&budget_key(budget))
            .is_some()
        {
            self.rebuild_budget_list();
        }
    }

    fn rebuild_budget_list(&mut self) {
        let list = self.pod_disruption_budgets.values().cloned().collect();
        self.budget_list = Arc::new(list);
    }

    /// Brings `snapshot` up to date, touching only the nodes that changed;
    /// returns how many it replaced.
    pub fn update_snapshot(&mut self, snapshot: &mut Snapshot) -> usize {
        let changed = self.dirty.len();
        snapshot.set_labels(&mut self.labels);
        for name in self.dirty.drain() {
            match self.nodes.get(&name) {
                Some(info) if info.node_opt().is_some() => snapshot.upsert(info.clone()),
                _ => snapshot.remove(&name),
            }
        }
        snapshot.set_pod_disruption_budgets(self.budget_list.clone());
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, PodExt};

    fn cache_with_nodes(names: &[&str]) -> (Cache, Snapshot) {
        let mut cache = Cache::default();
        for name in names {
            cache.add_node(Arc::new(node(name)));
        }
        let mut snapshot = Snapshot::default();
        cache.update_snapshot(&mut snapshot);
        (cache, snapshot)
    }

    fn info(p: Pod) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn an_assumed_pod_takes_room_at_once_and_forgetting_gives_it_back() {
        let (mut cache, mut snapshot) = cache_with_nodes(&["a", "b"]);
        cache
            .assume_pod(info(pod("p").request("cpu", "1")), "a")
            .expect("assumed");
        assert_eq!(
            cache.update_snapshot(&mut snapshot),
            1,
            "only node a changed"
        );
        assert_eq!(snapshot.get("a").expect("a").requested().milli_cpu, 1000);
        cache.forget_pod("default/p").expect("forgotten");
        cache.update_snapshot(&mut snapshot);
        assert_eq!(snapshot.get("a").expect("a").requested().milli_cpu, 0);
        assert!(!cache.has_pod("default/p"));
    }

    #[test]
    fn the_informer_confirms_an_assumed_pod() {
        let (mut cache, _) = cache_with_nodes(&["a"]);
        cache
            .assume_pod(info(pod("p").request("cpu", "1")), "a")
            .expect("assumed");
        cache.add_pod(Arc::new(pod("p").request("cpu", "1").node_name("a")));
        assert!(!cache.is_assumed("default/p"));
        assert_eq!(
            cache.forget_pod("default/p"),
            Err(CacheError::NotAssumed("default/p".into()))
        );
        assert_eq!(cache.node("a").expect("a").pods().len(), 1, "counted once");
    }

    #[test]
    fn an_unconfirmed_assumption_expires_after_the_ttl() {
        let (mut cache, _) = cache_with_nodes(&["a"]);
        let start = Instant::now();
        cache.assume_pod(info(pod("p")), "a").expect("assumed");
        assert!(
            cache
                .cleanup_assumed_pods(start + Duration::from_secs(3600))
                .is_empty(),
            "binding not finished"
        );
        cache.finish_binding("default/p", start);
        assert!(cache
            .cleanup_assumed_pods(start + Duration::from_secs(29))
            .is_empty());
        assert_eq!(
            cache.cleanup_assumed_pods(start + Duration::from_secs(30)),
            ["default/p"]
        );
        assert!(cache.node("a").expect("a").pods().is_empty());
    }

    #[test]
    fn a_snapshot_keeps_its_copy_while_the_cache_moves_on() {
        let (mut cache, mut snapshot) = cache_with_nodes(&["a"]);
        let before = snapshot.clone();
        cache.add_pod(Arc::new(pod("p").request("cpu", "2").node_name("a")));
        cache.update_snapshot(&mut snapshot);
        assert_eq!(before.get("a").expect("a").requested().milli_cpu, 0);
        assert_eq!(snapshot.get("a").expect("a").requested().milli_cpu, 2000);
        assert!(
            snapshot.get("a").expect("a").generation() > before.get("a").expect("a").generation()
        );
    }

    #[test]
    fn removed_nodes_leave_the_snapshot_and_their_pods_wait() {
        let (mut cache, mut snapshot) = cache_with_nodes(&["a", "b"]);
        cache.add_pod(Arc::new(pod("p").node_name("a")));
        cache.remove_node("a");
        cache.update_snapshot(&mut snapshot);
        assert!(snapshot.get("a").is_none());
        assert_eq!(snapshot.len(), 1);
        cache.remove_pod("default/p");
        assert!(
            cache.node("a").is_none(),
            "placeholder dropped with its last pod"
        );
    }

    #[test]
    fn nodes_with_anti_affinity_pods_are_tracked_as_nodes_move_and_change() {
        let (mut cache, mut snapshot) = cache_with_nodes(&["a", "b", "c"]);
        let solo = pod("solo")
            .node_name("c")
            .affinity(serde_json::json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": "solo"}},
                "topologyKey": "kubernetes.io/hostname"}]}}));
        cache.add_pod(Arc::new(solo));
        cache.update_snapshot(&mut snapshot);
        let names = |s: &Snapshot| -> Vec<String> {
            s.nodes_with_required_anti_affinity()
                .map(|n| n.name().to_string())
                .collect()
        };
        assert_eq!(names(&snapshot), ["c"]);
        // Removing a moves c into a's place in the snapshot.
        cache.remove_node("a");
        cache.update_snapshot(&mut snapshot);
        assert_eq!(names(&snapshot), ["c"]);
        assert_eq!(
            snapshot.nodes_with_scoring_affinity().count(),
            0,
            "required anti-affinity weighs in no other pod's score"
        );
        cache.remove_pod("default/solo");
        cache.update_snapshot(&mut snapshot);
        assert!(names(&snapshot).is_empty());
    }

    /// Each node's labels read through the snapshot's numbers, as text.
    fn numbered_labels(snapshot: &Snapshot, keys: &[&str]) -> Vec<Vec<Option<String>>> {
        let index = snapshot.labels();
        let mut nodes: Vec<_> = snapshot.nodes().iter().collect();
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
        (nodes.iter())
            .map(|node| {
                (keys.iter())
                    .map(|key| {
                        let k = index.key(key)?;
                        Some(index.value_name(k, node.label_value(k)?)?.to_string())
                    })
                    .collect()
            })
            .collect()
    }

    /// The same, read from the Node objects' label maps.
    fn labels_as_text(snapshot: &Snapshot, keys: &[&str]) -> Vec<Vec<Option<String>>> {
        let mut nodes: Vec<_> = snapshot.nodes().iter().collect();
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
        (nodes.iter())
            .map(|node| {
                keys.iter()
                    .map(|k| node.label(k).map(str::to_string))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn numbered_labels_read_as_the_nodes_labels_through_adds_updates_and_removals() {
        use crate::testing::NodeExt;
        let keys = ["zone", "rack", "kubernetes.io/hostname", "never"];
        let mut cache = Cache::default();
        let mut snapshot = Snapshot::default();
        let mut held = None;
        type Step = Box<dyn Fn(&mut Cache)>;
        let steps: Vec<Step> = vec![
            Box::new(|c| c.add_node(Arc::new(node("a").label("zone", "x")))),
            Box::new(|c| c.add_node(Arc::new(node("b").label("zone", "y").label("rack", "1")))),
            Box::new(|c| c.add_pod(Arc::new(pod("p").node_name("b")))),
            // Relabelled: a new zone, a label gained.
            Box::new(|c| c.add_node(Arc::new(node("a").label("zone", "z").label("rack", "2")))),
            // A label lost.
            Box::new(|c| c.add_node(Arc::new(node("b").label("zone", "y")))),
            Box::new(|c| c.remove_node("a")),
            Box::new(|c| c.add_node(Arc::new(node("a").label("kubernetes.io/hostname", "a")))),
            Box::new(|c| c.remove_pod("default/p")),
        ];
        for (i, step) in steps.iter().enumerate() {
            step(&mut cache);
            cache.update_snapshot(&mut snapshot);
            let fresh = Snapshot::from_nodes(snapshot.nodes().iter().map(|n| (**n).clone()));
            assert_eq!(
                numbered_labels(&snapshot, &keys),
                labels_as_text(&snapshot, &keys),
                "after step {i}"
            );
            assert_eq!(
                numbered_labels(&fresh, &keys),
                labels_as_text(&snapshot, &keys),
                "after step {i}, numbered afresh"
            );
            if i == 1 {
                held = Some(snapshot.clone());
            }
        }
        let held = held.expect("kept after step 1");
        assert_eq!(
            numbered_labels(&held, &keys),
            [
                [Some("x".to_string()), None, Some("a".into()), None],
                [Some("y".into()), Some("1".into()), Some("b".into()), None]
            ],
            "a snapshot held by a cycle keeps reading the labels it had"
        );
    }

    #[test]
    fn a_snapshot_numbered_elsewhere_is_numbered_again_by_the_cache() {
        use crate::testing::NodeExt;
        let stray = NodeInfo::new(Arc::new(node("s").label("rack", "9").label("zone", "q")));
        let mut snapshot = Snapshot::from_nodes([stray]);
        let version = snapshot.version();
        let mut cache = Cache::default();
        cache.add_node(Arc::new(node("a").label("zone", "x")));
        cache.update_snapshot(&mut snapshot);
        let keys = ["zone"];
        assert_eq!(
            numbered_labels(&snapshot, &keys),
            labels_as_text(&snapshot, &keys)
        );
        assert!(
            snapshot.changed_since(version).is_none(),
            "sums kept over the old numbers start over"
        );
    }

    #[test]
    fn budgets_reach_the_snapshot_and_leave_it() {
        let (mut cache, mut snapshot) = cache_with_nodes(&["a"]);
        let budget: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 1}}))
        .expect("a valid budget");
        cache.add_pod_disruption_budget(Arc::new(budget.clone()));
        cache.update_snapshot(&mut snapshot);
        assert_eq!(snapshot.pod_disruption_budgets().len(), 1);
        cache.remove_pod_disruption_budget(&budget);
        cache.update_snapshot(&mut snapshot);
        assert!(snapshot.pod_disruption_budgets().is_empty());
    }
}
