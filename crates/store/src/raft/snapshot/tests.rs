//! Snapshot files as specifications: saved whole or not at all, found newest
//! first, damage detected and skipped.

use std::fs;
use std::path::Path;

use raft::eraftpb::{ConfState, SnapshotMetadata};
use skiff_proto::etcdserverpb::{PutRequest, RangeRequest};
use skiff_proto::store::{log_entry::Request, LogEntry};

use super::{snapshot_name, SnapshotError, Snapshots};
use crate::error::StoreError;
use crate::mvcc::Mvcc;

fn meta(term: u64, index: u64) -> SnapshotMetadata {
    let mut meta = SnapshotMetadata {
        term,
        index,
        ..SnapshotMetadata::default()
    };
    meta.set_conf_state(ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..ConfState::default()
    });
    meta
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A log entry putting `value` at `key`.
fn put_entry(key: &str, value: String) -> LogEntry {
    LogEntry {
        id: 0,
        proposer: 0,
        request: Some(Request::Put(PutRequest {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })),
    }
}

fn body(n: u8) -> Vec<u8> {
    (0..200u8).map(|i| i.wrapping_mul(n)).collect()
}

#[test]
fn a_saved_snapshot_loads_back_with_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    let path = snaps.save_bytes(&meta(3, 12345), &body(1)).unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        "00000000000000000003-00000000000000012345.snap"
    );
    let (found, found_path) = snaps.latest().unwrap().unwrap();
    assert_eq!(found, meta(3, 12345));
    assert_eq!(found.get_conf_state().voters, vec![1, 2, 3]);
    assert_eq!(found_path, path);
    let (loaded, loaded_body) = snaps.load(&path).unwrap();
    assert_eq!(loaded, meta(3, 12345));
    assert_eq!(loaded_body, body(1));
}

#[test]
fn an_empty_directory_has_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(&dir.path().join("snap")).unwrap();
    assert!(snaps.latest().unwrap().is_none());
    snaps.purge(0).unwrap();
}

#[test]
fn the_state_machine_travels_through_a_file() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut source = Mvcc::open(db.open_tree("a").unwrap()).unwrap();
    for (index, key) in ["x", "y", "x"].into_iter().enumerate() {
        let entry = put_entry(key, format!("v{index}"));
        source.apply(index as u64 + 1, &entry).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    snaps
        .save(&meta(1, source.applied_index()), |out| {
            source.write_snapshot(out)
        })
        .unwrap();

    let (found, path) = snaps.latest().unwrap().unwrap();
    assert_eq!(found.index, 3);
    let (_, body) = snaps.load(&path).unwrap();
    let mut target = Mvcc::open(db.open_tree("b").unwrap()).unwrap();
    target.restore_snapshot(&mut body.as_slice()).unwrap();
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    assert_eq!(target.range(&all).unwrap(), source.range(&all).unwrap());
    assert_eq!(target.applied_index(), 3);
    assert_eq!(target.hash_kv(0).unwrap(), source.hash_kv(0).unwrap());
}

#[test]
fn latest_orders_by_term_then_index() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    for (term, index) in [(2, 900), (10, 50), (3, 1000), (10, 7)] {
        snaps.save_bytes(&meta(term, index), &body(1)).unwrap();
    }
    let (found, _) = snaps.latest().unwrap().unwrap();
    assert_eq!((found.term, found.index), (10, 50));
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    snaps.save_bytes(&meta(1, 10), &body(1)).unwrap();
    let middle = snaps.save_bytes(&meta(1, 20), &body(2)).unwrap();
    let newest = snaps.save_bytes(&meta(2, 30), &body(3)).unwrap();

    let mut bytes = fs::read(&newest).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&newest, &bytes).unwrap();
    let (found, path) = snaps.latest().unwrap().unwrap();
    assert_eq!((found.index, path.clone()), (20, middle.clone()));
    let err = snaps.load(&newest).unwrap_err();
    assert!(matches!(err, SnapshotError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("checksum mismatch"), "{text}");
    assert!(
        text.contains(&snapshot_name(2, 30)),
        "names the file: {text}"
    );

    // Cut short, as by a disk that lost the file's tail.
    let bytes = fs::read(&middle).unwrap();
    fs::write(&middle, &bytes[..bytes.len() / 2]).unwrap();
    let (found, _) = snaps.latest().unwrap().unwrap();
    assert_eq!(found.index, 10);
}

