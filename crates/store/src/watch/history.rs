//! Where catching-up watchers read past events from.

use skiff_proto::mvccpb::{Event, KeyValue};

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

    /// The version of `key` just before `revision`, if it existed then: the
    /// `prev_kv` of a change made at `revision`.
    fn prev_kv(&self, key: &[u8], revision: i64) -> Option<KeyValue>;
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
