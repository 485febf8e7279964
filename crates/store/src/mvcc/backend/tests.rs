use super::writer::{WRITER_GATHER, WRITER_QUEUE};
use super::*;

fn backend() -> Backend {
    let db = sled::Config::new().temporary(true).open().unwrap();
    Backend::new(db.open_tree("kv").unwrap()).unwrap()
}

fn record(key: &str, rev: i64) -> Record {
    Record {
        tombstone: false,
        kv: KeyValue {
            key: key.into(),
            mod_revision: rev,
            ..Default::default()
        },
    }
}

#[test]
fn uncommitted_writes_are_visible_to_reads() {
    let mut b = backend();
    b.put(Revision::new(1, 0), record("a", 1));
    assert_eq!(b.get(Revision::new(1, 0)).unwrap(), Some(record("a", 1)));
    b.commit().unwrap();
    b.wait_flushed();
    assert_eq!(b.get(Revision::new(1, 0)).unwrap(), Some(record("a", 1)));
}

/// Stops the writer after it wrote everything committed.
fn drop_writer(b: &mut Backend) {
    b.stop_writer().unwrap();
}

#[test]
fn unwritten_removals_hide_written_records() {
    let mut b = backend();
    b.put(Revision::new(1, 0), record("a", 1));
    b.put(Revision::new(2, 0), record("b", 2));
    b.commit().unwrap();
    b.wait_flushed();
    b.remove(Revision::new(1, 0));
    assert_eq!(b.get(Revision::new(1, 0)).unwrap(), None);
    let revs: Vec<i64> = b.scan(0, 10).map(|r| r.unwrap().0.main).collect();
    assert_eq!(revs, vec![2]);
    assert_eq!(b.revisions_below(10).unwrap(), vec![Revision::new(2, 0)]);
    b.commit().unwrap();
    drop_writer(&mut b);
    assert_eq!(
        b.get(Revision::new(1, 0)).unwrap(),
        None,
        "and sled got the removal"
    );
}

#[test]
fn scan_merges_written_and_unwritten_records_in_order() {
    let mut b = backend();
    for rev in [1, 3] {
        b.put(Revision::new(rev, 0), record("k", rev));
    }
    b.commit().unwrap();
    b.wait_flushed();
    for rev in [2, 4] {
        b.put(Revision::new(rev, 0), record("k", rev));
    }
    let revs: Vec<i64> = b.scan(0, 10).map(|r| r.unwrap().0.main).collect();
    assert_eq!(revs, vec![1, 2, 3, 4]);
}

#[test]
fn scan_is_in_revision_order_and_bounded() {
    let mut b = backend();
    for rev in [3, 1, 2, 300] {
        b.put(Revision::new(rev, 0), record("k", rev));
    }
    b.commit().unwrap();
    let revs: Vec<i64> = b.scan(2, 300).map(|r| r.unwrap().0.main).collect();
    assert_eq!(revs, vec![2, 3, 300]);
}

#[test]
fn meta_and_leases_round_trip() {
    let mut b = backend();
    b.set_meta(APPLIED_INDEX, 9);
    b.put_lease(7, 30);
    b.commit().unwrap();
    drop_writer(&mut b);
    assert_eq!(b.meta(APPLIED_INDEX).unwrap(), Some(9));
    assert_eq!(
        b.leases().map(|l| l.unwrap()).collect::<Vec<_>>(),
        vec![(7, 30)]
    );
}

/// A record of about 300 bytes, as a put of a 256-byte value makes.
fn big_record(rev: i64) -> Record {
    let mut r = record("some/key", rev);
    r.kv.value = vec![b'v'; 256];
    r
}

/// The keys of the runs sled holds.
fn run_keys(b: &Backend) -> Vec<Revision> {
    b.tree
        .scan_prefix([REV])
        .map(|item| run_bound(&item.unwrap().0).unwrap())
        .collect()
}

