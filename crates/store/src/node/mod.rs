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
//! disks) and applied here. On restart [`bootstrap::open`] recovers the log, restores the
//! newest snapshot if sled lost state the log no longer has, and raft
//! re-delivers every committed entry past sled's applied index.
//!
//! # Layout
//! One job per file, each with the state it owns; all of them are `impl Node`:
//! - `mod.rs` (here): [`Input`], [`spawn`], and the loop itself (`run`, `take`).
//! - `bootstrap`: opening the data directory, the member ID it records, and
//!   the bootstrap snapshot of a new cluster.
//! - `ready`: raft's `Ready` — send, apply snapshot, apply committed, persist,
//!   advance — and proposals.
//! - `read_index`: linearizable reads waiting on a ReadIndex ([`read_index::ReadIndex`]).
//! - `membership`: configuration changes, removal of this member, the peer list.
//! - `snapshot`: when to write a snapshot, and writing it in the background
//!   ([`snapshot::Snapshotter`]).
//!
//! The node reads and writes only what the store shares with it
//! ([`crate::shared::Shared`]) and the lease deadlines it tells what it
//! applied ([`crate::lease::Leases`]); it never reaches back into the handle.
//!
//! # Membership
//! A new cluster starts from a bootstrap snapshot at index 1 holding the
//! `--initial-cluster` members, so a member added later (started with
//! `--initial-cluster-state existing` and an empty data directory) learns the
//! whole configuration from the leader's snapshot. Such a member's ID was
//! chosen by MemberAdd (salted with the time), so `Store::open` learns it from
//! its peers before the node starts; [`bootstrap::start_as`] records the ID in the data
//! directory ([`bootstrap::MEMBER_ID_FILE`]), and every later start takes it from there.
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
//! A snapshot is written without stopping applies (`snapshot`):
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
//! `MAX_DELTAS`, adding up to less than `DELTA_BYTES_PER_WHOLE` times the
//! whole snapshot they start from. Then, and after a compaction, a start, or
//! an installed snapshot, the next one is whole again. So the bytes copied
//! grow with the bytes written, not with the history kept, while loading a
//! chain reads at most a few times the state.
//!
//! One dump runs at a time; a snapshot due meanwhile waits for it. Installing
//! the leader's snapshot, and stopping, abandon a running dump: it fails and
//! its half-written file (a `.tmp` name) is deleted. A failed dump is logged
//! and tried again after `SNAPSHOT_RETRY`.
//!
//! # Caveats
//! - Proposals that raft drops silently (a leader lost mid-flight) are
//!   answered only by their deadline, with "request timed out", as etcd.
//! - A MemberRemove sent to the member it removes is answered once that
//!   member applies or hears of its removal; cut off from every member that
//!   applied it until the deadline, it answers "request timed out" (outcome
//!   unknown) like any proposal, then stops once it hears.

pub(crate) mod bootstrap;
mod membership;
mod read_index;
mod ready;
mod snapshot;

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::eraftpb::Message;
use raft::{RawNode, ReadOnlyOption, StateRole};
use skiff_proto::store::{LogEntry, Member};
use tokio::sync::oneshot;

use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::lease::Leases;
use crate::mvcc::{Applied, MemberChange};
use crate::raft::snapshot::Snapshots;
use crate::raft::storage::{RaftLog, RaftLogReader};
use crate::raft::transport::{Incoming, Transport};
use crate::shared::{read, RaftStatus, Shared};
use membership::Membership;
use read_index::ReadIndex;
use snapshot::Snapshotter;

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
    /// it (`snapshot`).
    SnapshotWritten,
    /// Nothing: wakes the loop (to notice a stop).
    Wake,
}

