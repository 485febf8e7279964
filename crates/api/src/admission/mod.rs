//! Defaulting and validation of objects, as Kubernetes' registry strategies do
//! them: defaults first, then validation, whose messages name the field
//! (`spec.containers[0].image: Required value`).
//!
//! [`default`] fills in what a client may leave out, as Kubernetes' `SetDefaults_*`
//! functions and the `DefaultTolerationSeconds` admission plugin do (a Pod gets
//! `restartPolicy: Always`, a Deployment a 25% rolling update, …). [`validate`]
//! checks an object being created, or replacing an old one, and returns every
//! problem as a [`FieldError`] worded as Kubernetes words it, so a `Status`
//! built from them reads like the real API server's:
//! `Pod "web" is invalid: spec.containers[0].image: Required value`.
//! See <https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation>.
//!
//! # Layout
//! - the name and key formats it checks (RFC 1123 labels and subdomains,
//!   qualified names, label values, config keys, port names) are in the
//!   crate's `names` module, which label selectors use too.
//! - `defaults`: defaulting for every kind.
//! - `meta`: `metadata` rules shared by all kinds (name, namespace, labels,
//!   annotations, owner references, what an update may not change).
//! - `pod`: pod specs and pod templates, and what a pod update may change.
//! - `workloads`: Job, CronJob, Deployment, ReplicaSet, PodDisruptionBudget;
//!   [`cron`] parses a CronJob's schedule (and is what the CronJob controller
//!   reads it with).
//! - [`quantity`]: resource quantities (`500m`, `1Gi`) for requests ≤ limits;
//!   public, so the scheduler reads quantities exactly as admission does.
//! - `network`: Service, Endpoints, EndpointSlice.
//! - `cluster`: Namespace, Node, ConfigMap, Secret, ServiceAccount, Event,
//!   Lease, PriorityClass.
//!
//! # Where to start
//! [`validate`] dispatches on the kind; each kind's function reads top to
//! bottom in the order Kubernetes checks the fields.
//!
//! Objects are decoded into k8s-openapi's typed structs for validation, so a
//! field of the wrong JSON type is reported before any rule runs (as
//! Kubernetes rejects a body it cannot decode).
//!
//! # Caveats
//! - Validation covers the fields skiff's controllers, scheduler and kubelet
//!   use; rarely used corners (volumes beyond names, probes, security
//!   contexts, affinity terms, topology spread) are decoded but not checked.
//! - Allocation (Service cluster IPs and node ports, generated names, uids)
//!   belongs to the API server. A Job's selector is generated from its uid
//!   here, so the uid must be set before [`default`] runs; an update that
//!   leaves out a Service's cluster IP must be given the old one first.
//! - A pod's binding (`spec.nodeName`) and status writes are not spec updates:
//!   the API server applies them without [`validate`]'s update rules, or with
//!   [`validate_status_update`].

use crate::names;

mod cluster;
pub mod cron;
mod defaults;
mod meta;
mod network;
mod pod;
pub mod quantity;
mod workloads;

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// What is wrong with a field, as Kubernetes' `field.ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// "Required value".
    Required,
    /// "Invalid value".
    Invalid,
    /// "Unsupported value".
    NotSupported,
    /// "Forbidden".
    Forbidden,
    /// "Duplicate value".
    Duplicate,
    /// "Too long".
    TooLong,
    /// "Not found".
    NotFound,
}

impl FieldErrorKind {
    /// The text Kubernetes prints for this kind of error.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::NotFound => "Not found",
        }
    }

    /// The `causes[].reason` Kubernetes puts in a Status (`FieldValueRequired`, …).
    pub(crate) fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::NotFound => "FieldValueNotFound",
        }
    }
}

/// One invalid field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field's path, such as `spec.containers[0].image`.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// The detail after the kind, such as `"Web": a lowercase RFC 1123 label must …`;
    /// empty when the kind says it all.
    pub detail: String,
}

impl FieldError {
    /// `field: Required value[: detail]`.
    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required,
            detail: detail.into(),
        }
    }

    /// `field: Invalid value: <value>: reason`, the value printed as Kubernetes
    /// prints it (strings quoted, numbers and booleans bare).
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: &Value,
        reason: impl Into<String>,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid,
            detail: format!("{}: {}", show(value), reason.into()),
        }
    }

    /// `field: Unsupported value: <value>: supported values: "A", "B"`.
    pub(crate) fn not_supported(
        field: impl Into<String>,
        value: &Value,
        supported: &[&str],
    ) -> FieldError {
        let supported: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported,
            detail: format!(
                "{}: supported values: {}",
                show(value),
                supported.join(", ")
            ),
        }
    }

    /// `field: Forbidden: detail`.
    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    /// `field: Duplicate value: <value>`.
    pub(crate) fn duplicate(field: impl Into<String>, value: &Value) -> FieldError {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Duplicate,
            detail: show(value),
        }
    }

    /// `field: Too long: may not be more than N bytes`.
    pub(crate) fn too_long(field: impl Into<String>, max_bytes: usize) -> FieldError {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::TooLong,
            detail: format!("may not be more than {max_bytes} bytes"),
        }
    }

    /// `field: Not found: <value>`.
    pub(crate) fn not_found(field: impl Into<String>, value: &Value) -> FieldError {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotFound,
            detail: show(value),
        }
    }
}

