//! The MVCC state machine: etcd's multi-version key space.
//!
//! Every change is kept under the revision that made it, so a read can ask for
//! the key space as it was at any revision that compaction has not yet dropped
//! (see the etcd data model: <https://etcd.io/docs/v3.5/learning/data_model/>).
//!
//! The state machine is driven by one function, [`Mvcc::apply`]: given a log
//! entry and its index, it changes the state deterministically — the same entries
//! in the same order always give the same revisions, values and events on every
//! member. Reads ([`Mvcc::range`]) never change anything.
//!
//! # Layout
//! - `key_index`: key → revisions, in memory.
//! - `backend`: revision → value, in sled, written in atomic batches.
//! - `range`: etcd's Range rules (range_end, limit, sort, filters, count).
//! - `txn`: compares, branches, and the checks a txn must pass before it runs.
//! - `lease`: leases and the keys attached to them, as replicated state.
//! - `snapshot`: the whole state as one checksummed stream, and restoring from one.
//!
//! # Caveats
//! Compaction runs inside the apply that requests it, not in the background in
//! small batches as etcd's does: a compaction of a large history delays the
//! writes behind it. Auth and its revision are not modelled.

mod backend;
mod key_index;
mod lease;
mod members;
mod range;
mod run;
pub(crate) mod snapshot;
mod txn;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use skiff_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    ResponseHeader, TxnRequest, TxnResponse,
};
use skiff_proto::mvccpb::{event::EventType, Event, KeyValue};
use skiff_proto::store::{log_entry, LogEntry};

use crate::error::{Result, StoreError};
use crate::revision::Revision;
pub(crate) use backend::open_sled;
use backend::{Backend, Record, APPLIED_INDEX, COMPACT_REVISION, CURRENT_REVISION};
use key_index::KeyIndex;
pub(crate) use lease::{Lease, MAX_LEASE_TTL};
pub(crate) use members::MemberChange;
pub(crate) use range::in_range;
pub(crate) use txn::{validate_put, validate_txn, MAX_TXN_OPS};

/// What applying one log entry produced.
///
/// Events carry `prev_kv` only when the request itself read the old value
/// (`prev_kv` or `ignore_value`); the watch hub fills it in for the watchers that
/// ask for it.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The store's revision after the entry.
    pub(crate) revision: i64,
    /// The response for the client that proposed the entry.
    pub(crate) response: Response,
    /// The changes, in order, for watchers.
    pub(crate) events: Vec<Event>,
}

