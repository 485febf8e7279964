//! One profile's plugins, run in the framework's order over a snapshot: the
//! pure heart of a scheduling cycle (kube-scheduler's `frameworkImpl` and
//! `schedulePod`).
//!
//! Filtering stops once enough feasible nodes are found —
//! `percentageOfNodesToScore`, by default adaptive: `50 - nodes/125` percent,
//! at least 5%, and never fewer than 100 nodes — and the next cycle starts
//! where this one stopped, so every node gets its turn. A node is filtered
//! with the pods nominated to it that are at least as important as the pod
//! (see `nominator`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::interface::{
    BindPlugin, FilterPlugin, NodeFilter, Plugin, PostFilterResult, PreBindPlugin,
};
use super::nominator::with_nominated_pods;
use super::{Code, CycleState, NodeInfo, PodInfo, Snapshot, Status};

/// Below this many nodes every node is filtered (kube's `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The least percentage the adaptive rule goes down to.
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// A profile's plugins, ready to run cycles.
pub struct Framework {
    scheduler_name: String,
    plugins: Vec<Arc<dyn Plugin>>,
    /// Score weight of each plugin (same index as `plugins`).
    weights: Vec<i64>,
    percentage_of_nodes_to_score: Option<u32>,
    pre_bind: Vec<Arc<dyn PreBindPlugin>>,
    bind: Vec<Arc<dyn BindPlugin>>,
    next_start_node_index: AtomicUsize,
    rng: Mutex<StdRng>,
}

/// Where the cycle would put the pod, with the state its plugins left.
pub struct ScheduleResult {
    /// The chosen node.
    pub node_name: String,
    /// How many nodes were filtered.
    pub evaluated_nodes: usize,
    /// How many of them fit.
    pub feasible_nodes: usize,
    /// The cycle's state, for Reserve, Permit and Unreserve.
    pub state: CycleState,
}

/// Why no node fits: each rejected node's status, or one PreFilter rejection.
pub struct FitError {
    /// How many nodes the snapshot had.
    pub num_all_nodes: usize,
    /// The status of each node that was rejected, by node name.
    pub statuses: HashMap<String, Status>,
    /// A PreFilter rejection that applied to all nodes.
    pub pre_filter: Option<Status>,
    /// The cycle's state, for PostFilter to run the filters again.
    pub state: CycleState,
}

impl std::fmt::Debug for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitError")
            .field("num_all_nodes", &self.num_all_nodes)
            .field("statuses", &self.statuses)
            .field("pre_filter", &self.pre_filter)
            .finish_non_exhaustive()
    }
}

impl FitError {
    /// kube-scheduler's message: `0/5 nodes are available: 2 Insufficient cpu,
    /// 3 node(s) had untolerated taint {dedicated: gpu}.` — the reasons
    /// counted over nodes and sorted as strings.
    pub fn message(&self) -> String {
        if let Some(status) = &self.pre_filter {
            return format!(
                "0/{} nodes are available: {}.",
                self.num_all_nodes,
                status.reasons().join(", ")
            );
        }
        let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
        for status in self.statuses.values() {
            for reason in status.reasons() {
                *histogram.entry(reason).or_default() += 1;
            }
        }
        let mut reasons: Vec<String> = histogram
            .into_iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        reasons.sort();
        format!(
            "0/{} nodes are available: {}.",
            self.num_all_nodes,
            reasons.join(", ")
        )
    }

    /// The plugins that rejected the pod (to know which events may help).
    pub fn rejecting_plugins(&self) -> Vec<&'static str> {
        let mut plugins: Vec<&'static str> = self
            .pre_filter
            .iter()
            .chain(self.statuses.values())
            .map(Status::plugin)
            .collect();
        plugins.sort_unstable();
        plugins.dedup();
        plugins
    }
}

