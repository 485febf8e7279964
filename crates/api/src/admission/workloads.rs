//! Workloads: Job, CronJob, Deployment and ReplicaSet (Kubernetes'
//! `ValidateJob`, `ValidateCronJob`, `ValidateDeployment`, `ValidateReplicaSet`).
//!
//! Each owns pods through a label selector that must match its pod
//! template's labels, or the controller would create pods it cannot see.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use super::meta::{self, immutable, NameRule};
use super::{cron, names, pod, FieldError, FieldErrorKind};
use crate::labels;

/// The longest CronJob name: its Jobs get an 11-character suffix and must fit a DNS-1035 label.
const CRON_JOB_NAME_MAX_LENGTH: usize = 52;

/// Validates a Job on create or update.
pub(crate) fn validate_job(job: &Job, old: Option<&Job>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&job.metadata, true, NameRule::Subdomain);
    let spec = job.spec.clone().unwrap_or_default();
    errs.extend(validate_generated_selector(job, &spec));
    errs.extend(validate_job_spec(&spec, "spec", true));
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &job.metadata,
            &old.metadata,
        ));
        let old_spec = old.spec.clone().unwrap_or_default();
        errs.extend(immutable(
            "spec.selector",
            &json!(spec.selector),
            &json!(old_spec.selector),
        ));
        errs.extend(immutable(
            "spec.template",
            &json!(spec.template),
            &json!(old_spec.template),
        ));
        errs.extend(immutable(
            "spec.completionMode",
            &json!(spec.completion_mode),
            &json!(old_spec.completion_mode),
        ));
    }
    errs
}

/// Unless `manualSelector` is true, the selector must be the one generated from the Job's uid.
fn validate_generated_selector(job: &Job, spec: &JobSpec) -> Vec<FieldError> {
    if spec.manual_selector == Some(true) {
        return Vec::new();
    }
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    if uid.is_empty() {
        return vec![FieldError::required("metadata.uid", "")];
    }
    let label = "batch.kubernetes.io/controller-uid";
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    let mut errs = Vec::new();
    if template_labels
        .and_then(|l| l.get(label))
        .map(String::as_str)
        != Some(uid)
    {
        errs.push(invalid_shown(
            "spec.template.metadata.labels",
            go_map(template_labels),
            "`selector` not auto-generated",
        ));
    }
    let expected = LabelSelector {
        match_labels: Some(BTreeMap::from([(label.to_string(), uid.to_string())])),
        match_expressions: None,
    };
    if spec.selector.as_ref() != Some(&expected) {
        errs.push(FieldError::invalid(
            "spec.selector",
            &json!(spec.selector),
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// A Job's spec at `path`; a CronJob's job template needs no selector yet.
fn validate_job_spec(spec: &JobSpec, path: &str, require_selector: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, value) in [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.map(i64::from),
        ),
    ] {
        errs.extend(non_negative(&format!("{path}.{field}"), value));
    }
    match (&spec.selector, require_selector) {
        (None, true) => errs.push(FieldError::required(format!("{path}.selector"), "")),
        (None, false) => {}
        (Some(selector), _) => {
            errs.extend(validate_label_selector(
                selector,
                &format!("{path}.selector"),
            ));
            errs.extend(selector_matches_template(
                selector,
                &spec.template,
                &format!("{path}.template"),
            ));
        }
    }
    match spec.completion_mode.as_deref().unwrap_or("NonIndexed") {
        "NonIndexed" => {}
        "Indexed" if spec.completions.is_none() => errs.push(FieldError::required(
            format!("{path}.completions"),
            "when completion mode is Indexed",
        )),
        "Indexed" => {}
        other => errs.push(FieldError::not_supported(
            format!("{path}.completionMode"),
            &json!(other),
            &["NonIndexed", "Indexed"],
        )),
    }
    let template_path = format!("{path}.template");
    errs.extend(pod::validate_pod_template(&spec.template, &template_path));
    let restart_policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if !matches!(restart_policy, Some("OnFailure" | "Never")) {
        // Kubernetes reports any other policy as missing, naming the two it accepts.
        errs.retain(|e| e.field != format!("{template_path}.spec.restartPolicy"));
        errs.push(FieldError::required(
            format!("{template_path}.spec.restartPolicy"),
            "valid values: \"OnFailure\", \"Never\"",
        ));
    }
    errs
}

/// Validates a CronJob on create or update.
pub(crate) fn validate_cron_job(cron_job: &CronJob, old: Option<&CronJob>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&cron_job.metadata, true, NameRule::Subdomain);
    let name = cron_job.metadata.name.as_deref().unwrap_or_default();
    if name.len() > CRON_JOB_NAME_MAX_LENGTH {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            names::max_len_error(CRON_JOB_NAME_MAX_LENGTH),
        ));
    }
    let spec = cron_job.spec.clone().unwrap_or_default();
    if spec.schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else if spec.schedule.contains("TZ") {
        errs.push(FieldError::invalid(
            "spec.schedule",
            &json!(spec.schedule),
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    } else if let Err(reason) = cron::parse(&spec.schedule) {
        errs.push(FieldError::invalid(
            "spec.schedule",
            &json!(spec.schedule),
            reason,
        ));
    }
    match spec.concurrency_policy.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        "Allow" | "Forbid" | "Replace" => {}
        other => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            &json!(other),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    for (field, value) in [
        ("startingDeadlineSeconds", spec.starting_deadline_seconds),
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit.map(i64::from),
        ),
        (
            "failedJobsHistoryLimit",
            spec.failed_jobs_history_limit.map(i64::from),
        ),
    ] {
        errs.extend(non_negative(&format!("spec.{field}"), value));
    }
    let job_spec = spec.job_template.spec.clone().unwrap_or_default();
    if job_spec.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            &json!(true),
            &["nil", "false"],
        ));
    }
    errs.extend(validate_job_spec(&job_spec, "spec.jobTemplate.spec", false));
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &cron_job.metadata,
            &old.metadata,
        ));
    }
    errs
}

