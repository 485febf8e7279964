//! Informer events into the cache and the queue (kube-scheduler's
//! `eventhandlers.go`): a pending pod for one of our profiles goes to the
//! queue; a bound pod goes to the cache; nodes and PodDisruptionBudgets go to
//! the cache; and every change that could make a pod fit moves unschedulable
//! pods back.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use skiff_client::Informer;

use super::{now, scheduler_name, Context};
use crate::framework::{pod_key, ClusterEvent, PodInfo};

/// Whether the pod is bound (or being bound) to a node.
fn assigned(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Whether the pod has finished and frees its resources.
fn terminated(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether one of our profiles schedules the pod.
fn responsible(context: &Context, pod: &Pod) -> bool {
    context.profiles.contains_key(scheduler_name(pod))
}

/// Whether a pending pod's update could change where it fits: not its
/// status (the scheduler's own PodScheduled condition among it).
fn scheduling_relevant(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

/// Whether a node change could let a pod fit (not a heartbeat).
fn node_changed(old: &Node, new: &Node) -> bool {
    let allocatable = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || allocatable(old) != allocatable(new)
}

/// Wires the node informer's handlers.
pub(crate) fn node_informer(informer: Informer<Node>, context: &Arc<Context>) -> Informer<Node> {
    let (on_add, on_update, on_delete) = (context.clone(), context.clone(), context.clone());
    informer
        .on_add(move |node| {
            let mut state = on_add.lock();
            state.cache.add_node(node.clone());
            state.queue.move_all_on_event(ClusterEvent::NodeAdd, now());
            drop(state);
            on_add.wake.notify_one();
        })
        .on_update(move |old, new| {
            let mut state = on_update.lock();
            state.cache.add_node(new.clone());
            if node_changed(old, new) {
                state
                    .queue
                    .move_all_on_event(ClusterEvent::NodeUpdate, now());
                drop(state);
                on_update.wake.notify_one();
            }
        })
        .on_delete(move |node| {
            on_delete
                .lock()
                .cache
                .remove_node(node.metadata.name.as_deref().unwrap_or_default());
        })
}

/// Wires the PodDisruptionBudget informer's handlers: budgets only change
/// whom preemption picks, so no pod is moved.
pub(crate) fn pod_disruption_budget_informer(
    informer: Informer<PodDisruptionBudget>,
    context: &Arc<Context>,
) -> Informer<PodDisruptionBudget> {
    let (on_add, on_update, on_delete) = (context.clone(), context.clone(), context.clone());
    informer
        .on_add(move |budget| {
            on_add
                .lock()
                .cache
                .add_pod_disruption_budget(budget.clone())
        })
        .on_update(move |_, budget| {
            on_update
                .lock()
                .cache
                .add_pod_disruption_budget(budget.clone())
        })
        .on_delete(move |budget| on_delete.lock().cache.remove_pod_disruption_budget(budget))
}

/// Wires the pod informer's handlers.
pub(crate) fn pod_informer(informer: Informer<Pod>, context: &Arc<Context>) -> Informer<Pod> {
    let (on_add, on_update, on_delete) = (context.clone(), context.clone(), context.clone());
    informer
        .on_add(move |pod| pod_seen(&on_add, None, pod))
        .on_update(move |old, new| pod_seen(&on_update, Some(old), new))
        .on_delete(move |pod| pod_gone(&on_delete, pod))
}

fn pod_seen(context: &Context, old: Option<&Arc<Pod>>, pod: &Arc<Pod>) {
    if terminated(pod) {
        return pod_gone(context, pod);
    }
    let now = now();
    let mut state = context.lock();
    if assigned(pod) {
        let key = pod_key(pod);
        state.queue.delete(&key);
        let was_known = state.cache.has_pod(&key) && !state.cache.is_assumed(&key);
        state.cache.add_pod(pod.clone());
        let event = match old {
            Some(old) if assigned(old) && was_known => {
                if old.metadata.labels == pod.metadata.labels {
                    return;
                }
                ClusterEvent::AssignedPodUpdate
            }
            _ => ClusterEvent::AssignedPodAdd,
        };
        state.queue.move_all_on_event(event, now);
    } else if responsible(context, pod) && pod.metadata.deletion_timestamp.is_none() {
        let info = Arc::new(PodInfo::new(pod.clone()));
        match old {
            Some(old) if !scheduling_relevant(old, pod) && state.queue.contains(&info.key) => {
                state.queue.update_quietly(info);
                return;
            }
            _ => state.queue.add(info, now),
        }
    } else {
        // Being deleted before it was scheduled, or no profile of ours.
        state.queue.delete(&pod_key(pod));
        return;
    }
    drop(state);
    context.wake.notify_one();
}

fn pod_gone(context: &Context, pod: &Arc<Pod>) {
    let key = pod_key(pod);
    let mut state = context.lock();
    state.queue.delete(&key);
    if state.cache.has_pod(&key) {
        state.cache.remove_pod(&key);
        state
            .queue
            .move_all_on_event(ClusterEvent::AssignedPodDelete, now());
        drop(state);
        context.wake.notify_one();
    }
}
