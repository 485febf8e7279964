//! Errors as Kubernetes `Status` objects.
//!
//! Every failed request answers with a `Status`: an HTTP-like `code`, a
//! machine-readable `reason` (`NotFound`, `Conflict`, …), a human `message`
//! worded exactly as Kubernetes words it (clients and people grep for these),
//! and `details` naming the object and, for `Invalid`, each bad field.
//! See <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/>.
//!
//! # Caveats
//! `retryAfterSeconds` and `details.uid` are not produced.

use std::fmt;

use serde_json::{json, Map, Value};

use crate::admission::FieldError;
use crate::resources::Resource;

/// Why a request failed, as Kubernetes' `metav1.StatusReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 404: the object does not exist.
    NotFound,
    /// 409: an object of that name exists already.
    AlreadyExists,
    /// 409: a precondition (resourceVersion, uid) no longer holds.
    Conflict,
    /// 422: the object fails validation; `details.causes` names each field.
    Invalid,
    /// 400: the request itself is malformed.
    BadRequest,
    /// 410: the requested resourceVersion is older than what is kept.
    Expired,
    /// 410: the resource is gone.
    Gone,
    /// 405: the verb is not served for this resource.
    MethodNotAllowed,
    /// 403: the request is not allowed (such as creating in a terminating namespace).
    Forbidden,
    /// 500: the server failed.
    InternalError,
    /// 504: the request did not finish in time.
    Timeout,
    /// 429: too many requests; try again later.
    TooManyRequests,
    /// 413: the request body is too large.
    RequestEntityTooLarge,
    /// 415: the request body's content type is not one the server reads.
    UnsupportedMediaType,
    /// 406: none of the content types the client accepts can be produced.
    NotAcceptable,
}

impl Reason {
    /// The reason as it appears in a Status (`"NotFound"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Invalid => "Invalid",
            Reason::BadRequest => "BadRequest",
            Reason::Expired => "Expired",
            Reason::Gone => "Gone",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::Forbidden => "Forbidden",
            Reason::InternalError => "InternalError",
            Reason::Timeout => "Timeout",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::NotAcceptable => "NotAcceptable",
        }
    }

    /// The HTTP status code Kubernetes answers with for this reason.
    pub fn code(self) -> u16 {
        match self {
            Reason::NotFound => 404,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Invalid => 422,
            Reason::BadRequest => 400,
            Reason::Expired | Reason::Gone => 410,
            Reason::MethodNotAllowed => 405,
            Reason::Forbidden => 403,
            Reason::InternalError => 500,
            Reason::Timeout => 504,
            Reason::TooManyRequests => 429,
            Reason::RequestEntityTooLarge => 413,
            Reason::UnsupportedMediaType => 415,
            Reason::NotAcceptable => 406,
        }
    }

    /// Parses a reason as it appears in a Status.
    pub fn parse(text: &str) -> Option<Reason> {
        ALL_REASONS.iter().copied().find(|r| r.as_str() == text)
    }
}

const ALL_REASONS: &[Reason] = &[
    Reason::NotFound,
    Reason::AlreadyExists,
    Reason::Conflict,
    Reason::Invalid,
    Reason::BadRequest,
    Reason::Expired,
    Reason::Gone,
    Reason::MethodNotAllowed,
    Reason::Forbidden,
    Reason::InternalError,
    Reason::Timeout,
    Reason::TooManyRequests,
    Reason::RequestEntityTooLarge,
    Reason::UnsupportedMediaType,
    Reason::NotAcceptable,
];

/// One cause in `details.causes`: a field and what is wrong with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cause {
    /// Machine-readable, such as `FieldValueRequired`.
    pub reason: String,
    /// Human-readable, such as `Required value`.
    pub message: String,
    /// The field path, such as `spec.containers[0].image`.
    pub field: String,
}

