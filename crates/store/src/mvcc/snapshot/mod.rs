//! The state machine as one byte stream (a snapshot) and back.
//!
//! Raft lets a member forget the log below a point once the state machine's
//! state at that point is saved elsewhere, and a follower that has fallen behind
//! the leader's forgotten log is sent that state instead of entries (raft
//! thesis §5.1, "Snapshotting memory-based state machines"; etcd does the same
//! with its bbolt file). skiff's applied state is exactly the sled tree of
//! `backend`, so a snapshot is that tree, key by key, checksummed:
//!
//! ```text
//!   "SKIFFKV\n"                       magic, 8 bytes
//!   <version:u32>                     3: the whole state; 4: a delta
//!   [<after:i64>]                     a delta only: the revision it follows
//!   { <len:u32> <key> <len:u32> <value> }*   every entry of the tree, in key order
//!   <0xFFFF_FFFF:u32>                 end of entries
//!   <count:u64>                       how many entries came before
//!   <crc32:u32>                       CRC-32 of every byte above
//! ```
//! (all integers big-endian).
//!
//! # Deltas
//! History makes up most of the tree, and a run of changes (see `run`), once
//! written, is never rewritten but by a compaction, and no run holds changes
//! from both sides of a snapshot's freeze point. So a snapshot taken after
//! an earlier one (with no compaction in between) need not copy the history
//! again: a *delta* holds the runs above the earlier snapshot's revision
//! and every other record (meta, leases, members: small, and mutable) whole.
//! [`merge_chain`] turns a whole snapshot and the deltas that follow it back
//! into one whole snapshot: for each delta in turn, the records other than
//! changes are replaced by the delta's, and its changes are added. Without
//! deltas every snapshot would copy all history since the last compaction,
//! a cost that grows with every snapshot taken.
//!
//! The tree is copied without looking inside, so whatever is stored under a
//! prefix added later travels with it. Restoring reads and checks the whole
//! stream first, then swaps the tree's contents in one sled batch and rebuilds
//! the in-memory key index, leases and meta the way `Mvcc::open` does: a stream
//! that is truncated or damaged is refused and the store stays as it was.
//!
//! Writing a snapshot is split in two so that applies need not wait for it
//! (etcd, too, writes its snapshot from a read transaction in the background):
//! [`Mvcc::begin_snapshot`], on the apply thread, freezes sled at the current
//! applied index (see `backend`, "Freezing for a snapshot") and returns at
//! once; [`SnapshotDump::write`], on any thread, copies the frozen tree while
//! later applies wait in memory, readable as usual.
//!
//! # Where to start
//! [`Mvcc::begin_snapshot_after`] and [`SnapshotDump::write`] on a member
//! saving its own snapshot ([`Mvcc::write_snapshot`] writes a whole one in one
//! call), [`Mvcc::restore_snapshot`] on a member installing one, [`merge_chain`]
//! for a delta. The files that hold snapshots, and which delta follows which,
//! are `raft::snapshot`'s business.
//!
//! # Caveats
//! - Applies go on while a dump runs, but sled does not: the writes of that
//!   time are held in memory, so a long dump under a heavy load costs memory.
//!   No copy-on-write view of sled is taken.
//! - A whole snapshot holds all history since the last compaction; compacting
//!   keeps snapshots small. A compaction also makes the next snapshot whole,
//!   since it dropped changes an earlier snapshot holds.
//! - Merging a chain holds the merged state in memory, as restoring does.
//! - Restoring holds the whole snapshot in memory before swapping it in, and
//!   blocks the apply thread meanwhile.
//! - After a restore, sled's copy is written but not fsync'd (sled's flush is
//!   not relied on, as elsewhere): a member that crashes right after must find
//!   sled's applied index behind its newest snapshot file and restore again.
//! - Watchers are not told: the caller must cancel or resync them, as etcd does
//!   when it installs a snapshot.

use std::io::{self, Read, Write};

