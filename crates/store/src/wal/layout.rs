//! Where the live entries are: an in-memory map of the segments, without the
//! entry data. It is rebuilt by recovery and kept up to date as records are
//! written, and it is what `purge_before` consults.

use std::path::PathBuf;

use super::record::Record;
use super::WalError;

/// A run of consecutive entry indexes, `first..=last`; both 0 when empty.
/// (Raft indexes start at 1, so 0 is free to mean "none".)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl Span {
    pub(crate) fn is_empty(&self) -> bool {
        self.last == 0
    }

    /// Checks that `index` may be appended: the next index, or anything but 0
    /// when the span is empty.
    pub(crate) fn check_next(&self, index: u64) -> Result<(), WalError> {
        if index == 0 {
            return Err(WalError::ZeroIndex);
        }
        if !self.is_empty() && index != self.last + 1 {
            return Err(WalError::NotConsecutive {
                last: self.last,
                index,
            });
        }
        Ok(())
    }

    /// Extends the span by `index`, which [`Span::check_next`] accepted.
    pub(crate) fn push(&mut self, index: u64) {
        if self.is_empty() {
            self.first = index;
        }
        self.last = index;
    }

    /// Drops indexes above `after`; everything if `after` is below `first`.
    pub(crate) fn truncate_after(&mut self, after: u64) {
        if after < self.first {
            *self = Span::default();
        } else if after < self.last {
            self.last = after;
        }
    }
}

/// One segment as the layout sees it.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    /// The live entries in this segment. Entries written here and later
    /// truncated are not counted.
    pub(crate) live: Span,
}

/// The segments in order, the last one being written.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    pub(crate) segments: Vec<Segment>,
    /// The segment holding the last state record, if any was written.
    pub(crate) state_seq: Option<u64>,
}

impl Layout {
    /// The live entries of the whole log. Live entries are consecutive and
    /// ascend through the segments, so this is the first and last non-empty span.
    pub(crate) fn span(&self) -> Span {
        let mut live = self
            .segments
            .iter()
            .map(|s| s.live)
            .filter(|s| !s.is_empty());
        match (live.next(), live.next_back()) {
            (Some(first), last) => Span {
                first: first.first,
                last: last.unwrap_or(first).last,
            },
            (None, _) => Span::default(),
        }
    }

    /// Accounts for `record`, just written to the last segment.
    pub(crate) fn apply(&mut self, record: &Record) -> Result<(), WalError> {
        match record {
            Record::Entry(entry) => {
                self.span().check_next(entry.index)?;
                if let Some(segment) = self.segments.last_mut() {
                    segment.live.push(entry.index);
                }
            }
            Record::State(_) => self.state_seq = self.segments.last().map(|s| s.seq),
            Record::Truncate { after } => {
                for segment in &mut self.segments {
                    segment.live.truncate_after(*after);
                }
            }
        }
        Ok(())
    }

    /// How many segments, from the oldest, hold no live entry at or above
    /// `index`. Only a prefix counts: deleting a segment from the middle would
    /// take truncate records with it that later segments rely on. The last
    /// segment, being written, never counts.
    pub(crate) fn purgeable(&self, index: u64) -> usize {
        let sealed = self.segments.len().saturating_sub(1);
        self.segments[..sealed]
            .iter()
            .take_while(|s| s.live.is_empty() || s.live.last < index)
            .count()
    }

    /// Whether the last state record lives in the first `count` segments.
    pub(crate) fn state_in_first(&self, count: usize) -> bool {
        match (self.state_seq, self.segments.get(count)) {
            (Some(state_seq), Some(kept)) => state_seq < kept.seq,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::Entry;

    /// Starts a new, empty segment, as `Wal` does when it rolls.
    fn roll(layout: &mut Layout) {
        let seq = layout.segments.len() as u64;
        layout.segments.push(Segment {
            seq,
            path: PathBuf::from(seq.to_string()),
            live: Span::default(),
        });
    }

    fn entry(index: u64) -> Record {
        Record::Entry(Entry {
            index,
            term: 1,
            data: Vec::new(),
        })
    }

    #[test]
    fn truncating_below_the_first_index_empties_the_span() {
        let mut span = Span { first: 5, last: 9 };
        span.truncate_after(7);
        assert_eq!(span, Span { first: 5, last: 7 });
        span.truncate_after(4);
        assert!(span.is_empty());
        assert!(span.check_next(100).is_ok());
    }

    #[test]
    fn a_truncated_segment_is_purgeable_only_behind_its_elders() {
        // Segment 0 holds 1..=4, segment 1 held 5..=8 but a truncate in
        // segment 2 cut the log back to 3 and it went on with 4..=5.
        let mut layout = Layout::default();
        roll(&mut layout);
        for i in 1..=4 {
            layout.apply(&entry(i)).unwrap();
        }
        roll(&mut layout);
        for i in 5..=8 {
            layout.apply(&entry(i)).unwrap();
        }
        roll(&mut layout);
        layout.apply(&Record::Truncate { after: 3 }).unwrap();
        layout.apply(&entry(4)).unwrap();
        layout.apply(&entry(5)).unwrap();

        assert_eq!(layout.span(), Span { first: 1, last: 5 });
        assert!(layout.segments[1].live.is_empty());
        assert_eq!(layout.purgeable(3), 0, "segment 0 still holds index 3");
        assert_eq!(
            layout.purgeable(4),
            2,
            "segments 0 and 1 hold nothing live at 4"
        );
        assert_eq!(layout.purgeable(100), 2, "the last segment is never purged");
    }
}
