//! Simulated clients: each runs in its own simulated host in one datacenter, talks the etcd v3
//! gRPC API to the members (its own datacenter first, failing over to others), and records every
//! operation it issues — put, linearizable get (at its usual member, or at any member including the
//! joiner), delete, compare-and-set, lease grant / keep-alive / revoke with lease-bound keys, and
//! serializable gets at any member including the joiner while it is a learner — plus one watch stream from revision 1 that it resumes after every break. Now and then
//! a client also compacts the history up to a little behind the current revision; that changes no
//! key, so it is not recorded, but a watch that falls behind it must be cancelled with the compact
//! revision, which the watch checker verifies.
//!
//! Outcomes are classified conservatively: a write whose reply never arrived, or that failed in a
//! way that leaves its fate open (unavailable, timeout, leader lost), is recorded as unknown; only a
//! definite rejection, or any failed read, is recorded as failed (no effect).

use std::time::Duration;

use crate::auth_channel::SimChannel as Channel;
use futures::StreamExt;
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::lease_client::LeaseClient;
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::watch_client::WatchClient;
use meridian_proto::etcdserverpb::watch_request::RequestUnion;
use meridian_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest,
    PutRequest, RangeRequest, RequestOp, TxnRequest, WatchCreateRequest, WatchRequest,
};

use crate::history::{Call, EventKind, Outcome, WatchEventRecord, WatchLog, WatchResponseRecord};
use crate::recorder::{Recorder, now_ns};
use crate::rng::SimRng;
use crate::sim_net::client_channels;

/// Prefix of the keys checked for linearizability (and watched).
pub const REGISTER_PREFIX: &str = "k";
/// Prefix of lease-bound keys.
pub const LEASE_PREFIX: &str = "lease/";
/// TTL of the leases clients grant.
pub const LEASE_TTL_SECS: i64 = 3;
/// How far behind the current revision a client compacts.
const COMPACT_LAG: i64 = 50;
/// How long a client waits for any one reply before calling the outcome unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// What one client does.
#[derive(Clone, Debug)]
pub struct ClientPlan {
    /// Client number (unique in the run).
    pub id: u32,
    /// Client URLs of the members, own datacenter first.
    pub endpoints: Vec<String>,
    /// Client URLs of every member a serializable read may ask: the founders and the joiner.
    pub local_readers: Vec<String>,
    /// Seed of this client's choices.
    pub seed: u64,
    /// Stop issuing operations at this simulated time (ns).
    pub until_ns: u64,
    /// Number of register keys.
    pub keys: u64,
    /// Whether this client also keeps a watch stream.
    pub watch: bool,
}

struct Conn {
    endpoints: Vec<Channel>,
    current: usize,
}

impl Conn {
    fn new(urls: &[String]) -> Self {
        Conn { endpoints: client_channels(urls, OP_TIMEOUT), current: 0 }
    }

    fn channel(&self) -> Channel {
        self.endpoints[self.current].clone()
    }

    /// Moves to the next member after a failure that suggests this one cannot serve.
    fn fail_over(&mut self) {
        self.current = (self.current + 1) % self.endpoints.len();
    }
}

/// Whether a failed write may still have taken effect.
fn write_fate(status: &tonic::Status) -> Outcome {
    use tonic::Code;
    match status.code() {
        // ResourceExhausted is NOSPACE: refused before the proposal, or rejected by the state machine.
        Code::InvalidArgument
        | Code::NotFound
        | Code::OutOfRange
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted => Outcome::Failed { reason: status.message().to_owned() },
        _ => Outcome::Unknown,
    }
}

fn failed(status: &tonic::Status) -> Outcome {
    Outcome::Failed { reason: format!("{:?}: {}", status.code(), status.message()) }
}

fn header_rev(h: &Option<meridian_proto::etcdserverpb::ResponseHeader>) -> i64 {
    h.as_ref().map_or(0, |h| h.revision)
}

