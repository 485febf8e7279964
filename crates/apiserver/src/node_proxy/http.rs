//! Just enough of an HTTP/1.1 client to reach a kubelet: one request per
//! connection (`Connection: close`), a response body read as a stream whether
//! it is chunked, sized by `Content-Length`, or runs to the end of the
//! connection; or a connection upgraded to another protocol (`101 Switching
//! Protocols`) and handed over whole, for an exec's streams.
//!
//! # Caveats
//! Plain HTTP only (no TLS, as skiff's kubelet serves); no redirects,
//! keep-alive or `Expect: 100-continue`; headers beyond the status line,
//! `Transfer-Encoding` and `Content-Length` are ignored.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How much of a body is read at once when it is not chunked.
const READ_BYTES: usize = 16 * 1024;

/// A response: its status code and its body as it arrives.
pub(crate) struct Response {
    /// The HTTP status code, such as 200.
    pub(crate) status: u16,
    /// The body, piece by piece.
    pub(crate) body: BoxStream<'static, io::Result<Bytes>>,
}

impl Response {
    /// The whole body as text (for error messages and small answers).
    pub(crate) async fn text(mut self) -> io::Result<String> {
        let mut all = Vec::new();
        while let Some(piece) = self.body.next().await {
            all.extend_from_slice(&piece?);
        }
        Ok(String::from_utf8_lossy(&all).into_owned())
    }
}

/// Sends `method path` with `body` to `authority` (`host:port`) and reads the
/// response head; the body follows as the stream in [`Response`].
pub(crate) async fn request(
    authority: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut stream = BufReader::new(connect(authority).await?);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.get_mut().write_all(head.as_bytes()).await?;
    stream.get_mut().write_all(body).await?;
    stream.get_mut().flush().await?;
    read_response(stream).await
}

/// How a request to switch protocols was answered.
pub(crate) enum Upgrade {
    /// `101 Switching Protocols`: the connection, both ways, now speaks the
    /// protocol asked for.
    Switched {
        /// What the server sends (bytes already read past the head included).
        reader: BufReader<OwnedReadHalf>,
        /// What goes to the server; dropping it ends the connection.
        writer: OwnedWriteHalf,
    },
    /// Any other answer, such as a refusal with its message.
    Refused(Response),
}

/// Sends `POST path` to `authority` asking to switch the connection to
/// `protocol` (`Connection: Upgrade`), as Kubernetes' API server does to
/// stream an exec.
pub(crate) async fn upgrade(authority: &str, path: &str, protocol: &str) -> io::Result<Upgrade> {
    let (reader, mut writer) = connect(authority).await?.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\nContent-Length: 0\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await?;
    writer.flush().await?;
    let mut reader = BufReader::new(reader);
    let head = read_head(&mut reader).await?;
    if head.status == 101 {
        return Ok(Upgrade::Switched { reader, writer });
    }
    Ok(Upgrade::Refused(Response {
        status: head.status,
        body: body(reader, head.framing()),
    }))
}

async fn connect(authority: &str) -> io::Result<TcpStream> {
    let connecting = TcpStream::connect(authority);
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"))?
}

/// Reads a response head from `reader` and hands the rest over as the body.
pub(crate) async fn read_response<R>(mut reader: R) -> io::Result<Response>
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    let head = read_head(&mut reader).await?;
    Ok(Response {
        status: head.status,
        body: body(reader, head.framing()),
    })
}

/// Reads the status line and headers, up to the empty line.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Head> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        let line = read_line(reader).await?;
        size += line.len() + 2;
        if size > MAX_HEAD_BYTES {
            return Err(invalid("the response head is too large"));
        }
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    Head::parse(&lines)
}

/// What a response head says about the response.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    chunked: bool,
    content_length: Option<u64>,
}

impl Head {
    /// How the body's end is known.
    fn framing(&self) -> Framing {
        match (self.chunked, self.content_length) {
            (true, _) => Framing::Chunked,
            (false, Some(length)) => Framing::Length(length),
            (false, None) => Framing::ToEnd,
        }
    }

    /// Parses the status line and the headers that frame the body.
    fn parse(lines: &[String]) -> io::Result<Head> {
        let status_line = lines.first().ok_or_else(|| invalid("an empty response"))?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .filter(|_| status_line.starts_with("HTTP/1."))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("a malformed status line {status_line:?}")))?;
        let mut head = Head {
            status,
            chunked: false,
            content_length: None,
        };
        for line in &lines[1..] {
            let Some((name, value)) = line.split_once(':') else {
                return Err(invalid(format!("a malformed header {line:?}")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                let length = value
                    .parse()
                    .map_err(|_| invalid("a malformed Content-Length"))?;
                head.content_length = Some(length);
            }
        }
        Ok(head)
    }
}

