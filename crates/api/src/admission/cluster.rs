//! The remaining kinds: Namespace, Node, ConfigMap, Secret, ServiceAccount,
//! Event, Lease and PriorityClass.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Secret, ServiceAccount};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::ByteString;
use serde_json::{json, Value};

use super::meta::{self, immutable, NameRule};
use super::{names, pod, FieldError};

/// The largest ConfigMap or Secret payload.
const MAX_DATA_SIZE: usize = 1024 * 1024;
/// The highest priority a user-defined PriorityClass may have; above it are the system classes.
const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// The built-in priority classes and their fixed values.
const SYSTEM_PRIORITY_CLASSES: [(&str, i32); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];
const IMMUTABLE_DATA_MESSAGE: &str = "field is immutable when `immutable` is set";

/// Validates a Namespace on create or update.
pub(crate) fn validate_namespace(
    namespace: &Namespace,
    old: Option<&Namespace>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&namespace.metadata, false, NameRule::Label);
    for finalizer in namespace
        .spec
        .iter()
        .flat_map(|s| s.finalizers.iter().flatten())
    {
        for msg in names::qualified_name(finalizer) {
            errs.push(FieldError::invalid(
                "spec.finalizers",
                &json!(finalizer),
                msg,
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &namespace.metadata,
            &old.metadata,
        ));
    }
    errs
}

/// Validates a Node on create or update.
pub(crate) fn validate_node(node: &Node, old: Option<&Node>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&node.metadata, false, NameRule::Subdomain);
    let spec = node.spec.clone().unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, taint) in spec.taints.iter().flatten().enumerate() {
        let path = format!("spec.taints[{i}]");
        for msg in names::qualified_name(&taint.key) {
            errs.push(FieldError::invalid(
                format!("{path}.key"),
                &json!(taint.key),
                msg,
            ));
        }
        let value = taint.value.as_deref().unwrap_or_default();
        let value_errs = names::label_value(value);
        if !value_errs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.value"),
                &json!(value),
                value_errs.join(";"),
            ));
        }
        errs.extend(pod::validate_taint_effect(
            &taint.effect,
            &format!("{path}.effect"),
        ));
        // A node has at most one taint per key and effect.
        if !seen.insert((taint.key.clone(), taint.effect.clone())) {
            errs.push(FieldError::duplicate(path, &json!(taint)));
        }
    }
    for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
        if !is_cidr(cidr) {
            errs.push(FieldError::invalid(
                format!("spec.podCIDRs[{i}]"),
                &json!(cidr),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &node.metadata,
            &old.metadata,
        ));
        let old_spec = old.spec.clone().unwrap_or_default();
        // The pod CIDRs and provider ID are assigned once and then kept.
        let old_cidrs = old_spec.pod_cidrs.unwrap_or_default();
        if !old_cidrs.is_empty() && spec.pod_cidrs.clone().unwrap_or_default() != old_cidrs {
            errs.push(FieldError::forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        let old_provider = old_spec.provider_id.unwrap_or_default();
        if !old_provider.is_empty() && spec.provider_id.clone().unwrap_or_default() != old_provider
        {
            errs.push(FieldError::forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
    }
    errs
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u8>().is_ok_and(|p| p <= max) && !prefix.starts_with('+')
}

/// Validates a ConfigMap on create or update.
pub(crate) fn validate_config_map(
    config_map: &ConfigMap,
    old: Option<&ConfigMap>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&config_map.metadata, true, NameRule::Subdomain);
    let data = config_map.data.clone().unwrap_or_default();
    let binary = config_map.binary_data.clone().unwrap_or_default();
    let mut size = 0;
    for (key, value) in &data {
        errs.extend(config_key(key, "data"));
        if binary.contains_key(key) {
            errs.push(FieldError::invalid(
                format!("data[{key}]"),
                &json!(key),
                "duplicate of key present in binaryData",
            ));
        }
        size += value.len();
    }
    for (key, value) in &binary {
        errs.extend(config_key(key, "binaryData"));
        size += value.0.len();
    }
    if size > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &config_map.metadata,
            &old.metadata,
        ));
        if old.immutable == Some(true) {
            if config_map.immutable != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_DATA_MESSAGE));
            }
            if config_map.data != old.data {
                errs.push(FieldError::forbidden("data", IMMUTABLE_DATA_MESSAGE));
            }
            if config_map.binary_data != old.binary_data {
                errs.push(FieldError::forbidden("binaryData", IMMUTABLE_DATA_MESSAGE));
            }
        }
    }
    errs
}

fn config_key(key: &str, field: &str) -> Vec<FieldError> {
    names::config_map_key(key)
        .into_iter()
        .map(|msg| FieldError::invalid(format!("{field}[{key}]"), &json!(key), msg))
        .collect()
}

