//! Campaign, Proclaim, Resign and Leader (etcd's `v3election` service over `concurrency.Election`). A
//! candidate's key holds its proposal as the value; the first-created key under the election's prefix is the
//! leader. Proclaim and Resign act only while the leader key still has the create revision Campaign answered
//! with, so a candidate whose key expired and was replaced cannot speak for its successor.

use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::response_op::Response;
use meridian_proto::etcdserverpb::{
    Compare, PutRequest, RangeRequest, RequestOp, ResponseHeader, TxnRequest, TxnResponse,
};
use meridian_proto::v3electionpb::{CampaignResponse, LeaderKey, LeaderResponse, ProclaimResponse, ResignResponse};
use meridian_types::{EtcdError, LeaseId, Revision};

use super::client::Caller;
use super::keys;
use super::queue;
use super::withdraw::{WithdrawGuard, Withdrawal, resign_txn};

/// Blocks until `caller`'s proposal `value` leads election `name`, its key attached to `lease` (a new 60 s
/// lease when 0). A lease that already campaigns keeps its place; a different value is proclaimed first. A
/// campaign cancelled while it waits resigns; one that fails otherwise leaves its key (as etcd's does).
pub async fn campaign(
    caller: Caller,
    name: &[u8],
    lease: LeaseId,
    value: &[u8],
) -> Result<CampaignResponse, EtcdError> {
    let lease = caller.session_lease(lease).await?;
    let key = keys::waiter_key(name, lease);
    let resp = caller.txn(enqueue(&key, value, lease)).await?;
    let rev = match standing(&resp)? {
        Standing::New(rev) => rev,
        Standing::Kept { rev, value: ref held } if held.as_slice() == value => rev,
        Standing::Kept { rev, .. } => {
            if let Err(e) = proclaim_as(&caller, &key, rev, lease, value).await {
                WithdrawGuard::new(caller.clone(), Withdrawal::Resign(key, rev)).withdraw_now().await;
                return Err(e);
            }
            rev
        }
    };
    let guard = WithdrawGuard::new(caller.clone(), Withdrawal::Resign(key.clone(), rev));
    let waited = queue::wait_turn(&caller, &keys::prefix(name), Revision(rev.0 - 1)).await;
    guard.disarm();
    waited?;
    Ok(CampaignResponse {
        header: resp.header,
        leader: Some(LeaderKey { name: name.to_vec(), key, rev: rev.0, lease: lease.0 }),
    })
}

/// Replaces the leader's value, while `leader` still leads: its key exists with the create revision it names.
pub async fn proclaim(caller: Caller, leader: Option<LeaderKey>, value: &[u8]) -> Result<ProclaimResponse, EtcdError> {
    let leader = leader.ok_or(EtcdError::MissingLeaderKey)?;
    let lease = caller.session_lease(LeaseId(leader.lease)).await?;
    let header = proclaim_as(&caller, &leader.key, Revision(leader.rev), lease, value).await?;
    Ok(ProclaimResponse { header: Some(header) })
}

/// Deletes the leader's key if it is still the one `leader` names; answers the same either way.
pub async fn resign(caller: Caller, leader: Option<LeaderKey>) -> Result<ResignResponse, EtcdError> {
    let leader = leader.ok_or(EtcdError::MissingLeaderKey)?;
    // etcd opens a session with the request's lease here too, which grants one when it names none.
    caller.session_lease(LeaseId(leader.lease)).await?;
    let resp = caller.txn(resign_txn(leader.key, Revision(leader.rev))).await?;
    Ok(ResignResponse { header: resp.header })
}

/// The leader of election `name`: its first-created key, read linearizably.
pub async fn leader(caller: Caller, name: &[u8]) -> Result<LeaderResponse, EtcdError> {
    let resp = caller.range(keys::first_created(&keys::prefix(name))).await?;
    let kv = resp.kvs.into_iter().next().ok_or(EtcdError::ElectionNoLeader)?;
    Ok(LeaderResponse { header: resp.header, kv: Some(kv) })
}

