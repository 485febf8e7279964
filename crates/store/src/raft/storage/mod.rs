//! The raft log as raft-rs reads it, kept in the write-ahead log.
//!
//! Raft's safety rests on what a member remembers across a crash. Before a
//! follower answers an append it must have the entries on disk, or it could
//! acknowledge an entry, crash, forget it, and let the leader count a commit
//! that no longer exists on a majority. Before it grants a vote it must have
//! the `HardState` (term, vote) on disk, or it could vote twice in one term.
//! So every `Ready` from raft-rs is handled as: persist entries and
//! `HardState`, fsync, and only then send the messages that depend on them
//! (raft thesis §3.8, "Persisted state and server restarts"; raft-rs gives the
//! same order in
//! [`RawNode::ready`](https://docs.rs/raft/0.7.0/raft/raw_node/struct.RawNode.html#method.ready)).
//!
//! [`RaftLog`] is the writing side, owned by the Ready loop: `append`,
//! `set_hard_state`, `set_conf_state`, then one [`RaftLog::sync`], the single
//! fdatasync. [`RaftLogReader`] is a cheap clone of the same in-memory view
//! that implements [`raft::Storage`]
//! (<https://docs.rs/raft/0.7.0/raft/storage/trait.Storage.html>), with the
//! error semantics of raft-rs's `MemStorage`.
//!
//! # On disk
//! Everything lives in the [`Wal`]:
//! - each raft entry is one WAL entry with the same index and term, whose data
//!   is the whole `eraftpb::Entry` (type, term, index, data, context) encoded
//!   as protobuf, so configuration changes come back as they went in;
//! - the WAL's state record (last one wins) is a `StateRecord`: `HardState`,
//!   `ConfState`, the last snapshot's index and term, and the first index of
//!   the log after compaction.
//!
//! The protobuf messages are mirrored with prost, field for field and tag for
//! tag from raft-rs's `eraftpb.proto`, because the `protobuf` crate raft-rs
//! uses is not one of skiff-store's own dependencies.
//!
//! # Caveats
//! - [`RaftLogReader::snapshot`] returns a snapshot with the right metadata but
//!   *empty data*: the state-machine snapshot comes later. Until it does, a
//!   follower must never be caught up by snapshot.
//!   Where `MemStorage` would raise a snapshot's index to `request_index`,
//!   this one answers `SnapshotTemporarilyUnavailable` instead.
//! - Any error from a writing method leaves the in-memory view and the WAL
//!   possibly out of step (a failed fsync poisons the WAL): drop the
//!   `RaftLog` and reopen it.
//! - The reader sees appended entries before `sync`; the Ready loop must sync
//!   before it calls `advance`, as raft-rs requires anyway.
//! - Compaction keeps no term for the index just below the new first index
//!   (`term` of it is `Compacted`), exactly as `MemStorage`. Unlike
//!   `MemStorage`, compacting the whole log keeps `first_index` at the
//!   compaction point rather than falling back to the snapshot.
//! - The whole live log is held in memory, as the WAL's recovery already does.

use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use prost::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::wal::{self, Wal, WalError, WalOptions};

/// The writing side of the raft log, owned by the Ready loop.
#[derive(Debug)]
pub(crate) struct RaftLog {
    dir: std::path::PathBuf,
    opts: WalOptions,
    wal: Wal,
    core: Arc<RwLock<Core>>,
    /// `HardState`, `ConfState` or the first index changed since the last
    /// state record; written at the next `sync`.
    state_dirty: bool,
}

/// A read handle on the log for raft-rs; clones share one view.
#[derive(Clone)]
pub(crate) struct RaftLogReader {
    core: Arc<RwLock<Core>>,
    /// Where snapshots with the state machine's data come from; without one,
    /// snapshots carry metadata only.
    snapshots: Option<Arc<dyn SnapshotSource>>,
}

