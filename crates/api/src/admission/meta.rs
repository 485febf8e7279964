//! The `metadata` rules every kind shares (apimachinery's `ValidateObjectMeta`
//! and `ValidateObjectMetaUpdate`), plus label and annotation maps, which pod
//! templates and selectors reuse.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{json, Value};

use super::{names, FieldError};

/// The largest total size of an object's annotations (keys plus values).
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Which name format a kind's objects must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// An RFC 1123 subdomain (most kinds).
    Subdomain,
    /// An RFC 1123 label (Namespace).
    Label,
    /// An RFC 1035 label (Service, whose name becomes a DNS label that must not start with a digit).
    Dns1035,
}

impl NameRule {
    /// Why `name` is not valid; a `prefix` (generateName) may end in `-`.
    pub(crate) fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.ends_with('-') {
            masked = format!("{}a", &name[..name.len() - 1]);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Subdomain => names::dns1123_subdomain(name),
            NameRule::Label => names::dns1123_label(name),
            NameRule::Dns1035 => names::dns1035_label(name),
        }
    }
}

/// Validates an object's metadata on create.
pub(crate) fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(generate_name) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        for msg in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                &json!(generate_name),
                msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid("metadata.name", &json!(name), msg));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in names::dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    &json!(namespace),
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(generation) = meta.generation.filter(|g| *g < 0) {
        errs.push(FieldError::invalid(
            "metadata.generation",
            &json!(generation),
            "must be greater than or equal to 0",
        ));
    }
    errs.extend(validate_labels(meta.labels.as_ref(), "metadata.labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        "metadata.annotations",
    ));
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref().unwrap_or_default(),
    ));
    for finalizer in meta.finalizers.iter().flatten() {
        for msg in names::qualified_name(finalizer) {
            errs.push(FieldError::invalid(
                "metadata.finalizers",
                &json!(finalizer),
                msg,
            ));
        }
    }
    errs
}

/// What an update may not change in metadata: name, namespace, uid and creationTimestamp.
pub(crate) fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let pairs = [
        ("metadata.name", json!(new.name), json!(old.name)),
        (
            "metadata.namespace",
            json!(new.namespace),
            json!(old.namespace),
        ),
        ("metadata.uid", json!(new.uid), json!(old.uid)),
        (
            "metadata.creationTimestamp",
            json!(new.creation_timestamp),
            json!(old.creation_timestamp),
        ),
    ];
    for (field, new_value, old_value) in pairs {
        errs.extend(immutable(field, &new_value, &old_value));
    }
    errs
}

/// `field: Invalid value: <new>: field is immutable` when the values differ.
pub(crate) fn immutable(field: &str, new: &Value, old: &Value) -> Option<FieldError> {
    (new != old).then(|| FieldError::invalid(field, new, "field is immutable"))
}

/// Validates a map of labels: keys are qualified names, values label values.
pub(crate) fn validate_labels(
    labels: Option<&BTreeMap<String, String>>,
    field: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (key, value) in labels.into_iter().flatten() {
        for msg in names::qualified_name(key) {
            errs.push(FieldError::invalid(field, &json!(key), msg));
        }
        for msg in names::label_value(value) {
            errs.push(FieldError::invalid(field, &json!(value), msg));
        }
    }
    errs
}

