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
//! # Caveats
//! Lease keep-alives renew the deadline on the member that receives them, but
//! only the leader expires leases: keep-alives must reach the leader.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prost::Message;
use skiff_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantRequest, LeaseGrantResponse, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
};
use skiff_proto::store::Member;
use skiff_proto::store::{log_entry, LogEntry};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Result, StoreError};
use crate::lessor::Lessor;
use crate::mvcc::{self, MemberChange, Mvcc, Response, MAX_LEASE_TTL};
use crate::node::{self, ClusterState, Input, Proposal, RaftStatus};
use crate::raft::transport::Transport;
use crate::watch::{HistoryError, WatchHistory, WatchHub, WatchOptions};

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

/// How a store is set up. `Default` gives etcd's defaults.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The member's name (etcd's `--name`).
    pub name: String,
    /// Where the log and the applied state live (etcd's `--data-dir`).
    pub data_dir: PathBuf,
    /// The largest request accepted, in bytes (etcd's `--max-request-bytes`, 1.5 MiB).
    pub max_request_bytes: usize,
    /// The most operations in one txn branch (etcd's `--max-txn-ops`, 128).
    pub max_txn_ops: usize,
    /// The shortest TTL a lease is granted, in seconds; shorter requests get this.
    /// etcd derives it from its election timeout: 2 s with the default 1 s.
    pub min_lease_ttl: i64,
    /// How often lease deadlines are checked.
    pub lease_check_interval: Duration,
    /// The most log entries made durable by one fsync.
    pub max_batch_entries: usize,
    /// sled's page cache, in bytes. Small by default: pages sled drops from
    /// its cache stay in the kernel's page cache, and reading them back costs
    /// less than sled spends managing a larger cache (its resident memory also
    /// runs well past the figure). See docs/benchmarks.md.
    pub cache_bytes: u64,
    /// Whether a new raft log's first segment is preallocated too (the open
    /// waits while it is zero-filled, once per data directory), as a
    /// long-running server wants: writes that grow a file need a second,
    /// serial disk write per fsync and stall far more often. Off by default,
    /// so that an embedded or test store opens without writing 64 MiB; its
    /// log is preallocated from its second segment on (see `wal`).
    pub preallocate_wal_from_start: bool,
    /// Watch settings.
    pub watch: WatchOptions,
    /// The first members, name → peer URL (etcd's `--initial-cluster`, a name
    /// may repeat for several URLs). Empty: this member alone.
    pub initial_cluster: Vec<(String, String)>,
    /// Start a new cluster or join a running one (`--initial-cluster-state`).
    pub initial_cluster_state: ClusterState,
    /// Distinguishes clusters; part of every member ID (`--initial-cluster-token`).
    pub initial_cluster_token: String,
    /// This member's peer URLs as the others reach it (`--initial-advertise-peer-urls`).
    pub initial_advertise_peer_urls: Vec<String>,
    /// This member's client URLs as announced to the cluster (`--advertise-client-urls`).
    pub advertise_client_urls: Vec<String>,
    /// Raft's tick, the leader's heartbeat (`--heartbeat-interval`, 100 ms).
    pub heartbeat_interval: Duration,
    /// How long followers wait for a heartbeat before an election (`--election-timeout`, 1 s).
    pub election_timeout: Duration,
    /// Applied entries between snapshots (`--snapshot-count`).
    pub snapshot_count: u64,
    /// Entries kept in the log behind a snapshot, so a slightly slow follower
    /// catches up from the log rather than a snapshot (etcd keeps 5,000).
    pub snapshot_catch_up_entries: u64,
}

impl StoreConfig {
    /// The ID `--initial-cluster` gives this member: derived from its peer URLs
    /// and the cluster token, so every founding member computes the same IDs.
    /// A member added later by MemberAdd has an ID salted with the time of the
    /// addition instead; [`Store::identity`] has the ID a store runs with.
    pub fn member_id(&self) -> u64 {
        member_id(
            &self.initial_advertise_peer_urls,
            &self.initial_cluster_token,
        )
    }

    /// The cluster's ID, derived from the cluster token.
    pub fn cluster_id(&self) -> u64 {
        fnv1a(self.initial_cluster_token.as_bytes()) | 1
    }

