//! What applying a command produces: the etcd response, the watch events and the resulting revision; and
//! `LeaseInfo`, the read-side view of one lease.

use meridian_proto::etcdserverpb::{
    AlarmResponse, CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse,
    ResponseHeader, TxnResponse,
};
use meridian_proto::mvccpb::Event;
use meridian_types::{LeaseId, Revision};

/// What one applied command produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The etcd response. Headers carry only `revision`; the server fills the rest.
    pub response: CommandResponse,
    /// Watch events of this command, in order, all at `revision` (empty for reads/failed txns/lease grant).
    /// Each Event has kv (for DELETE: key + mod_revision = delete revision) and prev_kv filled when it
    /// existed.
    pub events: Vec<Event>,
    /// The store revision after the command (unchanged when it wrote nothing).
    pub revision: Revision,
}

/// The response of one applied command, by command kind.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandResponse {
    /// Response to a put.
    Put(PutResponse),
    /// Response to a delete-range.
    DeleteRange(DeleteRangeResponse),
    /// Response to a transaction.
    Txn(TxnResponse),
    /// Response to a compaction.
    Compaction(CompactionResponse),
    /// Response to a lease grant.
    LeaseGrant(LeaseGrantResponse),
    /// Response to a lease revoke.
    LeaseRevoke(LeaseRevokeResponse),
    /// A lease checkpoint was recorded (or ignored for an unknown lease, as etcd does).
    LeaseCheckpoint,
    /// Response to an alarm ACTIVATE or DEACTIVATE: the alarm, when it changed or (activating) was active.
    Alarm(AlarmResponse),
    /// An auth store change was applied (every Auth write answers with a header only).
    Auth,
}

/// One lease as the replicated state knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease id.
    pub id: LeaseId,
    /// TTL in seconds as granted (after clamping to [`crate::MIN_LEASE_TTL`]).
    pub ttl: i64,
    /// Remaining TTL recorded by the last checkpoint, if any.
    pub remaining: Option<i64>,
    /// Attached keys, sorted.
    pub keys: Vec<Vec<u8>>,
}

/// A response header carrying only the revision.
pub(crate) fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader { revision, ..Default::default() })
}
