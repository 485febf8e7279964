//! A pod's `log` and `exec` subresources, with kube-rs's names:
//! [`Api::logs`], [`Api::log_stream`] and [`Api::exec`] taking kube-core's
//! [`LogParams`] and [`AttachParams`].
//!
//! The API server proxies both to the kubelet of the pod's node; refusals
//! (a pod not bound to a node, a container that must be named) come back as
//! [`Error::Api`] with Kubernetes' messages.
//!
//! # Caveats
//! `log_stream` yields byte chunks rather than kube-rs's `AsyncBufRead`;
//! `since_time` and `pretty` are not sent. Exec streams both ways while the
//! command runs (stdin as written, output as produced, terminal resizes with
//! `tty`); there is no attach to a container's own stdin.

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube_core::subresource::{AttachParams, LogParams};
use skiff_proto::api::{exec_response, ExecRequest, ExecResponse, LogRequest};
pub use skiff_proto::channel::TerminalSize;
use tokio::sync::{mpsc, oneshot};

use crate::{Api, Error};

impl Api<Pod> {
    /// The log of a container of the pod `name`, whole (kubectl's `logs`
    /// without `-f`). Bytes that are not UTF-8 are replaced.
    pub async fn logs(&self, name: &str, params: &LogParams) -> Result<String, Error> {
        let mut chunks = self.log_stream(name, params).await?;
        let mut all = Vec::new();
        while let Some(chunk) = chunks.next().await {
            all.extend_from_slice(&chunk?);
        }
        Ok(String::from_utf8_lossy(&all).into_owned())
    }

    /// The log of a container of the pod `name` as it arrives; with
    /// `params.follow` it stays open while the kubelet keeps it open.
    pub async fn log_stream(
        &self,
        name: &str,
        params: &LogParams,
    ) -> Result<BoxStream<'static, Result<Vec<u8>, Error>>, Error> {
        let request = LogRequest {
            r#ref: Some(self.reference(name, "log")),
            container: params.container.clone().unwrap_or_default(),
            follow: params.follow,
            previous: params.previous,
            tail_lines: params.tail_lines,
            timestamps: params.timestamps,
            limit_bytes: params.limit_bytes,
            since_seconds: params.since_seconds,
        };
        let chunks = self.client.logs(request).await?;
        Ok(chunks.map(|chunk| chunk.map(|c| c.data)).boxed())
    }

    /// Runs `command` in a container of the pod `name`. The answer is at
    /// once: write stdin through [`AttachedProcess::stdin`] (when
    /// `params.stdin`), send terminal sizes through
    /// [`AttachedProcess::terminal_size`] (when `params.tty`), read
    /// [`AttachedProcess::stdout`] and [`AttachedProcess::stderr`] as the
    /// command writes them, and [`AttachedProcess::join`] for the exit code
    /// — or the error that refused the exec.
    pub async fn exec<I, T>(
        &self,
        name: &str,
        command: I,
        params: &AttachParams,
    ) -> Result<AttachedProcess, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let first = ExecRequest {
            r#ref: Some(self.reference(name, "exec")),
            container: params.container.clone().unwrap_or_default(),
            command: command.into_iter().map(Into::into).collect(),
            tty: params.tty,
            stdin: params.stdin,
            ..ExecRequest::default()
        };
        let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(16);
        let (resize_tx, resize_rx) = mpsc::channel::<TerminalSize>(4);
        let requests = ExecRequests {
            first: Some(first),
            stdin: Some(stdin_rx),
            resize: Some(resize_rx),
        };
        let (stdout_tx, stdout_rx) = mpsc::unbounded_channel();
        let (stderr_tx, stderr_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let client = self.client.clone();
        // The call runs beside the caller, who writes stdin and resizes
        // while the output comes.
        tokio::spawn(async move {
            let exit = match client.exec(requests).await {
                Ok(responses) => route(responses, stdout_tx, stderr_tx).await,
                Err(error) => Err(error),
            };
            let _ = exit_tx.send(exit);
        });
        Ok(AttachedProcess {
            stdin: params.stdin.then(|| StdinWriter { sender: stdin_tx }),
            terminal_size: params.tty.then_some(resize_tx),
            stdout: Some(receiver_stream(stdout_rx)),
            stderr: Some(receiver_stream(stderr_rx)),
            exit: exit_rx,
        })
    }
}

/// The requests of one exec: the first message, then one per stdin write
/// and one per resize as they come; the end of stdin is a `close_stdin`
/// message. The stream ends when both stdin and resizes have ended.
pub(crate) struct ExecRequests {
    first: Option<ExecRequest>,
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    resize: Option<mpsc::Receiver<TerminalSize>>,
}