    /// The members `--initial-cluster` names, with their IDs.
    pub(crate) fn initial_members(&self) -> Vec<Member> {
        if self.initial_cluster.is_empty() {
            return vec![Member {
                id: self.member_id(),
                name: self.name.clone(),
                peer_urls: self.initial_advertise_peer_urls.clone(),
                client_urls: Vec::new(),
                is_learner: false,
            }];
        }
        let mut members: Vec<Member> = Vec::new();
        for (name, url) in &self.initial_cluster {
            match members.iter_mut().find(|m| &m.name == name) {
                Some(member) => member.peer_urls.push(url.clone()),
                None => members.push(Member {
                    name: name.clone(),
                    peer_urls: vec![url.clone()],
                    ..Default::default()
                }),
            }
        }
        for member in &mut members {
            member.id = member_id(&member.peer_urls, &self.initial_cluster_token);
        }
        members
    }

    /// How long a request may wait to be applied before "request timed out"
    /// (etcd: 5 s plus two election timeouts).
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(5) + 2 * self.election_timeout
    }
}

/// A founding member's ID from its peer URLs and the cluster token (no time,
/// so every member of `--initial-cluster` computes the same IDs).
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    fnv1a(&member_id_input(peer_urls, token)) | 1
}

/// The ID of a member added at `unix_nanos` (nanoseconds since the Unix
/// epoch): its peer URLs and the cluster token salted with the time, as
/// etcd's MemberAdd does, so that a member added again with the peer URLs of
/// a removed one gets a fresh ID.
pub(crate) fn added_member_id(peer_urls: &[String], token: &str, unix_nanos: u64) -> u64 {
    let mut bytes = member_id_input(peer_urls, token);
    bytes.push(0);
    bytes.extend_from_slice(&unix_nanos.to_be_bytes());
    fnv1a(&bytes) | 1
}

fn member_id_input(peer_urls: &[String], token: &str) -> Vec<u8> {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut bytes = urls.join(",").into_bytes();
    bytes.push(0);
    bytes.extend_from_slice(token.as_bytes());
    bytes
}

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

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            name: "default".into(),
            data_dir: PathBuf::from("default.skiff"),
            max_request_bytes: 1536 * 1024,
            max_txn_ops: mvcc::MAX_TXN_OPS,
            min_lease_ttl: 2,
            lease_check_interval: Duration::from_millis(500),
            max_batch_entries: 4096,
            cache_bytes: 32 * 1024 * 1024,
            preallocate_wal_from_start: false,
            watch: WatchOptions::default(),
            initial_cluster: Vec::new(),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".into(),
            initial_advertise_peer_urls: vec!["http://localhost:2380".into()],
            advertise_client_urls: vec!["http://localhost:2379".into()],
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            snapshot_count: 100_000,
            snapshot_catch_up_entries: 5_000,
        }
    }
}

/// A member's identity, as etcd reports it in every response header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberIdentity {
    /// The cluster's ID.
    pub cluster_id: u64,
    /// This member's ID.
    pub member_id: u64,
}

