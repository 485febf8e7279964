//! [`Store`]: the in-process handle to a running store — the same operations
//! and semantics as etcd's gRPC API, with no network hop.
//!
//! Writes go through the raft node (`node`): they are encoded as log entries,
//! replicated and made durable on a majority, applied by the MVCC state
//! machine and announced to watchers, in that order. Serializable reads go
//! straight to the local state machine; linearizable reads (the default) first
//! learn the leader's commit index (ReadIndex) and wait until it is applied
//! here. A lone voter serves every read locally: it applied every write it
//! acknowledged.
//!
//! # Layout
//! `impl Store` is split by what it serves, as etcd's services are:
//! - `mod.rs` (here): opening, closing, headers and status, proposing.
//! - `kv`: range, put, delete, txn, compact.
//! - `lease`: grant, revoke, keep-alive, time-to-live, list (the deadlines
//!   are `crate::lease`'s).
//! - `cluster`: the member list and membership changes.
//!
//! # Caveats
//! Lease keep-alives renew the deadline on the member that receives them, but
//! only the leader expires leases: keep-alives must reach the leader.

/// Proposes a request through the apply loop and takes the response of the
/// expected kind, with this member's header at the revision it was applied at.
macro_rules! propose_as {
    ($store:expr, $request:expr, $kind:ident) => {
        match $store.propose($request).await? {
            (Response::$kind(mut resp), rev) => {
                $store.fill_header(&mut resp.header, rev);
                Ok(resp)
            }
            (other, _) => Err(unexpected(other)),
        }
    };
}

mod cluster;
mod kv;
mod lease;

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prost::Message;
use skiff_proto::etcdserverpb::ResponseHeader;
use skiff_proto::store::{log_entry, LogEntry};
use tokio::sync::oneshot;

use crate::config::{ClusterState, MemberIdentity, StoreConfig};
use crate::error::{Result, StoreError};
use crate::lease::Leases;
use crate::mvcc::{Mvcc, Response};
use crate::node::{self, bootstrap, Input, Proposal};
use crate::raft::transport::Transport;
use crate::shared::{lock, read, RaftStatus, Shared};
use crate::watch::{HistoryError, WatchHistory, WatchHub};
use lease::spawn_lease_expiry;

/// How long a member joining a running cluster keeps asking the peers of
/// `--initial-cluster` for its ID: they may be starting too.
const JOIN_PATIENCE: Duration = Duration::from_secs(5);
/// How long [`Store::close`] waits for sled's last flush.
const SLED_CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// Flushes sled on a thread of its own, waiting at most
/// [`SLED_CLOSE_PATIENCE`].
///
/// sled flushes its page cache when the last handle on a tree is dropped, and
/// under load that flush has been seen to wait forever on a wake-up that never
/// comes (sled issue 1412). Nothing durable depends on it: every applied write
/// is in the raft log, and sled is caught up from the log at the next start.
/// So the flush happens here, where it can be given up on: if it never ends,
/// its thread keeps its handle, the store's own handles are then never the
/// last, and dropping the store cannot hang. The data directory then stays
/// locked in this process, and reopening it here fails with sled's lock error.
async fn flush_sled_at_close(tree: sled::Tree) {
    let (done, flushed) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("skiff-sled-close".into())
        .spawn(move || {
            let _ = done.send(tree.flush().map(|_| ()));
        });
    if let Err(err) = spawned {
        tracing::warn!(%err, "no thread for sled's flush at close; dropping the store flushes it");
        return;
    }
    match tokio::time::timeout(SLED_CLOSE_PATIENCE, flushed).await {
        Ok(Ok(Ok(()))) | Ok(Err(_)) => {}
        Ok(Ok(Err(err))) => {
            tracing::warn!(%err, "sled's flush at close failed; the raft log holds every write")
        }
        Err(_) => tracing::error!(
            "sled's flush at close has not finished after {SLED_CLOSE_PATIENCE:?}; it is left \
             running, and this process keeps the data directory locked"
        ),
    }
}

/// A handle to a running store; clone it freely.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// What the raft thread shares with the handle.
    shared: Arc<Shared>,
    /// The lease deadlines.
    leases: Arc<Leases>,
    db: sled::Db,
    /// The raft thread's inputs.
    inputs: Mutex<Sender<Input>>,
    /// The next proposal's ID.
    next_id: std::sync::atomic::AtomicU64,
    apply_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    transport: Transport,
}

/// The state machine seen as watch history.
struct History(Arc<RwLock<Mvcc>>);

