//! The REST API's behaviour, driven through [`Rest::handle`] with in-memory
//! requests over a registry on the in-process store.
//!
//! # Layout
//! - `mod.rs`: the [`Server`] fixture and its [`Answer`]s.
//! - `verbs.rs`: get, list, create, update, patch, delete, deletecollection,
//!   subresources, and their query parameters.
//! - `errors.rs`: each failure's code and message.
//! - `watch.rs`: watch streams.
//! - `discovery.rs`: discovery documents and health.
//! - `kubectl.rs`: the real kubectl against `Rest::handle` over HTTP/1.1.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::Rest;
use crate::registry::tests::fixture::Backend;
use crate::registry::tests::Fixture;
use crate::registry::RegistryConfig;

mod discovery;
mod errors;
mod kubectl;
mod verbs;
mod watch;

/// A REST front end over a fresh, bootstrapped registry.
pub(super) struct Server {
    pub(super) rest: Rest,
    /// Keeps the store alive.
    _fixture: Fixture,
}

/// An answer, read whole.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: http::HeaderMap,
    pub(super) body: Bytes,
}

impl Answer {
    /// The body as JSON; panics with the body when it is not.
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value as text, "" when absent.
    pub(super) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Warning` headers.
    pub(super) fn warnings(&self) -> Vec<&str> {
        self.headers
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

impl Server {
    pub(super) async fn new() -> Server {
        Server::with_config(RegistryConfig::default()).await
    }

    /// A REST front end over a registry set up with `config`.
    pub(super) async fn with_config(config: RegistryConfig) -> Server {
        let fixture = Fixture::with_config(Backend::Local, config).await;
        Server {
            rest: Rest::new(fixture.registry.clone()),
            _fixture: fixture,
        }
    }

    /// The raw answer to a request (its body not yet read).
    pub(super) async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> http::Response<super::RestBody> {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body.into()))
            .expect("a valid test request");
        self.rest.handle(request).await
    }

    /// Sends a request and reads the whole answer.
    pub(super) async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let response = self.send(method, uri, headers, body).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a whole body")
            .to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(super) async fn get(&self, uri: &str) -> Answer {
        self.call("GET", uri, &[], Bytes::new()).await
    }

    /// POSTs (or PUTs) a JSON value.
    pub(super) async fn write(&self, method: &str, uri: &str, value: &Value) -> Answer {
        let body = serde_json::to_vec(value).expect("a Value always encodes");
        self.call(method, uri, &[("content-type", "application/json")], body)
            .await
    }

    /// PATCHes with a patch content type.
    pub(super) async fn patch(&self, uri: &str, content_type: &str, patch: &str) -> Answer {
        self.call(
            "PATCH",
            uri,
            &[("content-type", content_type)],
            patch.to_string(),
        )
        .await
    }

    pub(super) async fn delete(&self, uri: &str) -> Answer {
        self.call("DELETE", uri, &[], Bytes::new()).await
    }
}

/// A ConfigMap named `name` with `labels`.
pub(super) fn config_map(name: &str, labels: Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    })
}

/// A Deployment of `replicas` nginx pods labelled `app=<name>`.
pub(super) fn deployment(name: &str, replicas: i64) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    })
}

pub(super) const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
