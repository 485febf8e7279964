//! The log's behaviour, each test one rule. Damage is done to the files by
//! hand, the way a crash or a bad disk would.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::segment::{is_zeros, parse_file_name};
use super::*;

/// A segment size that makes a handful of entries fill a segment.
const SMALL: u64 = 200;

/// A segment size no test fills, yet quick to preallocate.
const ROOMY: u64 = 1 << 20;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("put /registry/pods/p{index}").into_bytes(),
    }
}

fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    indexes.map(|i| entry(i, term)).collect()
}

/// Entries `first` at term 1 followed by entries `then` at term 2: a log
/// written, then written on by a later leader.
fn two_terms(
    first: std::ops::RangeInclusive<u64>,
    then: std::ops::RangeInclusive<u64>,
) -> Vec<Entry> {
    let mut all = entries(first, 1);
    all.extend(entries(then, 2));
    all
}

/// Preallocated segments of `segment_size`, as the store runs the log, the
/// first one included (the store's first segment grows with each write until
/// an eighth of it is written: see
/// `a_new_log_starts_plain_and_rolls_onto_a_spare_once_it_is_written_on`).
fn preallocated(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        preallocate: true,
        preallocate_first: true,
    }
}

/// Segments that start empty and grow with each write, as older versions
/// wrote them.
fn unallocated(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        preallocate: false,
        preallocate_first: false,
    }
}

fn open(dir: &Path) -> (Wal, Recovered) {
    Wal::open(dir, preallocated(ROOMY)).expect("open")
}

fn open_small(dir: &Path) -> (Wal, Recovered) {
    Wal::open(dir, preallocated(SMALL)).expect("open")
}

/// Segment files, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    paths.sort();
    paths
}

/// The first index in a segment's name.
fn named_first_index(path: &Path) -> u64 {
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    parse_file_name(name).expect("segment name").1
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

fn append_to_file(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).expect("open");
    file.write_all(bytes).expect("write");
}

/// Overwrites `path` with `bytes` at `offset`, in place.
fn overwrite(path: &Path, offset: usize, bytes: &[u8]) {
    let mut contents = fs::read(path).expect("read");
    contents[offset..offset + bytes.len()].copy_from_slice(bytes);
    fs::write(path, contents).expect("write");
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).expect("read");
    bytes[offset] ^= 0x40;
    fs::write(path, bytes).expect("write");
}

/// Size of the record `entry(index, _)` encodes to, for indexes 1..=9.
const ONE_DIGIT_RECORD: usize = 9 + 16 + "put /registry/pods/p1".len();

#[test]
fn entries_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, recovered) = open(dir.path());
    assert_eq!(recovered.entries, vec![]);
    assert_eq!((wal.first_index(), wal.last_index()), (0, 0));

    wal.append(&entries(1..=5, 1)).expect("append");
    wal.set_state(b"term=1 vote=1").expect("set_state");
    wal.sync().expect("sync");
    drop(wal);

    let (wal, recovered) = open(dir.path());
    assert_eq!(recovered.entries, entries(1..=5, 1));
    assert_eq!(recovered.state.as_deref(), Some(&b"term=1 vote=1"[..]));
    assert_eq!((wal.first_index(), wal.last_index()), (1, 5));
}

#[test]
fn nothing_is_written_before_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.append(&entries(1..=3, 1)).expect("append");
    wal.set_state(b"vote").expect("set_state");
    assert!(is_zeros(&fs::read(&segments(dir.path())[0]).expect("read")));
    drop(wal);

    let (_, recovered) = open(dir.path());
    assert_eq!(recovered.entries, vec![]);
    assert_eq!(recovered.state, None);
}

#[test]
fn many_appends_share_one_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    for i in 1..=500 {
        wal.append(&[entry(i, 1)]).expect("append");
    }
    wal.sync().expect("sync");
    drop(wal);

    let (wal, recovered) = open(dir.path());
    assert_eq!(recovered.entries, entries(1..=500, 1));
    assert_eq!(wal.last_index(), 500);
}