/// The main revisions `revisions_below(below)` gives.
fn main_revisions_below(b: &Backend, below: i64) -> Vec<i64> {
    let revs = b.revisions_below(below).unwrap();
    revs.iter().map(|r| r.main).collect()
}

/// A backend whose sled holds the changes of revisions 1 to 200, in runs.
fn two_hundred_written() -> Backend {
    let mut b = backend();
    for rev in 1..=200 {
        b.put(Revision::new(rev, 0), big_record(rev));
    }
    b.commit().unwrap();
    b.drain().unwrap();
    b
}

#[test]
fn changes_fill_runs_and_are_found_in_any_of_them() {
    let b = two_hundred_written();
    let keys = run_keys(&b);
    assert!(
        keys.len() > 2,
        "200 changes of 300 bytes fill several runs: {keys:?}"
    );
    assert_eq!(keys.last(), Some(&Revision::new(200, 0)));
    for (key, run) in b.tree.scan_prefix([REV]).map(Result::unwrap) {
        let revs: Vec<Revision> = run::changes(&run).map(|c| c.unwrap().0).collect();
        assert_eq!(
            revs.last(),
            Some(&run_bound(&key).unwrap()),
            "a run's key is its last change"
        );
        assert!(run.len() <= run::RUN_BYTES, "a run of {} bytes", run.len());
    }
    for rev in 1..=200 {
        assert_eq!(b.get(Revision::new(rev, 0)).unwrap(), Some(big_record(rev)));
    }
    assert_eq!(b.get(Revision::new(201, 0)).unwrap(), None);
    assert_eq!(b.get(Revision::new(7, 1)).unwrap(), None);
    let revs: Vec<i64> = b.scan(50, 150).map(|r| r.unwrap().0.main).collect();
    assert_eq!(revs, (50..=150).collect::<Vec<_>>());
    let below = main_revisions_below(&b, 100);
    assert_eq!(below, (1..100).collect::<Vec<_>>());
}

