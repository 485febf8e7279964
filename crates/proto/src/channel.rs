//! The channel protocol of an exec between the API server and a kubelet: one
//! upgraded HTTP/1.1 connection carrying a command's stdin, stdout, stderr,
//! terminal resizes and exit status both ways at once.
//!
//! Kubernetes multiplexes the same streams over SPDY or WebSocket with its
//! `v5.channel.k8s.io` subprotocol: every message starts with a byte naming
//! its channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, 255 close).
//! skiff keeps those numbers and payloads and frames them directly on the
//! connection the kubelet answered `101 Switching Protocols` with
//! (`Upgrade:` [`PROTOCOL`]):
//!
//! ```text
//! +---------+----------------------+------------------+
//! | channel | length (u32, big-end)| payload (length) |
//! +---------+----------------------+------------------+
//! ```
//!
//! - [`STDIN`] (to the kubelet): bytes for the command's stdin, as typed.
//! - [`STDOUT`], [`STDERR`] (from the kubelet): output as it is produced.
//! - [`ERROR`] (from the kubelet, last): the outcome as Kubernetes' `Status`
//!   JSON: `{"status":"Success"}`, or `Failure` with reason `NonZeroExitCode`
//!   and the code in `details.causes[].message` (cause reason `ExitCode`), or
//!   `Failure` with a message when the exec itself failed ([`Outcome`]).
//! - [`RESIZE`] (to the kubelet): `{"Width":W,"Height":H}` ([`TerminalSize`]).
//! - [`CLOSE`] (to the kubelet): the payload is one channel number; `[STDIN]`
//!   ends the command's stdin.
//!
//! # Caveats
//! No flow control beyond TCP's; a frame carries at most [`MAX_FRAME_BYTES`].

use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The `Upgrade` token an exec connection asks for and the kubelet answers.
pub const PROTOCOL: &str = "skiff-channel/1";

/// Bytes for the command's stdin.
pub const STDIN: u8 = 0;
/// The command's stdout.
pub const STDOUT: u8 = 1;
/// The command's stderr.
pub const STDERR: u8 = 2;
/// The outcome: a Kubernetes `Status` as JSON; the last frame.
pub const ERROR: u8 = 3;
/// A terminal size as JSON.
pub const RESIZE: u8 = 4;
/// Closes the channel named by the payload's one byte.
pub const CLOSE: u8 = 255;

/// The largest payload a frame may carry; a writer splits larger data.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// One frame: a channel and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The channel number ([`STDIN`], [`STDOUT`], …).
    pub channel: u8,
    /// The payload.
    pub data: Vec<u8>,
}

/// Writes one frame; `data` longer than [`MAX_FRAME_BYTES`] becomes several.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    channel: u8,
    data: &[u8],
) -> io::Result<()> {
    let mut pieces = data.chunks(MAX_FRAME_BYTES).peekable();
    if pieces.peek().is_none() {
        return write_one(writer, channel, &[]).await;
    }
    for piece in pieces {
        write_one(writer, channel, piece).await?;
    }
    Ok(())
}

async fn write_one<W: AsyncWrite + Unpin>(
    writer: &mut W,
    channel: u8,
    data: &[u8],
) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + data.len());
    frame.push(channel);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
    frame.extend_from_slice(data);
    writer.write_all(&frame).await?;
    writer.flush().await
}

/// Reads the next frame; `None` when the connection ends between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 5];
    match reader.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    reader.read_exact(&mut head[1..]).await?;
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes is over the limit of {MAX_FRAME_BYTES}"),
        ));
    }
    let mut data = vec![0; length];
    reader.read_exact(&mut data).await?;
    Ok(Some(Frame {
        channel: head[0],
        data,
    }))
}

/// A terminal's size in character cells, with the JSON names of Kubernetes'
/// `remotecommand.TerminalSize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