#[test]
fn torn_tail_is_truncated_on_recovery() {
    // Each way a crash can leave the end of the last segment, the entries that
    // must come back and whether the tail is cut off. The segment was written
    // without preallocation, so it ends with its last record; zeros after the
    // last whole record read as preallocated space and stay.
    let damages: [Damage; 6] = [
        ("last record cut short", |p| chop(p, 3), 9, true),
        (
            "cut inside the last header",
            |p| chop(p, ONE_DIGIT_RECORD as u64 - 4),
            9,
            true,
        ),
        (
            "whole frame of garbage appended",
            |p| {
                append_to_file(
                    p,
                    &[5, 0, 0, 0, 1, 2, 3, 4, 1, b'h', b'e', b'l', b'l', b'o'],
                )
            },
            10,
            true,
        ),
        (
            "random garbage appended",
            |p| append_to_file(p, b"\xde\xad\xbe\xef torn"),
            10,
            true,
        ),
        (
            "zeros appended",
            |p| append_to_file(p, &[0; 4096]),
            10,
            false,
        ),
        (
            "last record zeroed in place",
            |p| {
                let len = file_len(p) as usize;
                overwrite(p, len - ONE_DIGIT_RECORD, &[0; ONE_DIGIT_RECORD]);
            },
            9,
            true,
        ),
    ];
    for (damage, apply, last, cut) in damages {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || Wal::open(dir.path(), unallocated(ROOMY)).expect("open");
        let (mut wal, _) = open();
        wal.append(&entries(1..=9, 1)).expect("append");
        wal.sync().expect("sync");
        wal.append(&[entry(10, 1)]).expect("append");
        wal.sync().expect("sync");
        drop(wal);
        let path = &segments(dir.path())[0];
        apply(path);
        let damaged_len = file_len(path);

        let (mut wal, recovered) = open();
        assert_eq!(recovered.entries, entries(1..=last, 1), "{damage}");
        let whole_records = last * ONE_DIGIT_RECORD as u64 + u64::from(last == 10);
        assert_eq!(
            file_len(path),
            if cut { whole_records } else { damaged_len },
            "{damage}: cut {cut}"
        );

        // The log goes on from the cut, and the cut holds across a reopen.
        wal.append(&[entry(last + 1, 2)]).expect("append");
        wal.sync().expect("sync");
        drop(wal);
        let (_, recovered) = open();
        assert_eq!(recovered.entries.len() as u64, last + 1, "{damage}");
        assert_eq!(
            recovered.entries.last(),
            Some(&entry(last + 1, 2)),
            "{damage}"
        );
    }
}

