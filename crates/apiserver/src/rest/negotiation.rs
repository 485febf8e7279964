//! Content negotiation: what a request body is written in (its
//! `Content-Type`), and what the client wants back (its `Accept`).
//!
//! Bodies come as JSON or YAML; patches by their patch type's media type.
//! Answers go out as JSON or YAML, or — for get, list and watch — as a
//! server-side `Table` or `PartialObjectMetadata` when the Accept header asks
//! for `application/json;as=Table;v=v1;g=meta.k8s.io` and the like. Clients
//! send several alternatives, best first (`kubectl get` asks for a Table,
//! then plain JSON); the first one the server can produce wins, as in the
//! Kubernetes API server.
//!
//! # Where to start
//! [`output`] for Accept, [`request_json`] and [`patch_type`] for bodies.
//!
//! # Caveats
//! No protobuf or CBOR; quality values (`q=`) are ignored, order decides.

use bytes::Bytes;
use serde_json::Value;
use skiff_api::status::{ApiError, Reason};

use crate::registry::write::PatchType;

/// What an answer is encoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Json,
    Yaml,
    /// A meta.k8s.io/v1 Table of the object or list.
    Table,
    /// PartialObjectMetadata (a list of them for a list).
    Metadata,
}

/// The media types objects are answered in, for 406's message.
const SERVED: &str = "application/json, application/yaml";

/// One alternative of an Accept header: `type/subtype` and its parameters.
#[derive(Debug)]
pub(crate) struct MediaRange<'a> {
    pub(crate) mime: String,
    params: Vec<(String, &'a str)>,
}

impl<'a> MediaRange<'a> {
    /// The value of parameter `name` (lower-case), if present.
    pub(crate) fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }

    /// Whether the type is JSON or a wildcard that includes it.
    pub(crate) fn is_json(&self) -> bool {
        matches!(
            self.mime.as_str(),
            "application/json" | "application/*" | "*/*"
        )
    }
}

/// The alternatives of an Accept header, in order.
pub(crate) fn media_ranges(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let mime = parts.next()?.trim().to_ascii_lowercase();
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"')))
                .collect();
            (!mime.is_empty()).then_some(MediaRange { mime, params })
        })
        .collect()
}

/// What to answer a get, list or watch in, given its Accept header.
pub(crate) fn output(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for range in media_ranges(accept) {
        let meta_v1 = range.param("g") == Some("meta.k8s.io") && range.param("v") == Some("v1");
        let found = match range.param("as") {
            Some("Table") if meta_v1 && range.is_json() => Some(Output::Table),
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if meta_v1 && range.is_json() =>
            {
                Some(Output::Metadata)
            }
            Some(_) => None,
            None if range.is_json() => Some(Output::Json),
            None if range.mime == "application/yaml" => Some(Output::Yaml),
            None => None,
        };
        if let Some(found) = found {
            return Ok(found);
        }
    }
    Err(not_acceptable(SERVED))
}

/// 406, naming what the server can answer in.
pub(crate) fn not_acceptable(served: &str) -> ApiError {
    ApiError::new(
        Reason::NotAcceptable,
        format!("only the following media types are accepted: {served}"),
    )
}

/// The media type of a Content-Type header, without parameters.
fn mime(content_type: Option<&str>) -> String {
    content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A create, update or delete body as JSON bytes: JSON as is, YAML converted.
/// No Content-Type is read as JSON.
pub(crate) fn request_json(content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match mime(content_type).as_str() {
        "" | "application/json" => Ok(body.to_vec()),
        "application/yaml" => yaml_to_json(body),
        _ => Err(ApiError::new(
            Reason::UnsupportedMediaType,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        )),
    }
}

/// The patch type a PATCH's Content-Type names, and the patch as JSON bytes
/// (an apply patch may be YAML).
pub(crate) fn patch_type(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(PatchType, Vec<u8>), ApiError> {
    match mime(content_type).as_str() {
        "application/json-patch+json" => Ok((PatchType::Json, body.to_vec())),
        "application/merge-patch+json" => Ok((PatchType::Merge, body.to_vec())),
        "application/strategic-merge-patch+json" => {
            Ok((PatchType::StrategicMerge, body.to_vec()))
        }
        "application/apply-patch+yaml" => Ok((PatchType::Apply, yaml_to_json(body)?)),
        _ => Err(ApiError::new(
            Reason::UnsupportedMediaType,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
        )),
    }
}

/// YAML (JSON is YAML too) to JSON bytes.
fn yaml_to_json(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let value: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?;
    Ok(serde_json::to_vec(&value).expect("a Value always encodes"))
}

/// A value encoded for the answer: its Content-Type and bytes.
pub(crate) fn encode(value: &Value, output: Output, pretty: bool) -> (&'static str, Bytes) {
    let bytes = match output {
        Output::Yaml => serde_yaml::to_string(value)
            .map(String::into_bytes)
            .unwrap_or_else(|e| format!("# not encodable as YAML: {e}\n").into_bytes()),
        _ if pretty => serde_json::to_vec_pretty(value).expect("a Value always encodes"),
        _ => serde_json::to_vec(value).expect("a Value always encodes"),
    };
    let content_type = match output {
        Output::Yaml => "application/yaml",
        Output::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Output::Metadata | Output::Json => "application/json",
    };
    (content_type, Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_servable_alternative_wins() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output(Some(kubectl_get)), Ok(Output::Table));
        let beta_only = "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json";
        assert_eq!(output(Some(beta_only)), Ok(Output::Json));
        assert_eq!(
            output(Some(
                "application/vnd.kubernetes.protobuf, application/yaml"
            )),
            Ok(Output::Yaml)
        );
        assert_eq!(
            output(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Ok(Output::Metadata)
        );
        assert_eq!(output(None), Ok(Output::Json));
        assert_eq!(output(Some("*/*")), Ok(Output::Json));
    }

    #[test]
    fn nothing_servable_is_406() {
        let err = output(Some("application/vnd.kubernetes.protobuf")).unwrap_err();
        assert_eq!(err.code, 406);
        assert_eq!(
            err.message,
            "only the following media types are accepted: application/json, application/yaml"
        );
    }

    #[test]
    fn bodies_are_json_or_yaml_and_patches_go_by_their_type() {
        let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        let json: Value =
            serde_json::from_slice(&request_json(Some("application/yaml"), yaml).unwrap()).unwrap();
        assert_eq!(json["metadata"]["name"], "a");
        let err = request_json(Some("text/plain"), b"x").unwrap_err();
        assert_eq!(err.code, 415);
        assert_eq!(
            patch_type(Some("application/merge-patch+json; charset=utf-8"), b"{}")
                .unwrap()
                .0,
            PatchType::Merge
        );
        let (apply, body) =
            patch_type(Some("application/apply-patch+yaml"), b"kind: ConfigMap\n").unwrap();
        assert_eq!(apply, PatchType::Apply);
        assert_eq!(body, br#"{"kind":"ConfigMap"}"#);
        assert_eq!(
            patch_type(Some("application/json"), b"{}")
                .unwrap_err()
                .code,
            415
        );
    }
}
