//! The on-disk layout of the applied state, in one sled tree.
//!
//! ```text
//!   r <main:8><sub:8>   → <kind:1><mvccpb.KeyValue>    one change; kind 0 = put, 1 = tombstone
//!   l <lease id:8>      → <granted TTL:8>              a live lease
//!   m <name>            → <i64:8>                      applied_index, revision, compact_revision
//! ```
//!
//! Records are keyed by revision, not by key, so history reads (watch catch-up)
//! are one forward scan; the key → revisions map is rebuilt in memory at start
//! (see `key_index`). Everything one batch of log entries changes is written with
//! a single `sled::Batch`, applied atomically together with the applied index, so
//! sled always holds a state that some prefix of the log produced.
//!
//! # Caveats
//! sled's own flush is not relied on for durability: the write-ahead log is. After
//! a crash sled may be behind the log, and recovery replays the difference.

use std::collections::HashMap;

use prost::Message;
use skiff_proto::mvccpb::KeyValue;

use crate::error::{Result, StoreError};
use crate::revision::Revision;

const REV: u8 = b'r';
const LEASE: u8 = b'l';
const META: u8 = b'm';

/// Meta record names.
pub(crate) const APPLIED_INDEX: &str = "applied_index";
pub(crate) const CURRENT_REVISION: &str = "revision";
pub(crate) const COMPACT_REVISION: &str = "compact_revision";

/// One stored change.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub(crate) tombstone: bool,
    pub(crate) kv: KeyValue,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.kv.encoded_len());
        out.push(u8::from(self.tombstone));
        self.kv.encode(&mut out).expect("a Vec grows as needed");
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let (&kind, rest) = bytes
            .split_first()
            .ok_or_else(|| StoreError::Storage("empty record".into()))?;
        let kv =
            KeyValue::decode(rest).map_err(|e| StoreError::Storage(format!("bad record: {e}")))?;
        Ok(Record {
            tombstone: kind == 1,
            kv,
        })
    }
}

fn rev_key(rev: Revision) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = REV;
    key[1..].copy_from_slice(&rev.to_bytes());
    key
}

fn lease_key(id: i64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = LEASE;
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

fn meta_key(name: &str) -> Vec<u8> {
    let mut key = vec![META];
    key.extend_from_slice(name.as_bytes());
    key
}

fn read_i64(bytes: &[u8]) -> Result<i64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Storage(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(i64::from_be_bytes(arr))
}

/// sled plus the writes of the batch being applied, which reads must already see.
pub(crate) struct Backend {
    tree: sled::Tree,
    batch: sled::Batch,
    /// Records written or removed by the open batch (None = removed).
    pending: HashMap<Revision, Option<Record>>,
    dirty: bool,
}

impl Backend {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Backend {
            tree,
            batch: sled::Batch::default(),
            pending: HashMap::new(),
            dirty: false,
        }
    }

    /// The record of one revision.
    pub(crate) fn get(&self, rev: Revision) -> Result<Option<Record>> {
        if let Some(pending) = self.pending.get(&rev) {
            return Ok(pending.clone());
        }
        match self.tree.get(rev_key(rev))? {
            Some(bytes) => Ok(Some(Record::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn put(&mut self, rev: Revision, record: Record) {
        self.batch.insert(&rev_key(rev), record.encode());
        self.pending.insert(rev, Some(record));
        self.dirty = true;
    }

    pub(crate) fn remove(&mut self, rev: Revision) {
        self.batch.remove(&rev_key(rev));
        self.pending.insert(rev, None);
        self.dirty = true;
    }

    pub(crate) fn put_lease(&mut self, id: i64, ttl: i64) {
        self.batch.insert(&lease_key(id), &ttl.to_be_bytes());
        self.dirty = true;
    }

    pub(crate) fn remove_lease(&mut self, id: i64) {
        self.batch.remove(&lease_key(id));
        self.dirty = true;
    }

    pub(crate) fn set_meta(&mut self, name: &str, value: i64) {
        self.batch.insert(meta_key(name), &value.to_be_bytes());
        self.dirty = true;
    }

    pub(crate) fn meta(&self, name: &str) -> Result<Option<i64>> {
        self.tree
            .get(meta_key(name))?
            .map(|v| read_i64(&v))
            .transpose()
    }

    /// Writes the open batch atomically.
    pub(crate) fn commit(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.pending.clear();
        self.dirty = false;
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Every committed record with `from <= rev.main <= to`, in revision order.
    pub(crate) fn scan(
        &self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = Result<(Revision, Record)>> + '_ {
        let start = rev_key(Revision::new(from.max(0), 0));
        let end = rev_key(Revision::new(to.saturating_add(1), 0));
        self.tree.range(start..end).map(|item| {
            let (key, value) = item?;
            let rev = Revision::from_bytes(&key[1..])
                .ok_or_else(|| StoreError::Storage("bad revision key".into()))?;
            Ok((rev, Record::decode(&value)?))
        })
    }

    /// Every committed revision below `below` (main), keys only.
    pub(crate) fn revisions_below(
        &self,
        below: i64,
    ) -> impl Iterator<Item = Result<Revision>> + '_ {
        let start = rev_key(Revision::new(0, 0));
        let end = rev_key(Revision::new(below, 0));
        self.tree.range(start..end).map(|item| {
            let (key, _) = item?;
            Revision::from_bytes(&key[1..])
                .ok_or_else(|| StoreError::Storage("bad revision key".into()))
        })
    }

    /// Every committed lease with its granted TTL.
    pub(crate) fn leases(&self) -> impl Iterator<Item = Result<(i64, i64)>> + '_ {
        self.tree.scan_prefix([LEASE]).map(|item| {
            let (key, value) = item?;
            Ok((read_i64(&key[1..])?, read_i64(&value)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Backend::new(db.open_tree("kv").unwrap())
    }

    fn record(key: &str, rev: i64) -> Record {
        Record {
            tombstone: false,
            kv: KeyValue {
                key: key.into(),
                mod_revision: rev,
                ..Default::default()
            },
        }
    }

    #[test]
    fn uncommitted_writes_are_visible_to_reads() {
        let mut b = backend();
        b.put(Revision::new(1, 0), record("a", 1));
        assert_eq!(b.get(Revision::new(1, 0)).unwrap(), Some(record("a", 1)));
        b.commit().unwrap();
        assert_eq!(b.get(Revision::new(1, 0)).unwrap(), Some(record("a", 1)));
    }

    #[test]
    fn scan_is_in_revision_order_and_bounded() {
        let mut b = backend();
        for rev in [3, 1, 2, 300] {
            b.put(Revision::new(rev, 0), record("k", rev));
        }
        b.commit().unwrap();
        let revs: Vec<i64> = b.scan(2, 300).map(|r| r.unwrap().0.main).collect();
        assert_eq!(revs, vec![2, 3, 300]);
    }

    #[test]
    fn meta_and_leases_round_trip() {
        let mut b = backend();
        b.set_meta(APPLIED_INDEX, 9);
        b.put_lease(7, 30);
        b.commit().unwrap();
        assert_eq!(b.meta(APPLIED_INDEX).unwrap(), Some(9));
        assert_eq!(
            b.leases().map(|l| l.unwrap()).collect::<Vec<_>>(),
            vec![(7, 30)]
        );
    }
}
