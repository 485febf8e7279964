//! The peer transport: raft messages and snapshots between members over gRPC
//! (`skiff.raft.v1`, `proto/skiff/raft/v1/raft.proto`).
//!
//! Raft itself never touches the network: each `Ready` hands the node a list
//! of messages, and the node passes them to [`Transport::send`], which only
//! queues them and returns. Delivery is best effort, as the Raft paper
//! assumes of the network (§5.1: "servers retry RPCs if they do not receive a
//! response in a timely manner"): raft-rs retransmits what a peer did not
//! acknowledge, so the transport may drop a message whenever it cannot deliver
//! it, as long as it says so with [`Incoming::Unreachable`] — raft-rs then
//! slows down to probing that peer (`RawNode::report_unreachable`).
//!
//! What arrives from peers, and every report about them, goes to the
//! `deliver` callback the node gives to [`Transport::new`], which steps it
//! into its `RawNode`.
//!
//! Like etcd's rafthttp, ordinary messages and snapshots take different
//! paths:
//! - **Messages** (appends, heartbeats, votes and their answers): one task per
//!   peer keeps a bounded queue and one long-lived `Send` stream to the peer.
//!   While the stream is busy writing one batch, new messages gather in the
//!   queue and go out together in the next batch. A full queue or a peer that
//!   is down means the message is dropped and reported unreachable; the task
//!   reconnects with exponential backoff.
//! - **Snapshots** (`MsgSnapshot`, carrying the whole state machine in
//!   `snapshot.data`): each one gets its own connection and `SendSnapshot`
//!   call, in 1 MiB chunks with a CRC-32, so a large transfer never holds up
//!   heartbeats. The receiver reassembles and checks it before raft sees it;
//!   the sender reports how it ended with [`Incoming::SnapshotStatus`]
//!   (`RawNode::report_snapshot`).
//!
//! Every envelope names its cluster and both members; a receiver refuses
//! envelopes from another cluster ("cluster ID mismatch", as etcd's peer
//! handler says) or addressed to another member.
//!
//! # Joining members
//! MemberAdd gives a new member an ID salted with the time, so a member
//! started with `--initial-cluster-state existing` on an empty data directory
//! cannot compute it: before its raft node starts, it asks the peers in its
//! `--initial-cluster` for the member list (`Members`, answered from the
//! state machine through [`Transport::set_member_source`]) and finds itself
//! in it by its peer URLs ([`learn_member_id`], as etcd asks its peers' HTTP
//! endpoint for the cluster).
//!
//! # Removed members
//! A member removed from the cluster often never applies its own removal:
//! the leader that applied it stops replicating to it. As etcd's rafthttp
//! answers such a member "410 Gone", a receiver refuses every envelope from a
//! member in its removed set ([`Transport::set_removed`]) with
//! `PERMISSION_DENIED`, etcd's text "the member has been permanently removed
//! from the cluster", and the trailer `skiff-removed-member: <its ID in hex>`.
//! A sender that gets that refusal naming itself hands the node
//! [`Incoming::Removed`], and the node stops.
//!
//! A removed member need not send anything to hear it: a learner never
//! campaigns, and a follower may have nothing to say. So every stream starts
//! with an empty batch, a greeting that is refused at once if its sender is
//! removed, and a member that learns that a peer was removed ends that peer's
//! open streams with the same refusal (etcd closes a removed member's streams
//! too, and its reconnection is refused). Only the removed set counts: a
//! sender the receiver simply does not know (a member just added, whose
//! addition the receiver has not applied yet) is not refused, and raft-rs
//! decides what its messages are worth.
//!
//! # Layout
//! - this file: [`Transport`], the peer table and the routing in `send`.
//! - `peer`: one peer's task — connect, stream batches, back off, reconnect.
//! - `snapshot`: sending a snapshot in chunks.
//! - `service`: the receiving side, [`RaftService`], served on the peer
//!   listener.
//! - `members`: asking peers for the member list ([`learn_member_id`]).
//!
//! # Where to start
//! [`Transport::send`] routes a message to its peer's queue; `peer::PeerTask::run`
//! is the loop that empties it; `service` is where it comes out on the other
//! member.
//!
//! # Caveats
//! - No TLS and no authentication of peers beyond the cluster ID.
//! - A removed member learns of its removal only from a peer that has applied
//!   it; a removed member cut off from every such peer runs on (campaigning
//!   in vain) until it can reach one.
//! - Whoever builds the peer listener should keep tonic's default
//!   `tcp_nodelay(true)`; the transport sets it on its own connections.
//! - One snapshot per `MsgSnapshot`, without a limit on concurrent transfers:
//!   raft-rs sends a peer no new snapshot until the last one was reported.

mod members;
mod peer;
mod service;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use skiff_proto::raftpb::raft_server::RaftServer;
use skiff_proto::raftpb::Header;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;
use tonic::{Code, Status};

pub(crate) use members::learn_member_id;
pub(crate) use service::RaftService;

