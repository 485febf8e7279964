use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::*;
use crate::fixtures::{at, pod, template, Phase, PodBuilder};

fn job(completions: Option<i32>, parallelism: i32) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some("pi".into()),
            namespace: Some("default".into()),
            uid: Some("job-uid".into()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completions,
            parallelism: Some(parallelism),
            selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            }),
            template: template("perl"),
            ..Default::default()
        }),
        status: None,
    }
}

fn owned(name: &str) -> PodBuilder {
    pod(name)
        .owner("Job", "pi", "job-uid")
        .finalizer(TRACKING_FINALIZER)
}

/// Applies a plan's status as the shell would: the status write comes first.
fn written(mut job: Job, plan: &Plan) -> Job {
    job.status = Some(plan.status.clone());
    job
}

fn strip_finalizer(mut pod: Pod) -> Pod {
    pod.metadata.finalizers = Some(Vec::new());
    pod
}

fn condition(plan: &Plan, kind: &str) -> Option<JobCondition> {
    plan.status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind)
        .cloned()
}

#[test]
fn creates_up_to_parallelism_and_no_more_than_the_remaining_completions() {
    let plan = reconcile(&job(Some(5), 2), &[], true, at(0)).unwrap();
    assert_eq!(plan.create, [None, None]);
    assert_eq!(plan.status.start_time, Some(Time(at(0))));
    let running = owned("a").phase(Phase::Running).build();
    let done: Vec<Pod> = (0..4)
        .map(|i| strip_finalizer(owned(&format!("d{i}")).exited(0, at(1)).build()))
        .collect();
    let mut j = job(Some(5), 3);
    j.status = Some(JobStatus {
        succeeded: Some(4),
        ..Default::default()
    });
    let mut all: Vec<&Pod> = done.iter().collect();
    all.push(&running);
    assert!(
        reconcile(&j, &all, true, at(2)).unwrap().create.is_empty(),
        "one left, one running"
    );
}

#[test]
fn a_finished_pod_is_counted_once_through_uncounted_then_the_finalizer() {
    let j = job(Some(2), 1);
    let done = owned("a").exited(0, at(5)).build();
    // Round 1: the uid goes into uncountedTerminatedPods, then the finalizer goes.
    let plan = reconcile(&j, &[&done], true, at(6)).unwrap();
    let uncounted = plan.status.uncounted_terminated_pods.clone().unwrap();
    assert_eq!(uncounted.succeeded.unwrap(), ["uid-a"]);
    assert_eq!(plan.status.succeeded, Some(0));
    assert_eq!(plan.remove_finalizers, ["a"]);
    let j = written(j, &plan);
    // A crash before the finalizer went: the same round again, not a second count.
    let again = reconcile(&j, &[&done], true, at(7)).unwrap();
    assert_eq!(again.status, plan.status);
    assert_eq!(again.remove_finalizers, ["a"]);
    // Round 2: the finalizer is gone, the pod is counted for good.
    let done = strip_finalizer(done);
    let plan = reconcile(&j, &[&done], true, at(8)).unwrap();
    assert_eq!(plan.status.succeeded, Some(1));
    assert_eq!(
        plan.status
            .uncounted_terminated_pods
            .clone()
            .unwrap()
            .succeeded
            .unwrap(),
        Vec::<String>::new()
    );
    let j = written(j, &plan);
    let plan = reconcile(&j, &[&done], true, at(9)).unwrap();
    assert_eq!(plan.status.succeeded, Some(1), "never counted twice");
}

