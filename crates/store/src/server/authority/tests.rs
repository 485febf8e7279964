//! The rewrite as transcripts: client bytes in, what the server decodes out;
//! then a real store answering a client that sends `http://` authorities.

use std::time::Duration;

use loona_hpack::Decoder;
use prost::Message;
use skiff_proto::etcdserverpb::{PutRequest, RangeRequest, RangeResponse, StatusResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::frame::{flags, kind, FrameHeader, FRAME_HEADER_LEN, PREFACE};
use super::hpack::encode_integer;
use super::rewriter::Rewriter;
use super::AuthorityStream;
use crate::config::StoreConfig;
use crate::grpc::Advertised;
use crate::store::Store;

// ---- building client bytes ----

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        length: payload.len(),
        kind,
        flags,
        stream_id,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

/// The preface and an empty SETTINGS frame, as every client starts.
fn client_start() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(kind::SETTINGS, 0, 0, &[]));
    out
}

fn string(value: &str, out: &mut Vec<u8>) {
    encode_integer(value.len(), 7, 0, out);
    out.extend_from_slice(value.as_bytes());
}

/// HPACK field representations (RFC 7541 §6), by what they do to the
/// client's dynamic table.
enum Field<'a> {
    /// §6.1: a whole entry of the static or dynamic table.
    Indexed(usize),
    /// §6.2.1 with an indexed name: added to the dynamic table.
    Indexing(usize, &'a str),
    /// §6.2.1 with a new name: added to the dynamic table.
    IndexingNew(&'a str, &'a str),
    /// §6.2.2 with an indexed name: not added.
    WithoutIndexing(usize, &'a str),
    /// §6.2.3 with a new name.
    NeverIndexed(&'a str, &'a str),
    /// §6.3: a dynamic table size update.
    TableSize(usize),
}

fn block(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        match *field {
            Field::Indexed(index) => encode_integer(index, 7, 0x80, &mut out),
            Field::Indexing(index, value) => {
                encode_integer(index, 6, 0x40, &mut out);
                string(value, &mut out);
            }
            Field::IndexingNew(name, value) => {
                out.push(0x40);
                string(name, &mut out);
                string(value, &mut out);
            }
            Field::WithoutIndexing(index, value) => {
                encode_integer(index, 4, 0, &mut out);
                string(value, &mut out);
            }
            Field::NeverIndexed(name, value) => {
                out.push(0x10);
                string(name, &mut out);
                string(value, &mut out);
            }
            Field::TableSize(size) => encode_integer(size, 5, 0x20, &mut out),
        }
    }
    out
}

// Static table indexes (RFC 7541 Appendix A).
const AUTHORITY: usize = 1;
const METHOD_POST: usize = 3;
const PATH: usize = 4;
const SCHEME_HTTP: usize = 6;
const CONTENT_TYPE: usize = 31;

/// A gRPC request's header block with `authority`, all fields literal.
fn request(authority: &str, path: &str) -> Vec<u8> {
    block(&[
        Field::Indexed(METHOD_POST),
        Field::Indexed(SCHEME_HTTP),
        Field::WithoutIndexing(PATH, path),
        Field::Indexing(AUTHORITY, authority),
        Field::Indexing(CONTENT_TYPE, "application/grpc"),
        Field::IndexingNew("te", "trailers"),
    ])
}

fn headers(stream_id: u32, end_stream: bool, block: &[u8]) -> Vec<u8> {
    let end = if end_stream { flags::END_STREAM } else { 0 };
    frame(kind::HEADERS, flags::END_HEADERS | end, stream_id, block)
}

// ---- reading what the server gets ----

/// One frame as the server sees it, header blocks joined and decoded.
#[derive(Debug, PartialEq)]
enum Seen {
    Headers {
        stream_id: u32,
        end_stream: bool,
        fields: Vec<(String, String)>,
    },
    Other {
        kind: u8,
        flags: u8,
        stream_id: u32,
        payload: Vec<u8>,
    },
}

