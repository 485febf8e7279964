//! The `Exec` RPC over a kubelet's upgraded connection: the client's
//! messages become channel frames to the kubelet (stdin, resizes, the end of
//! stdin) and the kubelet's frames become the RPC's answers (stdout, stderr,
//! and last the exit code), both ways at once while the command runs.
//!
//! The connection stays open until the kubelet has sent the outcome or the
//! client has gone: the kubelet takes a connection that ends early for a
//! caller that has gone and kills the command, so a client that goes (its
//! answer stream dropped) ends the connection, and the command with it.

use futures::stream::BoxStream;
use futures::StreamExt;
use skiff_api::status::ApiError;
use skiff_proto::api::{exec_response, ExecRequest, ExecResponse};
use skiff_proto::channel::{self, Outcome, TerminalSize};
use tokio::io::AsyncRead;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::Status;

use super::http::{self, Upgrade};
use super::{locate, refusal, PodRef};
use crate::registry::Registry;

/// The `Exec` RPC after its first message `first`: starts the command
/// through the kubelet and answers its output as it comes; the rest of the
/// client's messages (`rest`) are passed on as they come.
pub(crate) async fn exec(
    registry: &Registry,
    pod: &PodRef<'_>,
    first: ExecRequest,
    rest: tonic::Streaming<ExecRequest>,
) -> Result<BoxStream<'static, Result<ExecResponse, Status>>, ApiError> {
    if first.command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let target = locate(registry, pod, &first.container).await?;
    let path = format!(
        "/exec/{}/{}/{}?{}",
        pod.namespace,
        pod.name,
        target.container,
        query(&first)
    );
    let upgraded = http::upgrade(&target.authority, &path, channel::PROTOCOL).await;
    let url = format!("http://{}{path}", target.authority);
    let upgraded = upgraded.map_err(|e| ApiError::internal(format!("Post {url:?}: {e}")))?;
    let (reader, writer) = match upgraded {
        Upgrade::Switched { reader, writer } => (reader, writer),
        Upgrade::Refused(response) if response.status < 300 => {
            let message = format!("the kubelet did not switch protocols for {url:?}");
            return Err(ApiError::internal(message));
        }
        Upgrade::Refused(response) => return Err(refusal(response).await),
    };
    let client_gone = CancellationToken::new();
    tokio::spawn(forward_input(first, rest, writer, client_gone.clone()));
    Ok(answers(reader, client_gone.drop_guard()))
}

/// The kubelet's query: the command's words, `stdin` and `tty`.
fn query(first: &ExecRequest) -> String {
    let mut query: Vec<String> = first
        .command
        .iter()
        .map(|arg| format!("command={}", percent_encode(arg)))
        .collect();
    for (key, on) in [("stdin", first.stdin), ("tty", first.tty)] {
        if on {
            query.push(format!("{key}=true"));
        }
    }
    query.join("&")
}

/// Passes the client's messages on as frames. When the client has no more
/// to say, stdin ends, but the connection stays open until the answers are
/// done (`done`): its end would tell the kubelet the caller has gone.
async fn forward_input(
    first: ExecRequest,
    mut rest: tonic::Streaming<ExecRequest>,
    mut writer: OwnedWriteHalf,
    done: CancellationToken,
) {
    let mut stdin_open = true;
    let mut message = Some(first);
    while let Some(request) = message {
        if send(&mut writer, &request, &mut stdin_open).await.is_err() {
            return;
        }
        message = tokio::select! {
            next = rest.message() => match next {
                Ok(next) => next,
                Err(_) => return,
            },
            () = done.cancelled() => return,
        };
    }
    if stdin_open {
        let closing = channel::write_frame(&mut writer, channel::CLOSE, &[channel::STDIN]).await;
        if closing.is_err() {
            return;
        }
    }
    done.cancelled().await;
}

/// The frames one client message becomes.
async fn send(
    writer: &mut OwnedWriteHalf,
    request: &ExecRequest,
    stdin_open: &mut bool,
) -> std::io::Result<()> {
    if let Some(size) = &request.resize {
        let size = TerminalSize {
            width: u16::try_from(size.width).unwrap_or(u16::MAX),
            height: u16::try_from(size.height).unwrap_or(u16::MAX),
        };
        channel::write_frame(writer, channel::RESIZE, &size.encode()).await?;
    }
    if *stdin_open && !request.stdin_data.is_empty() {
        channel::write_frame(writer, channel::STDIN, &request.stdin_data).await?;
    }
    if *stdin_open && request.close_stdin {
        *stdin_open = false;
        channel::write_frame(writer, channel::CLOSE, &[channel::STDIN]).await?;
    }
    Ok(())
}

