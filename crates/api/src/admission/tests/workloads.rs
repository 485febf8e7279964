//! Jobs, CronJobs, Deployments, ReplicaSets and PodDisruptionBudgets.

use serde_json::{json, Value};

use super::{assert_error, assert_error_starting, assert_valid, check, with};

fn job() -> Value {
    json!({"metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5"}]}}}})
}

#[test]
fn jobs() {
    assert_valid("Job", &job());
    assert_error(
        "Job",
        &with(&job(), "/spec/template/spec/restartPolicy", Value::Null),
        "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
    );
    assert_error(
        "Job",
        &with(&job(), "/spec/template/spec/restartPolicy", json!("Always")),
        "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
    );
    assert_error(
        "Job",
        &with(&job(), "/spec/backoffLimit", json!(-1)),
        "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_error(
        "Job",
        &with(&job(), "/spec/parallelism", json!(-2)),
        "spec.parallelism: Invalid value: -2: must be greater than or equal to 0",
    );
    assert_error(
        "Job",
        &with(&job(), "/metadata/uid", Value::Null),
        "metadata.uid: Required value",
    );
    assert_error("Job", &with(&job(), "/spec/completionMode", json!("Sometimes")), "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"");
    let stolen = with(
        &job(),
        "/spec/selector",
        json!({"matchLabels": {"app": "other"}}),
    );
    assert_error_starting("Job", &stolen, "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"other\"}}: `selector` not auto-generated");
    let manual = json!({"metadata": {"name": "m", "namespace": "default"}, "spec": {"manualSelector": true,
        "selector": {"matchLabels": {"app": "m"}},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}});
    assert_error("Job", &manual, "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`");
    assert_valid(
        "Job",
        &with(&manual, "/spec/template/metadata/labels/app", json!("m")),
    );
}

#[test]
fn job_selector_and_template_are_immutable() {
    let old = job();
    assert!(check(
        "Job",
        &with(&old, "/metadata/labels", json!({"a": "b"})),
        Some(&old)
    )
    .is_empty());
    let errs = check(
        "Job",
        &with(
            &old,
            "/spec/template/spec/containers/0/image",
            json!("perl:6"),
        ),
        Some(&old),
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("spec.template: Invalid value: {")
            && errs[0].ends_with(": field is immutable"),
        "{}",
        errs[0]
    );
}

fn cron_job() -> Value {
    json!({"metadata": {"name": "backup", "namespace": "default"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "b", "image": "busybox"}]}}}}}})
}

#[test]
fn cron_jobs() {
    assert_valid("CronJob", &cron_job());
    assert_valid(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("@daily")),
    );
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("")),
        "spec.schedule: Required value",
    );
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("* * *")),
        "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
    );
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("61 * * * *")),
        "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
    );
    assert_error("CronJob", &with(&cron_job(), "/spec/schedule", json!("TZ=UTC * * * * *")), "spec.schedule: Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    assert_error("CronJob", &with(&cron_job(), "/spec/concurrencyPolicy", json!("Sometimes")), "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"");
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/failedJobsHistoryLimit", json!(-1)),
        "spec.failedJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_error("CronJob", &with(&cron_job(), "/spec/jobTemplate/spec/template/spec/restartPolicy", Value::Null), "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"");
    let long = "a".repeat(53);
    assert_error(
        "CronJob",
        &with(&cron_job(), "/metadata/name", json!(long)),
        &format!("metadata.name: Invalid value: \"{long}\": must be no more than 52 characters"),
    );
}

fn deployment() -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
}

#[test]
fn deployments_and_replica_sets() {
    for kind in ["Deployment", "ReplicaSet"] {
        assert_valid(kind, &deployment());
        assert_error(kind, &with(&deployment(), "/spec/template/metadata/labels/app", json!("db")), "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"db\"}: `selector` does not match template `labels`");
        assert_error(
            kind,
            &with(&deployment(), "/spec/selector", Value::Null),
            "spec.selector: Required value",
        );
        assert_error(
            kind,
            &with(&deployment(), "/spec/selector", json!({})),
            "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
        );
        assert_error(
            kind,
            &with(&deployment(), "/spec/replicas", json!(-1)),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        );
        assert_error(kind, &with(&deployment(), "/spec/template/spec/restartPolicy", json!("Never")), "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"");
        assert_error(kind, &with(&deployment(), "/spec/template/spec/activeDeadlineSeconds", json!(10)), "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported");
        let bad_op = with(
            &deployment(),
            "/spec/selector",
            json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
        );
        assert_error(kind, &bad_op, "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
        let old = deployment();
        let moved = with(&old, "/spec/selector/matchLabels/app", json!("web2"));
        let moved = with(&moved, "/spec/template/metadata/labels/app", json!("web2"));
        assert_eq!(check(kind, &moved, Some(&old)), vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web2\"}}: field is immutable"]);
        assert!(check(kind, &with(&old, "/spec/replicas", json!(5)), Some(&old)).is_empty());
    }
}

#[test]
fn deployment_strategy_and_deadlines() {
    let d = deployment();
    let zero = with(
        &d,
        "/spec/strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}),
    );
    assert_error("Deployment", &zero, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0");
    let over = with(
        &d,
        "/spec/strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}}),
    );
    assert_error("Deployment", &over, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%");
    let recreate = with(
        &d,
        "/spec/strategy",
        json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
    );
    assert_error("Deployment", &recreate, "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'");
    let odd = with(&d, "/spec/strategy", json!({"type": "BlueGreen"}));
    assert_error("Deployment", &odd, "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\"");
    let slow = with(
        &with(&d, "/spec/minReadySeconds", json!(30)),
        "/spec/progressDeadlineSeconds",
        json!(10),
    );
    assert_error(
        "Deployment",
        &slow,
        "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds",
    );
}

fn budget() -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 2}})
}

#[test]
fn pod_disruption_budgets() {
    assert_valid("PodDisruptionBudget", &budget());
    let by_percent = with(&budget(), "/spec/minAvailable", Value::Null);
    assert_valid(
        "PodDisruptionBudget",
        &with(&by_percent, "/spec/maxUnavailable", json!("30%")),
    );
    assert_error_starting(
        "PodDisruptionBudget",
        &with(&budget(), "/spec/maxUnavailable", json!(1)),
        "spec: Invalid value: {",
    );
    assert!(
        check(
            "PodDisruptionBudget",
            &with(&budget(), "/spec/maxUnavailable", json!(1)),
            None
        )
        .iter()
        .any(|e| e.ends_with(": minAvailable and maxUnavailable cannot be both set")),
        "not both"
    );
    assert_error(
        "PodDisruptionBudget",
        &with(&budget(), "/spec/minAvailable", json!(-1)),
        "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_error(
        "PodDisruptionBudget",
        &with(&by_percent, "/spec/maxUnavailable", json!("120%")),
        "spec.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%",
    );
    assert_error_starting(
        "PodDisruptionBudget",
        &with(&budget(), "/spec/minAvailable", json!("half")),
        "spec.minAvailable: Invalid value: \"half\": a valid percent string must be",
    );
    assert_error(
        "PodDisruptionBudget",
        &with(&budget(), "/spec/unhealthyPodEvictionPolicy", json!("Never")),
        "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
    );
    assert_error(
        "PodDisruptionBudget",
        &with(&budget(), "/metadata/namespace", Value::Null),
        "metadata.namespace: Required value",
    );
}
