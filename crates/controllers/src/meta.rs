//! Object metadata as controllers read it: owner references (who controls an
//! object), adoption and release by label selector, and label selectors.
//!
//! Kubernetes' `ControllerRefManager` (pkg/controller/controller_ref_manager.go)
//! decides which objects a controller owns: an object with a controller
//! reference to it is owned while its labels still match (else it is
//! released); an object with no controller reference whose labels match is
//! adopted; an object controlled by someone else is left alone.
//!
//! # Caveats
//! Adoption does not re-read the owner from the API server before adopting
//! (Kubernetes' `canAdopt` live check); an owner being deleted adopts nothing.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::{Metadata, Resource};
use skiff_api::labels::LabelSelector as Selector;

/// The controller reference of `meta`: the owner reference with `controller: true`.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner`, as a controller sets on what it creates:
/// `controller: true` and `blockOwnerDeletion: true`.
pub fn controller_ref<K: Resource + Metadata<Ty = ObjectMeta>>(owner: &K) -> OwnerReference {
    let meta = owner.metadata();
    OwnerReference {
        api_version: K::API_VERSION.to_string(),
        kind: K::KIND.to_string(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Converts a `metav1.LabelSelector` into a selector that matches labels. A
/// selector that cannot be understood is an error naming why.
pub fn selector(selector: Option<&LabelSelector>) -> Result<Selector, String> {
    let Some(selector) = selector else {
        return Ok(Selector::nothing());
    };
    let value = serde_json::to_value(selector).map_err(|e| e.to_string())?;
    Selector::from_json(&value)
}

/// The labels of `meta`, empty when it has none (borrowed: a sync matches
/// every pod it reads, and copying each pod's labels would cost more than
/// the match).
pub fn labels(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&NONE)
}

/// What a controller does with one candidate object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by this owner and still matching.
    Owned,
    /// Not controlled by anyone and matching: take it.
    Adopt,
    /// Controlled by this owner but no longer matching: let it go.
    Release,
    /// Not this owner's business.
    Ignore,
}

/// Classifies `candidate` for the owner with `owner_uid` and `selector`, as
/// `ClaimObject` does. An owner being deleted (`owner_deleting`) adopts nothing
/// and releases nothing; a candidate being deleted is never adopted.
pub fn claim(
    owner_uid: &str,
    owner_deleting: bool,
    selector: &Selector,
    candidate: &ObjectMeta,
) -> Claim {
    let matches = selector.matches(labels(candidate));
    match controller_of(candidate) {
        Some(reference) if reference.uid == owner_uid => {
            if matches || owner_deleting {
                Claim::Owned
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if matches && !owner_deleting && candidate.deletion_timestamp.is_none() => {
            Claim::Adopt
        }
        None => Claim::Ignore,
    }
}

/// The JSON merge patch that makes `owner` the controller of an object
/// (appending to the references it has).
pub fn adopt_patch(existing: &ObjectMeta, owner: OwnerReference) -> serde_json::Value {
    let mut references = existing.owner_references.clone().unwrap_or_default();
    references.push(owner);
    serde_json::json!({ "metadata": {
        "ownerReferences": references,
        "resourceVersion": existing.resource_version,
    }})
}

/// The JSON merge patch that removes the reference to `owner_uid` from an object.
pub fn release_patch(existing: &ObjectMeta, owner_uid: &str) -> serde_json::Value {
    let references: Vec<&OwnerReference> = existing
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .collect();
    serde_json::json!({ "metadata": {
        "ownerReferences": references,
        "resourceVersion": existing.resource_version,
    }})
}

/// The namespace/name key of an object, for logs and work queues.
pub fn key_of(meta: &ObjectMeta) -> String {
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        _ => meta.name.clone().unwrap_or_default(),
    }
}

/// Whether two values say the same once nulls, empty lists and empty objects
/// are dropped: how a status read back from the server compares with the
/// one a reconcile computed, so equal states are not written again.
pub fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    fn prune(value: serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match value {
            Value::Null => None,
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) => {
                Some(Value::Array(items.into_iter().filter_map(prune).collect()))
            }
            Value::Object(map) => {
                let map: serde_json::Map<String, Value> = map
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, prune(v)?)))
                    .collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
            other => Some(other),
        }
    }
    let a = serde_json::to_value(a).ok().and_then(prune);
    let b = serde_json::to_value(b).ok().and_then(prune);
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)], controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some("p".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: controller.map(|uid| {
                vec![OwnerReference {
                    uid: uid.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn claim_owns_adopts_releases_and_ignores_as_controller_ref_manager() {
        let selector = Selector::parse("app=web").unwrap();
        let web = [("app", "web")];
        let db = [("app", "db")];
        assert_eq!(
            claim("u1", false, &selector, &meta(&web, Some("u1"))),
            Claim::Owned
        );
        assert_eq!(
            claim("u1", false, &selector, &meta(&web, None)),
            Claim::Adopt
        );
        assert_eq!(
            claim("u1", false, &selector, &meta(&db, Some("u1"))),
            Claim::Release
        );
        assert_eq!(
            claim("u1", false, &selector, &meta(&web, Some("u2"))),
            Claim::Ignore
        );
        assert_eq!(
            claim("u1", true, &selector, &meta(&web, None)),
            Claim::Ignore
        );
        assert_eq!(
            claim("u1", true, &selector, &meta(&db, Some("u1"))),
            Claim::Owned
        );
    }

    #[test]
    fn a_null_selector_selects_nothing_and_a_bad_one_names_why() {
        assert!(selector(None).unwrap().matches_nothing());
        let bad = LabelSelector {
            match_expressions: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                    key: "a".into(),
                    operator: "Near".into(),
                    values: None,
                },
            ]),
            ..Default::default()
        };
        assert!(selector(Some(&bad)).unwrap_err().contains("Near"));
    }
}