/// Parses the server side of a connection, checking that rewritten header
/// frames carry neither padding nor priority.
fn server_view(bytes: &[u8], decoder: &mut Decoder) -> Vec<Seen> {
    assert!(bytes.starts_with(PREFACE), "the preface goes first");
    let mut rest = &bytes[PREFACE.len()..];
    let mut seen = Vec::new();
    let mut open: Option<(u32, bool, Vec<u8>)> = None;
    while let Some(header) = FrameHeader::parse(rest) {
        let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + header.length];
        rest = &rest[FRAME_HEADER_LEN + header.length..];
        match header.kind {
            kind::HEADERS | kind::CONTINUATION => {
                assert_eq!(
                    header.flags & (flags::PADDED | flags::PRIORITY),
                    0,
                    "{header:?}"
                );
                let (_, _, fragments) = open.get_or_insert((
                    header.stream_id,
                    header.flags & flags::END_STREAM != 0,
                    Vec::new(),
                ));
                fragments.extend_from_slice(payload);
                if header.flags & flags::END_HEADERS != 0 {
                    let (stream_id, end_stream, fragments) = open.take().unwrap();
                    let fields = decoder
                        .decode(&fragments)
                        .expect("the server can decode the block")
                        .into_iter()
                        .map(|(n, v)| (text(&n), text(&v)))
                        .collect();
                    seen.push(Seen::Headers {
                        stream_id,
                        end_stream,
                        fields,
                    });
                }
            }
            _ => seen.push(Seen::Other {
                kind: header.kind,
                flags: header.flags,
                stream_id: header.stream_id,
                payload: payload.to_vec(),
            }),
        }
    }
    assert!(rest.is_empty(), "a partial frame at the end: {rest:?}");
    seen
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn authority_of(seen: &Seen) -> Option<&str> {
    match seen {
        Seen::Headers { fields, .. } => fields
            .iter()
            .find(|(n, _)| n == ":authority")
            .map(|(_, v)| v.as_str()),
        Seen::Other { .. } => None,
    }
}

fn push_all(rewriter: &mut Rewriter, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rewriter.push(input, &mut out).expect("rewrite");
    out
}

/// Feeds `input` one byte at a time.
fn push_bytewise(rewriter: &mut Rewriter, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for byte in input {
        rewriter
            .push(std::slice::from_ref(byte), &mut out)
            .expect("rewrite");
    }
    out
}

// ---- the rewriter ----

#[test]
fn a_plain_authority_leaves_the_connection_untouched() {
    let mut input = client_start();
    input.extend(headers(
        1,
        false,
        &request("127.0.0.1:2379", "/etcdserverpb.KV/Range"),
    ));
    input.extend(frame(kind::DATA, flags::END_STREAM, 1, &[0, 0, 0, 0, 0]));
    let mut rewriter = Rewriter::default();
    assert_eq!(push_bytewise(&mut rewriter, &input), input);
    assert!(rewriter.is_passthrough());
    assert_eq!(
        push_all(&mut rewriter, b"anything after"),
        b"anything after"
    );
}

#[test]
fn an_authority_with_a_scheme_becomes_host_and_port() {
    let mut input = client_start();
    input.extend(headers(
        1,
        false,
        &request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/Status"),
    ));
    input.extend(frame(kind::DATA, flags::END_STREAM, 1, &[0, 0, 0, 0, 0]));
    let mut rewriter = Rewriter::default();
    let out = push_all(&mut rewriter, &input);
    assert!(rewriter.is_rewriting());
    let seen = server_view(&out, &mut Decoder::new());
    assert_eq!(
        seen,
        vec![
            Seen::Other {
                kind: kind::SETTINGS,
                flags: 0,
                stream_id: 0,
                payload: vec![],
            },
            Seen::Headers {
                stream_id: 1,
                end_stream: false,
                fields: [
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/etcdserverpb.Maintenance/Status"),
                    (":authority", "127.0.0.1:2379"),
                    ("content-type", "application/grpc"),
                    ("te", "trailers"),
                ]
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            },
            Seen::Other {
                kind: kind::DATA,
                flags: flags::END_STREAM,
                stream_id: 1,
                payload: vec![0, 0, 0, 0, 0],
            },
        ]
    );
}

#[test]
fn padding_priority_and_continuations_are_folded_into_one_clean_block() {
    let block = request("http://10.0.0.1:2379/", "/etcdserverpb.Maintenance/Status");
    let (a, rest) = block.split_at(7);
    let (b, c) = rest.split_at(5);
    // HEADERS with PADDED (3 bytes) and PRIORITY, then two CONTINUATIONs.
    let mut payload = vec![3, 0, 0, 0, 0, 200];
    payload.extend_from_slice(a);
    payload.extend_from_slice(&[0, 0, 0]);
    let mut input = client_start();
    input.extend(frame(
        kind::HEADERS,
        flags::PADDED | flags::PRIORITY | flags::END_STREAM,
        3,
        &payload,
    ));
    input.extend(frame(kind::CONTINUATION, 0, 3, b));
    input.extend(frame(kind::CONTINUATION, flags::END_HEADERS, 3, c));

    let mut rewriter = Rewriter::default();
    let seen = server_view(&push_bytewise(&mut rewriter, &input), &mut Decoder::new());
    assert_eq!(seen.len(), 2, "{seen:?}");
    let Seen::Headers {
        stream_id,
        end_stream,
        fields,
    } = &seen[1]
    else {
        panic!("expected a header block: {seen:?}");
    };
    assert_eq!((*stream_id, *end_stream), (3, true));
    assert_eq!(fields.len(), 6);
    assert_eq!(authority_of(&seen[1]), Some("10.0.0.1:2379"));
}