use super::backend::{change_revision, sorts_before_changes, FrozenTree, APPLIED_INDEX};
use super::Mvcc;
use crate::error::{Result, StoreError};

const MAGIC: &[u8; 8] = b"SKIFFKV\n";
/// A stream of the whole state.
const VERSION: u32 = 3;
/// A stream of what changed after a revision.
const DELTA_VERSION: u32 = 4;
/// Versions 1 and 2 were the same streams of a tree that held one change per key.
const ONE_CHANGE_PER_KEY: [u32; 2] = [1, 2];
/// Written where the next entry's key length would be: no key is this long.
const END: u32 = u32::MAX;
/// No key or value the store writes comes near this; a larger length is damage.
const MAX_FIELD_LEN: u32 = 256 << 20;
/// How many entries a dump copies between looks at whether it was abandoned.
const ABANDON_CHECK_EVERY: u64 = 4096;

/// Where the state stood when a snapshot was taken: what a later snapshot
/// needs to know to be a delta on top of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotPoint {
    /// The store's revision.
    pub(crate) revision: i64,
    /// The compacted revision.
    pub(crate) compacted: i64,
}

/// The applied state at one index, frozen in sled, waiting to be written out.
/// Dropping it (written or not) lets sled catch up with the applies made since.
pub(crate) struct SnapshotDump {
    frozen: FrozenTree,
    applied_index: u64,
    point: SnapshotPoint,
    /// For a delta, the revision it follows.
    after: Option<i64>,
}

impl Mvcc {
    /// Freezes the applied state as it is now, for [`SnapshotDump::write`] to
    /// write whole.
    ///
    /// Commits whatever was applied since the last commit and asks the sled
    /// writer to stop once it has written it; returns without waiting. Applies
    /// may go on at once: they reach sled when the dump is dropped. Fails if a
    /// dump is still alive.
    pub(crate) fn begin_snapshot(&mut self) -> Result<SnapshotDump> {
        self.begin_snapshot_after(None)
    }

    /// As [`Mvcc::begin_snapshot`], but the dump is a delta on top of the
    /// snapshot taken at `earlier` when it can be (nothing was compacted
    /// since); see "Deltas" above. [`SnapshotDump::delta_after`] says which.
    pub(crate) fn begin_snapshot_after(
        &mut self,
        earlier: Option<SnapshotPoint>,
    ) -> Result<SnapshotDump> {
        let frozen = self.backend.freeze()?;
        let point = SnapshotPoint {
            revision: self.current,
            compacted: self.compacted,
        };
        let after = earlier
            .filter(|e| e.compacted == point.compacted && e.revision <= point.revision)
            .map(|e| e.revision);
        Ok(SnapshotDump {
            frozen,
            applied_index: self.applied_index,
            point,
            after,
        })
    }

    /// Makes a running [`SnapshotDump`] fail rather than finish (it is about
    /// to be outdated: a newer snapshot is being installed, or the store
    /// stops). Does not wait for it.
    pub(crate) fn abandon_snapshot(&self) {
        self.backend.abandon_dump();
    }

    /// Writes the whole applied state to `out` as one checksummed stream and
    /// returns the number of bytes written: [`Mvcc::begin_snapshot`] and
    /// [`SnapshotDump::write`] in one call, blocking the caller for the copy.
    pub(crate) fn write_snapshot(&mut self, out: &mut dyn Write) -> Result<u64> {
        self.begin_snapshot()?.write(out)
    }