#[test]
fn completes_when_completions_succeed_and_deletes_what_still_runs() {
    let mut j = job(Some(2), 2);
    j.status = Some(JobStatus {
        succeeded: Some(1),
        ..Default::default()
    });
    let done = owned("b").exited(0, at(5)).build();
    let extra = owned("c").phase(Phase::Running).build();
    let plan = reconcile(&j, &[&done, &extra], true, at(6)).unwrap();
    assert_eq!(
        condition(&plan, "SuccessCriteriaMet").unwrap().status,
        "True"
    );
    assert!(
        condition(&plan, "Complete").is_none(),
        "b is not counted yet"
    );
    assert_eq!(plan.delete, ["c"]);
    // Once b's finalizer is gone and it is counted, the Job is Complete.
    let j = written(j, &plan);
    let done = strip_finalizer(done);
    let plan = reconcile(&j, &[&done], true, at(7)).unwrap();
    assert_eq!(condition(&plan, "Complete").unwrap().status, "True");
    assert_eq!(plan.status.succeeded, Some(2));
    assert_eq!(plan.status.completion_time, Some(Time(at(7))));
}

#[test]
fn failures_past_the_backoff_limit_fail_the_job() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().backoff_limit = Some(1);
    j.status = Some(JobStatus {
        failed: Some(1),
        start_time: Some(Time(at(0))),
        ..Default::default()
    });
    let failed = owned("f").exited(1, at(5)).build();
    let plan = reconcile(&j, &[&failed], true, at(6)).unwrap();
    let c = condition(&plan, "FailureTarget").unwrap();
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    let (j, failed) = (written(j, &plan), strip_finalizer(failed));
    let plan = reconcile(&j, &[&failed], true, at(7)).unwrap();
    let c = condition(&plan, "Failed").unwrap();
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(plan.status.failed, Some(2));
}

#[test]
fn a_replacement_waits_for_the_retry_delay() {
    let mut j = job(Some(1), 1);
    j.status = Some(JobStatus {
        failed: Some(2),
        start_time: Some(Time(at(0))),
        ..Default::default()
    });
    let failed = strip_finalizer(owned("f").exited(1, at(100)).build());
    let plan = reconcile(&j, &[&failed], true, at(110)).unwrap();
    assert!(plan.create.is_empty());
    assert_eq!(
        plan.requeue_after,
        Some(Duration::from_secs(10)),
        "20 s after the second failure"
    );
    let plan = reconcile(&j, &[&failed], true, at(120)).unwrap();
    assert_eq!(plan.create, [None]);
}

#[test]
fn active_deadline_fails_the_job_with_deadline_exceeded() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().active_deadline_seconds = Some(30);
    j.status = Some(JobStatus {
        start_time: Some(Time(at(0))),
        ..Default::default()
    });
    let running = owned("r").phase(Phase::Running).build();
    let plan = reconcile(&j, &[&running], true, at(10)).unwrap();
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(20)));
    let plan = reconcile(&j, &[&running], true, at(30)).unwrap();
    assert_eq!(
        condition(&plan, "Failed").unwrap().reason.as_deref(),
        Some("DeadlineExceeded")
    );
    assert_eq!(plan.delete, ["r"]);
}

#[test]
fn pod_failure_policy_fails_ignores_or_counts_by_exit_code() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().pod_failure_policy = Some(PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: None,
                    operator: "In".into(),
                    values: vec![42],
                }),
                on_pod_conditions: None,
            },
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some("main".into()),
                    operator: "In".into(),
                    values: vec![137],
                }),
                on_pod_conditions: None,
            },
        ],
    });
    let fatal = owned("fatal").exited(42, at(5)).build();
    let plan = reconcile(&j, &[&fatal], true, at(6)).unwrap();
    let failed = condition(&plan, "FailureTarget").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("PodFailurePolicy"));
    assert!(failed.message.unwrap().contains("exit code 42"));
    let killed = owned("killed").exited(137, at(5)).build();
    let plan = reconcile(&j, &[&killed], true, at(6)).unwrap();
    assert!(condition(&plan, "Failed").is_none());
    assert_eq!(
        plan.status
            .uncounted_terminated_pods
            .unwrap()
            .failed
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(plan.remove_finalizers, ["killed"], "ignored, yet released");
    let other = owned("other").exited(3, at(5)).build();
    let plan = reconcile(&j, &[&other], true, at(6)).unwrap();
    assert_eq!(
        plan.status
            .uncounted_terminated_pods
            .unwrap()
            .failed
            .unwrap(),
        ["uid-other"]
    );
}