#[test]
fn dynamic_table_references_resolve_across_requests_on_one_connection() {
    let mut input = client_start();
    // Request 1 adds, newest first: te, content-type, :authority, x-trace.
    let first = block(&[
        Field::Indexed(METHOD_POST),
        Field::Indexed(SCHEME_HTTP),
        Field::WithoutIndexing(PATH, "/a"),
        Field::IndexingNew("x-trace", "abc"),
        Field::Indexing(AUTHORITY, "http://127.0.0.1:2379"),
        Field::Indexing(CONTENT_TYPE, "application/grpc"),
        Field::IndexingNew("te", "trailers"),
    ]);
    input.extend(headers(1, true, &first));
    // Request 2 names them by dynamic index (62 is the newest entry); its
    // :authority comes from the table, and a never-indexed secret is added.
    let second = block(&[
        Field::Indexed(METHOD_POST),
        Field::Indexed(SCHEME_HTTP),
        Field::WithoutIndexing(PATH, "/b"),
        Field::Indexed(64),
        Field::Indexed(63),
        Field::Indexed(62),
        Field::Indexed(65),
        Field::NeverIndexed("authorization", "secret"),
    ]);
    input.extend(headers(3, true, &second));
    // Request 3 empties the table, then sets a new authority by name only.
    let third = block(&[
        Field::TableSize(0),
        Field::TableSize(4096),
        Field::Indexed(METHOD_POST),
        Field::WithoutIndexing(PATH, "/c"),
        Field::Indexing(AUTHORITY, "http://127.0.0.2:2379"),
    ]);
    input.extend(headers(5, true, &third));
    // Request 4 references it as the only dynamic entry.
    input.extend(headers(
        7,
        true,
        &block(&[Field::Indexed(62), Field::WithoutIndexing(PATH, "/d")]),
    ));

    let mut rewriter = Rewriter::default();
    let mut server = Decoder::new();
    let seen = server_view(&push_all(&mut rewriter, &input), &mut server);
    let authorities: Vec<_> = seen.iter().filter_map(authority_of).collect();
    assert_eq!(
        authorities,
        [
            "127.0.0.1:2379",
            "127.0.0.1:2379",
            "127.0.0.2:2379",
            "127.0.0.2:2379"
        ]
    );
    let Seen::Headers { fields, .. } = &seen[2] else {
        panic!("expected request 2: {seen:?}");
    };
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            ":method",
            ":scheme",
            ":path",
            ":authority",
            "content-type",
            "te",
            "x-trace",
            "authorization"
        ]
    );
    assert_eq!(fields[6].1, "abc");
}

#[test]
fn data_frames_are_forwarded_before_they_are_complete() {
    let mut input = client_start();
    input.extend(headers(1, false, &request("http://127.0.0.1:2379", "/a")));
    let data = frame(kind::DATA, 0, 1, &[1; 100]);
    input.extend_from_slice(&data[..50]);
    let mut rewriter = Rewriter::default();
    let out = push_all(&mut rewriter, &input);
    assert!(
        out.ends_with(&data[..50]),
        "the partial DATA frame goes out at once"
    );
    assert_eq!(push_all(&mut rewriter, &data[50..]), &data[50..]);

    // While inspecting too: SETTINGS reaches the server before any request,
    // as grpc-go waits for the server's SETTINGS before sending one.
    let mut rewriter = Rewriter::default();
    let start = client_start();
    assert_eq!(push_all(&mut rewriter, &start), start);
    assert!(!rewriter.is_passthrough());
}

#[test]
fn bytes_that_are_not_http2_pass_unchanged() {
    let input = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut rewriter = Rewriter::default();
    assert_eq!(push_bytewise(&mut rewriter, input), input);
    assert!(rewriter.is_passthrough());
}

