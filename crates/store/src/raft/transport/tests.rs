//! Transports talking to each other through real tonic servers on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft::eraftpb::{Message, MessageType};
use raft::SnapshotStatus;
use skiff_proto::raftpb::raft_client::RaftClient;
use skiff_proto::raftpb::{Header, MessageBatch, SnapshotChunk};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use super::{encode, Incoming, Transport};

const CLUSTER: u64 = 0xc1;
/// How long to wait for something that should happen: generous, since it
/// only fails a test in which nothing happens at all.
const PATIENCE: Duration = Duration::from_secs(30);

/// One member: a transport, its tonic server and what it delivered.
struct Member {
    id: u64,
    transport: Transport,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    url: String,
    server: CancellationToken,
    server_task: JoinHandle<()>,
}

/// Serves `transport`'s peer service on `listener` until the returned token is
/// cancelled; the task keeps the transport alive meanwhile.
pub(super) fn serve(
    transport: Transport,
    listener: TcpListener,
) -> (CancellationToken, JoinHandle<()>) {
    let stop = CancellationToken::new();
    let router = tonic::transport::Server::builder().add_service(transport.service());
    let shutdown = stop.clone();
    let task = tokio::spawn(async move {
        let _keep = transport;
        router
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            )
            .await
            .unwrap();
    });
    (stop, task)
}

impl Member {
    async fn start(id: u64, cluster: u64) -> Member {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Member::start_on(id, cluster, listener)
    }

    fn start_on(id: u64, cluster: u64, listener: TcpListener) -> Member {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (deliver, incoming) = mpsc::unbounded_channel();
        let transport = Transport::new(
            id,
            cluster,
            Arc::new(move |item| {
                let _ = deliver.send(item);
            }),
        );
        let (server, server_task) = serve(transport.clone(), listener);
        Member {
            id,
            transport,
            incoming,
            url,
            server,
            server_task,
        }
    }

    /// The next thing delivered, however long the transport needs.
    async fn next(&mut self) -> Incoming {
        tokio::time::timeout(PATIENCE, self.incoming.recv())
            .await
            .unwrap_or_else(|_| panic!("member {} received nothing in {PATIENCE:?}", self.id))
            .expect("the deliver callback is alive")
    }

    /// The next message delivered, skipping reports.
    async fn next_message(&mut self) -> Message {
        loop {
            if let Incoming::Message(message) = self.next().await {
                return message;
            }
        }
    }

    /// Waits for a report that matches.
    async fn wait_for(&mut self, what: &str, matches: impl Fn(&Incoming) -> bool) {
        loop {
            let incoming = self.next().await;
            if matches(&incoming) {
                return;
            }
            assert!(
                !matches!(incoming, Incoming::Message(_)),
                "member {} got {incoming:?} while waiting for {what}",
                self.id
            );
        }
    }

    /// Sends a snapshot to member 2 and waits for its failure report.
    async fn snapshot_to_2_fails(&mut self, data: Bytes) {
        self.transport.send(vec![snapshot(self.id, 2, data)]);
        self.wait_for("SnapshotStatus(2, Failure)", |i| {
            matches!(i, Incoming::SnapshotStatus(2, SnapshotStatus::Failure))
        })
        .await;
    }

    /// Asserts that this member has handed nothing to raft yet: the first
    /// message it delivers is one that a member of its cluster sends now.
    async fn delivered_nothing_so_far(&mut self) {
        let friend = Member::start(3, CLUSTER).await;
        friend.transport.set_peer(self.id, &self.url);
        friend.transport.send(vec![message(3, self.id, 42)]);
        let first = self.next_message().await;
        assert_eq!((first.from, first.commit), (3, 42));
        friend.stop().await;
    }

    async fn stop(self) {
        self.transport.shutdown();
        self.server.cancel();
        tokio::time::timeout(PATIENCE, self.server_task)
            .await
            .expect("the server shuts down")
            .expect("the server task ends cleanly");
    }
}

/// A heartbeat-sized message; `commit` tells messages apart.
fn message(from: u64, to: u64, commit: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgHeartbeat);
    message.from = from;
    message.to = to;
    message.term = 3;
    message.commit = commit;
    message
}

