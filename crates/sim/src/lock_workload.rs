//! Lock clients: one per datacenter, all contending for one lock ([`LOCK_NAME`]) through etcd's Lock service at
//! the member they are connected to (their own datacenter's first, failing over like the other clients). A round:
//! grant a lease (kept alive by a task of the client's own), `Lock(name, lease)`, read the lock key's create
//! revision (the fencing token), make one to three *fenced writes* (a txn that puts [`DATA_KEY`] only while the
//! lock key still has that create revision), then let go in one of four ways: `Unlock`, revoke the lease, stop
//! keeping the lease alive and walk away (the key goes when the lease expires), or stall: stop keeping it alive,
//! pause past its TTL and make one more fenced write as if the lock were still held (which must not take
//! effect once the lease has expired and a successor may hold the lock). Every round uses a new lease, so a key
//! never serves two rounds. Each client also watches the lock's keys from revision 1, which gives the checker
//! the store's own history of every waiter's key: its create and delete revisions.
//!
//! Everything is recorded in [`crate::history::LockRecord`]; `checker::locks` judges it. A Lock that fails or
//! times out is recorded as unknown (the service may have granted it) and the client revokes its lease.

use std::time::Duration;

use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::lease_client::LeaseClient;
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{
    Compare, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};
use meridian_proto::v3lockpb::lock_client::LockClient;
use meridian_proto::v3lockpb::{LockRequest, UnlockRequest};

use crate::auth_channel::SimChannel as Channel;
use crate::history::{LockCall, LockOutcome};
use crate::recorder::{Recorder, now_ns};
use crate::rng::SimRng;
use crate::sim_net::client_channels;
use crate::workload::{self, WatchTarget};

/// The one lock every lock client contends for.
pub const LOCK_NAME: &str = "locks/job";
/// The prefix of its waiters' keys (`<name>/<lease id in hex>`), watched by every lock client.
pub const LOCK_PREFIX: &str = "locks/job/";
/// The key the fenced writes put.
pub const DATA_KEY: &str = "locks/job-data";
/// Client ids of the lock clients start here.
pub const FIRST_LOCK_CLIENT_ID: u32 = 400;
/// TTL of a lock client's lease (the server raises it to its minimum, 1.5 election timeouts, if lower).
const LEASE_TTL_SECS: i64 = 3;
/// How often the keep-alive task refreshes the lease.
const KEEP_ALIVE_EVERY: Duration = Duration::from_millis(500);
/// How long any one request may take; a Lock may wait out a lapsed holder's lease (a TTL, again after a leader
/// change re-times it), so this is well above two TTLs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stalled holder pauses before its late fenced write: past its lease's TTL.
const STALL: Duration = Duration::from_millis(LEASE_TTL_SECS as u64 * 1000 + 1500);

/// What one lock client does.
#[derive(Clone, Debug)]
pub struct LockPlan {
    /// Client number (unique in the run).
    pub id: u32,
    /// Client URLs of the members, own datacenter first.
    pub endpoints: Vec<String>,
    /// Seed of this client's choices.
    pub seed: u64,
    /// Stop starting rounds at this simulated time (ns).
    pub until_ns: u64,
}

/// How a holder lets go of the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Release {
    Unlock,
    Revoke,
    Lapse,
    Stall,
}

/// Runs one lock client until its plan's end time.
pub async fn run(plan: LockPlan, rec: Recorder) -> turmoil::Result {
    let mut rng = SimRng::new(plan.seed);
    {
        let (urls, rec, id, until) = (plan.endpoints.clone(), rec.clone(), plan.id, plan.until_ns);
        tokio::spawn(async move { workload::watch_loop(id, urls, rec, until, WatchTarget::Locks).await });
    }
    let channels = client_channels(&plan.endpoints, REQUEST_TIMEOUT);
    let mut current = 0usize;
    let mut seq = 0u64;
    while now_ns() < plan.until_ns {
        tokio::time::sleep(Duration::from_millis(rng.between(5, 120))).await;
        seq += 1;
        if !round(&channels[current], &channels, &rec, plan.id, &mut rng, seq, plan.until_ns).await {
            current = (current + 1) % channels.len();
        }
    }
    Ok(())
}

