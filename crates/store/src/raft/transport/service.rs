//! The receiving side: the `skiff.raft.v1.Raft` service on the peer listener.
//!
//! `Members` answers a joining member with the state machine's member list,
//! once the cluster ID matches and this member knows the list.
//!
//! Every envelope is checked before anything in it reaches raft: the cluster
//! ID must be ours (etcd answers a stranger "cluster ID mismatch"), the
//! sender must not be a removed member (refused as the module above
//! describes), and the envelope and each message in it must be addressed to
//! this member. A batch is decoded whole before any of it is delivered, so a
//! bad batch delivers nothing. Open streams end when the transport shuts down,
//! so the listener's graceful shutdown does not wait on peers that never hang
//! up, and with the removal refusal once their sender is removed.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use futures::stream::{self, Stream};
use raft::eraftpb::{Message, MessageType};
use skiff_proto::raftpb::raft_server::Raft;
use skiff_proto::raftpb::{
    BatchAck, Header, MembersRequest, MembersResponse, MessageBatch, SnapshotAck, SnapshotChunk,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use super::{decode, removed_status, Incoming, Shared};

/// The most snapshot buffer reserved up front, whatever size a peer announces;
/// beyond it the buffer grows as data arrives.
const MAX_PREALLOCATION: u64 = 64 << 20;

/// The `Raft` service of one member; built by `Transport::service`.
pub(crate) struct RaftService {
    shared: Arc<Shared>,
}

impl RaftService {
    pub(super) fn new(shared: Arc<Shared>) -> RaftService {
        RaftService { shared }
    }
}

/// The acknowledgements of one `Send` stream.
type AckStream = Pin<Box<dyn Stream<Item = Result<BatchAck, Status>> + Send>>;

/// What the ack stream of one `Send` call reads from.
struct Inbound {
    shared: Arc<Shared>,
    batches: Streaming<MessageBatch>,
    /// The sender, once its first batch (its greeting) was accepted.
    from: Option<u64>,
    /// The removed set, watched to end the stream when the sender is removed.
    removed: watch::Receiver<BTreeSet<u64>>,
    /// Set once an error was answered: the stream ends after it.
    refused: bool,
}

impl Inbound {
    /// Resolves once the sender is in the removed set; never before the
    /// sender is known.
    async fn sender_removed(from: Option<u64>, removed: &mut watch::Receiver<BTreeSet<u64>>) {
        let Some(from) = from else {
            return std::future::pending().await;
        };
        if removed.wait_for(|set| set.contains(&from)).await.is_err() {
            // The transport is gone; shutdown ends the stream.
            std::future::pending::<()>().await;
        }
    }
}

#[tonic::async_trait]
impl Raft for RaftService {
    type SendStream = AckStream;

    async fn send(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<AckStream>, Status> {
        self.shared.check_running()?;
        let inbound = Inbound {
            shared: self.shared.clone(),
            batches: request.into_inner(),
            from: None,
            removed: self.shared.removed.subscribe(),
            refused: false,
        };
        // Only the greeting is acknowledged: that proves the link works. An
        // acknowledgement of every later batch would cost a write here and a
        // read and a wake-up at the sender for each batch, and tell it nothing.
        let acks = stream::unfold(inbound, |mut inbound| async move {
            if inbound.refused {
                return None;
            }
            let shutdown = inbound.shared.shutdown.clone();
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = Inbound::sender_removed(inbound.from, &mut inbound.removed) => {
                        let from = inbound.from.unwrap_or_default();
                        tracing::debug!(peer = from, "ended the stream of a member just removed");
                        inbound.refused = true;
                        return Some((Err(removed_status(inbound.shared.member_id, from)), inbound));
                    }
                    next = inbound.batches.message() => next,
                };
                match next {
                    Ok(Some(batch)) => match inbound.shared.receive_batch(batch) {
                        Ok((from, ack)) => {
                            let greeting = inbound.from.replace(from).is_none();
                            if greeting {
                                return Some((Ok(ack), inbound));
                            }
                        }
                        Err(status) => {
                            inbound.refused = true;
                            return Some((Err(status), inbound));
                        }
                    },
                    // The sender hung up, cleanly or not: nothing left to answer.
                    Ok(None) | Err(_) => return None,
                }
            }
        });
        Ok(Response::new(Box::pin(acks)))
    }

    async fn send_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<SnapshotAck>, Status> {
        self.shared.check_running()?;
        let shutdown = self.shared.shutdown.clone();
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Err(shutting_down()),
            message = self.shared.receive_snapshot(request.into_inner()) => message?,
        };
        self.shared.deliver(Incoming::Message(message));
        Ok(Response::new(SnapshotAck {}))
    }

    async fn members(
        &self,
        request: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        self.shared.check_running()?;
        let cluster_id = request.into_inner().cluster_id;
        if cluster_id != self.shared.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster ID mismatch: member {:x} is in cluster {:x}, the member list was asked for cluster {:x}",
                self.shared.member_id, self.shared.cluster_id, cluster_id
            )));
        }
        let members = self
            .shared
            .members
            .get()
            .map(|source| source())
            .unwrap_or_default();
        if members.is_empty() {
            return Err(Status::unavailable(format!(
                "member {:x} does not know the member list yet",
                self.shared.member_id
            )));
        }
        Ok(Response::new(MembersResponse { members }))
    }
}

