//! Snapshots as specifications: what goes in comes back out, exactly, and
//! nothing damaged gets in.

use skiff_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use skiff_proto::etcdserverpb::{
    request_op, CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use skiff_proto::store::{log_entry::Request, LogEntry};

use super::{merge_chain, SnapshotPoint};
use crate::error::StoreError;
use crate::mvcc::Mvcc;

/// One member's state machine on a temporary sled database.
struct Member {
    mvcc: Mvcc,
    index: u64,
    db: sled::Db,
}

impl Member {
    fn new() -> Self {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mvcc = Mvcc::open(db.open_tree("kv").unwrap()).unwrap();
        Member { mvcc, index: 0, db }
    }

    /// A new member whose state machine is restored from `source`'s snapshot.
    fn restored_from(source: &mut Member) -> Self {
        let stream = source.snapshot();
        let mut target = Member::new();
        target
            .mvcc
            .restore_snapshot(&mut stream.as_slice())
            .unwrap();
        target
    }

    /// Applies the next entry without committing it to sled.
    fn apply_staged(&mut self, request: Request) {
        self.index += 1;
        let entry = LogEntry {
            id: 0,
            proposer: 0,
            request: Some(request),
        };
        self.mvcc.apply(self.index, &entry).unwrap();
    }

    fn apply(&mut self, request: Request) {
        self.apply_staged(request);
        self.mvcc.commit().unwrap();
    }

    fn put(&mut self, key: &str, value: &str, lease: i64) {
        self.apply(Request::Put(put(key, value, lease)));
    }

    fn snapshot(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let written = self.mvcc.write_snapshot(&mut out).unwrap();
        assert_eq!(written, out.len() as u64, "write_snapshot counts its bytes");
        out
    }

    /// Every entry sled holds, once the writer has caught up.
    fn raw(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.mvcc.backend.drain().unwrap();
        self.mvcc
            .backend
            .raw_entries()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }
}

fn put(key: &str, value: &str, lease: i64) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        ..Default::default()
    }
}

fn op_put(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(put(key, value, 0))),
    }
}

fn op_delete(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.into(),
                ..Default::default()
            },
        )),
    }
}

/// A store with history on both sides of a compaction, a txn, deletes and
/// leases with keys attached; the last entry is applied but not committed.
fn populated() -> Member {
    let mut m = Member::new();
    m.apply(Request::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 7 }));
    m.apply(Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 8 }));
    m.apply(Request::LeaseGrant(LeaseGrantRequest { ttl: 90, id: 9 }));
    m.put("a", "1", 0);
    m.put("b", "1", 0);
    m.put("a", "2", 0);
    m.put("leased/x", "x", 7);
    m.put("leased/y", "y", 8);
    m.put("leased/z", "z", 9);
    m.apply(Request::DeleteRange(DeleteRangeRequest {
        key: "b".into(),
        ..Default::default()
    }));
    m.apply(Request::Txn(TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: "a".into(),
            target_union: Some(TargetUnion::Value("2".into())),
            range_end: Vec::new(),
        }],
        success: vec![op_put("a", "3"), op_put("c", "1"), op_delete("leased/z")],
        failure: vec![op_put("a", "failed")],
    }));
    m.put("c", "2", 0);
    let compact_at = m.mvcc.current_revision() - 2;
    m.apply(Request::Compaction(CompactionRequest {
        revision: compact_at,
        physical: false,
    }));
    m.put("a", "4", 0);
    m.put("d", "1", 7);
    m.apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 8 }));
    m.apply_staged(Request::Put(put("e", "staged", 0)));
    m
}

fn all_keys_at(revision: i64) -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        revision,
        ..Default::default()
    }
}

/// Asserts that two stores answer every read the same way.
fn assert_same_state(a: &Mvcc, b: &Mvcc) {
    assert_eq!(a.current_revision(), b.current_revision(), "revision");
    assert_eq!(a.compacted_revision(), b.compacted_revision(), "compaction");
    assert_eq!(a.applied_index(), b.applied_index(), "applied index");
    assert_eq!(a.leases(), b.leases(), "leases and their keys");
    assert_eq!(a.key_count(), b.key_count(), "live keys");
    for rev in 0..=a.current_revision() + 1 {
        assert_eq!(
            a.range(&all_keys_at(rev)),
            b.range(&all_keys_at(rev)),
            "range at revision {rev}"
        );
        assert_eq!(a.hash_kv(rev), b.hash_kv(rev), "hash_kv at revision {rev}");
    }
    let (from, to) = (a.compacted_revision(), a.current_revision());
    assert_eq!(
        a.history(from, to, &[0], &[0]).unwrap(),
        b.history(from, to, &[0], &[0]).unwrap(),
        "history since the compaction"
    );
}

