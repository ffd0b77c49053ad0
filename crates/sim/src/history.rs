//! The recorded history of one simulation run: every client operation with its invocation and completion
//! times, every watch stream as the client saw it, and the final leader and lease observations.
//!
//! Times are simulated nanoseconds since the start of the run. A history has one canonical byte encoding
//! (JSON with fields in declaration order and no maps, so nothing depends on hash order) and a 64-bit
//! fingerprint of those bytes, so a replay of the same seed can be shown to be byte-identical.

use serde::{Deserialize, Serialize};

use crate::auth_ops::AuthRecord;
use crate::discovery_record::DiscoveryRecord;
use crate::fnv::fnv1a64;

/// Everything a simulation run observed from the outside.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Client operations, in any order; `Operation::id` identifies each one.
    pub ops: Vec<Operation>,
    /// One log per watch a client opened.
    pub watches: Vec<WatchLog>,
    /// Which datacenter led at the end of the run, when the runner looked.
    pub final_leader: Option<LeaderObservation>,
    /// The leases left once nobody kept any alive, when the runner looked. Left out of the encoding when
    /// absent, so histories recorded before it existed keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_leases: Option<LeaseObservation>,
    /// How often each kind of fault was scheduled and how often it took effect (left out when empty, like the
    /// fields below, so older histories keep their bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_effects: Vec<FaultEffect>,
    /// Every fault that took the leader away from the majority (crashed it, or cut off its datacenter), and when
    /// a successor was established.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failovers: Vec<FailoverObservation>,
    /// The planned leadership move made under load once the faults were over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_transfer: Option<PlannedTransfer>,
    /// Who each client spoke as, the limited user's operations and the final scan for its leaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthRecord>,
    /// The watch of the datacenter verdicts (`/meridian/dc/`), from revision 1, resumed after every break.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdict_watches: Vec<WatchLog>,
    /// What the verdicts are judged against: the voters, the windows and every isolation of a datacenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_setup: Option<VerdictSetup>,
    /// The verdicts in the leader's store at the end of the run, once every datacenter had healed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_verdicts: Option<FinalVerdicts>,
    /// Every failover-group hook call, from any member, in the order they were made (each acknowledged at once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_calls: Vec<HookCallRecord>,
    /// The lock workload: every Lock, fenced write and release, and the watches of the lock's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locks: Option<LockRecord>,
    /// The failover group as the leader's store showed it during the fault phase, sampled (each change once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_timeline: Option<GroupTimeline>,
    /// Every restart of a member the faults made, when it came back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<Restart>,
    /// The discovery workload: registry writes, ranked answers, the committed registry and the members' catalogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryRecord>,
}

/// A member restarted by a fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// The client URL of the member (as serializable reads name it).
    pub member: String,
    /// When it was started again, in simulated nanoseconds.
    pub at: u64,
}

/// The lock clients' history (`crate::lock_workload`): one lock name, shared by every lock client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// The lock's name; its waiters' keys are `<name>/<lease id in hex>`.
    pub name: Vec<u8>,
    /// Every lock operation, in invocation order.
    pub ops: Vec<LockOp>,
    /// Watches of the waiters' keys (`<name>/`) from revision 1, each resumed after a break from the revision
    /// after the last one delivered, or from the compaction revision (`resumed_from` then shows the gap).
    pub watches: Vec<WatchLog>,
}

/// One lock operation of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOp {
    /// Unique among the lock operations.
    pub id: u64,
    /// The client.
    pub client: u32,
    /// When it was sent.
    pub invoke: u64,
    /// When it was answered (`None`: unknown outcome).
    pub complete: Option<u64>,
    /// What was asked.
    pub call: LockCall,
    /// What was answered.
    pub outcome: LockOutcome,
}

/// A lock client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockCall {
    /// `Lock(name, lease)` through the member the client is connected to.
    Lock {
        /// The lease the waiter's key is attached to.
        lease: i64,
    },
    /// The protected write: a txn that puts `value` only if the lock key's create revision is the token.
    FencedWrite {
        /// The lock key.
        key: Vec<u8>,
        /// The fencing token (the lock key's create revision as read after the grant).
        token: i64,
        /// The value written (unique).
        value: Vec<u8>,
    },
    /// `Unlock(key)`.
    Unlock {
        /// The lock key.
        key: Vec<u8>,
    },
    /// The holder revokes its lease instead of unlocking.
    Revoke {
        /// The lease.
        lease: i64,
    },
    /// The holder stops keeping its lease alive and walks away (its key goes when the lease expires); with
    /// `stalled`, it first pauses past the lease's TTL and then tries a fenced write as if it still held the lock.
    Lapse {
        /// The lease.
        lease: i64,
        /// Whether the holder writes again after the pause.
        stalled: bool,
    },
}