/// How many feasible nodes a cycle looks for among `num_all_nodes`.
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut percentage = percentage.unwrap_or(0) as usize;
    if percentage >= 100 {
        return num_all_nodes;
    }
    if percentage == 0 {
        percentage = (50usize.saturating_sub(num_all_nodes / 125))
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    (num_all_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

impl Framework {
    /// A framework over `plugins` with their score weights.
    pub fn new(
        scheduler_name: impl Into<String>,
        plugins: Vec<(Arc<dyn Plugin>, i64)>,
        percentage_of_nodes_to_score: Option<u32>,
        seed: u64,
    ) -> Framework {
        let (plugins, weights) = plugins.into_iter().unzip();
        Framework {
            scheduler_name: scheduler_name.into(),
            plugins,
            weights,
            percentage_of_nodes_to_score,
            pre_bind: Vec::new(),
            bind: Vec::new(),
            next_start_node_index: AtomicUsize::new(0),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// Adds a binder (binding needs the API, so the shell supplies it).
    pub fn with_binder(mut self, binder: Arc<dyn BindPlugin>) -> Framework {
        self.bind.push(binder);
        self
    }

    /// Adds a PreBind plugin.
    pub fn with_pre_bind(mut self, plugin: Arc<dyn PreBindPlugin>) -> Framework {
        self.pre_bind.push(plugin);
        self
    }

    /// The `schedulerName` pods ask for to be scheduled by this profile.
    pub fn scheduler_name(&self) -> &str {
        &self.scheduler_name
    }

    /// The names of the plugins, in order.
    pub fn plugin_names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    /// The plugins themselves (for the events each one registers).
    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    /// Finds a node for the pod: PreFilter, Filter, PreScore, Score, select.
    pub fn schedule(
        &self,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<ScheduleResult, Box<FitError>> {
        let mut state = CycleState::new();
        let num_all_nodes = snapshot.len();
        let fit_error = |statuses, pre_filter, state| {
            Box::new(FitError {
                num_all_nodes,
                statuses,
                pre_filter,
                state,
            })
        };
        if num_all_nodes == 0 {
            let status = Status::unresolvable("no nodes available to schedule pods");
            return Err(fit_error(HashMap::new(), Some(status), state));
        }
        if let Err(status) = self.run_pre_filters(&mut state, pod, snapshot) {
            return Err(fit_error(HashMap::new(), Some(status), state));
        }
        let (feasible, rejected, evaluated) = self.find_feasible_nodes(&state, pod, snapshot);
        if feasible.is_empty() {
            let statuses = rejected
                .into_iter()
                .map(|(node, status)| (node.name().to_string(), status))
                .collect();
            return Err(fit_error(statuses, None, state));
        }
        let feasible_nodes = feasible.len();
        let node_name = if feasible.len() == 1 {
            feasible[0].name().to_string()
        } else {
            match self.prioritize(&mut state, pod, &feasible, snapshot) {
                Ok(scores) => self.select_host(&feasible, &scores),
                Err(status) => return Err(fit_error(HashMap::new(), Some(status), state)),
            }
        };
        Ok(ScheduleResult {
            node_name,
            evaluated_nodes: evaluated,
            feasible_nodes,
            state,
        })
    }

    fn run_pre_filters(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<(), Status> {
        for plugin in &self.plugins {
            let Some(pre_filter) = plugin.as_pre_filter() else {
                continue;
            };
            let status = pre_filter.pre_filter(state, pod, snapshot);
            match status.code() {
                Code::Success => {}
                Code::Skip => state.skip_filter(plugin.name()),
                _ => return Err(status.with_plugin(plugin.name())),
            }
        }
        Ok(())
    }

    /// Filters nodes from where the last cycle stopped until enough fit.
    /// Returns the feasible nodes, the rejected ones with their statuses
    /// (named only if no node fits: most cycles drop them), and how many
    /// nodes were filtered.
    fn find_feasible_nodes<'s>(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &'s Snapshot,
    ) -> (Vec<&'s NodeInfo>, Vec<(&'s NodeInfo, Status)>, usize) {
        let nodes = snapshot.nodes();
        let wanted = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, nodes.len());
        let start = self.next_start_node_index.load(Ordering::Relaxed) % nodes.len();
        // The filters of this cycle, skipped ones left out once, not per node.
        let filters: Vec<(&'static str, &dyn FilterPlugin)> = self
            .plugins
            .iter()
            .filter(|p| !state.skips_filter(p.name()))
            .filter_map(|p| Some((p.name(), p.as_filter()?)))
            .collect();
        let mut feasible = Vec::with_capacity(wanted);
        let mut rejected = Vec::new();
        let mut evaluated = 0;
        for i in 0..nodes.len() {
            let node = &*nodes[(start + i) % nodes.len()];
            evaluated += 1;
            let status = with_nominated_pods(pod, node, snapshot, |node| {
                filters
                    .iter()
                    .map(|(name, filter)| filter.filter(state, pod, node).with_plugin(name))
                    .find(|status| !status.is_success())
                    .unwrap_or_else(Status::success)
            });
            if status.is_success() {
                feasible.push(node);
                if feasible.len() >= wanted {
                    break;
                }
            } else {
                rejected.push((node, status));
            }
        }
        self.next_start_node_index
            .store((start + evaluated) % nodes.len(), Ordering::Relaxed);
        (feasible, rejected, evaluated)
    }

    /// Each Score plugin's normalized, weighted score summed per node.
    fn prioritize(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        snapshot: &Snapshot,
    ) -> Result<Vec<i64>, Status> {
        for plugin in &self.plugins {
            if let Some(pre_score) = plugin.as_pre_score() {
                let status = pre_score.pre_score(state, pod, nodes, snapshot);
                match status.code() {
                    Code::Success => {}
                    Code::Skip => state.skip_score(plugin.name()),
                    _ => return Err(status.with_plugin(plugin.name())),
                }
            }
        }
        let mut totals = vec![0i64; nodes.len()];
        let mut scores = vec![0i64; nodes.len()];
        for (plugin, weight) in self.plugins.iter().zip(&self.weights) {
            let Some(score) = plugin.as_score() else {
                continue;
            };
            if state.skips_score(plugin.name()) {
                continue;
            }
            for (slot, node) in scores.iter_mut().zip(nodes) {
                *slot = score
                    .score(state, pod, node)
                    .map_err(|s| s.with_plugin(plugin.name()))?;
            }
            let status = score.normalize_score(state, pod, &mut scores);
            if !status.is_success() {
                return Err(status.with_plugin(plugin.name()));
            }
            for (total, score) in totals.iter_mut().zip(&scores) {
                *total += score * weight;
            }
        }
        Ok(totals)
    }

    /// The highest-scoring node; ties broken at random, as kube-scheduler's
    /// `selectHost` does by reservoir sampling.
    fn select_host(&self, nodes: &[&NodeInfo], scores: &[i64]) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut best = 0;
        let mut ties = 1;
        for i in 1..nodes.len() {
            if scores[i] > scores[best] {
                best = i;
                ties = 1;
            } else if scores[i] == scores[best] {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = i;
                }
            }
        }
        nodes[best].name().to_string()
    }

    /// Runs PostFilter plugins until one finds a node (preemption).
    pub fn run_post_filters(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &HashMap<String, Status>,
    ) -> Result<PostFilterResult, Status> {
        let mut last = Status::unschedulable("no PostFilter plugin");
        for plugin in &self.plugins {
            let Some(post_filter) = plugin.as_post_filter() else {
                continue;
            };
            match post_filter.post_filter(state, pod, snapshot, statuses, self) {
                Ok(result) => return Ok(result),
                Err(status) => last = status.with_plugin(plugin.name()),
            }
        }
        Err(last)
    }

    /// Whether any plugin has Reserve/Unreserve (which need the cycle's
    /// state kept until binding ends).
    pub fn has_reserve_plugins(&self) -> bool {
        self.plugins.iter().any(|p| p.as_reserve().is_some())
    }

    /// Reserve on every Reserve plugin; on failure, unreserves all and says why.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str) -> Status {
        for plugin in &self.plugins {
            if let Some(reserve) = plugin.as_reserve() {
                let status = reserve.reserve(state, pod, node_name);
                if !status.is_success() {
                    self.run_unreserve(state, pod, node_name);
                    return status.with_plugin(plugin.name());
                }
            }
        }
        Status::success()
    }

    /// Unreserve on every Reserve plugin, in reverse order.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str) {
        for plugin in self.plugins.iter().rev() {
            if let Some(reserve) = plugin.as_reserve() {
                reserve.unreserve(state, pod, node_name);
            }
        }
    }

    /// Permit on every Permit plugin; the first rejection wins.
    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node_name: &str) -> Status {
        for plugin in &self.plugins {
            if let Some(permit) = plugin.as_permit() {
                let status = permit.permit(state, pod, node_name);
                if !status.is_success() {
                    return status.with_plugin(plugin.name());
                }
            }
        }
        Status::success()
    }

    /// PreBind, then the first binder that does not Skip.
    pub async fn run_bind(&self, pod: &k8s_openapi::api::core::v1::Pod, node_name: &str) -> Status {
        for plugin in &self.pre_bind {
            let status = plugin.pre_bind(pod, node_name).await;
            if !status.is_success() {
                return status;
            }
        }
        for binder in &self.bind {
            let status = binder.bind(pod, node_name).await;
            if status.code() != Code::Skip {
                return status;
            }
        }
        Status::error("no bind plugin bound the pod")
    }
}

