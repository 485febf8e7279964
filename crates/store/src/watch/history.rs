//! Where catching-up watchers read past events from.

use skiff_proto::mvccpb::Event;

/// Where catching-up watchers read past events from (implemented by the MVCC
/// store; mock it in tests).
pub trait WatchHistory: Send + Sync + 'static {
    /// All events with mod_revision in `[from, to]` on keys in `[key, range_end)`
    /// (etcd range rules: empty `range_end` = the single key, `"\0"` = all keys
    /// `>= key`), in revision order, each with `prev_kv` filled when the key had
    /// a previous version.
    fn events(
        &self,
        from: i64,
        to: i64,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<Vec<Event>, HistoryError>;
}

/// Why [`WatchHistory::events`] could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// `from` lies below the compaction: those events are gone. The message is
    /// etcd's own, which clients match on.
    #[error("mvcc: required revision has been compacted")]
    Compacted {
        /// The revision the store was compacted at.
        compact_revision: i64,
    },
    /// The store failed to read its history.
    #[error("mvcc: reading history failed: {0}")]
    Other(String),
}

/// Whether `key` lies in the watched range `[start, range_end)`, with etcd's rules:
/// an empty `range_end` means the single key `start`, and `"\0"` means every key
/// `>= start`.
pub(crate) fn in_range(key: &[u8], start: &[u8], range_end: &[u8]) -> bool {
    match range_end {
        [] => key == start,
        [0] => key >= start,
        end => key >= start && key < end,
    }
}

#[cfg(test)]
mod tests {
    use super::in_range;

    #[test]
    fn range_rules_follow_etcd() {
        assert!(in_range(b"a", b"a", b""));
        assert!(!in_range(b"ab", b"a", b""));
        assert!(in_range(b"zzz", b"a", b"\0"));
        assert!(!in_range(b"0", b"a", b"\0"));
        assert!(in_range(b"a/x", b"a/", b"a0"));
        assert!(!in_range(b"a0", b"a/", b"a0"));
    }
}