/// What a lock client learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockOutcome {
    /// No answer: the request may or may not have taken effect.
    Unknown,
    /// A definite refusal.
    Failed {
        /// Why.
        reason: String,
    },
    /// The lock was granted.
    Granted {
        /// The key the service answered with.
        key: Vec<u8>,
        /// The response header's revision: the store had no key ahead of this one's at that revision.
        revision: i64,
        /// The key's create revision read right after the grant (`None`: the key no longer existed).
        token: Option<i64>,
    },
    /// The fenced write's txn answered.
    Written {
        /// Whether the compare held and the value was written.
        succeeded: bool,
        /// The response header revision.
        revision: i64,
    },
    /// Unlock or revoke answered.
    Released {
        /// The response header revision.
        revision: i64,
    },
    /// The lease was left to lapse.
    Lapsed,
}

/// Samples of the failover group `svc` and the verdicts, as the leader's store showed them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTimeline {
    /// The group.
    pub group: String,
    /// Its datacenters, most preferred first.
    pub datacenters: Vec<String>,
    /// How long a stable leader may take to move the group off a `down` datacenter, in milliseconds.
    pub switch_bound_ms: u64,
    /// Every change of what was sampled, in time order.
    pub samples: Vec<GroupSample>,
    /// When sampling stopped.
    pub until: u64,
}

/// What the leader's store showed at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSample {
    /// When.
    pub at: u64,
    /// The leader a majority follows and its term (`None`: no leader).
    pub leader: Option<(String, u64)>,
    /// The datacenters whose verdict was `down`.
    pub down: Vec<String>,
    /// The group's active datacenter (`None`: no active record).
    pub active: Option<String>,
    /// Whether a fault other than a datacenter's isolation was in force (such samples are not judged).
    pub other_fault: bool,
}

/// One call of a failover group's hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookCallRecord {
    /// The group.
    pub group: String,
    /// The datacenter it announced as active.
    pub dc: String,
    /// Its fencing token (the revision of the active record).
    pub token: i64,
    /// The term of the leader that decided the switch.
    pub term: u64,
}

/// What datacenter verdicts are judged against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictSetup {
    /// The founding voters and their datacenters (a `down` verdict needs a majority of those outside the
    /// datacenter; a joiner promoted to voter only raises the bar, so the founders give a floor).
    pub voters: Vec<(String, String)>,
    /// Milliseconds of silence a majority outside a datacenter must confirm before it is `down`.
    pub detection_window_ms: u64,
    /// The Unix time, in milliseconds, of the simulation's start (verdicts carry Unix times).
    pub epoch_unix_ms: u64,
    /// Every time a whole datacenter was cut off from the rest.
    pub isolations: Vec<DcIsolation>,
    /// When a majority first followed a leader of each new term during the fault phase: (time, term).
    pub leader_terms: Vec<(u64, u64)>,
}

/// One datacenter cut off from the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcIsolation {
    /// The datacenter.
    pub dc: String,
    /// When it was cut off.
    pub from: u64,
    /// When it was healed.
    pub until: u64,
    /// Whether the leader was in it when it was cut off (a new leader must then be elected first).
    pub leader_inside: bool,
    /// Its verdict in the leader's store just before the heal, if there was a leader and a verdict.
    pub state_at_heal: Option<String>,
}

/// The verdicts at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalVerdicts {
    /// When the runner looked.
    pub at: u64,
    /// Each datacenter's state, by datacenter.
    pub states: Vec<(String, String)>,
}

/// One client request and what the client learned about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Unique across the history.
    pub id: u64,
    /// The client that issued it.
    pub client: u32,
    /// When the client sent the request.
    pub invoke: u64,
    /// When the client got the answer. `None` means the outcome is unknown (timeout, lost connection): the
    /// operation may or may not have taken effect, and its completion counts as +infinity.
    pub complete: Option<u64>,
    /// What was asked.
    pub call: Call,
    /// What was answered.
    pub outcome: Outcome,
}