/// The response to one applied request.
#[derive(Debug)]
pub(crate) enum Response {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compaction(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    /// A member's announcement was recorded.
    MemberAttributes,
    /// A lease was renewed; its granted TTL.
    LeaseKeepAlive(i64),
}

/// The key space at every revision not yet compacted, plus leases.
pub(crate) struct Mvcc {
    backend: Backend,
    index: BTreeMap<Vec<u8>, KeyIndex>,
    leases: BTreeMap<i64, Lease>,
    /// The newest revision; a fresh store is at revision 1, as etcd is.
    current: i64,
    /// Reads below this revision fail with `Compacted`.
    compacted: i64,
    /// The index of the last log entry applied.
    applied_index: u64,
    /// The cluster's members, by ID.
    members: BTreeMap<u64, skiff_proto::store::Member>,
    /// Every member ever removed: their IDs may never return (etcd's
    /// `members_removed`).
    removed: BTreeSet<u64>,
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl Mvcc {
    /// A handle on the sled tree under this state machine.
    pub(crate) fn sled_tree(&self) -> sled::Tree {
        self.backend.sled_tree()
    }

    /// Opens the state held in `tree`, rebuilding the in-memory index from it.
    pub(crate) fn open(tree: sled::Tree) -> Result<Self> {
        let mut mvcc = Mvcc {
            backend: Backend::new(tree)?,
            index: BTreeMap::new(),
            leases: BTreeMap::new(),
            current: 1,
            compacted: 0,
            applied_index: 0,
            members: BTreeMap::new(),
            removed: BTreeSet::new(),
        };
        mvcc.restore()?;
        Ok(mvcc)
    }

    /// Rebuilds everything held in memory (meta, key index, leases and their
    /// keys) from what sled holds, replacing what was there.
    fn restore(&mut self) -> Result<()> {
        self.applied_index = self.backend.meta(APPLIED_INDEX)?.unwrap_or(0) as u64;
        self.current = self.backend.meta(CURRENT_REVISION)?.unwrap_or(1);
        self.compacted = self.backend.meta(COMPACT_REVISION)?.unwrap_or(0);
        self.index.clear();
        self.leases.clear();
        self.restore_members()?;
        for lease in self.backend.leases() {
            let (id, ttl) = lease?;
            self.leases.insert(id, Lease::new(ttl));
        }
        for item in self.backend.scan(0, i64::MAX - 1) {
            let (rev, record) = item?;
            let key_index = self.index.entry(record.kv.key.clone()).or_default();
            if record.tombstone {
                key_index.tombstone(rev);
            } else {
                let kv = &record.kv;
                key_index.restore(rev, kv.lease, kv.create_revision, kv.version);
            }
        }
        // The key index knows each live key's lease; attach the keys to their leases.
        for (key, key_index) in &self.index {
            if let Some(lease) = self.leases.get_mut(&key_index.lease()) {
                lease.keys.insert(key.clone());
            }
        }
        Ok(())
    }

    /// The newest revision.
    pub(crate) fn current_revision(&self) -> i64 {
        self.current
    }

    /// The revision history is compacted to.
    pub(crate) fn compacted_revision(&self) -> i64 {
        self.compacted
    }

    /// The index of the last applied log entry.
    pub(crate) fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Applies one log entry at `index`. A request that fails (say, an unknown
    /// lease) changes nothing but still consumes its index, as in etcd.
    pub(crate) fn apply(&mut self, index: u64, entry: &LogEntry) -> Result<Applied> {
        self.set_applied(index);
        let Some(request) = &entry.request else {
            return Err(StoreError::InvalidRequest("empty log entry".into()));
        };
        match request {
            log_entry::Request::MemberAttributes(member) => {
                self.apply_member_attributes(member);
                return Ok(Applied {
                    revision: self.current,
                    response: Response::MemberAttributes,
                    events: Vec::new(),
                });
            }
            log_entry::Request::LeaseKeepAlive(req) => {
                let ttl = self
                    .leases
                    .get(&req.id)
                    .map(|l| l.ttl)
                    .ok_or(StoreError::LeaseNotFound)?;
                return Ok(Applied {
                    revision: self.current,
                    response: Response::LeaseKeepAlive(ttl),
                    events: Vec::new(),
                });
            }
            _ => {}
        }
        let mut txn = WriteTxn::new(self);
        let response = match request {
            log_entry::Request::Put(req) => txn.checked_put(req).map(Response::Put),
            log_entry::Request::DeleteRange(req) => {
                txn.delete_range(req).map(Response::DeleteRange)
            }
            log_entry::Request::Txn(req) => txn.txn(req).map(Response::Txn),
            log_entry::Request::Compaction(req) => txn.compact(req).map(Response::Compaction),
            log_entry::Request::LeaseGrant(req) => txn.lease_grant(req).map(Response::LeaseGrant),
            log_entry::Request::LeaseRevoke(req) => {
                txn.lease_revoke(req).map(Response::LeaseRevoke)
            }
            log_entry::Request::MemberAttributes(_) | log_entry::Request::LeaseKeepAlive(_) => {
                unreachable!("handled above")
            }
        };
        let (revision, events) = txn.end();
        Ok(Applied {
            revision,
            response: response?,
            events,
        })
    }

    /// Moves the applied index forward to `index`.
    fn set_applied(&mut self, index: u64) {
        assert!(
            index > self.applied_index,
            "log index {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
        self.backend.set_meta(APPLIED_INDEX, index as i64);
    }

    /// Writes everything applied since the last commit to sled in one atomic batch.
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.backend.commit()
    }

    /// A read of the current key space, or of an older revision.
    pub(crate) fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let mut resp = range::range(self, req, self.current)?;
        resp.header = header(self.current);
        Ok(resp)
    }

    /// The value of `key` as of revision `at`, if it existed then.
    pub(crate) fn get_at(&self, key: &[u8], at: i64) -> Result<Option<KeyValue>> {
        let Some(rev) = self.index.get(key).and_then(|ki| ki.get(at)) else {
            return Ok(None);
        };
        self.record(rev).map(|r| r.map(|r| r.kv))
    }

    fn record(&self, rev: Revision) -> Result<Option<Record>> {
        self.backend.get(rev)
    }

    /// Checks a read revision against compaction and the head.
    fn check_revision(&self, rev: i64) -> Result<()> {
        if rev > self.current {
            return Err(StoreError::FutureRevision);
        }
        if rev < self.compacted {
            return Err(StoreError::Compacted {
                compact_revision: self.compacted,
            });
        }
        Ok(())
    }

    /// Changes with `from <= revision <= to` on keys in `[key, range_end)`, in
    /// revision order, each with the key's previous value as `prev_kv`: what a
    /// watcher that fell behind must be sent.
    pub(crate) fn history(
        &self,
        from: i64,
        to: i64,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<Vec<Event>> {
        if from < self.compacted {
            return Err(StoreError::Compacted {
                compact_revision: self.compacted,
            });
        }
        let mut events = Vec::new();
        for item in self.backend.scan(from, to) {
            let (rev, record) = item?;
            if !range::in_range(&record.kv.key, key, range_end) {
                continue;
            }
            let prev_kv = if record.kv.version == 1 && !record.tombstone {
                None
            } else {
                self.get_at(&record.kv.key, rev.main - 1)?
            };
            let kind = if record.tombstone {
                EventType::Delete
            } else {
                EventType::Put
            };
            events.push(Event {
                r#type: kind as i32,
                kv: Some(record.kv),
                prev_kv,
            });
        }
        Ok(events)
    }

    /// A CRC-32 over every stored change up to `rev`: equal on members that
    /// applied the same log (etcd's `HashKV`).
    pub(crate) fn hash_kv(&self, rev: i64) -> Result<u32> {
        let rev = if rev <= 0 { self.current } else { rev };
        self.check_revision(rev)?;
        let mut hasher = crc32fast::Hasher::new();
        for item in self.backend.scan(0, rev) {
            let (rev, record) = item?;
            hasher.update(&rev.to_bytes());
            hasher.update(&[u8::from(record.tombstone)]);
            hasher.update(&record.kv.key);
            hasher.update(&record.kv.value);
        }
        Ok(hasher.finalize())
    }

    /// The live leases, by ID.
    pub(crate) fn leases(&self) -> &BTreeMap<i64, Lease> {
        &self.leases
    }

    /// The number of keys alive now.
    pub(crate) fn key_count(&self) -> usize {
        self.index.values().filter(|ki| ki.is_alive()).count()
    }
}

/// The changes of one log entry: one revision, with a sub-revision per change.
struct WriteTxn<'a> {
    mvcc: &'a mut Mvcc,
    /// The revision this entry writes at, if it changes anything.
    rev: i64,
    /// Changes made so far.
    changes: i64,
    events: Vec<Event>,
}

impl<'a> WriteTxn<'a> {
    fn new(mvcc: &'a mut Mvcc) -> Self {
        let rev = mvcc.current + 1;
        WriteTxn {
            mvcc,
            rev,
            changes: 0,
            events: Vec::new(),
        }
    }

