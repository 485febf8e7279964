//! Snapshots: when the next one is due, and writing it in the background
//! (see "Snapshots" in the node's module doc for the three steps and the
//! chain of deltas).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::eraftpb::{Snapshot, SnapshotMetadata};
use raft::{RawNode, StorageError};

use super::bootstrap::BOOTSTRAP_INDEX;
use super::{storage_err, Input, Node};
use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::mvcc::snapshot::SnapshotPoint;
use crate::raft::snapshot::Snapshots;
use crate::raft::storage::{RaftLog, RaftLogReader, SnapshotSource};
use crate::shared::{read, write, Shared};

/// The snapshot scheduler: what the last snapshot was, whether one is being
/// written, and when the next is due.
pub(super) struct Snapshotter {
    snapshots: Arc<Snapshots>,
    /// Set when raft asked for a snapshot to send a lagging member.
    wanted: Arc<AtomicBool>,
    /// The index of the newest snapshot.
    last_index: u64,
    /// The last snapshot this member saved, for the next to follow.
    chain: Option<ChainTip>,
    /// The snapshot being written in the background, if one is.
    dump: Option<RunningDump>,
    /// The snapshot thread's queue, once it runs ([`Snapshotter::worker`]).
    jobs: Option<Sender<SnapshotJob>>,
    /// No new snapshot is started before this (set after a failed one).
    after: Instant,
    /// Wakes the raft loop when the snapshot thread is done.
    wake: Sender<Input>,
}

impl Node {
    /// Finishes the background snapshot once it has ended, and starts one
    /// when one is due.
    pub(super) fn maybe_snapshot(&mut self) -> Result<()> {
        self.snapshot.maybe(&self.raw, &mut self.log, &self.shared)
    }
}

impl Snapshotter {
    pub(super) fn new(snapshots: Arc<Snapshots>, wake: Sender<Input>) -> Result<Self> {
        let last_index = snapshots.latest()?.map(|(meta, _)| meta.index).unwrap_or(0);
        Ok(Snapshotter {
            snapshots,
            wanted: Arc::new(AtomicBool::new(false)),
            last_index,
            chain: None,
            dump: None,
            jobs: None,
            after: Instant::now(),
            wake,
        })
    }

    /// What raft's log reader asks for a snapshot to send.
    pub(super) fn source(&self) -> Arc<dyn SnapshotSource> {
        Arc::new(SnapshotFiles {
            snapshots: Arc::clone(&self.snapshots),
            wanted: Arc::clone(&self.wanted),
        })
    }

    /// Saves the leader's snapshot as this member's newest; the next snapshot
    /// of ours starts a new chain.
    pub(super) fn save_installed(&mut self, meta: &SnapshotMetadata, data: &[u8]) -> Result<()> {
        self.snapshots.save_bytes(meta, data)?;
        self.chain = None;
        Ok(())
    }

    /// The installed snapshot at `index` is in the log: the next one is
    /// counted from it.
    pub(super) fn installed_at(&mut self, index: u64) {
        self.last_index = index;
    }

    /// Finishes the background snapshot once it has ended, and starts one
    /// after `snapshot_count` entries (or when raft wants one for a lagging
    /// member) if none is running. See "Snapshots" in the module doc.
    pub(super) fn maybe(
        &mut self,
        raw: &RawNode<RaftLogReader>,
        log: &mut RaftLog,
        shared: &Shared,
    ) -> Result<()> {
        if let Some(dump) = &mut self.dump {
            match dump.done.try_recv() {
                Ok(saved) => self.finish(Ok(saved), log, &shared.config)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => self.finish(
                    Err(StoreError::Storage(
                        "the snapshot thread stopped without an answer".into(),
                    )),
                    log,
                    &shared.config,
                )?,
            }
        }
        let applied = raw.raft.raft_log.applied;
        let wanted = self.wanted.load(Ordering::Acquire);
        let due = applied >= self.last_index + shared.config.snapshot_count;
        if applied <= self.last_index || !(wanted || due) || Instant::now() < self.after {
            return Ok(());
        }
        let Ok(term) = raw.raft.raft_log.term(applied) else {
            return Ok(());
        };
        let mut meta = SnapshotMetadata {
            index: applied,
            term,
            ..Default::default()
        };
        meta.set_conf_state(log.conf_state());
        let started = self.start(meta, shared);
        if started.is_err() {
            self.after = Instant::now() + SNAPSHOT_RETRY;
        }
        started
    }

