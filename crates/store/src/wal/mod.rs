//! The write-ahead log: the store acknowledges a write only once it is here.
//!
//! sled holds the applied key space, but sled alone is not durable at the
//! moment we answer a client. So, as etcd does, every write is first appended
//! to this log and fsync'd; after a crash the log is replayed on top of
//! whatever sled kept. The log is shaped for raft from the start: it stores
//! entries `(index, term, data)` — raft-rs's `Entry` — plus opaque *state*
//! records for raft's `HardState` (term, vote, commit), of which the last wins.
//! See etcd's own WAL for the model:
//! <https://github.com/etcd-io/etcd/tree/main/server/storage/wal>.
//!
//! # Layout
//! - `record`: framing of one record — length, CRC32, type, payload — and the
//!   three record types: entry, state, truncate.
//! - `segment`: segment file names, listing a directory, reading a segment back
//!   and telling a torn tail from corruption; the file being written.
//! - `prealloc`: the background thread that keeps the next segment ready,
//!   zero-filled.
//! - `layout`: which segment holds which live entries, for `purge_before`.
//! - `recover`: replaying all segments at open.
//!
//! # Design
//! **Segments.** The log is a directory of files named
//! `{seq:016x}-{first_index:016x}.wal`: a sequence number and the index of the
//! segment's first entry, as etcd names its segments. A new segment is started
//! once the current one passes [`WalOptions::segment_size`]. After a snapshot,
//! [`Wal::purge_before`] deletes old segments whole, never moving or rewriting
//! a record.
//! The sequence number, not the index, orders the files: `truncate_after` can
//! take the log back below the first index of the segment being written, so the
//! next segment may well start at a lower index than its predecessor's name.
//!
//! **Preallocation.** A segment is created at its full size: `segment_size`
//! zeros, really written and fsync'd, which the records then overwrite in
//! place. The reason is the commit latency. On ext4 without a journal (where
//! we measured), a write that grows a file makes the fdatasync that follows
//! write the inode too, a second IO in series with the data on every commit;
//! a write within the file's length leaves only the data. Measured with 4 KiB
//! writes: fdatasync after an append p50 0.21–0.29 ms, into a zero-filled file
//! p50 0.13 ms with a much lower p99, and the raft thread spent some 20% less
//! CPU per write. `fallocate` would not do: it leaves the extents marked
//! unwritten, and converting them at the first write is metadata again.
//! Zero-filling 64 MiB is slow, so, like etcd's file pipeline, a background
//! thread (`skiff-wal-prealloc`) prepares the next segment as a spare,
//! `spare.wal.tmp`, as soon as the last one was taken; rolling to a new segment
//! renames the spare into place and fsyncs the directory. A new log starts with
//! a plain segment that grows with each write, so opening one (as every test
//! and every embedded store does) writes no zeros; once a segment holds an
//! eighth of the segment size, the first spare is prepared, and the log rolls to
//! it as soon as it is ready. A server, which opens its log once and then
//! lives on it, sets [`WalOptions::preallocate_first`] instead: its first
//! segment is preallocated at open. The writer waits
//! only when the spare is not ready yet, and makes one itself if the thread
//! failed. A spare is fsync'd before it is renamed, so a file with a segment
//! name is always whole; a spare found at open (left by a crash, perhaps half
//! written) is deleted. So the last segment ends in zeros after its records;
//! when a segment is complete it is cut to its records and fsync'd before the
//! next one is used, so every earlier segment holds exactly its records.
//! [`WalOptions::preallocate`] turns all this off: segments then start empty.
//!
//! **CRC.** Each record carries a CRC32 of its length, type and payload. A crash
//! in the middle of a write, or a disk returning rotten bytes, is caught when
//! the log is read back instead of being applied as data.
//!
//! **fdatasync.** [`Wal::append`] and [`Wal::set_state`] only buffer; [`Wal::sync`]
//! writes the buffer and calls `fdatasync` once (`File::sync_data`: data and
//! length, not timestamps). Many appends share one fsync — group commit, the
//! single biggest lever on write throughput. A segment is cut to its records
//! and fsync'd before the next one is used, and creating (renaming into place)
//! or deleting a segment fsyncs the directory, so a file's existence is as
//! durable as its contents.
//!
//! **Torn writes.** A crash mid-write can leave a partial record, or zeros
//! where the file grew but the data never landed. Because a segment is sealed
//! before the next begins, this can only happen at the tail of the *last*
//! segment. There, zeros from the last whole record to the end of the file are
//! what preallocation leaves anyway: recovery keeps them, silently, and the
//! writer goes on over them. Anything else after the last whole record — a
//! partial record, followed by zeros or not — is a torn write: recovery cuts it
//! off, with the zeros after it, and logs a warning.
//! A bad record anywhere else — or one in the last segment followed by intact
//! records — is corruption of acknowledged data, and [`Wal::open`] refuses
//! with [`WalError::Corrupt`], naming the file and offset, rather than guess.
//!
//! **Truncation.** [`Wal::truncate_after`] appends a *truncate* record; replay
//! drops the entries above it. Nothing already written is modified, so a crash
//! at any point leaves either the old log or the new one.
//!
//! **Failures.** A failed write (say `ENOSPC`) is undone — what it wrote over
//! the preallocated space is zeroed again, what it added past the end of the
//! file is cut off — and the buffer is kept, so a later [`Wal::sync`] can retry. A
//! failed fsync is different: the kernel may already have dropped the dirty
//! pages, so a retry could "succeed" without the data
//! (<https://wiki.postgresql.org/wiki/Fsync_Errors>). The log then refuses all
//! further calls with [`WalError::Poisoned`]; reopen it to recover from what is
//! really on disk.
//!
//! # Caveats
//! - Recovery reads each segment whole into memory, the last one's zeros
//!   included, and returns every entry; fine for the tens of megabytes a
//!   snapshot-compacted log holds.
//! - Preallocation spends disk and IO ahead of need: a log takes up to two
//!   segment sizes beyond its records (the last segment's zeros and the spare),
//!   and every open of a log that is written on prepares a fresh spare. A log's
//!   first eighth of a segment goes to a segment that grows with each write, as
//!   does every write after a torn tail was cut at open, until the next roll.
//!   On copy-on-write filesystems (btrfs, ZFS) an
//!   overwrite allocates anew, so preallocation gains little there.
//! - Telling a torn tail from corruption is a judgement: a bad record in the
//!   last segment is cut off if nothing intact follows it, or if a zeroed
//!   sector lies between it and the next intact one. Damage that also destroys
//!   every later record of the last segment looks like a torn write and is cut.
//!   A torn write of which nothing but zeros reached the disk reads as
//!   preallocated space: nothing is lost by that, but nothing is logged either.
//! - No compression, no encryption.
//! - The index in a segment's name is informational; for a new log it is 1
//!   even if the first entry appended has a higher index.
//! - The last state record is copied forward only when `purge_before` would
//!   delete it; there is no other compaction of state records.
//! - `Wal` is not shared: every method takes `&mut self`, and the caller (the
//!   raft Ready loop) serialises writes.
//! - Directory fsync is how Linux makes creations and deletions durable; other
//!   systems may not honour it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

