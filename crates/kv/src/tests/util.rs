//! Builders and shorthands for the behaviour tests.

use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::mvccpb::KeyValue;
use meridian_types::{EtcdError, Revision};

use crate::{Applied, CommandResponse, Error, KvStore, MemBackend, Result};

pub type Store = KvStore<MemBackend>;

pub fn store() -> Store {
    KvStore::open(MemBackend::new()).unwrap()
}

pub fn apply(s: &mut Store, cmd: Cmd) -> Result<Applied> {
    s.apply(&RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() })
}

pub fn etcd_err(r: Result<Applied>) -> EtcdError {
    match r {
        Err(Error::Etcd(e)) => e,
        other => panic!("expected an etcd error, got {other:?}"),
    }
}

pub fn put_req(k: &str, v: &str) -> PutRequest {
    PutRequest { key: k.into(), value: v.into(), ..Default::default() }
}

pub fn put(s: &mut Store, k: &str, v: &str) -> Applied {
    apply(s, Cmd::Put(put_req(k, v))).unwrap()
}

pub fn put_lease(s: &mut Store, k: &str, v: &str, lease: i64) -> Applied {
    let mut p = put_req(k, v);
    p.lease = lease;
    apply(s, Cmd::Put(p)).unwrap()
}

pub fn del_req(k: &str, end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest { key: k.into(), range_end: end.into(), prev_kv: true }
}

pub fn del(s: &mut Store, k: &str, end: &str) -> Applied {
    apply(s, Cmd::DeleteRange(del_req(k, end))).unwrap()
}

pub fn compact(s: &mut Store, rev: i64) -> Result<Applied> {
    apply(s, Cmd::Compaction(CompactionRequest { revision: rev, physical: false }))
}

pub fn grant(s: &mut Store, id: i64, ttl: i64) -> Result<i64> {
    match apply(s, Cmd::LeaseGrant(LeaseGrantRequest { ttl, id }))?.response {
        CommandResponse::LeaseGrant(g) => Ok(g.id),
        other => panic!("unexpected {other:?}"),
    }
}

pub fn revoke(s: &mut Store, id: i64) -> Result<Applied> {
    apply(s, Cmd::LeaseRevoke(LeaseRevokeRequest { id }))
}

pub fn range_req(k: &str, end: &str) -> RangeRequest {
    RangeRequest { key: k.into(), range_end: end.into(), ..Default::default() }
}

/// Current value of one key.
pub fn get(s: &Store, k: &str) -> Option<KeyValue> {
    s.range(&range_req(k, "")).unwrap().kvs.into_iter().next()
}

/// Value of one key at a revision.
pub fn get_at(s: &Store, k: &str, rev: i64) -> Result<Option<KeyValue>> {
    let mut r = range_req(k, "");
    r.revision = rev;
    Ok(s.range(&r)?.kvs.into_iter().next())
}

pub fn value(s: &Store, k: &str) -> Option<String> {
    get(s, k).map(|kv| String::from_utf8(kv.value).unwrap())
}

pub fn keys_of(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter().map(|kv| String::from_utf8(kv.key.clone()).unwrap()).collect()
}

pub fn rev(s: &Store) -> i64 {
    s.current_revision().0
}

pub fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp { request: Some(Request::RequestPut(put_req(k, v))) }
}

pub fn op_del(k: &str, end: &str) -> RequestOp {
    RequestOp { request: Some(Request::RequestDeleteRange(del_req(k, end))) }
}

pub fn op_range(k: &str, end: &str) -> RequestOp {
    RequestOp { request: Some(Request::RequestRange(range_req(k, end))) }
}

pub fn op_txn(t: TxnRequest) -> RequestOp {
    RequestOp { request: Some(Request::RequestTxn(t)) }
}

pub fn txn(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest { compare, success, failure }
}

pub fn apply_txn(s: &mut Store, t: TxnRequest) -> Result<(Applied, meridian_proto::etcdserverpb::TxnResponse)> {
    let a = apply(s, Cmd::Txn(t))?;
    match &a.response {
        CommandResponse::Txn(r) => {
            let r = r.clone();
            Ok((a, r))
        }
        other => panic!("unexpected {other:?}"),
    }
}

pub fn cmp(k: &str, target: CompareTarget, result: CompareResult, operand: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: k.into(),
        target_union: Some(operand),
        range_end: Vec::new(),
    }
}

pub fn cmp_version(k: &str, result: CompareResult, v: i64) -> Compare {
    cmp(k, CompareTarget::Version, result, TargetUnion::Version(v))
}

pub fn r(n: i64) -> Revision {
    Revision(n)
}
