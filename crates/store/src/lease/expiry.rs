//! The leader's lease check: every `lease_check_interval`, a revoke is
//! proposed for each lease past its deadline, so its keys are deleted
//! through the log, at one revision, on every member.

use std::sync::{Arc, Weak};

use tokio::time::Instant;

use super::Leases;
use crate::shared::Shared;

impl Leases {
    /// A member that just became leader gives every lease a full TTL:
    /// keep-alives went to the old leader. False if a lock was poisoned.
    fn renew_all(&self, shared: &Shared) -> bool {
        let (Ok(mvcc), Ok(mut lessor)) = (shared.mvcc.read(), self.lessor.lock()) else {
            return false;
        };
        let now = Instant::now();
        for (id, lease) in mvcc.leases() {
            lessor.renew(*id, lease.ttl, now);
        }
        true
    }

    /// The leases past their deadline; None if a lock was poisoned.
    fn expired(&self, shared: &Shared) -> Option<Vec<i64>> {
        let (Ok(mvcc), Ok(mut lessor)) = (shared.mvcc.read(), self.lessor.lock()) else {
            return None;
        };
        Some(lessor.expired(mvcc.leases(), Instant::now()))
    }

    /// A revoke of lease `id` is in flight: a fresh deadline keeps it from
    /// being proposed again meanwhile.
    fn revoking(&self, id: i64) {
        if let Ok(mut lessor) = self.lessor.lock() {
            lessor.renew(id, 1, Instant::now());
        }
    }
}

/// Every `lease_check_interval`, while this member leads, proposes a revoke
/// for each expired lease through `propose_revoke` (true if it was handed to
/// the raft node). Ends when the member stops or is gone.
pub(crate) async fn expire_leases(
    shared: Weak<Shared>,
    leases: Arc<Leases>,
    propose_revoke: impl Fn(i64) -> bool,
) {
    let Some(strong) = shared.upgrade() else {
        return;
    };
    let (interval, stop) = (strong.config.lease_check_interval, strong.stop.clone());
    drop(strong);
    let mut ticker = tokio::time::interval(interval);
    let mut led = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // Only the leader decides that a lease expired. A new leader first
        // gives every lease a full TTL: keep-alives went to the old one.
        let leads = shared
            .raft_status
            .lock()
            .map(|s| s.is_leader())
            .unwrap_or(false);
        if !leads {
            led = false;
            continue;
        }
        if !led {
            led = true;
            if !leases.renew_all(&shared) {
                return;
            }
            continue;
        }
        let Some(expired) = leases.expired(&shared) else {
            return;
        };
        for id in expired {
            tracing::info!(lease = id, "lease expired; revoking it");
            if propose_revoke(id) {
                leases.revoking(id);
            }
        }
    }
}