#[test]
fn a_broken_first_block_is_left_for_the_server_to_refuse() {
    // Index 99 is in neither table.
    let mut input = client_start();
    input.extend(headers(1, true, &block(&[Field::Indexed(99)])));
    input.extend(frame(kind::DATA, 0, 1, b"x"));
    let mut rewriter = Rewriter::default();
    assert_eq!(push_all(&mut rewriter, &input), input);
    assert!(rewriter.is_passthrough());

    // Padding longer than the frame.
    let mut input = client_start();
    input.extend(frame(
        kind::HEADERS,
        flags::PADDED | flags::END_HEADERS,
        1,
        &[9, 1],
    ));
    let mut rewriter = Rewriter::default();
    assert_eq!(push_all(&mut rewriter, &input), input);
    assert!(rewriter.is_passthrough());
}

#[test]
fn a_protocol_error_after_rewriting_started_ends_the_connection() {
    let mut input = client_start();
    input.extend(headers(1, false, &request("http://127.0.0.1:2379", "/a")));
    // A header block left open, then a DATA frame in the middle of it.
    input.extend(frame(
        kind::HEADERS,
        0,
        3,
        &block(&[Field::Indexed(METHOD_POST)]),
    ));
    input.extend(frame(kind::DATA, 0, 3, b"x"));
    let mut out = Vec::new();
    let err = Rewriter::default().push(&input, &mut out).unwrap_err();
    assert!(
        err.to_string()
            .contains("unexpected frame of type 0 on stream 3"),
        "{err}"
    );

    let mut input = client_start();
    input.extend(headers(1, false, &request("http://127.0.0.1:2379", "/a")));
    input.extend(headers(3, false, &block(&[Field::Indexed(99)])));
    let err = Rewriter::default().push(&input, &mut out).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot decode the header block on stream 3"),
        "{err}"
    );
}

#[test]
fn finishing_flushes_a_partial_header_block_as_received() {
    let mut input = client_start();
    input.extend(frame(kind::HEADERS, 0, 1, &request("127.0.0.1:1", "/a")));
    input.extend_from_slice(&[0, 0]);
    let mut rewriter = Rewriter::default();
    let mut out = push_all(&mut rewriter, &input);
    assert_eq!(out, client_start(), "the open block is held back");
    rewriter.finish(&mut out);
    assert_eq!(out, input);
}

// ---- the stream ----

#[tokio::test]
async fn the_stream_reads_plainly_once_the_first_request_is_seen() {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let mut stream = AuthorityStream::new(server);
    let mut input = client_start();
    input.extend(headers(1, true, &request("127.0.0.1:2379", "/a")));
    client.write_all(&input).await.unwrap();
    let mut read = vec![0; input.len()];
    stream.read_exact(&mut read).await.unwrap();
    assert_eq!(read, input);
    client.write_all(b"rest").await.unwrap();
    let mut rest = [0; 4];
    stream.read_exact(&mut rest).await.unwrap();
    assert_eq!(&rest, b"rest");
    assert!(!stream.is_inspected());
    stream.write_all(b"reply").await.unwrap();
    let mut reply = [0; 5];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"reply");
    drop(client);
    let mut end = Vec::new();
    assert_eq!(stream.read_to_end(&mut end).await.unwrap(), 0);
}

// ---- a served store ----

/// A minimal gRPC client over raw HTTP/2 frames: `h2` itself refuses to send
/// an `:authority` with a scheme, which is exactly what is under test.
struct RawClient {
    socket: TcpStream,
    received: Vec<u8>,
    decoder: Decoder<'static>,
}

/// What came back on one stream.
#[derive(Debug, Default)]
struct Answer {
    status: Option<String>,
    grpc_status: Option<String>,
    message: Vec<u8>,
}

impl RawClient {
    async fn connect(address: std::net::SocketAddr) -> RawClient {
        let mut socket = TcpStream::connect(address)
            .await
            .expect("connect to the store");
        socket
            .write_all(&client_start())
            .await
            .expect("send the preface");
        RawClient {
            socket,
            received: Vec::new(),
            decoder: Decoder::new(),
        }
    }

    /// Sends one unary call: its header block, then the message in one DATA frame.
    async fn call(&mut self, stream_id: u32, header_block: &[u8], message: &[u8]) -> Answer {
        let mut body = vec![0];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
        let mut bytes = headers(stream_id, false, header_block);
        bytes.extend(frame(kind::DATA, flags::END_STREAM, stream_id, &body));
        self.socket.write_all(&bytes).await.expect("send the call");
        tokio::time::timeout(Duration::from_secs(30), self.answer(stream_id))
            .await
            .expect("the store answers")
    }