#[test]
fn a_restored_store_answers_every_read_as_the_original() {
    let mut source = populated();
    let mut target = Member::restored_from(&mut source);

    assert_same_state(&source.mvcc, &target.mvcc);
    assert!(
        source.mvcc.compacted_revision() > 0,
        "the history was compacted"
    );
    assert_eq!(source.mvcc.applied_index(), source.index);
    let leases: Vec<i64> = target.mvcc.leases().keys().copied().collect();
    assert_eq!(leases, vec![7, 9], "lease 8 was revoked");
    assert_eq!(target.mvcc.leases()[&7].keys.len(), 2, "leased/x and d");
    assert_eq!(
        target
            .mvcc
            .get_at(b"e", target.mvcc.current_revision())
            .unwrap()
            .unwrap()
            .value,
        b"staged",
        "an applied but uncommitted entry is part of the snapshot"
    );
    assert_eq!(source.raw(), target.raw(), "sled holds the same entries");
}

#[test]
fn a_restored_store_goes_on_applying_as_the_original() {
    let mut source = populated();
    let mut target = Member::restored_from(&mut source);
    target.index = source.index;

    for m in [&mut source, &mut target] {
        m.put("d", "2", 7);
        m.apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 7 }));
        m.put("f", "1", 9);
    }
    assert_same_state(&source.mvcc, &target.mvcc);
    assert_eq!(source.raw(), target.raw());
}

#[test]
fn a_restored_store_survives_a_reopen() {
    let mut source = populated();
    let target = Member::restored_from(&mut source);
    let Member { mvcc, db, .. } = target;
    drop(mvcc);
    let reopened = Mvcc::open(db.open_tree("kv").unwrap()).unwrap();
    assert_same_state(&source.mvcc, &reopened);
}

#[test]
fn restoring_replaces_the_state_rather_than_merging_it() {
    let mut source = populated();
    let stream = source.snapshot();

    let mut target = Member::new();
    target.apply(Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 99 }));
    for i in 0..40 {
        target.put(&format!("only-here/{i}"), "v", 99);
    }
    target.put("a", "from the other store", 0);
    target.apply_staged(Request::Put(put("staged-here", "v", 0)));
    assert!(target.mvcc.applied_index() > source.mvcc.applied_index());

    target
        .mvcc
        .restore_snapshot(&mut stream.as_slice())
        .unwrap();
    assert_same_state(&source.mvcc, &target.mvcc);
    assert!(!target.mvcc.leases().contains_key(&99));
    assert_eq!(
        source.raw(),
        target.raw(),
        "no entry of the old state is left"
    );
}

#[test]
fn an_empty_store_round_trips() {
    let mut source = Member::new();
    let stream = source.snapshot();
    let mut target = populated();
    target
        .mvcc
        .restore_snapshot(&mut stream.as_slice())
        .unwrap();
    assert_same_state(&source.mvcc, &target.mvcc);
    assert_eq!(target.mvcc.current_revision(), 1);
    assert_eq!(target.mvcc.applied_index(), 0);
    let empty = source.raw();
    assert_eq!(
        empty.len(),
        1,
        "an empty store holds its layout record only"
    );
    assert_eq!(target.raw(), empty);
}

/// Restores `stream` into `target`, expecting an error; returns its text.
fn rejected(target: &mut Member, stream: &[u8]) -> String {
    let before = target.raw();
    let err = match target.mvcc.restore_snapshot(&mut &*stream) {
        Ok(()) => panic!("a damaged stream of {} bytes was accepted", stream.len()),
        Err(StoreError::Storage(text)) => text,
        Err(other) => panic!("unexpected error {other:?}"),
    };
    assert!(
        err.starts_with("state-machine snapshot: "),
        "the error says what it is about: {err}"
    );
    assert_eq!(target.raw(), before, "a rejected stream changes nothing");
    err
}

#[test]
fn a_truncated_stream_is_rejected_wherever_it_is_cut() {
    let stream = populated().snapshot();
    let mut target = Member::new();
    target.put("mine", "1", 0);
    for len in 0..stream.len() {
        let err = rejected(&mut target, &stream[..len]);
        assert!(err.contains("truncated"), "cut at {len}: {err}");
    }
    assert_eq!(target.mvcc.current_revision(), 2);
    let err = rejected(&mut target, &[stream.as_slice(), b"x"].concat());
    assert!(err.contains("after the checksum"), "{err}");
}

