//! The server's lease logic, in one place: what a member does for etcd's Lease API (grant and revoke go through
//! the log; keep-alives renew the leader's lease clock, here or forwarded to the leader; time-to-live reads the
//! clock where it runs), and the loop that follows leadership, starts and stops the clock ([`Lessor`]) and
//! revokes expired leases through the log. The lease table itself is the kv store's (`meridian_kv::lease`); the
//! clock's pure bookkeeping is `meridian_kv::LeaseClock`; the gRPC service (`grpc::lease`) only adapts.

use std::sync::Arc;

use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use meridian_proto::meridianpb::{RaftCommand, RequestAuth, raft_command::Cmd};
use meridian_types::{EtcdError, LeaseId};

use crate::lessor::Lessor;
use crate::member::Member;

/// Proposes a grant as `who`, its TTL raised to the minimum (1.5 election timeouts). Used by the service and by
/// the lock and election services, which grant a lease for a request that names none.
pub async fn grant(
    member: &Member,
    mut req: LeaseGrantRequest,
    who: Option<RequestAuth>,
) -> Result<LeaseGrantResponse, EtcdError> {
    if req.ttl > meridian_kv::MAX_LEASE_TTL {
        return Err(EtcdError::LeaseTtlTooLarge);
    }
    req.ttl = member.lessor().effective_ttl(req.ttl);
    match member.propose(RaftCommand { auth: who, cmd: Some(Cmd::LeaseGrant(req)), ..Default::default() }).await? {
        CommandResponse::LeaseGrant(mut r) => {
            let rev = r.header.as_ref().map_or(0, |h| h.revision);
            r.header = Some(member.header(rev));
            Ok(r)
        }
        _ => Err(EtcdError::Internal("unexpected apply result for lease grant".into())),
    }
}

/// Proposes a revoke; applying it stops the lease's timer. Used by the service and by the expiry loop.
pub async fn revoke(member: &Member, id: LeaseId, who: Option<RequestAuth>) -> Result<LeaseRevokeResponse, EtcdError> {
    let cmd = Cmd::LeaseRevoke(LeaseRevokeRequest { id: id.0 });
    match member.propose(RaftCommand { auth: who, cmd: Some(cmd), ..Default::default() }).await? {
        CommandResponse::LeaseRevoke(mut r) => {
            let rev = r.header.as_ref().map_or(0, |h| h.revision);
            r.header = Some(member.header(rev));
            Ok(r)
        }
        _ => Err(EtcdError::Internal("unexpected apply result for lease revoke".into())),
    }
}

/// Renews a lease on this member, which must run the lease clock (be the leader).
pub fn keep_alive_local(member: &Member, id: i64) -> Result<LeaseKeepAliveResponse, EtcdError> {
    if !member.lessor().is_leader() {
        return Err(EtcdError::NotLeader);
    }
    // etcd answers an unknown lease with TTL 0 rather than an error.
    let ttl = member.lessor().renew(LeaseId(id)).unwrap_or(0);
    Ok(LeaseKeepAliveResponse { header: Some(member.current_header()), id, ttl })
}

/// Renews a lease wherever the lease clock runs: here when leading, otherwise on the leader.
pub async fn keep_alive(member: &Member, id: i64) -> Result<LeaseKeepAliveResponse, EtcdError> {
    if member.lessor().is_leader() {
        return keep_alive_local(member, id);
    }
    let Some(leader) = member.remote_leader() else {
        return Err(if member.raft().current_leader().is_none() { EtcdError::NoLeader } else { EtcdError::NotLeader });
    };
    let mut resp = member.leader_client().keep_alive(&leader, id).await?;
    resp.header = Some(member.current_header());
    Ok(resp)
}

/// A lease's remaining time from this member's view: exact on the leader, the last checkpoint (or the full
/// TTL) elsewhere.
pub fn time_to_live_local(member: &Member, req: &LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse {
    let info = member.kv().read().lease(LeaseId(req.id));
    let header = Some(member.current_header());
    let Some(info) = info else {
        // etcd reports a lease that does not exist as TTL -1, not as an error.
        return LeaseTimeToLiveResponse { header, id: req.id, ttl: -1, ..Default::default() };
    };
    let remaining = member.lessor().remaining(LeaseId(req.id)).or(info.remaining).unwrap_or(info.ttl);
    LeaseTimeToLiveResponse {
        header,
        id: req.id,
        ttl: remaining,
        granted_ttl: info.ttl,
        keys: if req.keys { info.keys } else { Vec::new() },
    }
}

/// Starts the lease clock on a new leader, from the lease table once everything committed before its term is
/// applied: a revoke or grant the previous leader committed may still be on its way into the kv store, and a
/// lessor built from the table without it would keep a revoked lease alive for keep-alives (or never expire a
/// granted one). Leaves the lessor demoted if the barrier fails; the expiry loop tries again.
async fn promote_lessor(member: &Member) {
    if let Err(e) = member.raft().read_barrier().await {
        tracing::debug!(error = %e, "lease clock not started yet: the new leader's barrier failed");
        return;
    }
    // The kv lock is held until the clock is primary, so a grant or revoke applied after the table was read
    // reaches the clock (through the apply hooks) only once it is primary and is not lost to the swap.
    let kv = member.kv();
    let kv = kv.read();
    member.lessor().promote(kv.leases().into_iter().map(|l| (l.id, l.ttl)));
}

/// Follows leadership: the leader runs the lease clock and revokes expired leases through the log.
pub async fn expiry_loop(member: Arc<Member>) {
    let mut leader_rx = member.raft().leader_changes();
    let mut ticker = tokio::time::interval(Lessor::TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            changed = leader_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let leader = *leader_rx.borrow_and_update();
                let is_self = leader == Some(member.id());
                if is_self && !member.lessor().is_leader() {
                    promote_lessor(&member).await;
                } else if !is_self && member.lessor().is_leader() {
                    member.lessor().demote();
                }
            }
            _ = ticker.tick() => {
                if !member.lessor().is_leader() {
                    // A promotion whose barrier failed is retried while this member still leads.
                    if member.raft().current_leader() == Some(member.id()) {
                        promote_lessor(&member).await;
                    }
                    continue;
                }
                for id in member.lessor().expired() {
                    if let Err(e) = revoke(&member, id, None).await {
                        tracing::debug!(lease = id.0, error = %e, "revoking an expired lease failed; will retry");
                    }
                }
            }
        }
    }
}
