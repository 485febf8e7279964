//! The batching rules, on a scripted socket and on real connections.

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
    let big = vec![7u8; DEFAULT_MAX_BUFFERED + 100];
    // Only what fits is taken.
    assert_eq!(write(&mut c, &mut cx, &big), DEFAULT_MAX_BUFFERED);
    assert!(c.io.writes.is_empty());
    // The buffer is full: the next write drains it first, through a
    // stalling socket that takes 10,000 bytes at a time.
    let mut polls = 0;
    let n = loop {
        polls += 1;
        assert!(polls < 100, "the drain makes progress");
        match Pin::new(&mut c).poll_write(&mut cx, &big[DEFAULT_MAX_BUFFERED..]) {
            Poll::Ready(Ok(n)) => break n,
            Poll::Ready(Err(e)) => panic!("{e}"),
            Poll::Pending => {}
        }
    };
    assert_eq!(n, 100);
    let drained: usize = c.io.writes.iter().map(Vec::len).sum();
    assert_eq!(
        drained, DEFAULT_MAX_BUFFERED,
        "the whole first buffer went out"
    );
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

#[test]
fn a_connection_made_with_a_larger_limit_holds_that_much_before_writing() {
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let limit = 4 * DEFAULT_MAX_BUFFERED;
    let mut c = Coalesce::with_max_buffered(Socket::default(), limit);
    let frame = vec![1u8; DEFAULT_MAX_BUFFERED];
    for _ in 0..4 {
        assert_eq!(write(&mut c, &mut cx, &frame), DEFAULT_MAX_BUFFERED);
    }
    assert!(
        c.io.writes.is_empty(),
        "four default buffers' worth fit in one buffer"
    );
    // The fifth must wait for the whole buffer to go out, in one write.
    assert_eq!(write(&mut c, &mut cx, &frame), DEFAULT_MAX_BUFFERED);
    assert_eq!(c.io.writes.len(), 1);
    assert_eq!(c.io.writes[0].len(), limit);
}

#[tokio::test]
async fn a_tcp_connection_delivers_many_flushed_pieces_in_order_and_still_reads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tonic::transport::server::Connected;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        stream.write_all(b"bye").await.unwrap();
        got
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut conn = Coalesce::with_max_buffered(stream, 4096);
    assert_eq!(
        conn.connect_info().remote_addr().map(|a| a.ip()),
        Some(addr.ip()),
        "the peer's address shows through the layer"
    );
    let mut expected = Vec::new();
    for i in 0..1000u32 {
        let piece = format!("frame {i};").repeat(i as usize % 7 + 1);
        conn.write_all(piece.as_bytes()).await.unwrap();
        conn.flush().await.unwrap();
        expected.extend_from_slice(piece.as_bytes());
    }
    conn.shutdown().await.unwrap();
    assert_eq!(peer.await.unwrap(), expected);
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"bye");
}
