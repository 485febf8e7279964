//! DefaultPreemption: when no node fits, find a node where evicting pods of
//! lower priority would make room, as kube-scheduler's PostFilter does:
//!
//! 0. A pod that may not preempt is turned away: `preemptionPolicy: Never`,
//!    or a pod already nominated to a node where a lower-priority pod is
//!    still terminating (its earlier preemption is under way).
//! 1. Candidates are the nodes that refused the pod with `Unschedulable`
//!    (not `UnschedulableAndUnresolvable`: evicting cannot fix a taint).
//! 2. On each, take away every pod of lower priority; if the pod still does
//!    not fit (beside the pods nominated there, see `framework::Nominator`),
//!    the node is no candidate.
//! 3. Give back ("reprieve") those pods one by one, most important first —
//!    first those whose eviction would break a PodDisruptionBudget, then the
//!    rest — keeping each one the pod still fits beside; the rest are the
//!    victims, and the budget-breaking ones among them are counted.
//! 4. Pick the node with the fewest budget violations, then whose most
//!    important victim has the lowest priority, then the lowest sum of victim
//!    priorities, then the fewest victims, then whose most important victims
//!    started latest (`pickOneNodeForPreemption`).
//!
//! The scheduler then deletes the victims and writes
//! `status.nominatedNodeName`; the pod is retried when they are gone, and its
//! nomination holds the room meanwhile. When no node can be made to fit, the
//! pod's nomination is taken back.
//!
//! # Layout
//! - this module: the plugin, the victims on one node, the choice of node.
//! - `pdb`: PodDisruptionBudgets' allowances and which victims break them.
//!
//! # Caveats
//! Cross-node state (affinity, spreading) is not recomputed without the
//! victims; budgets' expected counts come from the pods in the cache (see
//! `pdb`); victims are deleted, not evicted through `pods/eviction`.

mod pdb;

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use crate::framework::{
    impl_plugin, with_nominated_pods, Code, CycleState, NodeFilter, NodeInfo, PodInfo,
    PostFilterPlugin, PostFilterResult, Snapshot, Status,
};
use pdb::{budgets, split_by_violation, Budget};

/// The plugin's name in profiles.
pub const NAME: &str = "DefaultPreemption";

/// Why a pod already nominated is not let to preempt again.
const REASON_TERMINATING: &str = "not eligible due to a terminating pod on the nominated node.";

/// The DefaultPreemption plugin.
pub struct DefaultPreemption;

impl_plugin!(DefaultPreemption, NAME, [post_filter]);

/// The victims a node would need, and the key it is ranked by.
struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
    /// Victims whose eviction breaks a PodDisruptionBudget.
    violations: usize,
}

impl Candidate {
    /// Smaller is better; the order of kube's `pickOneNodeForPreemption`.
    fn rank(&self) -> (usize, i32, i64, usize, Reverse<i64>) {
        let highest = self
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        // Offset so that more victims always weigh more, negative priorities too.
        let sum = self
            .victims
            .iter()
            .map(|v| i64::from(v.priority) - i64::from(i32::MIN))
            .sum();
        let earliest_start = self
            .victims
            .iter()
            .filter(|v| v.priority == highest)
            .map(|v| start_time(v).unwrap_or(i64::MIN))
            .min()
            .unwrap_or(i64::MIN);
        (
            self.violations,
            highest,
            sum,
            self.victims.len(),
            Reverse(earliest_start),
        )
    }
}

/// `status.startTime` in nanoseconds.
fn start_time(pod: &PodInfo) -> Option<i64> {
    let time = pod.pod.status.as_ref()?.start_time.as_ref()?;
    i64::try_from(time.0.as_nanosecond()).ok()
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &HashMap<String, Status>,
        filters: &dyn NodeFilter,
    ) -> Result<PostFilterResult, Status> {
        let policy = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref());
        if policy == Some("Never") {
            return Err(Status::unresolvable(
                "not eligible due to preemptionPolicy=Never.",
            ));
        }
        if terminating_on_nominated_node(pod, snapshot, statuses) {
            return Err(Status::unresolvable(REASON_TERMINATING));
        }
        let budgets = budgets(snapshot);
        let mut best: Option<Candidate> = None;
        let mut names: Vec<&String> = statuses
            .iter()
            .filter(|(_, s)| s.code() == Code::Unschedulable)
            .map(|(name, _)| name)
            .collect();
        names.sort();
        for name in names {
            let Some(node) = snapshot.get(name) else {
                continue;
            };
            let fits = |n: &NodeInfo| {
                with_nominated_pods(pod, n, snapshot, |n| filters.run_filters(state, pod, n))
                    .is_success()
            };
            let Some(candidate) = victims_on(pod, node, &budgets, fits) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| candidate.rank() < b.rank()) {
                best = Some(candidate);
            }
        }
        match best {
            Some(c) => Ok(PostFilterResult {
                nominated_node_name: c.node,
                victims: c.victims,
            }),
            None => Err(Status::unschedulable(
                "No preemption victims found for incoming pod",
            )),
        }
    }
}

/// Whether the pod is nominated to a node where a pod of lower priority is
/// still terminating: its last preemption is not over, so it waits rather
/// than evict more (kube's `PodEligibleToPreemptOthers`). A nominated node
/// that can never take the pod does not hold it back.
fn terminating_on_nominated_node(
    pod: &PodInfo,
    snapshot: &Snapshot,
    statuses: &HashMap<String, Status>,
) -> bool {
    let from_status = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref());
    let Some(name) = snapshot.nominator().node_of(&pod.key).or(from_status) else {
        return false;
    };
    if statuses
        .get(name)
        .is_some_and(|s| s.code() == Code::UnschedulableAndUnresolvable)
    {
        return false;
    }
    snapshot.get(name).is_some_and(|node| {
        node.pods()
            .iter()
            .any(|p| p.priority < pod.priority && p.pod.metadata.deletion_timestamp.is_some())
    })
}

/// The fewest, least important pods to evict from `node` so the pod `fits`,
/// sparing budget-protected pods first (kube's `selectVictimsOnNode`).
fn victims_on(
    pod: &PodInfo,
    node: &NodeInfo,
    budgets: &[Budget<'_>],
    fits: impl Fn(&NodeInfo) -> bool,
) -> Option<Candidate> {
    let mut reduced = node.clone();
    let mut lower: Vec<Arc<PodInfo>> = node
        .pods()
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return None;
    }
    for p in &lower {
        reduced.remove_pod(&p.key);
    }
    if !fits(&reduced) {
        return None;
    }
    // Most important first: higher priority, then started earlier.
    lower.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| start_time(a).cmp(&start_time(b)))
            .then_with(|| a.key.cmp(&b.key))
    });
    // Each node's victims are counted against fresh allowances.
    let mut allowances = budgets.to_vec();
    let (violating, non_violating) = split_by_violation(lower, &mut allowances);
    let mut victims = Vec::new();
    let mut violations = 0;
    let mut reprieve = |p: Arc<PodInfo>, reduced: &mut NodeInfo| -> bool {
        reduced.add_pod(p.clone());
        if fits(reduced) {
            return true;
        }
        reduced.remove_pod(&p.key);
        victims.push(p);
        false
    };
    for p in violating {
        violations += usize::from(!reprieve(p, &mut reduced));
    }
    for p in non_violating {
        reprieve(p, &mut reduced);
    }
    victims.sort_by_key(|v| v.priority);
    Some(Candidate {
        node: node.name().to_string(),
        victims,
        violations,
    })
}

#[cfg(test)]
mod tests;
