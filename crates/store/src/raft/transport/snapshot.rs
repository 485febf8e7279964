//! Sending a snapshot: one `SendSnapshot` call on its own connection.
//!
//! The first chunk carries the `MsgSnapshot` with its data taken out, the
//! data's length and CRC-32; the data follows in [`SNAPSHOT_CHUNK_BYTES`]
//! pieces, sliced from the shared buffer one at a time as the connection
//! takes them, so a transfer never holds a second copy of the snapshot.
//! The receiver answers only once the message is whole and handed to raft;
//! then raft hears `Finish`, on any failure `Failure` (raft-rs then goes
//! back to probing the peer and may try another snapshot).

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use raft::eraftpb::Message;
use raft::SnapshotStatus;
use skiff_proto::raftpb::raft_client::RaftClient;
use skiff_proto::raftpb::SnapshotChunk;
use tokio_util::sync::CancellationToken;

use super::{encode, endpoint, error_chain, Incoming, Shared, SNAPSHOT_CHUNK_BYTES};

/// Sends `message` (a MsgSnapshot) to the peer at `url` and reports how it
/// ended; gives up with `Failure` when `stop` is cancelled.
pub(super) async fn send(
    shared: Arc<Shared>,
    url: String,
    message: Message,
    stop: CancellationToken,
) {
    let to = message.to;
    let index = message.get_snapshot().get_metadata().index;
    let bytes = message.get_snapshot().get_data().len();
    tracing::debug!(peer = to, %url, index, bytes, "sending snapshot");
    let result = tokio::select! {
        _ = stop.cancelled() => Err(Refusal::Failed("the transfer was stopped".to_owned())),
        result = transfer(&shared, &url, message) => result,
    };
    if let Err(Refusal::Removed(_)) = &result {
        shared.deliver(Incoming::Removed(to));
    }
    let status = match result {
        Ok(()) => {
            tracing::debug!(peer = to, index, bytes, "snapshot sent");
            SnapshotStatus::Finish
        }
        Err(Refusal::Removed(reason) | Refusal::Failed(reason)) => {
            tracing::warn!(peer = to, %url, index, %reason, "sending snapshot failed");
            SnapshotStatus::Failure
        }
    };
    shared.deliver(Incoming::SnapshotStatus(to, status));
}

/// Why a transfer failed.
enum Refusal {
    /// The peer refused it because this member was removed from the cluster.
    Removed(String),
    /// Anything else.
    Failed(String),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Refusal {
        Refusal::Failed(reason)
    }
}

async fn transfer(shared: &Shared, url: &str, mut message: Message) -> Result<(), Refusal> {
    let data = message.mut_snapshot().take_data();
    // Hundreds of megabytes take a while to checksum: not on a runtime worker.
    let crc32 = tokio::task::spawn_blocking({
        let data = data.clone();
        move || crc32fast::hash(&data)
    })
    .await
    .map_err(|e| format!("checksumming the snapshot: {e}"))?;
    let first = SnapshotChunk {
        header: Some(shared.header(message.to)),
        message: encode(&message)?,
        data_size: data.len() as u64,
        data_crc32: crc32,
        data: Vec::new(),
    };
    let channel = endpoint(url)?
        .connect()
        .await
        .map_err(|e| format!("connecting: {}", error_chain(&e)))?;
    RaftClient::new(channel)
        .send_snapshot(stream::once(async { first }).chain(data_chunks(data)))
        .await
        .map_err(|status| {
            let reason = status.message().to_owned();
            if shared.refused_as_removed(&status) {
                Refusal::Removed(reason)
            } else {
                Refusal::Failed(reason)
            }
        })?;
    Ok(())
}

/// The chunks after the first: `data` in pieces.
fn data_chunks(data: Bytes) -> impl Stream<Item = SnapshotChunk> + Send {
    let len = data.len();
    let pieces = (0..len).step_by(SNAPSHOT_CHUNK_BYTES).map(move |start| {
        let end = (start + SNAPSHOT_CHUNK_BYTES).min(len);
        SnapshotChunk {
            data: data[start..end].to_vec(),
            ..SnapshotChunk::default()
        }
    });
    stream::iter(pieces)
}
