//! The CronJob controller — ECS's scheduled tasks: creates a Job from
//! `jobTemplate` at each time `schedule` names, in `timeZone`.
//!
//! As Kubernetes' `CronJobControllerV2.syncCronJob`
//! (pkg/controller/cronjob/cronjob_controllerv2.go), one reconcile:
//! 1. lists the CronJob's Jobs: active ones go into `status.active`, the
//!    latest success into `lastSuccessfulTime`;
//! 2. finds the most recent scheduled time not yet run (since
//!    `lastScheduleTime`, or creation), skipping it when it is older than
//!    `startingDeadlineSeconds`, and warning when more than 100 were missed;
//! 3. applies `concurrencyPolicy`: `Allow` runs beside active Jobs, `Forbid`
//!    waits, `Replace` deletes them;
//! 4. creates the Job, named `<cronjob>-<scheduled time in minutes>`, so a
//!    restarted controller finds it instead of creating it again;
//! 5. deletes finished Jobs beyond `successfulJobsHistoryLimit` (3) and
//!    `failedJobsHistoryLimit` (1), oldest first;
//! 6. looks again at the next scheduled time.
//!
//! # Caveats
//! `@every` is not accepted; the time zone database is chrono-tz's, built in.

use std::time::Duration;

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

pub(crate) mod controller;
pub mod schedule;

pub use schedule::Schedule;

/// The annotation carrying the time a Job was scheduled for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed start times than this is worth a warning.
const MISSED_WARNING: usize = 100;

/// What one reconcile of a CronJob does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The Job to create now.
    pub create: Option<Job>,
    /// Jobs to delete (replaced, or beyond the history limits).
    pub delete: Vec<String>,
    /// The status to write when it differs.
    pub status: CronJobStatus,
    /// A warning to record (reason, message).
    pub warning: Option<(String, String)>,
    /// Look again after this long (the next scheduled time).
    pub requeue_after: Option<Duration>,
}

fn to_chrono(t: Timestamp, tz: Tz) -> DateTime<Tz> {
    tz.timestamp_opt(t.as_second(), 0)
        .single()
        .unwrap_or_else(|| tz.timestamp_opt(0, 0).unwrap())
}