/// How a crash damaged a file, the last entry that must come back, and
/// whether recovery cuts the tail off.
type Damage = (&'static str, fn(&Path), u64, bool);

fn chop(path: &Path, bytes: u64) {
    let file = OpenOptions::new().write(true).open(path).expect("open");
    file.set_len(file_len(path) - bytes).expect("set_len");
}

#[test]
fn damaged_record_followed_by_intact_ones_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.append(&entries(1..=5, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let path = &segments(dir.path())[0];
    assert_eq!(file_len(path), ROOMY, "the intact records end in zeros");
    flip_byte(path, ONE_DIGIT_RECORD + 20);

    match Wal::open(dir.path(), preallocated(ROOMY)) {
        Err(WalError::Corrupt {
            path: p, offset, ..
        }) => {
            assert_eq!((&p, offset), (path, ONE_DIGIT_RECORD as u64));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn corrupt_record_in_sealed_segment_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    wal.append(&entries(1..=9, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let sealed = &segments(dir.path())[0];
    assert!(
        segments(dir.path()).len() > 1,
        "test needs a sealed segment"
    );
    flip_byte(sealed, ONE_DIGIT_RECORD + 20);

    let err = Wal::open(dir.path(), preallocated(SMALL)).expect_err("opened");
    assert!(matches!(err, WalError::Corrupt { offset, .. } if offset == ONE_DIGIT_RECORD as u64));
    let message = err.to_string();
    assert!(message.contains(&sealed.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("at offset {ONE_DIGIT_RECORD}: checksum mismatch")),
        "{message}"
    );
}

#[test]
fn cut_short_sealed_segment_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    wal.append(&entries(1..=9, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    chop(&segments(dir.path())[0], 3);

    let err = Wal::open(dir.path(), preallocated(SMALL)).expect_err("opened");
    assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
}

#[test]
fn missing_segment_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    wal.append(&entries(1..=30, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    fs::remove_file(&segments(dir.path())[1]).expect("remove");

    let err = Wal::open(dir.path(), preallocated(SMALL)).expect_err("opened");
    assert!(
        matches!(err, WalError::MissingSegment { seq: 1, .. }),
        "{err}"
    );
}

#[test]
fn rolls_to_a_new_segment_past_segment_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    for batch in 0..6 {
        wal.append(&entries(batch * 5 + 1..=batch * 5 + 5, 1))
            .expect("append");
        wal.sync().expect("sync");
    }
    drop(wal);

    let paths = segments(dir.path());
    assert!(
        paths.len() >= 4,
        "30 records of ~45 bytes in 200-byte segments: {paths:?}"
    );
    let (sealed, _active) = paths.split_at(paths.len() - 1);
    for path in sealed {
        let len = file_len(path);
        assert!(
            (SMALL..SMALL + 64).contains(&len),
            "{} is {len} bytes",
            path.display()
        );
    }
    let firsts: Vec<u64> = paths.iter().map(|p| named_first_index(p)).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");

    // Each name tells the first entry in the file.
    for path in &paths {
        let bytes = fs::read(path).expect("read");
        match super::record::decode(&bytes) {
            Ok((super::record::Record::Entry(first), _)) => {
                assert_eq!(first.index, named_first_index(path), "{}", path.display());
            }
            other => panic!("{} starts with {other:?}", path.display()),
        }
    }

    let (_, recovered) = open_small(dir.path());
    assert_eq!(recovered.entries, entries(1..=30, 1));
}

#[test]
fn truncate_after_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.append(&entries(1..=10, 1)).expect("append");
    wal.sync().expect("sync");

    wal.truncate_after(6).expect("truncate");
    assert_eq!(wal.last_index(), 6);
    wal.append(&entries(7..=8, 2)).expect("append");
    wal.sync().expect("sync");
    drop(wal);

    let (wal, recovered) = open(dir.path());
    assert_eq!(recovered.entries, two_terms(1..=6, 7..=8));
    assert_eq!((wal.first_index(), wal.last_index()), (1, 8));
}

#[test]
fn truncate_after_is_not_durable_until_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.append(&entries(1..=10, 1)).expect("append");
    wal.sync().expect("sync");
    wal.truncate_after(4).expect("truncate");
    drop(wal);

    let (_, recovered) = open(dir.path());
    assert_eq!(recovered.entries, entries(1..=10, 1));
}

#[test]
fn truncate_after_into_an_older_segment_survives_reopen() {
    // The log goes back below the first index of the segment being written,
    // then grows again over several new segments.
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    wal.append(&entries(1..=40, 1)).expect("append");
    wal.sync().expect("sync");
    wal.truncate_after(3).expect("truncate");
    wal.append(&entries(4..=60, 2)).expect("append");
    wal.sync().expect("sync");
    drop(wal);

    let (wal, recovered) = open_small(dir.path());
    assert_eq!(recovered.entries, two_terms(1..=3, 4..=60));
    assert_eq!((wal.first_index(), wal.last_index()), (1, 60));
}

#[test]
fn truncate_after_below_the_first_index_empties_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.append(&entries(5..=10, 1)).expect("append");
    wal.truncate_after(2).expect("truncate");
    assert_eq!((wal.first_index(), wal.last_index()), (0, 0));
    wal.append(&[entry(3, 2)])
        .expect("an empty log starts anywhere");
    wal.sync().expect("sync");
    drop(wal);

    let (_, recovered) = open(dir.path());
    assert_eq!(recovered.entries, vec![entry(3, 2)]);
}

#[test]
fn purge_before_deletes_only_whole_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    wal.append(&entries(1..=100, 1)).expect("append");
    wal.sync().expect("sync");
    let before = segments(dir.path());
    // The segment holding 50 starts at the largest named index <= 50.
    let holder = before
        .iter()
        .rposition(|p| named_first_index(p) <= 50)
        .expect("a segment holds 50");
    assert!(
        holder > 0 && named_first_index(&before[holder]) < 50,
        "test needs 50 mid-segment"
    );

    wal.purge_before(50).expect("purge");
    assert_eq!(segments(dir.path()), before[holder..].to_vec());
    let first = named_first_index(&before[holder]);
    assert_eq!((wal.first_index(), wal.last_index()), (first, 100));
    drop(wal);

    let (mut wal, recovered) = open_small(dir.path());
    assert_eq!(recovered.entries, entries(first..=100, 1));

    // Even past the end, the segment being written stays.
    wal.purge_before(1000).expect("purge");
    let left = segments(dir.path());
    assert_eq!(left, before[before.len() - 1..].to_vec());
    wal.append(&[entry(101, 1)]).expect("append");
    wal.sync().expect("sync");
}

#[test]
fn purge_before_keeps_the_last_state_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    wal.set_state(b"term=1 vote=3").expect("set_state");
    wal.append(&entries(1..=60, 1)).expect("append");
    wal.sync().expect("sync");
    let oldest = segments(dir.path())[0].clone();

    wal.purge_before(50).expect("purge");
    assert!(
        !oldest.exists(),
        "the segment with the state was not purged"
    );
    drop(wal);

    let (_, recovered) = open_small(dir.path());
    assert_eq!(recovered.state.as_deref(), Some(&b"term=1 vote=3"[..]));
}

#[test]
fn last_state_record_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.set_state(b"a").expect("set_state");
    wal.append(&[entry(1, 1)]).expect("append");
    wal.sync().expect("sync");
    wal.set_state(b"b").expect("set_state");
    wal.set_state(b"c").expect("set_state");
    wal.sync().expect("sync");
    drop(wal);

    let (mut wal, recovered) = open(dir.path());
    assert_eq!(recovered.state.as_deref(), Some(&b"c"[..]));
    wal.set_state(b"d, never synced").expect("set_state");
    drop(wal);
    let (_, recovered) = open(dir.path());
    assert_eq!(recovered.state.as_deref(), Some(&b"c"[..]));
}

#[test]
fn append_requires_consecutive_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    assert!(matches!(
        wal.append(&[entry(0, 1)]),
        Err(WalError::ZeroIndex)
    ));
    wal.append(&entries(5..=6, 1))
        .expect("an empty log starts anywhere");

    let gap = wal.append(&[entry(8, 1)]);
    assert!(
        matches!(gap, Err(WalError::NotConsecutive { last: 6, index: 8 })),
        "{gap:?}"
    );
    let repeat = wal.append(&[entry(6, 1)]);
    assert!(
        matches!(repeat, Err(WalError::NotConsecutive { last: 6, index: 6 })),
        "{repeat:?}"
    );
    let gap_inside = wal.append(&[entry(7, 1), entry(9, 1)]);
    assert!(matches!(
        gap_inside,
        Err(WalError::NotConsecutive { last: 7, index: 9 })
    ));
    assert_eq!(wal.last_index(), 6, "a rejected batch appends nothing");

    wal.append(&[entry(7, 1)]).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let (_, recovered) = open(dir.path());
    assert_eq!(recovered.entries, entries(5..=7, 1));
}