/// What the transport hands to the raft node.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A message from a peer, to be stepped into the RawNode.
    Message(Message),
    /// A message to this peer could not be delivered: RawNode::report_unreachable(id).
    Unreachable(u64),
    /// How sending a snapshot to this peer ended: RawNode::report_snapshot(id, status).
    SnapshotStatus(u64, raft::SnapshotStatus),
    /// This peer refused us because this member was removed from the cluster.
    Removed(u64),
}

/// The callback that takes everything the transport has for the raft node.
pub(crate) type Deliver = Arc<dyn Fn(Incoming) + Send + Sync>;

/// The callback that reads the member list from the state machine, to answer
/// `Members`; it must not block for long.
pub(crate) type MemberSource = Arc<dyn Fn() -> Vec<skiff_proto::store::Member> + Send + Sync>;

/// Messages waiting for one peer; more are dropped and reported unreachable.
const QUEUE_CAPACITY: usize = 4096;
/// A batch stops growing once its messages add up to this many bytes.
const BATCH_BYTES: usize = 1 << 20;
/// A larger encoded message is dropped rather than sent: the receiver would
/// refuse the whole batch. raft-rs keeps appends far smaller (`max_size_per_msg`).
const MAX_MESSAGE_BYTES: usize = 32 << 20;
/// The largest gRPC message the receiving side accepts: a full batch plus one
/// message of the largest size, with room for framing.
const MAX_RECEIVE_BYTES: usize = BATCH_BYTES + MAX_MESSAGE_BYTES + (1 << 20);
/// Snapshot data travels in pieces of this size.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// The first wait before reconnecting to a peer; it doubles on every failure.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The longest wait before reconnecting.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long to wait for a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// etcd's words to a member removed from the cluster.
const REMOVED_TEXT: &str = "the member has been permanently removed from the cluster";
/// The trailer that marks a refusal as "removed"; its value is the removed
/// member's ID in hex.
const REMOVED_MARKER: &str = "skiff-removed-member";
/// HTTP/2 pings find a peer that vanished without closing the connection.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a ping may go unanswered before the connection counts as dead.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The network between this member and its peers. Cheap to clone; every clone
/// is the same transport.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    peers: Mutex<HashMap<u64, Peer>>,
}

/// What the peer tasks, snapshot transfers and the service all need.
struct Shared {
    member_id: u64,
    cluster_id: u64,
    deliver: Deliver,
    /// Members removed from the cluster: their envelopes are refused and
    /// their open streams ended.
    removed: watch::Sender<BTreeSet<u64>>,
    /// Where peer tasks are spawned, also from the raft thread.
    runtime: Handle,
    /// Cancelled by [`Transport::shutdown`]; every task watches it.
    shutdown: CancellationToken,
    /// Where `Members` answers come from; unset, `Members` answers UNAVAILABLE.
    members: OnceLock<MemberSource>,
}

/// One entry of the peer table.
struct Peer {
    url: String,
    queue: mpsc::Sender<Message>,
    /// Stops this peer's task and its snapshot transfers (a child of `shutdown`).
    stop: CancellationToken,
}

