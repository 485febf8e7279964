//! The MVCC state machine against a deliberately naive model: a full copy of
//! the key space at every revision. Random operations from a seeded RNG; a
//! failure prints the seed, and the same seed replays the same run.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use skiff_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use skiff_proto::etcdserverpb::{
    request_op, CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use skiff_proto::mvccpb::KeyValue;
use skiff_proto::store::{log_entry::Request, LogEntry};

use crate::error::StoreError;
use crate::mvcc::Mvcc;

const KEYS: [&[u8]; 6] = [b"a", b"b", b"b/1", b"b/2", b"c", b"d"];

/// The key space at every revision, index = revision (1 = empty).
struct Model {
    snapshots: Vec<BTreeMap<Vec<u8>, KeyValue>>,
    compacted: i64,
}

impl Model {
    fn new() -> Self {
        // Revision 0 does not exist; revision 1 is the empty store.
        Model {
            snapshots: vec![BTreeMap::new(), BTreeMap::new()],
            compacted: 0,
        }
    }

    fn current(&self) -> i64 {
        self.snapshots.len() as i64 - 1
    }

    fn head(&self) -> &BTreeMap<Vec<u8>, KeyValue> {
        &self.snapshots[self.snapshots.len() - 1]
    }

    /// Applies writes as one revision, if any of them changes something.
    fn write(&mut self, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let rev = self.current() + 1;
        let mut next = self.head().clone();
        let mut changed = false;
        for (key, value) in writes {
            match value {
                Some(value) => {
                    let (create_revision, version) = match next.get(key) {
                        Some(kv) => (kv.create_revision, kv.version + 1),
                        None => (rev, 1),
                    };
                    next.insert(
                        key.clone(),
                        KeyValue {
                            key: key.clone(),
                            create_revision,
                            mod_revision: rev,
                            version,
                            value: value.clone(),
                            lease: 0,
                        },
                    );
                    changed = true;
                }
                None => changed |= next.remove(key).is_some(),
            }
        }
        if changed {
            self.snapshots.push(next);
        }
    }
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    crate::mvcc::in_range(key, start, end)
}

fn random_range(rng: &mut StdRng) -> (Vec<u8>, Vec<u8>) {
    let key = KEYS[rng.random_range(0..KEYS.len())].to_vec();
    let end = match rng.random_range(0..3) {
        0 => Vec::new(),
        1 => vec![0],
        _ => {
            let mut end = key.clone();
            *end.last_mut().expect("keys are not empty") += 1;
            end
        }
    };
    (key, end)
}

fn put_op(key: &[u8], value: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            ..Default::default()
        })),
    }
}

fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .expect("sled opens");
    let mut mvcc = Mvcc::open(db.open_tree("kv").expect("a tree")).expect("mvcc opens");
    let mut model = Model::new();
    let mut index = 0;
    let apply = |mvcc: &mut Mvcc, index: &mut u64, request: Request| {
        *index += 1;
        let out = mvcc.apply(
            *index,
            &LogEntry {
                id: 0,
                proposer: 0,
                request: Some(request),
            },
        );
        mvcc.commit().expect("commit");
        out
    };
    for step in 0..steps {
        let ctx = format!("seed {seed}, step {step}");
        let value = format!("v{step}").into_bytes();
        match rng.random_range(0..10) {
            0..=3 => {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                apply(
                    &mut mvcc,
                    &mut index,
                    Request::Put(PutRequest {
                        key: key.to_vec(),
                        value: value.clone(),
                        ..Default::default()
                    }),
                )
                .expect(&ctx);
                model.write(&[(key.to_vec(), Some(value))]);
            }
            4 | 5 => {
                let (key, end) = random_range(&mut rng);
                let doomed: Vec<_> = model
                    .head()
                    .keys()
                    .filter(|k| in_range(k, &key, &end))
                    .cloned()
                    .collect();
                apply(
                    &mut mvcc,
                    &mut index,
                    Request::DeleteRange(DeleteRangeRequest {
                        key,
                        range_end: end,
                        prev_kv: false,
                    }),
                )
                .expect(&ctx);
                model.write(&doomed.into_iter().map(|k| (k, None)).collect::<Vec<_>>());
            }
            6 | 7 => {
                // Compare-and-set: if `a` holds `expected`, put `b` and `a`; else delete `b`.
                let expected = model
                    .head()
                    .get(&b"a"[..])
                    .map(|kv| kv.value.clone())
                    .unwrap_or_default();
                let expected = if rng.random_bool(0.5) {
                    expected
                } else {
                    b"nope".to_vec()
                };
                let txn = TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Value as i32,
                        key: b"a".to_vec(),
                        target_union: Some(TargetUnion::Value(expected.clone())),
                        range_end: Vec::new(),
                    }],
                    success: vec![put_op(b"b", &value), put_op(b"a", &value)],
                    failure: vec![RequestOp {
                        request: Some(request_op::Request::RequestDeleteRange(
                            DeleteRangeRequest {
                                key: b"b".to_vec(),
                                ..Default::default()
                            },
                        )),
                    }],
                };
                apply(&mut mvcc, &mut index, Request::Txn(txn)).expect(&ctx);
                let holds = model
                    .head()
                    .get(&b"a"[..])
                    .is_some_and(|kv| kv.value == expected);
                if holds {
                    model.write(&[
                        (b"b".to_vec(), Some(value.clone())),
                        (b"a".to_vec(), Some(value)),
                    ]);
                } else {
                    model.write(&[(b"b".to_vec(), None)]);
                }
            }
            9 => {
                // Restart: the index is rebuilt from what sled holds.
                drop(mvcc);
                mvcc = Mvcc::open(db.open_tree("kv").expect("a tree")).expect("mvcc reopens");
                assert_eq!(
                    mvcc.applied_index(),
                    index,
                    "{ctx}: applied index after reopen"
                );
            }
            8 if model.current() > model.compacted + 1 => {
                let rev = rng.random_range(model.compacted + 1..=model.current());
                apply(
                    &mut mvcc,
                    &mut index,
                    Request::Compaction(CompactionRequest {
                        revision: rev,
                        physical: false,
                    }),
                )
                .expect(&ctx);
                model.compacted = rev;
            }
            _ => {}
        }
        assert_eq!(mvcc.current_revision(), model.current(), "{ctx}: revision");
        check_a_read(&mvcc, &model, &mut rng, &ctx);
    }
}

/// Reads a random range at a random revision and compares it with the model.
fn check_a_read(mvcc: &Mvcc, model: &Model, rng: &mut StdRng, ctx: &str) {
    let rev = rng.random_range(1..=model.current() + 1);
    let (key, end) = random_range(rng);
    let got = mvcc.range(&RangeRequest {
        key: key.clone(),
        range_end: end.clone(),
        revision: rev,
        ..Default::default()
    });
    if rev > model.current() {
        assert_eq!(got, Err(StoreError::FutureRevision), "{ctx}: read at {rev}");
        return;
    }
    if rev < model.compacted {
        assert!(
            matches!(got, Err(StoreError::Compacted { .. })),
            "{ctx}: read at {rev}"
        );
        return;
    }
    let got = got.unwrap_or_else(|e| panic!("{ctx}: read at {rev} failed: {e}"));
    let want: Vec<KeyValue> = model.snapshots[rev as usize]
        .values()
        .filter(|kv| in_range(&kv.key, &key, &end))
        .cloned()
        .collect();
    assert_eq!(got.kvs, want, "{ctx}: range {key:?}..{end:?} at {rev}");
    assert_eq!(got.count, want.len() as i64, "{ctx}: count");
}

#[test]
fn random_histories_match_the_naive_model() {
    for seed in 0..40 {
        run(seed, 250);
    }
}
