//! Snapshot files: the state machine at one applied index, fsync'd to disk so
//! the raft log before that index can be dropped.
//!
//! Raft compacts its log by saving the state machine as of some applied entry
//! and forgetting the entries before it (raft thesis §5.1); a follower too far
//! behind is sent the same snapshot instead of the entries (§5.3,
//! `InstallSnapshot`). etcd keeps these as `<term>-<index>.snap` files in
//! `member/snap`; skiff does the same in one directory, `<data-dir>/snap`:
//!
//! ```text
//!   00000000000000000003-00000000000000012345.snap   term 3, index 12345
//! ```
//!
//! Both numbers are zero-padded to the 20 digits a u64 can need, so sorting
//! the names sorts the snapshots by (term, index). Each file is:
//!
//! ```text
//!   "SKIFFSNP" | "SKIFFSND"    magic, 8 bytes: a whole snapshot, or a delta
//!   <len:u32> <metadata>       eraftpb.SnapshotMetadata (index, term, ConfState)
//!   [<term:u64> <index:u64>]   a delta only: the snapshot it follows (its parent)
//!   <body>                     the state machine (`SnapshotDump::write`'s stream)
//!   <body length:u64>
//!   <crc32:u32>                CRC-32 of every byte above
//! ```
//! (integers big-endian).
//!
//! A delta's body holds only what changed since its parent (see
//! `mvcc::snapshot`, "Deltas"), so it is read together with its parent, the
//! parent's parent, and so on back to a whole snapshot: [`Snapshots::load`]
//! follows the chain and returns the merged, whole state. A chain with a
//! missing or damaged link does not load, and [`Snapshots::purge`] keeps every
//! snapshot a kept one follows. A file is written under a `.tmp` name, fsync'd,
//! renamed into place and the directory fsync'd, so a crash leaves either the
//! complete file or a temp file that [`Snapshots::open`] deletes.
//!
//! A member's own snapshots are saved by a thread of their own while applies
//! go on (see `node`, "Snapshots"); only a file that is complete and fsync'd
//! ever carries a `.snap` name, so the raft thread, listing the directory at
//! the same time, never sees one in the making. A body writer that fails, as a
//! dump abandoned halfway does, leaves no file at all.
//!
//! # Where to start
//! [`Snapshots::save`] (or [`Snapshots::save_delta`]) on a member that
//! snapshots its own state machine,
//! [`Snapshots::save_bytes`] on a follower that received one from the leader,
//! [`Snapshots::latest`] and [`Snapshots::load`] at start.
//!
//! # Caveats
//! - [`Snapshots::latest`] reads and checksums whole files, newest first, each
//!   with its chain: a start-up cost proportional to the chain's size.
//! - A chain is as long as the member that saved it let it grow (see `node`,
//!   "Snapshots"); loading one holds the merged state in memory.
//! - Falling back past a damaged snapshot only helps if the raft log still
//!   reaches back to the older one's index; [`Snapshots::purge`] should not
//!   run ahead of log compaction.
//! - Bodies are held in memory whole, as raft-rs's `Snapshot.data` is.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message as _;
use raft::eraftpb::{ConfState, SnapshotMetadata};

use super::storage::ConfStateRecord;
use crate::error::StoreError;

const MAGIC: &[u8; 8] = b"SKIFFSNP";
/// A delta's magic number; its header also names its parent.
const DELTA_MAGIC: &[u8; 8] = b"SKIFFSND";
/// A delta's parent: term and index.
const PARENT_LEN: usize = 8 + 8;
const SUFFIX: &str = ".snap";
/// A file being written; renamed to its `.snap` name once complete.
const TEMP_SUFFIX: &str = ".snap.tmp";
/// Magic and metadata length.
const HEADER_LEN: usize = 8 + 4;
/// Body length and checksum.
const TRAILER_LEN: usize = 8 + 4;

/// What went wrong with a snapshot file, naming the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    /// An I/O call on a snapshot file or the directory failed.
    #[error("snapshot: cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "fsync", "rename", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// A snapshot file is damaged or not a snapshot file.
    #[error("snapshot: {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The state machine failed while writing the body; nothing was saved.
    #[error("snapshot: writing the body of {} failed: {source}", path.display())]
    Body {
        /// The file that was being written.
        path: PathBuf,
        /// The state machine's error.
        #[source]
        source: StoreError,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io {
        action,
        path,
        source,
    }
}

