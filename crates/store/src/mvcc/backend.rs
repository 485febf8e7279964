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
//! # Caveats
//! sled's own flush is not relied on for durability: the write-ahead log is. After
//! a crash sled may be behind the log, and recovery replays the difference.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, RwLock, Weak};
use std::thread::JoinHandle;

use prost::Message;
use skiff_proto::mvccpb::KeyValue;

use super::run;
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

/// How many turns of the apply loop may wait for the writer before the loop waits.
const WRITER_QUEUE: usize = 1024;

/// At most this many turns go to sled as one batch.
const WRITER_BATCH: usize = 256;

/// How long the writer gathers turns before writing them to sled as one batch:
/// sled's cost is largely per batch (a log write and its I/O), not per key.
const WRITER_GATHER: std::time::Duration = std::time::Duration::from_millis(10);

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

/// The writer thread's state.
struct WriteLoop {
    tree: sled::Tree,
    unflushed: Arc<RwLock<Unflushed>>,
    write_failed: Arc<AtomicBool>,
    /// While frozen: the flushes received since the freeze, in order.
    held: Option<Vec<Flush>>,
}

/// Applies flushes to sled in order, several per sled batch when they queue
/// up, and holds them back while frozen.
fn write_loop(mut writer: WriteLoop, rx: Receiver<ToWriter>) {
    // A message that arrived while flushes were being gathered, handled next.
    let mut next = None;
    // Whether the last gather stopped at a full batch: the queue holds more
    // already, so the next one takes them without sleeping first.
    let mut behind = false;
    loop {
        let Some(message) = next.take().or_else(|| rx.recv().ok()) else {
            break;
        };
        match message {
            ToWriter::Flush(flush) => match &mut writer.held {
                Some(held) => held.push(flush),
                None => {
                    if !behind {
                        std::thread::sleep(WRITER_GATHER);
                    }
                    let mut flushes = vec![flush];
                    next = gather(&rx, &mut flushes);
                    behind = flushes.len() == WRITER_BATCH;
                    writer.write(&flushes);
                }
            },
            ToWriter::Freeze(reply) => {
                let state = if writer.write_failed.load(Ordering::Acquire) {
                    Err(StoreError::Storage(
                        "a sled write failed earlier, so sled misses applied changes (see the log)"
                            .into(),
                    ))
                } else {
                    Ok(())
                };
                writer.held = Some(Vec::new());
                // The dump may have been abandoned already; nobody listens then.
                let _ = reply.send(state);
            }
            ToWriter::Thaw => writer.thaw(),
            ToWriter::Stop => break,
        }
    }
    writer.thaw();
}

/// Takes the flushes queued behind the first, up to [`WRITER_BATCH`], to write
/// them as one sled batch. Returns a message other than a flush if one came
/// next.
///
/// The writer sleeps out [`WRITER_GATHER`] before it gathers, rather than
/// waiting on the channel with a timeout: a send wakes only a receiver that is
/// blocked in the channel, so while the writer sleeps, the apply loop hands
/// over its turns without waking it for each one.
fn gather(rx: &Receiver<ToWriter>, flushes: &mut Vec<Flush>) -> Option<ToWriter> {
    while flushes.len() < WRITER_BATCH {
        match rx.try_recv() {
            Ok(ToWriter::Flush(flush)) => flushes.push(flush),
            Ok(other) => return Some(other),
            Err(_) => break,
        }
    }
    None
}

impl WriteLoop {
    /// Writes the flushes held back since the freeze, if frozen, and unfreezes.
    fn thaw(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        for chunk in held.chunks(WRITER_BATCH) {
            self.write(chunk);
        }
    }

    /// Applies `flushes` to sled as one atomic batch and forgets what they
    /// wrote from `unflushed`.
    fn write(&self, flushes: &[Flush]) {
        let written = self
            .batch_of(flushes)
            .and_then(|batch| Ok(self.tree.apply_batch(batch)?));
        if let Err(err) = written {
            // The changes stay readable from `unflushed`, and the log has them.
            tracing::error!(%err, "writing applied state to sled failed");
            self.write_failed.store(true, Ordering::Release);
            return;
        }
        let mut map = self.unflushed.write().unwrap_or_else(|e| e.into_inner());
        for (rev, seq, _) in flushes.iter().flat_map(|f| &f.changes) {
            if map.get(rev).is_some_and(|(newest, _)| newest == seq) {
                map.remove(rev);
            }
        }
    }

