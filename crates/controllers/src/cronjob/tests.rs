use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus, JobTemplateSpec};

use super::*;
use crate::fixtures::at;

/// 2026-01-01T00:00:00Z.
const JAN_1: i64 = 1_767_225_600;

fn cron_job(schedule: &str) -> CronJob {
    CronJob {
        metadata: ObjectMeta {
            name: Some("report".into()),
            namespace: Some("default".into()),
            uid: Some("cj-uid".into()),
            creation_timestamp: Some(Time(at(JAN_1))),
            ..Default::default()
        },
        spec: Some(CronJobSpec {
            schedule: schedule.into(),
            job_template: JobTemplateSpec::default(),
            ..Default::default()
        }),
        status: None,
    }
}

fn finished_job(name: &str, kind: &str, when: i64) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: None,
        status: Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: kind.into(),
                status: "True".into(),
                last_transition_time: Some(Time(at(when))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

#[test]
fn a_due_schedule_creates_its_job_once_under_a_deterministic_name() {
    let cj = cron_job("*/5 * * * *");
    let plan = reconcile(&cj, &[], at(JAN_1 + 4 * 60)).unwrap();
    assert!(plan.create.is_none(), "nothing due before 00:05");
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(61)));
    let plan = reconcile(&cj, &[], at(JAN_1 + 6 * 60)).unwrap();
    let job = plan.create.unwrap();
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(format!("report-{}", (JAN_1 + 300) / 60).as_str())
    );
    assert_eq!(plan.status.last_schedule_time, Some(Time(at(JAN_1 + 300))));
    assert_eq!(plan.status.active.unwrap().len(), 1);
    // Restarted before the status was written: the Job is found, not made again.
    let again = reconcile(&cj, &[&job], at(JAN_1 + 6 * 60)).unwrap();
    assert!(again.create.is_none());
}

#[test]
fn a_start_past_its_deadline_is_skipped() {
    let mut cj = cron_job("0 * * * *");
    cj.spec.as_mut().unwrap().starting_deadline_seconds = Some(60);
    assert!(reconcile(&cj, &[], at(JAN_1 + 3600 + 120))
        .unwrap()
        .create
        .is_none());
    assert!(reconcile(&cj, &[], at(JAN_1 + 3600 + 30))
        .unwrap()
        .create
        .is_some());
}

#[test]
fn concurrency_policy_forbids_or_replaces_active_jobs() {
    let mut cj = cron_job("* * * * *");
    let mut running = finished_job("report-old", "Complete", 0);
    running.status = None;
    cj.spec.as_mut().unwrap().concurrency_policy = Some("Forbid".into());
    assert!(reconcile(&cj, &[&running], at(JAN_1 + 120))
        .unwrap()
        .create
        .is_none());
    cj.spec.as_mut().unwrap().concurrency_policy = Some("Replace".into());
    let plan = reconcile(&cj, &[&running], at(JAN_1 + 120)).unwrap();
    assert!(plan.create.is_some());
    assert_eq!(plan.delete, ["report-old"]);
    cj.spec.as_mut().unwrap().concurrency_policy = None;
    let plan = reconcile(&cj, &[&running], at(JAN_1 + 120)).unwrap();
    assert!(plan.create.is_some() && plan.delete.is_empty(), "Allow");
}

#[test]
fn history_beyond_the_limits_is_deleted_oldest_first() {
    let mut cj = cron_job("0 0 1 1 *");
    cj.spec.as_mut().unwrap().successful_jobs_history_limit = Some(2);
    cj.spec.as_mut().unwrap().failed_jobs_history_limit = Some(0);
    let jobs = [
        finished_job("s1", "Complete", 10),
        finished_job("s2", "Complete", 20),
        finished_job("s3", "Complete", 30),
        finished_job("f1", "Failed", 15),
    ];
    let refs: Vec<&Job> = jobs.iter().collect();
    let plan = reconcile(&cj, &refs, at(JAN_1 + 60)).unwrap();
    assert_eq!(plan.delete, ["s1", "f1"]);
    assert_eq!(plan.status.last_successful_time, Some(Time(at(30))));
}

#[test]
fn schedules_run_in_their_time_zone_and_bad_ones_say_why() {
    let mut cj = cron_job("0 9 * * *");
    cj.spec.as_mut().unwrap().time_zone = Some("Asia/Tokyo".into());
    // 09:00 in Tokyo is 00:00 UTC.
    let plan = reconcile(&cj, &[], at(JAN_1 + 86_400 + 60)).unwrap();
    assert_eq!(
        plan.status.last_schedule_time,
        Some(Time(at(JAN_1 + 86_400)))
    );
    cj.spec.as_mut().unwrap().time_zone = Some("Mars/Olympus".into());
    assert!(reconcile(&cj, &[], at(JAN_1))
        .unwrap_err()
        .contains("unknown time zone"));
    let bad = cron_job("every day");
    assert!(reconcile(&bad, &[], at(JAN_1))
        .unwrap_err()
        .contains("unparseable schedule"));
}

#[test]
fn suspended_cron_jobs_create_nothing() {
    let mut cj = cron_job("* * * * *");
    cj.spec.as_mut().unwrap().suspend = Some(true);
    assert!(reconcile(&cj, &[], at(JAN_1 + 600))
        .unwrap()
        .create
        .is_none());
}
