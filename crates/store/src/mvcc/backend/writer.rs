//! The writer thread: applies the apply loop's committed batches to sled in
//! order, several to a `sled::Batch` when it falls behind, and holds them
//! back while the tree is frozen for a snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, RwLock};

use super::*;

/// How many turns of the apply loop may wait for the writer before the loop waits.
pub(super) const WRITER_QUEUE: usize = 1024;

/// At most this many turns go to sled as one batch.
const WRITER_BATCH: usize = 256;

/// How long the writer gathers turns before writing them to sled as one batch:
/// sled's cost is largely per batch (a log write and its I/O), not per key.
pub(super) const WRITER_GATHER: std::time::Duration = std::time::Duration::from_millis(10);

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
/// Starts the thread that applies committed batches to sled.
pub(super) fn start_writer(
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
