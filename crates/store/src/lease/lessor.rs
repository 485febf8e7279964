//! [`Lessor`]: the deadlines of the live leases, a plain value driven by the
//! caller's clock (an `Instant` passed in), so its rules are tested without
//! waiting.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::mvcc::Lease;

/// Deadlines of the live leases.
#[derive(Debug, Default)]
pub(crate) struct Lessor {
    deadlines: HashMap<i64, Instant>,
}

impl Lessor {
    /// Starts or restarts a lease's countdown from its full TTL.
    pub(crate) fn renew(&mut self, id: i64, ttl: i64, now: Instant) {
        self.deadlines
            .insert(id, now + Duration::from_secs(ttl.max(0) as u64));
    }

    /// Seconds left before the lease expires (rounded up), if it has a deadline.
    pub(crate) fn remaining(&self, id: i64, now: Instant) -> Option<i64> {
        let left = self.deadlines.get(&id)?.saturating_duration_since(now);
        Some(left.as_secs() as i64 + i64::from(left.subsec_nanos() > 0))
    }

    /// Brings deadlines in line with the leases that exist: new leases get their
    /// full TTL, deadlines of leases that are gone are dropped. Returns the IDs of
    /// leases past their deadline.
    pub(crate) fn expired(&mut self, leases: &BTreeMap<i64, Lease>, now: Instant) -> Vec<i64> {
        self.deadlines.retain(|id, _| leases.contains_key(id));
        for (id, lease) in leases {
            if !self.deadlines.contains_key(id) {
                self.renew(*id, lease.ttl, now);
            }
        }
        let mut expired: Vec<i64> = self
            .deadlines
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_ttl_unless_renewed() {
        let start = Instant::now();
        let leases = BTreeMap::from([(1, Lease::new(5)), (2, Lease::new(5))]);
        let mut lessor = Lessor::default();
        assert!(lessor.expired(&leases, start).is_empty());
        lessor.renew(2, 5, start + Duration::from_secs(4));
        assert_eq!(
            lessor.expired(&leases, start + Duration::from_secs(5)),
            vec![1]
        );
        assert_eq!(lessor.remaining(2, start + Duration::from_secs(5)), Some(4));
    }

    #[test]
    fn deadlines_of_revoked_leases_are_dropped() {
        let now = Instant::now();
        let mut lessor = Lessor::default();
        lessor.renew(9, 1, now);
        assert!(lessor
            .expired(&BTreeMap::new(), now + Duration::from_secs(2))
            .is_empty());
        assert_eq!(lessor.remaining(9, now), None);
    }
}
