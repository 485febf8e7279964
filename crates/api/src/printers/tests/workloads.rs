//! Deployments, ReplicaSets, Jobs, CronJobs and PodDisruptionBudgets.

use serde_json::{json, Value};

use super::{cells, meta, names, CREATED};

fn template() -> Value {
    json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"},
                                   {"name": "log", "image": "busybox"}]}})
}

#[test]
fn deployments_show_ready_of_desired_and_counts_as_numbers() {
    let deploy = json!({"metadata": meta("web"), "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
        "template": template()},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        names("Deployment", 0),
        ["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    assert_eq!(names("Deployment", 1), ["Containers", "Images", "Selector"]);
    assert_eq!(
        Value::from(cells("Deployment", &deploy, CREATED + 60)),
        json!([
            "web",
            "2/3",
            3,
            2,
            "60s",
            "web,log",
            "nginx:1.27,busybox",
            "app=web,tier in (a,b)"
        ])
    );
    let fresh = json!({"metadata": meta("new"), "spec": {}});
    assert_eq!(
        cells("Deployment", &fresh, CREATED)[1..4],
        [json!("0/1"), json!(0), json!(0)]
    );
}

#[test]
fn replica_sets_show_desired_current_and_ready() {
    let rs = json!({"metadata": meta("web-5d4f"), "spec": {"replicas": 2,
        "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
        "template": template()},
        "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        Value::from(cells("ReplicaSet", &rs, CREATED)),
        json!([
            "web-5d4f",
            2,
            2,
            1,
            "0s",
            "web,log",
            "nginx:1.27,busybox",
            "app=web,pod-template-hash=5d4f"
        ])
    );
}

#[test]
fn jobs_show_status_completions_and_duration() {
    let complete = json!({"metadata": meta("pi"), "spec": {"completions": 1, "template": template()},
        "status": {"succeeded": 1, "startTime": "2024-05-01T10:00:00Z",
                   "completionTime": "2024-05-01T10:00:42Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}});
    assert_eq!(
        names("Job", 0),
        ["Name", "Status", "Completions", "Duration", "Age"]
    );
    assert_eq!(
        cells("Job", &complete, CREATED + 120)[..5],
        [
            json!("pi"),
            json!("Complete"),
            json!("1/1"),
            json!("42s"),
            json!("2m")
        ]
    );
    let running = json!({"metadata": meta("queue"), "spec": {"parallelism": 3},
        "status": {"succeeded": 1, "startTime": "2024-05-01T10:00:00Z"}});
    assert_eq!(
        cells("Job", &running, CREATED + 300)[1..4],
        [json!("Running"), json!("1/1 of 3"), json!("5m")]
    );
    let failed = json!({"metadata": meta("f"), "spec": {},
        "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
    assert_eq!(
        cells("Job", &failed, CREATED)[1..4],
        [json!("Failed"), json!("0/1"), json!("")]
    );
    let suspended = json!({"metadata": meta("s"), "spec": {"suspend": true},
        "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
    assert_eq!(cells("Job", &suspended, CREATED)[1], "Suspended");
}

#[test]
fn cron_jobs_show_schedule_suspension_and_last_run() {
    let cron = json!({"metadata": meta("backup"), "spec": {"schedule": "*/5 * * * *",
        "suspend": false,
        "jobTemplate": {"spec": {"template": template()}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2024-05-01T10:10:00Z"}});
    assert_eq!(
        names("CronJob", 0),
        [
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age"
        ]
    );
    assert_eq!(
        Value::from(cells("CronJob", &cron, CREATED + 720)),
        json!([
            "backup",
            "*/5 * * * *",
            "<none>",
            "False",
            1,
            "2m",
            "12m",
            "web,log",
            "nginx:1.27,busybox",
            "<none>"
        ])
    );
    let never =
        json!({"metadata": meta("n"), "spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}});
    assert_eq!(
        cells("CronJob", &never, CREATED)[2..6],
        [
            json!("Etc/UTC"),
            json!("<unset>"),
            json!(0),
            json!("<none>")
        ]
    );
}

#[test]
fn pod_disruption_budgets_show_their_bounds() {
    let pdb = json!({"metadata": meta("web"), "spec": {"minAvailable": "50%"},
        "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        Value::from(cells("PodDisruptionBudget", &pdb, CREATED)),
        json!(["web", "50%", "N/A", 1, "0s"])
    );
}
