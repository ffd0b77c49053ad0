//! Taking a waiter's key back when it gives up. etcd's recipes do it with a context of their own, so it happens
//! even when the client has gone: a Lock that fails or is cancelled while waiting deletes its key, a Campaign
//! cancelled while waiting resigns. A client that goes away drops the request's future here, so the guard does
//! it from its `Drop`, on a task of its own.

use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{Compare, DeleteRangeRequest, RequestOp, TxnRequest};
use meridian_types::{EtcdError, Revision};

use super::client::Caller;

/// What giving up takes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Withdrawal {
    /// A waiter of a lock: delete its key (etcd's `Mutex.Unlock`).
    Unlock(Vec<u8>),
    /// A candidate: delete its key if it is still the one created at this revision (etcd's `Election.Resign`).
    Resign(Vec<u8>, Revision),
}

impl Withdrawal {
    /// Takes the key back as `caller`.
    pub async fn run(self, caller: &Caller) -> Result<(), EtcdError> {
        match self {
            Withdrawal::Unlock(key) => caller.delete(key).await.map(drop),
            Withdrawal::Resign(key, rev) => caller.txn(resign_txn(key, rev)).await.map(drop),
        }
    }
}

/// The txn that deletes `key` only while its create revision is `rev`, so a resign never removes a later key.
pub fn resign_txn(key: Vec<u8>, rev: Revision) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::CreateRevision(rev.0)),
            range_end: Vec::new(),
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest { key, ..Default::default() })),
        }],
        failure: Vec::new(),
    }
}

/// Withdraws on drop unless disarmed.
pub struct WithdrawGuard {
    armed: Option<(Caller, Withdrawal)>,
}

impl WithdrawGuard {
    /// A guard that withdraws `what` as `caller` if dropped armed.
    pub fn new(caller: Caller, what: Withdrawal) -> WithdrawGuard {
        WithdrawGuard { armed: Some((caller, what)) }
    }

    /// The waiter got its turn: keep the key.
    pub fn disarm(mut self) {
        self.armed = None;
    }

    /// Withdraws now, before answering the client.
    pub async fn withdraw_now(mut self) {
        if let Some((caller, what)) = self.armed.take()
            && let Err(e) = what.run(&caller).await
        {
            tracing::debug!(error = %e, "a waiter that gave up could not take its key back");
        }
    }
}

impl Drop for WithdrawGuard {
    fn drop(&mut self) {
        let Some((caller, what)) = self.armed.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = what.run(&caller).await {
                        tracing::debug!(error = %e, "a cancelled waiter could not take its key back");
                    }
                });
            }
            Err(_) => tracing::warn!("a cancelled waiter's key stays until its lease ends: no runtime to delete it"),
        }
    }
}