    /// The revision reads inside this entry see: its own changes included.
    fn read_rev(&self) -> i64 {
        if self.changes > 0 {
            self.rev
        } else {
            self.mvcc.current
        }
    }

    fn next_revision(&mut self) -> Revision {
        let rev = Revision::new(self.rev, self.changes);
        self.changes += 1;
        rev
    }

    /// Finishes the entry: the store's revision advances only if something changed.
    fn end(self) -> (i64, Vec<Event>) {
        if self.changes > 0 {
            self.mvcc.current = self.rev;
            self.mvcc.backend.set_meta(CURRENT_REVISION, self.rev);
        }
        (self.mvcc.current, self.events)
    }

    /// Stores one change at `rev` and queues its event for watchers.
    fn record_change(
        &mut self,
        rev: Revision,
        kind: EventType,
        kv: KeyValue,
        prev_kv: Option<KeyValue>,
    ) {
        let record = Record {
            tombstone: kind == EventType::Delete,
            kv: kv.clone(),
        };
        self.mvcc.backend.put(rev, record);
        self.events.push(Event {
            r#type: kind as i32,
            kv: Some(kv),
            prev_kv,
        });
    }

    fn checked_put(&mut self, req: &PutRequest) -> Result<PutResponse> {
        txn::check_put(self.mvcc, req)?;
        self.put(req)
    }

