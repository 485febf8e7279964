//! What the clients did: operations, their results, and the [`Recorder`] that
//! timestamps them as concurrent client tasks run.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a client sends to the store, on a single key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value`, whatever it held. Completes with [`OpResult::Ok`].
    Put {
        /// The key written.
        key: String,
        /// The value written.
        value: String,
    },
    /// Reads `key`. Completes with [`OpResult::Value`].
    Get {
        /// The key read.
        key: String,
    },
    /// Sets `key` to `new` only if it holds `expected` (`None`: only if the key is
    /// absent, as an etcd txn comparing `create_revision == 0`). Completes with
    /// [`OpResult::Swapped`].
    Cas {
        /// The key compared and written.
        key: String,
        /// The value the key must hold for the swap, or `None` for "absent".
        expected: Option<String>,
        /// The value written if the comparison holds.
        new: String,
    },
    /// Removes `key`. Completes with [`OpResult::Ok`] (nothing said about what was
    /// there) or [`OpResult::Deleted`] (whether the key existed, as etcd's
    /// `deleted` count tells).
    Delete {
        /// The key removed.
        key: String,
    },
}

impl Op {
    /// A [`Op::Put`] of `value` at `key`.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// A [`Op::Get`] of `key`.
    pub fn get(key: impl Into<String>) -> Op {
        Op::Get { key: key.into() }
    }

    /// A [`Op::Cas`] of `key` from `expected` (`None`: absent) to `new`.
    pub fn cas(key: impl Into<String>, expected: Option<&str>, new: impl Into<String>) -> Op {
        Op::Cas {
            key: key.into(),
            expected: expected.map(str::to_owned),
            new: new.into(),
        }
    }

    /// A [`Op::Delete`] of `key`.
    pub fn delete(key: impl Into<String>) -> Op {
        Op::Delete { key: key.into() }
    }

    /// The key this operation reads or writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Get { key } | Op::Cas { key, .. } | Op::Delete { key } => key,
        }
    }

    /// Whether `result` is a result this kind of operation can have.
    pub fn accepts(&self, result: &OpResult) -> bool {
        matches!(
            (self, result),
            (Op::Put { .. }, OpResult::Ok)
                | (Op::Get { .. }, OpResult::Value(_))
                | (Op::Cas { .. }, OpResult::Swapped(_))
                | (Op::Delete { .. }, OpResult::Ok | OpResult::Deleted(_))
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { key, value } => write!(f, "put {key:?} = {value:?}"),
            Op::Get { key } => write!(f, "get {key:?}"),
            Op::Cas { key, expected, new } => {
                write!(f, "cas {key:?} from {} to {new:?}", ShowValue(expected))
            }
            Op::Delete { key } => write!(f, "delete {key:?}"),
        }
    }
}

/// What the store answered to a completed [`Op`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// A put, or a delete that does not say whether the key existed.
    Ok,
    /// A get: the value read, `None` if the key was absent.
    Value(Option<String>),
    /// A cas: whether the comparison held and the new value was written.
    Swapped(bool),
    /// A delete: whether the key existed (and so was removed).
    Deleted(bool),
}

impl fmt::Display for OpResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpResult::Ok => write!(f, "ok"),
            OpResult::Value(value) => write!(f, "{}", ShowValue(value)),
            OpResult::Swapped(true) => write!(f, "swapped"),
            OpResult::Swapped(false) => write!(f, "not swapped"),
            OpResult::Deleted(true) => write!(f, "deleted"),
            OpResult::Deleted(false) => write!(f, "nothing to delete"),
        }
    }
}

/// Shows an optional value as `"v"` or `absent`.
struct ShowValue<'a>(&'a Option<String>);

impl fmt::Display for ShowValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value:?}"),
            None => write!(f, "absent"),
        }
    }
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client got an answer at `at` (nanoseconds, on the history's clock).
    Completed {
        /// When the answer arrived.
        at: u64,
        /// The answer.
        result: OpResult,
    },
    /// The client got an error or a timeout, or never heard back: a write may
    /// take effect at any time after its invocation, or never.
    Unknown,
}

/// One operation of a [`History`]: who sent what, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The client (a sequential actor) that sent it.
    pub client: usize,
    /// The request.
    pub op: Op,
    /// When it was sent (nanoseconds, on the history's clock).
    pub invoke: u64,
    /// How and when it ended.
    pub outcome: Outcome,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let invoke = Duration::from_nanos(self.invoke);
        match &self.outcome {
            Outcome::Completed { at, result } => write!(
                f,
                "client {}: {} -> {} (from {invoke:?} to {:?})",
                self.client,
                self.op,
                result,
                Duration::from_nanos(*at)
            ),
            Outcome::Unknown => write!(
                f,
                "client {}: {} -> unknown (from {invoke:?}, never answered)",
                self.client, self.op
            ),
        }
    }
}

