//! Property tests: histories generated from a real sequential execution must
//! pass, and the same histories with one read corrupted must fail.
//!
//! The generator gives every client a sequence of operations with random,
//! overlapping intervals, picks a linearization point inside each interval
//! (anywhere after the invocation for an unknown write, or none at all), and
//! runs the operations on a plain map in the order of those points to get
//! their results. Every value is written once, so a corruption can be chosen
//! that no order explains.

use std::collections::BTreeMap;

use super::*;

/// SplitMix64: a small seeded generator, so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

#[derive(Clone, Copy)]
struct Shape {
    clients: usize,
    keys: usize,
    operations: usize,
    /// Percent of operations whose outcome the client never learns.
    unknown_percent: u64,
}

/// An operation planned by the generator, before its content is chosen.
struct Planned {
    client: usize,
    invoke: u64,
    /// `None` for an unknown outcome.
    complete: Option<u64>,
    /// When it takes effect; `None` if it never does (unknown outcome only).
    point: Option<u64>,
    op: Option<Op>,
    result: Option<OpResult>,
}

fn generate(seed: u64, shape: Shape) -> History {
    let mut rng = Rng(seed);
    let mut planned = plan_intervals(&mut rng, shape);
    // Choose each operation's content, and its result from the map's state,
    // in the order the operations take effect.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].point.unwrap_or(u64::MAX), i));
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut written: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (serial, i) in order.into_iter().enumerate() {
        let p = &mut planned[i];
        let key = format!("k{}", rng.below(shape.keys as u64));
        let current = map.get(&key).cloned();
        let fresh = format!("c{}-{serial}", p.client);
        let op = match rng.below(10) {
            0..=3 => Op::get(key.clone()),
            4..=5 => Op::put(key.clone(), fresh.clone()),
            6..=8 => {
                let expected = match rng.below(4) {
                    0 | 1 => current.clone(),
                    2 => None,
                    _ => {
                        let old = written.get(&key).map(Vec::as_slice).unwrap_or_default();
                        old.get(rng.below(old.len() as u64 + 1) as usize).cloned()
                    }
                };
                Op::Cas {
                    key: key.clone(),
                    expected,
                    new: fresh.clone(),
                }
            }
            _ => Op::delete(key.clone()),
        };
        if p.point.is_some() {
            let (result, after) = apply(&op, current, &mut rng);
            match after {
                Some(value) => {
                    written.entry(key.clone()).or_default().push(value.clone());
                    map.insert(key, value)
                }
                None => map.remove(&key),
            };
            p.result = Some(result);
        }
        p.op = Some(op);
    }
    let mut history = History::new();
    for p in planned {
        let op = p.op.expect("every planned operation got its content");
        match (p.complete, p.result) {
            (Some(complete), Some(result)) => {
                history.push_completed(p.client, op, p.invoke, complete, result)
            }
            _ => history.push_unknown(p.client, op, p.invoke),
        }
    }
    history
}

/// Each client runs one operation at a time; an unknown one is given up on
/// after a timeout but may take effect much later, or never.
fn plan_intervals(rng: &mut Rng, shape: Shape) -> Vec<Planned> {
    let mut free_at: Vec<u64> = (0..shape.clients).map(|_| rng.below(10)).collect();
    let mut planned = Vec::with_capacity(shape.operations);
    while planned.len() < shape.operations {
        let client = (0..shape.clients)
            .min_by_key(|&c| (free_at[c], c))
            .expect("at least one client");
        let invoke = free_at[client] + 1 + rng.below(20);
        let (complete, point) = if rng.percent(shape.unknown_percent) {
            free_at[client] = invoke + 100;
            let point = rng.percent(50).then(|| invoke + rng.below(400));
            (None, point)
        } else {
            let point = invoke + rng.below(50);
            let complete = point + rng.below(50);
            free_at[client] = complete;
            (Some(complete), Some(point))
        };
        planned.push(Planned {
            client,
            invoke,
            complete,
            point,
            op: None,
            result: None,
        });
    }
    planned
}

/// Runs `op` on a key holding `current`: its result and the key's new value.
fn apply(op: &Op, current: Option<String>, rng: &mut Rng) -> (OpResult, Option<String>) {
    match op {
        Op::Get { .. } => (OpResult::Value(current.clone()), current),
        Op::Put { value, .. } => (OpResult::Ok, Some(value.clone())),
        Op::Cas { expected, new, .. } if *expected == current => {
            (OpResult::Swapped(true), Some(new.clone()))
        }
        Op::Cas { .. } => (OpResult::Swapped(false), current),
        Op::Delete { .. } if rng.percent(50) => (OpResult::Deleted(current.is_some()), None),
        Op::Delete { .. } => (OpResult::Ok, None),
    }
}

