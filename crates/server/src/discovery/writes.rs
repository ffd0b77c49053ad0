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

/// The keys under `prefix` in this member's store (none if it cannot be read).
fn stored_keys(member: &Member, prefix: &str) -> Vec<String> {
    let req = RangeRequest {
        key: prefix.as_bytes().to_vec(),
        range_end: prefix_end(prefix),
        keys_only: true,
        ..Default::default()
    };
    let resp = member.kv().read().range(&req);
    resp.map(|r| r.kvs.into_iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect())
        .unwrap_or_default()
}

/// Registers `reg` (or replaces its earlier registration), its checks starting at their initial status at `now`.
/// Returns the revision it was written at.
pub async fn register(member: &Member, reg: &Registration, now: Timestamp) -> Result<i64, EtcdError> {
    let lease = reg.instance.lease;
    let records: Vec<(String, Vec<u8>)> =
        reg.initial_records(now).into_iter().map(|(check, record)| (check_key(&check), record.encode())).collect();
    // A txn may not put a key inside a range it deletes (etcd's rule): delete the records of the checks the
    // registration no longer has one by one, as this member's store lists them; the others are overwritten.
    let mut ops: Vec<RequestOp> = stored_keys(member, &instance_health_prefix(&reg.instance.reference()))
        .into_iter()
        .filter(|k| !records.iter().any(|(key, _)| key == k))
        .map(delete_key)
        .collect();
    ops.push(put(reg.key(), reg.encode(), lease));
    for (key, value) in records {
        ops.push(put(key, value, lease));
    }
    let resp = propose_txn(member, txn(Vec::new(), ops)).await?;
    Ok(resp.header.map_or(0, |h| h.revision))
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
    let resp = propose_txn(member, txn(Vec::new(), guarded)).await?;
    Ok(resp
        .responses
        .iter()
        .filter(|r| {
            matches!(&r.response,
                Some(meridian_proto::etcdserverpb::response_op::Response::ResponseTxn(t)) if t.succeeded)
        })
        .count())
}
