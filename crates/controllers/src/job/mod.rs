//! The Job controller: runs pods until `completions` succeed, retries
//! failures up to `backoffLimit` with growing delays, and ends the Job with a
//! `Complete` or `Failed` condition.
//!
//! As Kubernetes' `Controller.syncJob` (pkg/controller/job/job_controller.go).
//! Every pod the Job creates carries the [`TRACKING_FINALIZER`], so a
//! finished pod cannot disappear before it is counted, and counting happens
//! in two writes that make it exactly-once across restarts:
//! 1. a finished pod's uid goes into `status.uncountedTerminatedPods`
//!    (written first);
//! 2. then its finalizer is removed;
//! 3. a uid in `uncountedTerminatedPods` whose pod no longer has the
//!    finalizer moves into `succeeded` / `failed` on the next reconcile.
//!
//! A crash between any two steps repeats only the step that was not done.
//! The rest of a reconcile: `activeDeadlineSeconds` (reason
//! `DeadlineExceeded`), `backoffLimit` (`BackoffLimitExceeded`),
//! `podFailurePolicy` ([`failure`]: FailJob, Ignore, Count), `suspend`
//! (active pods deleted, uncounted), `completionMode: Indexed` (each index
//! completed once, `JOB_COMPLETION_INDEX` in every container), and
//! `ttlSecondsAfterFinished` (the Job is deleted). As in Kubernetes, a
//! verdict is first recorded as `FailureTarget` / `SuccessCriteriaMet`;
//! `Failed` / `Complete` follow once every finished pod is counted.
//!
//! # Caveats
//! No `successPolicy`, `backoffLimitPerIndex`, `FailIndex` (counted as
//! Count), `podReplacementPolicy` or `managedBy`; the retry delay counts
//! all failures, not only consecutive ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::meta::{self, Claim};
use crate::pods;

pub(crate) mod controller;
pub mod failure;
pub mod indexes;

/// The finalizer that keeps a Job's pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label carrying an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The most pods created in one reconcile.
const BURST: usize = 500;

/// What one reconcile of a Job does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods to adopt.
    pub adopt: Vec<String>,
    /// Pods to release.
    pub release: Vec<String>,
    /// Pods to create: one entry each, with its completion index when Indexed.
    pub create: Vec<Option<i32>>,
    /// Active pods to delete.
    pub delete: Vec<String>,
    /// The status to write (before any finalizer is removed).
    pub status: JobStatus,
    /// Pods whose tracking finalizer goes, once `status` is written.
    pub remove_finalizers: Vec<String>,
    /// The Job's time to live has passed: delete it.
    pub delete_job: bool,
    /// Look again after this long (retry delay, deadline, TTL).
    pub requeue_after: Option<Duration>,
}

/// What the Job has seen of its pods.
struct Tally<'a> {
    active: Vec<&'a Pod>,
    uncounted_succeeded: BTreeSet<String>,
    uncounted_failed: BTreeSet<String>,
    succeeded: i32,
    failed: i32,
    completed_indexes: BTreeSet<i32>,
    fail_job: Option<String>,
    last_failure: Option<Timestamp>,
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// A pod's completion index, from its annotation.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

/// Whether the Job has ended (a `Complete` or `Failed` condition is True).
pub fn is_finished(job: &Job) -> bool {
    finished_condition(job).is_some()
}

