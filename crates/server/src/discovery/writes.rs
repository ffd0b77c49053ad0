//! The registry's writes, as the server's own commands (no caller: the reserved keyspace is theirs; the HTTP
//! API checks the caller's permission before it asks for one). Each is one transaction, so a reader of the
//! store never sees half of one:
//! - a registration puts the instance and its checks' initial records and deletes the records of checks it
//!   no longer has, as this member's store lists them (a re-registration starts its checks over, as Consul's
//!   does);
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
///
/// The records of checks the registration no longer has are deleted key by key, as this member's store lists
/// them: a transaction may not delete a range and put a key inside it (etcd's "duplicate key given in txn
/// request"), and the new checks' records are put in the same transaction.
pub async fn register(member: &Member, reg: &Registration, now: Timestamp) -> Result<i64, EtcdError> {
    let lease = reg.instance.lease;
    let records = reg.initial_records(now);
    let kept: std::collections::BTreeSet<Vec<u8>> =
        records.iter().map(|(check, _)| check_key(check).into_bytes()).collect();
    let mut ops: Vec<RequestOp> = existing_records(member, &reg.instance.reference())
        .into_iter()
        .filter(|key| !kept.contains(key))
        .map(|key| RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest { key, ..Default::default() })),
        })
        .collect();
    ops.push(put(reg.key(), reg.encode(), lease));
    for (check, record) in records {
        ops.push(put(check_key(&check), record.encode(), lease));
    }
    let resp = propose_txn(member, txn(Vec::new(), ops)).await?;
    Ok(resp.header.map_or(0, |h| h.revision))
}

/// The keys of the check records stored under an instance, as this member's store has them.
fn existing_records(member: &Member, r: &InstanceRef) -> Vec<Vec<u8>> {
    let prefix = instance_health_prefix(r);
    let req = RangeRequest {
        key: prefix.as_bytes().to_vec(),
        range_end: prefix_end(&prefix),
        keys_only: true,
        ..Default::default()
    };
    member.kv().read().range(&req).map(|resp| resp.kvs.into_iter().map(|kv| kv.key).collect()).unwrap_or_default()
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