/// A client request. Each one touches a single key or a single lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// Put `value` at `key`, optionally attached to a lease. Values are unique per put across the history.
    Put {
        /// The key written.
        key: Vec<u8>,
        /// The value written; no other put in the history writes the same value.
        value: Vec<u8>,
        /// The lease the key is attached to, if any (`Some(0)` also means none, as on the wire).
        lease: Option<i64>,
    },
    /// A linearizable read of one key.
    Get {
        /// The key read.
        key: Vec<u8>,
    },
    /// A serializable read of one key, answered from `member`'s own store (a follower or learner may be behind).
    /// Not linearizable: it must show the store exactly as of its header revision.
    LocalGet {
        /// The key read.
        key: Vec<u8>,
        /// The client URL of the member asked.
        member: String,
    },
    /// Delete one key.
    Delete {
        /// The key deleted.
        key: Vec<u8>,
    },
    /// A transaction: if the value at `key` equals `expected` (`None` = key absent), put `value`.
    Cas {
        /// The key compared and written.
        key: Vec<u8>,
        /// The value the key must hold, or `None` if it must be absent.
        expected: Option<Vec<u8>>,
        /// The value written on success; unique across the history like a put's value.
        value: Vec<u8>,
    },
    /// Grant a new lease.
    LeaseGrant {
        /// The requested time to live.
        ttl_secs: i64,
    },
    /// Refresh a lease once.
    LeaseKeepAlive {
        /// The lease refreshed.
        lease: i64,
    },
    /// Revoke a lease, deleting its keys.
    LeaseRevoke {
        /// The lease revoked.
        lease: i64,
    },
}

/// What the client learned about an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Timeout or lost connection: the operation may or may not have taken effect.
    Unknown,
    /// The operation definitely did not take effect (for example it was rejected before being proposed).
    Failed {
        /// Why, for humans.
        reason: String,
    },
    /// A put succeeded.
    Put {
        /// The revision of the put (the response header revision).
        revision: i64,
    },
    /// A read returned.
    Get {
        /// The value read, `None` if the key was absent.
        value: Option<Vec<u8>>,
        /// The key's mod revision, 0 if absent.
        mod_revision: i64,
        /// The response header revision.
        revision: i64,
    },
    /// A delete returned.
    Delete {
        /// How many keys were deleted (0 or 1).
        deleted: i64,
        /// The response header revision; a delete of nothing does not create a revision.
        revision: i64,
    },
    /// A compare-and-swap returned.
    Cas {
        /// Whether the comparison held and the value was written.
        succeeded: bool,
        /// The response header revision.
        revision: i64,
    },
    /// A lease was granted.
    LeaseGrant {
        /// The id of the new lease.
        lease: i64,
        /// The granted time to live.
        ttl_secs: i64,
    },
    /// A keep-alive returned.
    LeaseKeepAlive {
        /// The remaining time to live; 0 means the lease was not found.
        ttl_secs: i64,
    },
    /// A revoke returned.
    LeaseRevoke {
        /// Whether the lease existed.
        found: bool,
    },
}

/// One watch as its client saw it, including re-creations after a lost stream. The checks assume an
/// unfiltered watch (no NOPUT/NODELETE filters), with fragmented responses reassembled into one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLog {
    /// The client that watched.
    pub client: u32,
    /// The watched key, or the start of the watched range.
    pub key: Vec<u8>,
    /// etcd semantics: empty = just `key`, `"\0"` = every key >= `key`, otherwise [key, range_end).
    pub range_end: Vec<u8>,
    /// The first revision asked for; 0 means "from now".
    pub start_revision: i64,
    /// Every response received, in order. Fragmented responses are assumed to be reassembled.
    pub responses: Vec<WatchResponseRecord>,
    /// How the watch ended, if the server cancelled it.
    pub canceled: Option<WatchCancel>,
}

/// One watch response as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponseRecord {
    /// When it was received.
    pub at: u64,
    /// The response header revision.
    pub header_revision: i64,
    /// The events it carried, in order.
    pub events: Vec<WatchEventRecord>,
    /// `Some(r)`: the first response after the client re-created the watch from revision `r` because the
    /// stream was lost. `r` must be the last delivered revision + 1 (the start revision if none was).
    pub resumed_from: Option<i64>,
}

/// One watch event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEventRecord {
    /// Put or delete.
    pub kind: EventKind,
    /// The key changed.
    pub key: Vec<u8>,
    /// The new value (empty for a delete).
    pub value: Vec<u8>,
    /// The revision of the change.
    pub mod_revision: i64,
}

/// The kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted.
    Delete,
}