#[test]
fn compaction_rewrites_runs_under_their_keys_and_removes_empty_ones() {
    let mut b = two_hundred_written();
    let keys = run_keys(&b);
    let first_run_end = keys[0].main;
    // Drop the whole first run, and every odd change of the rest below 150.
    let dropped = |rev: i64| rev <= first_run_end || (rev < 150 && rev % 2 == 1);
    for rev in (1..=200).filter(|r| dropped(*r)) {
        b.remove(Revision::new(rev, 0));
    }
    b.commit().unwrap();
    b.drain().unwrap();
    let kept: Vec<i64> = (1..=200).filter(|r| !dropped(*r)).collect();
    assert_eq!(run_keys(&b), keys[1..], "the other runs keep their keys");
    for rev in 1..=200 {
        assert_eq!(
            b.get(Revision::new(rev, 0)).unwrap().is_some(),
            !dropped(rev),
            "{rev}"
        );
    }
    let revs: Vec<i64> = b.scan(0, 1000).map(|r| r.unwrap().0.main).collect();
    assert_eq!(revs, kept);
    let below = main_revisions_below(&b, 150);
    assert_eq!(
        below,
        kept.iter()
            .copied()
            .filter(|r| *r < 150)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_change_dropped_before_it_was_written_never_reaches_sled() {
    let mut b = backend();
    for rev in 1..=5 {
        b.put(Revision::new(rev, 0), record("k", rev));
    }
    b.remove(Revision::new(3, 0));
    b.commit().unwrap();
    b.drain().unwrap();
    let stored: Vec<i64> = (1..=5).filter(|rev| in_sled(&b, *rev)).collect();
    assert_eq!(stored, vec![1, 2, 4, 5]);
}

#[test]
fn a_tree_of_another_layout_is_refused_by_name() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let older = db.open_tree("older").unwrap();
    older
        .insert(rev_key(Revision::new(1, 0)), record("a", 1).encode())
        .unwrap();
    let err = Backend::new(older).err().expect("an older tree is refused");
    assert!(err.to_string().contains("one change per key"), "{err}");

    let newer = db.open_tree("newer").unwrap();
    newer.insert(meta_key(LAYOUT), &7i64.to_be_bytes()).unwrap();
    let err = Backend::new(newer)
        .err()
        .expect("an unknown layout is refused");
    assert!(err.to_string().contains("layout 7"), "{err}");

    let fresh = db.open_tree("fresh").unwrap();
    drop(Backend::new(fresh.clone()).unwrap());
    assert!(
        Backend::new(fresh).is_ok(),
        "a tree this build marked opens again"
    );
}

/// Whether sled itself (not `unflushed`) holds a record at `rev`.
fn in_sled(b: &Backend, rev: i64) -> bool {
    let rev = Revision::new(rev, 0);
    run_holding(&b.tree, rev)
        .unwrap()
        .is_some_and(|(_, stored)| run::changes(&stored).any(|change| change.unwrap().0 == rev))
}

/// The revisions of the changes among `entries`, in order.
fn stored_revisions(
    entries: impl Iterator<Item = Result<(sled::IVec, sled::IVec)>>,
) -> Vec<Revision> {
    let mut revs = Vec::new();
    for (key, value) in entries.map(Result::unwrap) {
        if key[0] == REV {
            revs.extend(run::changes(&value).map(|change| change.unwrap().0));
        }
    }
    revs
}

#[test]
fn a_frozen_tree_holds_later_writes_back_until_it_is_dropped() {
    let mut b = backend();
    b.put(Revision::new(1, 0), record("a", 1));
    b.put(Revision::new(2, 0), record("b", 2));
    let mut frozen = b.freeze().unwrap();
    // More turns than the writer's queue holds: the writer keeps receiving.
    for rev in 3..=(WRITER_QUEUE as i64 + 10) {
        b.put(Revision::new(rev, 0), record("c", rev));
        b.commit().unwrap();
    }
    frozen.wait().unwrap();
    // A writer that ignored the freeze would have written them by now.
    std::thread::sleep(WRITER_GATHER * 5);

    assert!(
        in_sled(&b, 2),
        "what was staged before the freeze is in sled"
    );
    assert!(!in_sled(&b, 3), "what came after is held back");
    assert_eq!(b.get(Revision::new(3, 0)).unwrap(), Some(record("c", 3)));
    assert_eq!(
        stored_revisions(frozen.entries()),
        vec![Revision::new(1, 0), Revision::new(2, 0)]
    );
    assert!(b.freeze().is_err(), "one dump at a time");

    drop(frozen);
    b.wait_flushed();
    assert!(in_sled(&b, 3) && in_sled(&b, WRITER_QUEUE as i64 + 10));
    assert!(b.freeze().is_ok(), "the next dump may start");
}

#[test]
fn replacing_the_tree_abandons_a_frozen_one_without_waiting_for_it() {
    let mut b = backend();
    b.put(Revision::new(1, 0), record("a", 1));
    let mut frozen = b.freeze().unwrap();
    frozen.wait().unwrap();
    b.put(Revision::new(2, 0), record("b", 2));
    b.commit().unwrap();
    assert!(!frozen.is_abandoned());

    let mut run = Vec::new();
    run::push(&mut run, Revision::new(9, 0), &record("z", 9).encode());
    b.replace_all(vec![(rev_key(Revision::new(9, 0)).to_vec(), run)])
        .unwrap();
    assert!(frozen.is_abandoned(), "the dump must not be used");
    drop(frozen);
    b.put(Revision::new(10, 0), record("y", 10));
    b.commit().unwrap();
    b.wait_flushed();
    assert!(in_sled(&b, 9) && in_sled(&b, 10) && !in_sled(&b, 1) && !in_sled(&b, 2));
}
