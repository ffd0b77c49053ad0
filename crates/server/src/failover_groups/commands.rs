//! The writes of the failover groups, as the server's own commands (no caller, so the reserved keyspace is
//! theirs): a switch is a txn that puts the new active record only if the key's `mod_revision` is still the one
//! it was decided from, so two deciders can never both switch from one token; an audit attempt is put only if
//! its key is new, so two leaders resuming one token never overwrite each other's records.

use meridian_failover::ActiveRecord;
use meridian_failover::audit::AuditEntry;
use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{Compare, DeleteRangeRequest, PutRequest, RequestOp, TxnRequest};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::reserved::{active_key, group_key};
use meridian_types::{EtcdError, FailoverGroupSpec, GroupName, Revision};

use crate::member::Member;

fn put(key: String, value: Vec<u8>) -> RequestOp {
    RequestOp { request: Some(Request::RequestPut(PutRequest { key: key.into_bytes(), value, ..Default::default() })) }
}

fn delete(key: String) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest { key: key.into_bytes(), ..Default::default() })),
    }
}

fn server_command(cmd: Cmd) -> RaftCommand {
    RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() }
}

/// A txn that runs `ops` only if `key`'s `target` revision equals `revision` (0: the key does not exist).
fn guarded(key: String, target: CompareTarget, revision: i64, ops: Vec<RequestOp>) -> RaftCommand {
    let union = match target {
        CompareTarget::Create => TargetUnion::CreateRevision(revision),
        _ => TargetUnion::ModRevision(revision),
    };
    let compare = Compare {
        result: CompareResult::Equal as i32,
        target: target as i32,
        key: key.into_bytes(),
        target_union: Some(union),
        ..Default::default()
    };
    server_command(Cmd::Txn(TxnRequest { compare: vec![compare], success: ops, failure: Vec::new() }))
}

/// A guarded txn's outcome: the revision it wrote at when its compare held, `None` when it did not.
fn guarded_outcome(resp: CommandResponse) -> Result<Option<Revision>, EtcdError> {
    match resp {
        CommandResponse::Txn(t) if t.succeeded => Ok(Some(Revision(t.header.map_or(0, |h| h.revision)))),
        CommandResponse::Txn(_) => Ok(None),
        other => Err(EtcdError::Internal(format!("a txn answered {other:?}"))),
    }
}

/// Proposes a guarded txn (forwarded to the leader if need be).
async fn propose_guarded(member: &Member, cmd: RaftCommand) -> Result<Option<Revision>, EtcdError> {
    guarded_outcome(member.propose(cmd).await?)
}

/// The txn writing `record` as its group's active record if the key is still at `decided_from`.
fn switch_command(record: &ActiveRecord, decided_from: Revision) -> RaftCommand {
    let key = active_key(&record.group.0);
    guarded(key.clone(), CompareTarget::Mod, decided_from.0, vec![put(key, record.to_json())])
}

/// Writes `record` as its group's active record if the key is still at `decided_from` (its token when the
/// switch was decided; 0 when the group had none). Returns the new token, or `None` when someone else switched
/// first (read again and decide again).
pub async fn switch(
    member: &Member,
    record: &ActiveRecord,
    decided_from: Revision,
) -> Result<Option<Revision>, EtcdError> {
    propose_guarded(member, switch_command(record, decided_from)).await
}

/// [`switch`] as the leader's own decision for `record.term`: proposed on this member only, and applied only in
/// that term, so a deposed leader's switch is never committed by its successor.
pub async fn switch_as_leader(
    member: &Member,
    record: &ActiveRecord,
    decided_from: Revision,
) -> Result<Option<Revision>, EtcdError> {
    guarded_outcome(member.propose_as_leader(switch_command(record, decided_from), record.term).await?)
}

/// Stores a group's definition (the admin API's); returns the write's revision.
pub async fn define(member: &Member, spec: &FailoverGroupSpec) -> Result<Revision, EtcdError> {
    let value = serde_json::to_vec(spec).map_err(|e| EtcdError::Internal(e.to_string()))?;
    let cmd =
        server_command(Cmd::Put(PutRequest { key: group_key(&spec.name.0).into_bytes(), value, ..Default::default() }));
    match member.propose(cmd).await? {
        CommandResponse::Put(p) => Ok(Revision(p.header.map_or(0, |h| h.revision))),
        other => Err(EtcdError::Internal(format!("a put answered {other:?}"))),
    }
}

/// Removes a group's stored definition, and with `active` its active record in the same write; returns the
/// write's revision.
pub async fn remove(member: &Member, group: &GroupName, active: bool) -> Result<Revision, EtcdError> {
    let mut ops = vec![delete(group_key(&group.0))];
    if active {
        ops.push(delete(active_key(&group.0)));
    }
    let cmd = server_command(Cmd::Txn(TxnRequest { compare: Vec::new(), success: ops, failure: Vec::new() }));
    match member.propose(cmd).await? {
        CommandResponse::Txn(t) => Ok(Revision(t.header.map_or(0, |h| h.revision))),
        other => Err(EtcdError::Internal(format!("a txn answered {other:?}"))),
    }
}

/// Writes an audit record at `key` unless the key exists; `false` when it did (another leader used the number).
pub async fn audit_once(member: &Member, key: String, entry: &AuditEntry) -> Result<bool, EtcdError> {
    let cmd = guarded(key.clone(), CompareTarget::Create, 0, vec![put(key, entry.to_json())]);
    Ok(propose_guarded(member, cmd).await?.is_some())
}