mod layout;
mod prealloc;
mod record;
mod recover;
mod segment;
#[cfg(test)]
mod tests;

use layout::{Layout, Segment, Span};
use prealloc::Preallocator;
use record::{Record, MAX_PAYLOAD_LEN};
use segment::Active;

/// Fsyncs a directory, making file creations and deletions in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io("fsync directory", dir))
}

/// Tunables of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started once the current one reaches this many bytes.
    /// A segment may exceed it by up to one record. Default 64 MiB, as etcd.
    pub segment_size: u64,
    /// Whether each segment is created at `segment_size` in zeros, prepared
    /// by a background thread, so that writes overwrite the zeros instead of
    /// growing the file (see the [module docs](self)). Default true. Without
    /// it a segment starts empty, which costs nothing to create.
    pub preallocate: bool,
    /// With `preallocate`, whether a new log's first segment is preallocated
    /// too, `open` waiting for its zeros. Default false: a new log starts with
    /// a segment that grows with each write, so opening one stays cheap.
    pub preallocate_first: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 * 1024 * 1024,
            preallocate: true,
            preallocate_first: false,
        }
    }
}

/// One log entry, as raft-rs's `Entry` without the protobuf: its position in
/// the log, the raft term it was proposed in, and the opaque command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The position in the log; starts at 1, consecutive.
    pub index: u64,
    /// The raft term of the leader that proposed it.
    pub term: u64,
    /// The command, opaque to the log.
    pub data: Vec<u8>,
}

