//! Pods, pod specs and pod templates (Kubernetes' `ValidatePodSpec`,
//! `ValidatePodTemplateSpec` and `ValidatePodUpdate`).
//!
//! A pod is almost immutable once created: an update may only change
//! container images, lower `activeDeadlineSeconds` (or set it), add
//! tolerations, and set a negative `terminationGracePeriodSeconds` to 1.
//! Everything else needs a new pod, which is why controllers replace pods
//! rather than edit them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, Pod, PodSpec, PodTemplateSpec, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{json, Value};

use super::meta::{self, NameRule};
use super::quantity::{parse_nanos, QUANTITY_FORMAT_ERROR};
use super::{names, FieldError};

/// The fields a pod update may change, as Kubernetes lists them in its message.
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Validates a Pod on create or update.
pub(crate) fn validate_pod(pod: &Pod, old: Option<&Pod>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&pod.metadata, true, NameRule::Subdomain);
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    errs.extend(validate_pod_spec(spec, "spec"));
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &pod.metadata,
            &old.metadata,
        ));
        let old_spec = old.spec.as_ref().unwrap_or(&default_spec);
        errs.extend(validate_pod_spec_update(spec, old_spec));
    }
    errs
}

/// Validates a pod template inside a workload: its labels, annotations and spec.
pub(crate) fn validate_pod_template(template: &PodTemplateSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(metadata) = &template.metadata {
        errs.extend(meta::validate_labels(
            metadata.labels.as_ref(),
            &format!("{path}.metadata.labels"),
        ));
        errs.extend(meta::validate_annotations(
            metadata.annotations.as_ref(),
            &format!("{path}.metadata.annotations"),
        ));
    }
    let default_spec = PodSpec::default();
    errs.extend(validate_pod_spec(
        template.spec.as_ref().unwrap_or(&default_spec),
        &format!("{path}.spec"),
    ));
    errs
}

/// Validates a pod spec found at `path` (`spec`, or `spec.template.spec` in a workload).
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();

    let mut volumes = BTreeSet::new();
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let field = format!("{path}.volumes[{i}].name");
        errs.extend(dns_label_name(&volume.name, &field));
        if !volume.name.is_empty() && !volumes.insert(volume.name.as_str()) {
            errs.push(FieldError::duplicate(field, &json!(volume.name)));
        }
    }

    if spec.containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    // Container names are unique across init and regular containers.
    let mut container_names = BTreeSet::new();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("{path}.initContainers[{i}]"), c));
    let regular = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{path}.containers[{i}]"), c));
    for (field, container) in init.chain(regular) {
        if !container.name.is_empty() && !container_names.insert(container.name.as_str()) {
            errs.push(FieldError::duplicate(
                format!("{field}.name"),
                &json!(container.name),
            ));
        }
        errs.extend(validate_container(container, &field, &volumes));
    }

    match spec.restart_policy.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(format!("{path}.restartPolicy"), "")),
        "Always" | "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            &json!(other),
            &["Always", "OnFailure", "Never"],
        )),
    }
    match spec.dns_policy.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(format!("{path}.dnsPolicy"), "")),
        "ClusterFirst" | "ClusterFirstWithHostNet" | "Default" | "None" => {}
        other => errs.push(FieldError::not_supported(
            format!("{path}.dnsPolicy"),
            &json!(other),
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        )),
    }
    errs.extend(meta::validate_labels(
        spec.node_selector.as_ref(),
        &format!("{path}.nodeSelector"),
    ));
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
        ("schedulerName", &spec.scheduler_name),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            for msg in names::dns1123_subdomain(value) {
                errs.push(FieldError::invalid(
                    format!("{path}.{field}"),
                    &json!(value),
                    msg,
                ));
            }
        }
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            for msg in names::dns1123_label(value) {
                errs.push(FieldError::invalid(
                    format!("{path}.{field}"),
                    &json!(value),
                    msg,
                ));
            }
        }
    }
    if let Some(deadline) = spec.active_deadline_seconds {
        if !(1..=i64::from(i32::MAX)).contains(&deadline) {
            errs.push(FieldError::invalid(
                format!("{path}.activeDeadlineSeconds"),
                &json!(deadline),
                names::inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    for (i, toleration) in spec.tolerations.iter().flatten().enumerate() {
        errs.extend(validate_toleration(
            toleration,
            &format!("{path}.tolerations[{i}]"),
        ));
    }
    errs
}

fn dns_label_name(name: &str, field: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(field, "")];
    }
    names::dns1123_label(name)
        .into_iter()
        .map(|msg| FieldError::invalid(field, &json!(name), msg))
        .collect()
}

fn validate_container(
    container: &Container,
    path: &str,
    volumes: &BTreeSet<&str>,
) -> Vec<FieldError> {
    let mut errs = dns_label_name(&container.name, &format!("{path}.name"));
    let image = container.image.as_deref().unwrap_or_default();
    if image.is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            format!("{path}.image"),
            &json!(image),
            "must not have leading or trailing whitespace",
        ));
    }
    match container.image_pull_policy.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(format!("{path}.imagePullPolicy"), "")),
        "Always" | "IfNotPresent" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            format!("{path}.imagePullPolicy"),
            &json!(other),
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    match container
        .termination_message_policy
        .as_deref()
        .unwrap_or_default()
    {
        "" => errs.push(FieldError::required(
            format!("{path}.terminationMessagePolicy"),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        "File" | "FallbackToLogsOnError" => {}
        other => errs.push(FieldError::invalid(
            format!("{path}.terminationMessagePolicy"),
            &json!(other),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
    }

    validate_container_ports(container, path, &mut errs);
    validate_env_and_mounts(container, path, volumes, &mut errs);
    if let Some(resources) = &container.resources {
        errs.extend(validate_resources(resources, &format!("{path}.resources")));
    }
    errs
}

/// A container's `ports`: valid, uniquely named, with a protocol.
fn validate_container_ports(container: &Container, path: &str, errs: &mut Vec<FieldError>) {
    let mut port_names = BTreeSet::new();
    for (i, port) in container.ports.iter().flatten().enumerate() {
        let field = format!("{path}.ports[{i}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            for msg in names::port_name(name) {
                errs.push(FieldError::invalid(
                    format!("{field}.name"),
                    &json!(name),
                    msg,
                ));
            }
            if !port_names.insert(name) {
                errs.push(FieldError::duplicate(format!("{field}.name"), &json!(name)));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(format!("{field}.containerPort"), ""));
        } else {
            for msg in names::port_number(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    format!("{field}.containerPort"),
                    &json!(port.container_port),
                    msg,
                ));
            }
        }
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            for msg in names::port_number(i64::from(host_port)) {
                errs.push(FieldError::invalid(
                    format!("{field}.hostPort"),
                    &json!(host_port),
                    msg,
                ));
            }
        }
        errs.extend(validate_protocol(
            port.protocol.as_deref(),
            &format!("{field}.protocol"),
        ));
    }
}

