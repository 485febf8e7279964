//! How a Job treats a failed pod: its `podFailurePolicy` rules and the delay
//! before a replacement.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

/// What a `podFailurePolicy` rule does with a failed pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fail the whole Job, with the message naming the pod and rule.
    FailJob(String),
    /// Do not count the failure toward `backoffLimit`.
    Ignore,
    /// Count it (also what happens when no rule matches).
    Count,
}

/// The first rule of the Job's `podFailurePolicy` that matches `pod`, as
/// `matchPodFailurePolicy`: exit codes of its containers (`In`/`NotIn`,
/// exit code 0 never matching `NotIn`), or its conditions.
pub fn verdict(job: &Job, pod: &Pod) -> Verdict {
    let rules = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
        .map(|p| p.rules.as_slice())
        .unwrap_or(&[]);
    let pod_name = crate::meta::key_of(&pod.metadata);
    for (index, rule) in rules.iter().enumerate() {
        let Some(why) = matches(rule, pod) else {
            continue;
        };
        return match rule.action.as_str() {
            "FailJob" => Verdict::FailJob(format!(
                "{why} for pod {pod_name} matching FailJob rule at index {index}"
            )),
            "Ignore" => Verdict::Ignore,
            _ => Verdict::Count,
        };
    }
    Verdict::Count
}

/// Why `rule` matches `pod`, or `None`.
fn matches(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if let Some(codes) = &rule.on_exit_codes {
        let containers = status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten());
        for container in containers {
            if codes
                .container_name
                .as_ref()
                .is_some_and(|n| *n != container.name)
            {
                continue;
            }
            let Some(code) = container
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
            else {
                continue;
            };
            let listed = codes.values.contains(&code);
            let hit = match codes.operator.as_str() {
                "In" => listed,
                "NotIn" => code != 0 && !listed,
                _ => false,
            };
            if hit {
                return Some(format!(
                    "Container {} failed with exit code {code}",
                    container.name
                ));
            }
        }
    }
    for pattern in rule.on_pod_conditions.iter().flatten() {
        let hit = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == pattern.type_ && c.status == pattern.status);
        if hit {
            return Some(format!("Pod has condition {}", pattern.type_));
        }
    }
    None
}

/// The delay before replacing a pod after `failures` failures: 10 s
/// doubling to a cap of 6 minutes, as the Job controller's pod backoff.
pub fn backoff(failures: i32) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let base = Duration::from_secs(10);
    let cap = Duration::from_secs(360);
    let shift = (failures - 1).min(16) as u32;
    (base * 2u32.pow(shift)).min(cap)
}

/// When `pod` finished: its last container's termination, else its
/// deletion or creation time.
pub fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_to_six_minutes() {
        let secs: Vec<u64> = (0..8).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 320, 360]);
        assert_eq!(backoff(1000).as_secs(), 360);
    }
}
