//! Accepting `:authority: http://host:port` from HTTP/2 clients.
//!
//! HTTP/2 carries a request's target host in the `:authority` pseudo-header,
//! which must be `host[:port]` (RFC 9113 §8.3.1). etcdctl 3.4 breaks that in a
//! few commands (`endpoint status`, `endpoint status --cluster`): it dials the
//! endpoint with grpc-go's passthrough resolver, so its `:authority` is the
//! whole URL, `http://127.0.0.1:2379`. etcd's Go server does not look at the
//! value; the `h2` crate under tonic rejects it and resets the stream with
//! PROTOCOL_ERROR. [`AuthorityStream`] sits between the accepted TCP socket and
//! tonic and repairs such requests before `h2` sees them.
//!
//! It reads the client's bytes frame by frame, forwarding each one at once,
//! until the first header block of the connection is complete, and
//! HPACK-decodes that block (RFC 7541):
//! - `:authority` without a scheme (every other client): the block and all
//!   that follows go to tonic unchanged; from here on a read is a plain read of
//!   the socket.
//! - `:authority` with a scheme: from this block on, every header block of the
//!   connection is decoded against the client's dynamic table, given
//!   `:authority: host:port`, and re-encoded as literals without indexing — so
//!   the server's HPACK table stays empty and never disagrees with the client's
//!   — in fresh HEADERS and CONTINUATION frames without padding or priority.
//!   All other frames pass unchanged.
//!
//! The server-to-client direction is never touched, and nothing waits on the
//! inspection: grpc-go clients send no request before the server's SETTINGS,
//! so the bytes before the first request are forwarded as they arrive.
//!
//! # Layout
//! - `frame`: frame headers, the HEADERS payload layout, writing header blocks.
//! - `hpack`: the literal encoding and the authority clean-up.
//! - `rewriter`: the sans-IO state machine, client bytes in, server bytes out.
//! - [`AuthorityStream`]: the IO wrapper tonic serves.
//!
//! # Where to start
//! `Rewriter::push` in `rewriter`, then `AuthorityStream::poll_read`.
//!
//! # Caveats
//! Only the first request decides: a connection whose first `:authority` is
//! well-formed and a later one carries a scheme is still refused by `h2`
//! (no known client does that). Headers the client marked never-indexed are
//! re-encoded as plain literals without indexing; the server is the last hop,
//! so nothing downstream could index them. Only prior-knowledge HTTP/2 (what
//! gRPC uses) is inspected; anything else passes unchanged.

mod frame;
mod hpack;
mod rewriter;
#[cfg(test)]
mod tests;

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use rewriter::Rewriter;

/// How much is read from the socket at a time while the connection is inspected.
const READ_CHUNK: usize = 16 * 1024;

/// Why a rewritten connection could not go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RewriteError {
    /// A HEADERS frame whose padding or priority fields do not fit its payload.
    #[error("malformed HEADERS frame on stream {stream_id}: {reason}")]
    MalformedHeaders {
        /// The stream.
        stream_id: u32,
        /// What does not fit.
        reason: &'static str,
    },
    /// A frame other than the CONTINUATION of the open header block, or a
    /// CONTINUATION with no header block open.
    #[error("unexpected frame of type {kind} on stream {stream_id} around a header block")]
    InterleavedFrame {
        /// The frame type.
        kind: u8,
        /// Its stream.
        stream_id: u32,
    },
    /// A header block larger than [`rewriter::MAX_HEADER_BLOCK`].
    #[error("header block on stream {stream_id} is larger than {limit} bytes")]
    HeaderBlockTooLarge {
        /// The stream.
        stream_id: u32,
        /// The limit.
        limit: usize,
    },
    /// A header block HPACK could not decode.
    #[error("cannot decode the header block on stream {stream_id}: {reason}")]
    Hpack {
        /// The stream.
        stream_id: u32,
        /// The decoder's complaint.
        reason: String,
    },
}

/// A client connection as tonic reads it: the socket's bytes, with
/// `:authority: scheme://host:port` made `host:port`. Writes go straight to
/// the socket.
pub struct AuthorityStream<T> {
    io: T,
    /// `None` once the connection is plain passthrough.
    inspect: Option<Box<Inspecting>>,
}

/// The state kept while a connection is inspected or rewritten.
struct Inspecting {
    rewriter: Rewriter,
    /// Bytes for tonic, from `read_from`.
    out: Vec<u8>,
    read_from: usize,
    chunk: Box<[u8; READ_CHUNK]>,
}

impl<T> AuthorityStream<T> {
    /// Wraps an accepted connection.
    pub fn new(io: T) -> Self {
        AuthorityStream {
            io,
            inspect: Some(Box::new(Inspecting {
                rewriter: Rewriter::default(),
                out: Vec::new(),
                read_from: 0,
                chunk: Box::new([0; READ_CHUNK]),
            })),
        }
    }

    /// True while the connection's bytes still go through the rewriter
    /// (false once they go to tonic untouched).
    #[cfg(test)]
    fn is_inspected(&self) -> bool {
        self.inspect.is_some()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for AuthorityStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            let Some(state) = this.inspect.as_deref_mut() else {
                // The common case after the first request: a plain read.
                return Pin::new(&mut this.io).poll_read(cx, buf);
            };
            if state.read_from < state.out.len() {
                let ready = &state.out[state.read_from..];
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                state.read_from += n;
                if state.read_from == state.out.len() {
                    state.out.clear();
                    state.read_from = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if state.rewriter.is_passthrough() {
                this.inspect = None;
                continue;
            }
            let mut chunk = ReadBuf::new(&mut state.chunk[..]);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut chunk))?;
            if chunk.filled().is_empty() {
                // End of stream: whatever is held back goes out as it is.
                state.rewriter.finish(&mut state.out);
                if state.out.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            state
                .rewriter
                .push(chunk.filled(), &mut state.out)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AuthorityStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T: Connected> Connected for AuthorityStream<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