/// What [`Wal::open`] found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The live entries, consecutive and ascending.
    pub entries: Vec<Entry>,
    /// The last state record written, if any.
    pub state: Option<Vec<u8>>,
}

/// What went wrong with the log, named from the caller's point of view.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O call on a log file or directory failed.
    #[error("wal: cannot {action} {}: {source}", path.display())]
    Io {
        /// What the log was doing ("write", "fsync", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// A record that was acknowledged is damaged; recovery will not guess.
    #[error(
        "wal: corrupt record in {} at offset {offset}: {reason}; restore the file \
         from a backup or rebuild this member from a snapshot",
        path.display()
    )]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad record in the file.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment between two others is gone, leaving a hole in the log.
    #[error(
        "wal: segment number {seq} is missing from {}; the log has a hole and \
         cannot be recovered",
        dir.display()
    )]
    MissingSegment {
        /// The log directory.
        dir: PathBuf,
        /// The sequence number of the missing segment.
        seq: u64,
    },
    /// Two segment files claim the same sequence number.
    #[error(
        "wal: {} and {} have the same sequence number; remove the one that does \
         not belong to this log",
        first.display(),
        second.display()
    )]
    DuplicateSegment {
        /// One of the files.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// An entry with index 0 was appended; raft indexes start at 1.
    #[error("wal: entry index 0 is reserved; raft log indexes start at 1")]
    ZeroIndex,
    /// An entry does not follow the last one.
    #[error(
        "wal: entry {index} does not follow the last index {last}; append {} next, \
         or truncate_after first to overwrite",
        last + 1
    )]
    NotConsecutive {
        /// The log's last index.
        last: u64,
        /// The index that was appended.
        index: u64,
    },
    /// An entry or state is larger than a record can carry.
    #[error("wal: a record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The payload size asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An fsync failed earlier, so buffered writes may be lost.
    #[error(
        "wal: an earlier fsync of {} failed and written data may be lost; reopen \
         the log to recover from what is on disk",
        path.display()
    )]
    Poisoned {
        /// The segment whose fsync failed.
        path: PathBuf,
    },
}

impl WalError {
    /// Wraps an `io::Error` from `action` on `path`.
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WalError {
        let path = path.to_path_buf();
        move |source| WalError::Io {
            action,
            path,
            source,
        }
    }
}

