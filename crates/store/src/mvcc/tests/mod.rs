//! The MVCC rules as specifications, each applied through `Mvcc::apply`.

use skiff_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use skiff_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use skiff_proto::etcdserverpb::{
    request_op, response_op, CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest,
};
use skiff_proto::mvccpb::event::EventType;
use skiff_proto::store::{log_entry::Request, LogEntry};

use super::txn::{validate_txn, MAX_TXN_OPS};
use super::{Applied, Mvcc, Response};
use crate::error::StoreError;

mod model;

struct Harness {
    mvcc: Mvcc,
    index: u64,
    _db: sled::Db,
}

impl Harness {
    fn new() -> Self {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mvcc = Mvcc::open(db.open_tree("kv").unwrap()).unwrap();
        Harness {
            mvcc,
            index: 0,
            _db: db,
        }
    }

    fn apply(&mut self, request: Request) -> Result<Applied, StoreError> {
        self.index += 1;
        let out = self.mvcc.apply(
            self.index,
            &LogEntry {
                id: 0,
                proposer: 0,
                request: Some(request),
            },
        );
        self.mvcc.commit().unwrap();
        out
    }

    fn put(&mut self, key: &str, value: &str) -> i64 {
        self.apply(Request::Put(put(key, value))).unwrap().revision
    }

    fn delete(&mut self, key: &str, range_end: &str) -> i64 {
        let applied = self
            .apply(Request::DeleteRange(DeleteRangeRequest {
                key: key.into(),
                range_end: range_end.into(),
                prev_kv: false,
            }))
            .unwrap();
        applied.revision
    }

    fn grant(&mut self, id: i64, ttl: i64) {
        self.apply(Request::LeaseGrant(LeaseGrantRequest { ttl, id }))
            .unwrap();
    }

    fn put_with_lease(&mut self, key: &str, value: &str, lease: i64) {
        self.apply(Request::Put(PutRequest {
            lease,
            ..put(key, value)
        }))
        .unwrap();
    }

    fn get(&self, key: &str) -> RangeResponse {
        self.mvcc.range(&range(key, "")).unwrap()
    }

    fn txn(
        &mut self,
        req: TxnRequest,
    ) -> Result<skiff_proto::etcdserverpb::TxnResponse, StoreError> {
        validate_txn(&req, MAX_TXN_OPS)?;
        match self.apply(Request::Txn(req))?.response {
            Response::Txn(resp) => Ok(resp),
            other => panic!("txn answered with {other:?}"),
        }
    }
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn range(key: &str, range_end: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        range_end: range_end.into(),
        ..Default::default()
    }
}

fn keys(resp: &RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

fn op_put(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(put(key, value))),
    }
}

fn op_delete(key: &str, range_end: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.into(),
                range_end: range_end.into(),
                prev_kv: false,
            },
        )),
    }
}

fn op_range(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(range(key, ""))),
    }
}

fn cmp(key: &str, target: CompareTarget, result: CompareResult, union: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.into(),
        target_union: Some(union),
        range_end: Vec::new(),
    }
}

#[test]
fn a_fresh_store_is_at_revision_one_and_each_write_adds_one() {
    let mut h = Harness::new();
    assert_eq!(h.mvcc.current_revision(), 1);
    assert_eq!(h.put("a", "1"), 2);
    assert_eq!(h.put("b", "1"), 3);
    assert_eq!(h.get("a").header.unwrap().revision, 3);
}

