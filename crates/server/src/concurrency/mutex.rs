//! Lock and Unlock (etcd's `v3lock` service over `concurrency.Mutex`). Lock enqueues the caller's key and
//! waits for its turn; a Lock that fails or is cancelled while waiting deletes its key. As in etcd 3.4, a
//! waiter whose own key vanished while it waited (its lease expired) is still answered with the lock once the
//! keys ahead are gone: the key it is given no longer exists, which a fenced write (docs/fencing.md) detects.

use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::response_op::Response;
use meridian_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse};
use meridian_proto::v3lockpb::{LockResponse, UnlockResponse};
use meridian_types::{EtcdError, LeaseId, Revision};

use super::client::Caller;
use super::keys;
use super::queue;
use super::withdraw::{WithdrawGuard, Withdrawal};

/// Blocks until `caller` holds lock `name` with its key attached to `lease` (a new 60 s lease when 0), and
/// answers with the key. Holding the same name with the same lease again answers at once with the same key.
pub async fn lock(caller: Caller, name: &[u8], lease: LeaseId) -> Result<LockResponse, EtcdError> {
    let lease = caller.session_lease(lease).await?;
    let prefix = keys::prefix(name);
    let key = keys::waiter_key(name, lease);
    let resp = caller.txn(enqueue(&key, &prefix, lease)).await?;
    let place = Place::of(&resp)?;
    // `planted_lock_skips_wait`: the simulation's planted bug (`planted::PlantedBug::LockSkipsWait`), off in any
    // real server.
    if place.first || caller.member().config().planted_lock_skips_wait {
        return Ok(LockResponse { header: resp.header, key });
    }
    let guard = WithdrawGuard::new(caller.clone(), Withdrawal::Unlock(key.clone()));
    match queue::wait_turn(&caller, &prefix, Revision(place.mine.0 - 1)).await {
        Ok(header) => {
            guard.disarm();
            Ok(LockResponse { header: Some(header), key })
        }
        Err(e) => {
            guard.withdraw_now().await;
            Err(e)
        }
    }
}

/// Releases a lock by deleting the key Lock answered with (any key: etcd does not check).
pub async fn unlock(caller: Caller, key: Vec<u8>) -> Result<UnlockResponse, EtcdError> {
    let resp = caller.delete(key).await?;
    Ok(UnlockResponse { header: resp.header })
}

/// The enqueue txn: put the waiter's key with its lease unless the key exists (then read it), and read the
/// first-created key under the prefix, so an uncontended lock takes one request.
fn enqueue(key: &[u8], prefix: &[u8], lease: LeaseId) -> TxnRequest {
    let get = |req: RangeRequest| RequestOp { request: Some(Request::RequestRange(req)) };
    let put = PutRequest { key: key.to_vec(), lease: lease.0, ..Default::default() };
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: key.to_vec(),
            target_union: Some(TargetUnion::CreateRevision(0)),
            range_end: Vec::new(),
        }],
        success: vec![RequestOp { request: Some(Request::RequestPut(put)) }, get(keys::first_created(prefix))],
        failure: vec![get(RangeRequest { key: key.to_vec(), ..Default::default() }), get(keys::first_created(prefix))],
    }
}

/// Where a waiter stands after its enqueue txn.
#[derive(Debug, PartialEq, Eq)]
struct Place {
    /// Its key's create revision.
    mine: Revision,
    /// Whether no key under the prefix was created before it.
    first: bool,
}

impl Place {
    fn of(resp: &TxnResponse) -> Result<Place, EtcdError> {
        let range = |i: usize| match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
            Some(Response::ResponseRange(r)) => Ok(r),
            _ => Err(EtcdError::Internal("lock: the enqueue txn answered without its reads".into())),
        };
        let mine = if resp.succeeded {
            resp.header.as_ref().map_or(0, |h| h.revision)
        } else {
            range(0)?
                .kvs
                .first()
                .ok_or_else(|| EtcdError::Internal("lock: the waiter's key vanished inside its txn".into()))?
                .create_revision
        };
        let first = range(1)?.kvs.first().is_none_or(|owner| owner.create_revision == mine);
        Ok(Place { mine: Revision(mine), first })
    }
}

#[cfg(test)]
mod tests {
    use meridian_proto::etcdserverpb::{PutResponse, RangeResponse, ResponseHeader, ResponseOp};
    use meridian_proto::mvccpb::KeyValue;

    use super::*;

    fn range_of(create_revisions: &[i64]) -> ResponseOp {
        let kvs = create_revisions.iter().map(|r| KeyValue { create_revision: *r, ..Default::default() }).collect();
        ResponseOp { response: Some(Response::ResponseRange(RangeResponse { kvs, ..Default::default() })) }
    }

    fn answer(succeeded: bool, revision: i64, responses: Vec<ResponseOp>) -> TxnResponse {
        TxnResponse { header: Some(ResponseHeader { revision, ..Default::default() }), succeeded, responses }
    }

    #[test]
    fn a_new_waiter_is_placed_at_the_txn_revision() {
        let put = ResponseOp { response: Some(Response::ResponsePut(PutResponse::default())) };
        assert_eq!(
            Place::of(&answer(true, 7, vec![put.clone(), range_of(&[7])])),
            Ok(Place { mine: Revision(7), first: true })
        );
        assert_eq!(
            Place::of(&answer(true, 9, vec![put, range_of(&[4])])),
            Ok(Place { mine: Revision(9), first: false })
        );
    }

    #[test]
    fn a_lease_that_already_waits_keeps_its_place() {
        assert_eq!(
            Place::of(&answer(false, 12, vec![range_of(&[5]), range_of(&[5])])),
            Ok(Place { mine: Revision(5), first: true })
        );
        assert_eq!(
            Place::of(&answer(false, 12, vec![range_of(&[6]), range_of(&[3])])),
            Ok(Place { mine: Revision(6), first: false })
        );
    }

    #[test]
    fn a_malformed_answer_is_an_error_not_a_panic() {
        assert!(Place::of(&answer(false, 3, vec![range_of(&[]), range_of(&[])])).is_err());
        assert!(Place::of(&answer(true, 3, vec![])).is_err());
    }

    #[test]
    fn enqueue_puts_only_a_key_that_does_not_exist() {
        let txn = enqueue(b"n/a", b"n/", LeaseId(10));
        assert_eq!(txn.compare[0].target_union, Some(TargetUnion::CreateRevision(0)));
        match &txn.success[0].request {
            Some(Request::RequestPut(p)) => {
                assert_eq!((p.key.as_slice(), p.lease, p.value.is_empty()), (&b"n/a"[..], 10, true))
            }
            other => panic!("expected a put first, got {other:?}"),
        }
        assert_eq!((txn.success.len(), txn.failure.len()), (2, 2));
    }
}
