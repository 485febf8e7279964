use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::fixtures::at;

fn node(ready: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some("n1".into()),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: ready.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

#[test]
fn the_probe_time_moves_only_when_the_lease_is_renewed() {
    let mut health = Health::default();
    assert_eq!(health.observe("n1", Some("t1".into()), at(0)), at(0));
    assert_eq!(health.observe("n1", Some("t1".into()), at(30)), at(0));
    assert_eq!(health.observe("n1", Some("t2".into()), at(45)), at(45));
}

#[test]
fn a_quiet_node_turns_unknown_once() {
    let conditions = unknown_conditions(&node("True"), at(50)).unwrap();
    assert_eq!(conditions[0].status, "Unknown");
    assert_eq!(conditions[0].reason.as_deref(), Some("NodeStatusUnknown"));
    assert!(unknown_conditions(&node("Unknown"), at(60)).is_none());
}

#[test]
fn ready_status_decides_the_lifecycle_taint_of_each_effect() {
    assert_eq!(wanted_taint("Unknown"), Some(UNREACHABLE));
    assert_eq!(wanted_taint("False"), Some(NOT_READY));
    assert_eq!(wanted_taint("True"), None);
    let no_schedule = taints_with(&[], "NoSchedule", Some(UNREACHABLE), at(5)).unwrap();
    let both = taints_with(&no_schedule, "NoExecute", Some(UNREACHABLE), at(5)).unwrap();
    let effects: Vec<(&str, &str)> = both
        .iter()
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    assert_eq!(
        effects,
        [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
    );
    assert!(
        taints_with(&both, "NoExecute", Some(UNREACHABLE), at(6)).is_none(),
        "already tainted"
    );
    let not_ready = taints_with(&both, "NoSchedule", Some(NOT_READY), at(7)).unwrap();
    assert!(not_ready
        .iter()
        .any(|t| t.key == NOT_READY && t.effect == "NoSchedule"));
    assert!(!not_ready
        .iter()
        .any(|t| t.key == UNREACHABLE && t.effect == "NoSchedule"));
    let cleaned = taints_with(&both, "NoSchedule", None, at(8)).unwrap();
    assert_eq!(
        taints_with(&cleaned, "NoExecute", None, at(8)).unwrap(),
        Vec::<Taint>::new(),
        "cleaned up"
    );
}

#[test]
fn the_rate_limiter_lets_one_node_through_every_ten_seconds() {
    let mut limiter = RateLimiter::new(0.1);
    assert!(limiter.try_accept(at(0)));
    assert!(!limiter.try_accept(at(5)));
    assert!(limiter.try_accept(at(10)));
    limiter.set_qps(0.0);
    assert!(!limiter.try_accept(at(100)));
}

#[test]
fn zones_mostly_down_slow_or_stop_evictions() {
    assert_eq!(zone_state(10, 1), ZoneState::Normal);
    assert_eq!(zone_state(2, 8), ZoneState::PartialDisruption);
    assert_eq!(zone_state(0, 3), ZoneState::FullDisruption);
    assert_eq!(
        zone_rate(ZoneState::PartialDisruption, 100, 0.1, 0.01),
        0.01
    );
    assert_eq!(zone_rate(ZoneState::PartialDisruption, 10, 0.1, 0.01), 0.0);
}

#[test]
fn pods_are_evicted_unless_they_tolerate_the_taint() {
    let taint = Taint {
        key: UNREACHABLE.into(),
        effect: "NoExecute".into(),
        time_added: Some(Time(at(100))),
        value: None,
    };
    let pod = |tolerations: Vec<Toleration>| Pod {
        spec: Some(PodSpec {
            tolerations: Some(tolerations),
            ..Default::default()
        }),
        ..Default::default()
    };
    let toleration = |seconds: Option<i64>| Toleration {
        key: Some(UNREACHABLE.into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: seconds,
        value: None,
    };
    let taints = [taint];
    assert_eq!(eviction_time(&pod(vec![]), &taints, at(120)), Some(at(120)));
    assert_eq!(
        eviction_time(&pod(vec![toleration(Some(300))]), &taints, at(120)),
        Some(at(400))
    );
    assert_eq!(
        eviction_time(&pod(vec![toleration(None)]), &taints, at(120)),
        None
    );
}