#[test]
fn versions_count_changes_and_delete_starts_a_new_generation() {
    let mut h = Harness::new();
    h.put("k", "1");
    h.put("k", "2");
    let kv = &h.get("k").kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    h.delete("k", "");
    assert!(h.get("k").kvs.is_empty());
    h.put("k", "3");
    let kv = &h.get("k").kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

#[test]
fn reads_at_older_revisions_see_the_past() {
    let mut h = Harness::new();
    h.put("k", "old");
    h.put("k", "new");
    let resp = h
        .mvcc
        .range(&RangeRequest {
            revision: 2,
            ..range("k", "")
        })
        .unwrap();
    assert_eq!(resp.kvs[0].value, b"old");
}

#[test]
fn reads_past_the_head_are_future_revisions() {
    let mut h = Harness::new();
    h.put("k", "v");
    let err = h
        .mvcc
        .range(&RangeRequest {
            revision: 3,
            ..range("k", "")
        })
        .unwrap_err();
    assert_eq!(err, StoreError::FutureRevision);
    assert_eq!(
        err.to_string(),
        "mvcc: required revision is a future revision"
    );
}

#[test]
fn compaction_drops_history_below_it() {
    let mut h = Harness::new();
    h.put("k", "1"); // 2
    h.put("k", "2"); // 3
    h.put("k", "3"); // 4
    h.apply(Request::Compaction(CompactionRequest {
        revision: 3,
        physical: false,
    }))
    .unwrap();
    let at = |rev| {
        h.mvcc.range(&RangeRequest {
            revision: rev,
            ..range("k", "")
        })
    };
    assert_eq!(
        at(2).unwrap_err(),
        StoreError::Compacted {
            compact_revision: 3
        }
    );
    assert_eq!(at(3).unwrap().kvs[0].value, b"2");
    assert_eq!(at(4).unwrap().kvs[0].value, b"3");
    let again = h.apply(Request::Compaction(CompactionRequest {
        revision: 3,
        physical: false,
    }));
    assert_eq!(
        again.unwrap_err().to_string(),
        "mvcc: required revision has been compacted"
    );
    let future = h.apply(Request::Compaction(CompactionRequest {
        revision: 99,
        physical: false,
    }));
    assert_eq!(future.unwrap_err(), StoreError::FutureRevision);
}

#[test]
fn compaction_removes_deleted_keys_from_disk() {
    let mut h = Harness::new();
    h.put("gone", "1");
    h.delete("gone", "");
    h.put("kept", "1");
    let before = h.mvcc.backend.scan(0, 100).count();
    h.apply(Request::Compaction(CompactionRequest {
        revision: 4,
        physical: true,
    }))
    .unwrap();
    let after: Vec<_> = h
        .mvcc
        .backend
        .scan(0, 100)
        .map(|r| r.unwrap().1.kv.key)
        .collect();
    assert_eq!(before, 3);
    assert_eq!(after, vec![b"kept".to_vec()]);
}

#[test]
fn range_end_prefix_and_from_key() {
    let mut h = Harness::new();
    for k in ["a", "ab", "abc", "b", "c"] {
        h.put(k, "v");
    }
    assert_eq!(
        keys(&h.mvcc.range(&range("ab", "ac")).unwrap()),
        ["ab", "abc"]
    );
    assert_eq!(keys(&h.mvcc.range(&range("b", "\0")).unwrap()), ["b", "c"]);
    assert_eq!(keys(&h.mvcc.range(&range("\0", "\0")).unwrap()).len(), 5);
    assert!(h.mvcc.range(&range("c", "a")).unwrap().kvs.is_empty());
}

#[test]
fn limit_reports_more_and_the_full_count() {
    let mut h = Harness::new();
    for k in ["a", "b", "c", "d"] {
        h.put(k, "v");
    }
    let resp = h
        .mvcc
        .range(&RangeRequest {
            limit: 2,
            ..range("a", "\0")
        })
        .unwrap();
    assert_eq!(keys(&resp), ["a", "b"]);
    assert!(resp.more);
    assert_eq!(resp.count, 4);
    let all = h
        .mvcc
        .range(&RangeRequest {
            limit: 4,
            ..range("a", "\0")
        })
        .unwrap();
    assert!(!all.more);
}

#[test]
fn count_only_and_keys_only() {
    let mut h = Harness::new();
    h.put("a", "value");
    h.put("b", "value");
    let counted = h
        .mvcc
        .range(&RangeRequest {
            count_only: true,
            ..range("a", "\0")
        })
        .unwrap();
    assert_eq!((counted.count, counted.kvs.len()), (2, 0));
    let keys_only = h
        .mvcc
        .range(&RangeRequest {
            keys_only: true,
            ..range("a", "\0")
        })
        .unwrap();
    assert!(keys_only.kvs.iter().all(|kv| kv.value.is_empty()));
    assert_eq!(keys(&keys_only), ["a", "b"]);
}

#[test]
fn sort_by_every_target_in_both_orders() {
    let mut h = Harness::new();
    h.put("a", "3"); // create 2
    h.put("b", "1"); // create 3
    h.put("c", "2"); // create 4
    h.put("a", "4"); // a: version 2, mod 5
    let sorted = |target: SortTarget, order: SortOrder| {
        keys(
            &h.mvcc
                .range(&RangeRequest {
                    sort_target: target as i32,
                    sort_order: order as i32,
                    ..range("a", "\0")
                })
                .unwrap(),
        )
    };
    assert_eq!(sorted(SortTarget::Key, SortOrder::Descend), ["c", "b", "a"]);
    assert_eq!(
        sorted(SortTarget::Value, SortOrder::Ascend),
        ["b", "c", "a"]
    );
    assert_eq!(
        sorted(SortTarget::Value, SortOrder::None),
        ["b", "c", "a"],
        "non-key NONE sorts ascending"
    );
    assert_eq!(sorted(SortTarget::Mod, SortOrder::Descend), ["a", "c", "b"]);
    assert_eq!(
        sorted(SortTarget::Create, SortOrder::Descend),
        ["c", "b", "a"]
    );
    assert_eq!(
        sorted(SortTarget::Version, SortOrder::Descend),
        ["a", "b", "c"]
    );
}

#[test]
fn mod_and_create_revision_filters() {
    let mut h = Harness::new();
    h.put("a", "v"); // 2
    h.put("b", "v"); // 3
    h.put("c", "v"); // 4
    let resp = h
        .mvcc
        .range(&RangeRequest {
            min_mod_revision: 3,
            max_create_revision: 3,
            ..range("a", "\0")
        })
        .unwrap();
    assert_eq!(keys(&resp), ["b"]);
    assert_eq!(resp.count, 3, "count is taken before filters, as etcd's");
}

#[test]
fn put_and_delete_return_prev_kv_when_asked() {
    let mut h = Harness::new();
    h.put("k", "old");
    let applied = h
        .apply(Request::Put(PutRequest {
            prev_kv: true,
            ..put("k", "new")
        }))
        .unwrap();
    let Response::Put(resp) = applied.response else {
        panic!()
    };
    assert_eq!(resp.prev_kv.unwrap().value, b"old");
    let applied = h
        .apply(Request::DeleteRange(DeleteRangeRequest {
            key: "k".into(),
            range_end: vec![],
            prev_kv: true,
        }))
        .unwrap();
    let Response::DeleteRange(resp) = applied.response else {
        panic!()
    };
    assert_eq!(resp.deleted, 1);
    assert_eq!(resp.prev_kvs[0].value, b"new");
}

#[test]
fn deleting_nothing_does_not_advance_the_revision() {
    let mut h = Harness::new();
    h.put("a", "v");
    assert_eq!(h.delete("zzz", ""), 2);
}

#[test]
fn delete_range_is_one_revision_with_an_event_per_key() {
    let mut h = Harness::new();
    h.put("a/1", "v");
    h.put("a/2", "v");
    let applied = h
        .apply(Request::DeleteRange(DeleteRangeRequest {
            key: "a/".into(),
            range_end: "a0".into(),
            prev_kv: false,
        }))
        .unwrap();
    assert_eq!(applied.revision, 4);
    assert_eq!(applied.events.len(), 2);
    assert!(applied
        .events
        .iter()
        .all(|e| e.r#type == EventType::Delete as i32));
    assert!(applied
        .events
        .iter()
        .all(|e| e.kv.as_ref().unwrap().mod_revision == 4));
    assert!(
        applied.events.iter().all(|e| e.prev_kv.is_none()),
        "old values are read only when asked for; the watch hub reads them for its watchers"
    );
}

#[test]
fn ignore_value_keeps_the_value_and_needs_the_key() {
    let mut h = Harness::new();
    let missing = h.apply(Request::Put(PutRequest {
        ignore_value: true,
        ..put("k", "")
    }));
    assert_eq!(missing.unwrap_err(), StoreError::KeyNotFound);
    h.put("k", "kept");
    h.apply(Request::Put(PutRequest {
        ignore_value: true,
        ..put("k", "")
    }))
    .unwrap();
    assert_eq!(h.get("k").kvs[0].value, b"kept");
    assert_eq!(h.get("k").kvs[0].version, 2);
}

#[test]
fn txn_compares_choose_the_branch_and_apply_as_one_revision() {
    let mut h = Harness::new();
    h.put("k", "1");
    let resp = h
        .txn(TxnRequest {
            compare: vec![cmp(
                "k",
                CompareTarget::Value,
                CompareResult::Equal,
                TargetUnion::Value("1".into()),
            )],
            success: vec![op_put("k", "2"), op_put("other", "x"), op_range("k")],
            failure: vec![op_put("k", "failed")],
        })
        .unwrap();
    assert!(resp.succeeded);
    assert_eq!(resp.header.unwrap().revision, 3, "two puts, one revision");
    let Some(response_op::Response::ResponseRange(read)) = &resp.responses[2].response else {
        panic!("third response is a range")
    };
    assert_eq!(read.kvs[0].value, b"2", "a txn reads its own writes");
    let resp = h
        .txn(TxnRequest {
            compare: vec![cmp(
                "k",
                CompareTarget::Version,
                CompareResult::Greater,
                TargetUnion::Version(5),
            )],
            success: vec![op_put("k", "no")],
            failure: vec![op_put("k", "yes")],
        })
        .unwrap();
    assert!(!resp.succeeded);
    assert_eq!(h.get("k").kvs[0].value, b"yes");
}

#[test]
fn compare_on_a_missing_key_sees_zeroes_but_never_matches_a_value() {
    let mut h = Harness::new();
    let create_if_absent = TxnRequest {
        compare: vec![cmp(
            "new",
            CompareTarget::Create,
            CompareResult::Equal,
            TargetUnion::CreateRevision(0),
        )],
        success: vec![op_put("new", "v")],
        failure: vec![],
    };
    assert!(h.txn(create_if_absent.clone()).unwrap().succeeded);
    assert!(!h.txn(create_if_absent).unwrap().succeeded);
    let value_of_missing = TxnRequest {
        compare: vec![cmp(
            "nope",
            CompareTarget::Value,
            CompareResult::NotEqual,
            TargetUnion::Value("x".into()),
        )],
        ..Default::default()
    };
    assert!(!h.txn(value_of_missing).unwrap().succeeded);
}

#[test]
fn compare_over_a_range_needs_every_key_to_match() {
    let mut h = Harness::new();
    h.put("p/a", "1");
    h.put("p/b", "2");
    let mut c = cmp(
        "p/",
        CompareTarget::Mod,
        CompareResult::Less,
        TargetUnion::ModRevision(3),
    );
    c.range_end = "p0".into();
    assert!(
        !h.txn(TxnRequest {
            compare: vec![c.clone()],
            ..Default::default()
        })
        .unwrap()
        .succeeded
    );
    c.target_union = Some(TargetUnion::ModRevision(4));
    assert!(
        h.txn(TxnRequest {
            compare: vec![c],
            ..Default::default()
        })
        .unwrap()
        .succeeded
    );
}

#[test]
fn compare_on_lease_and_mod_revision() {
    let mut h = Harness::new();
    h.grant(7, 60);
    h.put_with_lease("k", "v", 7);
    let resp = h
        .txn(TxnRequest {
            compare: vec![
                cmp(
                    "k",
                    CompareTarget::Lease,
                    CompareResult::Equal,
                    TargetUnion::Lease(7),
                ),
                cmp(
                    "k",
                    CompareTarget::Mod,
                    CompareResult::Equal,
                    TargetUnion::ModRevision(2),
                ),
            ],
            ..Default::default()
        })
        .unwrap();
    assert!(resp.succeeded);
}

#[test]
fn nested_txn_runs_inside_the_outer_revision() {
    let mut h = Harness::new();
    let nested = TxnRequest {
        compare: vec![],
        success: vec![op_put("inner", "v")],
        failure: vec![],
    };
    let resp = h
        .txn(TxnRequest {
            success: vec![
                op_put("outer", "v"),
                RequestOp {
                    request: Some(request_op::Request::RequestTxn(nested)),
                },
            ],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(resp.header.unwrap().revision, 2);
    assert_eq!(h.get("inner").kvs[0].mod_revision, 2);
}

#[test]
fn duplicate_keys_in_one_branch_are_rejected() {
    let mut h = Harness::new();
    let two_puts = TxnRequest {
        success: vec![op_put("k", "1"), op_put("k", "2")],
        ..Default::default()
    };
    let err = h.txn(two_puts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcdserver: duplicate key given in txn request"
    );
    let put_and_delete = TxnRequest {
        success: vec![op_put("a/b", "1"), op_delete("a/", "a0")],
        ..Default::default()
    };
    assert_eq!(h.txn(put_and_delete).unwrap_err(), StoreError::DuplicateKey);
    let across_branches = TxnRequest {
        success: vec![op_put("k", "1")],
        failure: vec![op_put("k", "2")],
        ..Default::default()
    };
    assert!(
        h.txn(across_branches).is_ok(),
        "success and failure exclude each other"
    );
    let two_deletes = TxnRequest {
        success: vec![op_delete("k", ""), op_delete("k", "")],
        ..Default::default()
    };
    assert!(h.txn(two_deletes).is_ok(), "overlapping deletes are fine");
}

#[test]
fn too_many_operations_are_rejected() {
    let mut h = Harness::new();
    let ops = (0..=MAX_TXN_OPS)
        .map(|i| op_put(&format!("k{i}"), "v"))
        .collect();
    let err = h
        .txn(TxnRequest {
            success: ops,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err, StoreError::TooManyOps);
}

#[test]
fn a_txn_with_an_unknown_lease_changes_nothing() {
    let mut h = Harness::new();
    let err = h
        .txn(TxnRequest {
            success: vec![
                op_put("a", "1"),
                RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        lease: 99,
                        ..put("b", "1")
                    })),
                },
            ],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
    assert!(h.get("a").kvs.is_empty());
    assert_eq!(h.mvcc.current_revision(), 1);
}

#[test]
fn revoking_a_lease_deletes_its_keys_in_one_revision() {
    let mut h = Harness::new();
    h.grant(5, 10);
    h.put_with_lease("a", "1", 5);
    h.put_with_lease("b", "1", 5);
    h.put("c", "no lease");
    let applied = h
        .apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 5 }))
        .unwrap();
    assert_eq!(applied.revision, 5);
    assert_eq!(applied.events.len(), 2);
    assert!(h.get("a").kvs.is_empty() && h.get("b").kvs.is_empty());
    assert_eq!(h.get("c").kvs.len(), 1);
    let again = h.apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 5 }));
    assert_eq!(again.unwrap_err(), StoreError::LeaseNotFound);
}