/// One round: lease, Lock, fenced writes, release. Whether the member answered throughout.
async fn round(
    channel: &Channel,
    all: &[Channel],
    rec: &Recorder,
    client: u32,
    rng: &mut SimRng,
    seq: u64,
    until: u64,
) -> bool {
    let mut leases = LeaseClient::new(channel.clone());
    let lease = match leases.lease_grant(LeaseGrantRequest { ttl: LEASE_TTL_SECS, id: 0 }).await {
        Ok(r) => r.into_inner().id,
        Err(_) => return false,
    };
    let keeper = tokio::spawn(keep_alive(all.to_vec(), lease, until));
    let op = rec.invoke_lock(client, LockCall::Lock { lease });
    let req = LockRequest { name: LOCK_NAME.as_bytes().to_vec(), lease };
    let granted = match LockClient::new(channel.clone()).lock(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            rec.complete_lock(op, fate(&s));
            keeper.abort();
            // The service may have granted it, or may still hold the key in the queue: give the lease back.
            revoke(channel, rec, client, lease).await;
            return false;
        }
    };
    let revision = granted.header.as_ref().map_or(0, |h| h.revision);
    let key = granted.key;
    let read = KvClient::new(channel.clone()).range(RangeRequest { key: key.clone(), ..Default::default() }).await;
    let token = match &read {
        Ok(r) => r.get_ref().kvs.first().map(|kv| kv.create_revision),
        Err(_) => None,
    };
    rec.complete_lock(op, LockOutcome::Granted { key: key.clone(), revision, token });
    let mut ok = read.is_ok();
    if let Some(token) = token {
        for n in 0..rng.between(1, 4) {
            tokio::time::sleep(Duration::from_millis(rng.between(1, 30))).await;
            let value = format!("c{client}-{seq}-{n}-t{token}").into_bytes();
            ok &= fenced_write(channel, rec, client, &key, token, value).await;
        }
    }
    let release = match rng.below(100) {
        0..=64 => Release::Unlock,
        65..=79 => Release::Revoke,
        80..=89 => Release::Lapse,
        _ => Release::Stall,
    };
    match release {
        Release::Unlock => {
            keeper.abort();
            let op = rec.invoke_lock(client, LockCall::Unlock { key: key.clone() });
            match LockClient::new(channel.clone()).unlock(UnlockRequest { key }).await {
                Ok(r) => {
                    let revision = r.into_inner().header.map_or(0, |h| h.revision);
                    rec.complete_lock(op, LockOutcome::Released { revision });
                }
                Err(s) => {
                    rec.complete_lock(op, fate(&s));
                    revoke(channel, rec, client, lease).await;
                    ok = false;
                }
            }
        }
        Release::Revoke => {
            keeper.abort();
            ok &= revoke(channel, rec, client, lease).await;
        }
        Release::Lapse | Release::Stall => {
            keeper.abort();
            let stalled = release == Release::Stall;
            let op = rec.invoke_lock(client, LockCall::Lapse { lease, stalled });
            rec.complete_lock(op, LockOutcome::Lapsed);
            if let (true, Some(token)) = (stalled, token) {
                tokio::time::sleep(STALL).await;
                let value = format!("c{client}-{seq}-late-t{token}").into_bytes();
                fenced_write(channel, rec, client, &key, token, value).await;
            }
        }
    }
    ok
}

/// The protected write: put [`DATA_KEY`] only if `key`'s create revision is still `token`.
async fn fenced_write(channel: &Channel, rec: &Recorder, client: u32, key: &[u8], token: i64, value: Vec<u8>) -> bool {
    let op = rec.invoke_lock(client, LockCall::FencedWrite { key: key.to_vec(), token, value: value.clone() });
    let txn = TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: key.to_vec(),
            target_union: Some(TargetUnion::CreateRevision(token)),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: DATA_KEY.as_bytes().to_vec(),
                value,
                ..Default::default()
            })),
        }],
        failure: vec![],
    };
    match KvClient::new(channel.clone()).txn(txn).await {
        Ok(r) => {
            let r = r.into_inner();
            let revision = r.header.map_or(0, |h| h.revision);
            rec.complete_lock(op, LockOutcome::Written { succeeded: r.succeeded, revision });
            true
        }
        Err(s) => {
            rec.complete_lock(op, fate(&s));
            false
        }
    }
}

/// Revokes `lease` (recorded); whether the member answered.
async fn revoke(channel: &Channel, rec: &Recorder, client: u32, lease: i64) -> bool {
    let op = rec.invoke_lock(client, LockCall::Revoke { lease });
    match LeaseClient::new(channel.clone()).lease_revoke(LeaseRevokeRequest { id: lease }).await {
        Ok(r) => {
            let revision = r.into_inner().header.map_or(0, |h| h.revision);
            rec.complete_lock(op, LockOutcome::Released { revision });
            true
        }
        Err(s) if s.code() == tonic::Code::NotFound => {
            rec.complete_lock(op, LockOutcome::Failed { reason: s.message().to_owned() });
            true
        }
        Err(s) => {
            rec.complete_lock(op, fate(&s));
            false
        }
    }
}

/// Keeps `lease` alive until aborted, the lease is gone, or `until`, failing over between the members.
async fn keep_alive(channels: Vec<Channel>, lease: i64, until: u64) {
    let mut current = 0usize;
    while now_ns() < until {
        let mut client = LeaseClient::new(channels[current].clone());
        let request = futures::stream::iter([LeaseKeepAliveRequest { id: lease }]);
        let reply = async {
            let mut stream = client.lease_keep_alive(request).await?.into_inner();
            stream.message().await?.ok_or_else(|| tonic::Status::unavailable("keep-alive stream ended"))
        };
        match tokio::time::timeout(KEEP_ALIVE_EVERY * 2, reply).await {
            Ok(Ok(r)) if r.ttl <= 0 => return,
            Ok(Ok(_)) => {}
            _ => current = (current + 1) % channels.len(),
        }
        tokio::time::sleep(KEEP_ALIVE_EVERY).await;
    }
}

/// The outcome of a failed request: a definite refusal, or unknown.
fn fate(status: &tonic::Status) -> LockOutcome {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument | Code::NotFound | Code::PermissionDenied | Code::ResourceExhausted => {
            LockOutcome::Failed { reason: status.message().to_owned() }
        }
        _ => LockOutcome::Unknown,
    }
}
