//! kube-core's verb options, translated into skiff's gRPC requests.
//!
//! Callers speak kube-rs's vocabulary — [`ListParams`], [`WatchParams`],
//! [`PostParams`], [`PatchParams`] with a [`Patch`], [`DeleteParams`] — and
//! this module says how each field travels in a `skiff.api.v1` request, the
//! way kube-core turns them into a REST query string.
//!
//! Every patch type travels: merge, JSON (RFC 6902), strategic merge and
//! server-side apply (`PatchParams::apply("manager").force()`), with the
//! field manager and `force` in the request.
//!
//! # Caveats
//! `sendInitialEvents` and `resourceVersionMatch` are not sent: the server
//! has no use for them.

use kube_core::params::{
    DeleteParams, ListParams, Patch, PatchParams, ValidationDirective, VersionMatch, WatchParams,
};
use serde::Serialize;
use skiff_proto::api::{ListRequest, PatchType, ResourceRef, WatchRequest};

use crate::error::Error;

/// `fieldValidation` as the proto names it; `None` leaves it to the server
/// (Kubernetes' default, Warn).
pub(crate) fn field_validation(directive: Option<&ValidationDirective>) -> i32 {
    use skiff_proto::api::FieldValidation as P;
    match directive {
        None => P::Unspecified as i32,
        Some(ValidationDirective::Ignore) => P::Ignore as i32,
        Some(ValidationDirective::Warn) => P::Warn as i32,
        Some(ValidationDirective::Strict) => P::Strict as i32,
    }
}

/// A list request for `target` (whose name is empty).
pub(crate) fn list_request(target: ResourceRef, params: &ListParams) -> ListRequest {
    let text = |field: &Option<String>| field.clone().unwrap_or_default();
    ListRequest {
        r#ref: Some(target),
        label_selector: text(&params.label_selector),
        field_selector: text(&params.field_selector),
        limit: params.limit.map_or(0, i64::from),
        r#continue: text(&params.continue_token),
        resource_version: text(&params.resource_version),
        resource_version_match: match params.version_match {
            None => String::new(),
            Some(VersionMatch::NotOlderThan) => "NotOlderThan".into(),
            Some(VersionMatch::Exact) => "Exact".into(),
        },
        ..ListRequest::default()
    }
}

/// A watch request for `target` from `resource_version` ("" or "0": start
/// with the current objects as ADDED events).
pub(crate) fn watch_request(
    target: ResourceRef,
    params: &WatchParams,
    resource_version: &str,
) -> WatchRequest {
    WatchRequest {
        r#ref: Some(target),
        resource_version: resource_version.to_string(),
        label_selector: params.label_selector.clone().unwrap_or_default(),
        field_selector: params.field_selector.clone().unwrap_or_default(),
        allow_watch_bookmarks: params.bookmarks,
        timeout_seconds: params.timeout.map_or(0, i64::from),
        ..WatchRequest::default()
    }
}

/// The patch type and body of `patch`, or why skiff cannot send it.
pub(crate) fn patch_body<P: Serialize>(patch: &Patch<P>) -> Result<(PatchType, Vec<u8>), Error> {
    let encoded = match patch {
        Patch::Merge(body) => (PatchType::Merge, serde_json::to_vec(body)),
        Patch::Json(operations) => (PatchType::Json, serde_json::to_vec(operations)),
        Patch::Strategic(body) => (PatchType::StrategicMerge, serde_json::to_vec(body)),
        Patch::Apply(body) => (PatchType::Apply, serde_json::to_vec(body)),
        #[allow(unreachable_patterns)]
        _ => return Err(Error::UnsupportedPatch("this patch type")),
    };
    match encoded {
        (kind, Ok(bytes)) => Ok((kind, bytes)),
        (_, Err(e)) => Err(Error::json("the patch does not encode", e)),
    }
}

/// `fieldValidation` of a patch.
pub(crate) fn patch_validation(params: &PatchParams) -> i32 {
    field_validation(params.field_validation.as_ref())
}

/// The DeleteOptions JSON the server reads; empty for the defaults. `dryRun`
/// travels in the request itself.
pub(crate) fn delete_options(params: &DeleteParams) -> Vec<u8> {
    let options = DeleteParams {
        dry_run: false,
        ..params.clone()
    };
    if options == DeleteParams::default() {
        return Vec::new();
    }
    serde_json::to_vec(&options).expect("DeleteParams always encode")
}

#[cfg(test)]
mod tests {
    use kube_core::params::{Preconditions, PropagationPolicy};
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn delete_options_name_only_what_was_set() {
        assert!(delete_options(&DeleteParams::default()).is_empty());
        assert!(delete_options(&DeleteParams::default().dry_run()).is_empty());
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                resource_version: Some("7".into()),
                uid: None,
            }),
            ..Default::default()
        };
        let json: Value = serde_json::from_slice(&delete_options(&params)).unwrap();
        assert_eq!(
            json,
            json!({
                "gracePeriodSeconds": 0,
                "propagationPolicy": "Foreground",
                "preconditions": {"resourceVersion": "7"},
            })
        );
    }

    #[test]
    fn list_params_travel_as_the_list_request() {
        let params = ListParams::default()
            .labels("app=web")
            .fields("spec.nodeName=n1")
            .limit(5)
            .continue_token("abc");
        let request = list_request(ResourceRef::default(), &params);
        assert_eq!(request.label_selector, "app=web");
        assert_eq!(request.field_selector, "spec.nodeName=n1");
        assert_eq!(request.limit, 5);
        assert_eq!(request.r#continue, "abc");
        assert_eq!(
            list_request(ResourceRef::default(), &ListParams::default()).limit,
            0
        );
    }

    #[test]
    fn merge_and_json_patches_are_sent_as_their_patch_type() {
        let (kind, body) = patch_body(&Patch::Merge(json!({"a": null}))).unwrap();
        assert_eq!(kind, PatchType::Merge);
        assert_eq!(body, br#"{"a":null}"#);
        let operations = serde_json::from_value(json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "remove", "path": "/metadata/labels/tier"},
        ]))
        .unwrap();
        let (kind, body) = patch_body(&Patch::<()>::Json(operations)).unwrap();
        assert_eq!(kind, PatchType::Json);
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            sent,
            json!([
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "remove", "path": "/metadata/labels/tier"},
            ])
        );
    }

    #[test]
    fn strategic_and_apply_patches_are_sent_as_their_patch_type() {
        let (kind, body) = patch_body(&Patch::Strategic(json!({"spec": {"replicas": 2}}))).unwrap();
        assert_eq!(kind, PatchType::StrategicMerge);
        assert_eq!(body, br#"{"spec":{"replicas":2}}"#);
        let intent = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let (kind, body) = patch_body(&Patch::Apply(intent.clone())).unwrap();
        assert_eq!(kind, PatchType::Apply);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), intent);
    }
}
