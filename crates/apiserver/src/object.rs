//! Reading and writing objects: decoding request bodies as Kubernetes does
//! (apiVersion/kind checks, unknown fields, size limit), and the metadata
//! helpers the registry uses.
//!
//! Unknown fields are found by decoding the body into the kind's typed struct
//! from k8s-openapi and encoding it again: whatever the typed struct does not
//! know is missing from the result. That is what the Kubernetes API server's
//! decoder does with its Go structs.
//!
//! An object read from the store is kept as an [`EncodedObject`]: parsed once
//! (selectors look at fields) and encoded to JSON once (every watcher and list
//! sends those same bytes).
//!
//! # Caveats
//! Duplicate fields in the JSON are not reported (serde_json keeps the last).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};
use skiff_api::resources::Resource;
use skiff_api::status::ApiError;

/// The largest object accepted, as the Kubernetes API server's 1.5 MiB etcd limit.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// How unknown fields in a body are treated (Kubernetes' `fieldValidation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them with a warning naming each (Kubernetes' default).
    #[default]
    Warn,
    /// Reject the request with BadRequest.
    Strict,
}

/// A decoded body and the warnings decoding it raised.
pub(crate) struct Decoded {
    pub(crate) object: Value,
    pub(crate) warnings: Vec<String>,
}

/// Decodes a request body that must be an object of `resource`'s kind.
pub(crate) fn decode(
    resource: &Resource,
    body: &[u8],
    validation: FieldValidation,
) -> Result<Decoded, ApiError> {
    decode_kind(resource.kind, &resource.api_version(), body, validation)
}

/// Decodes a body that must be of `kind` in `api_version`.
pub(crate) fn decode_kind(
    kind: &str,
    api_version: &str,
    body: &[u8],
    validation: FieldValidation,
) -> Result<Decoded, ApiError> {
    if body.len() > MAX_OBJECT_BYTES {
        return Err(ApiError::too_large(format!(
            "Request entity too large: limit is {MAX_OBJECT_BYTES} bytes, the object has {}",
            body.len()
        )));
    }
    let object: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    if !object.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let got_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let got_kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if got_kind.is_empty() || got_version.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' or 'apiVersion' is missing: expected {api_version}, Kind={kind}"
        )));
    }
    if got_kind != kind || got_version != api_version {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({got_version}) and kind ({got_kind}) do not match the request: expected {api_version}, Kind={kind}"
        )));
    }
    let typed = typed_round_trip(kind, object.clone())
        .map_err(|e| ApiError::bad_request(format!("unable to decode {kind}: {e}")))?;
    let mut unknown = Vec::new();
    unknown_fields(&object, &typed, String::new(), &mut unknown);
    let warnings: Vec<String> = unknown
        .iter()
        .map(|path| format!("unknown field \"{path}\""))
        .collect();
    match validation {
        FieldValidation::Strict if !warnings.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            warnings.join(", ")
        ))),
        FieldValidation::Ignore => Ok(Decoded {
            object: typed,
            warnings: Vec::new(),
        }),
        _ => Ok(Decoded {
            object: typed,
            warnings,
        }),
    }
}

fn via<T>(object: Value) -> Result<Value, String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(object).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Decodes `object` into the k8s-openapi struct of `kind` and encodes it again.
fn typed_round_trip(kind: &str, object: Value) -> Result<Value, String> {
    use k8s_openapi::api::{apps, batch, coordination, core, discovery, policy, scheduling};
    match kind {
        "Namespace" => via::<core::v1::Namespace>(object),
        "Node" => via::<core::v1::Node>(object),
        "Pod" => via::<core::v1::Pod>(object),
        "Service" => via::<core::v1::Service>(object),
        "Endpoints" => via::<core::v1::Endpoints>(object),
        "ConfigMap" => via::<core::v1::ConfigMap>(object),
        "Secret" => via::<core::v1::Secret>(object),
        "ServiceAccount" => via::<core::v1::ServiceAccount>(object),
        "Event" => via::<core::v1::Event>(object),
        "Binding" => via::<core::v1::Binding>(object),
        "Scale" => via::<k8s_openapi::api::autoscaling::v1::Scale>(object),
        "Lease" => via::<coordination::v1::Lease>(object),
        "Job" => via::<batch::v1::Job>(object),
        "CronJob" => via::<batch::v1::CronJob>(object),
        "ReplicaSet" => via::<apps::v1::ReplicaSet>(object),
        "Deployment" => via::<apps::v1::Deployment>(object),
        "EndpointSlice" => via::<discovery::v1::EndpointSlice>(object),
        "PriorityClass" => via::<scheduling::v1::PriorityClass>(object),
        "PodDisruptionBudget" => via::<policy::v1::PodDisruptionBudget>(object),
        other => Err(format!("kind {other} is not served")),
    }
}

