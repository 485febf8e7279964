//! Transactions: compare, then run one of two lists of operations, as one revision.
//!
//! etcd decides every branch — including those of nested txns — from the state
//! before the txn starts, checks the chosen operations (leases exist, keys that
//! `ignore_value` needs exist, read revisions are valid), and only then runs them,
//! so a txn either applies whole or not at all. Reads inside a txn see the txn's
//! own earlier writes.
//!
//! Before a txn is proposed at all, [`validate_txn`] rejects what can never apply:
//! too many operations, empty keys, and two writes to one key in one branch
//! (`etcdserver: duplicate key given in txn request`).

use std::collections::BTreeSet;

use skiff_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use skiff_proto::etcdserverpb::{
    request_op, response_op, Compare, PutRequest, RequestOp, ResponseOp, TxnRequest, TxnResponse,
};
use skiff_proto::mvccpb::KeyValue;

use super::{header, range, Mvcc, WriteTxn};
use crate::error::{Result, StoreError};

/// The most operations etcd allows in one branch of a txn (`--max-txn-ops`).
pub(crate) const MAX_TXN_OPS: usize = 128;

/// Checks a put's preconditions against the current state.
pub(super) fn check_put(mvcc: &Mvcc, req: &PutRequest) -> Result<()> {
    validate_put(req)?;
    if req.lease != 0 && !mvcc.leases.contains_key(&req.lease) {
        return Err(StoreError::LeaseNotFound);
    }
    if (req.ignore_value || req.ignore_lease) && mvcc.get_at(&req.key, mvcc.current)?.is_none() {
        return Err(StoreError::KeyNotFound);
    }
    Ok(())
}

/// The checks of a put that need no state.
pub(crate) fn validate_put(req: &PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

/// The checks of a txn that need no state.
pub(crate) fn validate_txn(req: &TxnRequest, max_ops: usize) -> Result<()> {
    if req.compare.len() > max_ops || req.success.len() > max_ops || req.failure.len() > max_ops {
        return Err(StoreError::TooManyOps);
    }
    for cmp in &req.compare {
        if cmp.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
    }
    for op in req.success.iter().chain(&req.failure) {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) if r.key.is_empty() => {
                return Err(StoreError::EmptyKey)
            }
            Some(request_op::Request::RequestPut(p)) => validate_put(p)?,
            Some(request_op::Request::RequestDeleteRange(d)) if d.key.is_empty() => {
                return Err(StoreError::EmptyKey)
            }
            Some(request_op::Request::RequestTxn(t)) => validate_txn(t, max_ops)?,
            _ => {}
        }
    }
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

