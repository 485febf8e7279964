//! Leases as replicated state: which leases exist, their granted TTL, and which
//! keys are attached to them.
//!
//! When a lease ends (revoked by a client, or expired), every key attached to it
//! is deleted in one revision. *When* a lease expires is not part of this state:
//! the leader keeps the deadlines in memory (see `crate::lease`) and proposes a revoke
//! through the log, so every member deletes the same keys at the same revision.
//!
//! # Caveats
//! As in etcd, deadlines are not persisted: after a restart every lease gets its
//! full TTL again.

use std::collections::BTreeSet;

use skiff_proto::etcdserverpb::{
    DeleteRangeRequest, LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest,
    LeaseRevokeResponse,
};

use super::{header, Mvcc, WriteTxn};
use crate::error::{Result, StoreError};

/// The largest TTL a lease may be granted, in seconds (etcd's `MaxLeaseTTL`).
pub(crate) const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// One live lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The TTL it was granted, in seconds.
    pub(crate) ttl: i64,
    /// The keys that are deleted when it ends.
    pub(crate) keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    pub(crate) fn new(ttl: i64) -> Self {
        Lease {
            ttl,
            keys: BTreeSet::new(),
        }
    }
}

impl Mvcc {
    /// Moves `key` from lease `from` to lease `to` (0 = no lease).
    pub(super) fn move_key_lease(&mut self, key: &[u8], from: i64, to: i64) {
        if from == to {
            return;
        }
        if let Some(lease) = self.leases.get_mut(&from) {
            lease.keys.remove(key);
        }
        if let Some(lease) = self.leases.get_mut(&to) {
            lease.keys.insert(key.to_vec());
        }
    }
}

impl WriteTxn<'_> {
    pub(super) fn lease_grant(&mut self, req: &LeaseGrantRequest) -> Result<LeaseGrantResponse> {
        if req.id <= 0 {
            return Err(StoreError::InvalidRequest(
                "lease ID must be positive".into(),
            ));
        }
        if req.ttl > MAX_LEASE_TTL {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        if self.mvcc.leases.contains_key(&req.id) {
            return Err(StoreError::LeaseExists);
        }
        self.mvcc.leases.insert(req.id, Lease::new(req.ttl));
        self.mvcc.backend.put_lease(req.id, req.ttl);
        Ok(LeaseGrantResponse {
            header: header(self.mvcc.current),
            id: req.id,
            ttl: req.ttl,
            error: String::new(),
        })
    }

    pub(super) fn lease_revoke(&mut self, req: &LeaseRevokeRequest) -> Result<LeaseRevokeResponse> {
        let lease = self
            .mvcc
            .leases
            .get(&req.id)
            .ok_or(StoreError::LeaseNotFound)?;
        let keys: Vec<Vec<u8>> = lease.keys.iter().cloned().collect();
        for key in keys {
            self.delete_range(&DeleteRangeRequest {
                key,
                ..Default::default()
            })?;
        }
        self.mvcc.leases.remove(&req.id);
        self.mvcc.backend.remove_lease(req.id);
        Ok(LeaseRevokeResponse {
            header: header(self.read_rev()),
        })
    }
}