/// Collects the paths of fields in `given` that `typed` lost.
fn unknown_fields(given: &Value, typed: &Value, path: String, out: &mut Vec<String>) {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    match (given, typed) {
        (Value::Object(given), Value::Object(typed)) => {
            for (name, value) in given {
                match typed.get(name) {
                    None if !value.is_null() => out.push(join(name)),
                    None => {}
                    Some(kept) => unknown_fields(value, kept, join(name), out),
                }
            }
        }
        (Value::Array(given), Value::Array(typed)) => {
            for (i, (value, kept)) in given.iter().zip(typed).enumerate() {
                unknown_fields(value, kept, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `metadata` of an object, created if missing.
pub(crate) fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = Value::Object(Map::new());
    }
    match object.get_mut("metadata") {
        Some(Value::Object(meta)) => meta,
        _ => unreachable!("metadata was made an object above"),
    }
}

/// A string field of `metadata`, empty when missing.
pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.labels` as a map.
pub(crate) fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub(crate) fn finalizers(object: &Value) -> Vec<String> {
    object
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(object: &Value) -> bool {
    !meta_str(object, "deletionTimestamp").is_empty()
}

/// Everything but `metadata` and `status`: what a change to bumps `generation`.
pub(crate) fn spec_part(object: &Value) -> Value {
    let mut spec = object.clone();
    if let Value::Object(fields) = &mut spec {
        fields.remove("metadata");
        fields.remove("status");
    }
    spec
}

/// An object together with its JSON encoding, made once and shared: cloning
/// one clones a pointer. The watch cache holds every object this way, so a
/// change watched by a thousand clients is encoded once, not a thousand times.
///
/// It reads as the [`Value`] it holds (`Deref`) and compares by that value.
#[derive(Clone)]
pub struct EncodedObject(Arc<Encoded>);

struct Encoded {
    value: Value,
    json: Bytes,
}

impl EncodedObject {
    /// Encodes `value` (once, now).
    pub fn new(value: Value) -> EncodedObject {
        let json = serde_json::to_vec(&value).expect("a serde_json::Value always encodes");
        EncodedObject(Arc::new(Encoded {
            value,
            json: Bytes::from(json),
        }))
    }

    /// The object.
    pub fn value(&self) -> &Value {
        &self.0.value
    }

    /// The object as JSON. Every clone of this object returns the same
    /// allocation; cloning the `Bytes` copies no data.
    pub fn json(&self) -> &Bytes {
        &self.0.json
    }

    /// The object, cloned only if it is shared.
    pub fn into_value(self) -> Value {
        match Arc::try_unwrap(self.0) {
            Ok(encoded) => encoded.value,
            Err(shared) => shared.value.clone(),
        }
    }
}

impl Deref for EncodedObject {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0.value
    }
}

impl PartialEq for EncodedObject {
    fn eq(&self, other: &EncodedObject) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.value == other.0.value
    }
}

impl PartialEq<Value> for EncodedObject {
    fn eq(&self, other: &Value) -> bool {
        self.0.value == *other
    }
}

impl fmt::Debug for EncodedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

/// Parses the JSON stored under a key, setting `metadata.resourceVersion` to
/// the key's `mod_revision`, as every read of the Kubernetes API server does.
pub(crate) fn from_stored(value: &[u8], mod_revision: i64) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
    set_resource_version(&mut object, mod_revision);
    Ok(object)
}

/// [`from_stored`], encoded for sending.
pub(crate) fn encoded_from_stored(
    value: &[u8],
    mod_revision: i64,
) -> Result<EncodedObject, ApiError> {
    from_stored(value, mod_revision).map(EncodedObject::new)
}

/// Sets `metadata.resourceVersion` (a decimal string, as Kubernetes').
pub(crate) fn set_resource_version(object: &mut Value, revision: i64) {
    meta_mut(object).insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
}

/// The bytes to store: the object without `metadata.resourceVersion`, which is
/// the key's `mod_revision` and so cannot be part of the value.
pub(crate) fn to_stored(object: &Value) -> Vec<u8> {
    let mut stored = object.clone();
    meta_mut(&mut stored).remove("resourceVersion");
    serde_json::to_vec(&stored).expect("a serde_json::Value always encodes")
}

/// Parses a resourceVersion: empty is `None`, otherwise a non-negative integer.
pub(crate) fn parse_resource_version(rv: &str) -> Result<Option<i64>, ApiError> {
    if rv.is_empty() {
        return Ok(None);
    }
    rv.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::resources::lookup;
    use skiff_api::status::Reason;

    fn body(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn unknown_fields_warn_by_default_and_fail_when_strict() {
        let pods = lookup("pods").unwrap();
        let pod = body(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "colour": "blue"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "sizee": 3}]}
        }));
        let decoded = decode(pods, &pod, FieldValidation::Warn).unwrap();
        assert_eq!(
            decoded.warnings,
            [
                "unknown field \"metadata.colour\"",
                "unknown field \"spec.containers[0].sizee\""
            ]
        );
        assert!(decoded.object["metadata"].get("colour").is_none());
        assert_eq!(decoded.object["spec"]["containers"][0]["image"], "nginx");
        let ignored = decode(pods, &pod, FieldValidation::Ignore).unwrap();
        assert!(ignored.warnings.is_empty());
        let err = decode(pods, &pod, FieldValidation::Strict).err().unwrap();
        assert_eq!(err.reason, Reason::BadRequest);
        assert!(
            err.message.contains("unknown field \"metadata.colour\""),
            "{err}"
        );
    }

    #[test]
    fn wrong_kind_or_version_is_a_bad_request() {
        let pods = lookup("pods").unwrap();
        for wrong in [
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}),
            json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "a"}}),
            json!({"metadata": {"name": "a"}}),
        ] {
            let err = decode(pods, &body(wrong.clone()), FieldValidation::Warn)
                .err()
                .unwrap_or_else(|| panic!("{wrong} was accepted"));
            assert_eq!(err.reason, Reason::BadRequest, "{wrong}");
        }
        let err = decode(pods, b"{not json", FieldValidation::Warn)
            .err()
            .unwrap();
        assert_eq!(err.reason, Reason::BadRequest);
        let typed_wrong = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 7}});
        let err = decode(pods, &body(typed_wrong), FieldValidation::Warn)
            .err()
            .unwrap();
        assert_eq!(err.reason, Reason::BadRequest);
    }

    #[test]
    fn objects_over_the_limit_are_too_large() {
        let cms = lookup("cm").unwrap();
        let big = "x".repeat(MAX_OBJECT_BYTES);
        let cm = body(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "big"}, "data": {"k": big}}));
        let err = decode(cms, &cm, FieldValidation::Warn).err().unwrap();
        assert_eq!(err.reason, Reason::RequestEntityTooLarge);
        assert_eq!(err.code, 413);
    }

    #[test]
    fn resource_versions_parse_as_integers() {
        assert_eq!(parse_resource_version("").unwrap(), None);
        assert_eq!(parse_resource_version("42").unwrap(), Some(42));
        assert!(parse_resource_version("abc").is_err());
        assert!(parse_resource_version("-1").is_err());
    }
}
