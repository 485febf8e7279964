//! `pods/log` and `pods/exec`: the API server finds the pod's node and
//! proxies the request to that node's kubelet, as Kubernetes' API server does
//! (<https://kubernetes.io/docs/concepts/architecture/control-plane-node-communication/#api-server-to-kubelet>).
//!
//! A request travels: the `Logs` or `Exec` RPC → the Pod (NotFound if it is
//! not there; BadRequest "pod X does not have a host assigned" if it is not
//! bound) → the container, defaulted as Kubernetes does → the Node's address
//! (InternalIP, else Hostname) and kubelet port
//! (`status.daemonEndpoints.kubeletEndpoint.port`, else 10250) → one HTTP/1.1
//! request to the kubelet → its answer streamed back.
//!
//! # The kubelet's contract
//! As the real kubelet's server, in plain HTTP:
//! - `GET /containerLogs/{namespace}/{pod}/{container}?follow=true&previous=true&tailLines=N&timestamps=true&limitBytes=N&sinceSeconds=N`
//!   answers 200 with the log as plain text (chunked while `follow` keeps it
//!   open), or an error status whose body is the message.
//! - `POST /exec/{namespace}/{pod}/{container}?command=a&command=b&…&tty=true` runs
//!   the command to completion; the request body is the command's stdin, and
//!   `tty=true` asks for a terminal.
//!   It answers 200 with JSON `{"exitCode": N, "stdout": "…", "stderr": "…"}`,
//!   or an error status whose body is the message.
//!
//! A kubelet's 400 and 404 come back as BadRequest and NotFound with its
//! message; other failures, and a kubelet that cannot be reached, as
//! InternalError.
//!
//! # Layout
//! - `location`: pure functions: the pod's node, the container, the kubelet's address.
//! - `http`: the small HTTP/1.1 client that talks to the kubelet.
//!
//! # Caveats
//! Exec is not interactive: stdin is read until the client closes it, then
//! the command runs, then its output comes back whole; with `tty` the
//! kubelet runs it on a terminal where its runtime can (containerd), with no
//! resizing and no interactive echo to the client. Real kubelets speak SPDY or WebSocket streams there. `limitBytes`
//! is also enforced here; `sinceSeconds` is passed on and honoured only if
//! the kubelet does. No TLS or authentication to the kubelet.

mod http;
mod location;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde::de::DeserializeOwned;
use skiff_api::resources;
use skiff_api::status::{ApiError, Reason};
use skiff_proto::api::{exec_response, ExecRequest, ExecResponse, LogChunk, LogRequest};
use tonic::Status;

use crate::registry::Registry;

/// The most stdin an exec may send, since it is held until the command runs.
const MAX_STDIN_BYTES: usize = 16 * 1024 * 1024;

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

/// What the kubelet answers to an exec.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecOutput {
    exit_code: i32,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
}

/// The `Exec` RPC after its first message `first`: reads stdin (when asked)
/// from `rest`, runs the command through the kubelet and answers its output
/// and exit code.
pub(crate) async fn exec(
    registry: &Registry,
    pod: &PodRef<'_>,
    first: &ExecRequest,
    rest: tonic::Streaming<ExecRequest>,
) -> Result<Vec<ExecResponse>, ApiError> {
    if first.command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let target = locate(registry, pod, &first.container).await?;
    let stdin = match first.stdin {
        true => read_stdin(first, rest).await?,
        false => Vec::new(),
    };
    let mut query: Vec<String> = first
        .command
        .iter()
        .map(|arg| format!("command={}", percent_encode(arg)))
        .collect();
    if first.tty {
        query.push("tty=true".to_string());
    }
    let path = format!(
        "/exec/{}/{}/{}?{}",
        pod.namespace,
        pod.name,
        target.container,
        query.join("&")
    );
    let answer = call(&target.authority, "POST", &path, &stdin).await?;
    let text = answer
        .text()
        .await
        .map_err(|e| ApiError::internal(format!("reading the kubelet's answer to exec: {e}")))?;
    let output: ExecOutput = serde_json::from_str(&text)
        .map_err(|e| ApiError::internal(format!("the kubelet's answer to exec: {e}")))?;
    let mut frames = Vec::new();
    if !output.stdout.is_empty() {
        frames.push(exec_response::Frame::Stdout(output.stdout.into_bytes()));
    }
    if !output.stderr.is_empty() {
        frames.push(exec_response::Frame::Stderr(output.stderr.into_bytes()));
    }
    frames.push(exec_response::Frame::ExitCode(output.exit_code));
    Ok(frames
        .into_iter()
        .map(|frame| ExecResponse { frame: Some(frame) })
        .collect())
}

/// Stdin: the first message's bytes, then every later message's, until the
/// client closes its side.
async fn read_stdin(
    first: &ExecRequest,
    mut rest: tonic::Streaming<ExecRequest>,
) -> Result<Vec<u8>, ApiError> {
    let mut stdin = first.stdin_data.clone();
    while let Some(message) = rest
        .message()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading stdin: {}", e.message())))?
    {
        stdin.extend_from_slice(&message.stdin_data);
        if stdin.len() > MAX_STDIN_BYTES {
            return Err(ApiError::too_large(format!(
                "stdin is limited to {MAX_STDIN_BYTES} bytes"
            )));
        }
    }
    Ok(stdin)
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
    let reason = match response.status {
        200..=299 => return Ok(response),
        400 => Reason::BadRequest,
        404 => Reason::NotFound,
        _ => Reason::InternalError,
    };
    let message = response.text().await.unwrap_or_default();
    Err(ApiError::new(reason, message.trim_end().to_string()))
}

/// Escapes a query value: everything but unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Encodes frames as the RPC's stream.
pub(crate) fn exec_stream(
    frames: Vec<ExecResponse>,
) -> BoxStream<'static, Result<ExecResponse, Status>> {
    futures::stream::iter(frames.into_iter().map(Ok)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_arguments_are_escaped_for_the_query() {
        assert_eq!(percent_encode("echo a&b=c"), "echo%20a%26b%3Dc");
        assert_eq!(percent_encode("ls-1_x.y~"), "ls-1_x.y~");
    }

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