    /// The sled batch that writes `flushes`: their new changes as runs of up
    /// to [`run::RUN_BYTES`], the runs that dropped changes rewritten, and every
    /// other record as it is.
    fn batch_of(&self, flushes: &[Flush]) -> Result<sled::Batch> {
        let mut batch = sled::Batch::default();
        let mut fresh: BTreeMap<Revision, &[u8]> = BTreeMap::new();
        // Stored runs that lose changes, by key, with the changes they keep.
        let mut rewritten: BTreeMap<sled::IVec, Vec<(Revision, Vec<u8>)>> = BTreeMap::new();
        for flush in flushes {
            for (key, value) in &flush.others {
                match value {
                    Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                    None => batch.remove(key.as_slice()),
                }
            }
            for (rev, _, state) in &flush.changes {
                match state {
                    Some(record) => {
                        fresh.insert(*rev, record);
                    }
                    None => {
                        if fresh.remove(rev).is_none() {
                            self.drop_stored(*rev, &mut rewritten)?;
                        }
                    }
                }
            }
        }
        for (key, kept) in rewritten {
            if kept.is_empty() {
                batch.remove(key);
            } else {
                let mut run = Vec::new();
                for (rev, record) in &kept {
                    run::push(&mut run, *rev, record);
                }
                batch.insert(key, run);
            }
        }
        let mut run = Vec::new();
        let mut fresh = fresh.into_iter().peekable();
        while let Some((rev, record)) = fresh.next() {
            run::push(&mut run, rev, record);
            let full = fresh.peek().is_none_or(|(_, next)| !run::fits(&run, next));
            if full {
                batch.insert(&rev_key(rev)[..], std::mem::take(&mut run));
            }
        }
        Ok(batch)
    }

    /// Takes the change of `rev` out of the stored run that holds it, into
    /// `rewritten` (which may have that run already).
    fn drop_stored(
        &self,
        rev: Revision,
        rewritten: &mut BTreeMap<sled::IVec, Vec<(Revision, Vec<u8>)>>,
    ) -> Result<()> {
        let Some((key, stored)) = run_holding(&self.tree, rev)? else {
            return Ok(());
        };
        let kept = match rewritten.entry(key) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let changes = run::changes(&stored)
                    .map(|change| change.map(|(rev, record)| (rev, record.to_vec())))
                    .collect::<Result<Vec<_>>>()?;
                entry.insert(changes)
            }
        };
        kept.retain(|(at, _)| *at != rev);
        Ok(())
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

/// Starts the thread that applies committed batches to sled.
fn start_writer(
    tree: &sled::Tree,
    unflushed: &Arc<RwLock<Unflushed>>,
    write_failed: &Arc<AtomicBool>,
) -> Result<Writer> {
    let (tx, rx) = sync_channel(WRITER_QUEUE);
    let writer = WriteLoop {
        tree: tree.clone(),
        unflushed: Arc::clone(unflushed),
        write_failed: Arc::clone(write_failed),
        held: None,
    };
    let handle = std::thread::Builder::new()
        .name("skiff-sled-writer".into())
        .spawn(move || write_loop(writer, rx))
        .map_err(|e| StoreError::Storage(format!("starting the sled writer: {e}")))?;
    Ok((tx, handle))
}

/// Whole-tree access for state-machine snapshots (`mvcc::snapshot`).
impl Backend {
    /// Commits the open batch and waits until the writer has put everything
    /// committed into sled: the writer is stopped (it finishes its queue first)
    /// and started again. Afterwards sled alone holds the applied state.
    /// A running dump is abandoned first.
    ///
    /// Fails if a sled write failed earlier, so that changes are held only in
    /// `unflushed` and sled is missing them. (Tests use it to look at sled.)
    #[cfg(test)]
    pub(crate) fn drain(&mut self) -> Result<()> {
        self.commit()?;
        self.restart_writer()?;
        let missing = self.unflushed().len();
        if missing > 0 || self.write_failed.load(Ordering::Acquire) {
            return Err(StoreError::Storage(format!(
                "{missing} applied changes never reached sled (a sled write failed; see the log)"
            )));
        }
        Ok(())
    }

    /// Every key and value in the tree, in key order: records, leases, meta and
    /// any kind added later. Complete only after [`Backend::drain`].
    #[cfg(test)]
    pub(crate) fn raw_entries(
        &self,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
        self.tree.iter().map(|item| item.map_err(StoreError::from))
    }