/// A deleted interval `[start, end)`; `end` None = unbounded.
#[derive(Clone, Debug)]
struct Interval {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    fn of(key: &[u8], range_end: &[u8]) -> Self {
        let end = match range_end {
            [] => {
                let mut next = key.to_vec();
                next.push(0);
                Some(next)
            }
            [0] => None,
            end => Some(end.to_vec()),
        };
        Interval {
            start: key.to_vec(),
            end,
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }
}

/// The keys put and intervals deleted by one list of operations (nested txns
/// included), failing when a put meets another put or a delete of the same key.
fn check_intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Vec<u8>>, Vec<Interval>)> {
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(request_op::Request::RequestDeleteRange(d)) => {
                Some(Interval::of(&d.key, &d.range_end))
            }
            _ => None,
        })
        .collect();
    let deleted = |dels: &[Interval], key: &[u8]| dels.iter().any(|d| d.contains(key));
    let mut puts = BTreeSet::new();
    for op in ops {
        let Some(request_op::Request::RequestTxn(nested)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&nested.success)?;
        let (puts_else, dels_else) = check_intervals(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || deleted(&dels, key) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in puts_else {
            // The two branches exclude each other: the same key in both is fine.
            if (puts.contains(&key) && !puts_then.contains(&key)) || deleted(&dels, &key) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(key);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(request_op::Request::RequestPut(put)) = &op.request else {
            continue;
        };
        if puts.contains(&put.key) || deleted(&dels, &put.key) {
            return Err(StoreError::DuplicateKey);
        }
        puts.insert(put.key.clone());
    }
    Ok((puts, dels))
}

/// Whether every key in the compare's range satisfies it.
fn compare(mvcc: &Mvcc, cmp: &Compare) -> Result<bool> {
    let at = mvcc.current;
    let mut kvs = Vec::new();
    for (key, ki) in range::keys_in(&mvcc.index, &cmp.key, &cmp.range_end) {
        if ki.get(at).is_some() {
            kvs.extend(mvcc.get_at(key, at)?);
        }
    }
    let target = CompareTarget::try_from(cmp.target).unwrap_or(CompareTarget::Version);
    if kvs.is_empty() {
        // A missing key compares as all zeroes, except that a value never matches.
        return Ok(target != CompareTarget::Value && compare_kv(cmp, target, &KeyValue::default()));
    }
    Ok(kvs.iter().all(|kv| compare_kv(cmp, target, kv)))
}

fn compare_kv(cmp: &Compare, target: CompareTarget, kv: &KeyValue) -> bool {
    let union = cmp.target_union.as_ref();
    let ordering = match target {
        CompareTarget::Value => {
            let want: &[u8] = match union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(want)
        }
        CompareTarget::Version => kv.version.cmp(&int_of(union, |u| match u {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Create => kv.create_revision.cmp(&int_of(union, |u| match u {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Mod => kv.mod_revision.cmp(&int_of(union, |u| match u {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Lease => kv.lease.cmp(&int_of(union, |u| match u {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        })),
    };
    match CompareResult::try_from(cmp.result).unwrap_or(CompareResult::Equal) {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
    }
}

fn int_of(union: Option<&TargetUnion>, pick: impl Fn(&TargetUnion) -> Option<i64>) -> i64 {
    union.and_then(pick).unwrap_or(0)
}

/// The branch each txn (outer first, then nested in order) takes, decided up front.
fn decide(mvcc: &Mvcc, req: &TxnRequest, path: &mut Vec<bool>) -> Result<()> {
    let mut succeeded = true;
    for cmp in &req.compare {
        if !compare(mvcc, cmp)? {
            succeeded = false;
            break;
        }
    }
    path.push(succeeded);
    let ops = if succeeded {
        &req.success
    } else {
        &req.failure
    };
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestTxn(nested)) => decide(mvcc, nested, path)?,
            Some(request_op::Request::RequestPut(put)) => check_put(mvcc, put)?,
            Some(request_op::Request::RequestRange(r)) if r.revision > 0 => {
                if r.revision > mvcc.current {
                    return Err(StoreError::FutureRevision);
                }
                if r.revision < mvcc.compacted {
                    return Err(StoreError::Compacted {
                        compact_revision: mvcc.compacted,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Applies a validated txn.
pub(super) fn apply(txn: &mut WriteTxn<'_>, req: &TxnRequest) -> Result<TxnResponse> {
    let mut path = Vec::new();
    decide(txn.mvcc, req, &mut path)?;
    let mut path = path.into_iter();
    run(txn, req, &mut path)
}

fn run(
    txn: &mut WriteTxn<'_>,
    req: &TxnRequest,
    path: &mut impl Iterator<Item = bool>,
) -> Result<TxnResponse> {
    let succeeded = path.next().unwrap_or(false);
    let ops = if succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let response = match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                response_op::Response::ResponseRange(txn.range(r)?)
            }
            Some(request_op::Request::RequestPut(p)) => {
                response_op::Response::ResponsePut(txn.put(p)?)
            }
            Some(request_op::Request::RequestDeleteRange(d)) => {
                response_op::Response::ResponseDeleteRange(txn.delete_range(d)?)
            }
            Some(request_op::Request::RequestTxn(t)) => {
                response_op::Response::ResponseTxn(run(txn, t, path)?)
            }
            None => continue,
        };
        responses.push(ResponseOp {
            response: Some(response),
        });
    }
    Ok(TxnResponse {
        header: header(txn.read_rev()),
        succeeded,
        responses,
    })
}