/// Runs one client until its plan's end time.
pub async fn run_client(plan: ClientPlan, rec: Recorder) -> turmoil::Result {
    let mut rng = SimRng::new(plan.seed);
    if plan.watch {
        let urls = plan.endpoints.clone();
        let (rec, id, until) = (rec.clone(), plan.id, plan.until_ns);
        let (verdict_urls, verdict_rec) = (urls.clone(), rec.clone());
        tokio::spawn(async move { watch_loop(id, urls, rec, until, WatchTarget::Registers).await });
        tokio::spawn(async move { watch_loop(id, verdict_urls, verdict_rec, until, WatchTarget::Verdicts).await });
    }
    let mut conn = Conn::new(&plan.endpoints);
    let local_readers = client_channels(&plan.local_readers, OP_TIMEOUT);
    let mut seq = 0u64;
    let mut lease: Option<i64> = None;
    let mut lease_keys: Vec<Vec<u8>> = Vec::new();
    let mut last_seen: Vec<Option<Vec<u8>>> = vec![None; plan.keys as usize];
    while now_ns() < plan.until_ns {
        tokio::time::sleep(Duration::from_millis(rng.between(1, 40))).await;
        seq += 1;
        let k = rng.below(plan.keys);
        let key = format!("{REGISTER_PREFIX}{k}").into_bytes();
        let value = format!("c{}-{seq}", plan.id).into_bytes();
        let roll = rng.below(100);
        let ok = match roll {
            0..=29 => put(conn.channel(), &rec, plan.id, key, value, None).await,
            30..=43 => {
                let (ok, seen) = get(conn.channel(), &rec, plan.id, key).await;
                if let Some(seen) = seen {
                    last_seen[k as usize] = seen;
                }
                ok
            }
            44..=51 => {
                // A linearizable get at any member (a restarted one, a learner): each must answer with
                // the latest state, whoever it asks for the read index. Like a serializable get, its
                // failure says nothing about the client's usual member.
                let m = rng.below(local_readers.len() as u64) as usize;
                let (_, seen) = get(local_readers[m].clone(), &rec, plan.id, key).await;
                if let Some(seen) = seen {
                    last_seen[k as usize] = seen;
                }
                true
            }
            52..=59 => {
                let m = rng.below(local_readers.len() as u64) as usize;
                local_get(local_readers[m].clone(), &plan.local_readers[m], &rec, plan.id, key).await
            }
            60..=67 => delete(&mut conn, &rec, plan.id, key).await,
            68..=84 => cas(&mut conn, &rec, plan.id, key, last_seen[k as usize].clone(), value).await,
            85 => compact_behind(&mut conn).await,
            _ => lease_step(&mut conn, &rec, plan.id, &mut rng, &mut lease, &mut lease_keys, seq).await,
        };
        if !ok {
            conn.fail_over();
        }
    }
    Ok(())
}

/// A put at the member behind `channel`; whether it succeeded.
pub(crate) async fn put(
    channel: Channel,
    rec: &Recorder,
    client: u32,
    key: Vec<u8>,
    value: Vec<u8>,
    lease: Option<i64>,
) -> bool {
    let op = rec.invoke(client, Call::Put { key: key.clone(), value: value.clone(), lease });
    let req = PutRequest { key, value, lease: lease.unwrap_or(0), ..Default::default() };
    match KvClient::new(channel).put(req).await {
        Ok(r) => {
            rec.complete(op, Outcome::Put { revision: header_rev(&r.into_inner().header) });
            true
        }
        Err(s) => {
            rec.complete(op, write_fate(&s));
            false
        }
    }
}