/// The snapshot files of one member, in one directory.
#[derive(Debug)]
pub(crate) struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// Opens the directory, creating it if needed, and deletes temp files
    /// left by a save that a crash interrupted.
    pub(crate) fn open(dir: &Path) -> Result<Snapshots, SnapshotError> {
        fs::create_dir_all(dir).map_err(io_error("create", dir))?;
        let mut removed = false;
        for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
            let path = entry.map_err(io_error("list", dir))?.path();
            if file_name(&path).is_some_and(|name| name.ends_with(TEMP_SUFFIX)) {
                tracing::warn!(path = %path.display(), "removing a half-written snapshot");
                fs::remove_file(&path).map_err(io_error("remove", &path))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(dir)?;
        }
        Ok(Snapshots {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a snapshot file atomically: the body comes from `write`, which
    /// returns how many bytes it wrote; then fsync, rename into place, fsync
    /// the directory. Returns the file's path.
    pub(crate) fn save(
        &self,
        meta: &SnapshotMetadata,
        write: impl FnOnce(&mut dyn Write) -> crate::error::Result<u64>,
    ) -> Result<PathBuf, SnapshotError> {
        self.save_with(meta, None, |body, path| {
            write(body).map_err(|source| SnapshotError::Body {
                path: path.to_path_buf(),
                source,
            })
        })
    }

    /// As [`Snapshots::save`], for a body that is a delta on top of the
    /// snapshot at `parent` (term, index), which must be saved already.
    pub(crate) fn save_delta(
        &self,
        meta: &SnapshotMetadata,
        parent: TermIndex,
        write: impl FnOnce(&mut dyn Write) -> crate::error::Result<u64>,
    ) -> Result<PathBuf, SnapshotError> {
        let parent_path = self.dir.join(snapshot_name(parent.0, parent.1));
        if parent >= (meta.term, meta.index) || !parent_path.exists() {
            return Err(SnapshotError::Corrupt {
                path: parent_path,
                reason: format!(
                    "a delta at term {} index {} cannot follow it: it is missing or not older",
                    meta.term, meta.index
                ),
            });
        }
        self.save_with(meta, Some(parent), |body, path| {
            write(body).map_err(|source| SnapshotError::Body {
                path: path.to_path_buf(),
                source,
            })
        })
    }

    /// Writes a snapshot file whose body was received whole (from the leader),
    /// the same way as [`Snapshots::save`].
    pub(crate) fn save_bytes(
        &self,
        meta: &SnapshotMetadata,
        body: &[u8],
    ) -> Result<PathBuf, SnapshotError> {
        self.save_with(meta, None, |out, path| {
            out.write_all(body).map_err(io_error("write", path))?;
            Ok(body.len() as u64)
        })
    }

    fn save_with(
        &self,
        meta: &SnapshotMetadata,
        parent: Option<TermIndex>,
        body: impl FnOnce(&mut dyn Write, &Path) -> Result<u64, SnapshotError>,
    ) -> Result<PathBuf, SnapshotError> {
        let name = snapshot_name(meta.term, meta.index);
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!("{name}.tmp"));
        let written = write_temp(&temp, meta, parent, body);
        if let Err(err) = written {
            // Best effort: `open` removes it anyway.
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        fs::rename(&temp, &path).map_err(io_error("rename into place", &temp))?;
        sync_dir(&self.dir)?;
        tracing::info!(
            path = %path.display(),
            index = meta.index,
            term = meta.term,
            "saved snapshot"
        );
        Ok(path)
    }

    /// The newest snapshot whose checksum verifies, with its path. Damaged
    /// files are skipped with a warning; a file that cannot be read at all is
    /// an error.
    pub(crate) fn latest(&self) -> Result<Option<(SnapshotMetadata, PathBuf)>, SnapshotError> {
        Ok(self.latest_loaded()?.map(|(meta, path, _)| (meta, path)))
    }

    /// [`Snapshots::latest`] with its whole body, as [`Snapshots::load`]
    /// gives it: one read of the chain for a caller that needs the body.
    pub(crate) fn latest_loaded(&self) -> Result<Option<LoadedSnapshot>, SnapshotError> {
        for (_, path) in self.list()?.into_iter().rev() {
            match self.load(&path) {
                Ok((meta, body)) => return Ok(Some((meta, path, body))),
                Err(err @ SnapshotError::Corrupt { .. }) => {
                    tracing::warn!(%err, "skipping a damaged snapshot");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(None)
    }

    /// A snapshot's metadata and whole body, after checking its checksum and
    /// that its name matches its metadata; for a delta, merged onto the
    /// snapshots it follows, each checked the same way. The body is what
    /// `Mvcc::restore_snapshot` reads.
    pub(crate) fn load(&self, path: &Path) -> Result<(SnapshotMetadata, Vec<u8>), SnapshotError> {
        let (meta, mut parent, body) = read_file(path)?;
        if parent.is_none() {
            return Ok((meta, body));
        }
        // Newest first, back to the whole snapshot that starts the chain.
        let mut deltas = vec![body];
        let mut child = (meta.term, meta.index);
        let mut link = path.to_path_buf();
        let whole = loop {
            let (term, index) = parent.expect("the loop ends at a whole snapshot");
            let parent_path = self.dir.join(snapshot_name(term, index));
            if (term, index) >= child || !parent_path.exists() {
                return Err(SnapshotError::Corrupt {
                    path: link,
                    reason: format!(
                        "it follows the snapshot at term {term} index {index}, which is missing \
                         or not older"
                    ),
                });
            }
            let (parent_meta, grandparent, body) = read_file(&parent_path)?;
            match grandparent {
                None => break body,
                Some(_) => deltas.push(body),
            }
            child = (parent_meta.term, parent_meta.index);
            parent = grandparent;
            link = parent_path;
        };
        let merged =
            crate::mvcc::snapshot::merge_chain(&whole, deltas.iter().rev().map(Vec::as_slice))
                .map_err(|err| SnapshotError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("its chain does not merge: {err}"),
                })?;
        Ok((meta, merged))
    }

    /// Deletes all but the newest `keep` snapshots and the snapshots they
    /// follow. A file whose header cannot be read ends its chain there.
    pub(crate) fn purge(&self, keep: usize) -> Result<(), SnapshotError> {
        let snapshots = self.list()?;
        let mut kept = std::collections::HashSet::new();
        for (key, path) in snapshots.iter().rev().take(keep) {
            kept.insert(*key);
            let mut next = read_parent(path);
            while let Some(parent) = next.filter(|p| kept.insert(*p)) {
                next = read_parent(&self.dir.join(snapshot_name(parent.0, parent.1)));
            }
        }
        let mut removed = false;
        for (key, path) in &snapshots {
            if !kept.contains(key) {
                fs::remove_file(path).map_err(io_error("remove", path))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Every snapshot file by (term, index), oldest first; other files are ignored.
    fn list(&self) -> Result<Vec<Listed>, SnapshotError> {
        let mut snapshots = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error("list", &self.dir))? {
            let path = entry.map_err(io_error("list", &self.dir))?.path();
            if let Some(key) = file_name(&path).and_then(parse_name) {
                snapshots.push((key, path));
            }
        }
        snapshots.sort();
        Ok(snapshots)
    }
}

/// A snapshot's term and index, which name it.
type TermIndex = (u64, u64);

/// A snapshot's metadata, file and whole body.
pub(crate) type LoadedSnapshot = (SnapshotMetadata, PathBuf, Vec<u8>);

/// A snapshot file's (term, index), from its name, and its path.
type Listed = (TermIndex, PathBuf);

/// `<term>-<index>.snap`, each zero-padded to 20 digits.
fn snapshot_name(term: u64, index: u64) -> String {
    format!("{term:020}-{index:020}{SUFFIX}")
}

/// The (term, index) of a snapshot file's name, if it is one.
fn parse_name(name: &str) -> Option<TermIndex> {
    let (term, index) = name.strip_suffix(SUFFIX)?.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(term) || !digits(index) {
        return None;
    }
    Some((term.parse().ok()?, index.parse().ok()?))
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()
}

/// One file, checked: its metadata, its parent for a delta, and its body.
fn read_file(path: &Path) -> Result<(SnapshotMetadata, Option<TermIndex>, Vec<u8>), SnapshotError> {
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let (meta, parent, body) = decode(&bytes).map_err(|reason| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    if let Some(named) = file_name(path).and_then(parse_name) {
        if named != (meta.term, meta.index) {
            return Err(SnapshotError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "its name says term {} index {} but it holds term {} index {}",
                    named.0, named.1, meta.term, meta.index
                ),
            });
        }
    }
    Ok((meta, parent, body.to_vec()))
}

/// The parent a delta's header names, read without reading the whole file;
/// `None` for a whole snapshot or a file that cannot be read.
fn read_parent(path: &Path) -> Option<TermIndex> {
    use std::io::Read;
    let mut file = File::open(path).ok()?;
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head).ok()?;
    if &head[..8] != DELTA_MAGIC {
        return None;
    }
    let meta_len = u32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
    let mut rest = vec![0u8; meta_len as usize + PARENT_LEN];
    file.read_exact(&mut rest).ok()?;
    decode_parent(&rest[meta_len as usize..])
}

fn decode_parent(bytes: &[u8]) -> Option<TermIndex> {
    let term = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let index = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((term, index))
}

/// Writes the whole file at `temp` and fsyncs it.
fn write_temp(
    temp: &Path,
    meta: &SnapshotMetadata,
    parent: Option<TermIndex>,
    body: impl FnOnce(&mut dyn Write, &Path) -> Result<u64, SnapshotError>,
) -> Result<(), SnapshotError> {
    let file = File::create(temp).map_err(io_error("create", temp))?;
    let mut out = CrcWriter {
        inner: BufWriter::new(file),
        hasher: crc32fast::Hasher::new(),
        written: 0,
    };
    let header = encode_meta(meta);
    let header_len = u32::try_from(header.len()).expect("snapshot metadata is small");
    out.write_all(if parent.is_some() { DELTA_MAGIC } else { MAGIC })
        .and_then(|()| out.write_all(&header_len.to_be_bytes()))
        .and_then(|()| out.write_all(&header))
        .and_then(|()| match parent {
            Some((term, index)) => out
                .write_all(&term.to_be_bytes())
                .and_then(|()| out.write_all(&index.to_be_bytes())),
            None => Ok(()),
        })
        .map_err(io_error("write", temp))?;
    let before_body = out.written;
    let reported = body(&mut out, temp)?;
    let body_len = out.written - before_body;
    if reported != body_len {
        return Err(SnapshotError::Corrupt {
            path: temp.to_path_buf(),
            reason: format!("the body writer reported {reported} bytes but wrote {body_len}"),
        });
    }
    out.write_all(&body_len.to_be_bytes())
        .map_err(io_error("write", temp))?;
    let crc = out.hasher.finalize();
    let mut file = out
        .inner
        .into_inner()
        .map_err(|err| io_error("write", temp)(err.into_error()))?;
    file.write_all(&crc.to_be_bytes())
        .map_err(io_error("write", temp))?;
    file.sync_all().map_err(io_error("fsync", temp))
}

/// Splits a whole file into its metadata, parent (for a delta) and body,
/// checking everything.
fn decode(bytes: &[u8]) -> Result<(SnapshotMetadata, Option<TermIndex>, &[u8]), String> {
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(format!("truncated: only {} bytes", bytes.len()));
    }
    let delta = match &bytes[..8] {
        magic if magic == MAGIC => false,
        magic if magic == DELTA_MAGIC => true,
        _ => return Err("not a skiff snapshot file (bad magic number)".into()),
    };
    let (covered, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
    let computed = crc32fast::hash(covered);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
             the file is truncated or damaged"
        ));
    }
    let header_len = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let meta_end = HEADER_LEN + header_len;
    let body_start = meta_end + if delta { PARENT_LEN } else { 0 };
    let body_end = bytes.len() - TRAILER_LEN;
    if body_start > body_end {
        return Err(format!(
            "the metadata claims {header_len} bytes, more than the file holds"
        ));
    }
    let body_len = u64::from_be_bytes(bytes[body_end..body_end + 8].try_into().expect("8 bytes"));
    if body_len != (body_end - body_start) as u64 {
        return Err(format!(
            "the trailer says the body has {body_len} bytes but it has {}",
            body_end - body_start
        ));
    }
    let meta =
        decode_meta(&bytes[HEADER_LEN..meta_end]).map_err(|err| format!("bad metadata: {err}"))?;
    let parent = if delta {
        decode_parent(&bytes[meta_end..body_start])
    } else {
        None
    };
    Ok((meta, parent, &bytes[body_start..body_end]))
}

/// `eraftpb.SnapshotMetadata`, wire-compatible.
#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotMetadataRecord {
    #[prost(message, optional, tag = "1")]
    conf_state: Option<ConfStateRecord>,
    #[prost(uint64, tag = "2")]
    index: u64,
    #[prost(uint64, tag = "3")]
    term: u64,
}

fn encode_meta(meta: &SnapshotMetadata) -> Vec<u8> {
    SnapshotMetadataRecord {
        conf_state: Some(ConfStateRecord::from(meta.get_conf_state())),
        index: meta.index,
        term: meta.term,
    }
    .encode_to_vec()
}

fn decode_meta(bytes: &[u8]) -> Result<SnapshotMetadata, prost::DecodeError> {
    let record = SnapshotMetadataRecord::decode(bytes)?;
    let mut meta = SnapshotMetadata {
        index: record.index,
        term: record.term,
        ..SnapshotMetadata::default()
    };
    meta.set_conf_state(record.conf_state.map(ConfState::from).unwrap_or_default());
    Ok(meta)
}

/// Counts and checksums what passes through.
struct CrcWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync", dir))
}

impl From<SnapshotError> for StoreError {
    fn from(err: SnapshotError) -> Self {
        StoreError::Storage(err.to_string())
    }
}

#[cfg(test)]
mod tests;