/// Validates a Deployment on create or update.
pub(crate) fn validate_deployment(
    deployment: &Deployment,
    old: Option<&Deployment>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&deployment.metadata, true, NameRule::Subdomain);
    let spec = deployment.spec.clone().unwrap_or_default();
    errs.extend(non_negative("spec.replicas", spec.replicas.map(i64::from)));
    errs.extend(validate_replica_set_like(&spec.selector, &spec.template));
    if let Some(strategy) = &spec.strategy {
        errs.extend(validate_strategy(strategy));
    }
    errs.extend(non_negative(
        "spec.revisionHistoryLimit",
        spec.revision_history_limit.map(i64::from),
    ));
    let min_ready = i64::from(spec.min_ready_seconds.unwrap_or(0));
    errs.extend(non_negative("spec.minReadySeconds", Some(min_ready)));
    if let Some(deadline) = spec.progress_deadline_seconds.map(i64::from) {
        errs.extend(non_negative("spec.progressDeadlineSeconds", Some(deadline)));
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                &json!(deadline),
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old {
        let old_selector = old.spec.as_ref().map(|s| &s.selector);
        errs.extend(validate_selector_update(
            (&deployment.metadata, &old.metadata),
            &spec.selector,
            old_selector,
        ));
    }
    errs
}

/// Validates a ReplicaSet on create or update.
pub(crate) fn validate_replica_set(
    replica_set: &ReplicaSet,
    old: Option<&ReplicaSet>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&replica_set.metadata, true, NameRule::Subdomain);
    let spec = replica_set.spec.clone().unwrap_or_default();
    errs.extend(non_negative("spec.replicas", spec.replicas.map(i64::from)));
    errs.extend(non_negative(
        "spec.minReadySeconds",
        spec.min_ready_seconds.map(i64::from),
    ));
    errs.extend(validate_replica_set_like(
        &spec.selector,
        &spec.template.clone().unwrap_or_default(),
    ));
    if let Some(old) = old {
        let old_selector = old.spec.as_ref().map(|s| &s.selector);
        errs.extend(validate_selector_update(
            (&replica_set.metadata, &old.metadata),
            &spec.selector,
            old_selector,
        ));
    }
    errs
}

/// What an update of a Deployment or ReplicaSet may not change: its
/// metadata's fixed fields and its selector.
fn validate_selector_update(
    (meta, old_meta): (&ObjectMeta, &ObjectMeta),
    selector: &LabelSelector,
    old_selector: Option<&LabelSelector>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(meta, old_meta);
    errs.extend(immutable(
        "spec.selector",
        &json!(selector),
        &json!(old_selector),
    ));
    errs
}

/// k8s-openapi decodes a missing `spec.selector` of a Deployment or ReplicaSet
/// as an empty one; Kubernetes reports it as missing, so look at the JSON.
pub(crate) fn selector_presence(object: &Value, mut errs: Vec<FieldError>) -> Vec<FieldError> {
    let missing = object.pointer("/spec/selector").is_none_or(Value::is_null);
    if missing {
        errs.retain(|e| e.field != "spec.selector");
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs
}

/// The selector and template rules Deployments and ReplicaSets share.
fn validate_replica_set_like(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
) -> Vec<FieldError> {
    let mut errs = validate_label_selector(selector, "spec.selector");
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty());
    if empty {
        errs.push(FieldError::invalid(
            "spec.selector",
            &json!(selector),
            "empty selector is invalid for deployment",
        ));
    } else {
        errs.extend(selector_matches_template(
            selector,
            template,
            "spec.template",
        ));
    }
    errs.extend(pod::validate_pod_template(template, "spec.template"));
    let pod_spec = template.spec.clone().unwrap_or_default();
    let restart_policy = pod_spec.restart_policy.as_deref().unwrap_or_default();
    if restart_policy != "Always" {
        errs.retain(|e| e.field != "spec.template.spec.restartPolicy");
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            &json!(restart_policy),
            &["Always"],
        ));
    }
    if pod_spec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

