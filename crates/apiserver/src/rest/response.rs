//! Building answers: objects with their status code and `Warning` headers,
//! and every failure as a Kubernetes `Status` with its HTTP code.
//!
//! # Where to start
//! [`object`] for successes, [`error`] for failures.
//!
//! # Caveats
//! A Status is always answered in JSON, whatever the Accept header asks for.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use skiff_api::status::{ApiError, Reason};

use super::negotiation::{encode, Output};
use super::RestBody;

/// How many seconds a client is told to wait before retrying a 429, as the
/// Kubernetes API server's max-in-flight filter answers.
const RETRY_AFTER_SECONDS: u32 = 1;

/// A whole body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> RestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A `Warning` header value: `299 - "text"`, with the text's quotes and
/// backslashes escaped (RFC 7234's warn-text is a quoted string).
pub(crate) fn warning_header(text: &str) -> http::HeaderValue {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c if c.is_control() => vec![' '],
            c => vec![c],
        })
        .collect();
    http::HeaderValue::from_str(&format!("299 - \"{escaped}\""))
        .unwrap_or_else(|_| http::HeaderValue::from_static("299 - \"(unprintable warning)\""))
}

/// An answer with `value` in `output`, `code` and a `Warning` header per warning.
pub(crate) fn object(
    code: u16,
    value: &Value,
    output: Output,
    pretty: bool,
    warnings: &[String],
) -> http::Response<RestBody> {
    let (content_type, bytes) = encode(value, output, pretty);
    let mut builder = http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type);
    for warning in warnings {
        builder = builder.header("Warning", warning_header(warning));
    }
    builder
        .body(full(bytes))
        .expect("a status code and headers from the server are valid")
}

/// A plain-text answer (`/healthz`).
pub(crate) fn text(code: u16, text: String) -> http::Response<RestBody> {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(full(text))
        .expect("a static response is valid")
}

/// A failure: the Status as JSON with its code; 429 carries `Retry-After`.
pub(crate) fn error(err: &ApiError) -> http::Response<RestBody> {
    let body = serde_json::to_vec(&err.to_json()).expect("a Value always encodes");
    let mut builder = http::Response::builder()
        .status(
            http::StatusCode::from_u16(err.code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        )
        .header(http::header::CONTENT_TYPE, "application/json");
    if err.reason == Reason::TooManyRequests {
        builder = builder.header(http::header::RETRY_AFTER, RETRY_AFTER_SECONDS);
    }
    builder
        .body(full(body))
        .expect("a status code and headers from the server are valid")
}

/// An object's PartialObjectMetadata: its kind, apiVersion and metadata only.
pub(crate) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"].clone(),
    })
}

/// The 404 of a path that names nothing served, as the Kubernetes API server words it.
pub(crate) fn not_found() -> ApiError {
    ApiError::new(
        Reason::NotFound,
        "the server could not find the requested resource",
    )
}

/// The 405 of a verb a resource does not serve.
pub(crate) fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_quoted_with_escapes() {
        assert_eq!(
            warning_header("unknown field \"spec.x\""),
            "299 - \"unknown field \\\"spec.x\\\"\""
        );
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let err = ApiError::new(Reason::TooManyRequests, "too many requests");
        let response = error(&err);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
        assert_eq!(error(&not_found()).status(), 404);
    }
}