/// A string as Go's `%q` prints it.
pub(crate) fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A value as Kubernetes prints a bad value: strings quoted, scalars bare,
/// anything larger as JSON.
pub(crate) fn show(value: &Value) -> String {
    value.to_string()
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(self.kind.as_str())?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Whether objects of `kind` live in a namespace (false for Namespace, Node
/// and PriorityClass among the kinds defaulted and validated here).
pub(crate) fn is_namespaced(kind: &str) -> bool {
    !matches!(kind, "Namespace" | "Node" | "PriorityClass")
}

/// Fills in the defaults of an object of `kind` (such as "Pod"), as the API
/// server does before validation. A Job's selector is generated here from
/// `metadata.uid`, so the API server should set the uid first.
pub fn default(kind: &str, object: &mut Value) {
    defaults::default(kind, object)
}

/// Validates an object of `kind` being created (`old` = None) or replacing
/// `old`; empty when it is valid.
pub fn validate(kind: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    use k8s_openapi::api::{apps, batch, coordination, core, discovery, policy, scheduling};
    match kind {
        "Pod" => typed::<core::v1::Pod>(object, old, pod::validate_pod),
        "Service" => typed::<core::v1::Service>(object, old, network::validate_service),
        "Endpoints" => typed::<core::v1::Endpoints>(object, old, network::validate_endpoints),
        "EndpointSlice" => {
            typed::<discovery::v1::EndpointSlice>(object, old, network::validate_endpoint_slice)
        }
        "Job" => typed::<batch::v1::Job>(object, old, workloads::validate_job),
        "CronJob" => typed::<batch::v1::CronJob>(object, old, workloads::validate_cron_job),
        "Deployment" => workloads::selector_presence(
            object,
            typed::<apps::v1::Deployment>(object, old, workloads::validate_deployment),
        ),
        "ReplicaSet" => workloads::selector_presence(
            object,
            typed::<apps::v1::ReplicaSet>(object, old, workloads::validate_replica_set),
        ),
        "PodDisruptionBudget" => typed::<policy::v1::PodDisruptionBudget>(
            object,
            old,
            workloads::validate_pod_disruption_budget,
        ),
        "Namespace" => typed::<core::v1::Namespace>(object, old, cluster::validate_namespace),
        "Node" => typed::<core::v1::Node>(object, old, cluster::validate_node),
        "ConfigMap" => typed::<core::v1::ConfigMap>(object, old, cluster::validate_config_map),
        "Secret" => typed::<core::v1::Secret>(object, old, cluster::validate_secret),
        "ServiceAccount" => {
            typed::<core::v1::ServiceAccount>(object, old, cluster::validate_service_account)
        }
        "Event" => typed::<core::v1::Event>(object, old, cluster::validate_event),
        "Lease" => typed::<coordination::v1::Lease>(object, old, cluster::validate_lease),
        "PriorityClass" => {
            typed::<scheduling::v1::PriorityClass>(object, old, cluster::validate_priority_class)
        }
        _ => validate_metadata_only(kind, object, old),
    }
}

/// Validates a write to an object's `status` (or another subresource that
/// leaves the spec alone): only the metadata rules of an update apply.
pub fn validate_status_update(kind: &str, object: &Value, old: &Value) -> Vec<FieldError> {
    validate_metadata_only(kind, object, Some(old))
}

fn validate_metadata_only(kind: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let decode = |v: &Value| -> Result<ObjectMeta, FieldError> {
        let metadata = v.get("metadata").cloned().unwrap_or(Value::Null);
        serde_json::from_value(metadata).map_err(|e| decode_error(kind, e))
    };
    let new_meta = match decode(object) {
        Ok(m) => m,
        Err(e) => return vec![e],
    };
    let mut errs =
        meta::validate_object_meta(&new_meta, is_namespaced(kind), meta::NameRule::Subdomain);
    if let Some(old) = old {
        match decode(old) {
            Ok(old_meta) => errs.extend(meta::validate_object_meta_update(&new_meta, &old_meta)),
            Err(e) => errs.push(e),
        }
    }
    errs
}

fn decode_error(kind: &str, error: serde_json::Error) -> FieldError {
    FieldError {
        field: String::new(),
        kind: FieldErrorKind::Invalid,
        detail: format!("the {kind} could not be decoded: {error}"),
    }
}

/// Decodes the object (and the old one) into `T` and runs `check`.
fn typed<T: DeserializeOwned>(
    object: &Value,
    old: Option<&Value>,
    check: fn(&T, Option<&T>) -> Vec<FieldError>,
) -> Vec<FieldError> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let new: T = match serde_json::from_value(object.clone()) {
        Ok(v) => v,
        Err(e) => return vec![decode_error(kind, e)],
    };
    let old: Option<T> = match old.map(|o| serde_json::from_value(o.clone())) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => return vec![decode_error(kind, e)],
    };
    check(&new, old.as_ref())
}

#[cfg(test)]
mod tests;