#[test]
fn indexed_jobs_run_each_missing_index_once() {
    let mut j = job(Some(4), 2);
    j.spec.as_mut().unwrap().completion_mode = Some("Indexed".into());
    j.status = Some(JobStatus {
        completed_indexes: Some("0".into()),
        succeeded: Some(1),
        ..Default::default()
    });
    let one = owned("one")
        .annotation(COMPLETION_INDEX, "1")
        .phase(Phase::Running)
        .build();
    let dup = owned("dup")
        .annotation(COMPLETION_INDEX, "1")
        .phase(Phase::Running)
        .build();
    let plan = reconcile(&j, &[&one, &dup], true, at(1)).unwrap();
    assert_eq!(plan.delete, ["dup"]);
    assert_eq!(
        plan.create,
        [Some(2)],
        "parallelism 2: index 1 runs, index 2 starts"
    );
    let done = owned("one")
        .annotation(COMPLETION_INDEX, "1")
        .exited(0, at(2))
        .build();
    let plan = reconcile(&j, &[&done], true, at(3)).unwrap();
    assert_eq!(plan.status.completed_indexes.as_deref(), Some("0-1"));
    assert_eq!(plan.create, [Some(2), Some(3)]);
    let pod = new_pod(&j, Some(3));
    let env = &pod.spec.unwrap().containers[0].env.clone().unwrap()[0];
    assert_eq!(env.name, "JOB_COMPLETION_INDEX");
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-3-"));
    assert!(pod
        .metadata
        .finalizers
        .unwrap()
        .contains(&TRACKING_FINALIZER.to_string()));
}

#[test]
fn suspend_deletes_active_pods_without_counting_them_and_resume_restarts_the_clock() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().suspend = Some(true);
    j.status = Some(JobStatus {
        start_time: Some(Time(at(0))),
        ..Default::default()
    });
    let running = owned("r").phase(Phase::Running).build();
    let plan = reconcile(&j, &[&running], true, at(5)).unwrap();
    assert_eq!(plan.delete, ["r"]);
    assert_eq!(plan.status.start_time, None);
    assert_eq!(condition(&plan, "Suspended").unwrap().status, "True");
    let going = owned("r").phase(Phase::Running).deleting(at(6)).build();
    let j = written(j, &plan);
    let plan = reconcile(&j, &[&going], true, at(6)).unwrap();
    assert_eq!(plan.remove_finalizers, ["r"]);
    assert_eq!(
        plan.status
            .uncounted_terminated_pods
            .clone()
            .unwrap()
            .failed
            .unwrap(),
        Vec::<String>::new()
    );
    let mut j = written(j, &plan);
    j.spec.as_mut().unwrap().suspend = Some(false);
    let plan = reconcile(&j, &[], true, at(20)).unwrap();
    assert_eq!(plan.status.start_time, Some(Time(at(20))));
    assert_eq!(condition(&plan, "Suspended").unwrap().status, "False");
    assert_eq!(plan.create, [None]);
}

#[test]
fn a_finished_job_is_deleted_after_its_ttl() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(60);
    let done = owned("a").exited(0, at(5)).build();
    let mut plan = reconcile(&j, &[&done], true, at(6)).unwrap();
    j = written(j, &plan);
    assert!(!plan.delete_job);
    let done = strip_finalizer(done);
    for t in [6, 8] {
        plan = reconcile(&j, &[&done], true, at(t)).unwrap();
        j = written(j, &plan);
    }
    assert!(condition(&plan, "Complete").is_some());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(58)));
    assert!(reconcile(&j, &[], true, at(66)).unwrap().delete_job);
}