impl NodeFilter for Framework {
    fn run_filters(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for plugin in &self.plugins {
            let Some(filter) = plugin.as_filter() else {
                continue;
            };
            if state.skips_filter(plugin.name()) {
                continue;
            }
            let status = filter.filter(state, pod, node);
            if !status.is_success() {
                return status.with_plugin(plugin.name());
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::node_resources_fit::NodeResourcesFit;
    use crate::plugins::taint_toleration::TaintToleration;
    use crate::testing::{node, pod, snapshot, NodeExt, PodExt};

    fn framework() -> Framework {
        let fit = NodeResourcesFit::new(Default::default()).expect("default args");
        Framework::new(
            "test",
            vec![(Arc::new(fit), 1), (Arc::new(TaintToleration), 3)],
            None,
            1,
        )
    }

    #[test]
    fn an_unschedulable_pod_gets_kube_schedulers_message() {
        let nodes = [
            node("small-1").allocatable("cpu", "1"),
            node("small-2").allocatable("cpu", "1"),
            node("small-3").allocatable("cpu", "1"),
            node("gpu-1").taint("dedicated", "gpu", "NoSchedule"),
            node("gpu-2").taint("dedicated", "gpu", "NoSchedule"),
        ];
        let p = PodInfo::new(Arc::new(pod("p").request("cpu", "2")));
        let error = framework()
            .schedule(&p, &snapshot(&nodes, &[]))
            .err()
            .expect("no node fits");
        assert_eq!(
            error.message(),
            "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu."
        );
        assert_eq!(
            error.rejecting_plugins(),
            ["NodeResourcesFit", "TaintToleration"]
        );
    }

    #[test]
    fn the_best_scoring_node_wins() {
        // LeastAllocated spreads: the emptier node scores higher.
        let nodes = [node("busy"), node("idle")];
        let existing = [pod("x").node_name("busy").request("cpu", "3")];
        let p = PodInfo::new(Arc::new(pod("p").request("cpu", "500m")));
        let result = framework()
            .schedule(&p, &snapshot(&nodes, &existing))
            .expect("fits");
        assert_eq!(result.node_name, "idle");
        assert_eq!((result.evaluated_nodes, result.feasible_nodes), (2, 2));
    }

    #[test]
    fn filtering_resumes_where_the_last_cycle_stopped() {
        let nodes: Vec<_> = (0..200).map(|i| node(&format!("n{i:03}"))).collect();
        let snapshot = snapshot(&nodes, &[]);
        let framework = Framework::new("test", vec![(Arc::new(TaintToleration), 1)], Some(50), 1);
        let p = PodInfo::new(Arc::new(pod("p")));
        // 50% of 200 is 100 nodes per cycle: two cycles cover all 200.
        for _ in 0..2 {
            assert_eq!(
                framework
                    .schedule(&p, &snapshot)
                    .expect("fits")
                    .evaluated_nodes,
                100
            );
        }
        assert_eq!(framework.next_start_node_index.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn nodes_to_find_follow_kube_schedulers_adaptive_percentage() {
        for (percentage, nodes, expected) in [
            (None, 50, 50),
            (None, 100, 100),
            (None, 1000, 420),
            (None, 5000, 500),
            (None, 6000, 300),
            (Some(10), 1000, 100),
            (Some(10), 5000, 500),
            (Some(100), 5000, 5000),
            (Some(1), 5000, 100),
        ] {
            assert_eq!(
                num_feasible_nodes_to_find(percentage, nodes),
                expected,
                "percentage {percentage:?} of {nodes} nodes"
            );
        }
    }
}