    /// Commits the open batch and asks the writer to freeze once it has
    /// written it: see the module doc. Returns at once; the tree holds the
    /// state of this moment once [`FrozenTree::wait`] returns, until the
    /// [`FrozenTree`] is dropped. One dump at a time: fails while another
    /// [`FrozenTree`] is alive.
    pub(crate) fn freeze(&mut self) -> Result<FrozenTree> {
        if self.dump.upgrade().is_some() {
            return Err(StoreError::Storage(
                "a snapshot is already being written from the tree".into(),
            ));
        }
        self.commit()?;
        let (reply, frozen) = sync_channel(1);
        self.send(ToWriter::Freeze(reply))?;
        let Some((tx, _)) = &self.writer else {
            return Err(StoreError::Storage("the sled writer is gone".into()));
        };
        let abandoned = Arc::new(AtomicBool::new(false));
        self.dump = Arc::downgrade(&abandoned);
        Ok(FrozenTree {
            tree: self.tree.clone(),
            frozen: Some(frozen),
            abandoned,
            writer: tx.clone(),
        })
    }

    /// Tells a running dump to give up: its [`FrozenTree`] reports itself
    /// abandoned from now on. Does not wait for it.
    pub(crate) fn abandon_dump(&self) {
        if let Some(abandoned) = self.dump.upgrade() {
            abandoned.store(true, Ordering::SeqCst);
        }
    }

    /// Replaces the whole tree with `entries` in one atomic sled batch: after a
    /// crash sled holds either the old state or the new one, never a mixture.
    /// Writes staged but not committed, and changes the writer never managed to
    /// write, are dropped with the old state. A running dump is abandoned first.
    pub(crate) fn replace_all(&mut self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        self.batch = Flush::default();
        // Nothing queued may reach sled after the new state does.
        self.restart_writer()?;
        let mut batch = sled::Batch::default();
        for key in self.tree.iter().keys() {
            batch.remove(key?);
        }
        // A batch keeps the last write per key, so `entries` overrides the removals.
        for (key, value) in entries {
            batch.insert(key, value);
        }
        // A snapshot's stream version says how its changes are laid out.
        batch.insert(meta_key(LAYOUT), &LAYOUT_RUNS.to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.unflushed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.write_failed.store(false, Ordering::Release);
        Ok(())
    }

    /// Stops the writer once it has written everything queued, and starts a new one.
    fn restart_writer(&mut self) -> Result<()> {
        self.stop_writer()?;
        self.writer = Some(start_writer(
            &self.tree,
            &self.unflushed,
            &self.write_failed,
        )?);
        Ok(())
    }

    /// Abandons a running dump, then stops the writer once it has written
    /// everything it received (held back or not). Does not wait for the dump:
    /// it fails on its own, and the tree may change under it from now on.
    fn stop_writer(&mut self) -> Result<()> {
        self.abandon_dump();
        let Some((tx, handle)) = self.writer.take() else {
            return Ok(());
        };
        // A dump's FrozenTree holds a sender too, so the writer is told to stop
        // rather than left to notice the channel close.
        let _ = tx.send(ToWriter::Stop);
        drop(tx);
        handle
            .join()
            .map_err(|_| StoreError::Storage("the sled writer panicked".into()))
    }
}

/// The tree, held still for a snapshot: the writer has written (or, until
/// [`FrozenTree::wait`] returns, is writing) everything committed before
/// [`Backend::freeze`], and holds every later batch back until this is
/// dropped. `Send`, so the copy can be made on its own thread.
pub(crate) struct FrozenTree {
    tree: sled::Tree,
    /// The writer's answer when it reaches the freeze point; `None` once heard.
    frozen: Option<Receiver<Result<()>>>,
    /// Set when the tree is replaced or drained under the dump.
    abandoned: Arc<AtomicBool>,
    /// To thaw the writer when dropped.
    writer: SyncSender<ToWriter>,
}

impl FrozenTree {
    /// Waits until the writer has written everything committed before the
    /// freeze. Fails if the writer stopped, or an earlier sled write failed
    /// (then the tree is not the applied state).
    pub(crate) fn wait(&mut self) -> Result<()> {
        let Some(frozen) = self.frozen.take() else {
            return Ok(());
        };
        frozen
            .recv()
            .map_err(|_| StoreError::Storage("the sled writer stopped before freezing".into()))?
    }

