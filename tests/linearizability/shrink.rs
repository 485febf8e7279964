//! Shrinks a key's non-linearizable operations to a few that still cannot be
//! ordered, so a failure prints a handful of operations rather than hundreds.
//!
//! Dropping operations at random would not do: without the write that
//! overwrote a value, a later failed cas on that value looks wrong too, and
//! the report would blame it. So shrinking only ever weakens the history,
//! which keeps every failure it finds a failure of the original:
//! - a read (a get, a cas that did not swap) not in the kept set is dropped;
//! - a write not in the kept set stays, but with an unknown outcome: it may
//!   take effect at any time after its invocation, or never.
//!
//! The kept set is shrunk by delta debugging (Zeller's ddmin, simplified):
//! try releasing chunks of it, halving the chunk size down to single
//! operations, and keep every release after which the weakened history is
//! still provably not linearizable. One rule keeps the result readable: a
//! kept operation that observed a value keeps a write of that value, so a
//! stale read shows up with the write it read and the one that overwrote it.

use std::collections::HashSet;

use super::model::{prepare, KeyOp, Value};
use super::search::{search, Verdict};

/// What [`shrink`] found.
pub(super) struct Shrunk {
    /// Indexes into the key's operations of the operations kept as they
    /// were, in their original order.
    pub(super) kept: Vec<usize>,
    /// How many other writes stayed, with their outcome taken as unknown.
    pub(super) released_writes: usize,
    /// Whether every single kept operation was tried and is needed; false
    /// when the budget ran out first.
    pub(super) minimal: bool,
}

/// Shrinks `ops`, which the search found not linearizable, spending at most
/// `budget` search steps.
pub(super) fn shrink(ops: &[KeyOp], mut budget: u64) -> Shrunk {
    // Drop what the search never reached, and learn what one search costs.
    let before = budget;
    let searched = search(&prepare(ops), &mut budget);
    if searched.verdict != Verdict::NotLinearizable {
        // Only a search with a different budget gets here; report everything.
        return Shrunk {
            kept: (0..ops.len()).filter(|&i| !ops[i].is_unknown()).collect(),
            released_writes: 0,
            minimal: false,
        };
    }
    // One trial may cost some multiple of that before it counts as not
    // failing: a weakened history has more unknown writes to place.
    let trial_budget = 4 * (before - budget) + 10_000;
    // Operations invoked after the search's horizon never came into question:
    // they start out released (a read there of a value written later is
    // dropped, not blamed), unless that already lets the history pass.
    let known = |i: &usize| !ops[*i].is_unknown();
    let mut domain: Vec<usize> = (0..ops.len())
        .filter(|i| known(i) && ops[*i].invoke <= searched.horizon)
        .collect();
    let mut trials = Trials {
        ops,
        known_writes: HashSet::new(),
        budget,
        trial_budget,
    };
    if trials.try_keeping(&domain) != Verdict::NotLinearizable {
        domain = (0..ops.len()).filter(known).collect();
    }
    trials.known_writes = domain
        .iter()
        .filter_map(|&i| ops[i].written_value())
        .collect();
    // Reads first: releasing them is cheap to check and leaves fewer values
    // compared, so released writes look alike to the search afterwards.
    let (reads, writes): (Vec<usize>, Vec<usize>) =
        domain.into_iter().partition(|&i| !ops[i].may_write());
    let (reads, reads_minimal) = trials.ddmin(reads, &writes);
    let (mut kept, writes_minimal) = trials.ddmin(writes, &reads);
    kept.extend(reads);
    kept.sort_unstable();
    let minimal = reads_minimal && writes_minimal;
    let released_writes = weakened(ops, &kept).len() - kept.len();
    Shrunk {
        kept,
        released_writes,
        minimal,
    }
}

/// Trials of weakened histories, within a budget.
struct Trials<'a> {
    ops: &'a [KeyOp],
    /// The values that some operation that may be kept writes.
    known_writes: HashSet<Value>,
    budget: u64,
    /// The most steps one trial may take before it counts as not failing.
    trial_budget: u64,
}

impl Trials<'_> {
    /// Shrinks `domain` (keeping `fixed` throughout) by ddmin: the smallest
    /// part of it found that still fails, and whether it is 1-minimal (every
    /// single operation was released once, and that conclusively passed).
    fn ddmin(&mut self, mut domain: Vec<usize>, fixed: &[usize]) -> (Vec<usize>, bool) {
        let mut chunk = domain.len().div_ceil(2).max(1);
        loop {
            let mut released_any = false;
            let mut undecided_any = false;
            let mut start = 0;
            while start < domain.len() {
                if self.budget == 0 {
                    return (domain, false);
                }
                let end = (start + chunk).min(domain.len());
                let rest: Vec<usize> = domain[..start]
                    .iter()
                    .chain(&domain[end..])
                    .chain(fixed)
                    .copied()
                    .collect();
                match self.try_keeping(&rest) {
                    Verdict::NotLinearizable => {
                        domain.drain(start..end);
                        released_any = true;
                    }
                    Verdict::Linearizable => start = end,
                    Verdict::Inconclusive => {
                        undecided_any = true;
                        start = end;
                    }
                }
            }
            if chunk > 1 {
                chunk = chunk.div_ceil(2);
            } else if !released_any {
                // A last pass over single operations released none of them.
                return (domain, !undecided_any);
            }
        }
    }

    /// Whether the history keeping just `kept` as they were still fails; a
    /// set that drops the write of a value it observed counts as passing.
    fn try_keeping(&mut self, kept: &[usize]) -> Verdict {
        if !keeps_observed_writes(self.ops, kept, &self.known_writes) {
            return Verdict::Linearizable;
        }
        let allowed = self.trial_budget.min(self.budget);
        let mut left = allowed;
        let verdict = search(&weakened(self.ops, kept), &mut left).verdict;
        self.budget -= allowed - left;
        verdict
    }
}

/// Whether every value that an operation of `kept` observed still has a
/// known writer in `kept`, when the history has one.
fn keeps_observed_writes(ops: &[KeyOp], kept: &[usize], known_writes: &HashSet<Value>) -> bool {
    let written: HashSet<Value> = kept
        .iter()
        .filter_map(|&i| ops[i].written_value())
        .collect();
    kept.iter()
        .filter_map(|&i| ops[i].observed_value())
        .all(|value| written.contains(&value) || !known_writes.contains(&value))
}

/// The operations of `kept` as they were, every other write with its outcome
/// unknown, and no other reads.
fn weakened(ops: &[KeyOp], kept: &[usize]) -> Vec<KeyOp> {
    let kept: HashSet<usize> = kept.iter().copied().collect();
    let mut weakened = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if kept.contains(&i) {
            weakened.push(op.clone());
        } else if op.may_write() {
            weakened.push(KeyOp {
                observed: None,
                complete: None,
                inferred: false,
                ..op.clone()
            });
        }
    }
    prepare(&weakened)
}
