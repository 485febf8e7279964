//! A linearizability checker for key-value histories.
//!
//! etcd promises linearizable reads and writes: every operation appears to
//! take effect at one instant between its request and its response, in one
//! order that all clients agree on. The end-to-end tests run concurrent
//! clients against a cluster while injecting faults, record what each client
//! sent and got back with a [`Recorder`], and ask [`check`] whether some such
//! order explains every answer. If none does, the report names the key and a
//! small set of operations that cannot be ordered.
//!
//! The model is a map of independent registers: each key is absent at first
//! and holds at most one value; [`Op`] lists the operations. Linearizability is
//! compositional (Herlihy & Wing, "Linearizability: A Correctness Condition for
//! Concurrent Objects", 1990), so each key is checked on its own. The search
//! per key is Wing & Gong's ("Testing and Verifying Concurrent Objects", 1993)
//! with Lowe's memoization ("Testing for Linearizability", 2017), the
//! algorithm of the Porcupine checker.
//!
//! # Layout
//! - `history`: [`Op`], [`OpResult`], [`History`] and the [`Recorder`] that
//!   stamps invocations and completions as client tasks run.
//! - `model`: one key as a register; splits a history into per-key operations.
//! - `search`: the depth-first search for a linearization of one key.
//! - `shrink`: cuts a failing key down to a few operations for the report.
//!
//! # Where to start
//! ```
//! use skiff_e2e::linearizability::{check, Op, OpResult, Recorder};
//!
//! let recorder = Recorder::new(); // clone it into every client task
//! let put = recorder.invoke(0, Op::put("k", "v1"));
//! recorder.ok(put, OpResult::Ok);
//! let get = recorder.invoke(1, Op::get("k"));
//! recorder.ok(get, OpResult::Value(Some("v1".into())));
//! let report = check(&recorder.history());
//! assert!(report.linearizable, "{report}");
//! ```
//! An operation whose client got an error or a timeout goes to
//! [`Recorder::unknown`]: a write may then take effect at any point after its
//! invocation, or never; a read is dropped.
//!
//! # Caveats
//! - Values are strings, and tests should write each value once: the checker
//!   is correct with repeated values, but shrinking and reports are clearer,
//!   and the search faster, when a value names its write.
//! - The search is exponential in the worst case (many overlapping operations,
//!   many unknown writes); it stops after [`CheckOptions::max_steps`] and
//!   answers [`Verdict::Inconclusive`] rather than run on. Showing a history
//!   *not* linearizable means exploring every order up to the fault: with a
//!   fifth of one key's writes unknown that can take millions of steps.
//! - The operations a failure lists are shrunk without blaming innocent ones
//!   (see `shrink`), but they are a smallest set found, not the smallest.
//! - Visited configurations are remembered by a 128-bit hash of the set of
//!   linearized operations, not the set itself; a collision (odds around
//!   2^-100 for a large search) could hide a linearization.
//! - Only single-key operations: multi-key transactions and range reads are
//!   not modelled, and neither are revisions, leases or watches.

mod history;
mod model;
mod search;
mod shrink;

#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;

use std::fmt;

pub use history::{History, Op, OpHandle, OpResult, Operation, Outcome, Recorder};

/// How much work [`check_with`] may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// The most search steps (one step: trying one operation as the next in
    /// the order) over all keys; as many again for shrinking a failure. Past
    /// it the verdict is [`Verdict::Inconclusive`].
    pub max_steps: u64,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        // A few thousand operations of eight clients take tens of thousands
        // of steps; this leaves room for bad luck with unknown writes while
        // bounding the visited set to some hundreds of megabytes.
        CheckOptions {
            max_steps: 4_000_000,
        }
    }
}

/// What [`check`] concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key has an order of its operations that explains every answer.
    Linearizable,
    /// Some key has none; the report's `failure` says which and why.
    NotLinearizable,
    /// No key was found wrong, but the step budget ran out before every key
    /// was shown right.
    Inconclusive,
}

