//! Expectations: what a controller has asked for and not yet seen in its cache.
//!
//! An informer's cache lags the API server. A ReplicaSet that has just created
//! three pods would, reading a cache that does not show them yet, create three
//! more. As Kubernetes' `ControllerExpectations`
//! (pkg/controller/controller_utils.go), a controller records how many
//! creations and deletions it expects to observe for a key, the informer's
//! handlers count them down, and the controller does not manage replicas for
//! that key until they are all seen — or until they are five minutes old,
//! when the cache is assumed to have lost them.
//!
//! # Caveats
//! Expectations live in memory: after a restart there are none, and the first
//! reconcile trusts a freshly listed cache, which is as current as a list is.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// How long unmet expectations are trusted (Kubernetes' `ExpectationsTimeout`).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Copy, Debug)]
struct Pending {
    adds: i64,
    deletes: i64,
    set_at: Timestamp,
}

/// Pending creations and deletions per controller key.
#[derive(Debug)]
pub struct Expectations<K> {
    pending: HashMap<K, Pending>,
}

impl<K> Default for Expectations<K> {
    fn default() -> Self {
        Expectations {
            pending: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> Expectations<K> {
    /// Expects `adds` creations and `deletes` deletions for `key` from `now`.
    pub fn expect(&mut self, key: &K, adds: usize, deletes: usize, now: Timestamp) {
        self.pending.insert(
            key.clone(),
            Pending {
                adds: adds as i64,
                deletes: deletes as i64,
                set_at: now,
            },
        );
    }

    /// One creation for `key` was seen (or will never happen). True when it
    /// was the last change expected: the controller, waiting on its cache,
    /// may act again, so it is worth a sync at once.
    pub fn creation_observed(&mut self, key: &K) -> bool {
        self.observed(key, |p| &mut p.adds)
    }

    /// One deletion for `key` was seen (or will never happen). True when it
    /// was the last change expected, as for [`Expectations::creation_observed`].
    pub fn deletion_observed(&mut self, key: &K) -> bool {
        self.observed(key, |p| &mut p.deletes)
    }

    fn observed(&mut self, key: &K, count: impl Fn(&mut Pending) -> &mut i64) -> bool {
        let Some(p) = self.pending.get_mut(key) else {
            return false;
        };
        let count = count(p);
        *count -= 1;
        *count == 0 && p.adds <= 0 && p.deletes <= 0
    }

    /// Whether the controller may act on `key`: nothing pending, everything
    /// seen, or the expectations are older than [`EXPECTATIONS_TIMEOUT`].
    pub fn satisfied(&self, key: &K, now: Timestamp) -> bool {
        match self.pending.get(key) {
            None => true,
            Some(p) => {
                (p.adds <= 0 && p.deletes <= 0)
                    || crate::pods::elapsed(p.set_at, now) > EXPECTATIONS_TIMEOUT
            }
        }
    }

    /// Forgets `key` (its controller is gone).
    pub fn forget(&mut self, key: &K) {
        self.pending.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::at;

    #[test]
    fn satisfied_once_every_expected_change_is_seen_or_timed_out() {
        let mut e = Expectations::default();
        assert!(e.satisfied(&"rs", at(0)));
        e.expect(&"rs", 2, 1, at(0));
        assert!(!e.creation_observed(&"rs"));
        assert!(!e.deletion_observed(&"rs"));
        assert!(!e.satisfied(&"rs", at(1)));
        assert!(e.creation_observed(&"rs"), "the last expected change");
        assert!(e.satisfied(&"rs", at(1)));
        assert!(!e.creation_observed(&"rs"), "one more than expected");
        e.expect(&"rs", 1, 0, at(10));
        assert!(!e.satisfied(&"rs", at(10 + 300)));
        assert!(e.satisfied(&"rs", at(10 + 301)));
    }
}
