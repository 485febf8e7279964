//! Hand-made histories, each a small story of what clients saw.

use super::*;

fn value(v: &str) -> OpResult {
    OpResult::Value(Some(v.to_owned()))
}

fn absent() -> OpResult {
    OpResult::Value(None)
}

/// One operation: client, request, invocation, and completion with result
/// (`None`: unknown outcome).
type Row = (usize, Op, u64, Option<(u64, OpResult)>);

/// Builds a history from rows.
fn history(rows: Vec<Row>) -> History {
    let mut history = History::new();
    for (client, op, invoke, outcome) in rows {
        match outcome {
            Some((complete, result)) => {
                history.push_completed(client, op, invoke, complete, result)
            }
            None => history.push_unknown(client, op, invoke),
        }
    }
    history
}

fn assert_linearizable(history: &History) {
    let report = check(history);
    assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
    assert!(report.linearizable && report.failure.is_none(), "{report}");
}

/// Asserts the history is not linearizable and returns the failure text.
fn assert_not_linearizable(history: &History) -> String {
    let report = check(history);
    assert_eq!(report.verdict, Verdict::NotLinearizable, "{report}");
    assert!(!report.linearizable, "{report}");
    report.failure.expect("a failure explains the verdict")
}

#[test]
fn empty_history_is_linearizable() {
    let report = check(&History::new());
    assert!(report.linearizable, "{report}");
    assert_eq!((report.operations, report.keys, report.unknown), (0, 0, 0));
}

#[test]
fn sequential_put_get_delete_is_linearizable() {
    assert_linearizable(&history(vec![
        (0, Op::get("k"), 0, Some((1, absent()))),
        (0, Op::put("k", "a"), 2, Some((3, OpResult::Ok))),
        (1, Op::get("k"), 4, Some((5, value("a")))),
        (0, Op::delete("k"), 6, Some((7, OpResult::Deleted(true)))),
        (1, Op::get("k"), 8, Some((9, absent()))),
        (0, Op::delete("k"), 10, Some((11, OpResult::Deleted(false)))),
        (1, Op::delete("k"), 12, Some((13, OpResult::Ok))),
    ]));
}

#[test]
fn overlapping_writes_may_be_read_in_either_order() {
    for (first, second) in [("a", "b"), ("b", "a")] {
        assert_linearizable(&history(vec![
            (0, Op::put("k", "a"), 0, Some((10, OpResult::Ok))),
            (1, Op::put("k", "b"), 0, Some((10, OpResult::Ok))),
            // A read during both writes sees one, a read after both the other.
            (2, Op::get("k"), 2, Some((4, value(first)))),
            (2, Op::get("k"), 20, Some((30, value(second)))),
        ]));
    }
}

#[test]
fn intervals_that_touch_count_as_overlapping() {
    // The read returns at 10, the write is invoked at 10: either may be first.
    assert_linearizable(&history(vec![
        (0, Op::get("k"), 0, Some((10, value("a")))),
        (1, Op::put("k", "a"), 10, Some((20, OpResult::Ok))),
    ]));
}

#[test]
fn cas_racing_a_put_may_win_or_lose() {
    let race = |swapped: bool, last_read: &str| {
        history(vec![
            (0, Op::put("k", "a"), 0, Some((1, OpResult::Ok))),
            (
                1,
                Op::cas("k", Some("a"), "c"),
                10,
                Some((20, OpResult::Swapped(swapped))),
            ),
            (2, Op::put("k", "b"), 10, Some((20, OpResult::Ok))),
            (0, Op::get("k"), 30, Some((40, value(last_read)))),
        ])
    };
    // The cas went first and the put overwrote it.
    assert_linearizable(&race(true, "b"));
    // The put went first, so the cas found "b" and did nothing.
    assert_linearizable(&race(false, "b"));
    // A cas that swapped after the put had overwritten "a" is impossible, and
    // so is a put that never took effect.
    assert_not_linearizable(&race(true, "c"));
    assert_not_linearizable(&race(false, "a"));
}

#[test]
fn cas_from_absent_only_creates() {
    assert_linearizable(&history(vec![
        (
            0,
            Op::cas("k", None, "a"),
            0,
            Some((1, OpResult::Swapped(true))),
        ),
        (
            1,
            Op::cas("k", None, "b"),
            2,
            Some((3, OpResult::Swapped(false))),
        ),
        (0, Op::get("k"), 4, Some((5, value("a")))),
    ]));
    assert_not_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, Some((1, OpResult::Ok))),
        (
            1,
            Op::cas("k", None, "b"),
            2,
            Some((3, OpResult::Swapped(true))),
        ),
    ]));
}

