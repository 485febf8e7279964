//! Fewer, larger writes to a client's socket.
//!
//! Under load the raft thread finishes a whole batch of proposals at once, and
//! the runtime then completes one request after another. The HTTP/2 server
//! writes and flushes after each of them: one `writev`, one TCP segment and one
//! wake-up of the client per response, which on loopback cost about as much
//! CPU as serving the request itself.
//!
//! [`Coalesce`] sits under the HTTP/2 server. Writes are copied into a buffer.
//! The first flush of a buffer lets the runtime run the other tasks that are
//! ready first (the task wakes itself and returns `Pending`, which puts it
//! behind them), so that the responses they complete join the same buffer; the
//! second flush writes it out. A buffer past [`MAX_BUFFERED`] is written before
//! more is taken, so a large response is still streamed with backpressure.
//!
//! Nothing waits on a timer: when no other task is ready the flush goes out
//! on the next turn of the runtime.
//!
//! Clients gain the same way: `skiff bench kv` wraps its connections in it, so
//! the requests its clients send together leave together.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes held before a write must go out first.
pub(crate) const MAX_BUFFERED: usize = 64 * 1024;

/// An IO whose writes are gathered until a flush, see the module doc.
pub struct Coalesce<T> {
    io: T,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    written: usize,
    /// The flush of the current buffer has already let others go first.
    yielded: bool,
}

impl<T> Coalesce<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> Self {
        Coalesce {
            io,
            buf: Vec::new(),
            written: 0,
            yielded: false,
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
    /// ready, `buf` holds less than [`MAX_BUFFERED`].
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.len() >= MAX_BUFFERED {
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
        let n = buf.len().min(MAX_BUFFERED - this.buf.len());
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
            let n = slice.len().min(MAX_BUFFERED - this.buf.len());
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
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Waker;

    /// A socket that records each write and takes at most `limit` bytes of it,
    /// refusing (Pending) every other write when `stall` is set.
    #[derive(Default)]
    struct Socket {
        writes: Vec<Vec<u8>>,
        limit: Option<usize>,
        stall: bool,
        stalled: bool,
        flushes: usize,
        shut: bool,
    }

    impl AsyncWrite for Socket {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.stall {
                self.stalled = !self.stalled;
                if self.stalled {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            let n = self.limit.map_or(buf.len(), |l| l.min(buf.len()));
            self.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut = true;
            Poll::Ready(Ok(()))
        }
    }

    /// A waker that counts its wakes.
    struct Counter(AtomicUsize);

    impl std::task::Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (Arc::clone(&counter), Waker::from(counter))
    }

    fn write(c: &mut Coalesce<Socket>, cx: &mut Context<'_>, bytes: &[u8]) -> usize {
        match Pin::new(c).poll_write(cx, bytes) {
            Poll::Ready(Ok(n)) => n,
            other => panic!("a write into the buffer is taken at once: {other:?}"),
        }
    }

    #[test]
    fn writes_before_a_flush_go_out_as_one_after_the_task_yields_once() {
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesce::new(Socket::default());
        assert_eq!(write(&mut c, &mut cx, b"headers "), 8);
        let vectored = [io::IoSlice::new(b"data "), io::IoSlice::new(b"trailers")];
        assert!(matches!(
            Pin::new(&mut c).poll_write_vectored(&mut cx, &vectored),
            Poll::Ready(Ok(13))
        ));
        assert!(
            c.io.writes.is_empty(),
            "nothing reaches the socket before a flush"
        );

        // The first flush yields: it wakes its own task and waits.
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_pending());
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(c.io.writes.is_empty());

        // Meanwhile another response joins the buffer.
        write(&mut c, &mut cx, b" second");
        assert!(matches!(
            Pin::new(&mut c).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(c.io.writes, [b"headers data trailers second".to_vec()]);
        assert_eq!(c.io.flushes, 1);

        // An empty buffer flushes at once, without yielding.
        assert!(matches!(
            Pin::new(&mut c).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        // The next buffer yields again.
        write(&mut c, &mut cx, b"next");
        assert!(Pin::new(&mut c).poll_flush(&mut cx).is_pending());
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_full_buffer_is_written_before_more_is_taken_and_partial_writes_resume() {
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesce::new(Socket {
            limit: Some(10_000),
            stall: true,
            ..Default::default()
        });
        let big = vec![7u8; MAX_BUFFERED + 100];
        // Only what fits is taken.
        assert_eq!(write(&mut c, &mut cx, &big), MAX_BUFFERED);
        assert!(c.io.writes.is_empty());
        // The buffer is full: the next write drains it first, through a
        // stalling socket that takes 10,000 bytes at a time.
        let mut polls = 0;
        let n = loop {
            polls += 1;
            assert!(polls < 100, "the drain makes progress");
            match Pin::new(&mut c).poll_write(&mut cx, &big[MAX_BUFFERED..]) {
                Poll::Ready(Ok(n)) => break n,
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => {}
            }
        };
        assert_eq!(n, 100);
        let drained: usize = c.io.writes.iter().map(Vec::len).sum();
        assert_eq!(drained, MAX_BUFFERED, "the whole first buffer went out");
        assert!(c.io.writes.iter().all(|w| w.len() <= 10_000));
        assert_eq!(c.buf.len(), 100);
    }

    #[test]
    fn shutdown_writes_out_what_is_buffered_first() {
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut c = Coalesce::new(Socket::default());
        write(&mut c, &mut cx, b"goaway");
        assert!(matches!(
            Pin::new(&mut c).poll_shutdown(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(c.io.writes, [b"goaway".to_vec()]);
        assert!(c.io.shut);
        assert_eq!(woken.0.load(Ordering::SeqCst), 0, "shutdown does not yield");
    }

    #[tokio::test]
    async fn bytes_flushed_one_response_at_a_time_arrive_whole_and_in_order() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut conn = Coalesce::new(server);
        for part in [&b"one,"[..], b"two,", b"three"] {
            conn.write_all(part).await.unwrap();
            conn.flush().await.unwrap();
        }
        conn.shutdown().await.unwrap();
        let mut got = Vec::new();
        let mut client = client;
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"one,two,three");
    }
}