fn finished_condition(job: &Job) -> Option<&JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// Reconciles `job` against `candidates`: the pods of its namespace it
/// controls or could adopt (others are ignored). `may_manage` is false
/// while earlier creations are not yet in the cache.
pub fn reconcile(
    job: &Job,
    candidates: &[&Pod],
    may_manage: bool,
    now: Timestamp,
) -> Result<Plan, String> {
    let spec = job.spec.as_ref().ok_or("the Job has no spec")?;
    let selector = meta::selector(spec.selector.as_ref())?;
    if selector.is_empty() || selector.matches_nothing() {
        return Err("the Job's selector selects every pod or none".into());
    }
    let deleting = job.metadata.deletion_timestamp.is_some();
    let mut plan = Plan::default();
    let mut owned = Vec::new();
    for pod in candidates {
        match meta::claim(
            job.metadata.uid.as_deref().unwrap_or(""),
            deleting,
            &selector,
            &pod.metadata,
        ) {
            Claim::Owned => owned.push(*pod),
            Claim::Adopt => {
                plan.adopt.push(name(pod));
                owned.push(*pod);
            }
            Claim::Release => plan.release.push(name(pod)),
            Claim::Ignore => {}
        }
    }
    let old = job.status.clone().unwrap_or_default();
    let finished_before = is_finished(job);
    let suspended = spec.suspend == Some(true);
    // With a verdict recorded, pods that end now are not counted.
    let ending = condition_is(&old, "FailureTarget", "True")
        || condition_is(&old, "SuccessCriteriaMet", "True");
    let quiet = finished_before || suspended || deleting || ending;
    let tally = tally(job, &owned, quiet, &mut plan);
    let mut status = JobStatus {
        active: Some(tally.active.len() as i32),
        ready: Some(tally.active.iter().filter(|p| pods::is_ready(p)).count() as i32),
        succeeded: Some(tally.succeeded),
        failed: Some(tally.failed),
        completed_indexes: is_indexed(job).then(|| indexes::format(&tally.completed_indexes)),
        uncounted_terminated_pods: Some(UncountedTerminatedPods {
            succeeded: Some(tally.uncounted_succeeded.iter().cloned().collect()),
            failed: Some(tally.uncounted_failed.iter().cloned().collect()),
        }),
        ..old.clone()
    };
    if finished_before || deleting {
        plan.delete = tally.active.iter().map(|p| name(p)).collect();
        plan.status = status;
        ttl(job, now, &mut plan);
        return Ok(plan);
    }
    if suspended {
        plan.delete = tally.active.iter().map(|p| name(p)).collect();
        status.start_time = None;
        set_condition(
            &mut status,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        );
        plan.status = status;
        return Ok(plan);
    }
    if condition_is(&old, "Suspended", "True") {
        set_condition(
            &mut status,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        );
    }
    let start = status.start_time.get_or_insert(Time(now)).clone();
    // The verdict is recorded first (FailureTarget, SuccessCriteriaMet);
    // Failed and Complete wait until every finished pod is counted.
    let flushed = tally.uncounted_succeeded.is_empty() && tally.uncounted_failed.is_empty();
    if let Some((reason, message)) = failure_reason(job, &tally, start.0, now) {
        plan.delete = tally.active.iter().map(|p| name(p)).collect();
        set_condition(&mut status, "FailureTarget", "True", &reason, &message, now);
        if flushed {
            set_condition(&mut status, "Failed", "True", &reason, &message, now);
            ttl_requeue(job, &mut plan);
        }
        plan.status = status;
        return Ok(plan);
    }
    if succeeded(job, &tally) || condition_is(&old, "SuccessCriteriaMet", "True") {
        plan.delete = tally.active.iter().map(|p| name(p)).collect();
        let (reason, message) = (
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        );
        set_condition(
            &mut status,
            "SuccessCriteriaMet",
            "True",
            reason,
            message,
            now,
        );
        if flushed {
            set_condition(&mut status, "Complete", "True", reason, message, now);
            status.completion_time = Some(Time(now));
            ttl_requeue(job, &mut plan);
        }
        plan.status = status;
        return Ok(plan);
    }
    if may_manage {
        manage(job, &tally, now, &mut plan);
    }
    plan.requeue_after = min_delay(plan.requeue_after, deadline_left(job, start.0, now));
    plan.status = status;
    Ok(plan)
}