/// A server-side cancellation of a watch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCancel {
    /// When it was received.
    pub at: u64,
    /// Non-zero when the watch was cancelled because the revisions it still needed were compacted.
    pub compact_revision: i64,
    /// The server's reason.
    pub reason: String,
}

/// Which datacenter led at one point in time, and which one should have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderObservation {
    /// When the observation was made.
    pub at: u64,
    /// The datacenter of the leader, `None` if there was no leader.
    pub leader_dc: Option<String>,
    /// The most preferred healthy datacenter.
    pub expected_dc: String,
}

/// The leases the leader still held at the end of the lease phase, after the clients had stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseObservation {
    /// When the observation was made.
    pub at: u64,
    /// Leases still granted then (empty: every lease had expired).
    pub outstanding: Vec<i64>,
}

/// One kind of fault in one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEffect {
    /// The kind, by name.
    pub kind: String,
    /// How many were scheduled (windows begun, transfers and membership steps due).
    pub scheduled: u64,
    /// How many of those changed what they were meant to change (a crash of the leader crashed a leader, a
    /// transfer moved leadership, a membership step was committed).
    pub took_effect: u64,
}

/// A leader lost to a fault, and its successor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverObservation {
    /// The fault's kind, by name.
    pub kind: String,
    /// When the majority lost the leader (for a crash of the majority itself: when it restarted).
    pub lost_at: u64,
    /// When a majority of the voters first followed a successor of a later term; `None` if none had by
    /// `observed_until`.
    pub elected_at: Option<u64>,
    /// How long the design allows.
    pub bound: u64,
    /// When the runner stopped looking (the fault was healed, or a successor was found).
    pub observed_until: u64,
}

/// The planned leadership move after the faults: MoveLeader under a write load, then the placement driver's
/// failback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTransfer {
    /// When MoveLeader was asked.
    pub asked_at: u64,
    /// Whether MoveLeader answered that the target leads.
    pub moved: bool,
    /// The clients that wrote during the move; every one of their operations must succeed.
    pub writers: Vec<u32>,
}

/// A history that could not be decoded from its canonical bytes.
#[derive(Debug, thiserror::Error)]
#[error("not a canonical history encoding: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

impl History {
    /// The canonical encoding: compact JSON, fields in declaration order. Equal histories give equal bytes.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        // Only structs, enums, vectors, strings and integers: serialization cannot fail.
        serde_json::to_vec(self).expect("a history always serializes to JSON")
    }

    /// Decodes bytes produced by [`History::to_canonical_bytes`].
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<History, DecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// A 64-bit FNV-1a hash of the canonical bytes: equal for byte-identical replays.
    pub fn fingerprint(&self) -> u64 {
        fnv1a64(&self.to_canonical_bytes())
    }
}

impl Operation {
    /// When the operation certainly stopped being able to take effect: `None` (+infinity) when the completion
    /// time or the outcome is unknown, since a request that timed out may still be applied later.
    pub fn known_completion(&self) -> Option<u64> {
        if matches!(self.outcome, Outcome::Unknown) { None } else { self.complete }
    }

    /// Whether this operation certainly finished before `other` was sent.
    pub fn precedes(&self, other: &Operation) -> bool {
        self.known_completion().is_some_and(|c| c < other.invoke)
    }
}

impl Call {
    /// The key a key-value call touches; `None` for lease calls.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Call::Put { key, .. }
            | Call::Get { key }
            | Call::LocalGet { key, .. }
            | Call::Delete { key }
            | Call::Cas { key, .. } => Some(key),
            Call::LeaseGrant { .. } | Call::LeaseKeepAlive { .. } | Call::LeaseRevoke { .. } => None,
        }
    }

    /// The value a put or compare-and-swap writes.
    pub fn written_value(&self) -> Option<&[u8]> {
        match self {
            Call::Put { value, .. } | Call::Cas { value, .. } => Some(value),
            _ => None,
        }
    }
}

impl Outcome {
    /// Whether the client got a definite answer (neither unknown nor failed).
    pub fn is_known(&self) -> bool {
        !matches!(self, Outcome::Unknown | Outcome::Failed { .. })
    }

    /// The response header revision, for outcomes that carry one.
    pub fn header_revision(&self) -> Option<i64> {
        match self {
            Outcome::Put { revision }
            | Outcome::Get { revision, .. }
            | Outcome::Delete { revision, .. }
            | Outcome::Cas { revision, .. } => Some(*revision),
            _ => None,
        }
    }
}