    /// Replaces the whole state with the snapshot in `input`: the tree's
    /// contents are swapped for the snapshot's in one sled batch, and the
    /// key index, leases and meta (applied index, revision, compaction) are
    /// rebuilt from them as `Mvcc::open` does. A running dump is abandoned.
    ///
    /// The stream is read and checked to the end before anything changes, so a
    /// truncated or damaged stream is an error naming what is wrong and leaves
    /// the store as it was. An error after the swap (a record this version
    /// cannot decode) leaves the in-memory state incomplete: reopen the store.
    pub(crate) fn restore_snapshot(&mut self, input: &mut dyn Read) -> Result<()> {
        let stream = read_stream(input)?;
        if let Some(after) = stream.after {
            return Err(corrupt(format!(
                "a delta after revision {after} cannot be restored alone: merge it onto the \
                 snapshots it follows"
            )));
        }
        let entries = stream.entries;
        let count = entries.len();
        self.backend.replace_all(entries)?;
        self.restore()?;
        tracing::info!(
            entries = count,
            applied_index = self.applied_index,
            revision = self.current,
            "restored state-machine snapshot"
        );
        Ok(())
    }
}

impl SnapshotDump {
    /// The applied index whose state this dump holds.
    pub(crate) fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Where the state stands in this dump: for the next snapshot to follow.
    pub(crate) fn point(&self) -> SnapshotPoint {
        self.point
    }

    /// For a delta, the revision of the snapshot it follows; `None` when the
    /// dump is the whole state.
    pub(crate) fn delta_after(&self) -> Option<i64> {
        self.after
    }

    /// Waits for sled to reach the freeze point, then copies every entry of
    /// the tree to `out` as one checksummed stream; returns the number of
    /// bytes written. Consumes the dump, so sled catches up as soon as the
    /// tree is read, before the caller fsyncs `out`.
    ///
    /// Fails, naming why, when the dump was abandoned (then what was written
    /// must be thrown away), when an earlier sled write failed, or when the
    /// frozen tree is not at the expected applied index.
    pub(crate) fn write(mut self, out: &mut dyn Write) -> Result<u64> {
        self.frozen.wait()?;
        let stored = self.frozen.meta(APPLIED_INDEX)?.unwrap_or(0);
        if stored != self.applied_index as i64 {
            return Err(StoreError::Storage(format!(
                "state-machine snapshot: sled holds applied index {stored} at the freeze point, \
                 expected {}",
                self.applied_index
            )));
        }
        let mut stream = StreamWriter::begin(out, self.after)?;
        let entries: Box<dyn Iterator<Item = _>> = match self.after {
            Some(revision) => Box::new(self.frozen.entries_after(revision)),
            None => Box::new(self.frozen.entries()),
        };
        for entry in entries {
            if stream.count.is_multiple_of(ABANDON_CHECK_EVERY) {
                self.check_not_abandoned()?;
            }
            let (key, value) = entry?;
            stream.entry(&key, &value)?;
        }
        // The tree may have been replaced under the last stretch of the copy.
        self.check_not_abandoned()?;
        let (count, written) = (stream.count, stream.finish()?);
        tracing::info!(
            entries = count,
            bytes = written,
            applied_index = self.applied_index,
            delta_after = self.after,
            "wrote state-machine snapshot"
        );
        Ok(written)
    }

    fn check_not_abandoned(&self) -> Result<()> {
        if self.frozen.is_abandoned() {
            return Err(StoreError::Storage(format!(
                "state-machine snapshot at applied index {} abandoned: the state was replaced \
                 or the store is stopping",
                self.applied_index
            )));
        }
        Ok(())
    }
}