impl Transport {
    /// Creates the transport of member `member_id` in cluster `cluster_id`,
    /// with no peers yet.
    ///
    /// Must be called inside a tokio runtime: peer tasks are spawned on it.
    /// `deliver` is called from tokio tasks for everything received, and from
    /// [`Transport::send`]'s caller for messages it drops at once; it must
    /// not block.
    pub(crate) fn new(member_id: u64, cluster_id: u64, deliver: Deliver) -> Transport {
        let shared = Arc::new(Shared {
            member_id,
            cluster_id,
            deliver,
            removed: watch::Sender::new(BTreeSet::new()),
            runtime: Handle::current(),
            shutdown: CancellationToken::new(),
            members: OnceLock::new(),
        });
        Transport {
            inner: Arc::new(Inner {
                shared,
                peers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Adds a peer or changes its URL ("http://127.0.0.2:2380"); a changed
    /// URL drops what was queued for the old one and reconnects.
    pub(crate) fn set_peer(&self, id: u64, url: &str) {
        let shared = &self.inner.shared;
        if shared.shutdown.is_cancelled() {
            return;
        }
        let mut peers = self.peers();
        if peers.get(&id).is_some_and(|peer| peer.url == url) {
            return;
        }
        if let Some(old) = peers.remove(&id) {
            tracing::debug!(peer = id, old = %old.url, new = url, "peer URL changed");
            old.stop.cancel();
        }
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let stop = shared.shutdown.child_token();
        let task = peer::PeerTask::new(shared.clone(), id, url.to_owned(), receiver, stop.clone());
        shared.runtime.spawn(task.run());
        peers.insert(
            id,
            Peer {
                url: url.to_owned(),
                queue,
                stop,
            },
        );
    }

    /// Sets where `Members` answers come from (the state machine's member
    /// list). Only the first call counts.
    pub(crate) fn set_member_source(&self, source: MemberSource) {
        let _ = self.inner.shared.members.set(source);
    }

    /// Sets the members removed from the cluster (the whole set, as the state
    /// machine holds it): their envelopes are refused from now on, and their
    /// open streams end with the same refusal.
    pub(crate) fn set_removed(&self, removed: &BTreeSet<u64>) {
        self.inner.shared.removed.send_if_modified(|current| {
            let changed = current != removed;
            if changed {
                current.clone_from(removed);
            }
            changed
        });
    }

    /// Forgets a peer: its task stops, and later messages to it are dropped
    /// and reported unreachable.
    pub(crate) fn remove_peer(&self, id: u64) {
        if let Some(peer) = self.peers().remove(&id) {
            tracing::debug!(peer = id, url = %peer.url, "peer removed");
            peer.stop.cancel();
        }
    }

    /// Queues messages for their `to` peers and returns at once (called from
    /// the raft thread, a plain std thread). A message to an unknown peer, or
    /// to a peer whose queue is full, is dropped and reported
    /// [`Incoming::Unreachable`]; a dropped snapshot is reported
    /// [`raft::SnapshotStatus::Failure`] as well. After [`Transport::shutdown`]
    /// messages are dropped without a report.
    pub(crate) fn send(&self, messages: Vec<Message>) {
        let shared = &self.inner.shared;
        if shared.shutdown.is_cancelled() {
            return;
        }
        let mut unreachable = Vec::new();
        {
            let peers = self.peers();
            for message in messages {
                let to = message.to;
                let Some(peer) = peers.get(&to) else {
                    tracing::debug!(peer = to, "message to an unknown peer dropped");
                    unreachable.push((to, message.get_msg_type()));
                    continue;
                };
                if message.get_msg_type() == MessageType::MsgSnapshot {
                    let transfer = snapshot::send(
                        shared.clone(),
                        peer.url.clone(),
                        message,
                        peer.stop.clone(),
                    );
                    shared.runtime.spawn(transfer);
                    continue;
                }
                match peer.queue.try_send(message) {
                    Ok(()) => {}
                    Err(TrySendError::Full(message) | TrySendError::Closed(message)) => {
                        unreachable.push((to, message.get_msg_type()));
                    }
                }
            }
        }
        // Reported after the peer table is unlocked, one report per peer.
        unreachable.sort_by_key(|(to, _)| *to);
        let mut last = None;
        for (to, kind) in unreachable {
            if kind == MessageType::MsgSnapshot {
                (shared.deliver)(Incoming::SnapshotStatus(to, raft::SnapshotStatus::Failure));
            }
            if last != Some(to) {
                (shared.deliver)(Incoming::Unreachable(to));
                last = Some(to);
            }
        }
    }

    /// The tonic service to add to the peer listener.
    pub(crate) fn service(&self) -> RaftServer<RaftService> {
        RaftServer::new(RaftService::new(self.inner.shared.clone()))
            .max_decoding_message_size(MAX_RECEIVE_BYTES)
    }

    /// Stops every peer task and snapshot transfer; the service refuses new
    /// streams and ends the open ones. Later calls do nothing.
    pub(crate) fn shutdown(&self) {
        self.inner.shared.shutdown.cancel();
        self.peers().clear();
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<u64, Peer>> {
        // The table is only read and written whole under the lock, so a
        // panic elsewhere cannot leave it half-changed.
        self.inner
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Shared {
    /// The envelope header for sending to `to`.
    fn header(&self, to: u64) -> Header {
        Header {
            cluster_id: self.cluster_id,
            from: self.member_id,
            to,
        }
    }

    fn deliver(&self, incoming: Incoming) {
        (self.deliver)(incoming)
    }

    /// Whether `member` was removed from the cluster.
    fn is_removed(&self, member: u64) -> bool {
        self.removed.borrow().contains(&member)
    }

    /// Whether a peer's refusal says that this member was removed.
    fn refused_as_removed(&self, status: &Status) -> bool {
        status.code() == Code::PermissionDenied
            && status
                .metadata()
                .get(REMOVED_MARKER)
                .and_then(|value| value.to_str().ok())
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                == Some(self.member_id)
    }
}

/// The refusal a removed member hears: a code no transient failure uses,
/// etcd's text, and the marker naming the member.
fn removed_status(receiver: u64, removed: u64) -> Status {
    let mut status = Status::permission_denied(format!(
        "{REMOVED_TEXT} (member {removed:x}, refused by member {receiver:x})"
    ));
    if let Ok(value) = format!("{removed:x}").parse() {
        status.metadata_mut().insert(REMOVED_MARKER, value);
    }
    status
}

/// How a peer is dialed: both the message stream and snapshot transfers.
fn endpoint(url: &str) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("invalid peer URL {url:?}: {e}"))?;
    Ok(endpoint
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// Encodes a raft message as raft-rs does.
fn encode(message: &Message) -> Result<Vec<u8>, String> {
    message
        .write_to_bytes()
        .map_err(|e| format!("encoding a {:?}: {e}", message.get_msg_type()))
}

/// Decodes a raft message received from a peer.
fn decode(bytes: &[u8]) -> Result<Message, protobuf::ProtobufError> {
    Message::parse_from_bytes(bytes)
}

/// An error with its causes: tonic's own text for a failed connection is
/// just "transport error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