fn validate_strategy(strategy: &DeploymentStrategy) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match strategy.type_.as_deref().unwrap_or_default() {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let Some(rolling) = &strategy.rolling_update else {
                errs.push(FieldError::required(
                    "spec.strategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                ));
                return errs;
            };
            let unavailable = rolling.max_unavailable.as_ref();
            let surge = rolling.max_surge.as_ref();
            let path = "spec.strategy.rollingUpdate";
            errs.extend(validate_int_or_percent(
                unavailable,
                &format!("{path}.maxUnavailable"),
            ));
            errs.extend(validate_int_or_percent(surge, &format!("{path}.maxSurge")));
            if let Some(IntOrString::String(s)) = unavailable {
                if percent(s).is_some_and(|p| p > 100) {
                    errs.push(FieldError::invalid(
                        format!("{path}.maxUnavailable"),
                        &json!(s),
                        "must not be greater than 100%",
                    ));
                }
            }
            if is_zero(unavailable) && is_zero(surge) {
                errs.push(FieldError::invalid(
                    format!("{path}.maxUnavailable"),
                    &int_or_string_value(unavailable),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.strategy.type",
            &json!(other),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

fn int_or_string_value(value: Option<&IntOrString>) -> Value {
    match value {
        Some(IntOrString::Int(i)) => json!(i),
        Some(IntOrString::String(s)) => json!(s),
        None => json!(0),
    }
}

fn percent(text: &str) -> Option<i64> {
    text.strip_suffix('%')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

fn is_zero(value: Option<&IntOrString>) -> bool {
    match value {
        None => true,
        Some(IntOrString::Int(i)) => *i == 0,
        Some(IntOrString::String(s)) => percent(s) == Some(0),
    }
}

fn validate_int_or_percent(value: Option<&IntOrString>, field: &str) -> Vec<FieldError> {
    match value {
        Some(IntOrString::Int(i)) if *i < 0 => {
            vec![FieldError::invalid(field, &json!(i), "must be greater than or equal to 0")]
        }
        Some(IntOrString::String(s)) if percent(s).is_none() => vec![FieldError::invalid(
            field,
            &json!(s),
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        )],
        _ => Vec::new(),
    }
}

/// metav1's `ValidateLabelSelector`: operators, their values, keys and matchLabels.
pub(crate) fn validate_label_selector(selector: &LabelSelector, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let field = format!("{path}.matchExpressions[{i}]");
        let has_values = requirement.values.as_ref().is_some_and(|v| !v.is_empty());
        match requirement.operator.as_str() {
            "In" | "NotIn" if !has_values => errs.push(FieldError::required(
                format!("{field}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if has_values => errs.push(FieldError::forbidden(
                format!("{field}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                format!("{field}.operator"),
                &json!(other),
                "not a valid selector operator",
            )),
        }
        for msg in names::qualified_name(&requirement.key) {
            errs.push(FieldError::invalid(
                format!("{field}.key"),
                &json!(requirement.key),
                msg,
            ));
        }
        for (j, value) in requirement.values.iter().flatten().enumerate() {
            for msg in names::label_value(value) {
                errs.push(FieldError::invalid(
                    format!("{field}.values[{j}]"),
                    &json!(value),
                    msg,
                ));
            }
        }
    }
    errs.extend(meta::validate_labels(
        selector.match_labels.as_ref(),
        &format!("{path}.matchLabels"),
    ));
    errs
}

/// The template's labels must be selected by the selector.
fn selector_matches_template(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    path: &str,
) -> Vec<FieldError> {
    let Ok(parsed) = labels::LabelSelector::from_json(&json!(selector)) else {
        // The selector's own errors are reported by validate_label_selector.
        return Vec::new();
    };
    let template_labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    if parsed.is_empty() || parsed.matches(template_labels.unwrap_or(&BTreeMap::new())) {
        return Vec::new();
    }
    vec![invalid_shown(
        format!("{path}.metadata.labels"),
        go_map(template_labels),
        "`selector` does not match template `labels`",
    )]
}

/// `field: Invalid value: <shown>: reason` with the value already printed.
fn invalid_shown(field: impl Into<String>, shown: String, reason: &str) -> FieldError {
    FieldError {
        field: field.into(),
        kind: FieldErrorKind::Invalid,
        detail: format!("{shown}: {reason}"),
    }
}

/// A label map as Go prints a `map[string]string` value.
fn go_map(labels: Option<&BTreeMap<String, String>>) -> String {
    let Some(labels) = labels else {
        return "map[string]string(nil)".to_string();
    };
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}:{}", json!(k), json!(v)))
        .collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

fn non_negative(field: &str, value: Option<i64>) -> Option<FieldError> {
    value
        .filter(|v| *v < 0)
        .map(|v| FieldError::invalid(field, &json!(v), "must be greater than or equal to 0"))
}
