//! etcd's Range rules.
//!
//! - `range_end` empty: just `key`; `"\0"`: every key ≥ `key`; otherwise the
//!   half-open interval `[key, range_end)`. (The etcdctl `--prefix` flag sends
//!   `range_end` = `key` with its last byte plus one.)
//! - `count` is the number of keys in the range at the read revision, before
//!   filters and `limit`; `more` says that `limit` cut the result short.
//! - A non-key sort target with order NONE sorts ascending; filters on
//!   mod/create revision apply before `limit`.
//!
//! # Caveats
//! Ties in a sort by version, revision or value keep key order; etcd leaves
//! their order unspecified.

use std::collections::BTreeMap;
use std::ops::Bound;

use skiff_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use skiff_proto::etcdserverpb::{RangeRequest, RangeResponse};
use skiff_proto::mvccpb::KeyValue;

use super::key_index::KeyIndex;
use super::Mvcc;
use crate::error::{Result, StoreError};
use crate::revision::Revision;

/// Whether `k` falls in the range `[key, range_end)` under etcd's rules (used by
/// reads, compares and watchers alike).
pub(crate) fn in_range(k: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    match range_end {
        [] => k == key,
        [0] => k >= key,
        end => k >= key && k < end,
    }
}

/// The index entries of keys in the range, in key order.
pub(super) fn keys_in<'a>(
    index: &'a BTreeMap<Vec<u8>, KeyIndex>,
    key: &[u8],
    range_end: &[u8],
) -> Box<dyn DoubleEndedIterator<Item = (&'a Vec<u8>, &'a KeyIndex)> + 'a> {
    let start = Bound::Included(key.to_vec());
    match range_end {
        [] => Box::new(index.get_key_value(key).into_iter()),
        [0] => Box::new(index.range((start, Bound::Unbounded))),
        end if end <= key => Box::new(std::iter::empty()),
        end => Box::new(index.range((start, Bound::Excluded(end.to_vec())))),
    }
}

/// Answers `req` at revision `rev` (`req.revision` when set, else `default_rev`).
pub(super) fn range(mvcc: &Mvcc, req: &RangeRequest, default_rev: i64) -> Result<RangeResponse> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    let rev = if req.revision > 0 {
        req.revision
    } else {
        default_rev
    };
    if rev > default_rev.max(mvcc.current) {
        return Err(StoreError::FutureRevision);
    }
    if rev < mvcc.compacted {
        return Err(StoreError::Compacted {
            compact_revision: mvcc.compacted,
        });
    }

    let order = effective_order(req);
    let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let by_key = target == SortTarget::Key && order != SortOrder::Descend;
    let descending_keys = target == SortTarget::Key && order == SortOrder::Descend;

    let mut matching: Vec<Revision> = Vec::new();
    let entries = keys_in(&mvcc.index, &req.key, &req.range_end);
    let entries: Box<dyn Iterator<Item = _>> = if descending_keys {
        Box::new(entries.rev())
    } else {
        Box::new(entries)
    };
    for (_, ki) in entries {
        if let Some(r) = ki.get(rev) {
            matching.push(r);
        }
    }
    let count = matching.len() as i64;
    if req.count_only {
        return Ok(RangeResponse {
            count,
            ..Default::default()
        });
    }

    // Without filters or a non-key sort, only limit+1 values need reading.
    let limit = usize::try_from(req.limit).unwrap_or(0);
    if limit > 0 && !filtered && (by_key || descending_keys) {
        matching.truncate(limit + 1);
    }
    let mut kvs = Vec::with_capacity(matching.len());
    for r in matching {
        let record = mvcc.record(r)?.ok_or_else(|| {
            StoreError::Storage(format!("index names revision {r} but it is not stored"))
        })?;
        if passes_filters(req, &record.kv) {
            kvs.push(record.kv);
        }
    }
    if !(by_key || descending_keys) {
        sort(&mut kvs, target, order);
    }
    let more = limit > 0 && kvs.len() > limit;
    if more {
        kvs.truncate(limit);
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }
    Ok(RangeResponse {
        header: None,
        kvs,
        more,
        count,
    })
}

fn effective_order(req: &RangeRequest) -> SortOrder {
    let order = SortOrder::try_from(req.sort_order).unwrap_or(SortOrder::None);
    let target = SortTarget::try_from(req.sort_target).unwrap_or(SortTarget::Key);
    if order == SortOrder::None && target != SortTarget::Key {
        SortOrder::Ascend
    } else {
        order
    }
}

fn passes_filters(req: &RangeRequest, kv: &KeyValue) -> bool {
    (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
        && (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
        && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
        && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
}

fn sort(kvs: &mut [KeyValue], target: SortTarget, order: SortOrder) {
    let cmp = |a: &KeyValue, b: &KeyValue| match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    };
    // Stable sorts, so ties stay in key order in both directions.
    if order == SortOrder::Descend {
        kvs.sort_by(|a, b| cmp(b, a));
    } else {
        kvs.sort_by(cmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_rules() {
        assert!(in_range(b"a", b"a", b""));
        assert!(!in_range(b"ab", b"a", b""));
        assert!(in_range(b"zzz", b"a", b"\0"));
        assert!(!in_range(b"a", b"b", b"\0"));
        assert!(in_range(b"a\xff", b"a", b"b"));
        assert!(!in_range(b"b", b"a", b"b"));
    }
}
