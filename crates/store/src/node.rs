//! The raft node: the one thread that turns proposals into replicated,
//! durable, applied and announced writes.
//!
//! Every mutation — put, delete, txn, compaction, lease grant and revoke,
//! membership — is proposed to raft-rs's `RawNode` and applied only once raft
//! has committed it, in log order, on every member. Each turn of the loop:
//!
//! 1. takes every input waiting (proposals, peer messages, read requests,
//!    membership changes) and ticks raft's clock when a tick is due;
//! 2. handles raft's `Ready`: sends the messages that may leave at once,
//!    installs a snapshot from the leader, applies committed entries, appends
//!    new entries and the `HardState` to the log and fsyncs once — group
//!    commit: a whole batch of proposals costs one fsync — and only then sends
//!    the messages that depend on them (votes, append acknowledgements);
//! 3. applies what that made committed (`LightReady`), hands each entry's
//!    events to the watch hub in revision order, and answers the waiting
//!    clients;
//! 4. answers linearizable reads whose ReadIndex the state machine reached;
//! 5. starts a snapshot when enough entries were applied (or a lagging member
//!    needs one), and compacts the log behind one that is on disk.
//!
//! A client hears "done" only after its entry is committed (on a majority's
//! disks) and applied here. On restart [`open`] recovers the log, restores the
//! newest snapshot if sled lost state the log no longer has, and raft
//! re-delivers every committed entry past sled's applied index.
//!
//! # Membership
//! A new cluster starts from a bootstrap snapshot at index 1 holding the
//! `--initial-cluster` members, so a member added later (started with
//! `--initial-cluster-state existing` and an empty data directory) learns the
//! whole configuration from the leader's snapshot. Such a member's ID was
//! chosen by MemberAdd (salted with the time), so `Store::open` learns it from
//! its peers before the node starts; [`start_as`] records the ID in the data
//! directory ([`MEMBER_ID_FILE`]), and every later start takes it from there.
//! Configuration changes are
//! `ConfChangeV2` entries whose context ([`ConfChangeContext`]) names the
//! member; applying one updates raft, the member list in the state machine,
//! and the transport's peers.
//!
//! A removed member stops, as etcd's does. It may apply its own removal; more
//! often the leader, having applied it, no longer replicates to it, and it
//! learns of its removal when a peer refuses its messages (the transport's
//! [`Incoming::Removed`]). Either way a MemberRemove of itself that it
//! proposed is answered as done: the removal is committed.
//!
//! # Snapshots
//! A snapshot is written without stopping applies ([`Node::maybe_snapshot`]):
//!
//! 1. freeze: this thread records the applied index, its term and the
//!    ConfState, and freezes sled at that index (`Mvcc::begin_snapshot`:
//!    sled's writer stops once it has written everything applied so far, and
//!    holds later applies in memory, where reads still see them);
//! 2. dump: the snapshot thread copies the frozen tree into a snapshot file
//!    (`raft::snapshot`: checksummed, fsync'd, renamed into place), lets sled
//!    catch up as soon as the tree is read, and wakes this thread
//!    ([`Input::SnapshotWritten`]);
//! 3. compact: only then, with the file durable, this thread compacts the raft
//!    log behind it, deletes older snapshots and counts the next
//!    `--snapshot-count` entries from it.
//!
//! A snapshot copies only what changed since the one before it (a delta, see
//! `mvcc::snapshot`) while the chain of deltas is short: fewer than
//! [`MAX_DELTAS`], adding up to less than [`DELTA_BYTES_PER_WHOLE`] times the
//! whole snapshot they start from. Then, and after a compaction, a start, or
//! an installed snapshot, the next one is whole again. So the bytes copied
//! grow with the bytes written, not with the history kept, while loading a
//! chain reads at most a few times the state.
//!
//! One dump runs at a time; a snapshot due meanwhile waits for it. Installing
//! the leader's snapshot, and stopping, abandon a running dump: it fails and
//! its half-written file (a `.tmp` name) is deleted. A failed dump is logged
//! and tried again after [`SNAPSHOT_RETRY`].
//!
//! # Caveats
//! - Proposals that raft drops silently (a leader lost mid-flight) are
//!   answered only by their deadline, with "request timed out", as etcd.
//! - A MemberRemove sent to the member it removes is answered once that
//!   member applies or hears of its removal; cut off from every member that
//!   applied it until the deadline, it answers "request timed out" (outcome
//!   unknown) like any proposal, then stops once it hears.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use raft::eraftpb::{
    ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, Message, Snapshot,
    SnapshotMetadata,
};
use raft::{RawNode, ReadOnlyOption, StateRole, StorageError};
use skiff_proto::store::{log_entry, ConfChangeContext, LogEntry, Member};
use tokio::sync::oneshot;

use crate::error::{Result, StoreError};
use crate::mvcc::snapshot::SnapshotPoint;
use crate::mvcc::{Applied, MemberChange, Mvcc};
use crate::raft::snapshot::Snapshots;
use crate::raft::storage::{RaftLog, RaftLogReader, SnapshotSource};
use crate::raft::transport::{Incoming, Transport};
use crate::store::{Inner, StoreConfig};
use crate::wal::WalOptions;

/// The log directory inside the data directory.
pub(crate) const WAL_DIR: &str = "wal";
/// The applied state's directory inside the data directory.
pub(crate) const DB_DIR: &str = "db";
/// The snapshots' directory inside the data directory.
pub(crate) const SNAP_DIR: &str = "snap";
/// The index and term of the bootstrap snapshot a new cluster starts from.
const BOOTSTRAP_INDEX: u64 = 1;
const BOOTSTRAP_TERM: u64 = 1;
/// Snapshot files kept, with the ones they follow; older ones are deleted.
const SNAPSHOTS_KEPT: usize = 2;
/// A snapshot is a delta on top of the last one while the deltas since the
/// last whole snapshot add up to less than this many times its size...
const DELTA_BYTES_PER_WHOLE: u64 = 2;
/// ... and there are fewer than this many of them.
const MAX_DELTAS: u32 = 16;
/// How often a member re-announces its name and client URLs until the log has them.
const PUBLISH_RETRY: Duration = Duration::from_secs(5);
/// How long after a failed snapshot the next one is tried.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(10);

/// A request waiting for its log entry to be applied.
pub(crate) struct Proposal {
    pub(crate) entry: LogEntry,
    /// None when nobody waits (a lease expiry).
    pub(crate) respond: Option<oneshot::Sender<Result<Applied>>>,
}

/// Everything the raft thread takes in.
pub(crate) enum Input {
    /// A write to replicate.
    Propose(Proposal),
    /// A linearizable read waiting for its ReadIndex to be applied here.
    Read(oneshot::Sender<Result<()>>),
    /// A membership change; answered with the member list once applied.
    ConfChange(MemberChange, oneshot::Sender<Result<Vec<Member>>>),
    /// Something from the peer transport.
    Peer(Incoming),
    /// The background snapshot ended, written or not: wakes the loop to finish
    /// it ([`Node::maybe_snapshot`]).
    SnapshotWritten,
    /// Nothing: wakes the loop (to notice a stop).
    Wake,
}