    async fn answer(&mut self, stream_id: u32) -> Answer {
        let mut answer = Answer::default();
        loop {
            let Some(header) = FrameHeader::parse(&self.received) else {
                self.read_more().await;
                continue;
            };
            let len = FRAME_HEADER_LEN + header.length;
            if self.received.len() < len {
                self.read_more().await;
                continue;
            }
            let frame_bytes: Vec<u8> = self.received.drain(..len).collect();
            let payload = &frame_bytes[FRAME_HEADER_LEN..];
            match header.kind {
                kind::SETTINGS if header.flags & flags::ACK == 0 => {
                    let ack = frame(kind::SETTINGS, flags::ACK, 0, &[]);
                    self.socket
                        .write_all(&ack)
                        .await
                        .expect("acknowledge SETTINGS");
                }
                kind::HEADERS => {
                    assert_eq!(
                        header.flags & flags::END_HEADERS,
                        flags::END_HEADERS,
                        "small answers"
                    );
                    let fields = self
                        .decoder
                        .decode(payload)
                        .expect("decode the answer's headers");
                    if header.stream_id != stream_id {
                        continue;
                    }
                    for (name, value) in fields {
                        match &name[..] {
                            b":status" => answer.status = Some(text(&value)),
                            b"grpc-status" => answer.grpc_status = Some(text(&value)),
                            _ => {}
                        }
                    }
                    if header.flags & flags::END_STREAM != 0 {
                        return answer;
                    }
                }
                kind::DATA if header.stream_id == stream_id => {
                    answer
                        .message
                        .extend_from_slice(payload.get(5..).unwrap_or_default());
                    if header.flags & flags::END_STREAM != 0 {
                        return answer;
                    }
                }
                kind::RST_STREAM if header.stream_id == stream_id => {
                    panic!("the store reset stream {stream_id}: {payload:?}");
                }
                _ => {}
            }
        }
    }

    async fn read_more(&mut self) {
        let mut chunk = [0; 4096];
        let n = self
            .socket
            .read(&mut chunk)
            .await
            .expect("read from the store");
        assert!(n > 0, "the store closed the connection");
        self.received.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn the_store_answers_requests_whose_authority_is_a_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = StoreConfig {
        data_dir: dir.path().join("data"),
        ..StoreConfig::default()
    };
    let store = Store::open(config).await.expect("open the store");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(super::super::serve(
        vec![listener],
        store.clone(),
        Advertised::default(),
        shutdown.clone(),
    ));

    let url = format!("http://{address}");
    let mut client = RawClient::connect(address).await;
    let status = client
        .call(1, &request(&url, "/etcdserverpb.Maintenance/Status"), &[])
        .await;
    assert_eq!(status.status.as_deref(), Some("200"), "{status:?}");
    assert_eq!(status.grpc_status.as_deref(), Some("0"), "{status:?}");
    let reply = StatusResponse::decode(&status.message[..]).expect("a StatusResponse");
    assert_eq!(
        reply.header.map(|h| h.member_id),
        Some(store.config().member_id())
    );

    // Later calls name the authority by its dynamic table entry (62 + 2:
    // te and content-type were added after it).
    let put = PutRequest {
        key: b"/a".to_vec(),
        value: b"1".to_vec(),
        ..PutRequest::default()
    };
    let from_table = |path: &str| {
        block(&[
            Field::Indexed(METHOD_POST),
            Field::Indexed(SCHEME_HTTP),
            Field::WithoutIndexing(PATH, path),
            Field::Indexed(64),
            Field::Indexed(63),
            Field::Indexed(62),
        ])
    };
    let answer = client
        .call(3, &from_table("/etcdserverpb.KV/Put"), &put.encode_to_vec())
        .await;
    assert_eq!(answer.grpc_status.as_deref(), Some("0"), "{answer:?}");
    let range = RangeRequest {
        key: b"/a".to_vec(),
        ..RangeRequest::default()
    };
    let answer = client
        .call(
            5,
            &from_table("/etcdserverpb.KV/Range"),
            &range.encode_to_vec(),
        )
        .await;
    assert_eq!(answer.grpc_status.as_deref(), Some("0"), "{answer:?}");
    let reply = RangeResponse::decode(&answer.message[..]).expect("a RangeResponse");
    let values: Vec<&[u8]> = reply.kvs.iter().map(|kv| &kv.value[..]).collect();
    assert_eq!(values, [b"1"]);

    drop(client);
    shutdown.cancel();
    let _ = server.await;
    store.close().await;
}