impl std::fmt::Debug for RaftLogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLogReader")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// Supplies the snapshots raft sends to members that fell behind the log.
pub(crate) trait SnapshotSource: Send + Sync {
    /// A snapshot at `request_index` or newer, with the state machine's data;
    /// `SnapshotTemporarilyUnavailable` while none is ready (raft asks again).
    fn snapshot(&self, request_index: u64) -> raft::Result<Snapshot>;
}

/// The log as raft sees it. `entries[i]` has index `first_index + i`.
#[derive(Debug, Default)]
struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot_index: u64,
    snapshot_term: u64,
    first_index: u64,
    entries: Vec<Entry>,
}

impl Core {
    fn last_index(&self) -> u64 {
        self.first_index + self.entries.len() as u64 - 1
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.snapshot_index {
            return Ok(self.snapshot_term);
        }
        if index < self.first_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last_index() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(index - self.first_index) as usize].term)
    }

    fn to_record(&self) -> StateRecord {
        let hs = &self.hard_state;
        let cs = &self.conf_state;
        StateRecord {
            hard_state: Some(HardStateRecord {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            }),
            conf_state: Some(ConfStateRecord {
                voters: cs.voters.clone(),
                learners: cs.learners.clone(),
                voters_outgoing: cs.voters_outgoing.clone(),
                learners_next: cs.learners_next.clone(),
                auto_leave: cs.auto_leave,
            }),
            snapshot_index: self.snapshot_index,
            snapshot_term: self.snapshot_term,
            first_index: self.first_index,
        }
    }
}

impl RaftLog {
    /// Opens (or creates) the log in `dir`, recovering entries, `HardState`,
    /// `ConfState` and the last snapshot's index and term.
    pub(crate) fn open(dir: &Path, opts: WalOptions) -> Result<RaftLog, WalError> {
        let (mut wal, recovered) = Wal::open(dir, opts.clone())?;
        let record = match &recovered.state {
            Some(bytes) => StateRecord::decode(bytes.as_slice())
                .map_err(|err| corrupt(dir, format!("raft state record: {err}")))?,
            None => StateRecord::default(),
        };
        let mut core = Core {
            hard_state: record.hard_state.map(HardState::from).unwrap_or_default(),
            conf_state: record.conf_state.map(ConfState::from).unwrap_or_default(),
            snapshot_index: record.snapshot_index,
            snapshot_term: record.snapshot_term,
            first_index: record.first_index.max(1),
            entries: Vec::new(),
        };
        // The WAL purges whole segments only, so it may still hold entries
        // below the first index; they are compacted away.
        for wal_entry in recovered.entries {
            if wal_entry.index >= core.first_index {
                core.entries.push(decode_entry(dir, &wal_entry)?);
            }
        }
        if let Some(first) = core.entries.first() {
            if first.index != core.first_index {
                return Err(corrupt(
                    dir,
                    format!(
                        "raft log starts at {} but the state record says {}",
                        first.index, core.first_index
                    ),
                ));
            }
        }
        // `apply_snapshot` writes its state record before the WAL's truncate
        // record; a crash between the two leaves entries from before the
        // snapshot. Such entries can only carry a term below the snapshot's
        // (a log's terms never decrease), so they are recognised and dropped.
        let stale = core
            .entries
            .first()
            .is_some_and(|e| e.index == core.snapshot_index + 1 && e.term < core.snapshot_term);
        if stale {
            tracing::warn!(
                snapshot_index = core.snapshot_index,
                "raft log: dropping entries older than the snapshot"
            );
            core.entries.clear();
            wal.truncate_after(core.snapshot_index)?;
        }
        Ok(RaftLog {
            dir: dir.to_path_buf(),
            opts,
            wal,
            core: Arc::new(RwLock::new(core)),
            state_dirty: false,
        })
    }

    /// Forgets everything not made durable: cuts the log after `durable_last`
    /// (entries written but not synced when a write failed) and reloads the
    /// state from disk. Readers made before see the old view: make new ones.
    pub(crate) fn rollback(&mut self, durable_last: u64) -> Result<(), WalError> {
        if self.wal.last_index() > durable_last {
            self.wal.truncate_after(durable_last)?;
        }
        self.wal.sync()?;
        *self = RaftLog::open(&self.dir.clone(), self.opts.clone())?;
        Ok(())
    }

