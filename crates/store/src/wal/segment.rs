//! Segment files: their names, finding them in a directory, and reading one
//! back while telling a torn tail from corruption.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::prealloc::Preallocator;
use super::record::{self, DecodeError, Record, HEADER_LEN};
use super::sync_dir;
use super::WalError;

/// Disk sector size: a write that was cut short by a crash loses whole sectors,
/// which read back as zeros.
const SECTOR: usize = 512;

/// The file name of segment `seq` whose first entry is `first_index`.
/// Zero-padded hex, so the names sort in sequence order.
pub(crate) fn file_name(seq: u64, first_index: u64) -> String {
    format!("{seq:016x}-{first_index:016x}.wal")
}

/// Parses a name made by [`file_name`] back into `(seq, first_index)`.
pub(crate) fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (seq, first_index) = stem.split_once('-')?;
    if seq.len() != 16 || first_index.len() != 16 {
        return None;
    }
    let seq = u64::from_str_radix(seq, 16).ok()?;
    let first_index = u64::from_str_radix(first_index, 16).ok()?;
    Some((seq, first_index))
}

/// A segment file found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    pub(crate) seq: u64,
    pub(crate) first_index: u64,
    pub(crate) path: PathBuf,
}

/// The segment files in `dir`, in sequence order. Other files are ignored.
/// Purging removes the oldest segments first, so the sequence numbers left
/// must be consecutive; a hole means a file was lost.
pub(crate) fn list(dir: &Path) -> Result<Vec<SegmentFile>, WalError> {
    let read_dir = fs::read_dir(dir).map_err(WalError::io("list", dir))?;
    let mut files = Vec::new();
    for dir_entry in read_dir {
        let dir_entry = dir_entry.map_err(WalError::io("list", dir))?;
        let name = dir_entry.file_name();
        let Some((seq, first_index)) = name.to_str().and_then(parse_file_name) else {
            continue;
        };
        files.push(SegmentFile {
            seq,
            first_index,
            path: dir_entry.path(),
        });
    }
    files.sort_by_key(|file| file.seq);
    for pair in files.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        if next.seq == prev.seq {
            return Err(WalError::DuplicateSegment {
                first: prev.path.clone(),
                second: next.path.clone(),
            });
        }
        if next.seq != prev.seq + 1 {
            return Err(WalError::MissingSegment {
                dir: dir.to_path_buf(),
                seq: prev.seq + 1,
            });
        }
    }
    Ok(files)
}

/// A segment read back from disk.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    /// Each whole record with the offset it starts at.
    pub(crate) records: Vec<(u64, Record)>,
    /// Bytes up to the end of the last whole record. In the last segment, the
    /// rest is zeros (preallocated space) unless `torn` is set.
    pub(crate) valid_len: u64,
    /// Set when the tail after `valid_len` is a torn write: why.
    pub(crate) torn: Option<DecodeError>,
}

/// Splits `bytes` (the contents of the segment at `path`) into records.
///
/// The last segment may end in zeros after its last whole record: the space
/// preallocated for records not yet written. That is no damage, and nothing
/// needs cutting.
///
/// A bad record in the last segment is a torn tail if a crash mid-write can
/// explain it: nothing intact follows it, or the bytes up to the next intact
/// record contain a whole zeroed sector (a page that never reached the disk,
/// as etcd's `isTornEntry` reasons). Anything else is corruption — including
/// zeros after the records of an earlier segment, which the writer cut to its
/// records and fsync'd before it started the next one.
pub(crate) fn scan(path: &Path, bytes: &[u8], is_last: bool) -> Result<Scanned, WalError> {
    let mut scanned = Scanned::default();
    let mut offset = 0;
    while offset < bytes.len() {
        match record::decode(&bytes[offset..]) {
            Ok((record, len)) => {
                scanned.records.push((offset as u64, record));
                offset += len;
            }
            // Zeros never decode as a record (a zero checksum does not match),
            // so this is only tried where a record does not decode.
            Err(_) if is_last && is_zeros(&bytes[offset..]) => break,
            Err(err) if is_last && err.may_be_torn() && is_torn(bytes, offset) => {
                scanned.torn = Some(err);
                break;
            }
            Err(err) => {
                return Err(WalError::Corrupt {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    reason: err.to_string(),
                })
            }
        }
    }
    scanned.valid_len = offset as u64;
    Ok(scanned)
}

/// Whether `bytes` are all zeros.
pub(crate) fn is_zeros(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Whether the bad record at `offset` can be the tail of an interrupted write.
fn is_torn(bytes: &[u8], offset: usize) -> bool {
    match next_intact_record(bytes, offset + 1) {
        None => true,
        Some(next) => has_zeroed_sector(bytes, offset, next),
    }
}

/// Whether `bytes[from..to]` holds a whole sector, aligned to the start of the
/// file as the disk writes it, that is all zeros.
fn has_zeroed_sector(bytes: &[u8], from: usize, to: usize) -> bool {
    let first = from.div_ceil(SECTOR) * SECTOR;
    (first..to)
        .step_by(SECTOR)
        .filter(|start| start + SECTOR <= to)
        .filter_map(|start| bytes.get(start..start + SECTOR))
        .any(is_zeros)
}

/// The offset of the first position at or after `from` that decodes as a whole
/// record. Cheap on garbage: most positions fail the type or length check
/// before any checksum is computed.
fn next_intact_record(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(HEADER_LEN - 1))
        .filter(|&at| {
            bytes
                .get(at + HEADER_LEN - 1)
                .is_some_and(|&kind| record::is_known_type(kind))
        })
        .find(|&at| record::decode(&bytes[at..]).is_ok())
}

