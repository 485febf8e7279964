//! The scheduling loop, one pod at a time (kube-scheduler's `scheduleOne`):
//! the scheduling cycle runs here, synchronously over a snapshot; the binding
//! cycle runs in a spawned task, so the next pod does not wait for the API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{events, now, Context};
use crate::framework::{Code, CycleState, FitError, Framework, PodInfo, Snapshot, Status};
use crate::profile::DEFAULT_SCHEDULER_NAME;
use crate::queue::QueuedPodInfo;

/// How often leftovers are flushed and expired assumptions cleaned up.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);

/// Schedules pods until `shutdown`.
pub(crate) async fn run_loop(context: Arc<Context>, shutdown: CancellationToken) {
    let mut snapshot = Snapshot::default();
    let mut housekeeping = now();
    loop {
        let Some(queued) = next_pod(&context, &shutdown, &mut housekeeping).await else {
            return;
        };
        let span =
            tracing::debug_span!("schedule", pod = %queued.pod.key, attempt = queued.attempts);
        span.in_scope(|| schedule_one(&context, &mut snapshot, queued));
        // Let binding tasks and informers run between cycles.
        tokio::task::yield_now().await;
    }
}

/// Waits for a pod to be ready in the queue.
async fn next_pod(
    context: &Context,
    shutdown: &CancellationToken,
    housekeeping: &mut Instant,
) -> Option<QueuedPodInfo> {
    loop {
        let notified = context.wake.notified();
        let wake_at = {
            let now = now();
            let mut state = context.lock();
            if now >= *housekeeping + HOUSEKEEPING_PERIOD {
                *housekeeping = now;
                state.queue.flush_unschedulable_leftover(now);
                for key in state.cache.cleanup_assumed_pods(now) {
                    tracing::warn!(pod = %key, "assumed pod expired without being confirmed");
                }
            }
            if let Some(pod) = state.queue.pop(now) {
                return Some(pod);
            }
            let backoff = state
                .queue
                .next_backoff_expiry()
                .unwrap_or(now + HOUSEKEEPING_PERIOD);
            backoff.min(now + HOUSEKEEPING_PERIOD)
        };
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = notified => {}
            _ = tokio::time::sleep_until(wake_at.into()) => {}
        }
    }
}

fn profile_of<'c>(context: &'c Context, pod: &PodInfo) -> Option<&'c Arc<Framework>> {
    let name = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(DEFAULT_SCHEDULER_NAME);
    context.profiles.get(name)
}

/// One scheduling cycle; binding continues in a spawned task.
fn schedule_one(context: &Arc<Context>, snapshot: &mut Snapshot, queued: QueuedPodInfo) {
    let pod = queued.pod.clone();
    let Some(framework) = profile_of(context, &pod).cloned() else {
        context.lock().queue.done(&pod.key);
        return;
    };
    {
        let mut state = context.lock();
        if state.cache.has_pod(&pod.key) {
            // Already bound or assumed (a stale copy in the queue).
            state.queue.done(&pod.key);
            return;
        }
        state.cache.update_snapshot(snapshot);
    }
    let result = match framework.schedule(&pod, snapshot) {
        Ok(result) => result,
        Err(fit_error) => return unschedulable(context, &framework, snapshot, &pod, *fit_error),
    };
    let node = result.node_name.clone();
    let mut state_of_cycle = result.state;
    if let Err(error) = context.lock().cache.assume_pod(pod.clone(), &node) {
        tracing::error!(%error, "assume failed");
        return;
    }
    let status = framework.run_reserve(&mut state_of_cycle, &pod, &node);
    let status = if status.is_success() {
        framework.run_permit(&state_of_cycle, &pod, &node)
    } else {
        status
    };
    if !status.is_success() {
        framework.run_unreserve(&mut state_of_cycle, &pod, &node);
        let mut state = context.lock();
        let _ = state.cache.forget_pod(&pod.key);
        state
            .queue
            .add_unschedulable(&pod.key, vec![status.plugin()], now());
        drop(state);
        spawn_failure_report(context, &pod, status.to_string(), None);
        return;
    }
    tracing::debug!(node = %node, evaluated = result.evaluated_nodes, feasible = result.feasible_nodes, "assumed");
    // Plugins may share data with the next cycle copy-on-write (counts
    // PodTopologySpread remembers): hold the state no longer than needed.
    if !framework.has_reserve_plugins() {
        state_of_cycle = CycleState::new();
    }
    let context = context.clone();
    tokio::spawn(async move {
        let status = framework.run_bind(&pod.pod, &node).await;
        if status.is_success() {
            {
                let mut state = context.lock();
                state.cache.finish_binding(&pod.key, now());
                state.queue.done(&pod.key);
            }
            if context.config.record_scheduled_events {
                events::scheduled(&context.client, &pod.pod, &node).await;
            }
        } else {
            framework.run_unreserve(&mut state_of_cycle, &pod, &node);
            {
                let mut state = context.lock();
                let _ = state.cache.forget_pod(&pod.key);
                state.queue.add_backoff(&pod.key, now());
            }
            context.wake.notify_one();
            tracing::warn!(pod = %pod.key, %node, %status, "binding failed");
            events::failed_scheduling(
                &context.client,
                &pod.pod,
                &format!("Binding rejected: {status}"),
                None,
            )
            .await;
        }
    });
}

/// No node fits: try preemption, park the pod, and tell the pod why.
fn unschedulable(
    context: &Arc<Context>,
    framework: &Framework,
    snapshot: &Snapshot,
    pod: &Arc<PodInfo>,
    fit_error: FitError,
) {
    let mut message = fit_error.message();
    let mut nominated = None;
    let retriable = fit_error
        .pre_filter
        .as_ref()
        .is_none_or(|s| s.code() != Code::Error);
    if fit_error.pre_filter.is_none() && !fit_error.statuses.is_empty() {
        match framework.run_post_filters(&fit_error.state, pod, snapshot, &fit_error.statuses) {
            Ok(result) => nominated = Some(result),
            Err(status) if status.plugin().is_empty() => {}
            Err(status) => {
                message = format!(
                    "{message} preemption: {}.",
                    preemption_message(snapshot.len(), &status)
                )
            }
        }
    }
    let plugins = if retriable {
        fit_error.rejecting_plugins()
    } else {
        Vec::new()
    };
    context
        .lock()
        .queue
        .add_unschedulable(&pod.key, plugins, now());
    tracing::debug!(%message, "unschedulable");
    spawn_failure_report(context, pod, message, nominated);
}

fn preemption_message(nodes: usize, status: &Status) -> String {
    format!("0/{nodes} nodes are available: {status}")
}

fn spawn_failure_report(
    context: &Arc<Context>,
    pod: &Arc<PodInfo>,
    message: String,
    nominated: Option<crate::framework::PostFilterResult>,
) {
    let client = context.client.clone();
    let pod = pod.clone();
    tokio::spawn(async move {
        if let Some(result) = &nominated {
            events::preempt(&client, &pod.pod, result).await;
        }
        let node = nominated.as_ref().map(|r| r.nominated_node_name.as_str());
        events::failed_scheduling(&client, &pod.pod, &message, node).await;
    });
}