impl futures::Stream for ExecRequests {
    type Item = ExecRequest;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ExecRequest>> {
        use std::task::Poll;
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        if let Some(resize) = &mut self.resize {
            match resize.poll_recv(cx) {
                Poll::Ready(Some(size)) => {
                    return Poll::Ready(Some(ExecRequest {
                        resize: Some(skiff_proto::api::TerminalSize {
                            width: size.width.into(),
                            height: size.height.into(),
                        }),
                        ..ExecRequest::default()
                    }))
                }
                Poll::Ready(None) => self.resize = None,
                Poll::Pending => {}
            }
        }
        if let Some(stdin) = &mut self.stdin {
            let message = match stdin.poll_recv(cx) {
                Poll::Ready(Some(stdin_data)) => ExecRequest {
                    stdin_data,
                    ..ExecRequest::default()
                },
                Poll::Ready(None) => {
                    self.stdin = None;
                    ExecRequest {
                        close_stdin: true,
                        ..ExecRequest::default()
                    }
                }
                Poll::Pending => return Poll::Pending,
            };
            return Poll::Ready(Some(message));
        }
        match self.resize {
            Some(_) => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

/// Sends each output frame to its stream; the exit code ends the exec.
async fn route(
    mut responses: BoxStream<'static, Result<ExecResponse, Error>>,
    stdout: mpsc::UnboundedSender<Vec<u8>>,
    stderr: mpsc::UnboundedSender<Vec<u8>>,
) -> Result<i32, Error> {
    while let Some(response) = responses.next().await {
        match response?.frame {
            Some(exec_response::Frame::Stdout(data)) => {
                let _ = stdout.send(data);
            }
            Some(exec_response::Frame::Stderr(data)) => {
                let _ = stderr.send(data);
            }
            Some(exec_response::Frame::ExitCode(code)) => return Ok(code),
            None => {}
        }
    }
    Err(Error::Rpc(tonic::Status::unavailable(
        "the exec stream ended without an exit code",
    )))
}

fn receiver_stream(mut rx: mpsc::UnboundedReceiver<Vec<u8>>) -> BoxStream<'static, Vec<u8>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// A command running in a container, as kube-rs's `AttachedProcess`.
pub struct AttachedProcess {
    stdin: Option<StdinWriter>,
    terminal_size: Option<mpsc::Sender<TerminalSize>>,
    stdout: Option<BoxStream<'static, Vec<u8>>>,
    stderr: Option<BoxStream<'static, Vec<u8>>>,
    exit: oneshot::Receiver<Result<i32, Error>>,
}

impl std::fmt::Debug for AttachedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedProcess").finish_non_exhaustive()
    }
}

impl AttachedProcess {
    /// The writer to the command's stdin, once; `None` without
    /// `AttachParams::stdin`. Dropping it (or [`StdinWriter::close`]) ends stdin.
    pub fn stdin(&mut self) -> Option<StdinWriter> {
        self.stdin.take()
    }

    /// The sender of the terminal's size, once; `None` without
    /// `AttachParams::tty`. Send the size at the start and on every change
    /// (SIGWINCH), as kube-rs's `terminal_size`.
    pub fn terminal_size(&mut self) -> Option<mpsc::Sender<TerminalSize>> {
        self.terminal_size.take()
    }

    /// The command's stdout, once.
    pub fn stdout(&mut self) -> Option<BoxStream<'static, Vec<u8>>> {
        self.stdout.take()
    }

    /// The command's stderr, once.
    pub fn stderr(&mut self) -> Option<BoxStream<'static, Vec<u8>>> {
        self.stderr.take()
    }

    /// Waits for the command to end: its exit code, or why the exec failed
    /// (such as a pod with no host assigned). Closes stdin if still open.
    pub async fn join(mut self) -> Result<i32, Error> {
        drop(self.stdin.take());
        drop(self.terminal_size.take());
        match self.exit.await {
            Ok(exit) => exit,
            Err(_) => Err(Error::Rpc(tonic::Status::cancelled(
                "the exec was dropped before it ended",
            ))),
        }
    }
}

/// Writes to a command's stdin.
#[derive(Debug)]
pub struct StdinWriter {
    sender: mpsc::Sender<Vec<u8>>,
}

impl StdinWriter {
    /// Sends `data` to the command's stdin.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        self.sender
            .send(data.to_vec())
            .await
            .map_err(|_| Error::Rpc(tonic::Status::cancelled("the exec has ended")))
    }

    /// Ends stdin.
    pub fn close(self) {}
}