/// The kubelet's frames as the RPC's answers, up to the exit code. Holds
/// `client_gone`'s guard: dropping the stream (the client has gone) ends the
/// connection.
fn answers<R>(reader: R, client_gone: DropGuard) -> BoxStream<'static, Result<ExecResponse, Status>>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    futures::stream::unfold(Some((reader, client_gone)), |state| async move {
        let (mut reader, guard) = state?;
        loop {
            let frame = match channel::read_frame(&mut reader).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Some((Err(cut_off("closed")), None)),
                Err(e) => return Some((Err(cut_off(&e.to_string())), None)),
            };
            let answer = match frame.channel {
                channel::STDOUT => exec_response::Frame::Stdout(frame.data),
                channel::STDERR => exec_response::Frame::Stderr(frame.data),
                channel::ERROR => {
                    let last = match Outcome::decode(&frame.data) {
                        Ok(Outcome::Exited(code)) => {
                            Ok(response(exec_response::Frame::ExitCode(code)))
                        }
                        Ok(Outcome::Failed(message)) => Err(Status::internal(message)),
                        Err(e) => Err(cut_off(&e.to_string())),
                    };
                    return Some((last, None));
                }
                _ => continue,
            };
            return Some((Ok(response(answer)), Some((reader, guard))));
        }
    })
    .boxed()
}

fn response(frame: exec_response::Frame) -> ExecResponse {
    ExecResponse { frame: Some(frame) }
}

fn cut_off(why: &str) -> Status {
    Status::unavailable(format!(
        "the kubelet's exec stream ended without an exit status: {why}"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_arguments_are_escaped_for_the_query() {
        assert_eq!(percent_encode("echo a&b=c"), "echo%20a%26b%3Dc");
        assert_eq!(percent_encode("ls-1_x.y~"), "ls-1_x.y~");
        let first = ExecRequest {
            command: vec!["sh".into(), "-c".into(), "ls -l".into()],
            stdin: true,
            ..ExecRequest::default()
        };
        assert_eq!(
            query(&first),
            "command=sh&command=-c&command=ls%20-l&stdin=true"
        );
    }

    async fn answers_to(frames: &[(u8, Vec<u8>)]) -> Vec<Result<ExecResponse, Status>> {
        let mut wire = Vec::new();
        for (number, data) in frames {
            channel::write_frame(&mut wire, *number, data)
                .await
                .unwrap();
        }
        let guard = CancellationToken::new().drop_guard();
        answers(std::io::Cursor::new(wire), guard).collect().await
    }

    #[tokio::test]
    async fn output_frames_become_answers_and_the_status_ends_them() {
        let answered = answers_to(&[
            (channel::STDOUT, b"hi\n".to_vec()),
            (channel::STDERR, b"oops\n".to_vec()),
            (channel::ERROR, Outcome::Exited(3).encode()),
            (channel::STDOUT, b"never read".to_vec()),
        ])
        .await;
        let frames: Vec<_> = answered
            .into_iter()
            .map(|a| a.unwrap().frame.unwrap())
            .collect();
        assert_eq!(
            frames,
            [
                exec_response::Frame::Stdout(b"hi\n".to_vec()),
                exec_response::Frame::Stderr(b"oops\n".to_vec()),
                exec_response::Frame::ExitCode(3),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_exec_or_a_cut_connection_is_an_error() {
        let failed = answers_to(&[(
            channel::ERROR,
            Outcome::Failed("no such container".into()).encode(),
        )])
        .await;
        let status = failed[0].as_ref().unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::Internal, "no such container")
        );
        let cut = answers_to(&[(channel::STDOUT, b"hi".to_vec())]).await;
        assert_eq!(cut.len(), 2);
        assert_eq!(
            cut[1].as_ref().unwrap_err().code(),
            tonic::Code::Unavailable
        );
    }
}
