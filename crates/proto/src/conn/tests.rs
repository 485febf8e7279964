//! The batching rules, on real connections.

use super::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A connected pair: the wrapped server side and the plain client side.
async fn pair(max_buffered: usize) -> (Coalesce<TcpStream>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (Coalesce::with_max_buffered(server, max_buffered), client)
}

#[tokio::test]
async fn bytes_flushed_one_piece_at_a_time_arrive_whole_and_in_order() {
    let (mut conn, mut client) = pair(DEFAULT_MAX_BUFFERED).await;
    let mut sent = Vec::new();
    for i in 0..1000u32 {
        let piece = format!("piece {i};");
        conn.write_all(piece.as_bytes()).await.unwrap();
        conn.flush().await.unwrap();
        sent.extend_from_slice(piece.as_bytes());
    }
    conn.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_full_buffer_takes_no_more_until_the_writer_has_taken_it() {
    let (conn, mut client) = pair(16).await;
    let mut cx = Context::from_waker(Waker::noop());
    let taken = match conn.poll_buffer(&mut cx, &[io::IoSlice::new(&[7u8; 40])]) {
        Poll::Ready(Ok(n)) => n,
        other => panic!("the first write is taken: {other:?}"),
    };
    assert_eq!(taken, 16, "no more than the limit is held");
    assert!(
        conn.poll_buffer(&mut cx, &[io::IoSlice::new(b"x")])
            .is_pending(),
        "a full buffer waits for the writer"
    );
    // The writer takes the buffer on its turn; room comes back.
    let mut conn = conn;
    conn.write_all(b"tail").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 20);
    assert!(got.ends_with(b"tail"));
}

#[tokio::test]
async fn a_dropped_connection_still_writes_what_was_handed_over() {
    let (mut conn, mut client) = pair(DEFAULT_MAX_BUFFERED).await;
    conn.write_all(b"last words").await.unwrap();
    conn.flush().await.unwrap();
    drop(conn);
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
}

#[tokio::test]
async fn the_connection_still_reads_while_its_writer_writes() {
    let (mut conn, mut client) = pair(DEFAULT_MAX_BUFFERED).await;
    client.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
    conn.write_all(b"pong").await.unwrap();
    conn.flush().await.unwrap();
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"pong");
}

#[tokio::test]
async fn writes_after_the_peer_is_gone_fail_rather_than_vanish() {
    let (mut conn, client) = pair(DEFAULT_MAX_BUFFERED).await;
    drop(client);
    let mut failed = false;
    // The first writes may be taken before the writer meets the closed socket.
    for _ in 0..200 {
        let written = conn.write_all(&[0u8; 4096]).await;
        let flushed = conn.flush().await;
        if written.is_err() || flushed.is_err() {
            failed = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(failed, "a write error reaches the connection");
}