#[test]
fn failed_write_leaves_no_garbage_and_the_log_stays_usable() {
    for options in [preallocated(ROOMY), unallocated(ROOMY)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), options.clone()).expect("open");
        wal.append(&entries(1..=5, 1)).expect("append");
        wal.sync().expect("sync");
        let path = segments(dir.path())[0].clone();
        let good = fs::read(&path).expect("read");

        wal.append(&entries(6..=8, 1)).expect("append");
        wal.active.fail_next_write_after = Some(10);
        let err = wal.sync().expect_err("the disk is full");
        assert!(
            matches!(
                err,
                WalError::Io {
                    action: "write",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(
            fs::read(&path).expect("read") == good,
            "{options:?}: the partial record was not undone"
        );

        // Space is back: the buffered entries are written on the next sync.
        wal.append(&[entry(9, 1)]).expect("append");
        wal.sync().expect("sync");
        drop(wal);
        let (_, recovered) = Wal::open(dir.path(), options).expect("open");
        assert_eq!(recovered.entries, entries(1..=9, 1));
    }
}

#[test]
fn entries_refused_by_a_failed_write_can_be_rolled_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.append(&entries(1..=5, 1)).expect("append");
    wal.sync().expect("sync");

    // The store's path on a full disk: the batch is refused, then cut off.
    wal.append(&entries(6..=8, 1)).expect("append");
    wal.active.fail_next_write_after = Some(10);
    wal.sync().expect_err("the disk is full");
    wal.truncate_after(5).expect("roll back");
    // The disk is still full: the roll-back must not need to write anything.
    wal.active.fail_next_write_after = Some(0);
    wal.sync().expect("nothing refused is written again");
    assert_eq!(wal.last_index(), 5);
    wal.active.fail_next_write_after = None;

    // Space is back: the next batch reuses the refused indexes.
    wal.append(&entries(6..=7, 2)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let (_, recovered) = open(dir.path());
    assert_eq!(recovered.entries, two_terms(1..=5, 6..=7));
}

#[test]
fn failed_fsync_poisons_the_log_until_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open(dir.path());
    wal.append(&entries(1..=3, 1)).expect("append");
    wal.active.fail_next_sync = true;
    let err = wal.sync().expect_err("fsync failed");
    assert!(
        matches!(
            err,
            WalError::Io {
                action: "fsync",
                ..
            }
        ),
        "{err}"
    );

    // A retried fsync could report success for pages the kernel dropped.
    assert!(matches!(wal.sync(), Err(WalError::Poisoned { .. })));
    assert!(matches!(
        wal.append(&[entry(4, 1)]),
        Err(WalError::Poisoned { .. })
    ));
    drop(wal);

    let (mut wal, _) = open(dir.path());
    wal.append(&[entry(wal.last_index() + 1, 1)])
        .expect("append after reopen");
    wal.sync().expect("sync after reopen");
}

