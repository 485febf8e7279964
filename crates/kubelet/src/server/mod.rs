//! The kubelet's own HTTP server (Kubernetes' port 10250), which the API
//! server reaches for `pods/log` and `pods/exec`:
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}?tailLines=N&previous=true&follow=true&timestamps=true`:
//!   the container's output as plain text, read from its CRI-format log.
//!   `previous` reads the attempt before the current one; `follow` keeps the
//!   response open and streams new lines.
//! - `POST /exec/{namespace}/{pod}/{container}?command=…&command=…&stdin=true&tty=true`
//!   with `Connection: Upgrade` and `Upgrade: skiff-channel/1`: runs the
//!   command in the container and, once answered `101 Switching Protocols`,
//!   streams its stdin, output, resizes and exit status over the connection
//!   (`exec`, with skiff-proto's `channel` framing).
//! - `GET /pods`: the pods bound to this node, as a PodList.
//! - `GET /healthz`: `ok`.
//!
//! The node's status carries the port in `daemonEndpoints.kubeletEndpoint`.
//!
//! # Caveats
//! Plain HTTP with no authentication; exec speaks skiff's own channel
//! framing on the upgraded connection, not SPDY or WebSocket, so only the
//! API server (or another skiff client) can use it; no attach or
//! port-forward; a followed log stays open until the client goes, even
//! after the container ends.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_client::Store;
use tokio_util::sync::CancellationToken;

use crate::context::Kubelet;
use crate::logs::{self, LogOptions};
use crate::runtime::{labels, ContainerStatus};

mod exec;

#[derive(Clone)]
struct AppState {
    kubelet: Arc<Kubelet>,
    pods: Store<Pod>,
}

/// A refusal: a status code and a message.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// The server's routes.
pub(crate) fn router(kubelet: Arc<Kubelet>, pods: Store<Pod>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(list_pods))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            post(exec::exec).get(exec::exec),
        )
        .with_state(AppState { kubelet, pods })
}

/// Serves `router` on `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) {
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = served {
        tracing::warn!(%error, "the kubelet server stopped");
    }
}

async fn list_pods(State(state): State<AppState>) -> Response {
    let items: Vec<Pod> = state.pods.list().iter().map(|p| (**p).clone()).collect();
    json_response(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}))
}

fn json_response(value: serde_json::Value) -> Response {
    let content_type = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (content_type, value.to_string()).into_response()
}

/// The query's values by key, repeated keys kept in order.
fn query_values(query: &Option<String>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (a space) in a query component.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn flag(values: &[(String, String)], key: &str) -> bool {
    values
        .iter()
        .any(|(k, v)| k == key && (v == "true" || v == "1"))
}

fn number(values: &[(String, String)], key: &str) -> Option<u64> {
    values
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// The pod, and the attempts of one of its containers, newest first.
async fn find(
    state: &AppState,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<(Arc<Pod>, Vec<ContainerStatus>), Refusal> {
    let found = state.pods.get(namespace, pod).ok_or_else(|| {
        Refusal(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod} not found on this node"),
        )
    })?;
    let uid = found.metadata.uid.clone().unwrap_or_default();
    let listed = state.kubelet.runtime.list_containers().await;
    let listed = listed.map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut attempts: Vec<ContainerStatus> = listed
        .into_iter()
        .filter(|c| c.labels.get(labels::POD_UID) == Some(&uid) && c.name == container)
        .collect();
    attempts.sort_by_key(|c| std::cmp::Reverse(c.attempt));
    if attempts.is_empty() {
        let message = format!("container {container:?} in pod {pod:?} is waiting to start");
        return Err(Refusal(StatusCode::BAD_REQUEST, message));
    }
    Ok((found, attempts))
}

async fn container_logs(
    State(state): State<AppState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, Refusal> {
    let values = query_values(&query);
    let (found, attempts) = find(&state, &namespace, &pod, &container).await?;
    let chosen = match flag(&values, "previous") {
        true => attempts.get(1).ok_or_else(|| {
            let message =
                format!("previous terminated container {container:?} in pod {pod:?} not found");
            Refusal(StatusCode::BAD_REQUEST, message)
        })?,
        false => &attempts[0],
    };
    let path = logs::container_log_path(
        &state.kubelet.pod_log_dir(&found),
        &container,
        chosen.attempt,
    );
    let options = LogOptions {
        tail_lines: number(&values, "tailLines").and_then(|n| usize::try_from(n).ok()),
        timestamps: flag(&values, "timestamps"),
    };
    let content = tokio::fs::read(&path).await.unwrap_or_default();
    let text = logs::render(&String::from_utf8_lossy(&content), options);
    if !flag(&values, "follow") {
        return Ok(text.into_response());
    }
    let follower = logs::Follower::new(path, content.len() as u64, options);
    let first = futures::stream::once(async move { Ok::<_, std::io::Error>(text) });
    let rest = futures::stream::unfold(follower, |mut follower| async move {
        let next = follower.next().await;
        Some((next, follower))
    });
    Ok(Body::from_stream(futures::StreamExt::chain(first, rest)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_repeated_keys_and_decode_escapes() {
        let query = Some("command=sh&command=-c&command=echo+a%26b&tailLines=5".to_string());
        let values = query_values(&query);
        let commands: Vec<&str> = values
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(commands, ["sh", "-c", "echo a&b"]);
        assert_eq!(number(&values, "tailLines"), Some(5));
        assert_eq!(percent_decode("100%"), "100%");
    }
}