/// The outcome of [`check`]. Its `Display` is a summary plus the failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The conclusion.
    pub verdict: Verdict,
    /// Whether the history was shown linearizable (`verdict == Linearizable`).
    pub linearizable: bool,
    /// The operations in the history.
    pub operations: usize,
    /// The distinct keys they touched.
    pub keys: usize,
    /// The operations whose outcome is unknown (of which reads were dropped).
    pub unknown: usize,
    /// Search steps spent, not counting shrinking.
    pub steps: u64,
    /// Unless linearizable: for a failure, the first failing key (in key
    /// order) and the smallest set of its operations found that cannot be
    /// ordered; when inconclusive, the keys left undecided.
    pub failure: Option<String>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "NOT linearizable",
            Verdict::Inconclusive => "inconclusive",
        };
        write!(
            f,
            "{verdict}: {} operations on {} keys, {} with unknown outcome, {} search steps",
            self.operations, self.keys, self.unknown, self.steps
        )?;
        if let Some(failure) = &self.failure {
            write!(f, "\n{failure}")?;
        }
        Ok(())
    }
}

/// Checks whether `history` is linearizable, with the default budget.
pub fn check(history: &History) -> CheckReport {
    check_with(history, &CheckOptions::default())
}

/// Checks whether `history` is linearizable, spending at most
/// `options.max_steps` search steps.
pub fn check_with(history: &History, options: &CheckOptions) -> CheckReport {
    let keys = model::split_by_key(history);
    let mut budget = options.max_steps;
    let mut failing = Vec::new();
    let mut undecided = Vec::new();
    for (key, ops) in &keys {
        match search::search(&model::prepare(ops), &mut budget).verdict {
            search::Verdict::Linearizable => {}
            search::Verdict::NotLinearizable => failing.push((key, ops)),
            search::Verdict::Inconclusive => undecided.push(key.as_str()),
        }
    }
    let (verdict, failure) = if let Some(&(key, ops)) = failing.first() {
        let mut failure = explain(history, key, ops, options.max_steps);
        if failing.len() > 1 {
            let others: Vec<&str> = failing[1..].iter().map(|(key, _)| key.as_str()).collect();
            failure.push_str(&format!("\nother keys not linearizable: {others:?}"));
        }
        if !undecided.is_empty() {
            failure.push_str(&format!("\nkeys left undecided: {undecided:?}"));
        }
        (Verdict::NotLinearizable, Some(failure))
    } else if !undecided.is_empty() {
        let failure = format!(
            "the budget of {} search steps ran out before keys {undecided:?} were decided",
            options.max_steps
        );
        (Verdict::Inconclusive, Some(failure))
    } else {
        (Verdict::Linearizable, None)
    };
    CheckReport {
        verdict,
        linearizable: verdict == Verdict::Linearizable,
        operations: history.len(),
        keys: keys.len(),
        unknown: history
            .operations()
            .iter()
            .filter(|operation| operation.outcome == Outcome::Unknown)
            .count(),
        steps: options.max_steps - budget,
        failure,
    }
}

/// Shrinks a failing key's operations and prints the survivors, ordered by
/// invocation.
fn explain(history: &History, key: &str, ops: &[model::KeyOp], budget: u64) -> String {
    let shrunk = shrink::shrink(ops, budget);
    let mut kept: Vec<&Operation> = shrunk
        .kept
        .iter()
        .map(|&i| &history.operations()[ops[i].index])
        .collect();
    kept.sort_by_key(|operation| operation.invoke);
    let these = match kept.len() {
        1 => "this operation explains its result".to_owned(),
        n => format!("these {n} operations explains their results"),
    };
    let mut text = format!(
        "key {key:?}: no order of {these} ({} operations on the key{}):",
        ops.len(),
        if shrunk.minimal {
            ""
        } else {
            "; not fully shrunk, the budget ran out"
        }
    );
    for operation in kept {
        text.push_str(&format!("\n  {operation}"));
    }
    if shrunk.released_writes > 0 {
        text.push_str(&format!(
            "\n  (even if the key's {} other writes took effect at any time after their \
             invocation, or never)",
            shrunk.released_writes
        ));
    }
    text
}