/// `details` of a Status: which object, and for `Invalid` which fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    /// The object's name.
    pub name: String,
    /// The API group of its resource.
    pub group: String,
    /// The resource ("pods") or, for `Invalid`, the kind ("Pod"), as Kubernetes fills it.
    pub kind: String,
    /// The causes, one per invalid field.
    pub causes: Vec<Cause>,
}

/// A failed request: a Kubernetes `Status` with `status: Failure`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP-like code (404, 409, …).
    pub code: u16,
    /// Why.
    pub reason: Reason,
    /// Kubernetes' message text.
    pub message: String,
    /// Which object, and which fields (boxed: errors travel in every `Result`).
    pub details: Option<Box<Details>>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(resource: &Resource, name: &str) -> Option<Box<Details>> {
    Some(Box::new(Details {
        name: name.to_string(),
        group: resource.group.to_string(),
        kind: resource.resource.to_string(),
        causes: Vec::new(),
    }))
}

impl ApiError {
    /// An error with `reason`'s code, a message and no details.
    pub fn new(reason: Reason, message: impl Into<String>) -> ApiError {
        ApiError {
            code: reason.code(),
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// `pods "web" not found`.
    pub fn not_found(resource: &Resource, name: &str) -> ApiError {
        ApiError {
            details: details(resource, name),
            ..ApiError::new(
                Reason::NotFound,
                format!("{} \"{name}\" not found", resource.qualified_name()),
            )
        }
    }

    /// `pods "web" already exists`.
    pub fn already_exists(resource: &Resource, name: &str) -> ApiError {
        ApiError {
            details: details(resource, name),
            ..ApiError::new(
                Reason::AlreadyExists,
                format!("{} \"{name}\" already exists", resource.qualified_name()),
            )
        }
    }

    /// `Operation cannot be fulfilled on pods "web": <why>`.
    pub fn conflict(resource: &Resource, name: &str, why: &str) -> ApiError {
        ApiError {
            details: details(resource, name),
            ..ApiError::new(
                Reason::Conflict,
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    resource.qualified_name()
                ),
            )
        }
    }

    /// The Conflict of an update whose resourceVersion is stale.
    pub fn stale(resource: &Resource, name: &str) -> ApiError {
        ApiError::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `Pod "web" is invalid: spec.containers[0].image: Required value`; with
    /// several errors they are listed in brackets, as Kubernetes does.
    pub fn invalid(resource: &Resource, name: &str, errors: &[FieldError]) -> ApiError {
        let listed = match errors {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.kind.cause_reason().to_string(),
                message: e.to_string(),
                field: e.field.clone(),
            })
            .collect();
        ApiError {
            code: Reason::Invalid.code(),
            reason: Reason::Invalid,
            message: format!("{} \"{name}\" is invalid: {listed}", resource.kind),
            details: Some(Box::new(Details {
                name: name.to_string(),
                group: resource.group.to_string(),
                kind: resource.kind.to_string(),
                causes,
            })),
        }
    }

    /// `pods "web" is forbidden: <why>`.
    pub fn forbidden(resource: &Resource, name: &str, why: &str) -> ApiError {
        ApiError {
            details: details(resource, name),
            ..ApiError::new(
                Reason::Forbidden,
                format!(
                    "{} \"{name}\" is forbidden: {why}",
                    resource.qualified_name()
                ),
            )
        }
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Reason::BadRequest, message)
    }

    /// A watch or list from a resourceVersion older than what is kept:
    /// `too old resource version: 5 (10)` (asked, oldest kept).
    pub fn expired(requested: i64, oldest: i64) -> ApiError {
        ApiError::new(
            Reason::Expired,
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// A server-side failure.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            Reason::InternalError,
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// A verb not served for this resource or subresource.
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(Reason::MethodNotAllowed, message)
    }

    /// A request body over the limit.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(Reason::RequestEntityTooLarge, message)
    }