/// A handle to a running store; clone it freely.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: StoreConfig,
    pub(crate) identity: MemberIdentity,
    pub(crate) mvcc: Arc<RwLock<Mvcc>>,
    pub(crate) db: sled::Db,
    pub(crate) hub: WatchHub,
    lessor: Mutex<Lessor>,
    pub(crate) inputs: Mutex<std::sync::mpsc::Sender<Input>>,
    next_id: std::sync::atomic::AtomicU64,
    pub(crate) stop: tokio_util::sync::CancellationToken,
    apply_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(crate) raft_status: node::SharedStatus,
    transport: Transport,
    /// The members a member joining a running cluster talks to until the
    /// leader's snapshot brings the member list: the list it learned its ID
    /// from, else those `--initial-cluster` names.
    pub(crate) initial_peers: Vec<Member>,
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
        let mut opened = tokio::task::spawn_blocking(move || node::open(&cfg))
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
            node::start_as(&cfg, member_id, &mut opened).map(|()| opened)
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
        let inner = Arc::new(Inner {
            config,
            identity,
            mvcc,
            db: opened.db,
            hub,
            lessor: Mutex::new(Lessor::default()),
            inputs: Mutex::new(tx),
            // Random, so IDs of a restarted member never match entries of its past.
            next_id: std::sync::atomic::AtomicU64::new(rand::random::<u64>() >> 1),
            stop: tokio_util::sync::CancellationToken::new(),
            apply_thread: Mutex::new(None),
            raft_status: Mutex::new(RaftStatus {
                member_id: identity.member_id,
                ..Default::default()
            }),
            transport: transport.clone(),
            initial_peers,
        });
        let members = Arc::downgrade(&inner.mvcc);
        transport.set_member_source(Arc::new(move || {
            members
                .upgrade()
                .and_then(|mvcc| {
                    let mvcc = mvcc.read().ok()?;
                    Some(mvcc.members().values().cloned().collect())
                })
                .unwrap_or_default()
        }));
        let handle = node::spawn(inner.clone(), opened.log, opened.snapshots, transport, rx)?;
        *lock(&inner.apply_thread)? = Some(handle);
        tokio::spawn(expire_leases(Arc::downgrade(&inner)));
        Ok(Store { inner })
    }

    /// This member's cluster and member IDs.
    pub fn identity(&self) -> MemberIdentity {
        self.inner.identity
    }

    /// The configuration the store runs with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The watch hub, for watchers inside this process.
    pub fn watch_hub(&self) -> &WatchHub {
        &self.inner.hub
    }

    /// A response header at `revision`.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.inner.identity.cluster_id,
            member_id: self.inner.identity.member_id,
            revision,
            raft_term: self.raft_status().term,
        }
    }

    /// The raft node's view: leader, term, commit and applied index.
    pub fn raft_status(&self) -> RaftStatus {
        self.inner
            .raft_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The tonic service peers use to reach this member (`skiff.raft.v1`).
    pub(crate) fn peer_service(
        &self,
    ) -> skiff_proto::raftpb::raft_server::RaftServer<crate::raft::transport::RaftService> {
        self.inner.transport.service()
    }

    fn fill_header(&self, header: &mut Option<ResponseHeader>, revision: i64) {
        *header = Some(self.header(revision));
    }

    /// The newest revision.
    pub fn current_revision(&self) -> Result<i64> {
        Ok(read(&self.inner.mvcc)?.current_revision())
    }

    /// The revision history is compacted to.
    pub fn compacted_revision(&self) -> Result<i64> {
        Ok(read(&self.inner.mvcc)?.compacted_revision())
    }

    /// The index of the last applied log entry.
    pub fn applied_index(&self) -> Result<u64> {
        Ok(read(&self.inner.mvcc)?.applied_index())
    }

    /// Reads keys (etcd's `Range`): linearizable unless `req.serializable`.
    pub async fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        if !req.serializable {
            self.wait_linearizable().await?;
        }
        self.range_local(req)
    }

    /// Waits until this member has applied everything committed before now
    /// (ReadIndex): a read after this sees every write acknowledged before it.
    pub async fn wait_linearizable(&self) -> Result<()> {
        let status = self.raft_status();
        if status.single_voter {
            return Ok(());
        }
        if status.is_learner {
            return Err(StoreError::NotSupportedForLearner);
        }
        let (respond, answer) = oneshot::channel();
        self.send(Input::Read(respond))?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Reads keys from this member's state machine as it is (a serializable read).
    pub fn range_local(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let mvcc = read(&self.inner.mvcc)?;
        let mut resp = mvcc.range(req)?;
        self.fill_header(&mut resp.header, mvcc.current_revision());
        Ok(resp)
    }

    /// Writes one key (etcd's `Put`).
    pub async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        mvcc::validate_put(&req)?;
        propose_as!(self, log_entry::Request::Put(req), Put)
    }

    /// Deletes the keys in a range (etcd's `DeleteRange`).
    pub async fn delete_range(&self, req: DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        if req.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        propose_as!(self, log_entry::Request::DeleteRange(req), DeleteRange)
    }

    /// Runs a transaction (etcd's `Txn`).
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        mvcc::validate_txn(&req, self.inner.config.max_txn_ops)?;
        propose_as!(self, log_entry::Request::Txn(req), Txn)
    }

    /// Drops history below `req.revision` (etcd's `Compact`).
    pub async fn compact(&self, req: CompactionRequest) -> Result<CompactionResponse> {
        propose_as!(self, log_entry::Request::Compaction(req), Compaction)
    }

    /// Grants a lease (etcd's `LeaseGrant`): ID 0 lets the store choose one; a TTL
    /// below the minimum is raised to it.
    pub async fn lease_grant(&self, mut req: LeaseGrantRequest) -> Result<LeaseGrantResponse> {
        if req.ttl > MAX_LEASE_TTL {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        if req.id < 0 {
            return Err(StoreError::InvalidRequest(format!(
                "lease ID {} is negative",
                req.id
            )));
        }
        req.ttl = req.ttl.max(self.inner.config.min_lease_ttl);
        if req.id == 0 {
            req.id = self.unused_lease_id()?;
        }
        let (id, ttl) = (req.id, req.ttl);
        let resp = propose_as!(self, log_entry::Request::LeaseGrant(req), LeaseGrant)?;
        lock(&self.inner.lessor)?.renew(id, ttl, Instant::now());
        Ok(resp)
    }

    fn unused_lease_id(&self) -> Result<i64> {
        let mvcc = read(&self.inner.mvcc)?;
        loop {
            let id = rand::random::<i64>() & i64::MAX;
            if id != 0 && !mvcc.leases().contains_key(&id) {
                return Ok(id);
            }
        }
    }

    /// Revokes a lease, deleting its keys (etcd's `LeaseRevoke`).
    pub async fn lease_revoke(&self, req: LeaseRevokeRequest) -> Result<LeaseRevokeResponse> {
        propose_as!(self, log_entry::Request::LeaseRevoke(req), LeaseRevoke)
    }

    /// Renews a lease to its full TTL (one `LeaseKeepAlive` message); returns
    /// the TTL. In a cluster the renewal goes through the log, so that the
    /// leader, which alone expires leases, hears of it wherever it arrived.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<i64> {
        if !self.raft_status().single_voter {
            let request = log_entry::Request::LeaseKeepAlive(
                skiff_proto::etcdserverpb::LeaseKeepAliveRequest { id },
            );
            return match self.propose(request).await? {
                (Response::LeaseKeepAlive(ttl), _) => Ok(ttl),
                (other, _) => Err(unexpected(other)),
            };
        }
        let ttl = {
            let mvcc = read(&self.inner.mvcc)?;
            mvcc.leases()
                .get(&id)
                .map(|l| l.ttl)
                .ok_or(StoreError::LeaseNotFound)?
        };
        lock(&self.inner.lessor)?.renew(id, ttl, Instant::now());
        Ok(ttl)
    }

    /// A lease's remaining and granted TTL, and optionally its keys (etcd's
    /// `LeaseTimeToLive`). An unknown lease has TTL -1, as in etcd.
    pub fn lease_time_to_live(
        &self,
        req: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse> {
        let mvcc = read(&self.inner.mvcc)?;
        let header = Some(self.header(mvcc.current_revision()));
        let Some(lease) = mvcc.leases().get(&req.id) else {
            return Ok(LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: -1,
                ..Default::default()
            });
        };
        let remaining = lock(&self.inner.lessor)?
            .remaining(req.id, Instant::now())
            .unwrap_or(lease.ttl);
        Ok(LeaseTimeToLiveResponse {
            header,
            id: req.id,
            ttl: remaining,
            granted_ttl: lease.ttl,
            keys: if req.keys {
                lease.keys.iter().cloned().collect()
            } else {
                Vec::new()
            },
        })
    }

    /// Every live lease (etcd's `LeaseLeases`).
    pub fn lease_leases(&self) -> Result<LeaseLeasesResponse> {
        let mvcc = read(&self.inner.mvcc)?;
        Ok(LeaseLeasesResponse {
            header: Some(self.header(mvcc.current_revision())),
            leases: mvcc.leases().keys().map(|&id| LeaseStatus { id }).collect(),
        })
    }

    /// A CRC-32 of the key space up to `revision` (0 = now), and the compaction point.
    pub fn hash_kv(&self, revision: i64) -> Result<(u32, i64, i64)> {
        let mvcc = read(&self.inner.mvcc)?;
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
        let wal = dir_size(&self.inner.config.data_dir.join(node::WAL_DIR));
        sled + wal
    }

    /// The number of keys alive now.
    pub fn key_count(&self) -> Result<usize> {
        Ok(read(&self.inner.mvcc)?.key_count())
    }

    /// Resolves once the store has stopped: closed, removed from its cluster, or
    /// unable to write its log.
    pub async fn stopped(&self) {
        self.inner.stop.cancelled().await
    }

    /// The cluster's members.
    pub fn member_list(&self) -> Result<Vec<Member>> {
        Ok(read(&self.inner.mvcc)?
            .members()
            .values()
            .cloned()
            .collect())
    }

    /// Adds a member (a voter, or a learner) reached at `peer_urls`; returns it
    /// and the new member list once the change is applied here. Its ID is
    /// salted with the time ([`added_member_id`]), so peer URLs of a removed
    /// member can be added again, as a new member.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(Member, Vec<Member>)> {
        if peer_urls.is_empty() {
            return Err(StoreError::InvalidRequest(
                "member add needs at least one peer URL".into(),
            ));
        }
        let member = Member {
            id: added_member_id(
                &peer_urls,
                &self.inner.config.initial_cluster_token,
                unix_nanos(),
            ),
            name: String::new(),
            peer_urls,
            client_urls: Vec::new(),
            is_learner,
        };
        let members = self
            .change_members(MemberChange::Add(member.clone()))
            .await?;
        Ok((member, members))
    }

    /// Removes a member; returns the remaining members.
    pub async fn member_remove(&self, id: u64) -> Result<Vec<Member>> {
        self.change_members(MemberChange::Remove(id)).await
    }

    /// Promotes a learner to a voter once it has caught up; returns the members.
    pub async fn member_promote(&self, id: u64) -> Result<Vec<Member>> {
        self.change_members(MemberChange::Promote(id)).await
    }

    async fn change_members(&self, change: MemberChange) -> Result<Vec<Member>> {
        let (respond, answer) = oneshot::channel();
        self.send(Input::ConfChange(change, respond))?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    fn send(&self, input: Input) -> Result<()> {
        lock(&self.inner.inputs)?
            .send(input)
            .map_err(|_| StoreError::Stopped)
    }

    /// Stops the raft loop and the lease checker and waits for the loop to end;
    /// writes not yet applied fail with `Stopped`.
    pub async fn close(&self) {
        self.inner.stop.cancel();
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
        let tree = read(&self.inner.mvcc).map(|mvcc| mvcc.sled_tree());
        if let Ok(tree) = tree {
            flush_sled_at_close(tree).await;
        }
    }

    /// Hands a request to the apply loop and waits for its result.
    async fn propose(&self, request: log_entry::Request) -> Result<(Response, i64)> {
        let id = self
            .inner
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entry = LogEntry {
            id,
            proposer: self.inner.identity.member_id,
            request: Some(request),
        };
        if entry.encoded_len() > self.inner.config.max_request_bytes {
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

impl Inner {
    /// Gives lease `id` a full `ttl` from now.
    pub(crate) fn renew_lease(&self, id: i64, ttl: i64) {
        if let Ok(mut lessor) = self.lessor.lock() {
            lessor.renew(id, ttl, Instant::now());
        }
    }

    /// Proposes a request nobody waits on (a lease expiry).
    fn propose_detached(&self, request: log_entry::Request) -> bool {
        let proposal = Proposal {
            entry: LogEntry {
                id: 0,
                proposer: self.identity.member_id,
                request: Some(request),
            },
            respond: None,
        };
        lock(&self.inputs)
            .map(|tx| tx.send(Input::Propose(proposal)).is_ok())
            .unwrap_or(false)
    }
}

/// Every `lease_check_interval`, proposes a revoke for each expired lease.
async fn expire_leases(inner: std::sync::Weak<Inner>) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    let (interval, stop) = (strong.config.lease_check_interval, strong.stop.clone());
    drop(strong);
    let mut ticker = tokio::time::interval(interval);
    let mut led = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        // Only the leader decides that a lease expired. A new leader first
        // gives every lease a full TTL: keep-alives went to the old one.
        let leads = inner
            .raft_status
            .lock()
            .map(|s| s.is_leader())
            .unwrap_or(false);
        if !leads {
            led = false;
            continue;
        }
        if !led {
            led = true;
            let (Ok(mvcc), Ok(mut lessor)) = (inner.mvcc.read(), inner.lessor.lock()) else {
                return;
            };
            let now = Instant::now();
            for (id, lease) in mvcc.leases() {
                lessor.renew(*id, lease.ttl, now);
            }
            continue;
        }
        let expired = {
            let (Ok(mvcc), Ok(mut lessor)) = (inner.mvcc.read(), inner.lessor.lock()) else {
                return;
            };
            lessor.expired(mvcc.leases(), Instant::now())
        };
        for id in expired {
            tracing::info!(lease = id, "lease expired; revoking it");
            if inner.propose_detached(log_entry::Request::LeaseRevoke(LeaseRevokeRequest { id })) {
                // Give it a fresh deadline so it is not proposed again while the revoke is in flight.
                if let Ok(mut lessor) = inner.lessor.lock() {
                    lessor.renew(id, 1, Instant::now());
                }
            }
        }
    }
}

pub(crate) fn read(mvcc: &RwLock<Mvcc>) -> Result<std::sync::RwLockReadGuard<'_, Mvcc>> {
    mvcc.read()
        .map_err(|_| StoreError::Storage("state machine lock poisoned by a panic".into()))
}