/// The history with the read at `index` answering `read` instead.
fn with_read(history: &History, index: usize, read: Option<String>) -> History {
    let mut corrupted = History::new();
    for (i, operation) in history.operations().iter().enumerate() {
        let op = operation.op.clone();
        match &operation.outcome {
            Outcome::Completed { at, result } => {
                let result = if i == index {
                    OpResult::Value(read.clone())
                } else {
                    result.clone()
                };
                corrupted.push_completed(operation.client, op, operation.invoke, *at, result)
            }
            Outcome::Unknown => corrupted.push_unknown(operation.client, op, operation.invoke),
        }
    }
    corrupted
}

/// A completed operation's completion time and the value it surely wrote.
fn sure_write(operation: &Operation) -> Option<(u64, Option<&str>)> {
    let Outcome::Completed { at, result } = &operation.outcome else {
        return None;
    };
    match (&operation.op, result) {
        (Op::Put { value, .. }, _) => Some((*at, Some(value))),
        (Op::Cas { new, .. }, OpResult::Swapped(true)) => Some((*at, Some(new))),
        (Op::Delete { .. }, _) => Some((*at, None)),
        _ => None,
    }
}

/// Corrupts one read so that no order can explain it: preferably a stale
/// read (a value written, then surely overwritten before the read began),
/// otherwise a value nobody wrote.
fn corrupt(history: &History, rng: &mut Rng) -> Option<(History, usize, String)> {
    let ops = history.operations();
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| matches!(ops[i].op, Op::Get { .. }) && ops[i].outcome != Outcome::Unknown)
        .collect();
    if reads.is_empty() {
        return None;
    }
    let start = rng.below(reads.len() as u64) as usize;
    for &r in reads[start..].iter().chain(&reads[..start]) {
        let key = ops[r].op.key();
        let writes: Vec<(u64, u64, Option<&str>)> = ops
            .iter()
            .filter(|o| o.op.key() == key)
            .filter_map(|o| sure_write(o).map(|(at, value)| (o.invoke, at, value)))
            .collect();
        let stale = writes.iter().find_map(|&(_, done, value)| {
            let overwritten = writes
                .iter()
                .any(|&(invoke, at, _)| invoke > done && at < ops[r].invoke);
            (overwritten && value.is_some()).then_some(value)
        });
        if let Some(Some(value)) = stale {
            let why = format!("read {r} now returns the overwritten {value:?}");
            return Some((with_read(history, r, Some(value.to_owned())), r, why));
        }
    }
    let r = reads[start];
    let why = format!("read {r} now returns a value never written");
    Some((
        with_read(history, r, Some("never-written".to_owned())),
        r,
        why,
    ))
}

fn check_seed(seed: u64, shape: Shape) {
    let history = generate(seed, shape);
    let report = check(&history);
    assert_eq!(
        report.verdict,
        Verdict::Linearizable,
        "seed {seed}: a history from a real execution must pass\n{report}"
    );
    let mut rng = Rng(seed ^ 0x5eed);
    let Some((corrupted, read, why)) = corrupt(&history, &mut rng) else {
        return;
    };
    let report = check(&corrupted);
    assert_eq!(
        report.verdict,
        Verdict::NotLinearizable,
        "seed {seed}: {why}, which must be caught\n{report}"
    );
    // Every other operation is as the real execution had it, so a sound
    // report must blame the corrupted read.
    let blamed = corrupted.operations()[read].to_string();
    let failure = report.failure.unwrap_or_default();
    assert!(
        failure.contains(&blamed),
        "seed {seed}: {why}, but the report does not show it ({blamed}):\n{failure}"
    );
    assert!(
        failure.lines().count() <= 8,
        "seed {seed}: the report was not shrunk:\n{failure}"
    );
}

#[test]
fn small_random_histories_pass_and_their_corruptions_fail() {
    let shape = Shape {
        clients: 4,
        keys: 2,
        operations: 40,
        unknown_percent: 10,
    };
    for seed in 0..300 {
        check_seed(seed, shape);
    }
}

#[test]
fn busy_random_histories_with_many_unknowns_pass_and_their_corruptions_fail() {
    let shape = Shape {
        clients: 6,
        keys: 1,
        operations: 200,
        unknown_percent: 10,
    };
    for seed in 0..20 {
        check_seed(seed, shape);
    }
}

#[test]
fn thousands_of_operations_of_eight_clients_are_decided() {
    let shape = Shape {
        clients: 8,
        keys: 5,
        operations: 4000,
        unknown_percent: 3,
    };
    for seed in 0..3 {
        check_seed(seed, shape);
    }
}