/// What the raft thread publishes after every turn, for headers and `Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// This member's ID.
    pub member_id: u64,
    /// The leader's ID as this member knows it; 0 when there is none.
    pub leader: u64,
    /// The current raft term.
    pub term: u64,
    /// The highest index known committed.
    pub commit_index: u64,
    /// The highest index applied to the state machine.
    pub applied_index: u64,
    /// The last index in this member's log.
    pub last_index: u64,
    /// Whether this member is a learner.
    pub is_learner: bool,
    /// Whether this member is the only voter, leads, and has applied everything
    /// committed (then every read is served locally).
    pub single_voter: bool,
}

impl RaftStatus {
    /// Whether this member leads.
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.member_id
    }
}

/// What [`open`] recovered.
pub(crate) struct Opened {
    pub(crate) db: sled::Db,
    pub(crate) mvcc: Mvcc,
    pub(crate) log: RaftLog,
    pub(crate) snapshots: Arc<Snapshots>,
    /// The member ID the data directory records ([`MEMBER_ID_FILE`]), if any.
    pub(crate) member_id: Option<u64>,
}

fn storage_err(what: &str) -> impl Fn(crate::wal::WalError) -> StoreError + '_ {
    move |e| StoreError::Storage(format!("{what}: {e}"))
}

/// Opens sled as `config` says. sled's background threads let go of the
/// directory's lock a moment after its last handle is dropped, so a member
/// reopened in the same process (a restart in a test, an embedding) waits up
/// to two seconds for the lock before it fails.
pub(crate) fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::Other
                    && e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other,
        }
    }
}

/// Opens sled, the snapshots and the raft log, reads the member ID the data
/// directory records, and restores the newest snapshot when sled is behind
/// the log's start. [`start_as`] then settles the member's ID.
pub(crate) fn open(config: &StoreConfig) -> Result<Opened> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StoreError::Storage(format!("creating {}: {e}", config.data_dir.display())))?;
    let member_id = read_member_id(&config.data_dir)?;
    let sled_config = sled::Config::new()
        .path(config.data_dir.join(DB_DIR))
        .cache_capacity(config.cache_bytes)
        // The log provides durability; sled is tuned for write throughput.
        .mode(sled::Mode::HighThroughput)
        // Nor does sled need its own periodic fsyncs: a sled that lost its
        // latest writes in a crash is caught up from the log, and the log is
        // compacted only behind a snapshot file, which is fsync'd and restored
        // when sled is behind the log's start. sled still writes its buffers
        // out as they fill.
        .flush_every_ms(None);
    let db = open_sled(&sled_config)?;
    let mut mvcc = Mvcc::open(db.open_tree("kv")?).map_err(|err| match err {
        StoreError::Storage(text) => StoreError::Storage(format!(
            "{}: {text}",
            config.data_dir.join(DB_DIR).display()
        )),
        other => other,
    })?;
    let snapshots = Arc::new(Snapshots::open(&config.data_dir.join(SNAP_DIR))?);
    let wal_options = WalOptions {
        preallocate_first: config.preallocate_wal_from_start,
        ..WalOptions::default()
    };
    let log = RaftLog::open(&config.data_dir.join(WAL_DIR), wal_options)
        .map_err(storage_err("opening the raft log"))?;
    let fresh = log.is_new() && mvcc.applied_index() == 0;
    if !fresh && mvcc.applied_index() + 1 < log.first_index() {
        // sled lost applied state that the log no longer holds.
        let (meta, _, body) = snapshots.latest_loaded()?.ok_or_else(|| {
            StoreError::Storage(format!(
                "the log starts at entry {} but the applied state ends at {} and there is no snapshot",
                log.first_index(),
                mvcc.applied_index()
            ))
        })?;
        if meta.index + 1 < log.first_index() {
            return Err(StoreError::Storage(format!(
                "the newest snapshot ({}) is older than the log's start ({})",
                meta.index,
                log.first_index()
            )));
        }
        mvcc.restore_snapshot(&mut body.as_slice())?;
        tracing::info!(
            index = meta.index,
            "restored the state machine from a snapshot"
        );
    }
    Ok(Opened {
        db,
        mvcc,
        log,
        snapshots,
        member_id,
    })
}

/// Makes `member_id` this data directory's member: records it in
/// [`MEMBER_ID_FILE`] (if not yet), bootstraps a new cluster on an empty
/// directory, and brings the raft state up to what was applied.
pub(crate) fn start_as(config: &StoreConfig, member_id: u64, opened: &mut Opened) -> Result<()> {
    match opened.member_id {
        Some(recorded) if recorded != member_id => {
            return Err(StoreError::Storage(format!(
                "{} belongs to member {recorded:x}, but the cluster lists this member's \
                 peer URLs as member {member_id:x}; start the new member on an empty data directory",
                config.data_dir.display()
            )))
        }
        Some(_) => {}
        None => {
            write_member_id(&config.data_dir, member_id)?;
            opened.member_id = Some(member_id);
        }
    }
    let Opened {
        mvcc,
        log,
        snapshots,
        ..
    } = opened;
    if log.is_new() && mvcc.applied_index() == 0 {
        if config.initial_cluster_state == ClusterState::New {
            bootstrap(config, member_id, mvcc, log, snapshots)?;
        } else {
            tracing::info!(
                member = %format!("{member_id:x}"),
                "joining an existing cluster; waiting for the leader's snapshot"
            );
        }
    }
    // The HardState's commit is written lazily; what was applied was committed.
    let mut hard_state = log.hard_state();
    if hard_state.commit < mvcc.applied_index() {
        hard_state.commit = mvcc.applied_index();
        log.set_hard_state(hard_state);
        log.sync().map_err(storage_err("writing the raft state"))?;
    }
    tracing::info!(
        data_dir = %config.data_dir.display(),
        member = %format!("{member_id:x}"),
        applied_index = mvcc.applied_index(),
        revision = mvcc.current_revision(),
        last_index = log.last_index(),
        "store opened"
    );
    Ok(())
}

/// The file in the data directory that records the member's ID (in hex), so
/// that a member added by MemberAdd, whose ID cannot be computed from its
/// configuration, keeps it across restarts.
pub(crate) const MEMBER_ID_FILE: &str = "member_id";

/// The member ID recorded in `data_dir`, if there is one.
fn read_member_id(data_dir: &Path) -> Result<Option<u64>> {
    let path = data_dir.join(MEMBER_ID_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Storage(format!(
                "reading {}: {e}",
                path.display()
            )))
        }
    };
    u64::from_str_radix(text.trim(), 16)
        .ok()
        .filter(|id| *id != 0)
        .map(Some)
        .ok_or_else(|| {
            StoreError::Storage(format!(
                "{} holds {:?}, not a member ID in hex",
                path.display(),
                text.trim()
            ))
        })
}

