//! Kubernetes' REST API over the [`Registry`]: what kubectl, client-go and
//! kube-rs speak.
//!
//! [`Rest::handle`] takes any HTTP request (its body of any `http_body::Body`
//! type, so the same handler serves TCP, TLS and in-memory connections) and
//! answers it as the Kubernetes API server would: the path and method say
//! which resource and verb (Kubernetes' request info), the query parameters
//! and body say how, the registry does it, and the answer is the object, a
//! list, a Table, a stream of watch events, or a `Status`.
//! See <https://kubernetes.io/docs/reference/using-api/api-concepts/>.
//!
//! # Layout
//! - `request_info.rs`: path + method → group, version, namespace, resource,
//!   name, subresource and verb.
//! - `query.rs`: query parameters → the registry's list, watch, write and
//!   delete options, checked as Kubernetes checks them.
//! - `negotiation.rs`: Content-Type of bodies (JSON, YAML, patch types) and
//!   Accept (JSON, YAML, Table, PartialObjectMetadata).
//! - `verbs.rs`: each verb onto its registry method.
//! - `watch.rs`: watch event streams.
//! - `log.rs`: pods/log, streamed from the kubelet through the node proxy.
//! - `discovery.rs`: `/version`, `/api`, `/apis`, resource lists, aggregated
//!   discovery, `/healthz`, `/livez`, `/readyz`.
//! - `response.rs`: answers, `Warning` headers, errors as Status.
//! - `openapi/`: `/openapi/v2` and `/openapi/v3`.
//! - `tests/`: the behaviour through [`Rest::handle`], and kubectl against it.
//!
//! # Where to start
//! [`Rest::handle`]: path → [`request_info`] → `resource_call` → `verbs::serve`.
//!
//! # Caveats
//! No authentication or authorization; no protobuf or CBOR; pods/exec,
//! pods/attach and pods/portforward are not served over REST yet.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use skiff_api::resources::{self, Resource};
use skiff_api::status::ApiError;

use crate::registry::Registry;

mod discovery;
mod log;
mod negotiation;
pub(crate) mod openapi;
mod query;
mod request_info;
mod response;
mod verbs;
mod watch;

#[cfg(test)]
mod tests;

use query::Query;
use request_info::{Path, RequestInfo, Verb};
use response::{method_not_allowed, not_found};

/// The body of every REST answer: whole JSON documents, or a stream of
/// watch events.
pub type RestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// The largest request body read, as the Kubernetes API server's limit.
pub const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;

/// The REST front end of one registry. Cheap to clone.
#[derive(Clone)]
pub struct Rest {
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
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let span = tracing::debug_span!("rest", %method, path);
        let _entered = span.enter();
        if let Some((content_type, body)) =
            openapi::document(request.uri().path(), request.uri().query())
        {
            return http::Response::builder()
                .header(http::header::CONTENT_TYPE, content_type)
                .body(response::full(body))
                .expect("a static response is valid");
        }
        match self.route(request).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::debug!(code = err.code, message = %err.message, "refused");
                response::error(&err)
            }
        }
    }

    async fn route<B>(
        &self,
        request: http::Request<B>,
    ) -> Result<http::Response<RestBody>, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let query = Query::parse(request.uri().query());
        let accept = header(&request, http::header::ACCEPT);
        match RequestInfo::parse(request.uri().path()) {
            Path::Resource(info) => self.resource_call(request, info, query).await,
            Path::GroupVersion { group, version } => {
                let list = discovery::group_version(&group, &version).ok_or_else(not_found)?;
                Ok(response::object(
                    200,
                    &list,
                    negotiation::Output::Json,
                    query.pretty(),
                    &[],
                ))
            }
            Path::NonResource(path) => {
                discovery::serve(&self.registry, &path, &query, accept.as_deref())
                    .await
                    .ok_or_else(not_found)
            }
        }
    }

    /// A request for a resource: checked against what is served, then its verb.
    async fn resource_call<B>(
        &self,
        request: http::Request<B>,
        info: RequestInfo,
        query: Query,
    ) -> Result<http::Response<RestBody>, ApiError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let resource =
            resources::by_gvr(&info.group, &info.version, &info.resource).ok_or_else(not_found)?;
        check_scope(resource, &info)?;
        let verb = info
            .verb(request.method(), query.watch())
            .ok_or_else(method_not_allowed)?;
        tracing::debug!(
            verb = verb.as_str(),
            resource = resource.resource,
            "resource request"
        );
        let accept = header(&request, http::header::ACCEPT);
        let content_type = header(&request, http::header::CONTENT_TYPE);
        let user_agent = header(&request, http::header::USER_AGENT).unwrap_or_default();
        let body = match verb {
            Verb::Get | Verb::List | Verb::Watch => Bytes::new(),
            _ => read_body(request.into_body()).await?,
        };
        verbs::serve(Call {
            registry: self.registry.clone(),
            resource,
            info,
            verb,
            query,
            accept,
            content_type,
            user_agent,
            body,
        })
        .await
    }
}

/// One resource request, read and routed.
pub(crate) struct Call {
    pub(crate) registry: Arc<Registry>,
    pub(crate) resource: &'static Resource,
    pub(crate) info: RequestInfo,
    pub(crate) verb: Verb,
    pub(crate) query: Query,
    pub(crate) accept: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) user_agent: String,
    pub(crate) body: Bytes,
}

/// A header's value as text, if present and printable.
fn header<B>(request: &http::Request<B>, name: http::header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Namespaced resources are named with their namespace, cluster-scoped ones
/// without; lists and watches of a namespaced resource may span all namespaces.
fn check_scope(resource: &Resource, info: &RequestInfo) -> Result<(), ApiError> {
    if !info.subresource.is_empty() && !resource.has_subresource(&info.subresource) {
        return Err(not_found());
    }
    let across_namespaces = info.name.is_empty();
    match (resource.namespaced, info.namespace.is_empty()) {
        (false, false) => Err(not_found()),
        (true, true) if !across_namespaces => Err(not_found()),
        _ => Ok(()),
    }
}

/// Reads a request body of at most [`MAX_REQUEST_BYTES`].
async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    let too_large = || {
        ApiError::too_large(format!(
            "Request entity too large: limit is {MAX_REQUEST_BYTES}"
        ))
    };
    if body.size_hint().lower() > MAX_REQUEST_BYTES as u64 {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > MAX_REQUEST_BYTES {
                return Err(too_large());
            }
            read.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(read))
}
