//! The sequential specification of one key: a register that is absent or
//! holds a value. Operations on one key are turned into [`KeyOp`]s whose
//! values are small integers, so the search compares and stores numbers.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::history::{History, Op, OpResult, Operation, Outcome};

/// A value of one key, interned: equal strings get equal numbers.
pub(super) type Value = u32;

/// What a key holds: `None` while absent.
pub(super) type State = Option<Value>;

/// An operation on one key, ready for the search.
#[derive(Clone, Debug)]
pub(super) struct KeyOp {
    /// Where it is in the [`History`], to print it.
    pub(super) index: usize,
    pub(super) action: Action,
    /// `None` when the outcome is unknown.
    pub(super) observed: Option<Observed>,
    pub(super) invoke: u64,
    /// `None` when the outcome is unknown.
    pub(super) complete: Option<u64>,
    /// Whether the outcome was unknown but inferred (see `prepare`): the
    /// search tries such operations after the ones the clients saw complete.
    pub(super) inferred: bool,
}

/// The request of a [`KeyOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Get,
    Put(Value),
    Delete,
    Cas { expected: State, new: Value },
}

/// The answer of a completed [`KeyOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Observed {
    Ok,
    Value(State),
    Swapped(bool),
    Deleted(bool),
}

impl KeyOp {
    /// Whether the outcome is unknown.
    pub(super) fn is_unknown(&self) -> bool {
        self.complete.is_none()
    }

    /// Applies the operation to `state`: the state after it, or `None` if its
    /// answer is impossible from `state`. An operation with an unknown outcome
    /// is applied as having taken effect.
    pub(super) fn step(&self, state: State) -> Option<State> {
        match (self.action, self.observed) {
            (Action::Get, Some(Observed::Value(read))) => (state == read).then_some(state),
            // A get with an unknown outcome never reaches the search.
            (Action::Get, _) => None,
            (Action::Put(value), _) => Some(Some(value)),
            (Action::Delete, Some(Observed::Deleted(existed))) => {
                (state.is_some() == existed).then_some(None)
            }
            (Action::Delete, _) => Some(None),
            (Action::Cas { expected, new }, Some(Observed::Swapped(true))) => {
                (state == expected).then_some(Some(new))
            }
            (Action::Cas { expected, .. }, Some(Observed::Swapped(false))) => {
                (state != expected).then_some(state)
            }
            (Action::Cas { expected, new }, None) => {
                Some(if state == expected { Some(new) } else { state })
            }
            (Action::Cas { .. }, Some(_)) => None,
        }
    }

    /// Whether the operation writes without looking at the state: its answer
    /// is the same whatever the key held.
    pub(super) fn is_blind_write(&self) -> bool {
        match self.action {
            Action::Put(_) => true,
            Action::Delete => !matches!(self.observed, Some(Observed::Deleted(_))),
            Action::Get | Action::Cas { .. } => false,
        }
    }

    /// Whether the operation may change the key: anything but a get or a cas
    /// known not to have swapped.
    pub(super) fn may_write(&self) -> bool {
        self.action != Action::Get && self.observed != Some(Observed::Swapped(false))
    }

    /// The value the operation compares the key with, if any: a get's answer,
    /// a cas's expected value. Values nobody compares with are alike.
    pub(super) fn compared_value(&self) -> Option<Value> {
        match (self.action, self.observed) {
            (Action::Get, Some(Observed::Value(read))) => read,
            (Action::Cas { expected, .. }, _) => expected,
            _ => None,
        }
    }

    /// The value a completed operation shows the key held, if it shows one:
    /// a get that read a value, or a cas that swapped from a value.
    pub(super) fn observed_value(&self) -> Option<Value> {
        match (self.action, self.observed) {
            (Action::Get, Some(Observed::Value(read))) => read,
            (Action::Cas { expected, .. }, Some(Observed::Swapped(true))) => expected,
            _ => None,
        }
    }

    /// The value the operation may write.
    pub(super) fn written_value(&self) -> Option<Value> {
        match (self.action, self.observed) {
            (Action::Put(value), _) => Some(value),
            (Action::Cas { .. }, Some(Observed::Swapped(false))) => None,
            (Action::Cas { new, .. }, _) => Some(new),
            _ => None,
        }
    }
}

/// Readies one key's operations for the search: values nobody compares with
/// become [`UNOBSERVED`], and unknown writes that were observed become known.
pub(super) fn prepare(ops: &[KeyOp]) -> Vec<KeyOp> {
    let mut ops = ops.to_vec();
    merge_unobserved_values(&mut ops);
    infer_observed_writes(&mut ops);
    ops
}

/// Renames every value that no operation of `ops` compares the key with (no
/// get returned it, no cas expected it) to [`UNOBSERVED`].
fn merge_unobserved_values(ops: &mut [KeyOp]) {
    let compared: HashSet<Value> = ops.iter().filter_map(KeyOp::compared_value).collect();
    let merge = |value: Value| {
        if compared.contains(&value) {
            value
        } else {
            UNOBSERVED
        }
    };
    for op in ops {
        op.action = match op.action {
            Action::Put(value) => Action::Put(merge(value)),
            Action::Cas { expected, new } => Action::Cas {
                expected,
                new: merge(new),
            },
            other => other,
        };
    }
}