/// A container's `env` names and `volumeMounts`, each naming one of `volumes`.
fn validate_env_and_mounts(
    container: &Container,
    path: &str,
    volumes: &BTreeSet<&str>,
    errs: &mut Vec<FieldError>,
) {
    for (i, env) in container.env.iter().flatten().enumerate() {
        if env.name.is_empty() {
            errs.push(FieldError::required(format!("{path}.env[{i}].name"), ""));
        }
    }
    for (i, mount) in container.volume_mounts.iter().flatten().enumerate() {
        let field = format!("{path}.volumeMounts[{i}]");
        if mount.name.is_empty() {
            errs.push(FieldError::required(format!("{field}.name"), ""));
        } else if !volumes.contains(mount.name.as_str()) {
            errs.push(FieldError::not_found(
                format!("{field}.name"),
                &json!(mount.name),
            ));
        }
        if mount.mount_path.is_empty() {
            errs.push(FieldError::required(format!("{field}.mountPath"), ""));
        }
    }
}

/// A port protocol: required, and one of TCP, UDP, SCTP.
pub(crate) fn validate_protocol(protocol: Option<&str>, field: &str) -> Vec<FieldError> {
    match protocol.unwrap_or_default() {
        "" => vec![FieldError::required(field, "")],
        "TCP" | "UDP" | "SCTP" => Vec::new(),
        other => vec![FieldError::not_supported(
            field,
            &json!(other),
            &["SCTP", "TCP", "UDP"],
        )],
    }
}

fn validate_resources(resources: &ResourceRequirements, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut parse_all = |list: Option<&BTreeMap<String, Quantity>>, kind: &str| {
        let mut parsed = BTreeMap::new();
        for (name, quantity) in list.into_iter().flatten() {
            let field = format!("{path}.{kind}[{name}]");
            match parse_nanos(&quantity.0) {
                None => errs.push(FieldError::invalid(
                    field,
                    &json!(quantity.0),
                    QUANTITY_FORMAT_ERROR,
                )),
                Some(n) if n < 0 => errs.push(FieldError::invalid(
                    field,
                    &json!(quantity.0),
                    "must be greater than or equal to 0",
                )),
                Some(n) => {
                    parsed.insert(name.clone(), (n, quantity.0.clone()));
                }
            }
        }
        parsed
    };
    let limits = parse_all(resources.limits.as_ref(), "limits");
    let requests = parse_all(resources.requests.as_ref(), "requests");
    for (name, (request, text)) in &requests {
        if let Some((limit, limit_text)) = limits.get(name) {
            if request > limit {
                errs.push(FieldError::invalid(
                    format!("{path}.requests[{name}]"),
                    &json!(text),
                    format!("must be less than or equal to {name} limit of {limit_text}"),
                ));
            }
        }
    }
    errs
}