#[test]
fn purge_after_a_deep_truncate_recovers_the_same_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = open_small(dir.path());
    wal.append(&entries(1..=40, 1)).expect("append");
    wal.sync().expect("sync");
    wal.truncate_after(12).expect("truncate");
    wal.append(&entries(13..=30, 2)).expect("append");
    wal.purge_before(20).expect("purge");
    let first = wal.first_index();
    assert!(
        (2..=20).contains(&first),
        "purged too much or nothing: {first}"
    );
    drop(wal);

    let (wal, recovered) = open_small(dir.path());
    assert_eq!(
        recovered.entries,
        two_terms(first.min(13)..=12, first.max(13)..=30)
    );
    assert_eq!((wal.first_index(), wal.last_index()), (first, 30));
}

/// The records at the start of the file at `path`, up to the first bytes that
/// do not decode, and the offset where they end.
fn records_in(path: &Path) -> (Vec<super::record::Record>, usize) {
    let bytes = fs::read(path).expect("read");
    let mut records = Vec::new();
    let mut offset = 0;
    while let Ok((record, len)) = super::record::decode(&bytes[offset..]) {
        records.push(record);
        offset += len;
    }
    (records, offset)
}

#[test]
fn a_new_segment_is_the_segment_size_in_zeros_after_its_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(dir.path(), preallocated(4096)).expect("open");
    let first = segments(dir.path())[0].clone();
    assert_eq!(file_len(&first), 4096, "a new log's first segment");
    assert!(is_zeros(&fs::read(&first).expect("read")));

    wal.append(&entries(1..=5, 1)).expect("append");
    wal.sync().expect("sync");
    let bytes = fs::read(&first).expect("read");
    assert_eq!(bytes.len(), 4096, "a write grew the preallocated file");
    let (records, end) = records_in(&first);
    assert_eq!((records.len(), end), (5, 5 * ONE_DIGIT_RECORD));
    assert!(is_zeros(&bytes[end..]));

    // The segments after it are taken from the background thread.
    wal.append(&entries(6..=200, 1)).expect("append");
    wal.sync().expect("sync");
    let paths = segments(dir.path());
    assert!(paths.len() >= 3, "{paths:?}");
    let last = paths.last().expect("a segment");
    let bytes = fs::read(last).expect("read");
    let (records, end) = records_in(last);
    assert!(!records.is_empty());
    assert_eq!(bytes.len(), 4096, "{}", last.display());
    assert!(is_zeros(&bytes[end..]));
    drop(wal);

    let (_, recovered) = Wal::open(dir.path(), preallocated(4096)).expect("open");
    assert_eq!(recovered.entries, entries(1..=200, 1));
}

