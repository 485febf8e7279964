//! The on-disk layout of the applied state, in one sled tree.
//!
//! ```text
//!   r <main:8><sub:8>   → a run of changes, see `run`  each <kind:1><mvccpb.KeyValue>;
//!                                                      kind 0 = put, 1 = tombstone
//!   l <lease id:8>      → <granted TTL:8>              a live lease
//!   m <name>            → <i64:8>                      applied_index, revision,
//!                                                      compact_revision, layout
//!   c <member id:8>     → <skiff.store.v1.Member>      a member of the cluster
//!   x <member id:8>     → (empty)                      a member removed, never to return
//! ```
//!
//! Changes are keyed by revision, not by key, so history reads (watch catch-up)
//! are one forward scan; the key → revisions map is rebuilt in memory at start
//! (see `key_index`). They are stored several to a sled key, in runs (see
//! `run`): sled's cost is per key written.
//!
//! Writing to sled is off the write path: the changes of each turn of the apply
//! loop go, as one batch together with the applied index, to a writer thread that
//! applies them to sled in order (several turns per `sled::Batch` when it falls
//! behind), so sled always holds a state that some prefix of the log produced.
//! Until a change is in sled it stays in `unflushed`, which every read consults
//! first. The write-ahead log already made the change durable; sled only needs to
//! catch up before the log is trimmed.
//!
//! # Freezing for a snapshot
//! A snapshot is the tree as it stands at one applied index, and sled's
//! iterators are not point-in-time views. So [`Backend::freeze`] sends the
//! writer a freeze request behind the last batch: the writer writes everything
//! before it, says so, and from then on keeps receiving batches but holds them
//! in memory (they stay readable through `unflushed`) until the [`FrozenTree`]
//! is dropped. Meanwhile the tree holds exactly the state at the freeze point,
//! and a snapshot can be copied from it on another thread without stopping the
//! apply loop:
//!
//! ```text
//!   apply loop   commit(b1) commit(b2) freeze  commit(b3) commit(b4) ...
//!   writer       write b1   write b2   frozen  hold b3    hold b4     thaw: write b3, b4
//!   dump thread                        wait -> scan the tree -------> drop FrozenTree
//! ```
//!
//! Whatever replaces or drains the tree (`replace_all`, `drain`, dropping the
//! backend) first abandons a running dump: the dump notices and fails, so its
//! copy, possibly of a tree that changed under it, is never used.
//!
//! # Layout
//! - `mod.rs` (here): the key layout, [`Backend`]'s staging of writes and its
//!   reads, which merge `unflushed` over sled.
//! - `writer`: the writer thread that applies committed batches to sled.
//! - `freeze`: whole-tree access for snapshots ([`FrozenTree`], `replace_all`).
//!
//! # Caveats
//! sled's own flush is not relied on for durability: the write-ahead log is. After
//! a crash sled may be behind the log, and recovery replays the difference.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, RwLock, Weak};
use std::thread::JoinHandle;

use prost::Message;
use skiff_proto::mvccpb::KeyValue;

use super::run;
pub(crate) use freeze::FrozenTree;
use writer::start_writer;

mod freeze;
mod writer;

use crate::error::{Result, StoreError};
use crate::revision::Revision;

const REV: u8 = b'r';
const LEASE: u8 = b'l';
const META: u8 = b'm';
const MEMBER: u8 = b'c';
const REMOVED_MEMBER: u8 = b'x';

/// Meta record names.
pub(crate) const APPLIED_INDEX: &str = "applied_index";
pub(crate) const CURRENT_REVISION: &str = "revision";
pub(crate) const COMPACT_REVISION: &str = "compact_revision";
/// How the tree is laid out: [`LAYOUT_RUNS`], the only layout this build reads.
const LAYOUT: &str = "layout";
/// Changes in runs (see `run`). Trees without a layout record held one change per key.
const LAYOUT_RUNS: i64 = 2;

/// One stored change.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub(crate) tombstone: bool,
    pub(crate) kv: KeyValue,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.kv.encoded_len());
        out.push(u8::from(self.tombstone));
        self.kv.encode(&mut out).expect("a Vec grows as needed");
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let (&kind, rest) = bytes
            .split_first()
            .ok_or_else(|| StoreError::Storage("empty record".into()))?;
        let kv =
            KeyValue::decode(rest).map_err(|e| StoreError::Storage(format!("bad record: {e}")))?;
        Ok(Record {
            tombstone: kind == 1,
            kv,
        })
    }
}

fn rev_key(rev: Revision) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = REV;
    key[1..].copy_from_slice(&rev.to_bytes());
    key
}

