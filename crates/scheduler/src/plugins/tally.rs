//! Sums over every node of a snapshot that a plugin keeps from one cycle to
//! the next: PodTopologySpread's matching pods per domain, InterPodAffinity's
//! pods per domain that its terms select. Counting them afresh walks every
//! node and every pod each cycle, which at thousands of nodes costs more than
//! the rest of the cycle; kept here, a sum is brought up to date from the
//! snapshot's change log, recounting only the nodes that changed since it
//! was last asked for.
//!
//! Each sum is remembered under a key naming everything its counts depend on
//! (for example the pod's namespace and constraints), so pods alike share one.
//!
//! # Caveats
//! At most [`MAX_TALLIES`] sums are kept per plugin; past that all are
//! dropped and counted afresh when next asked for.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::framework::{NodeInfo, Snapshot};

/// A sum to which one node's contribution can be added and from which it
/// can be taken away again.
pub(crate) trait Tally: Clone {
    /// What one node adds.
    type Contribution;
    /// Adds (`sign` 1) or takes away (-1) one node's contribution.
    fn apply(&mut self, contribution: &Self::Contribution, sign: i64);
}

/// Sums kept at most per plugin: one per kind of pod seen recently.
pub(crate) const MAX_TALLIES: usize = 64;

/// One remembered sum, and what it has counted.
struct Memo<T: Tally> {
    snapshot: u64,
    version: u64,
    per_node: HashMap<String, T::Contribution>,
    tally: Arc<T>,
}

/// A plugin's remembered sums by key.
pub(crate) struct Tallies<T: Tally> {
    memos: Mutex<HashMap<String, Memo<T>>>,
}

impl<T: Tally> Default for Tallies<T> {
    fn default() -> Self {
        Tallies {
            memos: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Tally> Tallies<T> {
    /// The sum under `key` over every node of `snapshot`: started from
    /// `empty` and counted over all nodes the first time, afterwards
    /// recounted only where nodes changed. `contribution` says what one
    /// node adds; for one key it must depend on the node alone.
    pub(crate) fn get(
        &self,
        key: String,
        snapshot: &Snapshot,
        empty: impl FnOnce() -> T,
        contribution: impl Fn(&T, &NodeInfo) -> T::Contribution,
    ) -> Arc<T> {
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        let changed = memos
            .get(&key)
            .filter(|m| m.snapshot == snapshot.id())
            .and_then(|m| snapshot.changed_since(m.version));
        let Some(changed) = changed else {
            let mut tally = empty();
            let mut per_node = HashMap::with_capacity(snapshot.len());
            for node in snapshot.nodes() {
                let c = contribution(&tally, node);
                tally.apply(&c, 1);
                per_node.insert(node.name().to_string(), c);
            }
            let tally = Arc::new(tally);
            if memos.len() >= MAX_TALLIES {
                memos.clear();
            }
            let memo = Memo {
                snapshot: snapshot.id(),
                version: snapshot.version(),
                per_node,
                tally: tally.clone(),
            };
            memos.insert(key, memo);
            return tally;
        };
        let changed: HashSet<&str> = changed.iter().map(String::as_str).collect();
        let memo = memos.get_mut(&key).expect("the memo was just found");
        // Copies the sum only while a cycle still holds the previous one.
        let tally = Arc::make_mut(&mut memo.tally);
        for name in changed {
            if let Some(old) = memo.per_node.remove(name) {
                tally.apply(&old, -1);
            }
            if let Some(node) = snapshot.get(name) {
                let c = contribution(tally, node);
                tally.apply(&c, 1);
                memo.per_node.insert(name.to_string(), c);
            }
        }
        memo.version = snapshot.version();
        memo.tally.clone()
    }
}