/// Operations on a key-value store with their real-time intervals: what
/// [`check`](super::check) decides linearizability for.
///
/// Operation `a` precedes `b` in real time when `a` completed strictly before
/// `b` was invoked; equal times count as overlapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    operations: Vec<Operation>,
}

impl History {
    /// An empty history, for building one by hand.
    pub fn new() -> History {
        History::default()
    }

    /// Adds an operation that ran from `invoke` to `complete` and answered `result`.
    ///
    /// Panics if `result` does not fit `op` or `complete` is before `invoke`.
    pub fn push_completed(
        &mut self,
        client: usize,
        op: Op,
        invoke: u64,
        complete: u64,
        result: OpResult,
    ) {
        assert_fits(&op, &result);
        assert!(
            complete >= invoke,
            "{op} completes at {complete} before its invocation at {invoke}"
        );
        self.operations.push(Operation {
            client,
            op,
            invoke,
            outcome: Outcome::Completed {
                at: complete,
                result,
            },
        });
    }

    /// Adds an operation invoked at `invoke` whose outcome is unknown.
    pub fn push_unknown(&mut self, client: usize, op: Op, invoke: u64) {
        self.operations.push(Operation {
            client,
            op,
            invoke,
            outcome: Outcome::Unknown,
        });
    }

    /// The operations, in the order they were added (for a [`Recorder`]'s
    /// history: the order of invocation).
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

fn assert_fits(op: &Op, result: &OpResult) {
    assert!(
        op.accepts(result),
        "{op} cannot complete with {result:?}: a put completes with Ok, a get with \
         Value, a cas with Swapped, a delete with Ok or Deleted"
    );
}

/// Records a [`History`] as client tasks run: shared by all of them (it is a
/// cheap clone of one shared log), it stamps each invocation and completion
/// with the nanoseconds since [`Recorder::new`].
///
/// Stamps are taken under one lock and strictly increase, so an operation
/// that completed before another was invoked always has the smaller stamp.
#[derive(Clone, Debug)]
pub struct Recorder {
    log: Arc<Mutex<Log>>,
}

#[derive(Debug)]
struct Log {
    start: Instant,
    last: u64,
    operations: Vec<Operation>,
}

impl Log {
    /// The next stamp: the time since start, but always past the previous one.
    fn stamp(&mut self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last = elapsed.max(self.last + 1);
        self.last
    }
}

/// An invoked operation waiting for its outcome, from [`Recorder::invoke`].
///
/// Pass it to [`Recorder::ok`] or [`Recorder::unknown`]; dropping it leaves
/// the outcome unknown, which is right for a task cancelled mid-request.
#[must_use = "report the outcome with Recorder::ok or Recorder::unknown"]
#[derive(Debug)]
pub struct OpHandle {
    index: usize,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            log: Arc::new(Mutex::new(Log {
                start: Instant::now(),
                last: 0,
                operations: Vec::new(),
            })),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        // Nothing panics while holding the lock, so a poisoned lock still
        // holds a consistent log.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `client` sends `op` now; its outcome is unknown until
    /// [`Recorder::ok`] says otherwise.
    pub fn invoke(&self, client: usize, op: Op) -> OpHandle {
        let mut log = self.log();
        let invoke = log.stamp();
        log.operations.push(Operation {
            client,
            op,
            invoke,
            outcome: Outcome::Unknown,
        });
        OpHandle {
            index: log.operations.len() - 1,
        }
    }

    /// Records that the operation of `handle` completed now with `result`.
    ///
    /// Panics if `result` does not fit the operation (a get answered `Swapped`).
    pub fn ok(&self, handle: OpHandle, result: OpResult) {
        let mut log = self.log();
        let op = &log.operations[handle.index].op;
        if !op.accepts(&result) {
            let op = op.clone();
            drop(log); // panic without poisoning the shared log
            assert_fits(&op, &result);
            unreachable!("assert_fits panics for a result that does not fit");
        }
        let at = log.stamp();
        log.operations[handle.index].outcome = Outcome::Completed { at, result };
    }

    /// Records that the client got an error or a timeout: the operation may
    /// or may not take effect.
    pub fn unknown(&self, handle: OpHandle) {
        // The outcome was recorded as unknown at invocation.
        drop(handle);
    }

    /// A copy of everything recorded so far; operations still in flight are
    /// unknown in it.
    pub fn history(&self) -> History {
        History {
            operations: self.log().operations.clone(),
        }
    }
}
