//! Runs: consecutive changes stored together under one sled key.
//!
//! sled's cost is mostly per key written, not per byte: each insert adds a
//! delta to a page, copies the page it lands on in memory and, every few
//! inserts, rewrites it. With one key per change, putting applied changes into
//! sled cost about as much CPU as the whole raft round of a write. So the
//! writer thread stores the new changes of each sled batch as a few runs,
//! each up to [`RUN_BYTES`]:
//!
//! ```text
//!   r <main:8><sub:8>  →  { <main:8><sub:8> <len:u32> <record> }*
//! ```
//! (integers big-endian; a record is `<kind:1><mvccpb.KeyValue>`, see `backend`.)
//!
//! The key is the run's upper bound: every change in the run has a revision at
//! or below the key's, and above the key of the run before it. So runs split
//! the revisions into intervals, and the change of revision `R`, if sled has
//! it, is in the first run whose key is at or above `R`: one forward seek.
//! New runs only ever hold revisions above every stored key, since revisions
//! only grow. A compaction rewrites each run it drops changes from under the
//! same key (which stays a bound), or removes the run once it is empty.

use crate::error::{Result, StoreError};
use crate::revision::Revision;

/// The size the writer fills a run up to; a change larger than this is a run
/// of its own. sled splits a leaf page once it holds more than 16 keys, and
/// writes any page larger than a quarter of its 512 KiB segments to a file of
/// its own (a "blob"), which is slow: so a leaf full of runs must stay well
/// under 128 KiB.
pub(crate) const RUN_BYTES: usize = 4 * 1024;

/// Bytes in front of each change's record: its revision and the record's length.
const HEADER: usize = 16 + 4;

/// Whether a change with `record` still fits in `run` within [`RUN_BYTES`].
pub(crate) fn fits(run: &[u8], record: &[u8]) -> bool {
    run.len() + HEADER + record.len() <= RUN_BYTES
}

/// Appends one change to a run being built. Changes go in revision order.
pub(crate) fn push(run: &mut Vec<u8>, rev: Revision, record: &[u8]) {
    run.reserve(HEADER + record.len());
    run.extend_from_slice(&rev.to_bytes());
    let len = u32::try_from(record.len()).expect("a record is far below 4 GiB");
    run.extend_from_slice(&len.to_be_bytes());
    run.extend_from_slice(record);
}

/// The changes of a run, in revision order, each with its encoded record.
pub(crate) fn changes(run: &[u8]) -> Changes<'_> {
    Changes { rest: run }
}

/// Iterator over a run's changes; see [`changes`]. A run cut short or
/// otherwise damaged yields one error, naming where, and ends.
pub(crate) struct Changes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Changes<'a> {
    type Item = Result<(Revision, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match split_change(self.rest) {
            Some((rev, record, rest)) => {
                self.rest = rest;
                Some(Ok((rev, record)))
            }
            None => {
                let left = self.rest.len();
                self.rest = &[];
                Some(Err(StoreError::Storage(format!(
                    "a run of changes in sled is damaged: {left} bytes at its end are not a \
                     whole change"
                ))))
            }
        }
    }
}

fn split_change(bytes: &[u8]) -> Option<(Revision, &[u8], &[u8])> {
    let header = bytes.get(..HEADER)?;
    let rev = Revision::from_bytes(&header[..16])?;
    let len = u32::from_be_bytes(header[16..].try_into().ok()?) as usize;
    let record = bytes.get(HEADER..HEADER.checked_add(len)?)?;
    Some((rev, record, &bytes[HEADER + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_come_back_in_order_with_their_records() {
        let mut run = Vec::new();
        push(&mut run, Revision::new(5, 0), b"five");
        push(&mut run, Revision::new(5, 1), b"");
        push(&mut run, Revision::new(9, 0), &[7u8; 300]);
        let got: Vec<(Revision, Vec<u8>)> = changes(&run)
            .map(|c| c.map(|(rev, record)| (rev, record.to_vec())))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            got,
            vec![
                (Revision::new(5, 0), b"five".to_vec()),
                (Revision::new(5, 1), Vec::new()),
                (Revision::new(9, 0), vec![7u8; 300]),
            ]
        );
        assert_eq!(changes(&[]).count(), 0);
    }

    #[test]
    fn a_cut_run_yields_its_whole_changes_then_one_error() {
        let mut run = Vec::new();
        push(&mut run, Revision::new(1, 0), b"one");
        push(&mut run, Revision::new(2, 0), b"two");
        for cut in 1..HEADER + 3 {
            let mut items = changes(&run[..run.len() - cut]);
            let (rev, record) = items.next().unwrap().unwrap();
            assert_eq!((rev, record), (Revision::new(1, 0), &b"one"[..]));
            let err = items.next().unwrap().unwrap_err();
            assert!(err.to_string().contains("damaged"), "{err}");
            assert!(items.next().is_none());
        }
    }
}