#[test]
fn re_putting_a_key_without_its_lease_detaches_it() {
    let mut h = Harness::new();
    h.grant(5, 10);
    h.put_with_lease("a", "1", 5);
    h.put("a", "2");
    h.apply(Request::LeaseRevoke(LeaseRevokeRequest { id: 5 }))
        .unwrap();
    assert_eq!(h.get("a").kvs[0].value, b"2");
}

#[test]
fn granting_an_existing_lease_id_fails() {
    let mut h = Harness::new();
    h.grant(5, 10);
    let err = h
        .apply(Request::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 5 }))
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: lease already exists");
}

#[test]
fn reopening_rebuilds_index_revision_and_leases() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let mut mvcc = Mvcc::open(db.open_tree("kv").unwrap()).unwrap();
        let entries = [
            Request::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 5 }),
            Request::Put(PutRequest {
                lease: 5,
                ..put("a", "1")
            }),
            Request::Put(put("b", "1")),
            Request::DeleteRange(DeleteRangeRequest {
                key: "b".into(),
                ..Default::default()
            }),
        ];
        for (i, request) in entries.into_iter().enumerate() {
            mvcc.apply(
                i as u64 + 1,
                &LogEntry {
                    id: 0,
                    proposer: 0,
                    request: Some(request),
                },
            )
            .unwrap();
        }
        mvcc.commit().unwrap();
        drop(mvcc); // waits for the writer
        db.flush().unwrap();
    }
    let db = crate::mvcc::open_sled(&sled::Config::new().path(dir.path())).unwrap();
    let mvcc = Mvcc::open(db.open_tree("kv").unwrap()).unwrap();
    assert_eq!(mvcc.applied_index(), 4);
    assert_eq!(mvcc.current_revision(), 4);
    assert_eq!(keys(&mvcc.range(&range("\0", "\0")).unwrap()), ["a"]);
    assert!(mvcc.leases()[&5].keys.contains(b"a".as_slice()));
}