/// Puts `value` on the leader key `key` with `lease` while its create revision is `rev`.
async fn proclaim_as(
    caller: &Caller,
    key: &[u8],
    rev: Revision,
    lease: LeaseId,
    value: &[u8],
) -> Result<ResponseHeader, EtcdError> {
    let put = PutRequest { key: key.to_vec(), value: value.to_vec(), lease: lease.0, ..Default::default() };
    let req = TxnRequest {
        compare: vec![created_at(key, rev)],
        success: vec![RequestOp { request: Some(Request::RequestPut(put)) }],
        failure: Vec::new(),
    };
    let resp = caller.txn(req).await?;
    if !resp.succeeded {
        return Err(EtcdError::ElectionNotLeader);
    }
    Ok(resp.header.unwrap_or_default())
}

/// The compare "`key` was created at `rev`" (0: does not exist).
fn created_at(key: &[u8], rev: Revision) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.to_vec(),
        target_union: Some(TargetUnion::CreateRevision(rev.0)),
        range_end: Vec::new(),
    }
}

/// The campaign's enqueue txn: put the candidate's key with its value and lease unless it exists (then read it).
fn enqueue(key: &[u8], value: &[u8], lease: LeaseId) -> TxnRequest {
    let put = PutRequest { key: key.to_vec(), value: value.to_vec(), lease: lease.0, ..Default::default() };
    TxnRequest {
        compare: vec![created_at(key, Revision(0))],
        success: vec![RequestOp { request: Some(Request::RequestPut(put)) }],
        failure: vec![RequestOp {
            request: Some(Request::RequestRange(RangeRequest { key: key.to_vec(), ..Default::default() })),
        }],
    }
}

/// A candidate's key after its enqueue txn.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// Put now, at this revision.
    New(Revision),
    /// Already there (the lease campaigned before), created at `rev` with `value`.
    Kept { rev: Revision, value: Vec<u8> },
}

fn standing(resp: &TxnResponse) -> Result<Standing, EtcdError> {
    if resp.succeeded {
        return Ok(Standing::New(Revision(resp.header.as_ref().map_or(0, |h| h.revision))));
    }
    let kv = match resp.responses.first().and_then(|r| r.response.as_ref()) {
        Some(Response::ResponseRange(r)) => r.kvs.first(),
        _ => None,
    };
    let kv = kv.ok_or_else(|| EtcdError::Internal("campaign: the candidate's key vanished inside its txn".into()))?;
    Ok(Standing::Kept { rev: Revision(kv.create_revision), value: kv.value.clone() })
}

#[cfg(test)]
mod tests {
    use meridian_proto::etcdserverpb::{RangeResponse, ResponseOp};
    use meridian_proto::mvccpb::KeyValue;

    use super::*;

    #[test]
    fn a_new_candidate_stands_at_its_txn_revision_and_an_old_one_keeps_its_place() {
        let new = TxnResponse {
            header: Some(ResponseHeader { revision: 8, ..Default::default() }),
            succeeded: true,
            responses: Vec::new(),
        };
        assert_eq!(standing(&new), Ok(Standing::New(Revision(8))));
        let kv = KeyValue { create_revision: 3, value: b"old".to_vec(), ..Default::default() };
        let range = RangeResponse { kvs: vec![kv], ..Default::default() };
        let kept = TxnResponse {
            header: Some(ResponseHeader { revision: 9, ..Default::default() }),
            succeeded: false,
            responses: vec![ResponseOp { response: Some(Response::ResponseRange(range)) }],
        };
        assert_eq!(standing(&kept), Ok(Standing::Kept { rev: Revision(3), value: b"old".to_vec() }));
        let empty = TxnResponse { succeeded: false, ..Default::default() };
        assert!(standing(&empty).is_err());
    }

    #[test]
    fn proclaim_and_resign_compare_the_create_revision() {
        let c = created_at(b"e/1", Revision(5));
        assert_eq!((c.target(), c.result()), (CompareTarget::Create, CompareResult::Equal));
        assert_eq!(c.target_union, Some(TargetUnion::CreateRevision(5)));
        let r = resign_txn(b"e/1".to_vec(), Revision(5));
        assert_eq!(r.compare, vec![c]);
        assert!(matches!(&r.success[0].request, Some(Request::RequestDeleteRange(d)) if d.key == b"e/1"));
    }
}