/// The revision of a run's key (its upper bound).
fn run_bound(key: &[u8]) -> Result<Revision> {
    Revision::from_bytes(&key[1..])
        .ok_or_else(|| StoreError::Storage(format!("bad run key of {} bytes", key.len())))
}

/// The main revision of a run's key (its upper bound), or `None` for any
/// other record.
pub(crate) fn change_revision(key: &[u8]) -> Option<i64> {
    match key.split_first() {
        Some((&REV, rest)) => Revision::from_bytes(rest).map(|rev| rev.main),
        _ => None,
    }
}

/// Whether `key` sorts before every change's key.
pub(crate) fn sorts_before_changes(key: &[u8]) -> bool {
    key < [REV].as_slice()
}

fn lease_key(id: i64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = LEASE;
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

fn meta_key(name: &str) -> Vec<u8> {
    let mut key = vec![META];
    key.extend_from_slice(name.as_bytes());
    key
}

fn read_i64(bytes: &[u8]) -> Result<i64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Storage(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(i64::from_be_bytes(arr))
}

/// A change not yet in sled, with the sequence number of the write that made it,
/// so the writer only forgets the newest state of a revision it has written.
type Unflushed = BTreeMap<Revision, (u64, Option<Record>)>;

/// One turn's writes, in order, for the writer thread.
#[derive(Default)]
struct Flush {
    /// Changes: the encoded record, or `None` when compaction dropped it, with
    /// the sequence number under which `unflushed` holds that state.
    changes: Vec<(Revision, u64, Option<Vec<u8>>)>,
    /// Every other record: its key, and its value or `None` to remove it.
    others: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Flush {
    fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.others.is_empty()
    }
}

/// What the writer thread is sent, in order.
enum ToWriter {
    /// One or more turns' writes, to apply to sled.
    Flush(Flush),
    /// Write everything sent before, answer on the channel (an error if some
    /// earlier write never reached sled), then hold every later flush back.
    Freeze(SyncSender<Result<()>>),
    /// Write the flushes held back since the freeze and carry on.
    Thaw,
    /// Write everything received, held back or not, and end the thread.
    Stop,
}

/// The writer thread's end of the channel and its handle.
type Writer = (SyncSender<ToWriter>, JoinHandle<()>);

/// sled, plus the changes the writer thread has not put into sled yet.
pub(crate) struct Backend {
    tree: sled::Tree,
    unflushed: Arc<RwLock<Unflushed>>,
    /// The open batch: raw sled writes since the last commit.
    batch: Flush,
    next_seq: u64,
    writer: Option<Writer>,
    /// Set by the writer when a sled write failed, so sled misses changes
    /// that only `unflushed` holds; cleared when the tree is replaced.
    write_failed: Arc<AtomicBool>,
    /// The abandon flag of the running dump, if one is running (the
    /// [`FrozenTree`] holds the only strong reference).
    dump: Weak<AtomicBool>,
}

impl Backend {
    /// A handle on the sled tree itself (for flushing it at close).
    pub(crate) fn sled_tree(&self) -> sled::Tree {
        self.tree.clone()
    }

    pub(crate) fn new(tree: sled::Tree) -> Result<Self> {
        check_layout(&tree)?;
        let unflushed = Arc::new(RwLock::new(Unflushed::new()));
        let write_failed = Arc::new(AtomicBool::new(false));
        let writer = start_writer(&tree, &unflushed, &write_failed)?;
        Ok(Backend {
            tree,
            unflushed,
            batch: Flush::default(),
            next_seq: 0,
            writer: Some(writer),
            write_failed,
            dump: Weak::new(),
        })
    }

    fn unflushed(&self) -> std::sync::RwLockReadGuard<'_, Unflushed> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.unflushed.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The record of one revision.
    pub(crate) fn get(&self, rev: Revision) -> Result<Option<Record>> {
        if let Some((_, state)) = self.unflushed().get(&rev) {
            return Ok(state.clone());
        }
        let Some((_, stored)) = run_holding(&self.tree, rev)? else {
            return Ok(None);
        };
        for change in run::changes(&stored) {
            let (at, record) = change?;
            if at == rev {
                return Ok(Some(Record::decode(record)?));
            }
            if at > rev {
                break;
            }
        }
        Ok(None)
    }

    fn stage(&mut self, rev: Revision, record: Option<Record>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let value = record.as_ref().map(Record::encode);
        self.batch.changes.push((rev, seq, value));
        self.unflushed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rev, (seq, record));
    }

    pub(crate) fn put(&mut self, rev: Revision, record: Record) {
        self.stage(rev, Some(record));
    }

    pub(crate) fn remove(&mut self, rev: Revision) {
        self.stage(rev, None);
    }

    pub(crate) fn put_lease(&mut self, id: i64, ttl: i64) {
        self.batch
            .others
            .push((lease_key(id).to_vec(), Some(ttl.to_be_bytes().to_vec())));
    }

    pub(crate) fn remove_lease(&mut self, id: i64) {
        self.batch.others.push((lease_key(id).to_vec(), None));
    }

    pub(crate) fn set_meta(&mut self, name: &str, value: i64) {
        self.batch
            .others
            .push((meta_key(name), Some(value.to_be_bytes().to_vec())));
    }

    /// Records a member (`Some`) or its removal (`None`).
    pub(crate) fn set_member(&mut self, id: u64, member: Option<Vec<u8>>) {
        let mut key = vec![MEMBER];
        key.extend_from_slice(&id.to_be_bytes());
        self.batch.others.push((key, member));
    }

    /// Records that a member was removed from the cluster, for good.
    pub(crate) fn add_removed_member(&mut self, id: u64) {
        let mut key = vec![REMOVED_MEMBER];
        key.extend_from_slice(&id.to_be_bytes());
        self.batch.others.push((key, Some(Vec::new())));
    }

    /// The IDs of every removed member as sled holds them (read at start).
    pub(crate) fn removed_members(&self) -> impl Iterator<Item = Result<u64>> + '_ {
        self.tree.scan_prefix([REMOVED_MEMBER]).map(|item| {
            let (key, _) = item?;
            let id = <[u8; 8]>::try_from(&key[1..]).map_err(|_| {
                StoreError::Storage(format!("bad removed-member key of {} bytes", key.len()))
            })?;
            Ok(u64::from_be_bytes(id))
        })
    }

    /// Every member as sled holds them (read at start), encoded.
    pub(crate) fn members(&self) -> impl Iterator<Item = Result<sled::IVec>> + '_ {
        self.tree.scan_prefix([MEMBER]).map(|item| Ok(item?.1))
    }

    /// A meta record as sled holds it (read at start, before any write).
    pub(crate) fn meta(&self, name: &str) -> Result<Option<i64>> {
        self.tree
            .get(meta_key(name))?
            .map(|v| read_i64(&v))
            .transpose()
    }

    /// Hands the open batch to the writer; it reaches sled atomically and in order.
    /// Waits only when the writer is [`WRITER_QUEUE`] turns behind.
    pub(crate) fn commit(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let flush = std::mem::take(&mut self.batch);
        self.send(ToWriter::Flush(flush))
    }

    fn send(&self, message: ToWriter) -> Result<()> {
        let Some((tx, _)) = &self.writer else {
            return Err(StoreError::Storage("the sled writer is gone".into()));
        };
        tx.send(message)
            .map_err(|_| StoreError::Storage("the sled writer stopped".into()))
    }

    /// Every record with `from <= rev.main <= to`, in revision order, written or not.
    pub(crate) fn scan(
        &self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = Result<(Revision, Record)>> + '_ {
        let start = Revision::new(from.max(0), 0);
        let end = Revision::new(to.saturating_add(1), 0);
        let overlay: Vec<(Revision, Option<Record>)> = self
            .unflushed()
            .range(start..end)
            .map(|(rev, (_, state))| (*rev, state.clone()))
            .collect();
        let mut runs = stored_runs(&self.tree, start, end);
        let mut current = Vec::new().into_iter();
        let stored = std::iter::from_fn(move || loop {
            if let Some(change) = current.next() {
                return Some(Ok(change));
            }
            let decoded = runs.next()?.and_then(|run| {
                let mut changes = Vec::new();
                for change in run::changes(&run) {
                    let (rev, record) = change?;
                    if start <= rev && rev < end {
                        changes.push((rev, Record::decode(record)?));
                    }
                }
                Ok(changes)
            });
            match decoded {
                Ok(changes) => current = changes.into_iter(),
                Err(err) => return Some(Err(err)),
            }
        });
        Merge {
            stored: stored.peekable(),
            overlay: overlay.into_iter().peekable(),
        }
    }

    /// Every revision below `below` (main), written or not.
    pub(crate) fn revisions_below(&self, below: i64) -> Result<Vec<Revision>> {
        let overlay: Vec<(Revision, bool)> = self
            .unflushed()
            .range(..Revision::new(below, 0))
            .map(|(rev, (_, state))| (*rev, state.is_some()))
            .collect();
        let mut revs = Vec::new();
        let end = Revision::new(below, 0);
        for run in stored_runs(&self.tree, Revision::new(0, 0), end) {
            for change in run::changes(&run?) {
                let (rev, _) = change?;
                if rev < end {
                    revs.push(rev);
                }
            }
        }
        revs.retain(|r| overlay.binary_search_by_key(r, |(o, _)| *o).is_err());
        revs.extend(
            overlay
                .into_iter()
                .filter(|(_, live)| *live)
                .map(|(r, _)| r),
        );
        revs.sort_unstable();
        Ok(revs)
    }

    /// Every lease with its granted TTL, as sled holds them (read at start).
    pub(crate) fn leases(&self) -> impl Iterator<Item = Result<(i64, i64)>> + '_ {
        self.tree.scan_prefix([LEASE]).map(|item| {
            let (key, value) = item?;
            Ok((read_i64(&key[1..])?, read_i64(&value)?))
        })
    }

    /// Waits until everything committed so far is in sled.
    #[cfg(test)]
    pub(crate) fn wait_flushed(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.unflushed().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the sled writer made no progress in 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

impl Drop for Backend {
    /// Lets the writer finish what it was given, so sled is complete on a clean stop.
    fn drop(&mut self) {
        let _ = self.stop_writer();
    }
}

/// The stored run that would hold the change of `rev`: the first at or above it.
fn run_holding(tree: &sled::Tree, rev: Revision) -> Result<Option<(sled::IVec, sled::IVec)>> {
    match tree.range(rev_key(rev)..).next().transpose()? {
        Some((key, run)) if key.first() == Some(&REV) => Ok(Some((key, run))),
        _ => Ok(None),
    }
}

/// The stored runs that may hold changes in `start..end`, in order: from the
/// one that would hold `start` to the first whose bound reaches `end`.
fn stored_runs(
    tree: &sled::Tree,
    start: Revision,
    end: Revision,
) -> impl Iterator<Item = Result<sled::IVec>> {
    let mut runs = tree.range(rev_key(start)..);
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let (key, run) = match runs.next()? {
            Ok(item) => item,
            Err(err) => {
                done = true;
                return Some(Err(err.into()));
            }
        };
        if key.first() != Some(&REV) {
            done = true;
            return None;
        }
        match run_bound(&key) {
            Ok(bound) => {
                done = bound >= end;
                Some(Ok(run))
            }
            Err(err) => {
                done = true;
                Some(Err(err))
            }
        }
    })
}