fn validate_toleration(toleration: &Toleration, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let key = toleration.key.as_deref().unwrap_or_default();
    let operator = toleration.operator.as_deref().unwrap_or_default();
    let effect = toleration.effect.as_deref().unwrap_or_default();
    let value = toleration.value.as_deref().unwrap_or_default();
    if !key.is_empty() {
        for msg in names::qualified_name(key) {
            errs.push(FieldError::invalid(format!("{path}.key"), &json!(key), msg));
        }
    } else if operator != "Exists" {
        errs.push(FieldError::invalid(
            format!("{path}.operator"),
            &json!(operator),
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        ));
    }
    if toleration.toleration_seconds.is_some() && effect != "NoExecute" {
        errs.push(FieldError::invalid(
            format!("{path}.effect"),
            &json!(effect),
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
    match operator {
        "" | "Equal" => {
            let value_errs = names::label_value(value);
            if !value_errs.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.operator"),
                    &json!(value),
                    value_errs.join(";"),
                ));
            }
        }
        "Exists" => {
            if !value.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.operator"),
                    &json!(toleration),
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{path}.operator"),
            &json!(other),
            &["Equal", "Exists"],
        )),
    }
    if !effect.is_empty() {
        errs.extend(validate_taint_effect(effect, &format!("{path}.effect")));
    }
    errs
}

/// A taint or toleration effect: NoSchedule, PreferNoSchedule or NoExecute.
pub(crate) fn validate_taint_effect(effect: &str, field: &str) -> Vec<FieldError> {
    match effect {
        "" => vec![FieldError::required(field, "")],
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Vec::new(),
        other => vec![FieldError::not_supported(
            field,
            &json!(other),
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        )],
    }
}

/// What a pod update may change in the spec; anything else is Forbidden.
fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(new_deadline), _) if !(0..=i64::from(i32::MAX)).contains(&new_deadline) => {
            return vec![FieldError::invalid(
                "spec.activeDeadlineSeconds",
                &json!(new_deadline),
                names::inclusive_range_error(0, i64::from(i32::MAX)),
            )];
        }
        (Some(new_deadline), Some(old_deadline)) if old_deadline < new_deadline => {
            return vec![FieldError::invalid(
                "spec.activeDeadlineSeconds",
                &json!(new_deadline),
                "must be less than or equal to previous value",
            )];
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }

    // Take the old spec, apply the changes that are allowed, and see whether
    // that gives the new spec; if not, something else changed.
    let mut allowed = old.clone();
    for (old_container, new_container) in allowed.containers.iter_mut().zip(&new.containers) {
        old_container.image = new_container.image.clone();
    }
    if let (Some(old_init), Some(new_init)) = (
        allowed.init_containers.as_mut(),
        new.init_containers.as_ref(),
    ) {
        for (old_container, new_container) in old_init.iter_mut().zip(new_init) {
            old_container.image = new_container.image.clone();
        }
    }
    allowed.active_deadline_seconds = new.active_deadline_seconds;
    if tolerations_only_added(old.tolerations.as_deref(), new.tolerations.as_deref()) {
        allowed.tolerations = new.tolerations.clone();
    }
    if old.termination_grace_period_seconds.is_some_and(|s| s < 0)
        && new.termination_grace_period_seconds == Some(1)
    {
        allowed.termination_grace_period_seconds = Some(1);
    }
    if &allowed != new {
        let changed = changed_fields(&allowed, new);
        errs.push(FieldError::forbidden(
            "spec",
            format!("pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n  changed: {}", changed.join(", ")),
        ));
    }
    errs
}

/// Whether every old toleration is still there (a NoExecute one may shorten its tolerationSeconds).
fn tolerations_only_added(old: Option<&[Toleration]>, new: Option<&[Toleration]>) -> bool {
    let new = new.unwrap_or_default();
    old.unwrap_or_default().iter().all(|o| {
        new.iter().any(|n| {
            let same_but_seconds = Toleration {
                toleration_seconds: o.toleration_seconds,
                ..n.clone()
            } == *o;
            let seconds_ok = match (o.toleration_seconds, n.toleration_seconds) {
                (None, None) => true,
                (Some(old_s), Some(new_s)) => new_s <= old_s,
                _ => false,
            };
            same_but_seconds && seconds_ok
        })
    })
}

/// The top-level spec fields that differ, for the Forbidden message.
fn changed_fields(a: &PodSpec, b: &PodSpec) -> Vec<String> {
    let (Value::Object(a), Value::Object(b)) = (json!(a), json!(b)) else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("spec.{k}"))
        .collect()
}
