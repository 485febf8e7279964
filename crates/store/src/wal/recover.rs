//! Recovery: reading every segment back, in order, into the entries and state
//! the log held at the last successful `sync`.

use std::fs;
use std::path::Path;

use super::layout::{Layout, Segment, Span};
use super::record::Record;
use super::segment::{self, Scanned};
use super::{Entry, Recovered, WalError};

/// What recovery found.
pub(crate) struct RecoveredLog {
    pub(crate) layout: Layout,
    pub(crate) recovered: Recovered,
    /// Length of the whole records in the last segment; anything after it is
    /// preallocated zeros or, if `tail_torn`, a torn write. 0 when there are
    /// no segments.
    pub(crate) tail_len: u64,
    /// The last segment ends in a torn write, to be cut off.
    pub(crate) tail_torn: bool,
}

/// Reads the log in `dir`. Does not modify any file; the caller cuts the torn
/// tail, if any, when it opens the last segment for writing.
pub(crate) fn recover(dir: &Path) -> Result<RecoveredLog, WalError> {
    let files = segment::list(dir)?;
    let mut log = RecoveredLog {
        layout: Layout::default(),
        recovered: Recovered {
            entries: Vec::new(),
            state: None,
        },
        tail_len: 0,
        tail_torn: false,
    };
    for (i, file) in files.iter().enumerate() {
        let is_last = i + 1 == files.len();
        let bytes = fs::read(&file.path).map_err(WalError::io("read", &file.path))?;
        let Scanned {
            records,
            valid_len,
            torn,
        } = segment::scan(&file.path, &bytes, is_last)?;
        if let Some(reason) = &torn {
            tracing::warn!(
                path = %file.path.display(),
                offset = valid_len,
                dropped_bytes = bytes.len() as u64 - valid_len,
                %reason,
                "wal: truncating a torn write at the tail of the log"
            );
        }
        log.layout.segments.push(Segment {
            seq: file.seq,
            path: file.path.clone(),
            live: Span::default(),
        });
        for (offset, record) in records {
            log.replay(record).map_err(|reason| WalError::Corrupt {
                path: file.path.clone(),
                offset,
                reason,
            })?;
        }
        log.tail_len = valid_len;
        log.tail_torn = torn.is_some();
    }
    Ok(log)
}

impl RecoveredLog {
    /// Applies one record, in log order, to the entries, state and layout.
    /// Fails, saying why, if an entry does not follow the one before it.
    fn replay(&mut self, record: Record) -> Result<(), String> {
        if let Err(err) = self.layout.apply(&record) {
            return Err(match err {
                WalError::NotConsecutive { last, index } => {
                    format!("entry {index} does not follow entry {last}")
                }
                WalError::ZeroIndex => "entry with index 0".to_string(),
                other => other.to_string(),
            });
        }
        let entries = &mut self.recovered.entries;
        match record {
            Record::Entry(entry) => entries.push(entry),
            Record::State(state) => self.recovered.state = Some(state),
            Record::Truncate { after } => truncate_after(entries, after),
        }
        Ok(())
    }
}

/// Drops the entries above `after` from consecutive `entries`.
fn truncate_after(entries: &mut Vec<Entry>, after: u64) {
    let Some(first) = entries.first().map(|e| e.index) else {
        return;
    };
    if after < first {
        entries.clear();
    } else if let Ok(keep) = usize::try_from(after - first + 1) {
        entries.truncate(keep);
    }
}