fn snapshot(from: u64, to: u64, data: Bytes) -> Message {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgSnapshot);
    message.from = from;
    message.to = to;
    message.term = 3;
    let snapshot = message.mut_snapshot();
    snapshot.mut_metadata().index = 77;
    snapshot.mut_metadata().term = 2;
    snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
    snapshot.set_data(data);
    message
}

/// An address nobody listens on (for as long as nobody else takes it).
async fn vacant_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_in_order() {
    let a = Member::start(1, CLUSTER).await;
    let mut b = Member::start(2, CLUSTER).await;
    a.transport.set_peer(2, &b.url);
    // In several sends, as successive Readys would.
    for round in 0..10 {
        a.transport
            .send((0..300).map(|i| message(1, 2, round * 300 + i)).collect());
    }
    for commit in 0..3000 {
        let received = b.next_message().await;
        assert_eq!(received.commit, commit, "messages out of order");
        assert_eq!(received, message(1, 2, commit));
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_starts_later_is_reached_after_reconnecting() {
    let mut a = Member::start(1, CLUSTER).await;
    let address = vacant_address().await;
    a.transport.set_peer(2, &format!("http://{address}"));
    a.transport.send(vec![message(1, 2, 0)]);
    a.wait_for("Unreachable(2)", |i| matches!(i, Incoming::Unreachable(2)))
        .await;

    let mut b = Member::start_on(2, CLUSTER, TcpListener::bind(address).await.unwrap());
    // Raft retransmits: keep sending until one gets through.
    let mut commit = 1;
    let received = loop {
        a.transport.send(vec![message(1, 2, commit)]);
        commit += 1;
        match tokio::time::timeout(Duration::from_millis(100), b.incoming.recv()).await {
            Ok(Some(Incoming::Message(received))) => break received,
            Ok(other) => panic!("member 2 got {other:?}"),
            Err(_) => assert!(commit < 600, "member 2 was never reached"),
        }
    };
    assert!(received.commit >= 1, "{received:?}");
    // Once connected, the stream delivers everything that follows, in order.
    a.transport
        .send((0..100).map(|i| message(1, 2, 10_000 + i)).collect());
    let mut expected = 10_000;
    while expected < 10_100 {
        let received = b.next_message().await;
        if received.commit >= 10_000 {
            assert_eq!(received.commit, expected);
            expected += 1;
        }
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_peer_is_reported_unreachable_and_send_never_blocks() {
    let mut a = Member::start(1, CLUSTER).await;
    let address = vacant_address().await;
    a.transport.set_peer(2, &format!("http://{address}"));
    // From a plain thread, as the raft thread calls it: far more than the queue holds.
    let transport = a.transport.clone();
    let sender = std::thread::spawn(move || {
        for round in 0..20 {
            transport.send((0..1000).map(|i| message(1, 2, round * 1000 + i)).collect());
        }
    });
    a.wait_for("Unreachable(2)", |i| matches!(i, Incoming::Unreachable(2)))
        .await;
    tokio::task::spawn_blocking(move || sender.join())
        .await
        .unwrap()
        .expect("send returned");
    // Reports keep coming while the peer stays down.
    a.transport.send(vec![message(1, 2, 1)]);
    a.wait_for("Unreachable(2)", |i| matches!(i, Incoming::Unreachable(2)))
        .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_an_unknown_peer_is_reported_unreachable() {
    let mut a = Member::start(1, CLUSTER).await;
    a.transport.send(vec![message(1, 9, 0)]);
    assert!(matches!(a.next().await, Incoming::Unreachable(9)));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_megabyte_snapshot_arrives_intact() {
    let mut a = Member::start(1, CLUSTER).await;
    let mut b = Member::start(2, CLUSTER).await;
    a.transport.set_peer(2, &b.url);
    // Not a whole number of chunks, and no two chunks alike.
    let data: Bytes = (0..(5 << 20) + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let sent = snapshot(1, 2, data.clone());
    a.transport.send(vec![message(1, 2, 5), sent.clone()]);

    let mut got_snapshot = None;
    while got_snapshot.is_none() {
        let received = b.next_message().await;
        if received.get_msg_type() == MessageType::MsgSnapshot {
            got_snapshot = Some(received);
        }
    }
    let received = got_snapshot.unwrap();
    assert_eq!(received.get_snapshot().get_data().len(), data.len());
    assert!(
        *received.get_snapshot().get_data() == data,
        "snapshot data changed in transit"
    );
    assert_eq!(received, sent);
    a.wait_for("SnapshotStatus(2, Finish)", |i| {
        matches!(i, Incoming::SnapshotStatus(2, SnapshotStatus::Finish))
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_to_a_down_peer_fails() {
    let mut a = Member::start(1, CLUSTER).await;
    let address = vacant_address().await;
    a.transport.set_peer(2, &format!("http://{address}"));
    a.snapshot_to_2_fails(Bytes::from(vec![7u8; 3 << 20])).await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_of_another_cluster_is_refused() {
    let mut stranger = Member::start(1, CLUSTER + 1).await;
    let mut b = Member::start(2, CLUSTER).await;
    stranger.transport.set_peer(2, &b.url);
    stranger.transport.send(vec![message(1, 2, 0)]);
    stranger
        .wait_for("Unreachable(2)", |i| matches!(i, Incoming::Unreachable(2)))
        .await;
    stranger
        .snapshot_to_2_fails(Bytes::from_static(b"state"))
        .await;
    // Member 2 must have delivered nothing of the stranger's.
    b.delivered_nothing_so_far().await;
    stranger.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_names_what_it_refuses() {
    let b = Member::start(2, CLUSTER).await;
    let mut client = RaftClient::connect(b.url.clone()).await.unwrap();
    let header = |cluster_id, to| Header {
        cluster_id,
        from: 1,
        to,
    };
    let refusal = |batch: MessageBatch| {
        let mut client = client.clone();
        async move {
            let mut acks = client
                .send(tokio_stream::iter(vec![batch]))
                .await
                .unwrap()
                .into_inner();
            acks.message().await.expect_err("the batch is refused")
        }
    };

    let status = refusal(MessageBatch {
        header: Some(header(CLUSTER + 1, 2)),
        messages: vec![encode(&message(1, 2, 0)).unwrap()],
    })
    .await;
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("cluster ID mismatch"),
        "{status:?}"
    );

    let status = refusal(MessageBatch {
        header: Some(header(CLUSTER, 3)),
        messages: vec![encode(&message(1, 3, 0)).unwrap()],
    })
    .await;
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("for member 3"), "{status:?}");

    // The envelope is right but a message in it is for someone else.
    let status = refusal(MessageBatch {
        header: Some(header(CLUSTER, 2)),
        messages: vec![encode(&message(1, 3, 0)).unwrap()],
    })
    .await;
    assert!(status.message().contains("for member 3"), "{status:?}");

    let status = refusal(MessageBatch {
        header: Some(header(CLUSTER, 2)),
        messages: vec![vec![0xff, 0xff, 0xff]],
    })
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // A snapshot whose data does not match its checksum.
    let mut first = SnapshotChunk {
        header: Some(header(CLUSTER, 2)),
        message: encode(&snapshot(1, 2, Bytes::new())).unwrap(),
        data_size: 4,
        data_crc32: crc32fast::hash(b"good"),
        data: Vec::new(),
    };
    let bad = SnapshotChunk {
        data: b"evil".to_vec(),
        ..SnapshotChunk::default()
    };
    let status = client
        .send_snapshot(tokio_stream::iter(vec![first.clone(), bad]))
        .await
        .expect_err("a corrupt snapshot is refused");
    assert_eq!(status.code(), tonic::Code::DataLoss);
    assert!(status.message().contains("checksum"), "{status:?}");

    // A snapshot that ends early.
    first.data_size = 8;
    let status = client
        .send_snapshot(tokio_stream::iter(vec![first.clone()]))
        .await
        .expect_err("a truncated snapshot is refused");
    assert!(
        status.message().contains("after 0 of 8 bytes"),
        "{status:?}"
    );

    // A snapshot from another cluster.
    first.header = Some(header(CLUSTER + 1, 2));
    let status = client
        .send_snapshot(tokio_stream::iter(vec![first]))
        .await
        .expect_err("a stranger's snapshot is refused");
    assert!(
        status.message().contains("cluster ID mismatch"),
        "{status:?}"
    );
    drop(client);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_peer_with_a_new_url_reconnects() {
    let a = Member::start(1, CLUSTER).await;
    let mut old = Member::start(2, CLUSTER).await;
    a.transport.set_peer(2, &old.url);
    a.transport.send(vec![message(1, 2, 1)]);
    assert_eq!(old.next_message().await.commit, 1);

    // Member 2 moves to a new address.
    let mut new = Member::start(2, CLUSTER).await;
    a.transport.set_peer(2, &new.url);
    a.transport.send(vec![message(1, 2, 2)]);
    assert_eq!(new.next_message().await.commit, 2);
    // Setting the same URL again changes nothing.
    a.transport.set_peer(2, &new.url);
    a.transport.send(vec![message(1, 2, 3)]);
    assert_eq!(new.next_message().await.commit, 3);
    a.stop().await;
    old.stop().await;
    new.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_peer_stops_sending_to_it() {
    let mut a = Member::start(1, CLUSTER).await;
    let mut b = Member::start(2, CLUSTER).await;
    a.transport.set_peer(2, &b.url);
    a.transport.send(vec![message(1, 2, 1)]);
    assert_eq!(b.next_message().await.commit, 1);

    a.transport.remove_peer(2);
    a.transport.send(vec![message(1, 2, 2)]);
    a.wait_for("Unreachable(2)", |i| matches!(i, Incoming::Unreachable(2)))
        .await;
    // Added back, it gets what is sent from now on and never saw message 2.
    a.transport.set_peer(2, &b.url);
    a.transport.send(vec![message(1, 2, 3)]);
    assert_eq!(b.next_message().await.commit, 3);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_streams_of_peers() {
    let mut a = Member::start(1, CLUSTER).await;
    let mut b = Member::start(2, CLUSTER).await;
    a.transport.set_peer(2, &b.url);
    a.transport.send(vec![message(1, 2, 1)]);
    assert_eq!(b.next_message().await.commit, 1);
    // b's server holds a's open stream; it must still shut down gracefully.
    b.stop().await;
    a.wait_for("Unreachable(2)", |i| matches!(i, Incoming::Unreachable(2)))
        .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_refused_and_learns_that_it_was_removed() {
    let mut removed = Member::start(1, CLUSTER).await;
    let mut b = Member::start(2, CLUSTER).await;
    b.transport.set_removed(&[1].into());
    removed.transport.set_peer(2, &b.url);

    removed.transport.send(vec![message(1, 2, 0)]);
    removed
        .wait_for("Removed(2)", |i| matches!(i, Incoming::Removed(2)))
        .await;
    // A snapshot is refused too.
    removed
        .snapshot_to_2_fails(Bytes::from_static(b"state"))
        .await;
    // Member 2 delivered nothing of the removed member's.
    b.delivered_nothing_so_far().await;
    removed.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_the_receiver_does_not_know_yet_is_not_refused() {
    // Member 4 was just added; member 2 has not applied that yet and knows
    // only that member 9 was removed once.
    let mut newcomer = Member::start(4, CLUSTER).await;
    let mut b = Member::start(2, CLUSTER).await;
    b.transport.set_removed(&[9].into());
    newcomer.transport.set_peer(2, &b.url);
    newcomer.transport.send(vec![message(4, 2, 7)]);
    let received = b.next_message().await;
    assert_eq!((received.from, received.commit), (4, 7));
    newcomer
        .transport
        .send(vec![snapshot(4, 2, Bytes::from_static(b"state"))]);
    assert_eq!(
        b.next_message().await.get_msg_type(),
        MessageType::MsgSnapshot
    );
    newcomer
        .wait_for("SnapshotStatus(2, Finish)", |i| {
            matches!(i, Incoming::SnapshotStatus(2, SnapshotStatus::Finish))
        })
        .await;
    newcomer.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_greeting_is_acknowledged() {
    let mut b = Member::start(2, CLUSTER).await;
    let mut client = RaftClient::connect(b.url.clone()).await.unwrap();
    let batch = |messages: Vec<Message>| MessageBatch {
        header: Some(Header {
            cluster_id: CLUSTER,
            from: 1,
            to: 2,
        }),
        messages: messages.iter().map(|m| encode(m).unwrap()).collect(),
    };
    let batches = vec![
        batch(Vec::new()),
        batch(vec![message(1, 2, 7)]),
        batch(vec![message(1, 2, 8), message(1, 2, 9)]),
    ];
    // The stream of batches ends after the third, and with it the answers.
    let mut acks = client
        .send(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut answers = Vec::new();
    while let Some(ack) = acks.message().await.unwrap() {
        answers.push(ack.messages);
    }
    assert_eq!(answers, vec![0], "one answer, to the empty greeting");
    let commits: Vec<u64> = [
        b.next_message().await,
        b.next_message().await,
        b.next_message().await,
    ]
    .iter()
    .map(|m| m.commit)
    .collect();
    assert_eq!(
        commits,
        vec![7, 8, 9],
        "every batch was delivered, in order"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refusal_of_a_removed_member_says_so_and_names_it() {
    let b = Member::start(2, CLUSTER).await;
    b.transport.set_removed(&[1].into());
    let mut client = RaftClient::connect(b.url.clone()).await.unwrap();
    let batch = MessageBatch {
        header: Some(Header {
            cluster_id: CLUSTER,
            from: 1,
            to: 2,
        }),
        messages: vec![encode(&message(1, 2, 0)).unwrap()],
    };
    let mut acks = client
        .send(tokio_stream::iter(vec![batch]))
        .await
        .unwrap()
        .into_inner();
    let status = acks.message().await.expect_err("the batch is refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("the member has been permanently removed from the cluster"),
        "{status:?}"
    );
    let marker = status.metadata().get("skiff-removed-member");
    assert_eq!(
        marker.and_then(|v| v.to_str().ok()),
        Some("1"),
        "{status:?}"
    );
    // A snapshot, the same.
    let first = SnapshotChunk {
        header: Some(Header {
            cluster_id: CLUSTER,
            from: 1,
            to: 2,
        }),
        message: encode(&snapshot(1, 2, Bytes::new())).unwrap(),
        data_size: 0,
        data_crc32: crc32fast::hash(b""),
        data: Vec::new(),
    };
    let refused = client
        .send_snapshot(tokio_stream::iter(vec![first]))
        .await
        .expect_err("a removed member's snapshot is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let marker = refused.metadata().get("skiff-removed-member");
    assert_eq!(
        marker.and_then(|v| v.to_str().ok()),
        Some("1"),
        "{refused:?}"
    );

    // Only the member named takes it as its own removal; no other failure
    // counts as one.
    let one = Member::start(1, CLUSTER).await;
    let three = Member::start(3, CLUSTER).await;
    let shared = |m: &Member| m.transport.inner.shared.clone();
    assert!(shared(&one).refused_as_removed(&status));
    assert!(!shared(&three).refused_as_removed(&status));
    let unmarked = tonic::Status::permission_denied(status.message());
    assert!(!shared(&one).refused_as_removed(&unmarked));
    let mut transient = tonic::Status::unavailable(status.message());
    transient
        .metadata_mut()
        .insert("skiff-removed-member", "1".parse().unwrap());
    assert!(!shared(&one).refused_as_removed(&transient));

    // A removed set restored from an older snapshot takes the refusal back.
    b.transport.set_removed(&Default::default());
    let mut b = b;
    one.transport.set_peer(2, &b.url);
    one.transport.send(vec![message(1, 2, 5)]);
    assert_eq!(b.next_message().await.commit, 5);
    drop(client);
    one.stop().await;
    three.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_hears_it_without_sending_anything() {
    // A learner has nothing to say unless spoken to: its greeting is refused.
    let mut learner = Member::start(1, CLUSTER).await;
    let b = Member::start(2, CLUSTER).await;
    b.transport.set_removed(&[1].into());
    learner.transport.set_peer(2, &b.url);
    learner
        .wait_for("Removed(2)", |i| matches!(i, Incoming::Removed(2)))
        .await;
    learner.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_stream_of_a_member_just_removed_ends_with_the_refusal() {
    let mut a = Member::start(1, CLUSTER).await;
    let mut b = Member::start(2, CLUSTER).await;
    a.transport.set_peer(2, &b.url);
    a.transport.send(vec![message(1, 2, 1)]);
    assert_eq!(b.next_message().await.commit, 1);

    // Member 2 applies the removal of member 1, which sends nothing more.
    b.transport.set_removed(&[1].into());
    a.wait_for("Removed(2)", |i| matches!(i, Incoming::Removed(2)))
        .await;
    a.stop().await;
    b.stop().await;
}