/// A serializable get at the member behind `channel` (its URL is `member`). A failure says nothing about the
/// client's usual member, so it never causes a fail-over.
pub(crate) async fn local_get(channel: Channel, member: &str, rec: &Recorder, client: u32, key: Vec<u8>) -> bool {
    let op = rec.invoke(client, Call::LocalGet { key: key.clone(), member: member.to_owned() });
    match KvClient::new(channel).range(RangeRequest { key, serializable: true, ..Default::default() }).await {
        Ok(r) => {
            let r = r.into_inner();
            let kv = r.kvs.into_iter().next();
            let value = kv.as_ref().map(|kv| kv.value.clone());
            let mod_revision = kv.as_ref().map_or(0, |kv| kv.mod_revision);
            rec.complete(op, Outcome::Get { value, mod_revision, revision: header_rev(&r.header) });
        }
        Err(s) => rec.complete(op, failed(&s)),
    }
    true
}

/// A linearizable get at the member behind `channel`; also returns what it saw (`Some(None)` = absent) when
/// it succeeded.
pub(crate) async fn get(
    channel: Channel,
    rec: &Recorder,
    client: u32,
    key: Vec<u8>,
) -> (bool, Option<Option<Vec<u8>>>) {
    let op = rec.invoke(client, Call::Get { key: key.clone() });
    match KvClient::new(channel).range(RangeRequest { key, ..Default::default() }).await {
        Ok(r) => {
            let r = r.into_inner();
            let kv = r.kvs.into_iter().next();
            let value = kv.as_ref().map(|kv| kv.value.clone());
            let mod_revision = kv.as_ref().map_or(0, |kv| kv.mod_revision);
            rec.complete(op, Outcome::Get { value: value.clone(), mod_revision, revision: header_rev(&r.header) });
            (true, Some(value))
        }
        Err(s) => {
            rec.complete(op, failed(&s));
            (false, None)
        }
    }
}

async fn delete(conn: &mut Conn, rec: &Recorder, client: u32, key: Vec<u8>) -> bool {
    let op = rec.invoke(client, Call::Delete { key: key.clone() });
    match KvClient::new(conn.channel()).delete_range(DeleteRangeRequest { key, ..Default::default() }).await {
        Ok(r) => {
            let r = r.into_inner();
            rec.complete(op, Outcome::Delete { deleted: r.deleted, revision: header_rev(&r.header) });
            true
        }
        Err(s) => {
            rec.complete(op, write_fate(&s));
            false
        }
    }
}

async fn cas(
    conn: &mut Conn,
    rec: &Recorder,
    client: u32,
    key: Vec<u8>,
    expected: Option<Vec<u8>>,
    value: Vec<u8>,
) -> bool {
    let op = rec.invoke(client, Call::Cas { key: key.clone(), expected: expected.clone(), value: value.clone() });
    let compare = match &expected {
        Some(v) => Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::Value(v.clone())),
            ..Default::default()
        },
        None => Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::CreateRevision(0)),
            ..Default::default()
        },
    };
    let txn = TxnRequest {
        compare: vec![compare],
        success: vec![RequestOp {
            request: Some(Request::RequestPut(PutRequest { key, value, ..Default::default() })),
        }],
        failure: vec![],
    };
    match KvClient::new(conn.channel()).txn(txn).await {
        Ok(r) => {
            let r = r.into_inner();
            rec.complete(op, Outcome::Cas { succeeded: r.succeeded, revision: header_rev(&r.header) });
            true
        }
        Err(s) => {
            rec.complete(op, write_fate(&s));
            false
        }
    }
}

/// Compacts the history up to `COMPACT_LAG` revisions behind the current one. A compaction that loses a
/// race with another one ("already compacted") still counts as served.
async fn compact_behind(conn: &mut Conn) -> bool {
    let mut kv = KvClient::new(conn.channel());
    let probe = RangeRequest { key: REGISTER_PREFIX.into(), count_only: true, ..Default::default() };
    let current = match kv.range(probe).await {
        Ok(r) => header_rev(&r.into_inner().header),
        Err(_) => return false,
    };
    let revision = current - COMPACT_LAG;
    if revision < 2 {
        return true;
    }
    match kv.compact(CompactionRequest { revision, physical: false }).await {
        Ok(_) => true,
        Err(s) => s.code() == tonic::Code::OutOfRange,
    }
}

