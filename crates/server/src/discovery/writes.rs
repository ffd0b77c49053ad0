//! The registry's writes, as the server's own commands (no caller: the reserved keyspace is theirs; the HTTP
//! API checks the caller's permission before it asks for one). Each is one transaction, so a reader of the
//! store never sees half of one:
//! - a registration puts the instance and its checks' initial records and deletes the records of checks it
//!   no longer has (a re-registration starts its checks over, as Consul's does); the deletes leave out the keys
//!   it puts, since etcd refuses a txn that puts a key inside a range it deletes;
//! - a deregistration deletes the instance and every check record under it;
//! - a batch of check states writes each record only if its instance is still the registration the state was
//!   judged for (same create revision), so a late result can never resurrect a deregistered instance's health.
//!
//! Records are written with the instance's lease, when it has one, so they expire with it.

use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_registry::keys::{check_key, instance_health_prefix, instance_key};
use meridian_registry::{CheckRecord, CheckRef, InstanceRef, Registration, Timestamp};
use meridian_types::reserved::prefix_end;
use meridian_types::{EtcdError, LeaseId};

use crate::member::Member;

fn put(key: String, value: Vec<u8>, lease: Option<LeaseId>) -> RequestOp {
    let put = PutRequest { key: key.into_bytes(), value, lease: lease.map_or(0, |l| l.0), ..Default::default() };
    RequestOp { request: Some(Request::RequestPut(put)) }
}

fn delete_prefix(prefix: &str) -> RequestOp {
    let delete =
        DeleteRangeRequest { key: prefix.as_bytes().to_vec(), range_end: prefix_end(prefix), ..Default::default() };
    RequestOp { request: Some(Request::RequestDeleteRange(delete)) }
}

fn delete_key(key: String) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest { key: key.into_bytes(), ..Default::default() })),
    }
}

fn txn(compare: Vec<Compare>, success: Vec<RequestOp>) -> TxnRequest {
    TxnRequest { compare, success, failure: Vec::new() }
}

async fn propose_txn(member: &Member, t: TxnRequest) -> Result<meridian_proto::etcdserverpb::TxnResponse, EtcdError> {
    let cmd = RaftCommand { auth: None, cmd: Some(Cmd::Txn(t)), ..Default::default() };
    match member.propose(cmd).await? {
        CommandResponse::Txn(t) => Ok(t),
        other => Err(EtcdError::Internal(format!("a registry txn answered {other:?}"))),
    }
}

/// Registers `reg` (or replaces its earlier registration), its checks starting at their initial status at `now`.
/// Returns the revision it was written at.
pub async fn register(member: &Member, reg: &Registration, now: Timestamp) -> Result<i64, EtcdError> {
    let lease = reg.instance.lease;
    let mut ops = delete_other_checks(reg);
    ops.push(put(reg.key(), reg.encode(), lease));
    for (check, record) in reg.initial_records(now) {
        ops.push(put(check_key(&check), record.encode(), lease));
    }
    let resp = propose_txn(member, txn(Vec::new(), ops)).await?;
    Ok(resp.header.map_or(0, |h| h.revision))
}

/// Deletes the records of every check of the instance that `reg` does not have, as deletes of the gaps between
/// the keys of the checks it has: a txn may not put a key inside a range it deletes (etcd's `checkIntervals`
/// answers "duplicate key given in txn request"), and the records of the checks it has are put over anyway.
fn delete_other_checks(reg: &Registration) -> Vec<RequestOp> {
    let prefix = instance_health_prefix(&reg.instance.reference());
    let mut kept: Vec<Vec<u8>> = reg.checks.iter().map(|def| check_key(&reg.check_ref(&def.id)).into_bytes()).collect();
    kept.sort();
    let mut ops = Vec::new();
    let mut from = prefix.as_bytes().to_vec();
    for key in kept.into_iter().chain([prefix_end(&prefix)]) {
        if from < key {
            let delete = DeleteRangeRequest { key: from, range_end: key.clone(), ..Default::default() };
            ops.push(RequestOp { request: Some(Request::RequestDeleteRange(delete)) });
        }
        // The key right after this one: the next gap starts there.
        from = key;
        from.push(0);
    }
    ops
}

/// Deregisters an instance and its checks' records. Returns whether it was registered.
pub async fn deregister(member: &Member, r: &InstanceRef) -> Result<bool, EtcdError> {
    let ops = vec![delete_key(instance_key(r)), delete_prefix(&instance_health_prefix(r))];
    let resp = propose_txn(member, txn(Vec::new(), ops)).await?;
    let deleted = resp.responses.first().and_then(|r| match &r.response {
        Some(meridian_proto::etcdserverpb::response_op::Response::ResponseDeleteRange(d)) => Some(d.deleted),
        _ => None,
    });
    Ok(deleted.unwrap_or(0) > 0)
}