/// Records `id` in `data_dir`: written aside, fsync'd, renamed into place.
fn write_member_id(data_dir: &Path, id: u64) -> Result<()> {
    let path = data_dir.join(MEMBER_ID_FILE);
    let temporary = data_dir.join(format!("{MEMBER_ID_FILE}.tmp"));
    let failed =
        |e: std::io::Error| StoreError::Storage(format!("writing {}: {e}", path.display()));
    {
        let mut file = std::fs::File::create(&temporary).map_err(failed)?;
        std::io::Write::write_all(&mut file, format!("{id:x}\n").as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
    }
    std::fs::rename(&temporary, &path).map_err(failed)?;
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)
}

/// Whether a member starts a new cluster or joins a running one (etcd's
/// `--initial-cluster-state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClusterState {
    /// Every `--initial-cluster` member starts together.
    #[default]
    New,
    /// The member was added with MemberAdd and catches up from the leader.
    Existing,
}

/// Writes the first configuration as a snapshot at index 1, so that members
/// added later receive it.
fn bootstrap(
    config: &StoreConfig,
    member_id: u64,
    mvcc: &mut Mvcc,
    log: &mut RaftLog,
    snapshots: &Snapshots,
) -> Result<()> {
    let members = config.initial_members();
    if !members.iter().any(|m| m.id == member_id) {
        return Err(StoreError::InvalidRequest(format!(
            "member {:?} with peer URLs {:?} is not in --initial-cluster",
            config.name, config.initial_advertise_peer_urls
        )));
    }
    let voters: Vec<u64> = members.iter().map(|m| m.id).collect();
    let mut meta = SnapshotMetadata {
        index: BOOTSTRAP_INDEX,
        term: BOOTSTRAP_TERM,
        ..Default::default()
    };
    meta.set_conf_state(ConfState::from((voters, Vec::<u64>::new())));
    mvcc.bootstrap_members(&members);
    mvcc.apply_empty(BOOTSTRAP_INDEX);
    mvcc.commit()?;
    snapshots.save(&meta, |out| mvcc.write_snapshot(out))?;
    log.apply_snapshot(&meta)
        .and_then(|()| log.sync())
        .map_err(storage_err("writing the bootstrap state"))?;
    tracing::info!(members = members.len(), "bootstrapped a new cluster");
    Ok(())
}

/// Serves raft's requests for a snapshot to send: the newest snapshot file if
/// it is recent enough, else asks the loop to write one.
struct SnapshotFiles {
    snapshots: Arc<Snapshots>,
    wanted: Arc<AtomicBool>,
}

impl SnapshotSource for SnapshotFiles {
    fn snapshot(&self, request_index: u64) -> raft::Result<Snapshot> {
        let unavailable = || raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable);
        let latest = self.snapshots.latest_loaded().map_err(|err| {
            tracing::warn!(%err, "cannot read the snapshots");
            unavailable()
        })?;
        match latest {
            Some((meta, _, body))
                if meta.index >= request_index && meta.index > BOOTSTRAP_INDEX =>
            {
                let mut snapshot = Snapshot::default();
                snapshot.set_metadata(meta);
                snapshot.data = body.into();
                Ok(snapshot)
            }
            _ => {
                self.wanted.store(true, Ordering::Release);
                Err(unavailable())
            }
        }
    }
}

/// Someone waiting for an answer, until a deadline.
struct Waiting<T> {
    respond: oneshot::Sender<Result<T>>,
    deadline: Instant,
}

impl<T> Waiting<T> {
    fn answer(self, result: Result<T>) {
        let _ = self.respond.send(result);
    }
}

/// The raft thread's state.
struct Node {
    inner: Arc<Inner>,
    id: u64,
    raw: RawNode<RaftLogReader>,
    log: RaftLog,
    snapshots: Arc<Snapshots>,
    snapshot_wanted: Arc<AtomicBool>,
    transport: Transport,
    tick: Duration,
    request_timeout: Duration,
    /// Proposals of this member by LogEntry id.
    pending: HashMap<u64, Waiting<Applied>>,
    /// Membership changes of this member by context id.
    conf_pending: HashMap<u64, Waiting<Vec<Member>>>,
    /// The context ids in `conf_pending` that remove this member itself.
    removing_self: HashSet<u64>,
    next_conf_id: u64,
    /// Reads gathered this turn, sent to raft as one ReadIndex.
    read_batch: Vec<Waiting<()>>,
    /// ReadIndex requests in flight, by context.
    reads_sent: HashMap<u64, Vec<Waiting<()>>>,
    next_read_ctx: u64,
    /// Reads whose index is known, waiting for the state machine to reach it.
    reads_ready: VecDeque<(u64, Vec<Waiting<()>>)>,
    last_snapshot_index: u64,
    /// The last snapshot this member saved, for the next to follow.
    chain: Option<ChainTip>,
    /// The snapshot being written in the background, if one is.
    dump: Option<RunningDump>,
    /// The snapshot thread's queue, once it runs ([`Node::snapshot_worker`]).
    snapshot_jobs: Option<std::sync::mpsc::Sender<SnapshotJob>>,
    /// No new snapshot is started before this (set after a failed one).
    snapshot_after: Instant,
    publish_after: Instant,
    /// The peers the transport was given: member ID → peer URL.
    peers: HashMap<u64, String>,
    /// The last log index known to be on disk.
    durable_last: u64,
    /// The leader as of the last turn, to notice changes.
    known_leader: u64,
}

/// Starts the raft thread.
pub(crate) fn spawn(
    inner: Arc<Inner>,
    opened_log: RaftLog,
    snapshots: Arc<Snapshots>,
    transport: Transport,
    inputs: Receiver<Input>,
) -> Result<std::thread::JoinHandle<()>> {
    let applied = crate::store::read(&inner.mvcc)?.applied_index();
    let snapshot_wanted = Arc::new(AtomicBool::new(false));
    let reader = opened_log.reader_with_snapshots(Arc::new(SnapshotFiles {
        snapshots: Arc::clone(&snapshots),
        wanted: Arc::clone(&snapshot_wanted),
    }));
    let config = &inner.config;
    let id = inner.identity.member_id;
    let raft_config = raft_config(config, id, applied);
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&raft_config, reader, &logger)
        .map_err(|e| StoreError::Storage(format!("starting raft: {e}")))?;
    let last_snapshot_index = snapshots.latest()?.map(|(meta, _)| meta.index).unwrap_or(0);
    let durable_last = opened_log.last_index();
    let mut node = Node {
        id,
        raw,
        log: opened_log,
        snapshots,
        snapshot_wanted,
        transport,
        tick: config.heartbeat_interval,
        request_timeout: config.request_timeout(),
        pending: HashMap::new(),
        conf_pending: HashMap::new(),
        removing_self: HashSet::new(),
        next_conf_id: rand::random::<u64>() >> 1,
        read_batch: Vec::new(),
        reads_sent: HashMap::new(),
        next_read_ctx: 0,
        reads_ready: VecDeque::new(),
        last_snapshot_index,
        chain: None,
        dump: None,
        snapshot_jobs: None,
        snapshot_after: Instant::now(),
        publish_after: Instant::now(),
        peers: HashMap::new(),
        durable_last,
        known_leader: raft::INVALID_ID,
        inner,
    };
    node.sync_peers();
    node.stop_if_removed();
    node.campaign_if_alone();
    node.publish_status();
    std::thread::Builder::new()
        .name("skiff-raft".into())
        .spawn(move || {
            node.run(inputs);
            tracing::info!("raft loop stopped");
        })
        .map_err(|e| StoreError::Storage(format!("starting the raft thread: {e}")))
}

