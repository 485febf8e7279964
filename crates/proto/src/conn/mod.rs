//! Fewer, larger writes to a connection's socket: one layer under the HTTP/2
//! server of both `skiff store` and `skiff apiserver`, and under the
//! connections of `skiff bench`.
//!
//! An HTTP/2 connection's task writes and flushes after each piece of work it
//! finds ready: one `writev`, one TCP segment and one wake-up of the peer per
//! response, or per DATA frame. Two loads made that the largest cost:
//! - the store's raft thread finishes a whole batch of proposals at once, and
//!   the runtime then completes one request after another, each answer
//!   flushed on its own (on loopback this cost about as much CPU as serving
//!   the request itself);
//! - the API server fans one change out to every watcher; each watch stream
//!   wakes the connection's task in turn, and h2 hands a DATA frame of more
//!   than a few hundred bytes to `writev` on its own, so each event cost a
//!   system call.
//!
//! [`Coalesce`] takes the connection's writes into a buffer. The first flush of
//! a buffer lets the runtime run the other tasks that are ready first (the task
//! wakes itself and returns `Pending`, which puts it behind them), so that the
//! responses and frames they produce join the same buffer; the second flush
//! writes it out. A buffer past its limit ([`DEFAULT_MAX_BUFFERED`], or the one given
//! to [`Coalesce::with_max_buffered`]) is written before more is taken, so a
//! large response is still streamed with backpressure. Nothing waits on a
//! timer: when no other task is ready the flush goes out on the next turn of
//! the runtime.
//!
//! Clients gain the same way: `skiff bench kv` wraps its connections in it, so
//! the requests its clients send together leave together.
//!
//! What it bought (runs of 2026-12-03, in the history of docs/benchmarks.md):
//! `skiff store` under `skiff bench kv --op put --clients 64` went from about
//! one `writev` per put to one socket write per 17 puts; the API server under
//! 1,000 watchers and 100 writes/s from about 87,000 system calls/s to 5,000
//! (measured with an earlier version that handed the buffer to a writer task
//! per connection, which yielded the same way).
//!
//! The work is done inline, in the connection's own task, rather than by a
//! writer task: there is no task, lock or wake-up per connection on top of
//! h2's own, it wraps any IO (the store wraps its `:authority`-repairing
//! stream, the benchmarks their client sockets), and a write error is
//! returned by the flush or write that meets it.
//!
//! It lives in skiff-proto because this crate is the wire every server, client
//! and load generator of skiff already shares (and already depends on tonic);
//! neither server's crate is a place the other, or a client, should import.
//!
//! # Caveats
//! - Bytes still buffered when a connection is dropped without a shutdown are
//!   lost; hyper shuts a connection down before dropping it when it closes it
//!   gracefully.
//! - The buffer keeps its capacity (up to the limit) for the connection's life.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes held before a write must go out first, unless the connection was
/// made with [`Coalesce::with_max_buffered`].
pub const DEFAULT_MAX_BUFFERED: usize = 64 * 1024;

/// An IO whose writes are gathered until a flush, see the module doc.
pub struct Coalesce<T> {
    io: T,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    written: usize,
    /// The flush of the current buffer has already let others go first.
    yielded: bool,
    /// Bytes held before a write must go out first.
    max_buffered: usize,
}

impl<T> Coalesce<T> {
    /// Wraps `io`, holding at most [`DEFAULT_MAX_BUFFERED`] bytes.
    pub fn new(io: T) -> Self {
        Coalesce::with_max_buffered(io, DEFAULT_MAX_BUFFERED)
    }

    /// Wraps `io`, holding at most `max_buffered` bytes (at least one) before
    /// a write must go out first. A connection whose batches are larger than
    /// [`DEFAULT_MAX_BUFFERED`] (a change fanned out to a hundred watch streams) is
    /// written in fewer system calls with a larger limit.
    pub fn with_max_buffered(io: T, max_buffered: usize) -> Self {
        Coalesce {
            io,
            buf: Vec::new(),
            written: 0,
            yielded: false,
            max_buffered: max_buffered.max(1),
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Writes out everything buffered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        self.yielded = false;
        Poll::Ready(Ok(()))
    }

    /// Makes room for more: a full buffer is written out first. Once this is
    /// ready, `buf` holds less than `max_buffered` bytes.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.len() >= self.max_buffered {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_room(cx))?;
        let n = buf.len().min(this.max_buffered - this.buf.len());
        this.buf.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_room(cx))?;
        let mut taken = 0;
        for slice in bufs {
            let n = slice.len().min(this.max_buffered - this.buf.len());
            this.buf.extend_from_slice(&slice[..n]);
            taken += n;
            if n < slice.len() {
                break;
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_empty() {
            return Pin::new(&mut this.io).poll_flush(cx);
        }
        if !this.yielded {
            // Behind every task that is ready now; their writes join this one.
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Connected> Connected for Coalesce<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests;