#[test]
fn history_replays_changes_with_prev_kv() {
    let mut h = Harness::new();
    h.put("k", "1"); // 2
    h.put("other", "x"); // 3
    h.put("k", "2"); // 4
    h.delete("k", ""); // 5
    let events = h.mvcc.history(2, 5, b"k", b"").unwrap();
    let revs: Vec<i64> = events
        .iter()
        .map(|e| e.kv.as_ref().unwrap().mod_revision)
        .collect();
    assert_eq!(revs, [2, 4, 5]);
    assert!(
        events[0].prev_kv.is_none(),
        "a creation has no previous value"
    );
    assert_eq!(events[1].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(events[2].r#type, EventType::Delete as i32);
    assert_eq!(events[2].prev_kv.as_ref().unwrap().value, b"2");
}

#[test]
fn hash_kv_is_equal_for_equal_histories() {
    let mut a = Harness::new();
    let mut b = Harness::new();
    for h in [&mut a, &mut b] {
        h.put("x", "1");
        h.put("y", "2");
    }
    assert_eq!(a.mvcc.hash_kv(0).unwrap(), b.mvcc.hash_kv(0).unwrap());
    b.put("z", "3");
    assert_ne!(a.mvcc.hash_kv(0).unwrap(), b.mvcc.hash_kv(0).unwrap());
    assert_eq!(a.mvcc.hash_kv(3).unwrap(), b.mvcc.hash_kv(3).unwrap());
}
