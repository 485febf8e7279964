//! The scheduling loop, one pod at a time (kube-scheduler's `scheduleOne`):
//! the scheduling cycle runs here, synchronously over a snapshot; the binding
//! cycle runs in a spawned task, so the next pod does not wait for the API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::events::{self, NominatedNode};
use super::{now, scheduler_name, Context};
use crate::framework::{
    Code, CycleState, FitError, Framework, PodInfo, PostFilterResult, Snapshot, Status,
};
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
        let started = Instant::now();
        span.in_scope(|| schedule_one(&context, &mut snapshot, queued));
        if let Some(metrics) = &context.config.metrics {
            metrics.observe_attempt(started.elapsed());
        }
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
    context.profiles.get(scheduler_name(&pod.pod))
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
        snapshot.set_nominator(state.queue.nominator().clone());
    }
    let result = match framework.schedule(&pod, snapshot) {
        Ok(result) => result,
        Err(fit_error) => return unschedulable(context, &framework, snapshot, &pod, *fit_error),
    };
    let node = result.node_name.clone();
    let mut state_of_cycle = result.state;
    let nominated = {
        let mut state = context.lock();
        if let Err(error) = state.cache.assume_pod(pod.clone(), &node) {
            tracing::error!(%error, "assume failed");
            return;
        }
        // Placed: it no longer holds room elsewhere (kube's assume does the same).
        let nominated = state
            .queue
            .nominator()
            .node_of(&pod.key)
            .map(str::to_string);
        state.queue.nominate(&pod.key, None);
        nominated
    };
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
        spawn_failure_report(context, &pod, status.to_string(), Nomination::Keep);
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
        let started = Instant::now();
        let status = framework.run_bind(&pod.pod, &node).await;
        if let Some(metrics) = &context.config.metrics {
            metrics.observe_binding(started.elapsed());
        }
        if status.is_success() {
            {
                let mut state = context.lock();
                state.cache.finish_binding(&pod.key, now());
                state.queue.done(&pod.key);
            }
            events::clear_stale_nomination(&context.writer, &pod.pod, nominated.as_deref(), &node)
                .await;
            if context.config.record_scheduled_events {
                events::scheduled(&context.writer, &pod.pod, &node).await;
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
                &context.writer,
                &pod.pod,
                &format!("Binding rejected: {status}"),
                NominatedNode::Keep,
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
    let mut nomination = Nomination::Keep;
    let retriable = fit_error
        .pre_filter
        .as_ref()
        .is_none_or(|s| s.code() != Code::Error);
    if fit_error.pre_filter.is_none() && !fit_error.statuses.is_empty() {
        match framework.run_post_filters(&fit_error.state, pod, snapshot, &fit_error.statuses) {
            Ok(result) => nomination = Nomination::Set(result),
            Err(status) if status.plugin().is_empty() => {}
            Err(status) => {
                // Unschedulable: no node can be made to fit, so the pod
                // holds no room; other rejections keep what it holds.
                if status.code() == Code::Unschedulable {
                    nomination = Nomination::Clear;
                }
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
    {
        let mut state = context.lock();
        match &nomination {
            Nomination::Set(result) => state
                .queue
                .nominate(&pod.key, Some(&result.nominated_node_name)),
            Nomination::Clear => state.queue.nominate(&pod.key, None),
            Nomination::Keep => {}
        }
        state.queue.add_unschedulable(&pod.key, plugins, now());
    }
    tracing::debug!(%message, "unschedulable");
    spawn_failure_report(context, pod, message, nomination);
}

/// What an unschedulable pod's cycle does to its nomination.
enum Nomination {
    /// Preemption made room on a node: nominate the pod there.
    Set(PostFilterResult),
    /// No node can be made to fit: take any nomination back.
    Clear,
    /// Leave it as it is (no preemption ran, or the pod may not preempt now).
    Keep,
}

fn preemption_message(nodes: usize, status: &Status) -> String {
    format!("0/{nodes} nodes are available: {status}")
}

fn spawn_failure_report(
    context: &Arc<Context>,
    pod: &Arc<PodInfo>,
    message: String,
    nomination: Nomination,
) {
    let writer = context.writer.clone();
    let pod = pod.clone();
    tokio::spawn(async move {
        let nominated = match &nomination {
            Nomination::Set(result) => {
                events::preempt(&writer, &pod.pod, result).await;
                NominatedNode::Set(&result.nominated_node_name)
            }
            Nomination::Clear => NominatedNode::Clear,
            Nomination::Keep => NominatedNode::Keep,
        };
        events::failed_scheduling(&writer, &pod.pod, &message, nominated).await;
    });
}