    /// The Status object, as Kubernetes sends it.
    pub fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = Map::new();
            for (field, value) in [("name", &d.name), ("group", &d.group), ("kind", &d.kind)] {
                if !value.is_empty() {
                    details.insert(field.into(), Value::String(value.clone()));
                }
            }
            if !d.causes.is_empty() {
                let causes = d
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            status["details"] = Value::Object(details);
        }
        status
    }

    /// Reads a Status object back; the error says what is missing.
    pub fn from_json(status: &Value) -> Result<ApiError, String> {
        if status.get("kind").and_then(Value::as_str) != Some("Status") {
            return Err("not a Status object: kind is not \"Status\"".into());
        }
        let text = |v: &Value, field: &str| {
            v.get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let reason_text = text(status, "reason");
        let reason = Reason::parse(&reason_text)
            .ok_or_else(|| format!("Status has an unknown reason {reason_text:?}"))?;
        let code = status
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or_else(|| reason.code());
        let details = status.get("details").map(|d| {
            Box::new(Details {
                name: text(d, "name"),
                group: text(d, "group"),
                kind: text(d, "kind"),
                causes: d
                    .get("causes")
                    .and_then(Value::as_array)
                    .map(|causes| {
                        causes
                            .iter()
                            .map(|c| Cause {
                                reason: text(c, "reason"),
                                message: text(c, "message"),
                                field: text(c, "field"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        });
        Ok(ApiError {
            code,
            reason,
            message: text(status, "message"),
            details,
        })
    }
}

/// The gRPC side of a Status: skiff's API is served over gRPC, so a refused
/// request travels as a `tonic::Status` whose code follows the reason, whose
/// message is Kubernetes' message, and whose details are the Status object as
/// JSON. The API server encodes with [`grpc::to_status`]; clients and the CLI
/// decode with [`grpc::from_status`]. This is the one place the mapping lives.
pub mod grpc {
    use super::{ApiError, Reason};

    /// The gRPC code a reason travels as, chosen so that a client that reads
    /// only the code still draws the right conclusion (retry, re-list, give up).
    pub fn code(reason: Reason) -> tonic::Code {
        match reason {
            Reason::NotFound => tonic::Code::NotFound,
            Reason::AlreadyExists => tonic::Code::AlreadyExists,
            Reason::Conflict => tonic::Code::Aborted,
            Reason::Invalid
            | Reason::BadRequest
            | Reason::UnsupportedMediaType
            | Reason::NotAcceptable => tonic::Code::InvalidArgument,
            Reason::Expired | Reason::Gone => tonic::Code::OutOfRange,
            Reason::MethodNotAllowed => tonic::Code::Unimplemented,
            Reason::Forbidden => tonic::Code::PermissionDenied,
            Reason::InternalError => tonic::Code::Internal,
            Reason::Timeout => tonic::Code::DeadlineExceeded,
            Reason::TooManyRequests | Reason::RequestEntityTooLarge => {
                tonic::Code::ResourceExhausted
            }
        }
    }

    /// The gRPC status for a Kubernetes error: the code follows the reason,
    /// the message is Kubernetes', and the details are the Status as JSON.
    pub fn to_status(err: &ApiError) -> tonic::Status {
        let details = serde_json::to_vec(&err.to_json()).expect("a Value always encodes");
        tonic::Status::with_details(code(err.reason), err.message.clone(), details.into())
    }

    /// The Kubernetes Status carried in a gRPC status made by [`to_status`];
    /// `None` when the details hold none (the connection failed, a proxy
    /// answered, the stream broke), so the caller decides what that means.
    pub fn from_status(status: &tonic::Status) -> Option<ApiError> {
        serde_json::from_slice::<serde_json::Value>(status.details())
            .ok()
            .and_then(|json| ApiError::from_json(&json).ok())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reasons_travel_as_the_grpc_code_a_client_expects() {
            assert_eq!(code(Reason::NotFound), tonic::Code::NotFound);
            assert_eq!(code(Reason::Conflict), tonic::Code::Aborted);
            assert_eq!(code(Reason::Expired), tonic::Code::OutOfRange);
            assert_eq!(code(Reason::BadRequest), tonic::Code::InvalidArgument);
        }

        #[test]
        fn a_status_survives_the_round_trip_through_grpc() {
            let err = ApiError::expired(3, 9);
            let status = to_status(&err);
            assert_eq!(status.code(), tonic::Code::OutOfRange);
            assert_eq!(status.message(), "too old resource version: 3 (9)");
            assert_eq!(from_status(&status), Some(err));
        }

        #[test]
        fn a_grpc_status_without_details_carries_no_kubernetes_status() {
            assert_eq!(from_status(&tonic::Status::unavailable("refused")), None);
            let garbage = tonic::Status::with_details(tonic::Code::Internal, "x", "{".into());
            assert_eq!(from_status(&garbage), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::FieldErrorKind;
    use crate::resources::{by_gvr, lookup};

    fn pods() -> &'static Resource {
        by_gvr("", "v1", "pods").unwrap()
    }

    #[test]
    fn messages_are_kubernetes_own() {
        assert_eq!(
            ApiError::not_found(pods(), "web").message,
            "pods \"web\" not found"
        );
        assert_eq!(
            ApiError::already_exists(pods(), "web").message,
            "pods \"web\" already exists"
        );
        assert_eq!(
            ApiError::stale(pods(), "web").message,
            "Operation cannot be fulfilled on pods \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(
            ApiError::expired(5, 10).message,
            "too old resource version: 5 (10)"
        );
        assert_eq!(ApiError::expired(5, 10).code, 410);
        let deploy = lookup("deploy").unwrap();
        assert_eq!(
            ApiError::not_found(deploy, "api").message,
            "deployments.apps \"api\" not found"
        );
    }

    #[test]
    fn invalid_names_each_field() {
        let image = FieldError {
            field: "spec.containers[0].image".into(),
            kind: FieldErrorKind::Required,
            detail: String::new(),
        };
        let err = ApiError::invalid(pods(), "web", std::slice::from_ref(&image));
        assert_eq!(
            err.message,
            "Pod \"web\" is invalid: spec.containers[0].image: Required value"
        );
        assert_eq!(err.code, 422);
        let details = err.details.as_ref().unwrap();
        assert_eq!(details.kind, "Pod");
        assert_eq!(details.causes[0].reason, "FieldValueRequired");
        assert_eq!(details.causes[0].field, "spec.containers[0].image");
        let name = FieldError {
            field: "metadata.name".into(),
            kind: FieldErrorKind::Invalid,
            detail: "\"Web\": must be lowercase".into(),
        };
        let two = ApiError::invalid(pods(), "Web", &[image, name]);
        assert_eq!(
            two.message,
            "Pod \"Web\" is invalid: [spec.containers[0].image: Required value, metadata.name: Invalid value: \"Web\": must be lowercase]"
        );
    }

    #[test]
    fn status_round_trips_through_json() {
        let invalid = ApiError::invalid(
            pods(),
            "web",
            &[FieldError {
                field: "spec.containers".into(),
                kind: FieldErrorKind::Required,
                detail: String::new(),
            }],
        );
        for err in [
            ApiError::not_found(pods(), "web"),
            ApiError::stale(pods(), "web"),
            invalid,
            ApiError::expired(1, 7),
            ApiError::too_large("request is too large"),
        ] {
            let json = err.to_json();
            assert_eq!(json["kind"], "Status");
            assert_eq!(json["status"], "Failure");
            assert_eq!(json["code"], err.code);
            assert_eq!(ApiError::from_json(&json).unwrap(), err);
        }
        let json = ApiError::not_found(pods(), "web").to_json();
        assert_eq!(json["details"], json!({"name": "web", "kind": "pods"}));
        assert!(ApiError::from_json(&json!({"kind": "Pod"})).is_err());
    }
}