fn raft_config(config: &StoreConfig, id: u64, applied: u64) -> raft::Config {
    let election_tick = (config.election_timeout.as_millis()
        / config.heartbeat_interval.as_millis().max(1))
    .max(2) as usize;
    raft::Config {
        id,
        election_tick,
        // raft waits a random time in [min, max) ticks without hearing from a
        // leader before it campaigns, so that members rarely campaign at
        // once. raft's default range, [1x, 2x) the election timeout, can take
        // a failover past twice the timeout once the vote rounds are counted;
        // [1x, 1.5x) still spreads three or five members' timers by hundreds
        // of milliseconds and brings a new leader within 2x.
        min_election_tick: election_tick,
        max_election_tick: election_tick + (election_tick / 2).max(1),
        heartbeat_tick: 1,
        applied,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        // A leader cut off from a majority steps down; a partitioned member
        // cannot disrupt the cluster with needless elections when it returns.
        check_quorum: true,
        pre_vote: true,
        read_only_option: ReadOnlyOption::Safe,
        ..Default::default()
    }
}

impl Node {
    fn run(&mut self, inputs: Receiver<Input>) {
        let max = self.inner.config.max_batch_entries.max(1);
        let mut next_tick = Instant::now() + self.tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match inputs.recv_timeout(wait) {
                Ok(input) => {
                    self.take(input);
                    for input in inputs.try_iter().take(max) {
                        self.take(input);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.inner.stop.is_cancelled() {
                break;
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                next_tick = now + self.tick;
                self.expire(now);
            }
            self.send_reads();
            self.notice_leader_change();
            if let Err(err) = self.handle_ready() {
                tracing::error!(%err, "the raft log cannot be written; this member stops");
                self.inner.stop.cancel();
                break;
            }
            self.publish_status();
            self.publish_attributes(now);
            if let Err(err) = self.maybe_snapshot() {
                tracing::error!(%err, "writing a snapshot failed");
            }
        }
        self.abandon_snapshot();
        self.fail_everything(StoreError::Stopped);
        self.transport.shutdown();
    }

    fn take(&mut self, input: Input) {
        match input {
            Input::Propose(p) => self.propose(p),
            Input::Read(respond) => self.read_batch.push(Waiting {
                respond,
                deadline: Instant::now() + self.request_timeout,
            }),
            Input::ConfChange(change, respond) => self.propose_conf_change(change, respond),
            Input::Peer(Incoming::Message(msg)) => self.step(msg),
            Input::Peer(Incoming::Unreachable(id)) => self.raw.report_unreachable(id),
            Input::Peer(Incoming::SnapshotStatus(id, status)) => {
                self.raw.report_snapshot(id, status)
            }
            Input::Peer(Incoming::Removed(peer)) => self.removed_by_peer(peer),
            // The turn's maybe_snapshot finishes it.
            Input::SnapshotWritten | Input::Wake => {}
        }
    }

    fn step(&mut self, msg: Message) {
        if let Err(err) = self.raw.step(msg) {
            tracing::debug!(%err, "raft refused a peer message");
        }
    }

    fn no_leader_error(&self) -> StoreError {
        if self.raw.raft.leader_id == raft::INVALID_ID {
            StoreError::NoLeader
        } else {
            StoreError::LeaderChanged
        }
    }

    fn propose(&mut self, proposal: Proposal) {
        let data = proposal.entry.encode_to_vec();
        match self.raw.propose(Vec::new(), data) {
            Ok(()) => {
                if let Some(respond) = proposal.respond {
                    self.pending.insert(
                        proposal.entry.id,
                        Waiting {
                            respond,
                            deadline: Instant::now() + self.request_timeout,
                        },
                    );
                }
            }
            Err(_) => {
                if let Some(respond) = proposal.respond {
                    let _ = respond.send(Err(self.no_leader_error()));
                }
            }
        }
    }

    fn propose_conf_change(
        &mut self,
        change: MemberChange,
        respond: oneshot::Sender<Result<Vec<Member>>>,
    ) {
        if let Err(err) = self.check_conf_change(&change) {
            let _ = respond.send(Err(err));
            return;
        }
        let id = self.next_conf_id;
        self.next_conf_id += 1;
        let removes_self = change == MemberChange::Remove(self.id);
        let (member, change_type, node_id) = match &change {
            MemberChange::Add(member) => (
                Some(member.clone()),
                if member.is_learner {
                    ConfChangeType::AddLearnerNode
                } else {
                    ConfChangeType::AddNode
                },
                member.id,
            ),
            MemberChange::Promote(node) => (None, ConfChangeType::AddNode, *node),
            MemberChange::Remove(node) => (None, ConfChangeType::RemoveNode, *node),
        };
        let context = ConfChangeContext {
            proposer: self.id,
            id,
            member: member.or_else(|| {
                Some(Member {
                    id: node_id,
                    ..Default::default()
                })
            }),
        };
        let cc = conf_change(change_type, node_id);
        match self.raw.propose_conf_change(context.encode_to_vec(), cc) {
            Ok(()) => {
                self.conf_pending.insert(
                    id,
                    Waiting {
                        respond,
                        deadline: Instant::now() + self.request_timeout,
                    },
                );
                if removes_self {
                    self.removing_self.insert(id);
                }
            }
            Err(_) => {
                let _ = respond.send(Err(self.no_leader_error()));
            }
        }
    }

    /// etcd's checks before a membership change is proposed.
    fn check_conf_change(&self, change: &MemberChange) -> Result<()> {
        let mvcc = crate::store::read(&self.inner.mvcc)?;
        let members = mvcc.members();
        if self.raw.raft.has_pending_conf() {
            return Err(StoreError::ConfChangeInProgress);
        }
        mvcc.check_not_removed(change)?;
        match change {
            MemberChange::Add(member) => {
                if members.contains_key(&member.id) {
                    return Err(StoreError::MemberExists);
                }
                let taken = members
                    .values()
                    .flat_map(|m| &m.peer_urls)
                    .any(|url| member.peer_urls.contains(url));
                if taken {
                    return Err(StoreError::PeerUrlExists);
                }
            }
            MemberChange::Remove(id) => {
                if !members.contains_key(id) {
                    return Err(StoreError::MemberNotFound);
                }
            }
            MemberChange::Promote(id) => {
                let member = members.get(id).ok_or(StoreError::MemberNotFound)?;
                if !member.is_learner {
                    return Err(StoreError::MemberNotLearner);
                }
                if self.raw.raft.state != StateRole::Leader {
                    return Err(StoreError::NotLeader);
                }
                // etcd promotes a learner once it has 90% of the leader's log.
                let matched = self.raw.raft.prs().get(*id).map_or(0, |p| p.matched);
                let committed = self.raw.raft.raft_log.committed;
                if (matched as f64) < committed as f64 * 0.9 {
                    return Err(StoreError::LearnerNotReady);
                }
            }
        }
        Ok(())
    }

    /// When the leader changes, proposals still waiting were made under the old
    /// one and may have died with it: they are answered "leader changed" (their
    /// outcome unknown, as etcd's) rather than left to time out, so clients
    /// retry against the new leader at once.
    fn notice_leader_change(&mut self) {
        let leader = self.raw.raft.leader_id;
        if leader == self.known_leader {
            return;
        }
        let previous = std::mem::replace(&mut self.known_leader, leader);
        if previous == raft::INVALID_ID {
            return;
        }
        tracing::info!(
            from = %format!("{previous:x}"),
            to = %format!("{leader:x}"),
            term = self.raw.raft.term,
            "leader changed"
        );
        for (_, w) in self.pending.drain() {
            w.answer(Err(StoreError::LeaderChanged));
        }
    }

    fn send_reads(&mut self) {
        if self.read_batch.is_empty() {
            return;
        }
        self.next_read_ctx += 1;
        let ctx = self.next_read_ctx;
        self.raw.read_index(ctx.to_be_bytes().to_vec());
        let batch = std::mem::take(&mut self.read_batch);
        self.reads_sent.insert(ctx, batch);
    }

    /// One `Ready`, handled in the order raft requires.
    fn handle_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        self.transport.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.install_snapshot(&snapshot)?;
        }
        self.apply(ready.take_committed_entries())?;
        for state in ready.take_read_states() {
            let Ok(ctx) = <[u8; 8]>::try_from(&state.request_ctx[..]) else {
                continue;
            };
            if let Some(waiting) = self.reads_sent.remove(&u64::from_be_bytes(ctx)) {
                self.reads_ready.push_back((state.index, waiting));
            }
        }
        if let Err(err) = self.persist(&ready) {
            // Nothing of this Ready may be acknowledged or sent.
            return self.recover_from_log_failure(err, ready.entries());
        }
        self.transport.send(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hard_state = self.log.hard_state();
            hard_state.commit = commit;
            self.log.set_hard_state(hard_state);
        }
        self.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.release_reads();
        Ok(())
    }

