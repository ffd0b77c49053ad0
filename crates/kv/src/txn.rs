//! Transaction semantics that decide before anything executes: request validation (etcd's gRPC-layer
//! checks: empty keys, ignore_* conflicts, op counts, overlapping writes), compare evaluation, the branch
//! path through nested txns, and the checks along that path (unknown leases, missing keys for ignore_*,
//! range revisions). Execution itself is in `apply`.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use meridian_proto::mvccpb::KeyValue;
use meridian_types::EtcdError;

use crate::backend::Backend;
use crate::error::Result;
use crate::key_range::KeyRange;
use crate::store::KvStore;

/// Most compares, or ops in one branch, a txn may have (etcd's default `--max-txn-ops`).
pub const MAX_TXN_OPS: usize = 128;
/// Deepest txn nesting accepted; deeper requests get TooManyOps. etcd has no such limit, but unbounded
/// recursion would overflow the stack (and prost refuses to decode much deeper messages anyway).
pub const MAX_TXN_DEPTH: usize = 32;

type Check = std::result::Result<(), EtcdError>;

pub(crate) fn check_range_request(r: &RangeRequest) -> Check {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

pub(crate) fn check_put_request(p: &PutRequest) -> Check {
    if p.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if p.ignore_value && !p.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if p.ignore_lease && p.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

pub(crate) fn check_delete_request(d: &DeleteRangeRequest) -> Check {
    if d.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// etcd's checkTxnRequest: no list (compares, success, failure) longer than [`MAX_TXN_OPS`], nesting at most
/// [`MAX_TXN_DEPTH`], no compare without a key, then every op of both branches, recursively. The server runs it
/// before proposing a txn, as etcd does; applying runs it again, so a log entry never bypasses it.
pub fn check_txn_request(t: &TxnRequest) -> Check {
    check_txn_at(t, 1)
}

fn check_txn_at(t: &TxnRequest, depth: usize) -> Check {
    let ops = t.compare.len().max(t.success.len()).max(t.failure.len());
    if ops > MAX_TXN_OPS || depth > MAX_TXN_DEPTH {
        return Err(EtcdError::TooManyOps);
    }
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => check_range_request(r)?,
            Some(Request::RequestPut(p)) => check_put_request(p)?,
            Some(Request::RequestDeleteRange(d)) => check_delete_request(d)?,
            Some(Request::RequestTxn(n)) => check_txn_at(n, depth + 1)?,
            // etcd answers an empty op with "key not found".
            None => return Err(EtcdError::KeyNotFound),
        }
    }
    Ok(())
}

/// etcd's checkIntervals for one branch: no key may be put twice, and no key may be put inside a range
/// deleted at the same level or by a nested txn. Puts in the two branches of one nested txn may repeat
/// (only one runs). Overlapping deletes are fine. Call only after `check_txn_request` (bounded depth).
pub(crate) fn check_intervals(ops: &[RequestOp]) -> std::result::Result<(BTreeSet<Vec<u8>>, Vec<KeyRange>), EtcdError> {
    let mut dels: Vec<KeyRange> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some(KeyRange::new(&d.key, &d.range_end)),
            _ => None,
        })
        .collect();
    let deleted = |dels: &[KeyRange], k: &[u8]| dels.iter().any(|r| r.contains(k));

    let mut puts: BTreeSet<Vec<u8>> = BTreeSet::new();
    for op in ops {
        let Some(Request::RequestTxn(n)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&n.success)?;
        let (puts_else, dels_else) = check_intervals(&n.failure)?;
        for k in &puts_then {
            if puts.contains(k) || deleted(&dels, k) {
                return Err(EtcdError::DuplicateKey);
            }
        }
        for k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || deleted(&dels, k) {
                return Err(EtcdError::DuplicateKey);
            }
        }
        puts.extend(puts_then);
        puts.extend(puts_else);
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