#[test]
fn a_preallocated_zero_tail_is_kept_at_reopen_and_written_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || Wal::open(dir.path(), preallocated(4096)).expect("open");
    let (mut wal, _) = open();
    wal.append(&entries(1..=5, 1)).expect("append");
    wal.set_state(b"term=1").expect("set_state");
    wal.sync().expect("sync");
    drop(wal);
    let path = segments(dir.path())[0].clone();
    let synced = fs::read(&path).expect("read");

    let (mut wal, recovered) = open();
    assert_eq!(recovered.entries, entries(1..=5, 1));
    assert_eq!(recovered.state.as_deref(), Some(&b"term=1"[..]));
    assert!(
        fs::read(&path).expect("read") == synced,
        "opening the log changed its last segment"
    );
    wal.append(&entries(6..=8, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);

    let (mut wal, recovered) = open();
    assert_eq!(recovered.entries, entries(1..=8, 1));
    assert_eq!(recovered.state.as_deref(), Some(&b"term=1"[..]));
    let bytes = fs::read(&path).expect("read");
    assert_eq!(bytes.len(), 4096);
    let (records, end) = records_in(&path);
    assert_eq!(records.len(), 9, "eight entries and a state");
    assert!(is_zeros(&bytes[end..]));
    wal.append(&[entry(9, 2)]).expect("append");
    wal.sync().expect("sync");
    drop(wal);

    let (_, recovered) = open();
    assert_eq!(recovered.entries, two_terms(1..=8, 9..=9));
}

