//! `pods/log` and `pods/exec`: the API server finds the pod's node and
//! proxies the request to that node's kubelet, as Kubernetes' API server does
//! (<https://kubernetes.io/docs/concepts/architecture/control-plane-node-communication/#api-server-to-kubelet>).
//!
//! A request travels: the `Logs` or `Exec` RPC → the Pod (NotFound if it is
//! not there; BadRequest "pod X does not have a host assigned" if it is not
//! bound) → the container, defaulted as Kubernetes does → the Node's address
//! (InternalIP, else Hostname) and kubelet port
//! (`status.daemonEndpoints.kubeletEndpoint.port`, else 10250) → one HTTP/1.1
//! request to the kubelet → its answer streamed back (logs), or a connection
//! upgraded to a stream both ways for as long as the command runs (exec).
//!
//! # The kubelet's contract
//! As the real kubelet's server, in plain HTTP:
//! - `GET /containerLogs/{namespace}/{pod}/{container}?follow=true&previous=true&tailLines=N&timestamps=true&limitBytes=N&sinceSeconds=N`
//!   answers 200 with the log as plain text (chunked while `follow` keeps it
//!   open), or an error status whose body is the message.
//! - `POST /exec/{namespace}/{pod}/{container}?command=a&command=b&…&stdin=true&tty=true`
//!   with `Connection: Upgrade` and `Upgrade: skiff-channel/1` answers
//!   `101 Switching Protocols` and runs the command, the connection carrying
//!   skiff-proto's `channel` frames (stdin, stdout, stderr, resize, the exit
//!   status) until it ends; or an error status whose body is the message.
//!
//! A kubelet's 400 and 404 come back as BadRequest and NotFound with its
//! message; other failures, and a kubelet that cannot be reached, as
//! InternalError.
//!
//! # Layout
//! - `location`: pure functions: the pod's node, the container, the kubelet's address.
//! - `http`: the small HTTP/1.1 client that talks to the kubelet.
//! - `exec`: the `Exec` RPC's messages to and from channel frames.
//!
//! # Caveats
//! Exec uses skiff's own framing on the upgraded connection where real
//! kubelets speak SPDY or WebSocket (the channel numbers and payloads are
//! Kubernetes'), so it reaches skiff's kubelet only. `limitBytes`
//! is also enforced here; `sinceSeconds` is passed on and honoured only if
//! the kubelet does. No TLS or authentication to the kubelet.

mod exec;
mod http;
mod location;

pub(crate) use exec::exec;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde::de::DeserializeOwned;
use skiff_api::resources;
use skiff_api::status::{ApiError, Reason};
use skiff_proto::api::{LogChunk, LogRequest};
use tonic::Status;

use crate::registry::Registry;

/// Which pod a request is about.
pub(crate) struct PodRef<'a> {
    /// The pod's namespace.
    pub(crate) namespace: &'a str,
    /// The pod's name.
    pub(crate) name: &'a str,
}

/// The kubelet serving a pod, and the container a request means.
struct Target {
    authority: String,
    container: String,
}

/// Finds the kubelet and container for `container` of the pod `pod`.
async fn locate(
    registry: &Registry,
    pod: &PodRef<'_>,
    container: &str,
) -> Result<Target, ApiError> {
    let found: Pod = read(registry, "pods", pod.namespace, pod.name).await?;
    let node_name = location::node_name(&found)?;
    let container = location::container_for(&found, container)?;
    let node: Node = read(registry, "nodes", "", node_name).await?;
    Ok(Target {
        authority: location::kubelet_authority(&node)?,
        container,
    })
}

async fn read<T: DeserializeOwned>(
    registry: &Registry,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Result<T, ApiError> {
    let served = resources::by_gvr("", "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} are not served")))?;
    let object = registry.get(served, namespace, name, "").await?;
    serde_json::from_value(object)
        .map_err(|e| ApiError::internal(format!("the stored {} {name}: {e}", served.kind)))
}

/// The `Logs` RPC: the container's log as the kubelet streams it.
pub(crate) async fn logs(
    registry: &Registry,
    pod: &PodRef<'_>,
    req: &LogRequest,
) -> Result<BoxStream<'static, Result<LogChunk, Status>>, ApiError> {
    let target = locate(registry, pod, &req.container).await?;
    let mut query = Vec::new();
    for (key, on) in [
        ("follow", req.follow),
        ("previous", req.previous),
        ("timestamps", req.timestamps),
    ] {
        if on {
            query.push(format!("{key}=true"));
        }
    }
    for (key, value) in [
        ("tailLines", req.tail_lines),
        ("limitBytes", req.limit_bytes),
        ("sinceSeconds", req.since_seconds),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={value}"));
        }
    }
    let mut path = format!(
        "/containerLogs/{}/{}/{}",
        pod.namespace, pod.name, target.container
    );
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let response = call(&target.authority, "GET", &path, &[]).await?;
    let chunks = response.body.map(|piece| match piece {
        Ok(data) => Ok(LogChunk {
            data: data.to_vec(),
        }),
        Err(e) => Err(Status::unavailable(format!(
            "reading the kubelet's log: {e}"
        ))),
    });
    Ok(match req.limit_bytes {
        Some(limit) => limit_bytes(chunks, limit.max(0) as usize),
        None => chunks.boxed(),
    })
}

/// The first `limit` bytes of `chunks`, then the end.
fn limit_bytes(
    chunks: impl futures::Stream<Item = Result<LogChunk, Status>> + Send + 'static,
    limit: usize,
) -> BoxStream<'static, Result<LogChunk, Status>> {
    chunks
        .scan(limit, |left, chunk| {
            let chunk = match chunk {
                Ok(_) if *left == 0 => return futures::future::ready(None),
                Ok(mut chunk) => {
                    chunk.data.truncate(*left);
                    *left -= chunk.data.len();
                    Ok(chunk)
                }
                Err(e) => Err(e),
            };
            futures::future::ready(Some(chunk))
        })
        .boxed()
}

/// Sends one request to a kubelet; its error statuses become ApiErrors.
async fn call(
    authority: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<http::Response, ApiError> {
    let url = format!("http://{authority}{path}");
    let verb = match method {
        "GET" => "Get",
        _ => "Post",
    };
    let response = http::request(authority, method, path, body)
        .await
        .map_err(|e| ApiError::internal(format!("{verb} {url:?}: {e}")))?;
    match response.status {
        200..=299 => Ok(response),
        _ => Err(refusal(response).await),
    }
}

/// A kubelet's error answer as an ApiError: 400 and 404 keep their meaning
/// and message, anything else is InternalError.
async fn refusal(response: http::Response) -> ApiError {
    let reason = match response.status {
        400 => Reason::BadRequest,
        404 => Reason::NotFound,
        _ => Reason::InternalError,
    };
    let message = response.text().await.unwrap_or_default();
    ApiError::new(reason, message.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limit_bytes_cuts_the_stream_inside_a_chunk() {
        let chunks = futures::stream::iter(["abc", "def", "ghi"].map(|s| {
            Ok(LogChunk {
                data: s.as_bytes().to_vec(),
            })
        }));
        let kept: Vec<Vec<u8>> = limit_bytes(chunks, 5)
            .map(|c| c.expect("no error").data)
            .collect()
            .await;
        assert_eq!(kept, [b"abc".to_vec(), b"de".to_vec()]);
    }
}
