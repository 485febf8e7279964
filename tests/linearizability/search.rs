//! Wing & Gong's search for a linearization of one key's operations, with
//! Lowe's memoization of the configurations already explored.
//!
//! The operations' invocations and completions are one time-ordered list of
//! events. An operation may be linearized next if its invocation comes before
//! the first completion still in the list: every operation that completed
//! earlier has been linearized already. Linearizing an operation applies it to
//! the model and lifts both its events out of the list; when no operation can
//! go next, the search backtracks. A configuration is the set of operations
//! linearized plus the model's state; reaching one a second time cannot lead
//! anywhere new (Lowe), so a set of visited configurations prunes the search.
//!
//! An operation with an unknown outcome has no completion event: it may be
//! linearized at any point after its invocation, and one linearized after
//! every known operation is as good as one that never took effect, so the
//! search ends as soon as the known operations are all placed. Two
//! reductions keep unknown writes from multiplying the search, each because
//! any linearization can be rearranged into one that obeys them:
//! - an unknown operation that would not change the state is not placed
//!   (placing it after everything else is equivalent);
//! - an unknown operation that changed the state must be followed by an
//!   operation that looks at the state, not by a blind write (otherwise it
//!   could as well be moved after everything else);
//! - of unknown operations with the same action (two deletes, or two puts of
//!   values nobody read, see `model::UNOBSERVED`), the earlier invoked is
//!   placed first: swapping two such operations in a linearization gives
//!   another one.

use std::collections::HashSet;

use super::model::{Action, KeyOp, State, Value, UNOBSERVED};

/// What the search concluded for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The step budget ran out first.
    Inconclusive,
}

/// A configuration already explored: the 128-bit Zobrist hash of the set of
/// linearized operations, the model's state, and whether the last operation
/// placed was an unknown write (which restricts what may follow).
type Configuration = (u64, u64, State, bool);

/// One level of the depth-first search.
struct Frame {
    /// The operation linearized to get here; `None` for the root.
    entered_by: Option<usize>,
    state_before: State,
    after_unknown_before: bool,
    /// Where this level's candidates start in the shared candidate stack.
    candidates_start: usize,
    /// The next candidate to try.
    next_candidate: usize,
}

/// What [`search`] found.
#[derive(Clone, Copy, Debug)]
pub(super) struct Searched {
    pub(super) verdict: Verdict,
    /// The latest completion time the search ever had to place an operation
    /// before. Operations invoked after it never came into question, so for
    /// a history found not linearizable, dropping them leaves it so.
    pub(super) horizon: u64,
}

/// Searches for a linearization of `ops`, spending one unit of `budget` per
/// operation tried.
pub(super) fn search(ops: &[KeyOp], budget: &mut u64) -> Searched {
    let mut events = Events::new(ops);
    let zobrist: Vec<(u64, u64)> = (0..ops.len() as u64)
        .map(|i| (mix(2 * i), mix(2 * i + 1)))
        .collect();
    let mut known_left = ops.iter().filter(|op| !op.is_unknown()).count();
    let mut state: State = None;
    let mut after_unknown = false;
    let mut hash = (0u64, 0u64);
    let mut visited: HashSet<Configuration> = HashSet::new();
    let mut comparisons = Comparisons::new(ops);
    let mut candidates = Vec::new();
    let mut horizon = events.candidates(ops, &comparisons, &mut candidates);
    let mut frames = vec![Frame {
        entered_by: None,
        state_before: None,
        after_unknown_before: false,
        candidates_start: 0,
        next_candidate: 0,
    }];
    loop {
        if known_left == 0 {
            return Searched {
                verdict: Verdict::Linearizable,
                horizon,
            };
        }
        let top = frames.last_mut().expect("the root frame is never popped");
        if top.next_candidate == candidates.len() {
            // Nothing more can go next here: undo the operation that led here.
            let Some(op) = top.entered_by else {
                return Searched {
                    verdict: Verdict::NotLinearizable,
                    horizon,
                };
            };
            state = top.state_before;
            after_unknown = top.after_unknown_before;
            candidates.truncate(top.candidates_start);
            frames.pop();
            events.unlift(op);
            comparisons.unlift(&ops[op]);
            hash.0 ^= zobrist[op].0;
            hash.1 ^= zobrist[op].1;
            if !ops[op].is_unknown() {
                known_left += 1;
            }
            continue;
        }
        if *budget == 0 {
            return Searched {
                verdict: Verdict::Inconclusive,
                horizon,
            };
        }
        *budget -= 1;
        let index = candidates[top.next_candidate];
        top.next_candidate += 1;
        let op = &ops[index];
        let Some(next_state) = op.step(state) else {
            continue;
        };
        comparisons.lift(op);
        let next_state = comparisons.canonical(next_state);
        let unknown = op.is_unknown();
        let next_hash = (hash.0 ^ zobrist[index].0, hash.1 ^ zobrist[index].1);
        let pointless = unknown && next_state == comparisons.canonical(state);
        if pointless
            || (after_unknown && op.is_blind_write())
            || !visited.insert((next_hash.0, next_hash.1, next_state, unknown))
        {
            comparisons.unlift(op);
            continue;
        }
        frames.push(Frame {
            entered_by: Some(index),
            state_before: state,
            after_unknown_before: after_unknown,
            candidates_start: candidates.len(),
            next_candidate: candidates.len(),
        });
        events.lift(index);
        state = next_state;
        after_unknown = unknown;
        hash = next_hash;
        if !unknown {
            known_left -= 1;
        }
        horizon = horizon.max(events.candidates(ops, &comparisons, &mut candidates));
    }
}