/// An unknown write of a value that only it writes, and that a completed
/// operation observed, did take effect, and before the first such
/// observation completed: it becomes a known write that completed then (a
/// put answered ok, a cas that swapped). This is exact, not a guess, and
/// spares the search from wondering when, or whether, it happened. Repeated
/// because a cas made known observes its expected value in turn.
fn infer_observed_writes(ops: &mut [KeyOp]) {
    loop {
        let mut writers: HashMap<Value, Vec<usize>> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let Some(value) = op.written_value().filter(|&value| value != UNOBSERVED) {
                writers.entry(value).or_default().push(i);
            }
        }
        let mut first_seen: HashMap<Value, u64> = HashMap::new();
        for op in ops.iter() {
            if let (Some(value), Some(complete)) = (op.observed_value(), op.complete) {
                let seen = first_seen.entry(value).or_insert(complete);
                *seen = (*seen).min(complete);
            }
        }
        let mut changed = false;
        for (value, writers) in writers {
            let [writer] = writers[..] else { continue };
            let op = &mut ops[writer];
            let Some(&seen) = first_seen.get(&value) else {
                continue;
            };
            // Seen before it was even invoked: leave that for the search to reject.
            if !op.is_unknown() || seen < op.invoke {
                continue;
            }
            op.complete = Some(seen);
            op.inferred = true;
            op.observed = Some(match op.action {
                Action::Cas { .. } => Observed::Swapped(true),
                _ => Observed::Ok,
            });
            changed = true;
        }
        if !changed {
            return;
        }
    }
}

/// Splits a history by key, in key order. Gets with an unknown outcome are
/// left out: they constrain nothing.
pub(super) fn split_by_key(history: &History) -> Vec<(String, Vec<KeyOp>)> {
    let mut keys: BTreeMap<&str, Vec<(usize, &Operation)>> = BTreeMap::new();
    for (index, operation) in history.operations().iter().enumerate() {
        let unknown_get =
            matches!(operation.op, Op::Get { .. }) && operation.outcome == Outcome::Unknown;
        if !unknown_get {
            keys.entry(operation.op.key())
                .or_default()
                .push((index, operation));
        }
    }
    keys.into_iter()
        .map(|(key, operations)| {
            let values = Interner::observed_in(&operations);
            let ops = operations
                .into_iter()
                .map(|(index, operation)| key_op(index, operation, &values))
                .collect();
            (key.to_owned(), ops)
        })
        .collect()
}

fn key_op(index: usize, operation: &Operation, values: &Interner) -> KeyOp {
    let action = match &operation.op {
        Op::Get { .. } => Action::Get,
        Op::Put { value, .. } => Action::Put(values.intern(value)),
        Op::Delete { .. } => Action::Delete,
        Op::Cas { expected, new, .. } => Action::Cas {
            expected: expected.as_deref().map(|value| values.intern(value)),
            new: values.intern(new),
        },
    };
    let (observed, complete) = match &operation.outcome {
        Outcome::Completed { at, result } => {
            let observed = match result {
                OpResult::Ok => Observed::Ok,
                OpResult::Value(read) => {
                    Observed::Value(read.as_deref().map(|value| values.intern(value)))
                }
                OpResult::Swapped(swapped) => Observed::Swapped(*swapped),
                OpResult::Deleted(existed) => Observed::Deleted(*existed),
            };
            (Some(observed), Some(*at))
        }
        Outcome::Unknown => (None, None),
    };
    KeyOp {
        index,
        action,
        observed,
        invoke: operation.invoke,
        complete,
        inferred: false,
    }
}

/// The value every value that no operation compares with becomes. Such
/// values are indistinguishable to every operation (a get never returned
/// one, a cas never expected one), so merging them loses nothing and lets
/// the search treat their writes alike.
pub(super) const UNOBSERVED: Value = Value::MAX;

/// Numbers the values of one key.
struct Interner {
    numbers: HashMap<String, Value>,
}

impl Interner {
    /// Numbers the values that some operation compares the key with: values
    /// a get returned and values a cas expected. All others are
    /// [`UNOBSERVED`].
    fn observed_in(operations: &[(usize, &Operation)]) -> Interner {
        let mut numbers = HashMap::new();
        for (_, operation) in operations {
            let observed = match (&operation.op, &operation.outcome) {
                (Op::Cas { expected, .. }, _) => expected.as_ref(),
                (
                    Op::Get { .. },
                    Outcome::Completed {
                        result: OpResult::Value(read),
                        ..
                    },
                ) => read.as_ref(),
                _ => None,
            };
            if let Some(value) = observed {
                let next = Value::try_from(numbers.len())
                    .ok()
                    .filter(|&next| next < UNOBSERVED)
                    .expect("fewer than 2^32 - 1 values per key");
                numbers.entry(value.clone()).or_insert(next);
            }
        }
        Interner { numbers }
    }

    fn intern(&self, value: &str) -> Value {
        self.numbers.get(value).copied().unwrap_or(UNOBSERVED)
    }
}