fn to_jiff(t: DateTime<Tz>) -> Timestamp {
    Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn finished(job: &Job) -> Option<(&str, Timestamp)> {
    let status = job.status.as_ref()?;
    let c = status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    let at = c
        .last_transition_time
        .as_ref()
        .or(status.completion_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    Some((c.type_.as_str(), at))
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Reconciles `cron_job` against the Jobs it controls. An error names why
/// the CronJob cannot be acted on (a bad schedule or time zone).
pub fn reconcile(cron_job: &CronJob, jobs: &[&Job], now: Timestamp) -> Result<Plan, String> {
    let spec = cron_job.spec.as_ref().ok_or("the CronJob has no spec")?;
    let tz: Tz = match spec.time_zone.as_deref() {
        None | Some("") => Tz::UTC,
        Some(name) => name
            .parse()
            .map_err(|_| format!("unknown time zone {name:?}"))?,
    };
    let schedule = Schedule::parse(&spec.schedule)
        .map_err(|e| format!("unparseable schedule {:?}: {e}", spec.schedule))?;
    let mut plan = Plan::default();
    let old = cron_job.status.clone().unwrap_or_default();
    let mut active: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| finished(j).is_none())
        .collect();
    let last_success = jobs
        .iter()
        .filter_map(|j| {
            finished(j)
                .filter(|(kind, _)| *kind == "Complete")
                .map(|(_, at)| at)
        })
        .max()
        .max(old.last_successful_time.as_ref().map(|t| t.0));
    plan.status = CronJobStatus {
        active: None,
        last_schedule_time: old.last_schedule_time.clone(),
        last_successful_time: last_success.map(Time),
    };
    plan.delete = history(
        spec.successful_jobs_history_limit.unwrap_or(3),
        spec.failed_jobs_history_limit.unwrap_or(1),
        jobs,
    );
    let now_tz = to_chrono(now, tz);
    let next = schedule.next_after(now_tz, tz);
    plan.requeue_after =
        next.map(|n| Duration::from_secs((n.timestamp() - now.as_second()).max(0) as u64 + 1));
    if cron_job.metadata.deletion_timestamp.is_some() || spec.suspend == Some(true) {
        plan.status.active = refs(&active);
        return Ok(plan);
    }
    let created = cron_job
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let mut earliest = old
        .last_schedule_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(created);
    if let Some(deadline) = spec.starting_deadline_seconds {
        let floor =
            Timestamp::from_second(now.as_second() - deadline).unwrap_or(Timestamp::UNIX_EPOCH);
        earliest = earliest.max(floor);
    }
    let (missed, scheduled) = most_recent(&schedule, tz, to_chrono(earliest, tz), now_tz);
    if missed > MISSED_WARNING {
        plan.warning = Some(("TooManyMissedTimes".into(), format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew")));
    }
    let Some(scheduled) = scheduled else {
        plan.status.active = refs(&active);
        return Ok(plan);
    };
    let name = format!(
        "{}-{}",
        cron_job.metadata.name.as_deref().unwrap_or(""),
        scheduled.timestamp() / 60
    );
    if jobs
        .iter()
        .any(|j| j.metadata.name.as_deref() == Some(&name))
    {
        plan.status.last_schedule_time = Some(Time(to_jiff(scheduled)));
        plan.status.active = refs(&active);
        return Ok(plan);
    }
    match spec.concurrency_policy.as_deref().unwrap_or("Allow") {
        "Forbid" if !active.is_empty() => {
            plan.status.active = refs(&active);
            plan.requeue_after = Some(Duration::from_secs(10)); // Look again when the active Job ends.
            return Ok(plan);
        }
        "Replace" => {
            plan.delete
                .extend(active.iter().filter_map(|j| j.metadata.name.clone()));
            active.clear();
        }
        _ => {}
    }
    let job = job_for(cron_job, &name, scheduled);
    plan.status.active = refs(
        &active
            .iter()
            .copied()
            .chain(std::iter::once(&job))
            .collect::<Vec<_>>(),
    );
    plan.status.last_schedule_time = Some(Time(to_jiff(scheduled)));
    plan.create = Some(job);
    Ok(plan)
}

fn refs(jobs: &[&Job]) -> Option<Vec<ObjectReference>> {
    let mut refs: Vec<ObjectReference> = jobs.iter().map(|j| reference(j)).collect();
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    (!refs.is_empty()).then_some(refs)
}

/// How many scheduled times fell in `(earliest, now]`, and the latest of them.
fn most_recent(
    schedule: &Schedule,
    tz: Tz,
    earliest: DateTime<Tz>,
    now: DateTime<Tz>,
) -> (usize, Option<DateTime<Tz>>) {
    let (mut count, mut latest) = (0, None);
    let mut t = earliest;
    while let Some(next) = schedule.next_after(t, tz) {
        if next > now {
            break;
        }
        count += 1;
        latest = Some(next);
        t = next;
        if count > 100_000 {
            break;
        }
    }
    (count, latest)
}

/// Finished Jobs beyond the history limits, oldest first.
fn history(successful: i32, failed: i32, jobs: &[&Job]) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, limit) in [("Complete", successful), ("Failed", failed)] {
        let mut done: Vec<(Timestamp, String)> = jobs
            .iter()
            .filter_map(|j| {
                finished(j)
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, at)| (at, j.metadata.name.clone().unwrap_or_default()))
            })
            .collect();
        done.sort();
        let surplus = done.len().saturating_sub(limit.max(0) as usize);
        out.extend(done.into_iter().take(surplus).map(|(_, name)| name));
    }
    out
}

/// The Job a CronJob runs at `scheduled`.
pub fn job_for(cron_job: &CronJob, name: &str, scheduled: DateTime<Tz>) -> Job {
    let template = cron_job
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let source = template.metadata.unwrap_or_default();
    let mut annotations = source.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        scheduled.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: cron_job.metadata.namespace.clone(),
            labels: source.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![crate::meta::controller_ref(cron_job)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

#[cfg(test)]
mod tests;
