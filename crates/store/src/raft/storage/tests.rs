//! RaftLog's behaviour: durability, overwrites, compaction, snapshots, and a
//! single-node Ready loop over it.

use super::*;
use raft::{Config, RawNode};

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        term,
        index,
        data: Bytes::copy_from_slice(data),
        ..Entry::default()
    }
}

fn open(dir: &Path) -> RaftLog {
    RaftLog::open(dir, WalOptions::default()).expect("open raft log")
}

/// Segments of a few records each, so compaction can delete some.
fn open_small(dir: &Path) -> RaftLog {
    RaftLog::open(
        dir,
        WalOptions {
            segment_size: 128,
            ..WalOptions::default()
        },
    )
    .expect("open raft log")
}

fn all_entries(log: &RaftLogReader) -> Vec<Entry> {
    let first = log.first_index().unwrap();
    let last = log.last_index().unwrap();
    log.entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..HardState::default()
    }
}

fn is(result: raft::Result<u64>, expected: StorageError) -> bool {
    matches!(result, Err(raft::Error::Store(err)) if err == expected)
}

#[test]
fn entries_and_hard_state_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut conf_change = entry(3, 2, b"");
    conf_change.set_entry_type(EntryType::EntryConfChangeV2);
    conf_change.data = Bytes::from(b"\x08\x01".to_vec());
    conf_change.context = Bytes::from_static(b"why");
    let written = vec![entry(1, 1, b"a"), entry(2, 1, b"b"), conf_change];
    {
        let mut log = open(dir.path());
        log.append(&written).unwrap();
        log.set_hard_state(hard_state(2, 1, 2));
        log.sync().unwrap();
    }
    let log = open(dir.path());
    let reader = log.reader();
    assert_eq!(all_entries(&reader), written);
    assert_eq!(
        reader
            .entries(3, 4, None, GetEntriesContext::empty(false))
            .unwrap()[0]
            .get_entry_type(),
        EntryType::EntryConfChangeV2
    );
    assert_eq!(
        reader.initial_state().unwrap().hard_state,
        hard_state(2, 1, 2)
    );
    assert_eq!(reader.first_index().unwrap(), 1);
    assert_eq!(reader.last_index().unwrap(), 3);
    assert_eq!(reader.term(0).unwrap(), 0);
    assert_eq!(reader.term(3).unwrap(), 2);
    assert!(is(reader.term(4), StorageError::Unavailable));
}

#[test]
fn conflicting_suffix_is_overwritten_and_stays_overwritten_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = open_small(dir.path());
        let old: Vec<Entry> = (1..=6).map(|i| entry(i, 1, b"old entry")).collect();
        log.append(&old).unwrap();
        log.sync().unwrap();
        // A new leader of term 2 replaces 4..=6 with a shorter suffix.
        log.append(&[entry(4, 2, b"new"), entry(5, 2, b"new")])
            .unwrap();
        log.sync().unwrap();
        let terms: Vec<u64> = all_entries(&log.reader()).iter().map(|e| e.term).collect();
        assert_eq!(terms, [1, 1, 1, 2, 2]);
    }
    let log = open_small(dir.path());
    let reader = log.reader();
    let got: Vec<(u64, u64)> = all_entries(&reader)
        .iter()
        .map(|e| (e.index, e.term))
        .collect();
    assert_eq!(got, [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]);
    assert_eq!(reader.last_index().unwrap(), 5);
}

#[test]
fn nothing_is_durable_before_sync() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = open(dir.path());
        log.append(&[entry(1, 1, b"a")]).unwrap();
        log.set_hard_state(hard_state(1, 1, 1));
        log.set_conf_state(ConfState::from((vec![1], vec![])));
        // Dropped without sync, as in a crash.
    }
    let log = open(dir.path());
    let reader = log.reader();
    assert_eq!(reader.last_index().unwrap(), 0);
    let state = reader.initial_state().unwrap();
    assert_eq!(state.hard_state, HardState::default());
    assert!(!state.initialized());
}

#[test]
fn compact_then_term_of_compacted_index_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = open_small(dir.path());
        let entries: Vec<Entry> = (1..=20).map(|i| entry(i, 1, b"some data")).collect();
        log.append(&entries).unwrap();
        log.sync().unwrap();
        log.compact(15).unwrap();
        let reader = log.reader();
        assert!(is(reader.term(14), StorageError::Compacted));
        assert_eq!(reader.term(15).unwrap(), 1);
        assert_eq!(reader.first_index().unwrap(), 15);
        // Compacting below the first index changes nothing.
        log.compact(3).unwrap();
        assert_eq!(reader.first_index().unwrap(), 15);
    }
    let segments = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(segments < 10, "old segments were purged, {segments} remain");
    let log = open_small(dir.path());
    let reader = log.reader();
    assert!(is(reader.term(14), StorageError::Compacted));
    assert!(matches!(
        reader.entries(14, 16, None, GetEntriesContext::empty(false)),
        Err(raft::Error::Store(StorageError::Compacted))
    ));
    assert_eq!(reader.first_index().unwrap(), 15);
    assert_eq!(reader.last_index().unwrap(), 20);
    assert_eq!(all_entries(&reader).len(), 6);
}

#[test]
fn entries_respects_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    // Each entry encodes to 106 bytes: term, index and 100 bytes of data.
    let entries: Vec<Entry> = (1..=5).map(|i| entry(i, 1, &[7; 100])).collect();
    log.append(&entries).unwrap();
    let reader = log.reader();
    let count = |max: Option<u64>| {
        reader
            .entries(1, 6, max, GetEntriesContext::empty(false))
            .unwrap()
            .len()
    };
    assert_eq!(count(None), 5);
    assert_eq!(count(Some(raft::NO_LIMIT)), 5);
    assert_eq!(count(Some(250)), 2);
    assert_eq!(count(Some(0)), 1, "always at least one entry");
}

