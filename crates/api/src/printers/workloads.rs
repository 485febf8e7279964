//! Workloads: Deployments, ReplicaSets, Jobs, CronJobs and
//! PodDisruptionBudgets, as Kubernetes' printers for the apps, batch and
//! policy groups.
//!
//! Replica counts stay numbers (integer columns); `-o wide` adds the pod
//! template's CONTAINERS and IMAGES and the SELECTOR.

use serde_json::Value;

use super::age::{age, human_duration, parse_timestamp};
use super::object::{at, int, items, label_selector, len, text};
use super::{created, name, Column, Printer, AGE, NAME};

const CONTAINERS: Column = Column::new(
    "Containers",
    "string",
    "Names of each container in the template.",
)
.wide();
const IMAGES: Column = Column::new(
    "Images",
    "string",
    "Images referenced by each container in the template.",
)
.wide();
const SELECTOR: Column = Column::new(
    "Selector",
    "string",
    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the \
     ones affected by this deployment.",
)
.wide();

const DEPLOYMENT: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new("Up-to-date", "integer", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    Column::new("Available", "integer", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const REPLICA_SET: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1."),
    Column::new("Current", "integer", "Replicas is the most recently observed number of non-terminating pods."),
    Column::new("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const JOB: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new(
        "Completions",
        "string",
        "The completion status of the job, as succeeded/desired.",
    ),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const CRON_JOB: &[Column] = &[
    NAME,
    Column::new("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column::new("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    Column::new("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions. Defaults to false."),
    Column::new("Active", "integer", "A list of pointers to currently running jobs."),
    Column::new("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const POD_DISRUPTION_BUDGET: &[Column] = &[
    NAME,
    Column::new("Min Available", "string", "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    Column::new("Max Unavailable", "string", "The maximum number of pods that may be unavailable simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\"."),
    Column::new("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE,
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (_, fn(&Value, i64) -> Vec<Value>) = match kind {
        "Deployment" => (DEPLOYMENT, deployment),
        "ReplicaSet" => (REPLICA_SET, replica_set),
        "Job" => (JOB, job),
        "CronJob" => (CRON_JOB, cron_job),
        "PodDisruptionBudget" => (POD_DISRUPTION_BUDGET, pod_disruption_budget),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// `spec.replicas`, which Kubernetes defaults to 1.
fn replicas(object: &Value) -> i64 {
    at(object, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// CONTAINERS and IMAGES of the pod template at `template`.
fn template_cells(object: &Value, template: &[&str]) -> [Value; 2] {
    let mut path = template.to_vec();
    path.extend(["spec", "containers"]);
    let containers = items(object, &path);
    let names: Vec<String> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| text(c, &["image"])).collect();
    [names.join(",").into(), images.join(",").into()]
}

fn deployment(object: &Value, now: i64) -> Vec<Value> {
    let ready = int(object, &["status", "readyReplicas"]);
    let [containers, images] = template_cells(object, &["spec", "template"]);
    vec![
        name(object),
        format!("{ready}/{}", replicas(object)).into(),
        int(object, &["status", "updatedReplicas"]).into(),
        int(object, &["status", "availableReplicas"]).into(),
        created(object, now),
        containers,
        images,
        label_selector(object, &["spec", "selector"]).into(),
    ]
}

fn replica_set(object: &Value, now: i64) -> Vec<Value> {
    let [containers, images] = template_cells(object, &["spec", "template"]);
    vec![
        name(object),
        replicas(object).into(),
        int(object, &["status", "replicas"]).into(),
        int(object, &["status", "readyReplicas"]).into(),
        created(object, now),
        containers,
        images,
        label_selector(object, &["spec", "selector"]).into(),
    ]
}

fn job(job: &Value, now: i64) -> Vec<Value> {
    let [containers, images] = template_cells(job, &["spec", "template"]);
    vec![
        name(job),
        job_status(job).into(),
        completions(job).into(),
        duration(job, now).into(),
        created(job, now),
        containers,
        images,
        label_selector(job, &["spec", "selector"]).into(),
    ]
}

/// A Job's STATUS: its finished condition, else Terminating, Suspended,
/// FailureTarget, SuccessCriteriaMet, or Running.
fn job_status(job: &Value) -> &'static str {
    let condition = |kind: &str| {
        items(job, &["status", "conditions"])
            .iter()
            .any(|c| text(c, &["type"]) == kind && text(c, &["status"]) == "True")
    };
    if condition("Complete") {
        "Complete"
    } else if condition("Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if condition("FailureTarget") {
        "FailureTarget"
    } else if condition("Suspended") {
        "Suspended"
    } else if condition("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

/// `succeeded/completions`, or `succeeded/1 of parallelism` for a work queue.
fn completions(job: &Value) -> String {
    let succeeded = int(job, &["status", "succeeded"]);
    match at(job, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => match int(job, &["spec", "parallelism"]) {
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// From start to completion, or to now while the Job runs; empty before it starts.
fn duration(job: &Value, now: i64) -> String {
    let time = |field: &str| {
        at(job, &["status", field])
            .and_then(Value::as_str)
            .and_then(parse_timestamp)
    };
    match (time("startTime"), time("completionTime")) {
        (Some(start), Some(end)) => human_duration(end - start),
        (Some(start), None) => human_duration(now - start),
        _ => String::new(),
    }
}

fn cron_job(object: &Value, now: i64) -> Vec<Value> {
    let template = ["spec", "jobTemplate", "spec", "template"];
    let [containers, images] = template_cells(object, &template);
    let last_schedule = match at(object, &["status", "lastScheduleTime"]) {
        Some(time) => age(Some(time), now),
        None => "<none>".into(),
    };
    let suspend = match at(object, &["spec", "suspend"]).and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let selector = ["spec", "jobTemplate", "spec", "selector"];
    vec![
        name(object),
        text(object, &["spec", "schedule"]).into(),
        super::object::or_none(text(object, &["spec", "timeZone"])).into(),
        suspend.into(),
        (len(object, &["status", "active"]) as i64).into(),
        last_schedule.into(),
        created(object, now),
        containers,
        images,
        super::object::or_none(label_selector(object, &selector)).into(),
    ]
}

fn pod_disruption_budget(pdb: &Value, now: i64) -> Vec<Value> {
    // An IntOrString: a number of pods or a percentage.
    let bound = |field: &str| match at(pdb, &["spec", field]) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".into(),
    };
    vec![
        name(pdb),
        bound("minAvailable").into(),
        bound("maxUnavailable").into(),
        int(pdb, &["status", "disruptionsAllowed"]).into(),
        created(pdb, now),
    ]
}
