//! The key-value calls the lock and election recipes make, as the client that asked. etcd serves these services
//! through its own Go client, which sends the caller's credentials along, so each call is judged as the
//! caller's own request would be: writes carry the caller into the log and are judged where they apply (with
//! the reserved keyspace refused before proposing, as the KV service does), reads are linearizable and judged
//! here after the barrier. The caller's credentials are resolved again for every call, as etcd resolves the
//! token of each of its own client's requests.

use std::sync::Arc;

use meridian_kv::{CommandResponse, PermKind};
use meridian_proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, RangeRequest, RangeResponse, ResponseHeader,
    TxnRequest, TxnResponse,
};
use meridian_proto::meridianpb::{RaftCommand, RequestAuth, raft_command::Cmd};
use meridian_types::{EtcdError, LeaseId};

use crate::auth::CallerSource;
use crate::member::Member;

/// TTL of the lease granted for a request that names none: etcd's `concurrency.Session` default.
pub const SESSION_TTL_SECS: i64 = 60;

/// One client's way into the key-value store, on one member.
#[derive(Clone)]
pub struct Caller {
    member: Arc<Member>,
    source: CallerSource,
}

impl Caller {
    /// The client with credentials `source`, who must be known now (an invalid token is refused here).
    pub fn authenticated(member: Arc<Member>, source: CallerSource) -> Result<Caller, EtcdError> {
        member.caller(&source)?;
        Ok(Caller { member, source })
    }

    /// The client with credentials `source`, judged only by the calls it makes.
    pub fn unchecked(member: Arc<Member>, source: CallerSource) -> Caller {
        Caller { member, source }
    }

    /// The member the calls go to.
    pub fn member(&self) -> &Arc<Member> {
        &self.member
    }

    fn who(&self) -> Result<RequestAuth, EtcdError> {
        self.member.caller(&self.source)
    }

    /// The lease a lock or campaign holds its key with: the one named, or, when the request names none (0), a
    /// new lease of [`SESSION_TTL_SECS`] granted as the caller (etcd's `NewSession`, which the server's lock
    /// and election services call with the request's lease). Nobody keeps that lease alive.
    pub async fn session_lease(&self, named: LeaseId) -> Result<LeaseId, EtcdError> {
        if named.0 != 0 {
            return Ok(named);
        }
        let req = LeaseGrantRequest { ttl: SESSION_TTL_SECS, id: 0 };
        let granted = crate::lease::grant(&self.member, req, Some(self.who()?)).await?;
        Ok(LeaseId(granted.id))
    }

    /// A txn, with the checks the KV service makes before proposing one.
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse, EtcdError> {
        self.member.check_size(&req)?;
        meridian_kv::check_txn_request(&req)?;
        match self.propose(Cmd::Txn(req)).await? {
            CommandResponse::Txn(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(resp)
            }
            _ => Err(EtcdError::Internal("unexpected apply result for a txn".into())),
        }
    }

    /// Deletes one key.
    pub async fn delete(&self, key: Vec<u8>) -> Result<DeleteRangeResponse, EtcdError> {
        if key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        let req = DeleteRangeRequest { key, ..Default::default() };
        self.member.check_size(&req)?;
        match self.propose(Cmd::DeleteRange(req)).await? {
            CommandResponse::DeleteRange(mut resp) => {
                self.stamp(&mut resp.header);
                Ok(resp)
            }
            _ => Err(EtcdError::Internal("unexpected apply result for a delete".into())),
        }
    }

    /// A linearizable range: every write acknowledged before the call is seen.
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, EtcdError> {
        if req.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        self.member.read_barrier().await?;
        // Judged after the barrier, as the KV service judges a linearizable read.
        let who = self.who()?;
        let mut resp = {
            let kv = self.member.kv().read();
            kv.auth().check_range(&who, &req.key, &req.range_end, PermKind::Read)?;
            kv.range(&req).map_err(|e| match e {
                meridian_kv::Error::Etcd(e) => e,
                other => EtcdError::Internal(other.to_string()),
            })?
        };
        self.stamp(&mut resp.header);
        Ok(resp)
    }

    async fn propose(&self, cmd: Cmd) -> Result<CommandResponse, EtcdError> {
        // Refused here as well as at apply, so a write under /meridian/ never takes a log entry.
        meridian_kv::check_client_command(&cmd)?;
        self.member.propose(RaftCommand { auth: Some(self.who()?), cmd: Some(cmd), ..Default::default() }).await
    }

    /// This member's header fields, at the revision the answer was produced at.
    fn stamp(&self, header: &mut Option<ResponseHeader>) {
        let rev = header.as_ref().map_or(0, |h| h.revision);
        *header = Some(self.member.header(rev));
    }
}