/// One step of the lease life cycle: grant, attach keys, keep alive, read the keys back, revoke.
async fn lease_step(
    conn: &mut Conn,
    rec: &Recorder,
    client: u32,
    rng: &mut SimRng,
    lease: &mut Option<i64>,
    keys: &mut Vec<Vec<u8>>,
    seq: u64,
) -> bool {
    let Some(id) = *lease else {
        let op = rec.invoke(client, Call::LeaseGrant { ttl_secs: LEASE_TTL_SECS });
        let req = LeaseGrantRequest { ttl: LEASE_TTL_SECS, id: 0 };
        return match LeaseClient::new(conn.channel()).lease_grant(req).await {
            Ok(r) => {
                let r = r.into_inner();
                rec.complete(op, Outcome::LeaseGrant { lease: r.id, ttl_secs: r.ttl });
                *lease = Some(r.id);
                keys.clear();
                true
            }
            Err(s) => {
                rec.complete(op, write_fate(&s));
                false
            }
        };
    };
    match rng.below(10) {
        0..=2 => {
            let key = format!("{LEASE_PREFIX}{client}/{seq}").into_bytes();
            keys.push(key.clone());
            let ok = put(conn.channel(), rec, client, key, format!("c{client}-{seq}").into_bytes(), Some(id)).await;
            if !ok {
                // Most likely the lease expired: start over with a new one.
                *lease = None;
            }
            ok
        }
        3..=5 => keep_alive(conn, rec, client, id, lease).await,
        6..=8 => match keys.get(rng.below(keys.len().max(1) as u64) as usize).cloned() {
            Some(key) => get(conn.channel(), rec, client, key).await.0,
            None => keep_alive(conn, rec, client, id, lease).await,
        },
        _ => {
            let op = rec.invoke(client, Call::LeaseRevoke { lease: id });
            *lease = None;
            match LeaseClient::new(conn.channel()).lease_revoke(LeaseRevokeRequest { id }).await {
                Ok(_) => {
                    rec.complete(op, Outcome::LeaseRevoke { found: true });
                    true
                }
                Err(s) if s.code() == tonic::Code::NotFound => {
                    rec.complete(op, Outcome::LeaseRevoke { found: false });
                    true
                }
                Err(s) => {
                    rec.complete(op, write_fate(&s));
                    false
                }
            }
        }
    }
}

/// One keep-alive round trip; forgets the lease when the server no longer has it.
async fn keep_alive(conn: &mut Conn, rec: &Recorder, client: u32, id: i64, held: &mut Option<i64>) -> bool {
    let op = rec.invoke(client, Call::LeaseKeepAlive { lease: id });
    let mut lease = LeaseClient::new(conn.channel());
    let request = futures::stream::iter([LeaseKeepAliveRequest { id }]);
    let reply = async {
        let mut stream = lease.lease_keep_alive(request).await?.into_inner();
        stream.message().await?.ok_or_else(|| tonic::Status::unavailable("keep-alive stream ended"))
    };
    match tokio::time::timeout(OP_TIMEOUT, reply).await {
        Ok(Ok(r)) => {
            rec.complete(op, Outcome::LeaseKeepAlive { ttl_secs: r.ttl });
            if r.ttl <= 0 {
                *held = None;
            }
            true
        }
        Ok(Err(s)) => {
            rec.complete(op, write_fate(&s));
            false
        }
        Err(_) => {
            rec.complete(op, Outcome::Unknown);
            false
        }
    }
}

/// What a watch stream watches, and where its log goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WatchTarget {
    /// Every register key; checked against the writes.
    Registers,
    /// The datacenter verdicts the leader writes under `/meridian/dc/`; checked by the verdict checker.
    Verdicts,
    /// The waiters' keys of the lock workload's lock; checked by the lock checker.
    Locks,
}

