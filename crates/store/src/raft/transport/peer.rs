//! One peer's task: it owns the peer's queue and keeps a `Send` stream to
//! the peer open, reconnecting with exponential backoff.
//!
//! The task's life is a loop of two phases:
//! 1. **streaming**: connect, open the stream, greet the peer with an empty
//!    batch (refused at once if the peer has this member removed), then move
//!    queued messages into batches for as long as the stream lasts. The stream holds one batch
//!    waiting to be written; while it waits, later messages stay in the queue
//!    and make up the next batch. The peer acknowledges the greeting, which
//!    proves the link works and resets the backoff; later batches go
//!    unacknowledged (a refusal still ends the stream with an error).
//! 2. **down**: after any failure — no connection, a refused envelope, a
//!    broken stream — wait out the backoff, dropping whatever is queued and
//!    reporting the peer unreachable, since raft-rs retransmits anyway and
//!    stale heartbeats are worth nothing. Messages the stream had taken but the
//!    peer had not acknowledged may be lost: reported unreachable too.

use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::Message;
use skiff_proto::raftpb::raft_client::RaftClient;
use skiff_proto::raftpb::{BatchAck, MessageBatch};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{
    encode, endpoint, error_chain, Incoming, Shared, BACKOFF_MAX, BACKOFF_MIN, BATCH_BYTES,
    MAX_MESSAGE_BYTES,
};

/// The task that sends one peer its messages.
pub(super) struct PeerTask {
    shared: Arc<Shared>,
    peer_id: u64,
    url: String,
    queue: mpsc::Receiver<Message>,
    stop: CancellationToken,
    backoff: Backoff,
    /// Whether the current outage was already logged as a warning.
    warned: bool,
}

/// Why a stream ended.
enum Ended {
    /// The peer was removed or the transport shut down.
    Stopped,
    /// The peer could not be reached, refused us, or the stream broke.
    Failed(String),
    /// The peer refused us because this member was removed from the cluster.
    Removed(String),
}

impl PeerTask {
    pub(super) fn new(
        shared: Arc<Shared>,
        peer_id: u64,
        url: String,
        queue: mpsc::Receiver<Message>,
        stop: CancellationToken,
    ) -> PeerTask {
        PeerTask {
            shared,
            peer_id,
            url,
            queue,
            stop,
            backoff: Backoff::new(),
            warned: false,
        }
    }

    /// Streams to the peer until it is removed or the transport shuts down.
    pub(super) async fn run(mut self) {
        loop {
            let stop = self.stop.clone();
            let ended = tokio::select! {
                _ = stop.cancelled() => Ended::Stopped,
                ended = self.stream() => ended,
            };
            let reason = match ended {
                Ended::Stopped => {
                    tracing::debug!(peer = self.peer_id, url = %self.url, "peer task stopped");
                    return;
                }
                Ended::Removed(reason) => {
                    tracing::debug!(peer = self.peer_id, url = %self.url, %reason, "the peer refused us as removed");
                    self.shared.deliver(Incoming::Removed(self.peer_id));
                    reason
                }
                Ended::Failed(reason) => reason,
            };
            self.log_failure(&reason);
            // Whatever the stream had taken may be lost with it.
            self.shared.deliver(Incoming::Unreachable(self.peer_id));
            let delay = self.backoff.next();
            if !self.drop_queued_for(delay).await {
                return;
            }
        }
    }

    /// Connects, opens the stream and sends batches until the stream ends.
    async fn stream(&mut self) -> Ended {
        let channel = match endpoint(&self.url) {
            Ok(endpoint) => match endpoint.connect().await {
                Ok(channel) => channel,
                Err(e) => return Ended::Failed(format!("connecting: {}", error_chain(&e))),
            },
            Err(e) => return Ended::Failed(e),
        };
        tracing::debug!(peer = self.peer_id, url = %self.url, "connected to peer");
        let (batches, outgoing) = mpsc::channel::<MessageBatch>(1);
        let mut client = RaftClient::new(channel);
        let mut acks = match client.send(ReceiverStream::new(outgoing)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return self.refused("opening the stream: ", &status),
        };
        // The greeting: an empty batch, so that a peer that has this member
        // removed says so even when there is nothing to send.
        let greeting = MessageBatch {
            header: Some(self.shared.header(self.peer_id)),
            messages: Vec::new(),
        };
        if batches.send(greeting).await.is_err() {
            return Ended::Failed("the stream closed".to_owned());
        }
        let mut acknowledged = false;
        let mut pending: Option<MessageBatch> = None;
        loop {
            tokio::select! {
                ack = acks.message() => match ack {
                    Ok(Some(BatchAck { .. })) => {
                        if !acknowledged {
                            acknowledged = true;
                            self.link_works();
                        }
                    }
                    Ok(None) => return Ended::Failed("the peer ended the stream".to_owned()),
                    Err(status) => return self.refused("", &status),
                },
                message = self.queue.recv(), if pending.is_none() => {
                    let Some(message) = message else { return Ended::Stopped };
                    let mut batch = MessageBatch {
                        header: Some(self.shared.header(self.peer_id)),
                        messages: Vec::new(),
                    };
                    self.add(&mut batch, message);
                    pending = Some(batch);
                }
                permit = batches.reserve(), if pending.is_some() => {
                    let Ok(permit) = permit else {
                        return Ended::Failed("the stream closed".to_owned());
                    };
                    if let Some(mut batch) = pending.take() {
                        // The stream was busy until now: take along what queued up.
                        self.fill(&mut batch);
                        if !batch.messages.is_empty() {
                            permit.send(batch);
                        }
                    }
                }
            }
        }
    }