    /// Step 1 and 2 of a snapshot: freezes sled at `meta.index` and starts
    /// the thread that writes the file.
    fn start(&mut self, meta: SnapshotMetadata, shared: &Shared) -> Result<()> {
        let earlier = self
            .chain
            .as_ref()
            .filter(|tip| {
                tip.delta_bytes < DELTA_BYTES_PER_WHOLE * tip.whole_bytes && tip.deltas < MAX_DELTAS
            })
            .map(|tip| tip.point);
        let dump = write(&shared.mvcc)?.begin_snapshot_after(earlier)?;
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
        let wake = self.wake.clone();
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
            // The loop may have stopped; then nobody needs waking.
            let _ = wake.send(Input::SnapshotWritten);
        });
        self.worker()?
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
    fn worker(&mut self) -> Result<&std::sync::mpsc::Sender<SnapshotJob>> {
        if self.jobs.is_none() {
            let (jobs, queue) = std::sync::mpsc::channel::<SnapshotJob>();
            std::thread::Builder::new()
                .name("skiff-snapshot".into())
                .spawn(move || queue.into_iter().for_each(|job| job()))
                .map_err(|e| StoreError::Storage(format!("starting the snapshot thread: {e}")))?;
            self.jobs = Some(jobs);
        }
        Ok(self.jobs.as_ref().expect("set just above"))
    }

    /// Step 3 of a snapshot, once its thread has ended: with the file on disk,
    /// compacts the log behind it and deletes older snapshots. A failed
    /// snapshot is retried after `SNAPSHOT_RETRY`.
    fn finish(
        &mut self,
        answer: Result<DumpResult>,
        log: &mut RaftLog,
        config: &StoreConfig,
    ) -> Result<()> {
        let Some(RunningDump {
            meta, point, delta, ..
        }) = self.dump.take()
        else {
            return Ok(());
        };
        let bytes = match answer.and_then(|saved| saved.map_err(StoreError::from)) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.after = Instant::now() + SNAPSHOT_RETRY;
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
        self.last_index = index;
        self.wanted.store(false, Ordering::Release);
        let keep_from = index.saturating_sub(config.snapshot_catch_up_entries);
        if keep_from > log.first_index() {
            log.compact(keep_from)
                .map_err(storage_err("compacting the raft log"))?;
        }
        self.snapshots.purge(SNAPSHOTS_KEPT)?;
        tracing::info!(index, "wrote a snapshot");
        Ok(())
    }

    /// Makes a running background snapshot give up, and waits for its thread
    /// (which deletes its half-written file). The log is left as it is: a
    /// file that was completed anyway is simply an extra snapshot.
    pub(super) fn abandon(&mut self, shared: &Shared) {
        let Some(RunningDump { meta, done, .. }) = self.dump.take() else {
            return;
        };
        if let Ok(mvcc) = read(&shared.mvcc) {
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

/// Snapshot files kept, with the ones they follow; older ones are deleted.
const SNAPSHOTS_KEPT: usize = 2;

/// A snapshot is a delta on top of the last one while the deltas since the
/// last whole snapshot add up to less than this many times its size...
const DELTA_BYTES_PER_WHOLE: u64 = 2;

/// ... and there are fewer than this many of them.
const MAX_DELTAS: u32 = 16;

/// How long after a failed snapshot the next one is tried.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(10);

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