#[test]
fn stale_read_after_a_completed_write_is_caught() {
    let failure = assert_not_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, Some((10, OpResult::Ok))),
        (0, Op::put("k", "b"), 20, Some((30, OpResult::Ok))),
        (1, Op::get("k"), 40, Some((50, value("a")))),
    ]));
    assert!(failure.contains("key \"k\""), "{failure}");
    assert!(
        failure.contains("no order of these 3 operations explains"),
        "{failure}"
    );
}

#[test]
fn lost_update_of_two_cas_from_the_same_value_is_caught() {
    assert_not_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, Some((1, OpResult::Ok))),
        (
            1,
            Op::cas("k", Some("a"), "b"),
            10,
            Some((20, OpResult::Swapped(true))),
        ),
        (
            2,
            Op::cas("k", Some("a"), "c"),
            10,
            Some((20, OpResult::Swapped(true))),
        ),
    ]));
}

#[test]
fn read_of_a_value_never_written_is_caught() {
    let failure = assert_not_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, Some((10, OpResult::Ok))),
        (1, Op::get("k"), 0, Some((10, value("z")))),
    ]));
    // The read alone cannot be explained, and that is all the report shows.
    assert!(
        failure.contains("no order of this operation explains"),
        "{failure}"
    );
    assert!(failure.contains("\"z\""), "{failure}");
}

#[test]
fn reads_that_go_back_in_time_are_caught() {
    assert_not_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, Some((5, OpResult::Ok))),
        (0, Op::put("k", "b"), 10, Some((100, OpResult::Ok))),
        (1, Op::get("k"), 20, Some((30, value("b")))),
        (2, Op::get("k"), 40, Some((50, value("a")))),
    ]));
}

#[test]
fn delete_that_claims_a_key_existed_must_see_one() {
    assert_not_linearizable(&history(vec![
        (0, Op::get("k"), 0, Some((1, absent()))),
        (0, Op::delete("k"), 2, Some((3, OpResult::Deleted(true)))),
    ]));
}

#[test]
fn unknown_write_that_took_effect_late_is_linearizable() {
    assert_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, None),
        (1, Op::get("k"), 10, Some((20, absent()))),
        (1, Op::get("k"), 30, Some((40, value("a")))),
        (1, Op::get("k"), 50, Some((60, value("a")))),
    ]));
}

#[test]
fn unknown_write_that_never_happened_is_linearizable() {
    assert_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, Some((1, OpResult::Ok))),
        (0, Op::put("k", "b"), 2, None),
        (0, Op::cas("k", Some("a"), "c"), 3, None),
        (0, Op::delete("k"), 4, None),
        (1, Op::get("k"), 10, Some((20, value("a")))),
    ]));
}

#[test]
fn unknown_write_cannot_take_effect_before_its_invocation() {
    assert_not_linearizable(&history(vec![
        (1, Op::get("k"), 0, Some((10, value("a")))),
        (0, Op::put("k", "a"), 20, None),
    ]));
}

#[test]
fn unknown_write_takes_effect_at_most_once() {
    // The unknown write of "a" may explain one of the reads of "a", but "b"
    // was written in between and nothing writes "a" again.
    assert_not_linearizable(&history(vec![
        (0, Op::put("k", "a"), 0, None),
        (1, Op::get("k"), 10, Some((20, value("a")))),
        (1, Op::put("k", "b"), 30, Some((40, OpResult::Ok))),
        (1, Op::get("k"), 50, Some((60, value("a")))),
    ]));
}

#[test]
fn unknown_cas_swaps_only_from_its_expected_value() {
    let after_unknown_cas = |first: &str| {
        history(vec![
            (0, Op::put("k", first), 0, Some((1, OpResult::Ok))),
            (0, Op::cas("k", Some("a"), "c"), 2, None),
            (1, Op::get("k"), 10, Some((20, value("c")))),
        ])
    };
    assert_linearizable(&after_unknown_cas("a"));
    assert_not_linearizable(&after_unknown_cas("b"));
}

#[test]
fn unknown_reads_are_dropped() {
    let report = check(&history(vec![
        (0, Op::put("k", "a"), 0, Some((1, OpResult::Ok))),
        (1, Op::get("k"), 2, None),
    ]));
    assert!(report.linearizable, "{report}");
    assert_eq!((report.operations, report.unknown), (2, 1));
}

#[test]
fn keys_are_independent_registers() {
    assert_linearizable(&history(vec![
        (0, Op::put("x", "a"), 0, Some((1, OpResult::Ok))),
        (1, Op::get("y"), 2, Some((3, absent()))),
        (
            1,
            Op::cas("y", None, "a"),
            4,
            Some((5, OpResult::Swapped(true))),
        ),
        (0, Op::get("x"), 6, Some((7, value("a")))),
    ]));
}