/// The write-ahead log of one store. See the [module docs](self).
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// The records on disk: where the live entries are, which segment has the state.
    layout: Layout,
    /// The last segment, open for writing.
    active: Active,
    /// Prepares the next segment in the background; `None` without
    /// [`WalOptions::preallocate`].
    spares: Option<Preallocator>,
    /// The entries of the log as the caller sees it, including `pending`.
    logical: Span,
    /// The latest state, including `pending`.
    state: Option<Vec<u8>>,
    /// Records appended but not yet written.
    pending: Vec<Record>,
    /// Reused buffer for encoding `pending`.
    buf: Vec<u8>,
    /// Bytes were written to `active` since its last fsync.
    dirty: bool,
    /// An fsync failed; see [`WalError::Poisoned`].
    poisoned: bool,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("first_index", &self.logical.first)
            .field("last_index", &self.logical.last)
            .field("segments", &self.layout.segments.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, recovering everything in it.
    ///
    /// A torn write at the tail of the last segment is cut off (and logged);
    /// any other damage is an error. Zeros after the last record are the
    /// segment's preallocated space and stay. A new log starts with a plain
    /// segment unless [`WalOptions::preallocate_first`] says otherwise.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(WalError::io("create directory", dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let recover::RecoveredLog {
            mut layout,
            recovered,
            tail_len,
            tail_torn,
        } = recover::recover(dir)?;
        prealloc::remove_leftover_spare(dir)?;
        let mut spares = if opts.preallocate {
            Some(Preallocator::start(dir, opts.segment_size)?)
        } else {
            None
        };
        let active = match layout.segments.last() {
            Some(last) => Active::open(last.seq, last.path.clone(), tail_len, tail_torn)?,
            None => {
                // Plain unless asked otherwise, so that opening a new log costs
                // no zero-filling; see `request_spare_and_roll_early` for when a spare is prepared.
                let first = spares.as_mut().filter(|_| opts.preallocate_first);
                let active = start_segment(dir, first, 0, 1)?;
                layout.segments.push(Segment {
                    seq: active.seq,
                    path: active.path.clone(),
                    live: Span::default(),
                });
                active
            }
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            logical: layout.span(),
            state: recovered.state.clone(),
            layout,
            active,
            spares,
            pending: Vec::new(),
            buf: Vec::new(),
            dirty: false,
            poisoned: false,
        };
        Ok((wal, recovered))
    }

    /// Buffers entries at the end of the log. Indexes must be consecutive with
    /// [`Wal::last_index`], except the very first entry of an empty log, which
    /// may start anywhere. Not durable until [`Wal::sync`]. On error nothing is
    /// appended.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        self.check_usable()?;
        let mut span = self.logical;
        for entry in entries {
            span.check_next(entry.index)?;
            check_size(16 + entry.data.len())?;
            span.push(entry.index);
        }
        self.logical = span;
        self.pending
            .extend(entries.iter().cloned().map(Record::Entry));
        Ok(())
    }

    /// Buffers a state record (raft `HardState` etc.); the last one wins on
    /// recovery. Not durable until [`Wal::sync`].
    pub fn set_state(&mut self, state: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        check_size(state.len())?;
        self.state = Some(state.to_vec());
        self.pending.push(Record::State(state.to_vec()));
        Ok(())
    }

    /// Writes buffered records and fdatasyncs; after `Ok`, everything appended
    /// survives kill -9 and power loss.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        self.write_pending()?;
        if self.dirty {
            self.sync_active()?;
        }
        Ok(())
    }

    /// The index of the first entry, or 0 if the log has none.
    #[cfg(test)]
    pub fn first_index(&self) -> u64 {
        self.logical.first
    }

    /// The index of the last entry, or 0 if the log has none.
    pub fn last_index(&self) -> u64 {
        self.logical.last
    }

    /// Drops entries with index > `index` (raft: a leader overwrote a
    /// conflicting suffix). Below [`Wal::first_index`] it empties the log.
    /// Durable after [`Wal::sync`].
    pub fn truncate_after(&mut self, index: u64) -> Result<(), WalError> {
        self.check_usable()?;
        if index >= self.logical.last {
            return Ok(());
        }
        self.logical.truncate_after(index);
        // Entries not yet written are simply dropped; only entries already on
        // disk need a truncate record. (After a failed write this keeps the
        // refused entries from being written at the next sync.)
        self.pending
            .retain(|r| !matches!(r, Record::Entry(e) if e.index > index));
        if self.layout.span().last > index {
            self.pending.push(Record::Truncate { after: index });
        }
        Ok(())
    }

    /// Deletes whole segments whose entries are all below `index` (after a
    /// snapshot covers them). Syncs first. The segment being written is never
    /// deleted; nor is the one holding the last state record, unless the state
    /// is first rewritten (and synced) into the current segment. If no entry
    /// is left, the log is empty and [`Wal::first_index`] is 0.
    pub fn purge_before(&mut self, index: u64) -> Result<(), WalError> {
        self.sync()?;
        let count = self.layout.purgeable(index);
        if count == 0 {
            return Ok(());
        }
        if self.layout.state_in_first(count) {
            if let Some(state) = self.state.clone() {
                self.pending.push(Record::State(state));
                self.sync()?;
            }
        }
        // Oldest first, so a crash part-way leaves a log without holes.
        for _ in 0..count {
            let path = self.layout.segments[0].path.clone();
            std::fs::remove_file(&path).map_err(WalError::io("delete", &path))?;
            self.layout.segments.remove(0);
            tracing::debug!(path = %path.display(), "wal: purged segment");
        }
        sync_dir(&self.dir)?;
        self.logical = self.layout.span();
        Ok(())
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned {
                path: self.active.path.clone(),
            });
        }
        Ok(())
    }

    /// Writes `pending` to the segments, rolling to a new segment whenever the
    /// current one is full. Records written are removed from `pending` even if
    /// a later write fails; the rest stay for the next try.
    fn write_pending(&mut self) -> Result<(), WalError> {
        let mut written = 0;
        let result = self.write_records(&mut written);
        self.pending.drain(..written);
        result
    }

    fn write_records(&mut self, written: &mut usize) -> Result<(), WalError> {
        let segment_size = self.opts.segment_size;
        while *written < self.pending.len() {
            if self.active.len > 0
                && (self.active.len >= segment_size || self.request_spare_and_roll_early())
            {
                self.roll(*written)?;
            }
            // One write per batch: as many records as fill the segment.
            self.buf.clear();
            let mut end = *written;
            while end < self.pending.len()
                && (end == *written || self.active.len + (self.buf.len() as u64) < segment_size)
            {
                self.pending[end].encode(&mut self.buf);
                end += 1;
            }
            self.write_buf()?;
            for record in &self.pending[*written..end] {
                if let Err(err) = self.layout.apply(record) {
                    panic!("wal: append validated the entries, yet writing them found: {err}");
                }
            }
            *written = end;
        }
        Ok(())
    }

    /// Asks for a spare once the active segment holds an eighth of the
    /// segment size ([`PREALLOCATE_AFTER`]), and says whether to roll to it
    /// now: when it is ready and the active segment is one that grows with
    /// each write. (A new log starts with such a segment, so that opening one
    /// costs no zero-filling, and a log that stays small never pays for a
    /// spare.)
    fn request_spare_and_roll_early(&self) -> bool {
        let Some(spares) = &self.spares else {
            return false;
        };
        if self.active.len < self.opts.segment_size / PREALLOCATE_AFTER {
            return false;
        }
        spares.request();
        !self.active.is_preallocated() && spares.is_ready()
    }

    /// Writes `buf` to the active segment, undoing what reached the file if
    /// the write fails.
    fn write_buf(&mut self) -> Result<(), WalError> {
        if let Err(err) = self.active.write(&self.buf) {
            if let Err(rewind) = self.active.rewind(self.buf.len()) {
                // The segment may now end in a partial record; only recovery,
                // which treats it as a torn tail, can make sense of it.
                tracing::error!(path = %self.active.path.display(), %rewind, "wal: cannot cut back a failed write");
                self.poisoned = true;
            }
            return Err(WalError::Io {
                action: "write",
                path: self.active.path.clone(),
                source: err,
            });
        }
        self.dirty = true;
        Ok(())
    }

    fn sync_active(&mut self) -> Result<(), WalError> {
        if let Err(source) = self.active.sync_data() {
            self.poisoned = true;
            return Err(WalError::Io {
                action: "fsync",
                path: self.active.path.clone(),
                source,
            });
        }
        self.dirty = false;
        Ok(())
    }

    /// Seals the active segment — cuts off its preallocated zeros and fsyncs
    /// it — and starts the next one, named after the first entry among
    /// `pending[next..]`, or the index after the last.
    fn roll(&mut self, next: usize) -> Result<(), WalError> {
        let trimmed = self
            .active
            .trim()
            .map_err(WalError::io("truncate", &self.active.path))?;
        if self.dirty || trimmed {
            self.sync_active()?;
        }
        let first_index = self.pending[next..]
            .iter()
            .find_map(|record| match record {
                Record::Entry(entry) => Some(entry.index),
                _ => None,
            })
            .unwrap_or(self.layout.span().last + 1);
        let active = start_segment(
            &self.dir,
            self.spares.as_mut(),
            self.active.seq + 1,
            first_index,
        )?;
        tracing::debug!(path = %active.path.display(), "wal: started segment");
        self.layout.segments.push(Segment {
            seq: active.seq,
            path: active.path.clone(),
            live: Span::default(),
        });
        self.active = active;
        Ok(())
    }
}

/// Creates segment `seq` in `dir`: from a preallocated spare when there are
/// `spares`, else empty.
fn start_segment(
    dir: &Path,
    spares: Option<&mut Preallocator>,
    seq: u64,
    first_index: u64,
) -> Result<Active, WalError> {
    match spares {
        Some(spares) => Active::create_preallocated(dir, seq, first_index, spares),
        None => Active::create(dir, seq, first_index),
    }
}

/// A log asks for a spare once one segment holds the segment size divided
/// by this.
const PREALLOCATE_AFTER: u64 = 8;

fn check_size(len: usize) -> Result<(), WalError> {
    if len > MAX_PAYLOAD_LEN {
        return Err(WalError::RecordTooLarge {
            len,
            max: MAX_PAYLOAD_LEN,
        });
    }
    Ok(())
}