/// Counts pods: moves counted uids out of `uncountedTerminatedPods`, adds
/// newly finished ones, and lists the finalizers to remove. With `quiet`
/// (the Job finished, suspended or going), pods that end now are not counted.
fn tally<'a>(job: &Job, owned: &[&'a Pod], quiet: bool, plan: &mut Plan) -> Tally<'a> {
    let old = job.status.clone().unwrap_or_default();
    let uncounted = old.uncounted_terminated_pods.clone().unwrap_or_default();
    let by_uid: BTreeMap<String, &Pod> = owned.iter().map(|p| (uid(p), *p)).collect();
    let mut tally = Tally {
        active: owned
            .iter()
            .copied()
            .filter(|p| pods::is_active(p))
            .collect(),
        uncounted_succeeded: BTreeSet::new(),
        uncounted_failed: BTreeSet::new(),
        succeeded: old.succeeded.unwrap_or(0),
        failed: old.failed.unwrap_or(0),
        completed_indexes: indexes::parse(old.completed_indexes.as_deref().unwrap_or("")),
        fail_job: None,
        last_failure: None,
    };
    // Step 3: uids whose finalizer is gone are counted for good.
    for (uids, counter, kept) in [
        (
            uncounted.succeeded.unwrap_or_default(),
            &mut tally.succeeded,
            &mut tally.uncounted_succeeded,
        ),
        (
            uncounted.failed.unwrap_or_default(),
            &mut tally.failed,
            &mut tally.uncounted_failed,
        ),
    ] {
        for u in uids {
            match by_uid.get(&u) {
                Some(pod) if has_finalizer(pod) => {
                    kept.insert(u);
                }
                _ => *counter += 1,
            }
        }
    }
    // Step 1: finished pods still holding the finalizer join the uncounted.
    for pod in owned {
        let failed_pod = pods::phase(pod) == "Failed"
            || (pod.metadata.deletion_timestamp.is_some() && pods::phase(pod) != "Succeeded");
        if failed_pod {
            tally.last_failure = tally.last_failure.max(failure::finished_at(pod));
        }
        if !has_finalizer(pod) {
            continue;
        }
        let u = uid(pod);
        if tally.uncounted_succeeded.contains(&u) || tally.uncounted_failed.contains(&u) {
            plan.remove_finalizers.push(name(pod));
            continue;
        }
        if pods::phase(pod) == "Succeeded" {
            tally.uncounted_succeeded.insert(u);
            tally.completed_indexes.extend(completion_index(pod));
        } else if failed_pod && !quiet {
            match failure::verdict(job, pod) {
                failure::Verdict::Ignore => {}
                failure::Verdict::FailJob(message) => {
                    tally.fail_job.get_or_insert(message);
                    tally.uncounted_failed.insert(u);
                }
                failure::Verdict::Count => {
                    tally.uncounted_failed.insert(u);
                }
            }
        } else if !failed_pod {
            continue; // Still running.
        }
        plan.remove_finalizers.push(name(pod));
    }
    if is_indexed(job) {
        tally.succeeded =
            tally.completed_indexes.len() as i32 - tally.uncounted_succeeded.len() as i32;
        tally.succeeded = tally.succeeded.max(0);
    }
    tally
}

/// Why the Job fails now, if it does.
fn failure_reason(
    job: &Job,
    tally: &Tally,
    start: Timestamp,
    now: Timestamp,
) -> Option<(String, String)> {
    let target = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_ == "FailureTarget" && c.status == "True")
        });
    if let Some(c) = target {
        let reason = c.reason.clone().unwrap_or_default();
        return Some((reason, c.message.clone().unwrap_or_default()));
    }
    if let Some(message) = &tally.fail_job {
        return Some(("PodFailurePolicy".into(), message.clone()));
    }
    let spec = job.spec.as_ref()?;
    let failed = tally.failed + tally.uncounted_failed.len() as i32;
    if failed > spec.backoff_limit.unwrap_or(6) {
        return Some((
            "BackoffLimitExceeded".into(),
            "Job has reached the specified backoff limit".into(),
        ));
    }
    if deadline_left(job, start, now) == Some(Duration::ZERO) {
        return Some((
            "DeadlineExceeded".into(),
            "Job was active longer than specified deadline".into(),
        ));
    }
    None
}

fn succeeded(job: &Job, tally: &Tally) -> bool {
    let spec = job.spec.as_ref();
    let completions = spec.and_then(|s| s.completions);
    if is_indexed(job) {
        let wanted = completions.unwrap_or(1);
        return (0..wanted).all(|i| tally.completed_indexes.contains(&i));
    }
    let succeeded = tally.succeeded + tally.uncounted_succeeded.len() as i32;
    match completions {
        Some(wanted) => succeeded >= wanted,
        None => succeeded > 0 && tally.active.is_empty(),
    }
}