#[test]
fn a_flipped_bit_anywhere_is_rejected() {
    let stream = populated().snapshot();
    let mut target = Member::new();
    for pos in 0..stream.len() {
        let mut damaged = stream.clone();
        damaged[pos] ^= 0x10;
        rejected(&mut target, &damaged);
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let stream = populated().snapshot();
    let mut target = Member::new();
    let mut bad_magic = stream.clone();
    bad_magic[0] = b'X';
    assert!(rejected(&mut target, &bad_magic).contains("not a skiff state-machine snapshot"));
    let mut bad_version = stream.clone();
    bad_version[11] = 5;
    assert!(rejected(&mut target, &bad_version).contains("version 5 is not supported"));
    let mut older = stream.clone();
    older[11] = 1;
    assert!(rejected(&mut target, &older).contains("stored one change per key"));
    // The last byte of the first entry's value (every entry is 4 + key + 4 + value).
    let key_len = u32::from_be_bytes(stream[12..16].try_into().unwrap()) as usize;
    let value_at = 16 + key_len;
    let value_len = u32::from_be_bytes(stream[value_at..value_at + 4].try_into().unwrap());
    let mut bad_value = stream.clone();
    bad_value[value_at + 4 + value_len as usize - 1] ^= 1;
    assert!(rejected(&mut target, &bad_value).contains("checksum mismatch"));
    let mut huge_key = stream.clone();
    huge_key[12] = 0x7f;
    assert!(rejected(&mut target, &huge_key).contains("claims a key of"));
}

/// A `Write` that stops at its first write until the test lets it go, so the
/// test can act while a dump is in the middle of its stream.
struct Gate {
    started: std::sync::mpsc::Sender<()>,
    go: std::sync::mpsc::Receiver<()>,
    open: bool,
    out: Vec<u8>,
}

impl std::io::Write for Gate {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.open {
            self.open = true;
            let _ = self.started.send(());
            let _ = self.go.recv();
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A dump being written on its own thread, held at its first write.
struct HeldDump {
    go: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<(crate::error::Result<u64>, Vec<u8>)>,
}

impl HeldDump {
    /// Begins a snapshot of `m` and writes it on a thread, returning once the
    /// thread has waited for the freeze point and started its stream.
    fn start(m: &mut Member) -> HeldDump {
        let dump = m.mvcc.begin_snapshot().unwrap();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut gate = Gate {
                started: started_tx,
                go: go_rx,
                open: false,
                out: Vec::new(),
            };
            let written = dump.write(&mut gate);
            (written, gate.out)
        });
        started.recv().expect("the dump reached its stream");
        HeldDump { go, thread }
    }

    /// Lets the dump go on and returns what it wrote.
    fn finish(self) -> (crate::error::Result<u64>, Vec<u8>) {
        self.go.send(()).unwrap();
        self.thread.join().unwrap()
    }
}

#[test]
fn applies_go_on_during_a_dump_which_holds_the_state_at_its_freeze_point() {
    let mut source = populated();
    let freeze_index = source.index;
    let dump = HeldDump::start(&mut source);

    // More turns than the sled writer's queue holds, each committed.
    for i in 0..300 {
        source.put(&format!("later/{i:03}"), "v", 0);
    }
    let later = RangeRequest {
        key: b"later/".to_vec(),
        range_end: b"later0".to_vec(),
        ..Default::default()
    };
    assert_eq!(
        source.mvcc.range(&later).unwrap().count,
        300,
        "the later writes are readable while the dump runs"
    );
    // A sled writer that ignored the freeze (it gathers for 10 ms) would have
    // written them into the tree being copied by now.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (written, stream) = dump.finish();
    assert_eq!(written.unwrap(), stream.len() as u64);

    let mut target = Member::new();
    target
        .mvcc
        .restore_snapshot(&mut stream.as_slice())
        .unwrap();
    let at_freeze = populated();
    assert_same_state(&at_freeze.mvcc, &target.mvcc);
    assert_eq!(target.mvcc.applied_index(), freeze_index);
    assert_eq!(target.mvcc.range(&later).unwrap().count, 0);

    // Once the dump is done, the later writes reach sled itself.
    source.mvcc.backend.wait_flushed();
    let Member { mvcc, db, index } = source;
    drop(mvcc);
    let reopened = Mvcc::open(db.open_tree("kv").unwrap()).unwrap();
    assert_eq!(reopened.applied_index(), index);
    assert_eq!(reopened.range(&later).unwrap().count, 300);
}

#[test]
fn only_one_dump_runs_at_a_time() {
    let mut source = populated();
    let first = source.mvcc.begin_snapshot().unwrap();
    assert!(source.mvcc.begin_snapshot().is_err());
    drop(first);
    let mut out = Vec::new();
    source
        .mvcc
        .begin_snapshot()
        .unwrap()
        .write(&mut out)
        .unwrap();
    assert!(!out.is_empty());
}

#[test]
fn restoring_abandons_a_running_dump() {
    let mut target = populated();
    let dump = HeldDump::start(&mut target);
    let stream = Member::new().snapshot();
    // Does not wait for the dump, which is stopped at its first write.
    target
        .mvcc
        .restore_snapshot(&mut stream.as_slice())
        .unwrap();
    let (written, _) = dump.finish();
    let err = written.expect_err("a dump of a replaced tree must fail");
    assert!(err.to_string().contains("abandoned"), "{err}");
    assert_eq!(target.mvcc.applied_index(), 0);
}

/// Writes a snapshot of `m` on top of one taken at `earlier`; returns the
/// stream, whether it is a delta, and where it leaves the state.
fn snapshot_after(
    m: &mut Member,
    earlier: Option<SnapshotPoint>,
) -> (Vec<u8>, bool, SnapshotPoint) {
    let dump = m.mvcc.begin_snapshot_after(earlier).unwrap();
    let (delta, point) = (dump.delta_after().is_some(), dump.point());
    let mut out = Vec::new();
    let written = dump.write(&mut out).unwrap();
    assert_eq!(written, out.len() as u64, "a dump counts its bytes");
    (out, delta, point)
}

/// Changes every kind of record after a snapshot: new history, a deleted
/// key, a lease granted and one revoked (with its key), a txn.
fn change_everything(m: &mut Member, round: usize) {
    m.put("a", &format!("after-{round}"), 0);
    m.put(&format!("new-{round}"), "1", 0);
    m.apply(Request::LeaseGrant(LeaseGrantRequest {
        ttl: 40,
        id: 100 + round as i64,
    }));
    m.put(&format!("leased/{round}"), "l", 100 + round as i64);
    // Leases 7 and 9 are alive after `populated`.
    m.apply(Request::LeaseRevoke(LeaseRevokeRequest {
        id: [7, 9][round],
    }));
    m.apply(Request::DeleteRange(DeleteRangeRequest {
        key: "c".into(),
        ..Default::default()
    }));
    m.apply(Request::Txn(TxnRequest {
        success: vec![op_put("t", &round.to_string()), op_delete("a")],
        ..Default::default()
    }));
}

#[test]
fn deltas_merged_onto_their_whole_snapshot_are_the_whole_state() {
    let mut source = populated();
    let (whole, delta, mut point) = snapshot_after(&mut source, None);
    assert!(!delta, "with nothing earlier a snapshot is whole");
    let mut deltas = Vec::new();
    for round in 0..2 {
        change_everything(&mut source, round);
        let (stream, delta, next) = snapshot_after(&mut source, Some(point));
        assert!(
            delta,
            "round {round}: with no compaction since, a snapshot is a delta"
        );
        assert!(next.revision > point.revision);
        deltas.push(stream);
        point = next;
    }
    let merged = merge_chain(&whole, deltas.iter().map(Vec::as_slice)).unwrap();
    // The same bytes as a whole snapshot taken now: the same entries, in order.
    let now = source.snapshot();
    assert_eq!(merged, now, "the merged chain is the whole state");
    assert!(
        deltas.iter().all(|d| d.len() < now.len() / 2),
        "a delta copies less than the whole ({:?} vs {})",
        deltas.iter().map(Vec::len).collect::<Vec<_>>(),
        now.len()
    );
    let mut target = Member::new();
    target
        .mvcc
        .restore_snapshot(&mut merged.as_slice())
        .unwrap();
    assert_same_state(&source.mvcc, &target.mvcc);
}

#[test]
fn a_compaction_makes_the_next_snapshot_whole() {
    let mut source = populated();
    let (_, _, point) = snapshot_after(&mut source, None);
    source.put("a", "5", 0);
    let revision = source.mvcc.current_revision();
    source.apply(Request::Compaction(CompactionRequest {
        revision,
        physical: false,
    }));
    let (stream, delta, _) = snapshot_after(&mut source, Some(point));
    assert!(!delta, "history that an earlier snapshot holds was dropped");
    assert_eq!(stream, source.snapshot());
}

#[test]
fn a_delta_is_restored_only_merged_onto_what_it_follows() {
    let mut source = populated();
    let (whole, _, point) = snapshot_after(&mut source, None);
    change_everything(&mut source, 0);
    let (delta, _, _) = snapshot_after(&mut source, Some(point));

    let mut target = Member::new();
    assert!(rejected(&mut target, &delta).contains("cannot be restored alone"));

    // Onto a snapshot taken after it, the delta would drop history.
    let later = source.snapshot();
    let err = merge_chain(&later, [delta.as_slice()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("delta 1 follows revision"), "{err}");
    let err = merge_chain(&delta, []).unwrap_err().to_string();
    assert!(err.contains("must start with a whole snapshot"), "{err}");
    let err = merge_chain(&whole, [whole.as_slice()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("delta 1 of a chain is a whole snapshot"),
        "{err}"
    );
    let mut damaged = delta.clone();
    let last = damaged.len() - 5;
    damaged[last] ^= 1;
    let err = merge_chain(&whole, [damaged.as_slice()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
}