    /// A read handle implementing [`raft::Storage`], to give to `RawNode`.
    #[cfg(test)]
    pub(crate) fn reader(&self) -> RaftLogReader {
        RaftLogReader {
            core: Arc::clone(&self.core),
            snapshots: None,
        }
    }

    /// A read handle whose snapshots come from `source`.
    pub(crate) fn reader_with_snapshots(&self, source: Arc<dyn SnapshotSource>) -> RaftLogReader {
        RaftLogReader {
            core: Arc::clone(&self.core),
            snapshots: Some(source),
        }
    }

    /// The membership in force, including changes not yet synced.
    pub(crate) fn conf_state(&self) -> ConfState {
        read(&self.core).conf_state.clone()
    }

    /// The first index still in the log (the one after the last snapshot or compaction).
    pub(crate) fn first_index(&self) -> u64 {
        read(&self.core).first_index
    }

    /// The last index in the log (the snapshot's when the log is empty).
    pub(crate) fn last_index(&self) -> u64 {
        read(&self.core).last_index()
    }

    /// Whether nothing was ever written: no state, no snapshot, no entries.
    pub(crate) fn is_new(&self) -> bool {
        let core = read(&self.core);
        core.entries.is_empty()
            && core.snapshot_index == 0
            && core.hard_state == HardState::default()
            && core.conf_state == ConfState::default()
    }

    /// The current `HardState`, including changes not yet synced.
    pub(crate) fn hard_state(&self) -> HardState {
        read(&self.core).hard_state.clone()
    }

    /// Appends `entries`, first dropping any suffix of the log they overwrite
    /// (raft: a new leader replaces a follower's conflicting, uncommitted
    /// entries). Not durable until [`RaftLog::sync`].
    ///
    /// # Panics
    /// If the entries would overwrite compacted entries, leave a gap after the
    /// last index, or are not consecutive: raft-rs never asks for that.
    pub(crate) fn append(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        let Some(first) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        let (first_index, last_index) = {
            let core = read(&self.core);
            (core.first_index, core.last_index())
        };
        assert!(
            first >= first_index,
            "raft log: append at {first} would overwrite compacted entries (first index {first_index})"
        );
        assert!(
            first <= last_index + 1,
            "raft log: append at {first} leaves a gap after the last index {last_index}"
        );
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index,
                first + offset as u64,
                "raft log: appended entries are not consecutive"
            );
        }
        if first <= self.wal.last_index() {
            self.wal.truncate_after(first - 1)?;
        }
        let wal_entries: Vec<wal::Entry> = entries.iter().map(encode_entry).collect();
        self.wal.append(&wal_entries)?;

        let mut core = write(&self.core);
        core.entries.truncate((first - first_index) as usize);
        core.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Records raft's `HardState` (term, vote, commit). Durable after
    /// [`RaftLog::sync`].
    pub(crate) fn set_hard_state(&mut self, hard_state: HardState) {
        write(&self.core).hard_state = hard_state;
        self.state_dirty = true;
    }

    /// Records the membership in force. Durable after [`RaftLog::sync`].
    pub(crate) fn set_conf_state(&mut self, conf_state: ConfState) {
        write(&self.core).conf_state = conf_state;
        self.state_dirty = true;
    }

    /// Writes what was appended and set, then fdatasyncs once. Only after
    /// `Ok` may messages that depend on it be sent.
    pub(crate) fn sync(&mut self) -> Result<(), WalError> {
        if self.state_dirty {
            // After the entries in the WAL's buffer: a torn write then loses
            // the state before it loses entries the state depends on.
            let record = read(&self.core).to_record().encode_to_vec();
            self.wal.set_state(&record)?;
            self.state_dirty = false;
        }
        self.wal.sync()
    }

    /// Discards entries below `to`, which the state machine has applied and
    /// a snapshot covers; deletes WAL segments holding only such entries.
    /// Syncs. As `MemStorage::compact`, a `to` at or below the first index
    /// does nothing.
    ///
    /// # Panics
    /// If `to` is beyond the last index + 1.
    pub(crate) fn compact(&mut self, to: u64) -> Result<(), WalError> {
        {
            let mut core = write(&self.core);
            if to <= core.first_index {
                return Ok(());
            }
            let last_index = core.last_index();
            assert!(
                to <= last_index + 1,
                "raft log: compact to {to} beyond the last index {last_index}"
            );
            let drop = (to - core.first_index) as usize;
            core.entries.drain(..drop);
            core.first_index = to;
        }
        self.state_dirty = true;
        // The new first index is on disk before any segment goes.
        self.sync()?;
        self.wal.purge_before(to)
    }

    /// Replaces the log with a snapshot taken at `metadata.index`: no entries
    /// remain, the next one appended is `index + 1`; the commit index, term
    /// and `ConfState` are taken from the snapshot, as `MemStorage` does.
    /// Durable after [`RaftLog::sync`].
    ///
    /// # Panics
    /// If the snapshot is older than the first index; raft-rs only applies
    /// snapshots newer than its commit index.
    pub(crate) fn apply_snapshot(&mut self, metadata: &SnapshotMetadata) -> Result<(), WalError> {
        let record = {
            let mut core = write(&self.core);
            assert!(
                metadata.index >= core.first_index,
                "raft log: snapshot at {} is older than the first index {}",
                metadata.index,
                core.first_index
            );
            core.snapshot_index = metadata.index;
            core.snapshot_term = metadata.term;
            core.first_index = metadata.index + 1;
            core.entries.clear();
            core.hard_state.term = core.hard_state.term.max(metadata.term);
            core.hard_state.commit = metadata.index;
            core.conf_state = metadata.get_conf_state().clone();
            core.to_record().encode_to_vec()
        };
        // State first, truncate second: see `open` for why a crash between
        // them is harmless, while the other order could lose the old state.
        self.wal.set_state(&record)?;
        self.state_dirty = false;
        self.wal.truncate_after(0)
    }
}