/// The time-ordered invocation and completion events still to be placed, as a
/// doubly linked list over arrays so lifting and unlifting an operation (in
/// last-lifted, first-unlifted order) is constant time.
struct Events {
    /// Per event: its operation, and whether it is the completion.
    event: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per operation: its invocation event and completion event.
    nodes: Vec<(usize, Option<usize>)>,
    head: usize,
    tail: usize,
}

impl Events {
    fn new(ops: &[KeyOp]) -> Events {
        // At equal times invocations sort first: touching intervals overlap.
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            order.push((op.invoke, false, index));
            if let Some(complete) = op.complete {
                order.push((complete, true, index));
            }
        }
        order.sort_unstable();
        let count = order.len();
        let (head, tail) = (count, count + 1);
        let mut next = vec![0; count + 2];
        let mut prev = vec![0; count + 2];
        let mut nodes = vec![(0, None); ops.len()];
        let mut event = Vec::with_capacity(count);
        let mut last = head;
        for (node, &(_, is_completion, op)) in order.iter().enumerate() {
            event.push((op, is_completion));
            if is_completion {
                nodes[op].1 = Some(node);
            } else {
                nodes[op].0 = node;
            }
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        next[last] = tail;
        prev[tail] = last;
        Events {
            event,
            next,
            prev,
            nodes,
            head,
            tail,
        }
    }

    fn remove(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn restore(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        self.prev[next] = node;
    }

    fn lift(&mut self, op: usize) {
        let (invocation, completion) = self.nodes[op];
        self.remove(invocation);
        if let Some(completion) = completion {
            self.remove(completion);
        }
    }

    fn unlift(&mut self, op: usize) {
        let (invocation, completion) = self.nodes[op];
        if let Some(completion) = completion {
            self.restore(completion);
        }
        self.restore(invocation);
    }

    /// Pushes the operations that may be linearized next: those invoked before
    /// the first completion in the list, whose time it returns (`u64::MAX` if
    /// none is left). Operations whose completion the clients saw come first,
    /// as the history insists on them; then those inferred; then unknown ones,
    /// and of those with the same action only the earliest invoked.
    fn candidates(&self, ops: &[KeyOp], comparisons: &Comparisons, out: &mut Vec<usize>) -> u64 {
        let mut inferred = Vec::new();
        let mut unknown = Vec::new();
        let mut unknown_actions: Vec<Action> = Vec::new();
        let mut node = self.next[self.head];
        let mut first_completion = u64::MAX;
        while node != self.tail {
            let (op, is_completion) = self.event[node];
            if is_completion {
                first_completion = ops[op].complete.unwrap_or(u64::MAX);
                break;
            }
            if ops[op].inferred {
                inferred.push(op);
            } else if !ops[op].is_unknown() {
                out.push(op);
            } else {
                let action = comparisons.canonical_action(ops[op].action);
                if !unknown_actions.contains(&action) {
                    unknown_actions.push(action);
                    unknown.push(op);
                }
            }
            node = self.next[node];
        }
        out.extend(inferred);
        out.extend(unknown);
        first_completion
    }
}

/// How many operations not yet linearized compare the key with each value.
/// A value none of them compares with can no longer be told from any other
/// such value, so states and unknown writes are compared with those values
/// merged into [`UNOBSERVED`]: more configurations coincide, and more unknown
/// writes look alike.
struct Comparisons {
    remaining: Vec<u32>,
}

impl Comparisons {
    fn new(ops: &[KeyOp]) -> Comparisons {
        let mut comparisons = Comparisons {
            remaining: Vec::new(),
        };
        for op in ops {
            comparisons.unlift(op);
        }
        comparisons
    }

    /// Counts `op` as linearized.
    fn lift(&mut self, op: &KeyOp) {
        if let Some(value) = op.compared_value() {
            self.remaining[value as usize] -= 1;
        }
    }

    /// Counts `op` as not linearized.
    fn unlift(&mut self, op: &KeyOp) {
        if let Some(value) = op.compared_value() {
            let value = value as usize;
            if value >= self.remaining.len() {
                self.remaining.resize(value + 1, 0);
            }
            self.remaining[value] += 1;
        }
    }

    fn canonical_value(&self, value: Value) -> Value {
        match self.remaining.get(value as usize) {
            Some(&count) if count > 0 => value,
            _ => UNOBSERVED,
        }
    }

    fn canonical(&self, state: State) -> State {
        state.map(|value| self.canonical_value(value))
    }

    fn canonical_action(&self, action: Action) -> Action {
        match action {
            Action::Put(value) => Action::Put(self.canonical_value(value)),
            Action::Cas { expected, new } => Action::Cas {
                expected,
                new: self.canonical_value(new),
            },
            other => other,
        }
    }
}

/// SplitMix64's finalizer: a fixed pseudo-random number per input, so the
/// Zobrist hashes (and so the search) are the same on every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