/// Creates missing pods (after the retry delay) or deletes surplus ones.
fn manage(job: &Job, tally: &Tally, now: Timestamp, plan: &mut Plan) {
    let spec = job.spec.clone().unwrap_or_default();
    let parallelism = spec.parallelism.unwrap_or(1).max(0) as usize;
    let failed = tally.failed + tally.uncounted_failed.len() as i32;
    if let Some(last) = tally.last_failure {
        let ready_at = pods::after(last, failure::backoff(failed));
        if ready_at > now {
            plan.requeue_after = Some(pods::elapsed(now, ready_at));
            return;
        }
    }
    if is_indexed(job) {
        manage_indexed(spec.completions.unwrap_or(1), parallelism, tally, plan);
        return;
    }
    let succeeded = (tally.succeeded + tally.uncounted_succeeded.len() as i32) as usize;
    let want = match spec.completions {
        Some(c) => (c.max(0) as usize)
            .saturating_sub(succeeded)
            .min(parallelism),
        None if succeeded > 0 => tally.active.len().min(parallelism),
        None => parallelism,
    };
    let active = tally.active.len();
    if active < want {
        plan.create = vec![None; (want - active).min(BURST)];
    } else if active > want {
        let mut ordered = tally.active.clone();
        pods::deletion_order(&mut ordered);
        plan.delete = ordered[..active - want].iter().map(|p| name(p)).collect();
    }
}

fn manage_indexed(completions: i32, parallelism: usize, tally: &Tally, plan: &mut Plan) {
    let mut running: BTreeSet<i32> = BTreeSet::new();
    for pod in &tally.active {
        match completion_index(pod) {
            Some(i) if !running.contains(&i) && !tally.completed_indexes.contains(&i) => {
                running.insert(i);
            }
            _ => plan.delete.push(name(pod)), // A duplicate, or an index already done.
        }
    }
    let room = parallelism.saturating_sub(running.len()).min(BURST);
    plan.create = (0..completions)
        .filter(|i| !running.contains(i) && !tally.completed_indexes.contains(i))
        .take(room)
        .map(Some)
        .collect();
}

/// Time left before `activeDeadlineSeconds`, if the Job has one.
fn deadline_left(job: &Job, start: Timestamp, now: Timestamp) -> Option<Duration> {
    let seconds = job.spec.as_ref()?.active_deadline_seconds?;
    let due = pods::after(start, Duration::from_secs(seconds.max(0) as u64));
    Some(pods::elapsed(now, due))
}

fn min_delay(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// After the Job finished: delete it once `ttlSecondsAfterFinished` passed.
fn ttl(job: &Job, now: Timestamp, plan: &mut Plan) {
    let Some(seconds) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return;
    };
    let Some(finished) = finished_condition(job).and_then(|c| c.last_transition_time.as_ref())
    else {
        return;
    };
    let due = pods::after(finished.0, Duration::from_secs(seconds.max(0) as u64));
    if due <= now {
        plan.delete_job = true;
    } else {
        plan.requeue_after = Some(pods::elapsed(now, due));
    }
}

/// A Job that has just finished looks again when its TTL is due.
fn ttl_requeue(job: &Job, plan: &mut Plan) {
    if let Some(seconds) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) {
        plan.requeue_after = Some(Duration::from_secs(seconds.max(0) as u64));
    }
}

fn condition_is(status: &JobStatus, kind: &str, value: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == kind && c.status == value)
}

fn set_condition(
    status: &mut JobStatus,
    kind: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let fresh = JobCondition {
        type_: kind.into(),
        status: value.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(c) if c.status == value => {}
        Some(c) => *c = fresh,
        None => conditions.push(fresh),
    }
}

/// The pod the Job creates: its template, the tracking finalizer, a
/// controller reference, and for Indexed Jobs the index as annotation, label
/// and `JOB_COMPLETION_INDEX` in every container.
pub fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let spec = job.spec.clone().unwrap_or_default();
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let generate = match index {
        Some(i) => format!("{job_name}-{i}-"),
        None => format!("{job_name}-"),
    };
    let mut pod = pods::from_template(
        &spec.template,
        &namespace,
        &generate,
        meta::controller_ref(job),
    );
    pod.metadata
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    if let Some(i) = index {
        pod.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX.into(), i.to_string());
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX.into(), i.to_string());
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                    api_version: None,
                }),
                ..Default::default()
            }),
        };
        for container in pod.spec.iter_mut().flat_map(|s| s.containers.iter_mut()) {
            container.env.get_or_insert_with(Vec::new).push(env.clone());
        }
    }
    pod
}

#[cfg(test)]
mod tests;