#[test]
fn a_file_whose_name_disagrees_with_its_metadata_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    let real = snaps.save_bytes(&meta(1, 10), &body(1)).unwrap();
    let renamed = dir.path().join(snapshot_name(1, 99));
    fs::rename(&real, &renamed).unwrap();
    let text = snaps.load(&renamed).unwrap_err().to_string();
    assert!(
        text.contains("name says term 1 index 99 but it holds term 1 index 10"),
        "{text}"
    );
    assert!(snaps.latest().unwrap().is_none());
}

#[test]
fn open_removes_half_written_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    snaps.save_bytes(&meta(1, 10), &body(1)).unwrap();
    let temp = dir.path().join(format!("{}.tmp", snapshot_name(1, 20)));
    fs::write(&temp, b"half a snapshot").unwrap();
    fs::write(dir.path().join("README"), b"not ours").unwrap();
    assert_eq!(
        snaps.latest().unwrap().unwrap().0.index,
        10,
        "a temp file is never a snapshot"
    );

    drop(snaps);
    let snaps = Snapshots::open(dir.path()).unwrap();
    assert_eq!(
        names(dir.path()),
        vec![snapshot_name(1, 10), "README".into()]
    );
    assert_eq!(snaps.latest().unwrap().unwrap().0.index, 10);
}

#[test]
fn a_failing_body_writer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    let err = snaps
        .save(&meta(1, 10), |out| {
            out.write_all(b"partial").unwrap();
            Err(StoreError::Storage("disk on fire".into()))
        })
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("disk on fire"), "{text}");
    assert!(
        text.contains(&format!("{}.tmp", snapshot_name(1, 10))),
        "{text}"
    );
    assert!(names(dir.path()).is_empty());
    assert!(snaps.latest().unwrap().is_none());
}

#[test]
fn a_body_writer_that_miscounts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    let err = snaps
        .save(&meta(1, 10), |out| {
            out.write_all(b"12345").unwrap();
            Ok(4)
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("reported 4 bytes but wrote 5"),
        "{err}"
    );
    assert!(names(dir.path()).is_empty());
}

#[test]
fn purge_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    for index in [40, 10, 30, 20, 50] {
        snaps.save_bytes(&meta(1, index), &body(1)).unwrap();
    }
    snaps.purge(2).unwrap();
    assert_eq!(
        names(dir.path()),
        vec![snapshot_name(1, 40), snapshot_name(1, 50)]
    );
    snaps.purge(5).unwrap();
    assert_eq!(
        names(dir.path()).len(),
        2,
        "keeping more than there are deletes none"
    );
    snaps.purge(0).unwrap();
    assert!(names(dir.path()).is_empty());
}

#[test]
fn an_abandoned_dump_leaves_no_file() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut source = Mvcc::open(db.open_tree("kv").unwrap()).unwrap();
    source.apply(1, &put_entry("k", "v".into())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();

    let dump = source.begin_snapshot().unwrap();
    source.abandon_snapshot();
    let err = snaps
        .save(&meta(1, 1), |out| dump.write(out))
        .expect_err("an abandoned dump is not saved");
    assert!(matches!(err, SnapshotError::Body { .. }), "{err}");
    assert!(err.to_string().contains("abandoned"), "{err}");
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "no file is left behind: {left:?}");
    assert!(snaps.latest().unwrap().is_none());
}

/// A state machine that takes a snapshot after some puts, each on top of the
/// one before it when it can be.
struct Chained {
    mvcc: Mvcc,
    point: Option<crate::mvcc::snapshot::SnapshotPoint>,
    _db: sled::Db,
}

impl Chained {
    fn new() -> Self {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Chained {
            mvcc: Mvcc::open(db.open_tree("kv").unwrap()).unwrap(),
            point: None,
            _db: db,
        }
    }

    fn put(&mut self, key: &str) {
        let index = self.mvcc.applied_index() + 1;
        let entry = put_entry(key, format!("v{index}"));
        self.mvcc.apply(index, &entry).unwrap();
    }