/// Validates a Secret on create or update.
pub(crate) fn validate_secret(secret: &Secret, old: Option<&Secret>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&secret.metadata, true, NameRule::Subdomain);
    let data: BTreeMap<String, ByteString> = secret.data.clone().unwrap_or_default();
    let mut size = 0;
    for (key, value) in &data {
        errs.extend(config_key(key, "data"));
        size += value.0.len();
    }
    if size > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
    }
    let secret_type = secret.type_.as_deref().unwrap_or("Opaque");
    let required_keys: &[&str] = match secret_type {
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        _ => &[],
    };
    for key in required_keys {
        match data.get(*key) {
            None => errs.push(FieldError::required(format!("data[{key}]"), "")),
            Some(bytes)
                if key.starts_with(".docker")
                    && serde_json::from_slice::<Value>(&bytes.0).is_err() =>
            {
                errs.push(FieldError::invalid(
                    format!("data[{key}]"),
                    &json!("<secret contents redacted>"),
                    "must be valid JSON",
                ));
            }
            Some(_) => {}
        }
    }
    if secret_type == "kubernetes.io/basic-auth"
        && !data.contains_key("username")
        && !data.contains_key("password")
    {
        errs.push(FieldError::required("data[username]", ""));
        errs.push(FieldError::required("data[password]", ""));
    }
    if secret_type == "kubernetes.io/service-account-token" {
        let annotation = "kubernetes.io/service-account.name";
        let has = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotation))
            .is_some_and(|v| !v.is_empty());
        if !has {
            errs.push(FieldError::required(
                format!("metadata.annotations[{annotation}]"),
                "",
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &secret.metadata,
            &old.metadata,
        ));
        let old_type = old.type_.as_deref().unwrap_or("Opaque");
        errs.extend(immutable("type", &json!(secret_type), &json!(old_type)));
        if old.immutable == Some(true) {
            if secret.immutable != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_DATA_MESSAGE));
            }
            if secret.data != old.data {
                errs.push(FieldError::forbidden("data", IMMUTABLE_DATA_MESSAGE));
            }
        }
    }
    errs
}

/// Validates a ServiceAccount on create or update.
pub(crate) fn validate_service_account(
    account: &ServiceAccount,
    old: Option<&ServiceAccount>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&account.metadata, true, NameRule::Subdomain);
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &account.metadata,
            &old.metadata,
        ));
    }
    errs
}

/// Validates a (core/v1) Event on create or update.
pub(crate) fn validate_event(event: &Event, old: Option<&Event>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&event.metadata, true, NameRule::Subdomain);
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let involved = event
        .involved_object
        .namespace
        .as_deref()
        .unwrap_or_default();
    // An event lives in its object's namespace; events about cluster-scoped
    // objects may sit in "default" for old clients.
    let agrees = if involved.is_empty() {
        matches!(namespace, "" | "default")
    } else {
        involved == namespace
    };
    if !agrees {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            &json!(involved),
            "does not match event.namespace",
        ));
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &event.metadata,
            &old.metadata,
        ));
    }
    errs
}

/// Validates a Lease on create or update.
pub(crate) fn validate_lease(lease: &Lease, old: Option<&Lease>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&lease.metadata, true, NameRule::Subdomain);
    let spec = lease.spec.clone().unwrap_or_default();
    if let Some(duration) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            &json!(duration),
            "must be greater than 0",
        ));
    }
    if let Some(transitions) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            &json!(transitions),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &lease.metadata,
            &old.metadata,
        ));
    }
    errs
}

/// Validates a PriorityClass on create or update.
pub(crate) fn validate_priority_class(
    class: &PriorityClass,
    old: Option<&PriorityClass>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&class.metadata, false, NameRule::Subdomain);
    let name = class.metadata.name.as_deref().unwrap_or_default();
    if name.starts_with("system-") {
        let problem = match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((_, value)) if *value != class.value => {
                Some(format!("value of {name} PriorityClass must be {value}"))
            }
            Some(_) if class.global_default == Some(true) => Some(format!(
                "globalDefault of {name} PriorityClass must be false"
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            errs.push(FieldError::forbidden(
                "metadata.name",
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {problem}"),
            ));
        }
    } else if class.value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    match class.preemption_policy.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required("preemptionPolicy", "")),
        "PreemptLowerPriority" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            "preemptionPolicy",
            &json!(other),
            &["Never", "PreemptLowerPriority"],
        )),
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &class.metadata,
            &old.metadata,
        ));
        if class.value != old.value {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        errs.extend(immutable(
            "preemptionPolicy",
            &json!(class.preemption_policy),
            &json!(old.preemption_policy),
        ));
    }
    errs
}