/// Checks that the tree is laid out as this build reads it, marking an empty
/// tree as such.
fn check_layout(tree: &sled::Tree) -> Result<()> {
    match tree.get(meta_key(LAYOUT))? {
        Some(value) if read_i64(&value)? == LAYOUT_RUNS => Ok(()),
        Some(value) => Err(StoreError::Storage(format!(
            "the state in sled has layout {}; this build reads layout {LAYOUT_RUNS} only",
            read_i64(&value)?
        ))),
        None if tree.scan_prefix([REV]).next().is_none() => {
            tree.insert(meta_key(LAYOUT), &LAYOUT_RUNS.to_be_bytes())?;
            Ok(())
        }
        None => Err(StoreError::Storage(
            "the state in sled stores one change per key, as older builds did; this build \
             stores changes in runs and cannot read it (start on an empty data directory)"
                .into(),
        )),
    }
}

/// Merges sled's records with newer unflushed states of the same revisions.
struct Merge<S: Iterator<Item = Result<(Revision, Record)>>> {
    stored: std::iter::Peekable<S>,
    overlay: std::iter::Peekable<std::vec::IntoIter<(Revision, Option<Record>)>>,
}

impl<S: Iterator<Item = Result<(Revision, Record)>>> Iterator for Merge<S> {
    type Item = Result<(Revision, Record)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next_overlay = self.overlay.peek().map(|(rev, _)| *rev);
            let next_stored = match self.stored.peek() {
                Some(Ok((rev, _))) => Some(*rev),
                Some(Err(_)) => return self.stored.next(),
                None => None,
            };
            match (next_stored, next_overlay) {
                (None, None) => return None,
                (Some(_), None) => return self.stored.next(),
                (Some(s), Some(o)) if s < o => return self.stored.next(),
                (s, Some(o)) => {
                    if s == Some(o) {
                        self.stored.next(); // the unflushed state is newer
                    }
                    let (rev, state) = self.overlay.next()?;
                    if let Some(record) = state {
                        return Some(Ok((rev, record)));
                    }
                }
            }
        }
    }
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

#[cfg(test)]
mod tests;