#[test]
fn rolling_cuts_the_finished_segment_to_its_records() {
    // A segment preallocated at 4096 bytes, opened again with smaller
    // segments: it is full after a few more records, and must not keep its
    // zeros once the next segment begins.
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(dir.path(), preallocated(4096)).expect("open");
    wal.append(&entries(1..=3, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    assert_eq!(file_len(&segments(dir.path())[0]), 4096);

    let (mut wal, _) = open_small(dir.path());
    wal.append(&entries(4..=20, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let paths = segments(dir.path());
    assert!(paths.len() >= 3, "{paths:?}");
    for sealed in &paths[..paths.len() - 1] {
        let (records, end) = records_in(sealed);
        assert!(!records.is_empty());
        assert_eq!(
            file_len(sealed),
            end as u64,
            "{} has bytes after its records",
            sealed.display()
        );
    }

    let (_, recovered) = open_small(dir.path());
    assert_eq!(recovered.entries, entries(1..=20, 1));
}

#[test]
fn a_leftover_spare_is_removed_at_open_and_never_read() {
    // A crash left a spare holding whole records that were never in the log.
    let mut stale = Vec::new();
    for entry in entries(4..=6, 9) {
        super::record::Record::Entry(entry).encode(&mut stale);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spare = dir.path().join(prealloc::SPARE_FILE_NAME);
    let (mut wal, _) = Wal::open(dir.path(), unallocated(ROOMY)).expect("open");
    wal.append(&entries(1..=3, 1)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    fs::write(&spare, &stale).expect("write spare");

    let (wal, recovered) = Wal::open(dir.path(), unallocated(ROOMY)).expect("open");
    assert_eq!(recovered.entries, entries(1..=3, 1));
    assert!(!spare.exists(), "the leftover spare is still there");
    drop(wal);

    // With preallocation the log rolls onto spares made afresh.
    fs::write(&spare, &stale).expect("write spare");
    let (mut wal, recovered) = open_small(dir.path());
    assert_eq!(recovered.entries, entries(1..=3, 1));
    wal.append(&entries(4..=20, 2)).expect("append");
    wal.sync().expect("sync");
    drop(wal);
    let (_, recovered) = open_small(dir.path());
    assert_eq!(recovered.entries, two_terms(1..=3, 4..=20));
}

#[test]
fn records_of_a_failed_write_are_not_read_back_after_a_shorter_one() {
    for options in [preallocated(ROOMY), unallocated(ROOMY)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), options.clone()).expect("open");
        wal.append(&entries(1..=5, 1)).expect("append");
        wal.sync().expect("sync");

        // Two whole records of the batch reach the file before the disk fills.
        wal.append(&entries(6..=8, 1)).expect("append");
        wal.active.fail_next_write_after = Some(2 * ONE_DIGIT_RECORD);
        wal.sync().expect_err("the disk is full");
        // The store gives the batch up and later writes a shorter one.
        wal.truncate_after(5).expect("roll back");
        wal.append(&[entry(6, 2)]).expect("append");
        wal.sync().expect("sync");
        drop(wal);

        let (_, recovered) = Wal::open(dir.path(), options.clone()).expect("open");
        assert_eq!(recovered.entries, two_terms(1..=5, 6..=6), "{options:?}");
    }
}

/// How a crash damaged a preallocated file, given where its records end, and
/// the last entry that must come back.
type PreallocatedDamage = (&'static str, fn(&Path, usize), u64);

#[test]
fn torn_record_before_the_preallocated_zeros_is_cut() {
    // Each way a crash can leave the end of the records in a preallocated
    // segment, given where they end, and the last entry that must come back.
    let damages: [PreallocatedDamage; 3] = [
        (
            "the end of the last record never written",
            |p, end| overwrite(p, end - 5, &[0; 5]),
            9,
        ),
        (
            "garbage after the last record",
            |p, end| overwrite(p, end, b"\xde\xad\xbe\xef torn"),
            10,
        ),
        (
            "a header without its payload",
            |p, end| overwrite(p, end, &[30, 0, 0, 0, 9, 9, 9, 9, 1]),
            10,
        ),
    ];
    for (damage, apply, last) in damages {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = open(dir.path());
        wal.append(&entries(1..=9, 1)).expect("append");
        wal.append(&[entry(10, 1)]).expect("append");
        wal.sync().expect("sync");
        drop(wal);
        let path = &segments(dir.path())[0];
        let (_, end) = records_in(path);
        apply(path, end);
        assert_eq!(file_len(path), ROOMY, "{damage}: zeros follow the damage");

        let (mut wal, recovered) = open(dir.path());
        assert_eq!(recovered.entries, entries(1..=last, 1), "{damage}");
        let whole_records = last * ONE_DIGIT_RECORD as u64 + u64::from(last == 10);
        assert_eq!(file_len(path), whole_records, "{damage}: tail not cut");

        wal.append(&[entry(last + 1, 2)]).expect("append");
        wal.sync().expect("sync");
        drop(wal);
        let (_, recovered) = open(dir.path());
        assert_eq!(
            recovered.entries,
            two_terms(1..=last, last + 1..=last + 1),
            "{damage}"
        );
    }
}

#[test]
fn a_new_log_starts_plain_and_rolls_onto_a_spare_once_it_is_written_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = WalOptions {
        segment_size: 4096,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(dir.path(), options.clone()).expect("open");
    let spare = dir.path().join(prealloc::SPARE_FILE_NAME);
    let first = segments(dir.path())[0].clone();
    assert_eq!(file_len(&first), 0, "opening a new log wrote zeros");
    wal.append(&entries(1..=5, 1)).expect("append");
    wal.sync().expect("sync");
    assert_eq!(file_len(&first), 5 * ONE_DIGIT_RECORD as u64);
    assert!(
        !spare.exists(),
        "a spare before an eighth of a segment was written"
    );

    // Past an eighth of the segment size the log asks for a spare and moves
    // onto it at a later write once it is ready, long before the first
    // segment is full.
    let mut index = 5;
    while !wal.active.is_preallocated() {
        assert!(index < 60, "still on a plain segment after {index} entries");
        index += 1;
        wal.append(&[entry(index, 1)]).expect("append");
        wal.sync().expect("sync");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let paths = segments(dir.path());
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(file_len(&paths[0]) < 4096, "the first segment was filled");
    assert_eq!(file_len(&paths[1]), 4096);
    drop(wal);

    let (_, recovered) = Wal::open(dir.path(), options).expect("open");
    assert_eq!(recovered.entries, entries(1..=index, 1));
}
