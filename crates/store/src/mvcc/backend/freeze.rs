//! Whole-tree access for state-machine snapshots: draining the writer,
//! freezing the tree at one applied index ([`FrozenTree`]), and replacing
//! the tree's contents with a snapshot's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use super::*;

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
    pub(super) fn restart_writer(&mut self) -> Result<()> {
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
    pub(super) fn stop_writer(&mut self) -> Result<()> {
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