/// etcd's compareKV: one compare against one key/value. The operand comes from `target_union` when it
/// holds the variant of the target, and is zero/empty otherwise. Unknown results hold; unknown targets
/// compare as equal.
pub(crate) fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let int = |want: Option<i64>| want.unwrap_or(0);
    let ord = match CompareTarget::try_from(c.target) {
        Ok(CompareTarget::Value) => {
            let v: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(v)
        }
        Ok(CompareTarget::Create) => kv.create_revision.cmp(&int(match c.target_union {
            Some(TargetUnion::CreateRevision(r)) => Some(r),
            _ => None,
        })),
        Ok(CompareTarget::Mod) => kv.mod_revision.cmp(&int(match c.target_union {
            Some(TargetUnion::ModRevision(r)) => Some(r),
            _ => None,
        })),
        Ok(CompareTarget::Version) => kv.version.cmp(&int(match c.target_union {
            Some(TargetUnion::Version(r)) => Some(r),
            _ => None,
        })),
        Ok(CompareTarget::Lease) => kv.lease.cmp(&int(match c.target_union {
            Some(TargetUnion::Lease(r)) => Some(r),
            _ => None,
        })),
        Err(_) => Ordering::Equal,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ord != Ordering::Equal,
        Ok(CompareResult::Greater) => ord == Ordering::Greater,
        Ok(CompareResult::Less) => ord == Ordering::Less,
        Err(_) => true,
    }
}

/// The next branch decision of a pre-computed txn path.
pub(crate) fn next_branch(path: &[bool], cursor: &mut usize) -> Result<bool> {
    let b = path.get(*cursor).copied().ok_or_else(|| EtcdError::Internal("txn path out of step".into()))?;
    *cursor += 1;
    Ok(b)
}

impl<B: Backend> KvStore<B> {
    /// etcd's applyCompare: every key in the range must satisfy the compare; an empty range compares as
    /// a zero key/value, except that a VALUE compare on missing keys always fails.
    /// Values are read from storage only for VALUE compares.
    pub(crate) fn compare_holds(&self, c: &Compare) -> Result<bool> {
        let range = KeyRange::new(&c.key, &c.range_end);
        let is_value = c.target == CompareTarget::Value as i32;
        let kvs = if is_value { self.live_in(&range)? } else { self.live_meta_in(&range) };
        if !kvs.is_empty() {
            return Ok(kvs.iter().all(|kv| compare_kv(c, kv)));
        }
        Ok(!is_value && compare_kv(c, &KeyValue::default()))
    }

    /// Branch taken by `t` and by every nested txn on the executed path, in pre-order.
    pub(crate) fn txn_path(&self, t: &TxnRequest, path: &mut Vec<bool>) -> Result<()> {
        let mut ok = true;
        for c in &t.compare {
            if !self.compare_holds(c)? {
                ok = false;
                break;
            }
        }
        path.push(ok);
        for op in if ok { &t.success } else { &t.failure } {
            if let Some(Request::RequestTxn(n)) = &op.request {
                self.txn_path(n, path)?;
            }
        }
        Ok(())
    }

    /// etcd's checkRequests along the path: first every put (ignore_* needs the key, a lease must exist),
    /// then every range (revision must be readable), all against the state before the txn.
    pub(crate) fn check_txn_path(&self, t: &TxnRequest, path: &[bool]) -> Result<()> {
        self.walk_path(t, path, &mut 0, &mut |store, op| match op {
            Request::RequestPut(p) => {
                if (p.ignore_value || p.ignore_lease) && !store.is_live(&p.key) {
                    return Err(EtcdError::KeyNotFound.into());
                }
                if p.lease != 0 && !store.leases.contains(p.lease) {
                    return Err(EtcdError::LeaseNotFound.into());
                }
                Ok(())
            }
            _ => Ok(()),
        })?;
        self.walk_path(t, path, &mut 0, &mut |store, op| match op {
            Request::RequestRange(r) if r.revision > 0 => {
                store.check_read_revision(r.revision, store.current)?;
                Ok(())
            }
            _ => Ok(()),
        })
    }

    fn walk_path(
        &self,
        t: &TxnRequest,
        path: &[bool],
        cursor: &mut usize,
        f: &mut dyn FnMut(&Self, &Request) -> Result<()>,
    ) -> Result<()> {
        let ok = next_branch(path, cursor)?;
        for op in if ok { &t.success } else { &t.failure } {
            match &op.request {
                Some(Request::RequestTxn(n)) => self.walk_path(n, path, cursor, f)?,
                Some(req) => f(self, req)?,
                None => {}
            }
        }
        Ok(())
    }
}