impl Storage for RaftLogReader {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = read(&self.core);
        Ok(RaftState::new(
            core.hard_state.clone(),
            core.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = read(&self.core);
        if low < core.first_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let last_index = core.last_index();
        assert!(
            high <= last_index + 1,
            "raft log: entries up to {high} asked for, but the last index is {last_index}"
        );
        let low = (low - core.first_index) as usize;
        let high = (high - core.first_index) as usize;
        let mut entries = core.entries[low..high.max(low)].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        read(&self.core).term(index)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(read(&self.core).first_index)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(read(&self.core).last_index())
    }

    /// Metadata only, at the commit index: see the module's caveats. If the
    /// commit index is below `request_index`, or its term is compacted away,
    /// raft is told to try again later.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if let Some(source) = &self.snapshots {
            return source.snapshot(request_index);
        }
        let core = read(&self.core);
        let index = core.hard_state.commit;
        let unavailable = raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable);
        if index < request_index {
            return Err(unavailable);
        }
        let term = core.term(index).map_err(|_| unavailable)?;
        let mut snapshot = Snapshot::default();
        let metadata = snapshot.mut_metadata();
        metadata.index = index;
        metadata.term = term;
        metadata.set_conf_state(core.conf_state.clone());
        Ok(snapshot)
    }
}

fn read(core: &RwLock<Core>) -> RwLockReadGuard<'_, Core> {
    core.read()
        .expect("raft log: a writer panicked while holding the lock")
}

fn write(core: &RwLock<Core>) -> RwLockWriteGuard<'_, Core> {
    core.write()
        .expect("raft log: a writer panicked while holding the lock")
}

fn corrupt(dir: &Path, reason: String) -> WalError {
    WalError::Corrupt {
        path: dir.to_path_buf(),
        offset: 0,
        reason,
    }
}

fn encode_entry(entry: &Entry) -> wal::Entry {
    let record = EntryRecord {
        entry_type: entry.get_entry_type() as i32,
        term: entry.term,
        index: entry.index,
        data: entry.data.clone(),
        context: entry.context.clone(),
    };
    wal::Entry {
        index: entry.index,
        term: entry.term,
        data: record.encode_to_vec(),
    }
}