    /// Saves a snapshot at the applied index: a delta on `parent` when given.
    fn save(&mut self, snaps: &Snapshots, parent: Option<(u64, u64)>) -> std::path::PathBuf {
        let earlier = parent.and(self.point);
        let dump = self.mvcc.begin_snapshot_after(earlier).unwrap();
        assert_eq!(dump.delta_after().is_some(), parent.is_some());
        self.point = Some(dump.point());
        let meta = meta(1, self.mvcc.applied_index());
        match parent {
            Some(parent) => snaps.save_delta(&meta, parent, |out| dump.write(out)),
            None => snaps.save(&meta, |out| dump.write(out)),
        }
        .unwrap()
    }

    fn whole(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.mvcc.write_snapshot(&mut out).unwrap();
        out
    }
}

#[test]
fn a_delta_loads_as_the_whole_state_through_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    let mut sm = Chained::new();
    sm.put("a");
    sm.put("b");
    sm.save(&snaps, None);
    sm.put("a");
    sm.put("c");
    sm.save(&snaps, Some((1, 2)));
    sm.put("d");
    let newest = sm.save(&snaps, Some((1, 4)));
    let head = fs::read(&newest).unwrap();
    assert_eq!(&head[..8], b"SKIFFSND", "a delta file says so");

    let (found, path) = snaps.latest().unwrap().unwrap();
    assert_eq!((found.index, &path), (5, &newest));
    let (loaded, body) = snaps.load(&path).unwrap();
    assert_eq!(loaded, meta(1, 5));
    assert_eq!(body, sm.whole(), "the chain merges into the whole state");

    // Purging keeps what the kept snapshots follow.
    snaps.purge(1).unwrap();
    assert_eq!(names(dir.path()).len(), 3);
    sm.put("e");
    sm.save(&snaps, None);
    snaps.purge(2).unwrap();
    assert_eq!(
        names(dir.path()).len(),
        4,
        "the second newest still needs its chain"
    );
    snaps.purge(1).unwrap();
    assert_eq!(names(dir.path()), vec![snapshot_name(1, 6)]);
}

#[test]
fn a_chain_with_a_missing_or_damaged_link_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(dir.path()).unwrap();
    let mut sm = Chained::new();
    sm.put("a");
    sm.save(&snaps, None);
    sm.put("b");
    sm.save(&snaps, Some((1, 1)));
    sm.put("c");
    let newest = sm.save(&snaps, Some((1, 2)));

    // A damaged middle link: the newest cannot load, nor can the middle one;
    // the whole snapshot can.
    let middle = dir.path().join(snapshot_name(1, 2));
    let good = fs::read(&middle).unwrap();
    let mut bad = good.clone();
    let at = bad.len() - 20;
    bad[at] ^= 0x40;
    fs::write(&middle, &bad).unwrap();
    match snaps.load(&newest) {
        Err(SnapshotError::Corrupt { path, reason }) => {
            assert_eq!(path, middle);
            assert!(reason.contains("checksum mismatch"), "{reason}");
        }
        other => panic!("a damaged link loaded: {other:?}"),
    }
    let (found, _) = snaps.latest().unwrap().unwrap();
    assert_eq!(
        found.index, 1,
        "falls back to the snapshot that still loads"
    );

    // A missing parent.
    fs::write(&middle, &good).unwrap();
    fs::remove_file(dir.path().join(snapshot_name(1, 1))).unwrap();
    match snaps.load(&newest) {
        Err(SnapshotError::Corrupt { path, reason }) => {
            assert_eq!(path, middle);
            assert!(
                reason.contains("term 1 index 1, which is missing"),
                "{reason}"
            );
        }
        other => panic!("a broken chain loaded: {other:?}"),
    }
    assert!(snaps.latest().unwrap().is_none());

    // A delta is not saved on top of a snapshot that is not there.
    sm.put("d");
    let err = snaps
        .save_delta(&meta(1, 4), (1, 1), |_| Ok(0))
        .unwrap_err();
    assert!(err.to_string().contains("cannot follow it"), "{err}");
    assert!(!dir.path().join(snapshot_name(1, 4)).exists());
}