impl Shared {
    fn check_running(&self) -> Result<(), Status> {
        if self.shutdown.is_cancelled() {
            return Err(shutting_down());
        }
        Ok(())
    }

    /// Checks an envelope's header; returns the sender's member ID.
    fn check_header(&self, header: Option<Header>) -> Result<u64, Status> {
        let header =
            header.ok_or_else(|| Status::invalid_argument("raft envelope without a header"))?;
        if header.cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster ID mismatch: member {:x} is in cluster {:x}, member {:x} sent from cluster {:x}",
                self.member_id, self.cluster_id, header.from, header.cluster_id
            )));
        }
        if self.is_removed(header.from) {
            tracing::debug!(
                peer = header.from,
                "refused an envelope from a removed member"
            );
            return Err(removed_status(self.member_id, header.from));
        }
        if header.to != self.member_id {
            return Err(self.wrong_member(header.from, header.to));
        }
        Ok(header.from)
    }

    /// Checks and decodes a message sent by `from`.
    fn decode_message(&self, from: u64, bytes: &[u8]) -> Result<Message, Status> {
        let message = decode(bytes).map_err(|e| {
            Status::invalid_argument(format!(
                "member {from:x} sent something that is not a raft message: {e}"
            ))
        })?;
        if message.to != self.member_id {
            return Err(self.wrong_member(from, message.to));
        }
        Ok(message)
    }

    fn wrong_member(&self, from: u64, to: u64) -> Status {
        Status::failed_precondition(format!(
            "member {from:x} sent a message for member {to:x} to member {:x}",
            self.member_id
        ))
    }

    /// Checks a whole batch, then hands its messages to raft in order;
    /// returns the sender and the acknowledgement.
    fn receive_batch(&self, batch: MessageBatch) -> Result<(u64, BatchAck), Status> {
        let from = self.check_header(batch.header)?;
        let messages = batch
            .messages
            .iter()
            .map(|bytes| self.decode_message(from, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let count = messages.len() as u64;
        for message in messages {
            self.deliver(Incoming::Message(message));
        }
        Ok((from, BatchAck { messages: count }))
    }

    /// Reads a snapshot transfer to its end and returns the whole message.
    async fn receive_snapshot(
        &self,
        mut chunks: Streaming<SnapshotChunk>,
    ) -> Result<Message, Status> {
        let first = chunks.message().await?.ok_or_else(|| {
            Status::invalid_argument("snapshot transfer ended before its first chunk")
        })?;
        let from = self.check_header(first.header)?;
        let mut message = self.decode_message(from, &first.message)?;
        if message.get_msg_type() != MessageType::MsgSnapshot {
            return Err(Status::invalid_argument(format!(
                "member {from:x} sent a {:?} as a snapshot",
                message.get_msg_type()
            )));
        }
        let size = first.data_size;
        let mut data = BytesMut::with_capacity(size.min(MAX_PREALLOCATION) as usize);
        // Checksummed piece by piece as it arrives, so the end needs no pass
        // over the whole snapshot.
        let mut crc32 = crc32fast::Hasher::new();
        let mut piece = first.data;
        loop {
            if (data.len() + piece.len()) as u64 > size {
                return Err(Status::invalid_argument(format!(
                    "snapshot from member {from:x} is longer than the {size} bytes announced"
                )));
            }
            crc32.update(&piece);
            data.extend_from_slice(&piece);
            match chunks.message().await? {
                Some(chunk) => piece = chunk.data,
                None => break,
            }
        }
        if data.len() as u64 != size {
            return Err(Status::data_loss(format!(
                "snapshot from member {from:x} ended after {} of {size} bytes",
                data.len()
            )));
        }
        if crc32.finalize() != first.data_crc32 {
            return Err(Status::data_loss(format!(
                "snapshot from member {from:x} fails its checksum"
            )));
        }
        tracing::debug!(
            peer = from,
            index = message.get_snapshot().get_metadata().index,
            bytes = size,
            "snapshot received"
        );
        message.mut_snapshot().set_data(data.freeze());
        Ok(message)
    }
}

fn shutting_down() -> Status {
    Status::unavailable("this member's raft transport is shut down")
}
