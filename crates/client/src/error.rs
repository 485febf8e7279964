//! The client's one error type.
//!
//! A request the API server refused carries the Kubernetes `Status` it
//! answered with ([`Error::Api`]): callers match on its reason (`NotFound`,
//! `Conflict`, `AlreadyExists`, `Expired`, …) exactly as a client-go user checks
//! `apierrors.IsNotFound`. Everything else — the connection, a gRPC status with
//! no Status inside, an object that does not decode — has its own variant.

use skiff_api::status::{ApiError, Reason};

/// Anything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused the request with this Kubernetes Status.
    #[error("{0}")]
    Api(ApiError),
    /// The gRPC call failed without a Kubernetes Status (the server is
    /// unreachable, the stream broke, …).
    #[error("the API call failed: {0}")]
    Rpc(#[from] tonic::Status),
    /// The connection to the API server could not be set up.
    #[error("cannot connect to the API server: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// An object or list from the server (or given to the client) did not
    /// encode or decode as the expected kind.
    #[error("{what}: {source}")]
    Json {
        /// What was being encoded or decoded.
        what: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// A patch type the API server does not serve.
    #[error("skiff does not serve {0}")]
    UnsupportedPatch(&'static str),
    /// A configuration the client cannot work with; the text says what is wrong.
    #[error("{0}")]
    InvalidConfig(String),
    /// An object given to a call that needs its name has none.
    #[error("{kind} has no metadata.name")]
    MissingName {
        /// The kind of the object.
        kind: String,
    },
}

impl Error {
    /// The Kubernetes Status, if the server refused the request.
    pub fn status(&self) -> Option<&ApiError> {
        match self {
            Error::Api(status) => Some(status),
            _ => None,
        }
    }

    /// The Status reason, if the server refused the request.
    pub fn reason(&self) -> Option<Reason> {
        self.status().map(|s| s.reason)
    }

    /// 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.reason() == Some(Reason::NotFound)
    }

    /// 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.reason() == Some(Reason::AlreadyExists)
    }

    /// 409 Conflict: a resourceVersion or uid precondition failed.
    pub fn is_conflict(&self) -> bool {
        self.reason() == Some(Reason::Conflict)
    }

    /// 410 Expired (or Gone): the resourceVersion asked for is older than what
    /// the server keeps; list again.
    pub fn is_expired(&self) -> bool {
        matches!(self.reason(), Some(Reason::Expired | Reason::Gone))
    }

    /// Decoding or encoding `what` failed.
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Error {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}

/// The error a watch's ERROR event stands for. kube-core decodes the event's
/// Status (dropping its `kind`); skiff's [`ApiError`] reads it back.
pub(crate) fn from_watch_status(status: &kube_core::Status) -> Error {
    let api = serde_json::to_value(status)
        .ok()
        .and_then(|mut json| {
            json["kind"] = "Status".into();
            ApiError::from_json(&json).ok()
        })
        .unwrap_or_else(|| ApiError::internal(status.message.clone()));
    Error::Api(api)
}

/// The client's error for a failed gRPC call: the Kubernetes Status the
/// server put in the details, or the bare gRPC status when there is none.
pub(crate) fn from_grpc(status: tonic::Status) -> Error {
    match skiff_api::status::grpc::from_status(&status) {
        Some(api) => Error::Api(api),
        None => Error::Rpc(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_in_the_details_becomes_an_api_error() {
        let status = ApiError::expired(3, 9);
        let err = from_grpc(skiff_api::status::grpc::to_status(&status));
        assert!(err.is_expired());
        assert_eq!(err.status(), Some(&status));
        assert_eq!(err.to_string(), "too old resource version: 3 (9)");
    }

    #[test]
    fn a_bare_grpc_status_stays_an_rpc_error() {
        let err = from_grpc(tonic::Status::unavailable("connection refused"));
        assert!(matches!(err, Error::Rpc(_)));
        assert_eq!(err.reason(), None);
        assert!(!err.is_not_found());
    }
}