impl WatchHistory for History {
    fn events(
        &self,
        from: i64,
        to: i64,
        key: &[u8],
        range_end: &[u8],
    ) -> std::result::Result<Vec<skiff_proto::mvccpb::Event>, HistoryError> {
        let mvcc = self
            .0
            .read()
            .map_err(|_| HistoryError::Other("state machine lock poisoned".into()))?;
        mvcc.history(from, to, key, range_end).map_err(|e| match e {
            StoreError::Compacted { compact_revision } => {
                HistoryError::Compacted { compact_revision }
            }
            other => HistoryError::Other(other.to_string()),
        })
    }

    fn prev_kv(&self, key: &[u8], revision: i64) -> Option<skiff_proto::mvccpb::KeyValue> {
        let mvcc = self.0.read().ok()?;
        mvcc.get_at(key, revision - 1).ok().flatten()
    }
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir`, replays the log past
    /// what sled holds, and starts the apply loop and the lease checker.
    /// Must be called inside a tokio runtime.
    ///
    /// The member's ID is the one its data directory records. On an empty
    /// one it is the ID `--initial-cluster` gives it ([`StoreConfig::member_id`]),
    /// except for a member joining a running cluster
    /// (`--initial-cluster-state existing`): MemberAdd chose its ID, so it
    /// asks the peers of `--initial-cluster` for the member list and takes
    /// the ID of the member with its peer URLs.
    pub async fn open(config: StoreConfig) -> Result<Store> {
        let data_dir = config.data_dir.clone();
        let cfg = config.clone();
        let blocking_failed = move |e: tokio::task::JoinError| {
            StoreError::Storage(format!("opening {}: {e}", data_dir.display()))
        };
        let mut opened = tokio::task::spawn_blocking(move || bootstrap::open(&cfg))
            .await
            .map_err(&blocking_failed)??;
        let (member_id, initial_peers) = if config.initial_cluster_state == ClusterState::Existing
            && opened.mvcc.members().is_empty()
        {
            // Joining, and the leader's snapshot has not arrived yet.
            let peer_urls: Vec<String> = config
                .initial_cluster
                .iter()
                .map(|(_, url)| url.clone())
                .collect();
            crate::raft::transport::learn_member_id(
                &peer_urls,
                &config.initial_advertise_peer_urls,
                config.cluster_id(),
                JOIN_PATIENCE,
            )
            .await?
        } else {
            (
                opened.member_id.unwrap_or_else(|| config.member_id()),
                config.initial_members(),
            )
        };
        let cfg = config.clone();
        let opened = tokio::task::spawn_blocking(move || {
            bootstrap::start_as(&cfg, member_id, &mut opened).map(|()| opened)
        })
        .await
        .map_err(&blocking_failed)??;
        let mvcc = Arc::new(RwLock::new(opened.mvcc));
        let current = read(&mvcc)?.current_revision();
        let hub = WatchHub::new(
            Arc::new(History(mvcc.clone())),
            current,
            config.watch.clone(),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let identity = MemberIdentity {
            cluster_id: config.cluster_id(),
            member_id,
        };
        let peer_tx = Mutex::new(tx.clone());
        let transport = Transport::new(
            identity.member_id,
            identity.cluster_id,
            Arc::new(move |incoming| {
                if let Ok(tx) = peer_tx.lock() {
                    let _ = tx.send(Input::Peer(incoming));
                }
            }),
        );
        let shared = Arc::new(Shared {
            config,
            identity,
            mvcc,
            hub,
            stop: tokio_util::sync::CancellationToken::new(),
            raft_status: Mutex::new(RaftStatus {
                member_id: identity.member_id,
                ..Default::default()
            }),
            initial_peers,
        });
        let leases = Arc::new(Leases::default());
        let inner = Arc::new(Inner {
            shared: Arc::clone(&shared),
            leases: Arc::clone(&leases),
            db: opened.db,
            inputs: Mutex::new(tx.clone()),
            // Random, so IDs of a restarted member never match entries of its past.
            next_id: std::sync::atomic::AtomicU64::new(rand::random::<u64>() >> 1),
            apply_thread: Mutex::new(None),
            transport: transport.clone(),
        });
        let members = Arc::downgrade(&shared.mvcc);
        transport.set_member_source(Arc::new(move || {
            members
                .upgrade()
                .and_then(|mvcc| {
                    let mvcc = mvcc.read().ok()?;
                    Some(mvcc.members().values().cloned().collect())
                })
                .unwrap_or_default()
        }));
        let parts = node::Parts {
            log: opened.log,
            snapshots: opened.snapshots,
            transport,
            leases: Arc::clone(&leases),
            wake: tx.clone(),
        };
        let handle = node::spawn(Arc::clone(&shared), parts, rx)?;
        *lock(&inner.apply_thread)? = Some(handle);
        spawn_lease_expiry(&shared, leases, tx);
        Ok(Store { inner })
    }

    /// This member's cluster and member IDs.
    pub fn identity(&self) -> MemberIdentity {
        self.inner.shared.identity
    }

    /// The configuration the store runs with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.shared.config
    }

    /// The watch hub, for watchers inside this process.
    pub fn watch_hub(&self) -> &WatchHub {
        &self.inner.shared.hub
    }

    /// A response header at `revision`.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.inner.shared.identity.cluster_id,
            member_id: self.inner.shared.identity.member_id,
            revision,
            raft_term: self.raft_status().term,
        }
    }

    /// The raft node's view: leader, term, commit and applied index.
    pub fn raft_status(&self) -> RaftStatus {
        self.inner.shared.raft_status()
    }

    /// The tonic service peers use to reach this member (`skiff.raft.v1`).
    pub(crate) fn peer_service(
        &self,
    ) -> skiff_proto::raftpb::raft_server::RaftServer<crate::raft::transport::RaftService> {
        self.inner.transport.service()
    }

    pub(super) fn fill_header(&self, header: &mut Option<ResponseHeader>, revision: i64) {
        *header = Some(self.header(revision));
    }

    /// The newest revision.
    pub fn current_revision(&self) -> Result<i64> {
        Ok(read(&self.inner.shared.mvcc)?.current_revision())
    }

    /// The revision history is compacted to.
    pub fn compacted_revision(&self) -> Result<i64> {
        Ok(read(&self.inner.shared.mvcc)?.compacted_revision())
    }

    /// The index of the last applied log entry.
    pub fn applied_index(&self) -> Result<u64> {
        Ok(read(&self.inner.shared.mvcc)?.applied_index())
    }

    /// A CRC-32 of the key space up to `revision` (0 = now), and the compaction point.
    pub fn hash_kv(&self, revision: i64) -> Result<(u32, i64, i64)> {
        let mvcc = read(&self.inner.shared.mvcc)?;
        let rev = if revision <= 0 {
            mvcc.current_revision()
        } else {
            revision
        };
        Ok((mvcc.hash_kv(rev)?, mvcc.compacted_revision(), rev))
    }

    /// Bytes the store's files take on disk (log and applied state).
    pub fn size_on_disk(&self) -> u64 {
        let sled = self.inner.db.size_on_disk().unwrap_or(0);
        let wal = dir_size(&self.inner.shared.config.data_dir.join(bootstrap::WAL_DIR));
        sled + wal
    }

    /// The number of keys alive now.
    pub fn key_count(&self) -> Result<usize> {
        Ok(read(&self.inner.shared.mvcc)?.key_count())
    }

    /// Resolves once the store has stopped: closed, removed from its cluster, or
    /// unable to write its log.
    pub async fn stopped(&self) {
        self.inner.shared.stop.cancelled().await
    }

    pub(super) fn send(&self, input: Input) -> Result<()> {
        lock(&self.inner.inputs)?
            .send(input)
            .map_err(|_| StoreError::Stopped)
    }

    /// Stops the raft loop and the lease checker and waits for the loop to end;
    /// writes not yet applied fail with `Stopped`.
    pub async fn close(&self) {
        self.inner.shared.stop.cancel();
        let _ = self.send(Input::Wake);
        let handle = self
            .inner
            .apply_thread
            .lock()
            .ok()
            .and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        let tree = read(&self.inner.shared.mvcc).map(|mvcc| mvcc.sled_tree());
        if let Ok(tree) = tree {
            flush_sled_at_close(tree).await;
        }
    }

    /// Hands a request to the apply loop and waits for its result.
    pub(super) async fn propose(&self, request: log_entry::Request) -> Result<(Response, i64)> {
        let id = self
            .inner
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = LogEntry {
            id,
            proposer: self.inner.shared.identity.member_id,
            request: Some(request),
        };
        if entry.encoded_len() > self.inner.shared.config.max_request_bytes {
            return Err(StoreError::RequestTooLarge);
        }
        if self.raft_status().is_learner {
            return Err(StoreError::NotSupportedForLearner);
        }
        let (respond, response) = oneshot::channel();
        let proposal = Proposal {
            entry,
            respond: Some(respond),
        };
        self.send(Input::Propose(proposal))?;
        let applied = response.await.map_err(|_| StoreError::Stopped)??;
        Ok((applied.response, applied.revision))
    }
}

fn unexpected(response: Response) -> StoreError {
    StoreError::Storage(format!(
        "apply answered with the wrong response kind: {response:?}"
    ))
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