/// Validates annotations: keys are qualified names (any case), 256 KiB in all.
pub(crate) fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    field: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0;
    for (key, value) in annotations.into_iter().flatten() {
        for msg in names::qualified_name(&key.to_lowercase()) {
            errs.push(FieldError::invalid(field, &json!(key), msg));
        }
        total += key.len() + value.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn validate_owner_references(references: &[OwnerReference]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let field = "metadata.ownerReferences";
    for reference in references {
        let checks = [
            (
                "apiVersion",
                &reference.api_version,
                "version must not be empty",
            ),
            ("kind", &reference.kind, "kind must not be empty"),
            ("name", &reference.name, "name must not be empty"),
            ("uid", &reference.uid, "uid must not be empty"),
        ];
        for (child, value, message) in checks {
            if value.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{field}.{child}"),
                    &json!(value),
                    message,
                ));
            }
        }
    }
    let controllers: Vec<String> = references
        .iter()
        .filter(|r| r.controller == Some(true))
        .map(|r| format!("{}/{}", r.kind, r.name))
        .collect();
    if controllers.len() > 1 {
        errs.push(FieldError::invalid(
            field,
            &json!(references),
            format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(value: Value) -> ObjectMeta {
        serde_json::from_value(value).unwrap()
    }

    fn texts(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn names_follow_the_kinds_rule() {
        let m = meta(json!({"name": "Web", "namespace": "default"}));
        assert_eq!(
            texts(validate_object_meta(&m, true, NameRule::Subdomain)),
            vec![
                r#"metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
            ]
        );
        let m = meta(json!({"name": "a.b"}));
        assert_eq!(
            texts(validate_object_meta(&m, false, NameRule::Label)),
            vec![r#"metadata.name: Invalid value: "a.b": must not contain dots"#]
        );
        let m = meta(json!({"name": "1web", "namespace": "x"}));
        assert!(texts(validate_object_meta(&m, true, NameRule::Dns1035))[0]
            .contains("a DNS-1035 label"));
        assert!(validate_object_meta(
            &meta(json!({"name": "a.b", "namespace": "x"})),
            true,
            NameRule::Subdomain
        )
        .is_empty());
    }

    #[test]
    fn name_is_required_and_generate_name_may_end_in_a_dash() {
        let m = meta(json!({"namespace": "default"}));
        assert_eq!(
            texts(validate_object_meta(&m, true, NameRule::Subdomain)),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        let m = meta(json!({"name": "web-x1", "generateName": "web-", "namespace": "default"}));
        assert!(validate_object_meta(&m, true, NameRule::Subdomain).is_empty());
        let m = meta(json!({"name": "x", "generateName": "Web-", "namespace": "default"}));
        assert!(
            texts(validate_object_meta(&m, true, NameRule::Subdomain))[0]
                .starts_with("metadata.generateName: Invalid value: \"Web-\"")
        );
    }

    #[test]
    fn namespace_is_required_for_namespaced_kinds_and_forbidden_otherwise() {
        let m = meta(json!({"name": "x"}));
        assert_eq!(
            texts(validate_object_meta(&m, true, NameRule::Subdomain)),
            vec!["metadata.namespace: Required value"]
        );
        let m = meta(json!({"name": "x", "namespace": "a"}));
        assert_eq!(
            texts(validate_object_meta(&m, false, NameRule::Subdomain)),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let m = meta(json!({"name": "x", "namespace": "A_b"}));
        assert!(
            texts(validate_object_meta(&m, true, NameRule::Subdomain))[0]
                .starts_with("metadata.namespace: Invalid value: \"A_b\"")
        );
    }

    #[test]
    fn labels_and_annotations_are_checked() {
        let m = meta(
            json!({"name": "x", "labels": {"app": "-bad", "a b": "ok"}, "annotations": {"Example.com/Key": "any value at all", "/x": ""}}),
        );
        let errs = texts(validate_object_meta(&m, false, NameRule::Subdomain));
        assert_eq!(
            errs.len(),
            3,
            "annotation keys are checked lowercased: {errs:#?}"
        );
        assert!(
            errs[0].starts_with("metadata.labels: Invalid value: \"a b\": name part must consist")
        );
        assert!(
            errs[1].starts_with("metadata.labels: Invalid value: \"-bad\": a valid label must be")
        );
        assert_eq!(
            errs[2],
            "metadata.annotations: Invalid value: \"/x\": prefix part must be non-empty"
        );
        let big = meta(
            json!({"name": "x", "annotations": {"big": "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}}),
        );
        assert_eq!(
            texts(validate_object_meta(&big, false, NameRule::Subdomain)),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn owner_references_need_their_fields_and_one_controller() {
        let m = meta(json!({"name": "x", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "", "controller": true}
        ]}));
        let errs = texts(validate_object_meta(&m, false, NameRule::Subdomain));
        assert_eq!(
            errs[0],
            "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty"
        );
        assert!(errs[1].ends_with("Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b"));
    }

    #[test]
    fn finalizers_are_qualified_names() {
        let m = meta(json!({"name": "x", "finalizers": ["kubernetes", "example.com/f", "a b"]}));
        let errs = texts(validate_object_meta(&m, false, NameRule::Subdomain));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("metadata.finalizers: Invalid value: \"a b\""));
    }

    #[test]
    fn updates_may_not_change_identity() {
        let old = meta(
            json!({"name": "a", "namespace": "n", "uid": "1", "creationTimestamp": "2024-01-01T00:00:00Z"}),
        );
        let same = meta(
            json!({"name": "a", "namespace": "n", "uid": "1", "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"x": "y"}}),
        );
        assert!(validate_object_meta_update(&same, &old).is_empty());
        let changed = meta(
            json!({"name": "b", "namespace": "m", "uid": "2", "creationTimestamp": "2025-01-01T00:00:00Z"}),
        );
        assert_eq!(
            texts(validate_object_meta_update(&changed, &old)),
            vec![
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.namespace: Invalid value: \"m\": field is immutable",
                "metadata.uid: Invalid value: \"2\": field is immutable",
                "metadata.creationTimestamp: Invalid value: \"2025-01-01T00:00:00Z\": field is immutable",
            ]
        );
    }
}
