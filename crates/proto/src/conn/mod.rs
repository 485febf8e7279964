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
//! [`Coalesce`] takes the connection's writes into a buffer and leaves the
//! socket to a writer task of its own. Woken by the first bytes of a buffer,
//! the writer first yields, so that the other tasks woken by the same change
//! (the responses and frames they produce) join the buffer, then writes all of
//! it at once. The connection's own task never waits for the socket: a flush
//! hands the bytes over and returns. A buffer past its limit
//! ([`DEFAULT_MAX_BUFFERED`], or the one given to
//! [`Coalesce::with_max_buffered`]) takes no more until the writer has taken
//! it, so a large response is still streamed with backpressure. Nothing waits
//! on a timer: when no other task is ready the writer runs on the next turn of
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
//! Why a writer task rather than writing inline in the connection's task: an
//! inline flush that yields stops the whole HTTP/2 connection (reading,
//! window updates, other streams' frames) until the runtime comes back to it,
//! behind every watch stream woken by the same change. Under 1,000 watchers
//! and 100 writes/s that tripled the API server's event latency (p50 2.6 →
//! 6.5 ms, worse on a busy machine; docs/benchmarks.md has the runs).
//!
//! It lives in skiff-proto because this crate is the wire every server, client
//! and load generator of skiff already shares (and already depends on tonic);
//! neither server's crate is a place the other, or a client, should import.
//!
//! # Caveats
//! - Create it inside a Tokio runtime: the writer task is spawned on it.
//! - A flush does not wait for the socket: a write error is reported by the
//!   next write, flush or shutdown. A dropped connection's writer still writes
//!   what was handed over, then shuts the socket down.
//! - The IO is split in two halves (Tokio's `split`, a lock shared by reads and
//!   the writer's writes).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::Notify;
use tonic::transport::server::Connected;

/// Bytes held before a write must wait for the writer, unless the connection
/// was made with [`Coalesce::with_max_buffered`].
pub const DEFAULT_MAX_BUFFERED: usize = 64 * 1024;

/// An IO whose writes a writer task gathers and writes, see the module doc.
pub struct Coalesce<T: Connected> {
    read: ReadHalf<T>,
    shared: Arc<Shared>,
    /// Behind an `Arc`, so that the connection is `Unpin` whatever its info.
    info: Arc<T::ConnectInfo>,
}

struct Shared {
    state: Mutex<WriteState>,
    /// Wakes the writer: bytes arrived, or the connection is closing.
    wake_writer: Notify,
    /// Bytes held before a write must wait.
    max_buffered: usize,
}

#[derive(Default)]
struct WriteState {
    /// Bytes the writer has not taken yet.
    buffer: Vec<u8>,
    /// The writer failed: every later write fails with this.
    failed: Option<io::ErrorKind>,
    /// No more writes come; the writer writes what is left and shuts down.
    closing: bool,
    /// The writer has shut the IO down (or failed) and ended.
    closed: bool,
    /// A write waiting for room in `buffer`.
    room_waiter: Option<Waker>,
    /// A shutdown waiting for the writer to end.
    close_waiter: Option<Waker>,
}

impl<T> Coalesce<T>
where
    T: AsyncRead + AsyncWrite + Connected + Send + 'static,
{
    /// Wraps `io`, holding at most [`DEFAULT_MAX_BUFFERED`] bytes, and spawns
    /// its writer.
    pub fn new(io: T) -> Self {
        Coalesce::with_max_buffered(io, DEFAULT_MAX_BUFFERED)
    }

    /// Wraps `io`, holding at most `max_buffered` bytes (at least one) before
    /// a write waits for the writer. A connection whose batches are larger than
    /// [`DEFAULT_MAX_BUFFERED`] (a change fanned out to a hundred watch streams) is
    /// written in fewer system calls with a larger limit.
    pub fn with_max_buffered(io: T, max_buffered: usize) -> Self {
        let info = io.connect_info();
        let (read, write) = tokio::io::split(io);
        let shared = Arc::new(Shared {
            state: Mutex::new(WriteState::default()),
            wake_writer: Notify::new(),
            max_buffered: max_buffered.max(1),
        });
        tokio::spawn(write_loop(shared.clone(), write));
        Coalesce {
            read,
            shared,
            info: Arc::new(info),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes what the connection hands over, a batch at a time, until it closes.
async fn write_loop<T: AsyncWrite>(shared: Arc<Shared>, mut io: WriteHalf<T>) {
    let mut batch = Vec::new();
    loop {
        let closing = loop {
            let notified = shared.wake_writer.notified();
            {
                let state = shared.lock();
                if !state.buffer.is_empty() || state.closing {
                    break state.closing;
                }
            }
            notified.await;
        };
        if !closing {
            // Behind every task that is ready now; their writes join this batch.
            tokio::task::yield_now().await;
        }
        {
            let mut state = shared.lock();
            std::mem::swap(&mut batch, &mut state.buffer);
            if let Some(waiter) = state.room_waiter.take() {
                waiter.wake();
            }
        }
        let mut result = Ok(());
        if !batch.is_empty() {
            result = io.write_all(&batch).await;
            if result.is_ok() {
                result = io.flush().await;
            }
        }
        batch.clear();
        let done = result.is_err() || (closing && shared.lock().buffer.is_empty());
        if done {
            if result.is_ok() {
                let _ = io.shutdown().await;
            }
            let mut state = shared.lock();
            if let Err(err) = result {
                state.failed = Some(err.kind());
            }
            state.closed = true;
            let waiters = [state.room_waiter.take(), state.close_waiter.take()];
            drop(state);
            waiters.into_iter().flatten().for_each(Waker::wake);
            return;
        }
    }
}

fn writer_failed(kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, "the connection's writer failed")
}

impl<T: Connected> Coalesce<T> {
    /// Takes what fits of `bufs` into the buffer.
    fn poll_buffer(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let max = self.shared.max_buffered;
        let mut state = self.shared.lock();
        if let Some(kind) = state.failed {
            return Poll::Ready(Err(writer_failed(kind)));
        }
        if state.closing || state.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if state.buffer.len() >= max {
            state.room_waiter = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let was_empty = state.buffer.is_empty();
        let mut taken = 0;
        for slice in bufs {
            let n = slice.len().min(max - state.buffer.len());
            state.buffer.extend_from_slice(&slice[..n]);
            taken += n;
            if n < slice.len() {
                break;
            }
        }
        drop(state);
        if was_empty && taken > 0 {
            self.shared.wake_writer.notify_one();
        }
        Poll::Ready(Ok(taken))
    }
}

impl<T: AsyncRead + Connected> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<T: Connected> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_buffer(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_buffer(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer writes everything handed over without being asked.
        match self.shared.lock().failed {
            Some(kind) => Poll::Ready(Err(writer_failed(kind))),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        if state.closed {
            return Poll::Ready(match state.failed {
                Some(kind) => Err(writer_failed(kind)),
                None => Ok(()),
            });
        }
        state.closing = true;
        state.close_waiter = Some(cx.waker().clone());
        drop(state);
        self.shared.wake_writer.notify_one();
        Poll::Pending
    }
}

impl<T: Connected> Drop for Coalesce<T> {
    fn drop(&mut self) {
        // The writer writes what is left, shuts the IO down and ends.
        self.shared.lock().closing = true;
        self.shared.wake_writer.notify_one();
    }
}

impl<T: Connected> Connected for Coalesce<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        T::ConnectInfo::clone(&self.info)
    }
}

#[cfg(test)]
mod tests;
