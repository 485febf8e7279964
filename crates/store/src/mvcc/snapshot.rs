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
//!   <version:u32>                     1
//!   { <len:u32> <key> <len:u32> <value> }*   every entry of the tree, in key order
//!   <0xFFFF_FFFF:u32>                 end of entries
//!   <count:u64>                       how many entries came before
//!   <crc32:u32>                       CRC-32 of every byte above
//! ```
//! (all integers big-endian).
//!
//! The tree is copied without looking inside, so whatever is stored under a
//! prefix added later travels with it. Restoring reads and checks the whole
//! stream first, then swaps the tree's contents in one sled batch and rebuilds
//! the in-memory key index, leases and meta the way `Mvcc::open` does: a stream
//! that is truncated or damaged is refused and the store stays as it was.
//!
//! # Where to start
//! [`Mvcc::write_snapshot`] on the leader (or any member saving its own
//! snapshot), [`Mvcc::restore_snapshot`] on a member installing one. The files
//! that hold snapshots are `raft::snapshot`'s business.
//!
//! # Caveats
//! - Both calls run on the apply thread and block it for the whole scan: a
//!   snapshot of a large store (all history since the last compaction) stops
//!   applies for as long as it takes to read the tree and write the stream.
//!   Compacting keeps snapshots small. No copy-on-write view is taken.
//! - Restoring holds the whole snapshot in memory before swapping it in.
//! - After a restore, sled's copy is written but not fsync'd (sled's flush is
//!   not relied on, as elsewhere): a member that crashes right after must find
//!   sled's applied index behind its newest snapshot file and restore again.
//! - Watchers are not told: the caller must cancel or resync them, as etcd does
//!   when it installs a snapshot.

// Called by the raft Ready loop (and tests); the store does not run raft yet.
#![allow(dead_code)]

use std::io::{self, Read, Write};

use super::Mvcc;
use crate::error::{Result, StoreError};

const MAGIC: &[u8; 8] = b"SKIFFKV\n";
const VERSION: u32 = 1;
/// Written where the next entry's key length would be: no key is this long.
const END: u32 = u32::MAX;
/// No key or value the store writes comes near this; a larger length is damage.
const MAX_FIELD_LEN: u32 = 256 << 20;

impl Mvcc {
    /// Writes the whole applied state to `out` as one checksummed stream and
    /// returns the number of bytes written.
    ///
    /// Commits whatever was applied since the last commit and waits for the
    /// sled writer to catch up, then copies every entry of the tree. Blocks the
    /// caller (the apply thread) for the whole copy: the time to read every
    /// stored revision, lease and meta record and write them to `out`.
    pub(crate) fn write_snapshot(&mut self, out: &mut dyn Write) -> Result<u64> {
        self.backend.drain()?;
        let mut out = CrcWriter::new(out);
        out.put(MAGIC)?;
        out.put(&VERSION.to_be_bytes())?;
        let mut count: u64 = 0;
        for entry in self.backend.raw_entries() {
            let (key, value) = entry?;
            for field in [&key, &value] {
                let len = u32::try_from(field.len())
                    .ok()
                    .filter(|len| *len <= MAX_FIELD_LEN)
                    .ok_or_else(|| {
                        StoreError::Storage(format!(
                            "state-machine snapshot: a stored entry of {} bytes is too large to write",
                            field.len()
                        ))
                    })?;
                out.put(&len.to_be_bytes())?;
                out.put(field)?;
            }
            count += 1;
        }
        out.put(&END.to_be_bytes())?;
        out.put(&count.to_be_bytes())?;
        let crc = out.hasher.clone().finalize();
        out.put(&crc.to_be_bytes())?;
        out.inner.flush().map_err(write_error)?;
        tracing::info!(
            entries = count,
            bytes = out.written,
            applied_index = self.applied_index,
            "wrote state-machine snapshot"
        );
        Ok(out.written)
    }

    /// Replaces the whole state with the snapshot in `input`: the tree's
    /// contents are swapped for the snapshot's in one sled batch, and the
    /// key index, leases and meta (applied index, revision, compaction) are
    /// rebuilt from them as `Mvcc::open` does.
    ///
    /// The stream is read and checked to the end before anything changes, so a
    /// truncated or damaged stream is an error naming what is wrong and leaves
    /// the store as it was. An error after the swap (a record this version
    /// cannot decode) leaves the in-memory state incomplete: reopen the store.
    pub(crate) fn restore_snapshot(&mut self, input: &mut dyn Read) -> Result<()> {
        let entries = read_stream(input)?;
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

/// Reads and verifies a whole stream, returning its entries.
fn read_stream(input: &mut dyn Read) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut input = CrcReader::new(input);
    let magic = input.array::<8>("the magic number")?;
    if &magic != MAGIC {
        return Err(corrupt(format!(
            "not a skiff state-machine snapshot (it starts with {:?})",
            String::from_utf8_lossy(&magic)
        )));
    }
    let version = u32::from_be_bytes(input.array("the version")?);
    if version != VERSION {
        return Err(corrupt(format!(
            "version {version} is not supported (this build reads version {VERSION})"
        )));
    }
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
    Ok(entries)
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