    /// Appends the Ready's entries and HardState and fsyncs them.
    fn persist(&mut self, ready: &raft::Ready) -> std::result::Result<(), crate::wal::WalError> {
        let mut dirty = false;
        if !ready.entries().is_empty() {
            self.log.append(ready.entries())?;
            dirty = true;
        }
        if let Some(hard_state) = ready.hs() {
            self.log.set_hard_state(hard_state.clone());
            dirty = true;
        }
        if dirty || ready.must_sync() {
            self.log.sync()?;
        }
        self.durable_last = self.log.last_index();
        Ok(())
    }

    /// The log refused a write (a full disk, say): the proposals in it fail,
    /// the log is cut back to what is durable, and raft restarts from there,
    /// so the member keeps serving reads and takes writes again once the disk
    /// does. A log that cannot even be cut back stops the member.
    fn recover_from_log_failure(
        &mut self,
        err: crate::wal::WalError,
        entries: &[Entry],
    ) -> Result<()> {
        tracing::error!(%err, "writing the raft log failed; the batch is refused");
        let failure = StoreError::LogWrite(err.to_string());
        for entry in entries {
            let Ok(request) = LogEntry::decode(&entry.data[..]) else {
                continue;
            };
            if request.proposer == self.id {
                if let Some(waiting) = self.pending.remove(&request.id) {
                    waiting.answer(Err(failure.clone()));
                }
            }
        }
        for (_, w) in self.conf_pending.drain() {
            w.answer(Err(failure.clone()));
        }
        for w in self.reads_sent.drain().flat_map(|(_, ws)| ws) {
            w.answer(Err(failure.clone()));
        }
        self.log
            .rollback(self.durable_last)
            .map_err(storage_err("rolling the raft log back"))?;
        let applied = crate::store::read(&self.inner.mvcc)?.applied_index();
        let reader = self.log.reader_with_snapshots(Arc::new(SnapshotFiles {
            snapshots: Arc::clone(&self.snapshots),
            wanted: Arc::clone(&self.snapshot_wanted),
        }));
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        self.raw = RawNode::new(
            &raft_config(&self.inner.config, self.id, applied),
            reader,
            &logger,
        )
        .map_err(|e| StoreError::Storage(format!("restarting raft: {e}")))?;
        self.campaign_if_alone();
        Ok(())
    }

    /// A lone voter need not wait out an election timeout to lead.
    fn campaign_if_alone(&mut self) {
        let voters = self.raw.raft.prs().conf().voters().ids();
        if voters.len() == 1 && voters.contains(self.id) {
            let _ = self.raw.campaign();
        }
    }