/// Merges a whole snapshot stream and the deltas that follow it, oldest
/// first, into one whole stream: the state the last delta describes. Every
/// stream is checked as [`Mvcc::restore_snapshot`] checks one, and each delta
/// must follow what comes before it (start at or above its newest change).
///
/// One pass, no sorting: the changes of each stream in turn are already in
/// key (revision) order and above the ones before, and the other records are
/// the last delta's, on either side of the changes.
pub(crate) fn merge_chain<'a>(
    whole: &[u8],
    deltas: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>> {
    let mut streams = vec![read_stream(&mut &*whole)?];
    if let Some(after) = streams[0].after {
        return Err(corrupt(format!(
            "a chain must start with a whole snapshot, not a delta after revision {after}"
        )));
    }
    for delta in deltas {
        streams.push(read_stream(&mut &*delta)?);
    }
    let mut out = Vec::new();
    let mut merged = StreamWriter::begin(&mut out, None)?;
    let last = streams.last().expect("the chain has its whole snapshot");
    let others = |entry: &&(Vec<u8>, Vec<u8>)| change_revision(&entry.0).is_none();
    for (key, value) in last.entries.iter().filter(others) {
        if sorts_before_changes(key) {
            merged.entry(key, value)?;
        }
    }
    let mut newest = 0;
    for (n, stream) in streams.iter().enumerate() {
        let floor = match (n, stream.after) {
            (0, _) => i64::MIN,
            (_, None) => {
                return Err(corrupt(format!("delta {n} of a chain is a whole snapshot")));
            }
            (_, Some(after)) if after < newest => {
                return Err(corrupt(format!(
                    "delta {n} follows revision {after}, but what it follows holds revision \
                     {newest}"
                )));
            }
            (_, Some(after)) => after,
        };
        for (key, value) in &stream.entries {
            let Some(revision) = change_revision(key) else {
                continue;
            };
            if revision <= floor || revision < newest {
                return Err(corrupt(format!(
                    "the changes of {} are not above what comes before them (revision \
                     {revision})",
                    if n == 0 {
                        "the whole snapshot".to_string()
                    } else {
                        format!("delta {n}")
                    }
                )));
            }
            newest = revision;
            merged.entry(key, value)?;
        }
    }
    for (key, value) in last.entries.iter().filter(others) {
        if !sorts_before_changes(key) {
            merged.entry(key, value)?;
        }
    }
    merged.finish()?;
    Ok(out)
}

/// A stream being written: header, entries, trailer.
struct StreamWriter<'a> {
    out: CrcWriter<'a>,
    count: u64,
}

impl<'a> StreamWriter<'a> {
    fn begin(out: &'a mut dyn Write, after: Option<i64>) -> Result<Self> {
        let mut out = CrcWriter::new(out);
        out.put(MAGIC)?;
        match after {
            None => out.put(&VERSION.to_be_bytes())?,
            Some(revision) => {
                out.put(&DELTA_VERSION.to_be_bytes())?;
                out.put(&revision.to_be_bytes())?;
            }
        }
        Ok(StreamWriter { out, count: 0 })
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        for field in [key, value] {
            let len = u32::try_from(field.len())
                .ok()
                .filter(|len| *len <= MAX_FIELD_LEN)
                .ok_or_else(|| {
                    StoreError::Storage(format!(
                        "state-machine snapshot: a stored entry of {} bytes is too large to write",
                        field.len()
                    ))
                })?;
            self.out.put(&len.to_be_bytes())?;
            self.out.put(field)?;
        }
        self.count += 1;
        Ok(())
    }

    /// Writes the trailer and flushes; returns the stream's length.
    fn finish(mut self) -> Result<u64> {
        self.out.put(&END.to_be_bytes())?;
        self.out.put(&self.count.to_be_bytes())?;
        let crc = self.out.hasher.clone().finalize();
        self.out.put(&crc.to_be_bytes())?;
        self.out.inner.flush().map_err(write_error)?;
        Ok(self.out.written)
    }
}