impl TerminalSize {
    /// The payload of a [`RESIZE`] frame.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a [`RESIZE`] payload.
    pub fn decode(data: &[u8]) -> io::Result<TerminalSize> {
        serde_json::from_slice(data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// How an exec ended, as the [`ERROR`] channel says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and exited with this code.
    Exited(i32),
    /// The command could not be run, or the exec broke; the message says why.
    Failed(String),
}

/// The subset of Kubernetes' `Status` the [`ERROR`] channel carries.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Status {
    status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Details {
    #[serde(default)]
    causes: Vec<Cause>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cause {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
}

impl Outcome {
    /// The payload of the [`ERROR`] frame, as the real kubelet writes it.
    pub fn encode(&self) -> Vec<u8> {
        let status = match self {
            Outcome::Exited(0) => Status {
                status: "Success".into(),
                ..Status::default()
            },
            Outcome::Exited(code) => Status {
                status: "Failure".into(),
                message: format!("command terminated with non-zero exit code: {code}"),
                reason: "NonZeroExitCode".into(),
                details: Some(Details {
                    causes: vec![Cause {
                        reason: "ExitCode".into(),
                        message: code.to_string(),
                    }],
                }),
            },
            Outcome::Failed(message) => Status {
                status: "Failure".into(),
                message: message.clone(),
                reason: "InternalError".into(),
                details: None,
            },
        };
        serde_json::to_vec(&status).unwrap_or_default()
    }

    /// Reads an [`ERROR`] payload.
    pub fn decode(data: &[u8]) -> io::Result<Outcome> {
        let status: Status = serde_json::from_slice(data)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if status.status == "Success" {
            return Ok(Outcome::Exited(0));
        }
        let code = (status.reason == "NonZeroExitCode")
            .then_some(status.details.as_ref())
            .flatten()
            .and_then(|d| d.causes.iter().find(|c| c.reason == "ExitCode"))
            .and_then(|c| c.message.parse().ok());
        Ok(match code {
            Some(code) => Outcome::Exited(code),
            None => Outcome::Failed(status.message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_a_clean_end_is_none() {
        let mut wire = Vec::new();
        write_frame(&mut wire, STDOUT, b"hello")
            .await
            .expect("written");
        write_frame(&mut wire, CLOSE, &[STDIN])
            .await
            .expect("written");
        assert_eq!(&wire[..5], &[1, 0, 0, 0, 5]);
        let mut reader = wire.as_slice();
        let first = read_frame(&mut reader).await.expect("read");
        assert_eq!(
            first,
            Some(Frame {
                channel: STDOUT,
                data: b"hello".to_vec()
            })
        );
        let second = read_frame(&mut reader).await.expect("read");
        assert_eq!(
            second.map(|f| (f.channel, f.data)),
            Some((CLOSE, vec![STDIN]))
        );
        assert_eq!(read_frame(&mut reader).await.expect("read"), None);
    }

    #[tokio::test]
    async fn a_frame_cut_off_inside_is_an_error() {
        let mut reader: &[u8] = &[1, 0, 0, 0, 9, b'a'];
        let cut = read_frame(&mut reader).await;
        assert_eq!(cut.expect_err("cut").kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_before_it_is_read() {
        let length = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
        let mut reader: &[u8] = &[1, length[0], length[1], length[2], length[3]];
        let refused = read_frame(&mut reader).await;
        assert_eq!(
            refused.expect_err("too large").kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn exit_codes_travel_as_kubernetes_status() {
        for outcome in [
            Outcome::Exited(0),
            Outcome::Exited(3),
            Outcome::Failed("no such container".into()),
        ] {
            assert_eq!(Outcome::decode(&outcome.encode()).ok(), Some(outcome));
        }
        let kubelet = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#;
        assert_eq!(Outcome::decode(kubelet).ok(), Some(Outcome::Exited(7)));
    }

    #[test]
    fn a_resize_is_kubernetes_terminal_size() {
        let size = TerminalSize {
            width: 100,
            height: 40,
        };
        assert_eq!(size.encode(), br#"{"Width":100,"Height":40}"#);
        assert_eq!(TerminalSize::decode(&size.encode()).ok(), Some(size));
    }
}