    /// Whether the tree was replaced or drained since the freeze: nothing read
    /// from it may then be used.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// A meta record as the frozen tree holds it. Call [`FrozenTree::wait`] first.
    pub(crate) fn meta(&self, name: &str) -> Result<Option<i64>> {
        self.tree
            .get(meta_key(name))?
            .map(|v| read_i64(&v))
            .transpose()
    }

    /// Every key and value in the tree, in key order. Call
    /// [`FrozenTree::wait`] first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
        self.tree.iter().map(|item| item.map_err(StoreError::from))
    }

    /// Every entry except the runs of changes at or below `revision`, in key
    /// order: what changed since a snapshot at `revision`, given that changes
    /// are only ever added above the current revision (or dropped by
    /// compaction), and that no run holds changes from both sides of a freeze
    /// point (the writer writes up to the freeze, then holds later turns), with
    /// all other records whole. Call [`FrozenTree::wait`] first.
    pub(crate) fn entries_after(
        &self,
        revision: i64,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
        let newer = rev_key(Revision {
            main: revision.saturating_add(1),
            sub: 0,
        });
        self.tree
            .range(..[REV].as_slice())
            .chain(self.tree.range(newer.as_slice()..))
            .map(|item| item.map_err(StoreError::from))
    }
}

impl Drop for FrozenTree {
    /// Lets the writer write what it held back. A writer that was stopped in
    /// the meantime wrote them already; nobody hears the thaw then.
    fn drop(&mut self) {
        let _ = self.writer.send(ToWriter::Thaw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Backend::new(db.open_tree("kv").unwrap()).unwrap()
    }

    fn record(key: &str, rev: i64) -> Record {
        Record {
            tombstone: false,
            kv: KeyValue {
                key: key.into(),
                mod_revision: rev,
                ..Default::default()
            },
        }
    }

    #[test]
    fn uncommitted_writes_are_visible_to_reads() {
        let mut b = backend();
        b.put(Revision::new(1, 0), record("a", 1));
        assert_eq!(b.get(Revision::new(1, 0)).unwrap(), Some(record("a", 1)));
        b.commit().unwrap();
        b.wait_flushed();
        assert_eq!(b.get(Revision::new(1, 0)).unwrap(), Some(record("a", 1)));
    }

    /// Stops the writer after it wrote everything committed.
    fn drop_writer(b: &mut Backend) {
        b.stop_writer().unwrap();
    }

    #[test]
    fn unwritten_removals_hide_written_records() {
        let mut b = backend();
        b.put(Revision::new(1, 0), record("a", 1));
        b.put(Revision::new(2, 0), record("b", 2));
        b.commit().unwrap();
        b.wait_flushed();
        b.remove(Revision::new(1, 0));
        assert_eq!(b.get(Revision::new(1, 0)).unwrap(), None);
        let revs: Vec<i64> = b.scan(0, 10).map(|r| r.unwrap().0.main).collect();
        assert_eq!(revs, vec![2]);
        assert_eq!(b.revisions_below(10).unwrap(), vec![Revision::new(2, 0)]);
        b.commit().unwrap();
        drop_writer(&mut b);
        assert_eq!(
            b.get(Revision::new(1, 0)).unwrap(),
            None,
            "and sled got the removal"
        );
    }

    #[test]
    fn scan_merges_written_and_unwritten_records_in_order() {
        let mut b = backend();
        for rev in [1, 3] {
            b.put(Revision::new(rev, 0), record("k", rev));
        }
        b.commit().unwrap();
        b.wait_flushed();
        for rev in [2, 4] {
            b.put(Revision::new(rev, 0), record("k", rev));
        }
        let revs: Vec<i64> = b.scan(0, 10).map(|r| r.unwrap().0.main).collect();
        assert_eq!(revs, vec![1, 2, 3, 4]);
    }

    #[test]
    fn scan_is_in_revision_order_and_bounded() {
        let mut b = backend();
        for rev in [3, 1, 2, 300] {
            b.put(Revision::new(rev, 0), record("k", rev));
        }
        b.commit().unwrap();
        let revs: Vec<i64> = b.scan(2, 300).map(|r| r.unwrap().0.main).collect();
        assert_eq!(revs, vec![2, 3, 300]);
    }

    #[test]
    fn meta_and_leases_round_trip() {
        let mut b = backend();
        b.set_meta(APPLIED_INDEX, 9);
        b.put_lease(7, 30);
        b.commit().unwrap();
        drop_writer(&mut b);
        assert_eq!(b.meta(APPLIED_INDEX).unwrap(), Some(9));
        assert_eq!(
            b.leases().map(|l| l.unwrap()).collect::<Vec<_>>(),
            vec![(7, 30)]
        );
    }

    /// A record of about 300 bytes, as a put of a 256-byte value makes.
    fn big_record(rev: i64) -> Record {
        let mut r = record("some/key", rev);
        r.kv.value = vec![b'v'; 256];
        r
    }

    /// The keys of the runs sled holds.
    fn run_keys(b: &Backend) -> Vec<Revision> {
        b.tree
            .scan_prefix([REV])
            .map(|item| run_bound(&item.unwrap().0).unwrap())
            .collect()
    }

    /// The main revisions `revisions_below(below)` gives.
    fn main_revisions_below(b: &Backend, below: i64) -> Vec<i64> {
        let revs = b.revisions_below(below).unwrap();
        revs.iter().map(|r| r.main).collect()
    }

    /// A backend whose sled holds the changes of revisions 1 to 200, in runs.
    fn two_hundred_written() -> Backend {
        let mut b = backend();
        for rev in 1..=200 {
            b.put(Revision::new(rev, 0), big_record(rev));
        }
        b.commit().unwrap();
        b.drain().unwrap();
        b
    }

    #[test]
    fn changes_fill_runs_and_are_found_in_any_of_them() {
        let b = two_hundred_written();
        let keys = run_keys(&b);
        assert!(
            keys.len() > 2,
            "200 changes of 300 bytes fill several runs: {keys:?}"
        );
        assert_eq!(keys.last(), Some(&Revision::new(200, 0)));
        for (key, run) in b.tree.scan_prefix([REV]).map(Result::unwrap) {
            let revs: Vec<Revision> = run::changes(&run).map(|c| c.unwrap().0).collect();
            assert_eq!(
                revs.last(),
                Some(&run_bound(&key).unwrap()),
                "a run's key is its last change"
            );
            assert!(run.len() <= run::RUN_BYTES, "a run of {} bytes", run.len());
        }
        for rev in 1..=200 {
            assert_eq!(b.get(Revision::new(rev, 0)).unwrap(), Some(big_record(rev)));
        }
        assert_eq!(b.get(Revision::new(201, 0)).unwrap(), None);
        assert_eq!(b.get(Revision::new(7, 1)).unwrap(), None);
        let revs: Vec<i64> = b.scan(50, 150).map(|r| r.unwrap().0.main).collect();
        assert_eq!(revs, (50..=150).collect::<Vec<_>>());
        let below = main_revisions_below(&b, 100);
        assert_eq!(below, (1..100).collect::<Vec<_>>());
    }

    #[test]
    fn compaction_rewrites_runs_under_their_keys_and_removes_empty_ones() {
        let mut b = two_hundred_written();
        let keys = run_keys(&b);
        let first_run_end = keys[0].main;
        // Drop the whole first run, and every odd change of the rest below 150.
        let dropped = |rev: i64| rev <= first_run_end || (rev < 150 && rev % 2 == 1);
        for rev in (1..=200).filter(|r| dropped(*r)) {
            b.remove(Revision::new(rev, 0));
        }
        b.commit().unwrap();
        b.drain().unwrap();
        let kept: Vec<i64> = (1..=200).filter(|r| !dropped(*r)).collect();
        assert_eq!(run_keys(&b), keys[1..], "the other runs keep their keys");
        for rev in 1..=200 {
            assert_eq!(
                b.get(Revision::new(rev, 0)).unwrap().is_some(),
                !dropped(rev),
                "{rev}"
            );
        }
        let revs: Vec<i64> = b.scan(0, 1000).map(|r| r.unwrap().0.main).collect();
        assert_eq!(revs, kept);
        let below = main_revisions_below(&b, 150);
        assert_eq!(
            below,
            kept.iter()
                .copied()
                .filter(|r| *r < 150)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_change_dropped_before_it_was_written_never_reaches_sled() {
        let mut b = backend();
        for rev in 1..=5 {
            b.put(Revision::new(rev, 0), record("k", rev));
        }
        b.remove(Revision::new(3, 0));
        b.commit().unwrap();
        b.drain().unwrap();
        let stored: Vec<i64> = (1..=5).filter(|rev| in_sled(&b, *rev)).collect();
        assert_eq!(stored, vec![1, 2, 4, 5]);
    }

    #[test]
    fn a_tree_of_another_layout_is_refused_by_name() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let older = db.open_tree("older").unwrap();
        older
            .insert(rev_key(Revision::new(1, 0)), record("a", 1).encode())
            .unwrap();
        let err = Backend::new(older).err().expect("an older tree is refused");
        assert!(err.to_string().contains("one change per key"), "{err}");

        let newer = db.open_tree("newer").unwrap();
        newer.insert(meta_key(LAYOUT), &7i64.to_be_bytes()).unwrap();
        let err = Backend::new(newer)
            .err()
            .expect("an unknown layout is refused");
        assert!(err.to_string().contains("layout 7"), "{err}");

        let fresh = db.open_tree("fresh").unwrap();
        drop(Backend::new(fresh.clone()).unwrap());
        assert!(
            Backend::new(fresh).is_ok(),
            "a tree this build marked opens again"
        );
    }

    /// Whether sled itself (not `unflushed`) holds a record at `rev`.
    fn in_sled(b: &Backend, rev: i64) -> bool {
        let rev = Revision::new(rev, 0);
        run_holding(&b.tree, rev)
            .unwrap()
            .is_some_and(|(_, stored)| run::changes(&stored).any(|change| change.unwrap().0 == rev))
    }

    /// The revisions of the changes among `entries`, in order.
    fn stored_revisions(
        entries: impl Iterator<Item = Result<(sled::IVec, sled::IVec)>>,
    ) -> Vec<Revision> {
        let mut revs = Vec::new();
        for (key, value) in entries.map(Result::unwrap) {
            if key[0] == REV {
                revs.extend(run::changes(&value).map(|change| change.unwrap().0));
            }
        }
        revs
    }

    #[test]
    fn a_frozen_tree_holds_later_writes_back_until_it_is_dropped() {
        let mut b = backend();
        b.put(Revision::new(1, 0), record("a", 1));
        b.put(Revision::new(2, 0), record("b", 2));
        let mut frozen = b.freeze().unwrap();
        // More turns than the writer's queue holds: the writer keeps receiving.
        for rev in 3..=(WRITER_QUEUE as i64 + 10) {
            b.put(Revision::new(rev, 0), record("c", rev));
            b.commit().unwrap();
        }
        frozen.wait().unwrap();
        // A writer that ignored the freeze would have written them by now.
        std::thread::sleep(WRITER_GATHER * 5);

        assert!(
            in_sled(&b, 2),
            "what was staged before the freeze is in sled"
        );
        assert!(!in_sled(&b, 3), "what came after is held back");
        assert_eq!(b.get(Revision::new(3, 0)).unwrap(), Some(record("c", 3)));
        assert_eq!(
            stored_revisions(frozen.entries()),
            vec![Revision::new(1, 0), Revision::new(2, 0)]
        );
        assert!(b.freeze().is_err(), "one dump at a time");

        drop(frozen);
        b.wait_flushed();
        assert!(in_sled(&b, 3) && in_sled(&b, WRITER_QUEUE as i64 + 10));
        assert!(b.freeze().is_ok(), "the next dump may start");
    }

    #[test]
    fn replacing_the_tree_abandons_a_frozen_one_without_waiting_for_it() {
        let mut b = backend();
        b.put(Revision::new(1, 0), record("a", 1));
        let mut frozen = b.freeze().unwrap();
        frozen.wait().unwrap();
        b.put(Revision::new(2, 0), record("b", 2));
        b.commit().unwrap();
        assert!(!frozen.is_abandoned());

        let mut run = Vec::new();
        run::push(&mut run, Revision::new(9, 0), &record("z", 9).encode());
        b.replace_all(vec![(rev_key(Revision::new(9, 0)).to_vec(), run)])
            .unwrap();
        assert!(frozen.is_abandoned(), "the dump must not be used");
        drop(frozen);
        b.put(Revision::new(10, 0), record("y", 10));
        b.commit().unwrap();
        b.wait_flushed();
        assert!(in_sled(&b, 9) && in_sled(&b, 10) && !in_sled(&b, 1) && !in_sled(&b, 2));
    }
}
