//! Rolling-update arithmetic: how far a Deployment may surge above and drop
//! below its replicas, and how many pods each step adds or removes.
//!
//! As Kubernetes' deployment `rolling.go` and `deploymentutil`:
//! `maxSurge` percentages round up, `maxUnavailable` percentages round down,
//! and when both come to 0, one pod may be unavailable so the rollout can move.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The annotation carrying ECS's `minimumHealthyPercent`: maxUnavailable is
/// 100% minus it.
pub const ECS_MINIMUM_HEALTHY_PERCENT: &str = "ecs.skiff.io/minimum-healthy-percent";
/// The annotation carrying ECS's `maximumPercent`: maxSurge is it minus 100%.
pub const ECS_MAXIMUM_PERCENT: &str = "ecs.skiff.io/maximum-percent";

/// Resolves an int-or-percent against `total`, rounding a percentage up or down.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: {s:?}"))?;
            let product = percent * i64::from(total);
            let value = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            Ok(value as i32)
        }
    }
}

fn ecs_percent(deployment: &Deployment, annotation: &str) -> Result<Option<i32>, String> {
    let Some(value) = deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotation))
    else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p >= 0)
        .map(Some)
        .ok_or_else(|| format!("annotation {annotation} is {value:?}, not a percentage"))
}

/// `(maxSurge, maxUnavailable)` in pods for `deployment`, as
/// `ResolveFenceposts`, with ECS's percentages taking the place of the
/// strategy's fields when their annotations are set.
pub fn fenceposts(deployment: &Deployment) -> Result<(i32, i32), String> {
    let spec = deployment
        .spec
        .as_ref()
        .ok_or("the Deployment has no spec")?;
    let replicas = spec.replicas.unwrap_or(1);
    let rolling = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.clone())
        .unwrap_or_default();
    let mut surge = rolling
        .max_surge
        .unwrap_or(IntOrString::String("25%".into()));
    let mut unavailable = rolling
        .max_unavailable
        .unwrap_or(IntOrString::String("25%".into()));
    if let Some(maximum) = ecs_percent(deployment, ECS_MAXIMUM_PERCENT)? {
        if maximum < 100 {
            return Err(format!(
                "{ECS_MAXIMUM_PERCENT} must be at least 100, not {maximum}"
            ));
        }
        surge = IntOrString::String(format!("{}%", maximum - 100));
    }
    if let Some(minimum) = ecs_percent(deployment, ECS_MINIMUM_HEALTHY_PERCENT)? {
        if minimum > 100 {
            return Err(format!(
                "{ECS_MINIMUM_HEALTHY_PERCENT} must be at most 100, not {minimum}"
            ));
        }
        unavailable = IntOrString::String(format!("{}%", 100 - minimum));
    }
    let surge = scaled_value(&surge, replicas, true)?;
    let mut unavailable = scaled_value(&unavailable, replicas, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable.min(replicas)))
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The replicas the new ReplicaSet should have next, as `NewRSNewReplicas`:
/// grow toward `replicas` without the total passing `replicas + maxSurge`.
pub fn new_rs_replicas(replicas: i32, max_surge: i32, new: i32, total: i32) -> i32 {
    if new >= replicas {
        return replicas;
    }
    let room = replicas + max_surge - total;
    if room <= 0 {
        return new;
    }
    new + room.min(replicas - new)
}

/// How far each old ReplicaSet may shrink now, oldest first, as
/// `reconcileOldReplicaSets`: first unhealthy pods (which hold nothing up),
/// then available ones down to `replicas - maxUnavailable`.
pub fn scale_down_old(
    replicas: i32,
    max_unavailable: i32,
    new: &ReplicaSet,
    olds: &[&ReplicaSet],
) -> Vec<(String, i32)> {
    let old_total: i32 = olds.iter().map(|rs| spec_replicas(rs)).sum();
    if old_total == 0 {
        return Vec::new();
    }
    let all_total = old_total + spec_replicas(new);
    let min_available = replicas - max_unavailable;
    let new_unavailable = spec_replicas(new) - available(new);
    let mut budget = all_total - min_available - new_unavailable;
    if budget <= 0 {
        return Vec::new();
    }
    let mut targets: Vec<(String, i32)> = olds
        .iter()
        .map(|rs| {
            (
                rs.metadata.name.clone().unwrap_or_default(),
                spec_replicas(rs),
            )
        })
        .collect();
    // Unhealthy pods first: they are not available, so removing them costs nothing.
    for (target, rs) in targets.iter_mut().zip(olds) {
        let unhealthy = (target.1 - available(rs)).max(0).min(budget);
        target.1 -= unhealthy;
        budget -= unhealthy;
    }
    // Then available pods, while the Deployment keeps min_available.
    let available_total: i32 = available(new)
        + targets
            .iter()
            .zip(olds)
            .map(|(t, rs)| available(rs).min(t.1))
            .sum::<i32>();
    let mut remaining = (available_total - min_available).max(0);
    for target in targets.iter_mut() {
        let step = target.1.min(remaining);
        target.1 -= step;
        remaining -= step;
    }
    targets
        .into_iter()
        .zip(olds)
        .filter(|(t, rs)| t.1 != spec_replicas(rs))
        .map(|(t, _)| t)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        let p = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled_value(&p("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&p("25%"), 10, false), Ok(2));
        assert_eq!(scaled_value(&IntOrString::Int(4), 10, false), Ok(4));
        assert!(scaled_value(&p("many"), 10, true).is_err());
    }

    #[test]
    fn new_replica_set_grows_within_the_surge() {
        assert_eq!(new_rs_replicas(10, 3, 0, 10), 3);
        assert_eq!(new_rs_replicas(10, 3, 3, 13), 3, "at the surge limit");
        assert_eq!(new_rs_replicas(10, 3, 8, 10), 10);
        assert_eq!(new_rs_replicas(10, 3, 12, 12), 10, "never above replicas");
    }
}