impl WatchTarget {
    fn prefix(self) -> &'static str {
        match self {
            WatchTarget::Registers => REGISTER_PREFIX,
            WatchTarget::Verdicts => meridian_types::reserved::DC_PREFIX,
            WatchTarget::Locks => crate::lock_workload::LOCK_PREFIX,
        }
    }

    fn with_log(self, rec: &Recorder, index: usize, f: impl FnOnce(&mut WatchLog)) {
        match self {
            WatchTarget::Registers => rec.with_watch(index, f),
            WatchTarget::Verdicts => rec.with_verdict_watch(index, f),
            WatchTarget::Locks => rec.with_lock_watch(index, f),
        }
    }
}

/// Watches every key of `target` from revision 1 until `until`, re-creating the watch after each
/// break from the revision after the last one delivered.
pub(crate) async fn watch_loop(client: u32, urls: Vec<String>, rec: Recorder, until: u64, target: WatchTarget) {
    let key = target.prefix().as_bytes().to_vec();
    let mut range_end = key.clone();
    if let Some(last) = range_end.last_mut() {
        *last += 1;
    }
    let log = WatchLog {
        client,
        key: key.clone(),
        range_end: range_end.clone(),
        start_revision: 1,
        responses: Vec::new(),
        canceled: None,
    };
    let index = match target {
        WatchTarget::Registers => rec.add_watch(log),
        WatchTarget::Verdicts => rec.add_verdict_watch(log),
        WatchTarget::Locks => rec.add_lock_watch(log),
    };
    let mut conn = Conn::new(&urls);
    let mut next_rev = 1i64;
    let mut resumed: Option<i64> = None;
    while now_ns() < until {
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: key.clone(),
                range_end: range_end.clone(),
                start_revision: next_rev,
                ..Default::default()
            })),
        };
        // `tx` lives to the end of this attempt: dropping it would half-close the stream.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.send(create).await;
        let outbound = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        let mut stream = match WatchClient::new(conn.channel()).watch(outbound).await {
            Ok(s) => s.into_inner(),
            Err(_) => {
                conn.fail_over();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        loop {
            let remaining = Duration::from_nanos(until.saturating_sub(now_ns()));
            let msg = match tokio::time::timeout(remaining, stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(msg))) => msg,
                Ok(_) => break,
            };
            // A member that restarted forgot the token: log in again and resume, as etcd's clients do.
            if msg.canceled && crate::auth_channel::refuses_token(&msg.cancel_reason) {
                conn.channel().forget_token();
                break;
            }
            // The verdicts and the locks are judged from what was seen: after a compaction, go on from the oldest
            // revision left (the next response's `resumed_from` shows the gap).
            if msg.canceled && target != WatchTarget::Registers && msg.compact_revision > 0 {
                next_rev = msg.compact_revision;
                break;
            }
            if msg.canceled {
                let (at, compact_revision, reason) = (now_ns(), msg.compact_revision, msg.cancel_reason.clone());
                target.with_log(&rec, index, |w| {
                    w.canceled = Some(crate::history::WatchCancel { at, compact_revision, reason })
                });
                return;
            }
            // Creation confirmations and progress notifications carry no events.
            if msg.events.is_empty() {
                continue;
            }
            let events: Vec<WatchEventRecord> = msg
                .events
                .iter()
                .filter_map(|e| {
                    let kv = e.kv.as_ref()?;
                    Some(WatchEventRecord {
                        kind: if e.r#type == 1 { EventKind::Delete } else { EventKind::Put },
                        key: kv.key.clone(),
                        value: kv.value.clone(),
                        mod_revision: kv.mod_revision,
                    })
                })
                .collect();
            if let Some(last) = events.last() {
                next_rev = last.mod_revision + 1;
            }
            let record = WatchResponseRecord {
                at: now_ns(),
                header_revision: header_rev(&msg.header),
                events,
                resumed_from: resumed.take(),
            };
            target.with_log(&rec, index, |w| w.responses.push(record));
        }
        // The stream broke: resume from the next revision, on another member.
        resumed = Some(next_rev);
        conn.fail_over();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