#[test]
fn snapshot_resets_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = open(dir.path());
        let entries: Vec<Entry> = (1..=5).map(|i| entry(i, 1, b"x")).collect();
        log.append(&entries).unwrap();
        log.sync().unwrap();
        let mut metadata = SnapshotMetadata {
            index: 10,
            term: 3,
            ..SnapshotMetadata::default()
        };
        metadata.set_conf_state(ConfState::from((vec![1, 2], vec![])));
        log.apply_snapshot(&metadata).unwrap();
        log.sync().unwrap();
        let reader = log.reader();
        assert_eq!(reader.first_index().unwrap(), 11);
        assert_eq!(reader.last_index().unwrap(), 10);
        log.append(&[entry(11, 3, b"after")]).unwrap();
        log.sync().unwrap();
    }
    let log = open(dir.path());
    let reader = log.reader();
    assert_eq!(reader.first_index().unwrap(), 11);
    assert_eq!(reader.last_index().unwrap(), 11);
    assert_eq!(reader.term(10).unwrap(), 3);
    assert!(is(reader.term(9), StorageError::Compacted));
    assert!(is(reader.term(12), StorageError::Unavailable));
    assert_eq!(all_entries(&reader), [entry(11, 3, b"after")]);
    let state = reader.initial_state().unwrap();
    assert_eq!(state.hard_state.commit, 10);
    assert_eq!(state.hard_state.term, 3);
    assert_eq!(state.conf_state.voters, [1, 2]);

    let snapshot = reader.snapshot(10, 2).unwrap();
    assert_eq!(
        (snapshot.get_metadata().index, snapshot.get_metadata().term),
        (10, 3)
    );
    assert!(matches!(
        reader.snapshot(11, 2),
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable
        ))
    ));
}

#[test]
fn snapshot_state_without_its_truncate_drops_stale_entries() {
    // A crash between apply_snapshot's state record and its truncate
    // record: the WAL holds the new state and the old entries.
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let old: Vec<wal::Entry> = (1..=5).map(|i| encode_entry(&entry(i, 1, b"x"))).collect();
        wal.append(&old).unwrap();
        let core = Core {
            snapshot_index: 3,
            snapshot_term: 2,
            first_index: 4,
            ..Core::default()
        };
        wal.set_state(&core.to_record().encode_to_vec()).unwrap();
        wal.sync().unwrap();
    }
    let mut log = open(dir.path());
    let reader = log.reader();
    assert_eq!(reader.last_index().unwrap(), 3);
    assert_eq!(reader.term(3).unwrap(), 2);
    log.append(&[entry(4, 2, b"new")]).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = open(dir.path());
    assert_eq!(all_entries(&log.reader()), [entry(4, 2, b"new")]);
}

#[test]
fn conf_state_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let conf_state = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        voters_outgoing: vec![1, 2, 5],
        learners_next: vec![5],
        auto_leave: true,
        ..ConfState::default()
    };
    {
        let mut log = open(dir.path());
        log.set_conf_state(conf_state.clone());
        log.sync().unwrap();
    }
    let log = open(dir.path());
    let state = log.reader().initial_state().unwrap();
    assert_eq!(state.conf_state, conf_state);
    assert!(state.initialized());
}

/// One member: campaign, propose, and run the Ready loop until the
/// proposal is committed; then it must all be there after a restart.
#[test]
fn single_node_commits_a_proposal_that_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let config = Config {
        id: 1,
        election_tick: 10,
        heartbeat_tick: 1,
        ..Config::default()
    };
    let mut log = open(dir.path());
    log.set_conf_state(ConfState::from((vec![1], vec![])));
    log.sync().unwrap();
    let mut node = RawNode::new(&config, log.reader(), &logger).unwrap();
    node.campaign().unwrap();

    let mut proposed = false;
    let mut committed_at = None;
    for _ in 0..20 {
        if !proposed && node.raft.state == raft::StateRole::Leader {
            node.propose(vec![], b"hello".to_vec()).unwrap();
            proposed = true;
        }
        if !node.has_ready() {
            continue;
        }
        let mut ready = node.ready();
        // 1. send messages: one member has nobody to send to.
        assert!(ready.messages().is_empty());
        // 2. apply the snapshot: none on a fresh member.
        assert!(ready.snapshot().is_empty());
        // 3. apply committed entries.
        let mut committed = ready.take_committed_entries();
        // 4. persist entries and HardState, fsync.
        log.append(ready.entries()).unwrap();
        if let Some(hs) = ready.hs() {
            log.set_hard_state(hs.clone());
        }
        log.sync().unwrap();
        // 5. advance; the light ready may commit more.
        let mut light = node.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hs = log.hard_state();
            hs.commit = commit;
            log.set_hard_state(hs);
            log.sync().unwrap();
        }
        committed.extend(light.take_committed_entries());
        node.advance_apply();
        if let Some(e) = committed.iter().find(|e| e.data.as_ref() == b"hello") {
            committed_at = Some(e.index);
            break;
        }
    }
    let index = committed_at.expect("the proposal was never committed");
    drop(node);
    drop(log);

    let log = open(dir.path());
    let reader = log.reader();
    let state = reader.initial_state().unwrap();
    assert!(state.hard_state.commit >= index);
    assert_eq!(state.hard_state.vote, 1);
    let stored = reader
        .entries(index, index + 1, None, GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(stored[0].data.as_ref(), b"hello");
}