/// The record of `check` as this member's store holds it, with the revision that wrote it; `None` without one.
/// After a read barrier, that is the record as committed.
pub fn committed_check(member: &Member, check: &CheckRef) -> Result<Option<(CheckRecord, i64)>, EtcdError> {
    let key = check_key(check);
    let req = RangeRequest { key: key.clone().into_bytes(), ..Default::default() };
    let resp = member.kv().read().range(&req).map_err(|e| match e {
        meridian_kv::Error::Etcd(e) => e,
        other => EtcdError::Internal(format!("etcdserver: {other}")),
    })?;
    Ok(resp.kvs.first().and_then(|kv| {
        let record = CheckRecord::decode(&key, &kv.value).ok()?;
        Some((record, kv.mod_revision))
    }))
}

/// One check state to publish, for the registration created at `registered` (its key's create revision).
#[derive(Clone, Debug)]
pub struct CheckWrite {
    /// The check.
    pub check: CheckRef,
    /// Its new state.
    pub record: CheckRecord,
    /// The create revision of the registration the state was judged for.
    pub registered: i64,
    /// The registration's lease.
    pub lease: Option<LeaseId>,
}

/// Writes check states in one proposal; each only if its registration is still the one it was judged for.
/// Returns how many were written.
pub async fn publish(member: &Member, writes: &[CheckWrite]) -> Result<usize, EtcdError> {
    if writes.is_empty() {
        return Ok(0);
    }
    let resp = publish_txn(member, writes).await?;
    Ok(resp
        .responses
        .iter()
        .filter(|r| {
            matches!(&r.response,
                Some(meridian_proto::etcdserverpb::response_op::Response::ResponseTxn(t)) if t.succeeded)
        })
        .count())
}

/// As [`publish`], returning the revision the proposal was applied at instead (the check runners note it, to
/// tell their own writes from others' in the catalog).
pub async fn publish_at(member: &Member, writes: &[CheckWrite]) -> Result<i64, EtcdError> {
    let resp = publish_txn(member, writes).await?;
    Ok(resp.header.map_or(0, |h| h.revision))
}

async fn publish_txn(
    member: &Member,
    writes: &[CheckWrite],
) -> Result<meridian_proto::etcdserverpb::TxnResponse, EtcdError> {
    let guarded: Vec<RequestOp> = writes
        .iter()
        .map(|w| {
            let compare = Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Create as i32,
                key: instance_key(&w.check.instance).into_bytes(),
                target_union: Some(TargetUnion::CreateRevision(w.registered)),
                ..Default::default()
            };
            let write = put(check_key(&w.check), w.record.encode(), w.lease);
            RequestOp { request: Some(Request::RequestTxn(txn(vec![compare], vec![write]))) }
        })
        .collect();
    propose_txn(member, txn(Vec::new(), guarded)).await
}

#[cfg(test)]
mod tests {
    use meridian_registry::NodeName;
    use meridian_registry::consul::{AgentContext, parse_register};
    use meridian_types::DcName;

    use super::*;

    fn ranges(ops: &[RequestOp]) -> Vec<(Vec<u8>, Vec<u8>)> {
        ops.iter()
            .map(|op| match &op.request {
                Some(Request::RequestDeleteRange(d)) => (d.key.clone(), d.range_end.clone()),
                other => panic!("not a delete: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_registration_deletes_every_other_check_record_and_none_it_puts() {
        let ctx = AgentContext {
            node: NodeName::new("a1").unwrap(),
            node_address: "10.0.0.1".into(),
            dc: DcName("dc-a".into()),
            zone: None,
            lease: None,
        };
        let body = br#"{"Name":"web","Port":80,"Checks":[
            {"CheckID":"c2","Name":"c2","TTL":"10s"},{"CheckID":"c1","Name":"c1","TTL":"10s"}]}"#;
        let reg = parse_register(body, &ctx).unwrap();
        let deletes = ranges(&delete_other_checks(&reg));
        let deleted = |key: &str| {
            deletes.iter().any(|(from, to)| from.as_slice() <= key.as_bytes() && key.as_bytes() < to.as_slice())
        };
        for kept in ["/meridian/health/web/a1/web/c1", "/meridian/health/web/a1/web/c2"] {
            assert!(!deleted(kept), "{kept} is put by the registration, so no delete may cover it (etcd refuses)");
        }
        for gone in
            ["/meridian/health/web/a1/web/c0", "/meridian/health/web/a1/web/c1x", "/meridian/health/web/a1/web/c3"]
        {
            assert!(deleted(gone), "{gone} belongs to a check the registration no longer has");
        }
        assert!(!deleted("/meridian/health/web/a1/webx/c0") && !deleted("/meridian/services/web/a1/web"));
        let none = parse_register(br#"{"Name":"web","Port":80}"#, &ctx).unwrap();
        let prefix = instance_health_prefix(&none.instance.reference());
        assert_eq!(ranges(&delete_other_checks(&none)), vec![(prefix.clone().into_bytes(), prefix_end(&prefix))]);
    }
}