fn decode_entry(dir: &Path, wal_entry: &wal::Entry) -> Result<Entry, WalError> {
    let index = wal_entry.index;
    let record = EntryRecord::decode(wal_entry.data.as_slice())
        .map_err(|err| corrupt(dir, format!("raft entry {index}: {err}")))?;
    if record.index != index || record.term != wal_entry.term {
        return Err(corrupt(
            dir,
            format!(
                "raft entry {index} (term {}) holds entry {} of term {}",
                wal_entry.term, record.index, record.term
            ),
        ));
    }
    let entry_type = match record.entry_type {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        other => {
            return Err(corrupt(
                dir,
                format!("raft entry {index}: unknown entry type {other}"),
            ))
        }
    };
    Ok(Entry {
        entry_type,
        term: record.term,
        index: record.index,
        data: record.data,
        context: record.context,
        ..Entry::default()
    })
}

/// `eraftpb.Entry`, wire-compatible (the deprecated `sync_log`, tag 5, left out).
#[derive(Clone, PartialEq, prost::Message)]
struct EntryRecord {
    #[prost(int32, tag = "1")]
    entry_type: i32,
    #[prost(uint64, tag = "2")]
    term: u64,
    #[prost(uint64, tag = "3")]
    index: u64,
    #[prost(bytes = "bytes", tag = "4")]
    data: Bytes,
    #[prost(bytes = "bytes", tag = "6")]
    context: Bytes,
}

/// The WAL's state record: everything about the log that is not an entry.
#[derive(Clone, PartialEq, prost::Message)]
struct StateRecord {
    #[prost(message, optional, tag = "1")]
    hard_state: Option<HardStateRecord>,
    #[prost(message, optional, tag = "2")]
    conf_state: Option<ConfStateRecord>,
    /// Index and term of the last snapshot applied; 0 for none.
    #[prost(uint64, tag = "3")]
    snapshot_index: u64,
    #[prost(uint64, tag = "4")]
    snapshot_term: u64,
    /// The first index after compaction; 0 is read as 1.
    #[prost(uint64, tag = "5")]
    first_index: u64,
}

/// `eraftpb.HardState`, wire-compatible.
#[derive(Clone, PartialEq, prost::Message)]
struct HardStateRecord {
    #[prost(uint64, tag = "1")]
    term: u64,
    #[prost(uint64, tag = "2")]
    vote: u64,
    #[prost(uint64, tag = "3")]
    commit: u64,
}

/// `eraftpb.ConfState`, wire-compatible.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ConfStateRecord {
    #[prost(uint64, repeated, tag = "1")]
    voters: Vec<u64>,
    #[prost(uint64, repeated, tag = "2")]
    learners: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    voters_outgoing: Vec<u64>,
    #[prost(uint64, repeated, tag = "4")]
    learners_next: Vec<u64>,
    #[prost(bool, tag = "5")]
    auto_leave: bool,
}

impl From<HardStateRecord> for HardState {
    fn from(record: HardStateRecord) -> HardState {
        HardState {
            term: record.term,
            vote: record.vote,
            commit: record.commit,
            ..HardState::default()
        }
    }
}

impl From<ConfStateRecord> for ConfState {
    fn from(record: ConfStateRecord) -> ConfState {
        ConfState {
            voters: record.voters,
            learners: record.learners,
            voters_outgoing: record.voters_outgoing,
            learners_next: record.learners_next,
            auto_leave: record.auto_leave,
            ..ConfState::default()
        }
    }
}

impl From<&ConfState> for ConfStateRecord {
    fn from(cs: &ConfState) -> ConfStateRecord {
        ConfStateRecord {
            voters: cs.voters.clone(),
            learners: cs.learners.clone(),
            voters_outgoing: cs.voters_outgoing.clone(),
            learners_next: cs.learners_next.clone(),
            auto_leave: cs.auto_leave,
        }
    }
}

#[cfg(test)]
mod tests;
