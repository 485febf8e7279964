//! `/exec`: a command run in a container while its streams flow over the
//! connection, as the real kubelet's streaming server serves `kubectl exec`.
//!
//! The request is checked as any other (the pod on this node, the container
//! running, a command given: 404 or 400 otherwise) and must ask to upgrade
//! to skiff-proto's channel protocol; it is answered `101 Switching
//! Protocols`, and from then on the connection carries frames both ways:
//! stdin, resizes and the end of stdin in; stdout and stderr out as the
//! command writes them, and last its outcome (Kubernetes' `Status`), after
//! which the kubelet closes the connection. A connection that ends early
//! means the caller has gone: the command is killed.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use skiff_proto::channel::{self, Frame, Outcome};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::{find, flag, query_values, AppState, Refusal};
use crate::runtime::{ContainerState, ExecChunk, ExecRequest, ExecStreams, Runtime, TerminalSize};

/// Checks the request, answers 101 and runs the session on the upgraded
/// connection.
pub(super) async fn exec(
    State(state): State<AppState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    mut request: Request,
) -> Result<Response, Refusal> {
    let values = query_values(&query);
    let command: Vec<String> = values
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        let message = "you must specify at least one command";
        return Err(Refusal(StatusCode::BAD_REQUEST, message.into()));
    }
    if !asks_for_channel(request.headers()) {
        let message = format!(
            "exec needs an upgrade to {:?} (Connection: Upgrade, Upgrade: {})",
            channel::PROTOCOL,
            channel::PROTOCOL
        );
        return Err(Refusal(StatusCode::BAD_REQUEST, message));
    }
    let (_, attempts) = find(&state, &namespace, &pod, &container).await?;
    let current = &attempts[0];
    if !matches!(current.state, ContainerState::Running { .. }) {
        let message = format!("container {container:?} in pod {pod:?} is not running");
        return Err(Refusal(StatusCode::BAD_REQUEST, message));
    }
    let exec_request = ExecRequest {
        command,
        tty: flag(&values, "tty"),
        stdin: flag(&values, "stdin"),
        timeout: None,
    };
    let upgrading = hyper::upgrade::on(&mut request);
    let runtime = state.kubelet.runtime.clone();
    let id = current.id.clone();
    tokio::spawn(async move {
        match upgrading.await {
            Ok(upgraded) => session(runtime, id, exec_request, TokioIo::new(upgraded)).await,
            Err(error) => tracing::warn!(%error, "exec: the connection was not upgraded"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(channel::PROTOCOL));
    Ok(response)
}

/// Whether the request asks to upgrade to the channel protocol.
fn asks_for_channel(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .unwrap_or_default()
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, channel::PROTOCOL)
}

/// Runs the exec over `connection`: frames in become stdin and resizes,
/// output becomes frames out, and the outcome is the last frame.
async fn session<C>(runtime: Arc<dyn Runtime>, id: String, request: ExecRequest, connection: C)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, mut writer) = tokio::io::split(connection);
    let (stdin, stdin_rx) = mpsc::channel(16);
    let (resize, resize_rx) = mpsc::channel(4);
    let (output, mut output_rx) = mpsc::channel(16);
    let (gone, mut caller_gone) = oneshot::channel();
    let reading = tokio::spawn(read_input(reader, stdin, resize, gone));
    let streams = ExecStreams {
        stdin: stdin_rx,
        resize: resize_rx,
        output,
    };
    let running = runtime.exec(&id, &request, streams);
    // Output is written as it comes; when the caller has gone, the output's
    // receiver goes too, and the runtime kills the command.
    let writing = async move {
        loop {
            let chunk = tokio::select! {
                chunk = output_rx.recv() => chunk,
                _ = &mut caller_gone => return None,
            };
            let (number, data) = match chunk {
                Some(ExecChunk::Stdout(data)) => (channel::STDOUT, data),
                Some(ExecChunk::Stderr(data)) => (channel::STDERR, data),
                None => return Some(writer),
            };
            if channel::write_frame(&mut writer, number, &data)
                .await
                .is_err()
            {
                return None;
            }
        }
    };
    let (ran, writer) = tokio::join!(running, writing);
    reading.abort();
    let Some(mut writer) = writer else {
        return;
    };
    let outcome = match ran {
        Ok(code) => Outcome::Exited(code),
        Err(error) => Outcome::Failed(error.to_string()),
    };
    let _ = channel::write_frame(&mut writer, channel::ERROR, &outcome.encode()).await;
    let _ = writer.shutdown().await;
}

/// Reads the caller's frames until the connection ends, which it reports
/// through `gone`.
async fn read_input(
    mut reader: impl AsyncRead + Unpin,
    stdin: mpsc::Sender<Vec<u8>>,
    resize: mpsc::Sender<TerminalSize>,
    gone: oneshot::Sender<()>,
) {
    let mut stdin = Some(stdin);
    loop {
        let frame = match channel::read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        match frame {
            Frame {
                channel: channel::STDIN,
                data,
            } => {
                if let Some(sender) = &stdin {
                    if sender.send(data).await.is_err() {
                        stdin = None;
                    }
                }
            }
            Frame {
                channel: channel::RESIZE,
                data,
            } => match TerminalSize::decode(&data) {
                Ok(size) => {
                    let _ = resize.send(size).await;
                }
                Err(error) => tracing::debug!(%error, "exec: an unreadable resize"),
            },
            Frame {
                channel: channel::CLOSE,
                data,
            } if data == [channel::STDIN] => stdin = None,
            Frame { channel, .. } => tracing::debug!(channel, "exec: a frame ignored"),
        }
    }
    let _ = gone.send(());
}