    /// A put whose preconditions were checked. The old value is read only when
    /// the response or `ignore_value` needs it; watchers that want it get it
    /// from the hub, which reads it only if such a watcher exists.
    fn put(&mut self, req: &PutRequest) -> Result<PutResponse> {
        let existing = self.mvcc.index.get(&req.key).filter(|ki| ki.is_alive());
        let (created, version, prev_lease) = match existing {
            Some(ki) => (ki.created(), ki.version(), ki.lease()),
            None => (None, 0, 0),
        };
        let prev = if existing.is_some() && (req.prev_kv || req.ignore_value) {
            self.mvcc.get_at(&req.key, self.read_rev())?
        } else {
            None
        };
        let value = match (&prev, req.ignore_value) {
            (Some(prev), true) => prev.value.clone(),
            _ => req.value.clone(),
        };
        let lease = if req.ignore_lease {
            prev_lease
        } else {
            req.lease
        };
        let rev = self.next_revision();
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision: created.unwrap_or(rev.main),
            mod_revision: rev.main,
            version: version + 1,
            value,
            lease,
        };
        self.mvcc
            .index
            .entry(req.key.clone())
            .or_default()
            .put(rev, lease);
        self.mvcc.move_key_lease(&req.key, prev_lease, lease);
        self.record_change(rev, EventType::Put, kv, prev.clone());
        Ok(PutResponse {
            header: header(rev.main),
            prev_kv: if req.prev_kv { prev } else { None },
        })
    }

    fn delete_range(&mut self, req: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        if req.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        let at = self.read_rev();
        let keys: Vec<Vec<u8>> = range::keys_in(&self.mvcc.index, &req.key, &req.range_end)
            .filter(|(_, ki)| ki.get(at).is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let mut prev_kvs = Vec::new();
        for key in &keys {
            let prev = if req.prev_kv {
                self.mvcc.get_at(key, at)?
            } else {
                None
            };
            let rev = self.next_revision();
            let mut prev_lease = 0;
            if let Some(ki) = self.mvcc.index.get_mut(key) {
                prev_lease = ki.lease();
                ki.tombstone(rev);
            }
            self.mvcc.move_key_lease(key, prev_lease, 0);
            let kv = KeyValue {
                key: key.clone(),
                mod_revision: rev.main,
                ..Default::default()
            };
            self.record_change(rev, EventType::Delete, kv, prev.clone());
            prev_kvs.extend(prev);
        }
        Ok(DeleteRangeResponse {
            header: header(self.read_rev()),
            deleted: keys.len() as i64,
            prev_kvs: if req.prev_kv { prev_kvs } else { Vec::new() },
        })
    }

    fn txn(&mut self, req: &TxnRequest) -> Result<TxnResponse> {
        txn::apply(self, req)
    }

    fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let at = self.read_rev();
        let rev = if req.revision > 0 { req.revision } else { at };
        let mut resp = range::range(self.mvcc, req, rev)?;
        resp.header = header(at);
        Ok(resp)
    }

    fn compact(&mut self, req: &CompactionRequest) -> Result<CompactionResponse> {
        let rev = req.revision;
        if rev <= self.mvcc.compacted {
            return Err(StoreError::Compacted {
                compact_revision: self.mvcc.compacted,
            });
        }
        if rev > self.mvcc.current {
            return Err(StoreError::FutureRevision);
        }
        self.mvcc.compact(rev)?;
        Ok(CompactionResponse {
            header: header(self.mvcc.current),
        })
    }
}

impl Mvcc {
    /// Drops history below `rev`: from the index, then from disk.
    fn compact(&mut self, rev: i64) -> Result<()> {
        let mut keep = HashSet::new();
        self.index.retain(|_, ki| !ki.compact(rev, &mut keep));
        let mut doomed = self.backend.revisions_below(rev + 1)?;
        doomed.retain(|r| !keep.contains(r));
        for r in doomed {
            self.backend.remove(r);
        }
        self.compacted = rev;
        self.backend.set_meta(COMPACT_REVISION, rev);
        tracing::info!(revision = rev, "compacted history");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
