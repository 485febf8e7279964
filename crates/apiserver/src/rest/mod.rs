//! Kubernetes' REST API over the [`Registry`]: what kubectl, client-go and
//! kube-rs speak.
//!
//! [`Rest::handle`] takes any HTTP request (its body of any `http_body::Body`
//! type, so the same handler serves TCP, TLS and in-memory connections) and
//! answers it as the Kubernetes API server would.
//!
//! # Caveats
//! Not served yet: every path answers 404 with a Kubernetes Status.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use skiff_api::status::ApiError;

use crate::registry::Registry;

pub(crate) mod openapi;

/// The body of every REST answer: whole JSON documents, or a stream of
/// watch events.
pub type RestBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// The REST front end of one registry. Cheap to clone.
#[derive(Clone)]
pub struct Rest {
    #[allow(dead_code)]
    registry: Arc<Registry>,
}

impl Rest {
    /// The REST API of `registry`.
    pub fn new(registry: Arc<Registry>) -> Rest {
        Rest { registry }
    }

    /// Answers one request.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<RestBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        if let Some((content_type, body)) =
            openapi::document(request.uri().path(), request.uri().query())
        {
            return http::Response::builder()
                .header(http::header::CONTENT_TYPE, content_type)
                .body(
                    Full::new(body)
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                )
                .expect("a static response is valid");
        }
        let err = ApiError::new(
            skiff_api::status::Reason::NotFound,
            format!(
                "the server could not find the requested resource ({})",
                request.uri().path()
            ),
        );
        let body = serde_json::to_vec(&err.to_json()).expect("a Value always encodes");
        http::Response::builder()
            .status(err.reason.code())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("a static response is valid")
    }
}