/// How the body's end is known.
enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// This many bytes are left (`Content-Length`).
    Length(u64),
    /// The body runs until the server closes the connection.
    ToEnd,
}

/// The body of a response framed as `framing`, read from `reader`.
fn body<R>(reader: R, framing: Framing) -> BoxStream<'static, io::Result<Bytes>>
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    futures::stream::try_unfold(
        (reader, Some(framing)),
        |(mut reader, framing)| async move {
            let Some(framing) = framing else {
                return Ok(None);
            };
            let (piece, next) = match framing {
                Framing::Chunked => match next_chunk(&mut reader).await? {
                    Some(chunk) => (chunk, Some(Framing::Chunked)),
                    None => return Ok(None),
                },
                Framing::Length(0) => return Ok(None),
                Framing::Length(left) => {
                    let piece =
                        read_some(&mut reader, left.min(READ_BYTES as u64) as usize).await?;
                    if piece.is_empty() {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let left = left - piece.len() as u64;
                    (piece, Some(Framing::Length(left)))
                }
                Framing::ToEnd => match read_some(&mut reader, READ_BYTES).await? {
                    piece if piece.is_empty() => return Ok(None),
                    piece => (piece, Some(Framing::ToEnd)),
                },
            };
            Ok(Some((piece, (reader, next))))
        },
    )
    .boxed()
}

/// The next chunk of a chunked body; `None` after the last (empty) chunk and
/// its trailers.
async fn next_chunk<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<Bytes>> {
    let line = read_line(reader).await?;
    let size = line.split(';').next().unwrap_or_default().trim();
    let size = usize::from_str_radix(size, 16)
        .map_err(|_| invalid(format!("a malformed chunk size {line:?}")))?;
    if size == 0 {
        while !read_line(reader).await?.is_empty() {}
        return Ok(None);
    }
    let mut chunk = vec![0; size];
    reader.read_exact(&mut chunk).await?;
    if !read_line(reader).await?.is_empty() {
        return Err(invalid("a chunk longer than its size"));
    }
    Ok(Some(Bytes::from(chunk)))
}

/// Up to `most` bytes, as many as are there; empty at the end.
async fn read_some<R: AsyncBufRead + Unpin>(reader: &mut R, most: usize) -> io::Result<Bytes> {
    let mut buffer = vec![0; most];
    let read = reader.read(&mut buffer).await?;
    buffer.truncate(read);
    Ok(Bytes::from(buffer))
}

/// One line without its `\r\n`; an error at the end of the stream.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(MAX_HEAD_BYTES as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 || line.last() != Some(&b'\n') {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("a line that is not UTF-8"))
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    async fn parse(raw: &str) -> (u16, io::Result<String>) {
        let response = read_response(Cursor::new(raw.as_bytes().to_vec()))
            .await
            .expect("the head parses");
        (response.status, response.text().await)
    }

    #[tokio::test]
    async fn a_chunked_body_is_joined_and_its_trailers_skipped() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6;x=y\r\nworld\n\r\n0\r\nTrailer: t\r\n\r\n";
        let (status, text) = parse(raw).await;
        assert_eq!(status, 200);
        assert_eq!(text.expect("the body reads"), "hello world\n");
    }

    #[tokio::test]
    async fn a_sized_body_stops_at_its_content_length() {
        let (status, text) =
            parse("HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nabcdef").await;
        assert_eq!(status, 400);
        assert_eq!(text.expect("the body reads"), "abc");
    }

    #[tokio::test]
    async fn a_body_without_framing_runs_to_the_end_of_the_connection() {
        let (_, text) = parse("HTTP/1.0 200 OK\r\n\r\nall of it").await;
        assert_eq!(text.expect("the body reads"), "all of it");
    }

    #[tokio::test]
    async fn a_cut_off_sized_body_is_an_error() {
        let (_, text) = parse("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc").await;
        assert_eq!(
            text.expect_err("the body is short").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[tokio::test]
    async fn a_malformed_status_line_is_refused() {
        let refused = read_response(Cursor::new(b"SPDY/3 200\r\n\r\n".to_vec())).await;
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidData)
        );
    }
}