    /// Replaces the state machine with a snapshot from the leader.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        tracing::info!(
            index = meta.index,
            term = meta.term,
            bytes = snapshot.data.len(),
            "installing a snapshot from the leader"
        );
        // Our own snapshot in the making is older than the leader's, and it
        // reads the tree about to be replaced.
        self.abandon_snapshot();
        self.snapshots.save_bytes(meta, &snapshot.data)?;
        // The state is replaced: the next snapshot of ours starts a new chain.
        self.chain = None;
        let revision = {
            let mut mvcc = crate::store::write(&self.inner.mvcc)?;
            mvcc.restore_snapshot(&mut &snapshot.data[..])?;
            mvcc.commit()?;
            mvcc.current_revision()
        };
        self.log
            .apply_snapshot(meta)
            .and_then(|()| self.log.sync())
            .map_err(storage_err("recording the snapshot in the raft log"))?;
        self.last_snapshot_index = meta.index;
        self.inner.hub.jump_to(revision);
        self.sync_peers();
        Ok(())
    }

    /// Applies committed entries in order, then announces and answers them.
    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut done: Vec<(Option<Waiting<Applied>>, Result<Applied>)> = Vec::new();
        let mut conf_done: Vec<(u64, Result<()>)> = Vec::new();
        let mut members_changed = false;
        {
            let inner = Arc::clone(&self.inner);
            let mut mvcc = crate::store::write(&inner.mvcc)?;
            for entry in entries {
                if entry.index <= mvcc.applied_index() {
                    continue;
                }
                match entry.get_entry_type() {
                    EntryType::EntryNormal if entry.data.is_empty() => {
                        mvcc.apply_empty(entry.index)
                    }
                    EntryType::EntryNormal => match LogEntry::decode(&entry.data[..]) {
                        Ok(request) => {
                            let result = mvcc.apply(entry.index, &request);
                            if let (
                                Some(log_entry::Request::LeaseKeepAlive(req)),
                                Ok(Applied {
                                    response: crate::mvcc::Response::LeaseKeepAlive(ttl),
                                    ..
                                }),
                            ) = (&request.request, &result)
                            {
                                self.inner.renew_lease(req.id, *ttl);
                            }
                            let waiting = if request.proposer == self.id {
                                self.pending.remove(&request.id)
                            } else {
                                None
                            };
                            if waiting.is_some() || result.is_ok() {
                                done.push((waiting, result));
                            }
                        }
                        Err(err) => {
                            tracing::error!(index = entry.index, %err, "a log entry does not decode; skipped");
                            mvcc.apply_empty(entry.index);
                        }
                    },
                    EntryType::EntryConfChange => mvcc.apply_empty(entry.index),
                    EntryType::EntryConfChangeV2 => {
                        if let Some(done) = self.apply_conf_change(&mut mvcc, &entry)? {
                            conf_done.push(done);
                        }
                        members_changed = true;
                    }
                }
            }
            mvcc.commit()?;
        }
        for (waiting, mut result) in done {
            if let Ok(applied) = &mut result {
                if !applied.events.is_empty() {
                    self.inner
                        .hub
                        .notify(applied.revision, std::mem::take(&mut applied.events));
                }
            }
            if let Some(waiting) = waiting {
                waiting.answer(result);
            }
        }
        if members_changed {
            self.sync_peers();
            let members: Vec<Member> = crate::store::read(&self.inner.mvcc)?
                .members()
                .values()
                .cloned()
                .collect();
            for (id, result) in conf_done {
                self.removing_self.remove(&id);
                if let Some(waiting) = self.conf_pending.remove(&id) {
                    waiting.answer(result.map(|()| members.clone()));
                }
            }
        }
        Ok(())
    }

    /// Applies one configuration change to raft, the raft log's ConfState (made
    /// durable at once, before sled can record the entry as applied) and the
    /// member list. A change naming a removed member, proposed from a stale
    /// member list, is refused here by every member alike (as etcd validates
    /// it again when applying). Returns the proposer's context id and outcome
    /// when it was this member.
    fn apply_conf_change(
        &mut self,
        mvcc: &mut Mvcc,
        entry: &Entry,
    ) -> Result<Option<(u64, Result<()>)>> {
        let context = match ConfChangeContext::decode(&entry.context[..]) {
            Ok(context) => context,
            Err(err) => {
                tracing::error!(index = entry.index, %err, "a membership change does not decode; skipped");
                mvcc.apply_empty(entry.index);
                return Ok(None);
            }
        };
        let member = context.member.clone().unwrap_or_default();
        // Rebuild the change raft agreed on from its context.
        let cc = conf_change_from_entry(entry)
            .unwrap_or_else(|| conf_change(ConfChangeType::AddNode, member.id));
        let change = match cc.changes.first().map(|c| c.get_change_type()) {
            Some(ConfChangeType::RemoveNode) => MemberChange::Remove(member.id),
            Some(ConfChangeType::AddNode)
                if mvcc.members().get(&member.id).is_some_and(|m| m.is_learner) =>
            {
                MemberChange::Promote(member.id)
            }
            _ => MemberChange::Add(member),
        };
        let mine = context.proposer == self.id;
        if let Err(err) = mvcc.check_not_removed(&change) {
            tracing::warn!(index = entry.index, ?change, %err, "a membership change names a removed member; ignored");
            mvcc.apply_empty(entry.index);
            return Ok(mine.then_some((context.id, Err(err))));
        }
        let conf_state = self
            .raw
            .apply_conf_change(&cc)
            .map_err(|e| StoreError::Storage(format!("applying a membership change: {e}")))?;
        self.log.set_conf_state(conf_state);
        self.log
            .sync()
            .map_err(storage_err("recording the membership"))?;
        tracing::info!(index = entry.index, ?change, "membership changed");
        mvcc.apply_member_change(entry.index, &change);
        if change == MemberChange::Remove(self.id) {
            // As etcd: a removed member stops rather than disturb the cluster
            // with elections it can no longer win.
            tracing::error!("the member has been permanently removed from the cluster");
            self.answer_removals_of_self(mvcc.members().values().cloned().collect());
            self.inner.stop.cancel();
        }
        Ok(mine.then_some((context.id, Ok(()))))
    }

    /// A member restarted after applying its own removal is no longer in its
    /// own configuration: it would never campaign nor send anything a peer
    /// could refuse, so it stops at once.
    fn stop_if_removed(&mut self) {
        let removed =
            crate::store::read(&self.inner.mvcc).is_ok_and(|mvcc| mvcc.is_removed(self.id));
        if removed {
            tracing::error!("the member has been permanently removed from the cluster");
            self.inner.stop.cancel();
        }
    }

    /// A peer refused this member's messages because its applied state has
    /// this member removed: the removal is committed, though this member may
    /// never apply it (the leader stopped replicating to it). It stops, as
    /// etcd's does, answering a MemberRemove of itself it proposed as done.
    fn removed_by_peer(&mut self, peer: u64) {
        if self.inner.stop.is_cancelled() {
            return;
        }
        tracing::error!(
            peer = %format!("{peer:x}"),
            "the member has been permanently removed from the cluster"
        );
        let members: Vec<Member> = crate::store::read(&self.inner.mvcc)
            .map(|mvcc| {
                mvcc.members()
                    .values()
                    .filter(|m| m.id != self.id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        self.answer_removals_of_self(members);
        self.inner.stop.cancel();
    }

    /// Answers every MemberRemove of this member that it proposed, with the
    /// remaining `members`: this member's removal is committed, whichever
    /// proposal it came from.
    fn answer_removals_of_self(&mut self, members: Vec<Member>) {
        for id in std::mem::take(&mut self.removing_self) {
            if let Some(waiting) = self.conf_pending.remove(&id) {
                waiting.answer(Ok(members.clone()));
            }
        }
    }

    /// Answers the reads whose index the state machine has reached.
    fn release_reads(&mut self) {
        let applied = self.raw.raft.raft_log.applied;
        while let Some((index, _)) = self.reads_ready.front() {
            if *index > applied {
                break;
            }
            let (_, waiting) = self.reads_ready.pop_front().expect("front exists");
            for w in waiting {
                w.answer(Ok(()));
            }
        }
    }

    /// Once a tick: asks again for reads raft dropped, and answers everything
    /// past its deadline with "request timed out".
    fn expire(&mut self, now: Instant) {
        fn expired<T>(waiting: &mut HashMap<u64, Waiting<T>>, now: Instant) {
            let late: Vec<u64> = waiting
                .iter()
                .filter(|(_, w)| w.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in late {
                if let Some(w) = waiting.remove(&id) {
                    w.answer(Err(StoreError::Timeout));
                }
            }
        }
        expired(&mut self.pending, now);
        expired(&mut self.conf_pending, now);
        // raft-rs drops a ReadIndex silently when there is no leader, or the
        // leader has not yet committed an entry of its term: ask again.
        let waiting: Vec<u64> = self.reads_sent.keys().copied().collect();
        for ctx in waiting {
            self.raw.read_index(ctx.to_be_bytes().to_vec());
        }
        let late: Vec<u64> = self
            .reads_sent
            .iter()
            .filter(|(_, ws)| ws.iter().all(|w| w.deadline <= now))
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in late {
            for w in self.reads_sent.remove(&ctx).unwrap_or_default() {
                w.answer(Err(StoreError::Timeout));
            }
        }
        for (_, waiting) in self.reads_ready.iter_mut() {
            for w in std::mem::take(waiting) {
                if w.deadline <= now {
                    w.answer(Err(StoreError::Timeout));
                } else {
                    waiting.push(w);
                }
            }
        }
    }

    fn fail_everything(&mut self, err: StoreError) {
        for (_, w) in self.pending.drain() {
            w.answer(Err(err.clone()));
        }
        for (_, w) in self.conf_pending.drain() {
            w.answer(Err(err.clone()));
        }
        for w in self.read_batch.drain(..) {
            w.answer(Err(err.clone()));
        }
        for (_, ws) in self.reads_sent.drain() {
            for w in ws {
                w.answer(Err(err.clone()));
            }
        }
        for (_, ws) in self.reads_ready.drain(..) {
            for w in ws {
                w.answer(Err(err.clone()));
            }
        }
    }

    /// Points the transport at every other member's peer URL.
    fn sync_peers(&mut self) {
        let Ok(mvcc) = crate::store::read(&self.inner.mvcc) else {
            return;
        };
        self.transport.set_removed(mvcc.removed_members());
        // A member joining an existing cluster knows nobody until the leader's
        // snapshot arrives; until then its peers are those of the member list
        // it learned its ID from.
        let members: Vec<Member> = if mvcc.members().is_empty() {
            self.inner.initial_peers.clone()
        } else {
            mvcc.members().values().cloned().collect()
        };
        drop(mvcc);
        let wanted: HashMap<u64, String> = members
            .iter()
            .filter(|m| m.id != self.id)
            .filter_map(|m| Some((m.id, m.peer_urls.first()?.clone())))
            .collect();
        for id in self.peers.keys() {
            if !wanted.contains_key(id) {
                self.transport.remove_peer(*id);
            }
        }
        for (id, url) in &wanted {
            if self.peers.get(id) != Some(url) {
                self.transport.set_peer(*id, url);
            }
        }
        self.peers = wanted;
    }

    fn publish_status(&mut self) {
        let raft = &self.raw.raft;
        let voters = raft.prs().conf().voters().ids();
        let status = RaftStatus {
            member_id: self.id,
            leader: raft.leader_id,
            term: raft.term,
            commit_index: raft.raft_log.committed,
            applied_index: raft.raft_log.applied,
            last_index: raft.raft_log.last_index(),
            is_learner: raft.prs().conf().learners().contains(&self.id),
            // A lone voter reads locally once, as leader, it has committed an
            // entry of its term and applied everything committed: from then on
            // every acknowledged write is applied before it is acknowledged.
            single_voter: voters.len() == 1
                && voters.contains(self.id)
                && raft.state == StateRole::Leader
                && raft.commit_to_current_term()
                && raft.raft_log.applied >= raft.raft_log.committed,
        };
        let mut shared = self
            .inner
            .raft_status
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *shared != status {
            *shared = status;
        }
    }

    /// Proposes this member's name and client URLs until the log records them.
    fn publish_attributes(&mut self, now: Instant) {
        if now < self.publish_after || self.raw.raft.leader_id == raft::INVALID_ID {
            return;
        }
        let config = &self.inner.config;
        let wanted = Member {
            id: self.id,
            name: config.name.clone(),
            peer_urls: Vec::new(),
            client_urls: config.advertise_client_urls.clone(),
            is_learner: false,
        };
        let current = crate::store::read(&self.inner.mvcc)
            .ok()
            .and_then(|mvcc| mvcc.members().get(&self.id).cloned());
        let Some(current) = current else { return };
        if current.name == wanted.name && current.client_urls == wanted.client_urls {
            self.publish_after = now + PUBLISH_RETRY * 12;
            return;
        }
        self.publish_after = now + PUBLISH_RETRY;
        self.propose(Proposal {
            entry: LogEntry {
                id: 0,
                proposer: self.id,
                request: Some(log_entry::Request::MemberAttributes(wanted)),
            },
            respond: None,
        });
    }

    /// Finishes the background snapshot once it has ended, and starts one
    /// after `snapshot_count` entries (or when raft wants one for a lagging
    /// member) if none is running. See "Snapshots" in the module doc.
    fn maybe_snapshot(&mut self) -> Result<()> {
        if let Some(dump) = &mut self.dump {
            match dump.done.try_recv() {
                Ok(saved) => self.finish_snapshot(Ok(saved))?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => self.finish_snapshot(Err(
                    StoreError::Storage("the snapshot thread stopped without an answer".into()),
                ))?,
            }
        }
        let applied = self.raw.raft.raft_log.applied;
        let wanted = self.snapshot_wanted.load(Ordering::Acquire);
        let due = applied >= self.last_snapshot_index + self.inner.config.snapshot_count;
        if applied <= self.last_snapshot_index
            || !(wanted || due)
            || Instant::now() < self.snapshot_after
        {
            return Ok(());
        }
        let Ok(term) = self.raw.raft.raft_log.term(applied) else {
            return Ok(());
        };
        let mut meta = SnapshotMetadata {
            index: applied,
            term,
            ..Default::default()
        };
        meta.set_conf_state(self.log.conf_state());
        let started = self.start_snapshot(meta);
        if started.is_err() {
            self.snapshot_after = Instant::now() + SNAPSHOT_RETRY;
        }
        started
    }

    /// Step 1 and 2 of a snapshot: freezes sled at `meta.index` and starts
    /// the thread that writes the file.
    fn start_snapshot(&mut self, meta: SnapshotMetadata) -> Result<()> {
        let earlier = self
            .chain
            .as_ref()
            .filter(|tip| {
                tip.delta_bytes < DELTA_BYTES_PER_WHOLE * tip.whole_bytes && tip.deltas < MAX_DELTAS
            })
            .map(|tip| tip.point);
        let dump = crate::store::write(&self.inner.mvcc)?.begin_snapshot_after(earlier)?;
        if dump.applied_index() != meta.index {
            // Dropping the dump lets sled catch up again.
            return Err(StoreError::Storage(format!(
                "a snapshot at raft's applied index {} found the state machine at {}",
                meta.index,
                dump.applied_index()
            )));
        }
        let parent = dump
            .delta_after()
            .and(self.chain.as_ref())
            .map(|tip| (tip.term, tip.index));
        let point = dump.point();
        let snapshots = Arc::clone(&self.snapshots);
        let wake = self.inner.inputs.lock().ok().map(|tx| tx.clone());
        let file_meta = meta.clone();
        let (answer, done) = std::sync::mpsc::channel();
        let job: SnapshotJob = Box::new(move || {
            let mut body_bytes = 0;
            let write = |out: &mut dyn std::io::Write| {
                body_bytes = dump.write(out)?;
                Ok(body_bytes)
            };
            let saved = match parent {
                Some(parent) => snapshots.save_delta(&file_meta, parent, write),
                None => snapshots.save(&file_meta, write),
            };
            // The answer goes first, so the woken loop finds it.
            let _ = answer.send(saved.map(|_| body_bytes));
            if let Some(wake) = wake {
                // The loop may have stopped; then nobody needs waking.
                let _ = wake.send(Input::SnapshotWritten);
            }
        });
        self.snapshot_worker()?
            .send(job)
            .map_err(|_| StoreError::Storage("the snapshot thread stopped".into()))?;
        tracing::info!(
            index = meta.index,
            delta = parent.is_some(),
            "writing a snapshot in the background"
        );
        self.dump = Some(RunningDump {
            meta,
            done,
            point,
            delta: parent.is_some(),
        });
        Ok(())
    }

    /// The thread that writes this member's snapshots, started with the
    /// first one. One long-lived thread rather than one per snapshot: the
    /// allocator keeps a heap per thread, and heaps of ended threads kept
    /// their memory resident.
    fn snapshot_worker(&mut self) -> Result<&std::sync::mpsc::Sender<SnapshotJob>> {
        if self.snapshot_jobs.is_none() {
            let (jobs, queue) = std::sync::mpsc::channel::<SnapshotJob>();
            std::thread::Builder::new()
                .name("skiff-snapshot".into())
                .spawn(move || queue.into_iter().for_each(|job| job()))
                .map_err(|e| StoreError::Storage(format!("starting the snapshot thread: {e}")))?;
            self.snapshot_jobs = Some(jobs);
        }
        Ok(self.snapshot_jobs.as_ref().expect("set just above"))
    }

    /// Step 3 of a snapshot, once its thread has ended: with the file on disk,
    /// compacts the log behind it and deletes older snapshots. A failed
    /// snapshot is retried after [`SNAPSHOT_RETRY`].
    fn finish_snapshot(&mut self, answer: Result<DumpResult>) -> Result<()> {
        let Some(RunningDump {
            meta, point, delta, ..
        }) = self.dump.take()
        else {
            return Ok(());
        };
        let bytes = match answer.and_then(|saved| saved.map_err(StoreError::from)) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.snapshot_after = Instant::now() + SNAPSHOT_RETRY;
                return Err(err);
            }
        };
        let (whole_bytes, delta_bytes, deltas) = match (&self.chain, delta) {
            (Some(tip), true) => (tip.whole_bytes, tip.delta_bytes + bytes, tip.deltas + 1),
            _ => (bytes, 0, 0),
        };
        self.chain = Some(ChainTip {
            term: meta.term,
            index: meta.index,
            point,
            whole_bytes,
            delta_bytes,
            deltas,
        });
        // The file is fsync'd and in place: the log before it may go.
        let index = meta.index;
        self.last_snapshot_index = index;
        self.snapshot_wanted.store(false, Ordering::Release);
        let keep_from = index.saturating_sub(self.inner.config.snapshot_catch_up_entries);
        if keep_from > self.log.first_index() {
            self.log
                .compact(keep_from)
                .map_err(storage_err("compacting the raft log"))?;
        }
        self.snapshots.purge(SNAPSHOTS_KEPT)?;
        tracing::info!(index, "wrote a snapshot");
        Ok(())
    }

    /// Makes a running background snapshot give up, and waits for its thread
    /// (which deletes its half-written file). The log is left as it is: a
    /// file that was completed anyway is simply an extra snapshot.
    fn abandon_snapshot(&mut self) {
        let Some(RunningDump { meta, done, .. }) = self.dump.take() else {
            return;
        };
        if let Ok(mvcc) = crate::store::read(&self.inner.mvcc) {
            mvcc.abandon_snapshot();
        }
        match done.recv() {
            Ok(Ok(_)) => tracing::info!(
                index = meta.index,
                "a snapshot being abandoned was already complete"
            ),
            Ok(Err(err)) => tracing::info!(index = meta.index, %err, "abandoned a snapshot"),
            Err(_) => tracing::error!(index = meta.index, "the snapshot thread stopped"),
        }
    }
}

/// How a snapshot's file ended: fsync'd in place (with its body's size), or
/// failed and removed.
type DumpResult = std::result::Result<u64, crate::raft::snapshot::SnapshotError>;

/// Work for the snapshot thread.
type SnapshotJob = Box<dyn FnOnce() + Send>;

/// A snapshot being written by the snapshot thread.
struct RunningDump {
    /// The index, term and ConfState it is taken at.
    meta: SnapshotMetadata,
    /// Answered once the file is fsync'd in place, or failed and removed.
    done: std::sync::mpsc::Receiver<DumpResult>,
    /// Where the state stands in it.
    point: SnapshotPoint,
    /// Whether it is a delta on top of [`Node::chain`]'s tip.
    delta: bool,
}

/// The last snapshot a member saved, and the chain it ends.
struct ChainTip {
    term: u64,
    index: u64,
    point: SnapshotPoint,
    /// The size of the whole snapshot that starts the chain.
    whole_bytes: u64,
    /// The sizes of the deltas since, added up.
    delta_bytes: u64,
    deltas: u32,
}

fn conf_change(change_type: ConfChangeType, node_id: u64) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(change_type);
    single.node_id = node_id;
    let mut cc = ConfChangeV2::default();
    cc.mut_changes().push(single);
    cc
}

/// The ConfChangeV2 raft committed, decoded from the entry's data.
fn conf_change_from_entry(entry: &Entry) -> Option<ConfChangeV2> {
    use protobuf::Message as _;
    let mut cc = ConfChangeV2::default();
    cc.merge_from_bytes(&entry.data).ok()?;
    Some(cc)
}

/// Shared raft status, as published by the loop.
pub(crate) type SharedStatus = Mutex<RaftStatus>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_campaign_within_one_and_a_half_election_timeouts() {
        let config = StoreConfig {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            ..StoreConfig::default()
        };
        let raft = raft_config(&config, 1, 0);
        raft.validate().expect("a valid raft configuration");
        assert_eq!(raft.election_tick, 10);
        assert_eq!((raft.min_election_tick, raft.max_election_tick), (10, 15));
        let fast = StoreConfig {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(100),
            ..StoreConfig::default()
        };
        let raft = raft_config(&fast, 1, 0);
        raft.validate()
            .expect("the shortest timeout still gives a range");
        assert_eq!((raft.min_election_tick, raft.max_election_tick), (2, 3));
    }
}