/// A stream as read: whole, or a delta after a revision.
struct Stream {
    after: Option<i64>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads and verifies a whole stream, returning its entries.
fn read_stream(input: &mut dyn Read) -> Result<Stream> {
    let mut input = CrcReader::new(input);
    let magic = input.array::<8>("the magic number")?;
    if &magic != MAGIC {
        return Err(corrupt(format!(
            "not a skiff state-machine snapshot (it starts with {:?})",
            String::from_utf8_lossy(&magic)
        )));
    }
    let version = u32::from_be_bytes(input.array("the version")?);
    let after = match version {
        VERSION => None,
        DELTA_VERSION => Some(i64::from_be_bytes(input.array("the delta's revision")?)),
        _ if ONE_CHANGE_PER_KEY.contains(&version) => {
            return Err(corrupt(format!(
                "version {version} comes from an older build that stored one change per key; \
                 this build stores changes in runs and reads versions {VERSION} and \
                 {DELTA_VERSION}"
            )))
        }
        _ => {
            return Err(corrupt(format!(
                "version {version} is not supported (this build reads versions {VERSION} and \
                 {DELTA_VERSION})"
            )))
        }
    };
    let mut entries = Vec::new();
    loop {
        let n = entries.len();
        let key_len = u32::from_be_bytes(input.array("an entry's key length")?);
        if key_len == END {
            break;
        }
        let key = input.field(key_len, n, "key")?;
        let value_len = u32::from_be_bytes(input.array("an entry's value length")?);
        let value = input.field(value_len, n, "value")?;
        entries.push((key, value));
    }
    let count = u64::from_be_bytes(input.array("the entry count")?);
    let computed = input.hasher.clone().finalize();
    let stored = u32::from_be_bytes(input.array("the checksum")?);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the stream is damaged"
        )));
    }
    if count != entries.len() as u64 {
        return Err(corrupt(format!(
            "the trailer counts {count} entries but the stream holds {}",
            entries.len()
        )));
    }
    let mut extra = [0u8; 1];
    if input.inner.read(&mut extra).map_err(read_error)? != 0 {
        return Err(corrupt(format!(
            "unexpected data after the checksum at byte {}",
            input.read
        )));
    }
    Ok(Stream { after, entries })
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Storage(format!("state-machine snapshot: {reason}"))
}

fn write_error(err: io::Error) -> StoreError {
    StoreError::Storage(format!("state-machine snapshot: write failed: {err}"))
}

fn read_error(err: io::Error) -> StoreError {
    StoreError::Storage(format!("state-machine snapshot: read failed: {err}"))
}

/// Counts and checksums what passes through to `inner`.
struct CrcWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<'a> CrcWriter<'a> {
    fn new(inner: &'a mut dyn Write) -> Self {
        CrcWriter {
            inner,
            hasher: crc32fast::Hasher::new(),
            written: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner.write_all(bytes).map_err(write_error)?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Counts and checksums what is read from `inner`; running out is "truncated".
struct CrcReader<'a> {
    inner: &'a mut dyn Read,
    hasher: crc32fast::Hasher,
    read: u64,
}

impl<'a> CrcReader<'a> {
    fn new(inner: &'a mut dyn Read) -> Self {
        CrcReader {
            inner,
            hasher: crc32fast::Hasher::new(),
            read: 0,
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        let got = self.fill(&mut buf)?;
        if got < N {
            return Err(self.truncated(what));
        }
        Ok(buf)
    }

    /// The key or value of entry `n`, `len` bytes long.
    fn field(&mut self, len: u32, n: usize, what: &str) -> Result<Vec<u8>> {
        if len > MAX_FIELD_LEN {
            return Err(corrupt(format!(
                "entry {n} claims a {what} of {len} bytes at byte {}, more than any the store writes",
                self.read
            )));
        }
        let mut buf = Vec::new();
        (&mut *self.inner)
            .take(u64::from(len))
            .read_to_end(&mut buf)
            .map_err(read_error)?;
        self.hasher.update(&buf);
        self.read += buf.len() as u64;
        if buf.len() < len as usize {
            return Err(self.truncated(&format!("the {what} of entry {n}")));
        }
        Ok(buf)
    }

    /// Reads until `buf` is full or the stream ends; returns how much was read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(read_error(err)),
            }
        }
        self.hasher.update(&buf[..got]);
        self.read += got as u64;
        Ok(got)
    }

    fn truncated(&self, what: &str) -> StoreError {
        corrupt(format!(
            "truncated: the stream ends in {what} after {} bytes",
            self.read
        ))
    }
}

#[cfg(test)]
mod tests;