fn storage_err(what: &str) -> impl Fn(crate::wal::WalError) -> StoreError + '_ {
    move |e| StoreError::Storage(format!("{what}: {e}"))
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
    shared: Arc<Shared>,
    leases: Arc<Leases>,
    id: u64,
    raw: RawNode<RaftLogReader>,
    log: RaftLog,
    transport: Transport,
    tick: Duration,
    request_timeout: Duration,
    /// Proposals of this member by LogEntry id.
    pending: HashMap<u64, Waiting<Applied>>,
    /// Membership changes in flight and the peers the transport was given.
    membership: Membership,
    /// Linearizable reads waiting for their ReadIndex.
    reads: ReadIndex,
    /// Snapshots: when the next is due, and the one being written.
    snapshot: Snapshotter,
    /// The last log index known to be on disk.
    durable_last: u64,
    /// The leader as of the last turn, to notice changes.
    known_leader: u64,
}

/// What the raft thread is started with besides the shared state.
pub(crate) struct Parts {
    /// The raft log, as opened.
    pub(crate) log: RaftLog,
    /// The snapshot files.
    pub(crate) snapshots: Arc<Snapshots>,
    /// The transport to the other members.
    pub(crate) transport: Transport,
    /// The lease deadlines, told of applied keep-alives.
    pub(crate) leases: Arc<Leases>,
    /// The node's own inputs: the snapshot thread wakes the loop through it.
    pub(crate) wake: Sender<Input>,
}

/// Starts the raft thread.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    parts: Parts,
    inputs: Receiver<Input>,
) -> Result<std::thread::JoinHandle<()>> {
    let Parts {
        log,
        snapshots,
        transport,
        leases,
        wake,
    } = parts;
    let applied = read(&shared.mvcc)?.applied_index();
    let snapshot = Snapshotter::new(snapshots, wake)?;
    let reader = log.reader_with_snapshots(snapshot.source());
    let config = &shared.config;
    let id = shared.identity.member_id;
    let raft_config = raft_config(config, id, applied);
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&raft_config, reader, &logger)
        .map_err(|e| StoreError::Storage(format!("starting raft: {e}")))?;
    let durable_last = log.last_index();
    let mut node = Node {
        id,
        raw,
        log,
        transport,
        tick: config.heartbeat_interval,
        request_timeout: config.request_timeout(),
        pending: HashMap::new(),
        membership: Membership::new(),
        reads: ReadIndex::default(),
        snapshot,
        durable_last,
        known_leader: raft::INVALID_ID,
        leases,
        shared,
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
        let max = self.shared.config.max_batch_entries.max(1);
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
            if self.shared.stop.is_cancelled() {
                break;
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                next_tick = now + self.tick;
                self.expire(now);
            }
            self.reads.send(&mut self.raw);
            self.notice_leader_change();
            if let Err(err) = self.handle_ready() {
                tracing::error!(%err, "the raft log cannot be written; this member stops");
                self.shared.stop.cancel();
                break;
            }
            self.publish_status();
            self.publish_attributes(now);
            if let Err(err) = self.maybe_snapshot() {
                tracing::error!(%err, "writing a snapshot failed");
            }
        }
        self.snapshot.abandon(&self.shared);
        self.fail_everything(StoreError::Stopped);
        self.transport.shutdown();
    }

    fn take(&mut self, input: Input) {
        match input {
            Input::Propose(p) => self.propose(p),
            Input::Read(respond) => self.reads.push(Waiting {
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

    fn fail_everything(&mut self, err: StoreError) {
        for (_, w) in self.pending.drain() {
            w.answer(Err(err.clone()));
        }
        self.membership.fail(&err);
        self.reads.fail(&err);
    }

    /// Once a tick: asks again for reads raft dropped, and answers everything
    /// past its deadline with "request timed out".
    fn expire(&mut self, now: Instant) {
        expire_waiting(&mut self.pending, now);
        self.membership.expire(now);
        self.reads.expire(&mut self.raw, now);
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
            .shared
            .raft_status
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *shared != status {
            *shared = status;
        }
    }
}

/// Answers every entry of `waiting` past its deadline with "request timed out".
fn expire_waiting<T>(waiting: &mut HashMap<u64, Waiting<T>>, now: Instant) {
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