#[test]
fn report_names_the_first_failing_key_and_only_the_needed_operations() {
    let mut rows = Vec::new();
    // Plenty of linearizable traffic on three keys, then a stale read on "m".
    for i in 0..50u64 {
        for (client, key) in ["a", "m", "z"].into_iter().enumerate() {
            let t = 100 * i + 10 * client as u64;
            let v = format!("{key}{i}");
            rows.push((
                client,
                Op::put(key, v.clone()),
                t,
                Some((t + 5, OpResult::Ok)),
            ));
            rows.push((client, Op::get(key), t + 6, Some((t + 9, value(&v)))));
        }
    }
    rows.push((7, Op::get("m"), 10_000, Some((10_001, value("m48")))));
    rows.push((7, Op::get("z"), 10_002, Some((10_003, value("z3")))));
    let report = check(&history(rows));
    assert_eq!(report.verdict, Verdict::NotLinearizable, "{report}");
    assert_eq!(report.keys, 3);
    let failure = report.failure.expect("a failure");
    let lines: Vec<&str> = failure.lines().collect();
    assert!(
        lines[0].starts_with("key \"m\": no order of these 3 operations explains their results (101 operations on the key)"),
        "{failure}"
    );
    // The write read, the write that overwrote it, and the stale read.
    assert!(lines[1].contains("put \"m\" = \"m48\""), "{failure}");
    assert!(lines[2].contains("put \"m\" = \"m49\""), "{failure}");
    assert!(lines[3].contains("get \"m\" -> \"m48\""), "{failure}");
    assert!(lines[4].contains("the key's 48 other writes"), "{failure}");
    assert!(
        lines[5].starts_with("other keys not linearizable: [\"z\"]"),
        "{failure}"
    );
}

#[test]
fn search_past_its_budget_is_inconclusive() {
    let mut rows = Vec::new();
    for client in 0..6 {
        rows.push((
            client,
            Op::put("k", format!("v{client}")),
            0,
            Some((100, OpResult::Ok)),
        ));
    }
    rows.push((9, Op::get("k"), 200, Some((300, value("v0")))));
    let history = history(rows);
    let report = check_with(&history, &CheckOptions { max_steps: 3 });
    assert_eq!(report.verdict, Verdict::Inconclusive, "{report}");
    assert!(!report.linearizable);
    assert_eq!(report.steps, 3);
    assert!(report.failure.expect("an explanation").contains("[\"k\"]"));
    assert!(check(&history).linearizable);
}

#[test]
fn recorder_stamps_strictly_increasing_times() {
    let recorder = Recorder::new();
    let shared = recorder.clone();
    let put = shared.invoke(0, Op::put("k", "a"));
    let get = recorder.invoke(1, Op::get("k"));
    shared.ok(put, OpResult::Ok);
    let lost = recorder.invoke(2, Op::put("k", "b"));
    recorder.unknown(lost);
    recorder.ok(get, OpResult::Value(Some("a".into())));
    let dropped = recorder.invoke(0, Op::delete("k"));
    drop(dropped);

    let history = shared.history();
    let ops = history.operations();
    assert_eq!(ops.len(), 4);
    let completion = |i: usize| match &ops[i].outcome {
        Outcome::Completed { at, .. } => *at,
        Outcome::Unknown => panic!("operation {i} should be completed"),
    };
    assert!(ops[0].invoke < ops[1].invoke);
    assert!(ops[1].invoke < completion(0));
    assert!(completion(0) < ops[2].invoke);
    assert!(ops[2].invoke < completion(1));
    assert!(completion(1) < ops[3].invoke);
    assert_eq!(ops[2].outcome, Outcome::Unknown);
    assert_eq!(ops[3].outcome, Outcome::Unknown);
    assert_eq!((ops[1].client, &ops[1].op), (1, &Op::get("k")));
    let report = check(&history);
    assert!(report.linearizable, "{report}");
    assert_eq!(report.unknown, 2);
}

#[test]
#[should_panic(expected = "get \"k\" cannot complete with Swapped(true)")]
fn recorder_rejects_a_result_of_the_wrong_kind() {
    let recorder = Recorder::new();
    let get = recorder.invoke(0, Op::get("k"));
    recorder.ok(get, OpResult::Swapped(true));
}

#[test]
fn recorder_is_shared_across_threads() {
    let recorder = Recorder::new();
    let workers: Vec<_> = (0..4)
        .map(|client| {
            let recorder = recorder.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let put =
                        recorder.invoke(client, Op::put(format!("k{client}"), format!("{i}")));
                    recorder.ok(put, OpResult::Ok);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker thread finishes");
    }
    let report = check(&recorder.history());
    assert!(report.linearizable, "{report}");
    assert_eq!((report.operations, report.keys), (100, 4));
}
