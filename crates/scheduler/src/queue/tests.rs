//! The queue on a logical clock: order, backoff, and what wakes unschedulable pods.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::framework::PodInfo;
use crate::testing::{pod, PodExt};

fn info(name: &str, priority: i32) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(Arc::new(pod(name).priority(priority))))
}

fn queue() -> SchedulingQueue {
    let interest = HashMap::from([
        (
            ClusterEvent::NodeAdd,
            HashSet::from(["NodeResourcesFit", "TaintToleration"]),
        ),
        (
            ClusterEvent::AssignedPodDelete,
            HashSet::from(["NodeResourcesFit"]),
        ),
    ]);
    SchedulingQueue::new(QueueConfig::default(), interest)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn popped(q: &mut SchedulingQueue, now: Instant) -> Option<String> {
    q.pop(now).map(|p| p.pod.key.clone())
}

#[test]
fn higher_priority_first_then_oldest() {
    let t0 = Instant::now();
    let mut q = queue();
    q.add(info("old-low", 0), t0);
    q.add(info("new-high", 10), t0 + secs(1));
    q.add(info("new-low", 0), t0 + secs(2));
    let order: Vec<Option<String>> = (0..4).map(|_| popped(&mut q, t0 + secs(3))).collect();
    assert_eq!(
        order,
        [
            Some("default/new-high".into()),
            Some("default/old-low".into()),
            Some("default/new-low".into()),
            None
        ]
    );
}

#[test]
fn failed_pods_back_off_doubling_up_to_the_maximum() {
    let t0 = Instant::now();
    let mut q = queue();
    q.add(info("p", 0), t0);
    let mut now = t0;
    for (attempt, backoff) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (6, 10)] {
        let p = q.pop(now).expect("ready");
        assert_eq!(p.attempts, attempt);
        q.add_backoff("default/p", now);
        assert!(
            q.pop(now + secs(backoff) - Duration::from_millis(1))
                .is_none(),
            "attempt {attempt} still backing off"
        );
        now += secs(backoff);
    }
    assert!(q.pop(now).is_some());
}

#[test]
fn unschedulable_pods_wait_for_an_event_their_plugins_care_about() {
    let t0 = Instant::now();
    let mut q = queue();
    q.add(info("cpu", 0), t0);
    q.add(info("taint", 0), t0);
    q.pop(t0).expect("cpu");
    q.pop(t0).expect("taint");
    q.add_unschedulable("default/cpu", vec!["NodeResourcesFit"], t0);
    q.add_unschedulable("default/taint", vec!["TaintToleration"], t0);
    assert_eq!(q.lengths(), (0, 0, 2));
    assert!(q.pop(t0 + secs(60)).is_none(), "no event, no retry");

    // A pod deleted frees resources: only the cpu pod may fit now.
    q.move_all_on_event(ClusterEvent::AssignedPodDelete, t0 + secs(60));
    assert_eq!(popped(&mut q, t0 + secs(60)), Some("default/cpu".into()));
    assert_eq!(q.lengths(), (0, 0, 1));

    // A new node may carry no taint.
    q.move_all_on_event(ClusterEvent::NodeAdd, t0 + secs(61));
    assert_eq!(popped(&mut q, t0 + secs(61)), Some("default/taint".into()));
}

#[test]
fn an_event_during_the_pods_own_cycle_sends_it_to_backoff() {
    let t0 = Instant::now();
    let mut q = queue();
    q.add(info("p", 0), t0);
    q.pop(t0).expect("p");
    q.move_all_on_event(ClusterEvent::NodeAdd, t0);
    q.add_unschedulable("default/p", vec!["NodeResourcesFit"], t0);
    assert_eq!(q.lengths(), (0, 1, 0));
    assert_eq!(popped(&mut q, t0 + secs(1)), Some("default/p".into()));
}

#[test]
fn unschedulable_pods_are_retried_after_five_minutes_anyway() {
    let t0 = Instant::now();
    let mut q = queue();
    q.add(info("p", 0), t0);
    q.pop(t0).expect("p");
    q.add_unschedulable("default/p", vec!["NodeName"], t0);
    q.flush_unschedulable_leftover(t0 + secs(299));
    assert!(q.pop(t0 + secs(299)).is_none());
    q.flush_unschedulable_leftover(t0 + secs(300));
    assert_eq!(popped(&mut q, t0 + secs(300)), Some("default/p".into()));
}

#[test]
fn updating_an_unschedulable_pod_retries_it_and_deleting_drops_it() {
    let t0 = Instant::now();
    let mut q = queue();
    q.add(info("p", 0), t0);
    q.add(info("gone", 0), t0);
    q.pop(t0).expect("p");
    q.add_unschedulable("default/p", vec!["NodeName"], t0);
    q.add(info("p", 0), t0 + secs(5));
    q.delete("default/gone");
    assert_eq!(popped(&mut q, t0 + secs(5)), Some("default/p".into()));
    assert!(q.pop(t0 + secs(5)).is_none());
}

#[test]
fn nominations_last_until_the_pod_is_bound_or_deleted() {
    let t0 = Instant::now();
    let mut q = queue();
    q.add(info("p", 10), t0);
    q.pop(t0);
    q.nominate("default/p", Some("a"));
    assert_eq!(q.nominator().node_of("default/p"), Some("a"));
    // The informer's copy without the status yet keeps it; the status moves it.
    q.update_quietly(info("p", 10));
    assert_eq!(q.nominator().node_of("default/p"), Some("a"));
    let moved = pod("p").priority(10).nominated_node("b");
    q.update_quietly(Arc::new(PodInfo::new(Arc::new(moved))));
    assert_eq!(q.nominator().pods_on("b").len(), 1);
    q.done("default/p");
    assert!(
        q.nominator().is_empty(),
        "bound: the room is no longer held"
    );

    let nominated = pod("q").priority(10).nominated_node("a");
    q.add(Arc::new(PodInfo::new(Arc::new(nominated))), t0);
    assert_eq!(
        q.nominator().node_of("default/q"),
        Some("a"),
        "read from the status"
    );
    q.nominate("default/q", None);
    assert!(
        q.nominator().is_empty(),
        "preemption found nothing: taken back"
    );
    q.nominate("default/q", Some("a"));
    q.delete("default/q");
    assert!(q.nominator().is_empty(), "deleted");
    q.nominate("default/gone", Some("a"));
    assert!(q.nominator().is_empty(), "only queued pods are nominated");
}
