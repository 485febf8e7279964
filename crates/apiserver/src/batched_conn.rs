//! A TCP connection of the gRPC server whose writes are batched: many HTTP/2
//! frames go to the socket in one system call.
//!
//! One change watched by a thousand clients becomes a thousand HTTP/2 DATA
//! frames, one per watch stream. The HTTP/2 library writes a DATA frame of
//! more than a few hundred bytes to the socket on its own (it hands the
//! payload to `writev` rather than copying it), and the stream tasks wake the
//! connection's task one after another, so each frame costs a system call and
//! a TCP segment: most of the server's time went there.
//!
//! [`BatchedConn`] takes the connection's writes into a buffer and leaves the
//! socket to a writer task of its own. Woken by the first bytes, the writer
//! first yields, so that the other tasks woken by the same change add their
//! frames, then writes all of it at once. Nothing waits for a timer: the
//! writer runs as soon as the runtime has nothing more urgent to do.
//!
//! # Caveats
//! `poll_flush` does not wait for the socket: bytes handed over are written
//! by the writer task without further calls, and a write error is reported by
//! the next write. Shutdown waits for everything to be written.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How many bytes may wait for the writer before writes wait for it (the
/// connection's backpressure).
const MAX_BUFFERED: usize = 256 * 1024;

/// A TCP connection whose writes a writer task batches. Create it inside a
/// Tokio runtime: the writer task is spawned on it.
pub(crate) struct BatchedConn {
    read: OwnedReadHalf,
    shared: Arc<Shared>,
    info: TcpConnectInfo,
}

struct Shared {
    state: Mutex<WriteState>,
    /// Wakes the writer: bytes arrived, or the connection is closing.
    wake_writer: Notify,
}

#[derive(Default)]
struct WriteState {
    /// Bytes the writer has not taken yet.
    buffer: Vec<u8>,
    /// The writer failed: every later write fails with this.
    failed: Option<io::ErrorKind>,
    /// No more writes come; the writer writes what is left and shuts down.
    closing: bool,
    /// The writer has shut the socket down (or failed) and ended.
    closed: bool,
    /// A write waiting for room in `buffer`.
    room_waiter: Option<Waker>,
    /// A shutdown waiting for the writer to end.
    close_waiter: Option<Waker>,
}

impl BatchedConn {
    /// Wraps `stream`, spawning its writer task.
    pub(crate) fn new(stream: TcpStream) -> BatchedConn {
        let info = TcpConnectInfo {
            local_addr: stream.local_addr().ok(),
            remote_addr: stream.peer_addr().ok(),
        };
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            state: Mutex::new(WriteState::default()),
            wake_writer: Notify::new(),
        });
        tokio::spawn(write_loop(shared.clone(), write));
        BatchedConn { read, shared, info }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes what the connection hands over, a batch at a time, until it closes.
async fn write_loop(shared: Arc<Shared>, mut socket: OwnedWriteHalf) {
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
            // Let the tasks woken by the same change queue their frames too.
            tokio::task::yield_now().await;
        }
        {
            let mut state = shared.lock();
            std::mem::swap(&mut batch, &mut state.buffer);
            if let Some(waiter) = state.room_waiter.take() {
                waiter.wake();
            }
        }
        let result = if batch.is_empty() {
            Ok(())
        } else {
            socket.write_all(&batch).await
        };
        batch.clear();
        if let Err(err) = &result {
            tracing::debug!(%err, "writing to an API connection failed");
        }
        let done = result.is_err() || (closing && shared.lock().buffer.is_empty());
        if done {
            if result.is_ok() {
                let _ = socket.shutdown().await;
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

impl BatchedConn {
    fn poll_buffer(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        if let Some(kind) = state.failed {
            return Poll::Ready(Err(io::Error::new(kind, "the connection's writer failed")));
        }
        if state.closing || state.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if state.buffer.len() >= MAX_BUFFERED {
            state.room_waiter = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let was_empty = state.buffer.is_empty();
        let mut written = 0;
        for buf in bufs {
            state.buffer.extend_from_slice(buf);
            written += buf.len();
        }
        drop(state);
        if was_empty && written > 0 {
            self.shared.wake_writer.notify_one();
        }
        Poll::Ready(Ok(written))
    }
}

impl AsyncRead for BatchedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for BatchedConn {
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
            Some(kind) => Poll::Ready(Err(io::Error::new(kind, "the connection's writer failed"))),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        if state.closed {
            return Poll::Ready(Ok(()));
        }
        state.closing = true;
        state.close_waiter = Some(cx.waker().clone());
        drop(state);
        self.shared.wake_writer.notify_one();
        Poll::Pending
    }
}

impl Drop for BatchedConn {
    fn drop(&mut self) {
        // The writer writes what is left, shuts the socket down and ends.
        self.shared.lock().closing = true;
        self.shared.wake_writer.notify_one();
    }
}

impl Connected for BatchedConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn bytes_written_in_pieces_arrive_in_order_and_shutdown_ends_the_stream() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.unwrap();
            stream.write_all(b"bye").await.unwrap();
            got
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = BatchedConn::new(stream);
        assert_eq!(
            conn.connect_info().remote_addr.map(|a| a.ip()),
            Some(addr.ip())
        );
        let mut expected = Vec::new();
        for i in 0..1000u32 {
            let piece = format!("frame {i};").repeat(i as usize % 7 + 1);
            conn.write_all(piece.as_bytes()).await.unwrap();
            conn.flush().await.unwrap();
            expected.extend_from_slice(piece.as_bytes());
        }
        conn.shutdown().await.unwrap();
        assert_eq!(client.await.unwrap(), expected);
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"bye");
    }
}
