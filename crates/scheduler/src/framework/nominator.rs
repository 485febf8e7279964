//! Nominated pods: pods that preemption found room for on a node
//! (`status.nominatedNodeName`) and that wait there for their victims to go,
//! as kube-scheduler's `PodNominator`.
//!
//! A nomination holds the room: while a node is filtered for a pod, the pods
//! nominated to it with at least that pod's priority count as if already
//! placed there ([`with_nominated_pods`], kube's `addNominatedPods`), so a
//! lower-priority pod cannot take the room the victims leave behind.
//!
//! The scheduling queue keeps the nominations of the pods it holds; each
//! cycle's [`Snapshot`](super::Snapshot) carries a copy (an `Arc`, copied
//! on write), so a cycle reads them without the queue's lock.

use std::collections::HashMap;
use std::sync::Arc;

use super::{NodeInfo, PodInfo, Snapshot, Status};

/// Which pods are nominated to which node.
#[derive(Clone, Debug, Default)]
pub struct Nominator {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    node_of: HashMap<String, String>,
}

impl Nominator {
    /// Nominates `pod` to `node`, replacing any earlier nomination.
    pub fn add(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.remove(&pod.key);
        self.node_of.insert(pod.key.clone(), node.to_string());
        self.by_node.entry(node.to_string()).or_default().push(pod);
    }

    /// A newer version of a pending pod from the informer: nominated where its
    /// `status.nominatedNodeName` says, or, without one, where it was (the
    /// scheduler nominates in memory before the API has the status).
    pub fn update(&mut self, pod: Arc<PodInfo>) {
        let from_status = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if let Some(node) = from_status.or_else(|| self.node_of.get(&pod.key).cloned()) {
            self.add(pod, &node);
        }
    }

    /// Takes back the pod's nomination, if it has one.
    pub fn remove(&mut self, key: &str) {
        let Some(node) = self.node_of.remove(key) else {
            return;
        };
        if let Some(pods) = self.by_node.get_mut(&node) {
            pods.retain(|p| p.key != key);
            if pods.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }

    /// The node the pod is nominated to.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.node_of.get(key).map(String::as_str)
    }

    /// The pods nominated to `node`.
    pub fn pods_on(&self, node: &str) -> &[Arc<PodInfo>] {
        self.by_node.get(node).map_or(&[], Vec::as_slice)
    }

    /// Whether no pod is nominated anywhere.
    pub fn is_empty(&self) -> bool {
        self.node_of.is_empty()
    }
}

/// kube-scheduler's `RunFilterPluginsWithNominatedPods`: runs `filters` on
/// `node` with the pods nominated to it that are at least as important as
/// `pod` placed there, and, if the pod fits beside them, once more without
/// them (a nominated pod may also be what satisfies an affinity term, and it
/// is not there yet).
pub fn with_nominated_pods(
    pod: &PodInfo,
    node: &NodeInfo,
    snapshot: &Snapshot,
    filters: impl Fn(&NodeInfo) -> Status,
) -> Status {
    if snapshot.nominator().is_empty() {
        return filters(node);
    }
    let mut nominated = snapshot
        .nominator()
        .pods_on(node.name())
        .iter()
        .filter(|p| p.priority >= pod.priority && p.key != pod.key)
        .peekable();
    if nominated.peek().is_none() {
        return filters(node);
    }
    let mut with_nominated = node.clone();
    for p in nominated {
        with_nominated.add_pod(p.clone());
    }
    let status = filters(&with_nominated);
    if !status.is_success() {
        return status;
    }
    filters(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pod, PodExt};

    fn info(p: k8s_openapi::api::core::v1::Pod) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn a_pod_is_nominated_to_one_node_at_a_time() {
        let mut nominator = Nominator::default();
        nominator.add(info(pod("p")), "a");
        nominator.add(info(pod("p")), "b");
        assert!(nominator.pods_on("a").is_empty());
        assert_eq!(nominator.pods_on("b").len(), 1);
        assert_eq!(nominator.node_of("default/p"), Some("b"));
        nominator.remove("default/p");
        assert!(nominator.is_empty());
        assert!(nominator.pods_on("b").is_empty());
    }

    #[test]
    fn an_update_without_a_nominated_node_keeps_the_nomination_made_in_memory() {
        let mut nominator = Nominator::default();
        nominator.update(info(pod("fresh")));
        assert!(nominator.is_empty(), "never nominated, still not");
        nominator.add(info(pod("p")), "a");
        nominator.update(info(pod("p").label("v", "2")));
        assert_eq!(nominator.node_of("default/p"), Some("a"));
        nominator.update(info(pod("p").nominated_node("b")));
        assert_eq!(nominator.node_of("default/p"), Some("b"));
    }
}