/// The segment being written: the last one.
///
/// Records go at `len`, the end of the last whole record. The file may be
/// longer: a preallocated segment starts as the whole segment size in zeros,
/// which the writer overwrites in place, so that a write does not grow the
/// file and its fdatasync has only the data to write. Everything after `len`
/// is zeros, but for a failed write that could not be undone (which poisons
/// the log).
#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    file: File,
    /// Bytes of whole records; the file position is here.
    pub(crate) len: u64,
    /// The length of the file: `len`, or more when it ends in zeros.
    file_len: u64,
    /// Test hook: the next write stops after this many bytes and fails, as
    /// when the disk fills up.
    #[cfg(test)]
    pub(crate) fail_next_write_after: Option<usize>,
    /// Test hook: the next fsync fails, as on a disk that lost the write.
    #[cfg(test)]
    pub(crate) fail_next_sync: bool,
}

impl Active {
    fn new(seq: u64, path: PathBuf, file: File, len: u64, file_len: u64) -> Active {
        Active {
            seq,
            path,
            file,
            len,
            file_len,
            #[cfg(test)]
            fail_next_write_after: None,
            #[cfg(test)]
            fail_next_sync: false,
        }
    }

    /// Whether the file ends in preallocated zeros past the records.
    pub(crate) fn is_preallocated(&self) -> bool {
        self.file_len > self.len
    }

    /// Creates segment `seq` in `dir` as an empty file and makes its name
    /// durable. Each write then grows it.
    pub(crate) fn create(dir: &Path, seq: u64, first_index: u64) -> Result<Active, WalError> {
        let path = dir.join(file_name(seq, first_index));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(WalError::io("create", &path))?;
        sync_dir(dir)?;
        Ok(Active::new(seq, path, file, 0, 0))
    }

    /// Creates segment `seq` in `dir` from the spare `spares` keeps ready: the
    /// whole segment size in zeros, fsync'd, then renamed to the segment's
    /// name, which is made durable.
    pub(crate) fn create_preallocated(
        dir: &Path,
        seq: u64,
        first_index: u64,
        spares: &mut Preallocator,
    ) -> Result<Active, WalError> {
        let path = dir.join(file_name(seq, first_index));
        let mut file = spares.install(&path)?;
        file.seek(SeekFrom::Start(0))
            .map_err(WalError::io("seek", &path))?;
        Ok(Active::new(seq, path, file, 0, spares.size()))
    }

    /// Opens an existing segment to append after its first `len` bytes, the
    /// whole records recovery found. If recovery found a torn write after
    /// them, it is cut off and the cut made durable. Otherwise anything after
    /// them is preallocated zeros, which are kept for the writes to come.
    pub(crate) fn open(seq: u64, path: PathBuf, len: u64, torn: bool) -> Result<Active, WalError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(WalError::io("open", &path))?;
        let file_len = if torn {
            file.set_len(len).map_err(WalError::io("truncate", &path))?;
            file.sync_all().map_err(WalError::io("fsync", &path))?;
            len
        } else {
            file.metadata().map_err(WalError::io("stat", &path))?.len()
        };
        file.seek(SeekFrom::Start(len))
            .map_err(WalError::io("seek", &path))?;
        Ok(Active::new(seq, path, file, len, file_len))
    }

    /// Writes `buf` after the last whole record.
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(limit) = self.fail_next_write_after.take() {
            self.file.write_all(&buf[..limit.min(buf.len())])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected by a test)",
            ));
        }
        self.file.write_all(buf)?;
        self.len += buf.len() as u64;
        self.file_len = self.file_len.max(self.len);
        Ok(())
    }

    /// Undoes a failed write of `attempted` bytes, so that the next write does
    /// not leave part of it behind: what it added past the end of the file is
    /// cut off, and what it wrote over preallocated zeros is zeroed again.
    /// (Whole records of the failed write left after a shorter later write
    /// would be read back as if they had been written after it.)
    pub(crate) fn rewind(&mut self, attempted: usize) -> io::Result<()> {
        let attempted_end = self.len + attempted as u64;
        if attempted_end > self.file_len {
            self.file.set_len(self.file_len)?;
        }
        let overwritten = attempted_end.min(self.file_len) - self.len;
        if overwritten > 0 {
            self.file.seek(SeekFrom::Start(self.len))?;
            self.file.write_all(&vec![0; overwritten as usize])?;
        }
        self.file.seek(SeekFrom::Start(self.len))?;
        Ok(())
    }

    /// Cuts the zeros after the last record off a segment that is complete,
    /// so that only the last segment ever ends in zeros. Returns whether the
    /// file changed, which then needs an fsync.
    pub(crate) fn trim(&mut self) -> io::Result<bool> {
        if self.file_len == self.len {
            return Ok(false);
        }
        self.file.set_len(self.len)?;
        self.file_len = self.len;
        Ok(true)
    }

    /// fdatasync: the data and the file length, not other metadata.
    pub(crate) fn sync_data(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            return Err(io::Error::other("input/output error (injected by a test)"));
        }
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_in_sequence_order_and_parse_back() {
        let names: Vec<String> = [(0, 1), (9, 500), (10, 400), (255, 7)]
            .iter()
            .map(|&(seq, first)| file_name(seq, first))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(parse_file_name(&names[2]), Some((10, 400)));
        assert_eq!(parse_file_name("0000000000000001.wal"), None);
        assert_eq!(
            parse_file_name("000000000000000a-0000000000000001.tmp"),
            None
        );
    }
}