pub(crate) fn write(mvcc: &RwLock<Mvcc>) -> Result<std::sync::RwLockWriteGuard<'_, Mvcc>> {
    mvcc.write()
        .map_err(|_| StoreError::Storage("state machine lock poisoned by a panic".into()))
}

fn lock<T>(mutex: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| StoreError::Storage("a lock was poisoned by a panic".into()))
}

fn unexpected(response: Response) -> StoreError {
    StoreError::Storage(format!(
        "apply answered with the wrong response kind: {response:?}"
    ))
}

/// Nanoseconds since the Unix epoch; 0 on a clock set before it.
fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
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
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn single_member(data_dir: PathBuf) -> StoreConfig {
        StoreConfig {
            name: "solo".into(),
            data_dir,
            initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
            heartbeat_interval: Duration::from_millis(10),
            election_timeout: Duration::from_millis(100),
            ..StoreConfig::default()
        }
    }

    #[test]
    fn founding_member_ids_depend_only_on_peer_urls_and_token() {
        // Pinned: founding members' IDs are what they always were, so data
        // directories and clusters made before keep their IDs.
        let urls = vec!["http://127.0.0.1:2380".to_string()];
        assert_eq!(member_id(&urls, "etcd-cluster"), 0x2b3e_a24f_3b86_f823);
        let two = vec!["http://b:2380".to_string(), "http://a:2380".to_string()];
        let sorted = vec!["http://a:2380".to_string(), "http://b:2380".to_string()];
        assert_eq!(member_id(&two, "t"), member_id(&sorted, "t"));
        assert_ne!(member_id(&urls, "t"), member_id(&urls, "u"));
        // Every founder computes the same IDs from --initial-cluster.
        let config = StoreConfig {
            initial_cluster: vec![
                ("m1".into(), "http://127.0.0.1:2380".into()),
                ("m2".into(), "http://127.0.0.2:2380".into()),
            ],
            initial_advertise_peer_urls: urls.clone(),
            ..StoreConfig::default()
        };
        let ids: Vec<u64> = config.initial_members().iter().map(|m| m.id).collect();
        assert_eq!(ids[0], member_id(&urls, "etcd-cluster"));
        assert_eq!(ids[0], config.member_id());
    }

    #[tokio::test]
    async fn a_data_directory_of_an_older_layout_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        {
            // What an older build left: one sled key per change, no layout record.
            let db = sled::Config::new().path(&db_dir).open().unwrap();
            let mut key = vec![b'r'];
            key.extend_from_slice(&crate::revision::Revision::new(2, 0).to_bytes());
            db.open_tree("kv").unwrap().insert(key, b"\0").unwrap();
            db.flush().unwrap();
        }
        let err = Store::open(single_member(dir.path().to_path_buf()))
            .await
            .err()
            .expect("the older layout is refused");
        let text = err.to_string();
        assert!(text.contains("one change per key"), "{text}");
        assert!(text.contains(&db_dir.display().to_string()), "{text}");
    }

    #[test]
    fn added_member_ids_are_salted_with_the_time() {
        let urls = vec!["http://127.0.0.4:2380".to_string()];
        let at = 1_700_000_000_000_000_000;
        assert_eq!(
            added_member_id(&urls, "t", at),
            added_member_id(&urls, "t", at)
        );
        assert_ne!(
            added_member_id(&urls, "t", at),
            added_member_id(&urls, "t", at + 1)
        );
        assert_ne!(added_member_id(&urls, "t", at), member_id(&urls, "t"));
    }

    #[tokio::test]
    async fn a_member_added_again_after_its_removal_gets_a_fresh_id() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(single_member(dir.path().join("data")))
            .await
            .expect("the store opens");
        let urls = vec!["http://127.0.0.9:2380".to_string()];
        // Learners, so that the lone voter keeps its quorum.
        let (first, _) = store
            .member_add(urls.clone(), true)
            .await
            .expect("the first add");
        store.member_remove(first.id).await.expect("the removal");
        let (second, members) = store
            .member_add(urls.clone(), true)
            .await
            .expect("the same peer URLs are added again");
        assert_ne!(first.id, second.id);
        let ids: BTreeSet<u64> = members.iter().map(|m| m.id).collect();
        assert!(ids.contains(&second.id), "{ids:x?}");
        assert!(!ids.contains(&first.id), "{ids:x?}");
        assert_eq!(second.peer_urls, urls);
        // The first ID stays removed.
        assert_eq!(
            store.member_remove(first.id).await,
            Err(StoreError::MemberNotFound)
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_restarted_member_keeps_the_id_its_data_directory_records() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = single_member(dir.path().join("data"));
        let store = Store::open(config.clone()).await.expect("the store opens");
        let id = store.identity().member_id;
        assert_eq!(id, config.member_id());
        store.close().await;
        drop(store);
        let recorded =
            std::fs::read_to_string(config.data_dir.join(node::MEMBER_ID_FILE)).expect("recorded");
        assert_eq!(recorded.trim(), format!("{id:x}"));

        // Other peer URLs give another configured ID; the data directory's wins.
        let moved = StoreConfig {
            initial_advertise_peer_urls: vec!["http://127.0.0.8:2380".into()],
            ..config.clone()
        };
        assert_ne!(moved.member_id(), id);
        let store = Store::open(moved).await.expect("the store opens again");
        assert_eq!(store.identity().member_id, id);
        assert_eq!(store.header(0).member_id, id);
        store.close().await;
    }

    /// The snapshot files in `dir`: (index, whether it is a delta).
    fn snapshot_files(dir: &std::path::Path) -> Vec<(u64, bool)> {
        let mut files: Vec<(u64, bool)> = std::fs::read_dir(dir)
            .expect("the snapshot directory")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".snap")?
                    .to_owned();
                let index = name.split_once('-')?.1.parse().ok()?;
                let magic = std::fs::read(&path).ok()?.get(..8)?.to_vec();
                Some((index, magic == b"SKIFFSND"))
            })
            .collect();
        files.sort();
        files
    }

    /// A member that lost its applied state (sled) restores it from its newest
    /// snapshot, a delta, through the chain it ends, then replays the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_member_without_its_applied_state_restores_it_through_a_chain_of_deltas() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = StoreConfig {
            snapshot_count: 40,
            snapshot_catch_up_entries: 5,
            ..single_member(dir.path().join("data"))
        };
        let snap_dir = config.data_dir.join(node::SNAP_DIR);
        let store = Store::open(config.clone()).await.expect("the store opens");
        let put = |i: usize| PutRequest {
            key: format!("k{}", i % 50).into_bytes(),
            value: format!("v{i}").into_bytes(),
            ..Default::default()
        };
        let mut i = 0;
        // Bounded: the snapshots come with the writes.
        while i < 5_000 {
            store.put(put(i)).await.expect("a put");
            i += 1;
            let files = snapshot_files(&snap_dir);
            if i % 10 == 0 && files.last().is_some_and(|(_, delta)| *delta) && files.len() >= 3 {
                break;
            }
        }
        let files = snapshot_files(&snap_dir);
        assert!(
            files.last().is_some_and(|(_, delta)| *delta),
            "{i} puts wrote no delta: {files:?}"
        );
        // A few more after the newest snapshot, for the log to replay.
        for _ in 0..7 {
            store.put(put(i)).await.expect("a put");
            i += 1;
        }
        let all = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        };
        let before = store.range(&all).await.expect("a range");
        let revision = store.current_revision().expect("a revision");
        store.close().await;
        drop(store);

        std::fs::remove_dir_all(config.data_dir.join(node::DB_DIR)).expect("sled removed");
        let store = Store::open(config.clone())
            .await
            .expect("the store opens from its snapshots and log");
        // A linearizable read waits for the log's entries to be applied.
        let after = store.range(&all).await.expect("a range");
        assert_eq!(after.header.expect("a header").revision, revision);
        assert_eq!(after.kvs, before.kvs, "every key as it was");
        assert_eq!(after.kvs.len(), 50);
        store.put(put(i)).await.expect("writes go on");
        store.close().await;
    }
}