    /// How a stream the peer ended with `status` ended.
    fn refused(&self, context: &str, status: &tonic::Status) -> Ended {
        let reason = format!("{context}{}", status.message());
        if self.shared.refused_as_removed(status) {
            Ended::Removed(reason)
        } else {
            Ended::Failed(reason)
        }
    }

    /// Adds whatever is queued to `batch`, up to [`BATCH_BYTES`].
    fn fill(&mut self, batch: &mut MessageBatch) {
        while batch_bytes(batch) < BATCH_BYTES {
            match self.queue.try_recv() {
                Ok(message) => self.add(batch, message),
                Err(_) => break,
            }
        }
    }

    /// Encodes `message` into `batch`, or drops it if it cannot be sent.
    fn add(&self, batch: &mut MessageBatch, message: Message) {
        match encode(&message) {
            Ok(bytes) if bytes.len() <= MAX_MESSAGE_BYTES => batch.messages.push(bytes),
            Ok(bytes) => {
                tracing::error!(
                    peer = self.peer_id,
                    kind = ?message.get_msg_type(),
                    bytes = bytes.len(),
                    limit = MAX_MESSAGE_BYTES,
                    "raft message too large to send, dropped"
                );
                self.shared.deliver(Incoming::Unreachable(self.peer_id));
            }
            Err(e) => {
                tracing::error!(peer = self.peer_id, error = %e, "raft message dropped");
                self.shared.deliver(Incoming::Unreachable(self.peer_id));
            }
        }
    }

    /// Waits `delay` before the next attempt, dropping every message queued
    /// meanwhile with one unreachable report per wake-up. False if the task
    /// should stop.
    async fn drop_queued_for(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            if self.drain() > 0 {
                self.shared.deliver(Incoming::Unreachable(self.peer_id));
            }
            tokio::select! {
                _ = self.stop.cancelled() => return false,
                _ = &mut sleep => return true,
                message = self.queue.recv() => {
                    if message.is_none() {
                        return false;
                    }
                    self.drain();
                    self.shared.deliver(Incoming::Unreachable(self.peer_id));
                }
            }
        }
    }

    /// Empties the queue; returns how many messages it held.
    fn drain(&mut self) -> usize {
        let mut dropped = 0;
        while self.queue.try_recv().is_ok() {
            dropped += 1;
        }
        dropped
    }

    /// The peer acknowledged a batch: the outage, if any, is over.
    fn link_works(&mut self) {
        self.backoff.reset();
        if self.warned {
            self.warned = false;
            tracing::info!(peer = self.peer_id, url = %self.url, "peer reachable again");
        } else {
            tracing::debug!(peer = self.peer_id, url = %self.url, "stream to peer established");
        }
    }

    /// Logs a failed attempt: a warning for the first of an outage, the rest
    /// at debug level so a long outage does not flood the log.
    fn log_failure(&mut self, reason: &str) {
        if self.warned {
            tracing::debug!(peer = self.peer_id, url = %self.url, %reason, "peer still unreachable");
        } else {
            self.warned = true;
            tracing::warn!(peer = self.peer_id, url = %self.url, %reason, "peer unreachable; messages to it are dropped until it is back");
        }
    }
}

/// The encoded size of a batch's messages.
fn batch_bytes(batch: &MessageBatch) -> usize {
    batch.messages.iter().map(Vec::len).sum()
}

/// Exponential backoff between connection attempts.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF_MIN }
    }

    /// The wait before the next attempt; each call doubles the one after.
    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::transport::Transport;
    use raft::eraftpb::MessageType;

    fn heartbeat(commit: u64, context: usize) -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgHeartbeat);
        message.to = 2;
        message.commit = commit;
        message.context = vec![0; context].into();
        message
    }

    #[tokio::test]
    async fn what_queued_while_the_stream_was_busy_goes_in_one_batch() {
        let transport = Transport::new(1, 7, Arc::new(|_| {}));
        let (queue, receiver) = mpsc::channel(16);
        let mut task = PeerTask::new(
            transport.inner.shared.clone(),
            2,
            "http://127.0.0.1:1".to_owned(),
            receiver,
            CancellationToken::new(),
        );
        // Three small messages queued behind the one that started the batch.
        let mut batch = MessageBatch::default();
        task.add(&mut batch, heartbeat(0, 0));
        for commit in 1..4 {
            queue.try_send(heartbeat(commit, 0)).unwrap();
        }
        task.fill(&mut batch);
        assert_eq!(batch.messages.len(), 4);
        let commits: Vec<u64> = batch
            .messages
            .iter()
            .map(|bytes| crate::raft::transport::decode(bytes).unwrap().commit)
            .collect();
        assert_eq!(commits, [0, 1, 2, 3]);

        // A batch stops growing at BATCH_BYTES; the rest waits for the next.
        for commit in 0..4 {
            queue.try_send(heartbeat(commit, BATCH_BYTES / 3)).unwrap();
        }
        let mut batch = MessageBatch::default();
        task.fill(&mut batch);
        assert_eq!(batch.messages.len(), 3);
        let mut next = MessageBatch::default();
        task.fill(&mut next);
        assert_eq!(next.messages.len(), 1);
        transport.shutdown();
    }

    #[test]
    fn backoff_doubles_up_to_the_limit_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert_eq!(delays[1], BACKOFF_MIN * 2);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]), "{delays:?}");
        assert_eq!(*delays.last().unwrap(), BACKOFF_MAX);
        backoff.reset();
        assert_eq!(backoff.next(), BACKOFF_MIN);
    }
}
