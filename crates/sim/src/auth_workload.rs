//! The limited user's client: it speaks as [`APP_USER`], whose role may read and write only keys under
//! [`APP_PREFIX`], and sends each operation to a member drawn at random (so most go to followers, which forward
//! writes to the leader). It tries every path with keys inside and outside its prefix: put (also with a lease),
//! delete, txn (a compare outside, an op outside in the branch not taken, an op outside in a nested txn, or all
//! inside), linearizable and serializable range, watch create, lease grant, and lease revoke / time-to-live of
//! a lease root attached a key outside the prefix to. Every operation is recorded with the spans it names, for
//! the permission check ([`crate::checker`]); values it writes carry [`APP_VALUE_MARK`].

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::lease_client::LeaseClient;
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::watch_client::WatchClient;
use meridian_proto::etcdserverpb::watch_request::RequestUnion;
use meridian_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, PutRequest,
    RangeRequest, RequestOp, TxnRequest, WatchCreateRequest, WatchRequest,
};
use tonic::{Code, Status};

use crate::auth_channel::{Credentials, SimChannel, refuses_token};
use crate::auth_ops::{
    APP_PASSWORD, APP_PREFIX, APP_PREFIX_END, APP_USER, APP_VALUE_MARK, AuthOp, AuthOutcome, AuthPath, KeyValue,
    SENTINEL_KEY, Span,
};
use crate::auth_setup::Ready;
use crate::recorder::{Recorder, now_ns};
use crate::rng::SimRng;
use crate::sim_net::{client_channels, client_channels_as};
use crate::workload::{LEASE_TTL_SECS, REGISTER_PREFIX};

/// How long the client waits for any one reply before calling the outcome unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Keys inside the prefix, and registers outside it, the client picks from.
const KEYS: u64 = 4;
/// A range crossing the end of the prefix: from inside it to past root's registers.
const CROSSING: (&[u8], &[u8]) = (APP_PREFIX, b"l");

/// What one limited-user client does.
#[derive(Clone, Debug)]
pub struct AppPlan {
    /// Client number (unique in the run).
    pub id: u32,
    /// Client URLs of the founders; each operation goes to one drawn at random.
    pub members: Vec<String>,
    /// Seed of this client's choices.
    pub seed: u64,
    /// Stop issuing operations at this simulated time (ns).
    pub until_ns: u64,
}

/// Where one operation goes and how it is recorded.
struct Target<'a> {
    rec: &'a Recorder,
    client: u32,
    member: &'a str,
    channel: SimChannel,
}

/// A lease with the keys attached to it.
struct Held {
    id: i64,
    keys: Vec<Vec<u8>>,
}

/// Runs one limited-user client from the moment authentication is on until its plan's end time.
pub async fn run(plan: AppPlan, rec: Recorder, mut ready: Ready) -> turmoil::Result {
    if !crate::auth_setup::wait(&mut ready, plan.until_ns).await {
        return Ok(());
    }
    let creds = Credentials { user: APP_USER.to_owned(), password: APP_PASSWORD.to_owned() };
    let app = client_channels_as(&plan.members, OP_TIMEOUT, &creds);
    let root = client_channels(&plan.members, OP_TIMEOUT);
    let mut rng = SimRng::new(plan.seed);
    let (mut own, mut roots): (Option<Held>, Option<Held>) = (None, None);
    let mut seq = 0u64;
    while now_ns() < plan.until_ns {
        tokio::time::sleep(Duration::from_millis(rng.between(5, 60))).await;
        seq += 1;
        let m = rng.below(app.len() as u64) as usize;
        let t = Target { rec: &rec, client: plan.id, member: &plan.members[m], channel: app[m].clone() };
        let value = [APP_VALUE_MARK, format!("{}-{seq}", plan.id).as_bytes()].concat();
        let inside = [APP_PREFIX, format!("{}", rng.below(KEYS)).as_bytes()].concat();
        let outside = match rng.below(3) {
            0 => format!("{REGISTER_PREFIX}{}", rng.below(KEYS)).into_bytes(),
            1 => format!("secret/{}", plan.id).into_bytes(),
            _ => SENTINEL_KEY.to_vec(),
        };
        match rng.below(100) {
            0..=14 => {
                put(&t, if rng.chance(0.5) { inside } else { outside }, value, None).await;
            }
            15..=24 => {
                let span = match rng.below(3) {
                    0 => Span::key(&inside),
                    1 => Span::key(&outside),
                    _ => Span::range(CROSSING.0, CROSSING.1),
                };
                delete(&t, span).await;
            }
            25..=44 => txn(&t, rng.below(4), &inside, &outside, &value).await,
            45..=64 => {
                let span = match rng.below(4) {
                    0 => Span::key(&inside),
                    1 => Span::range(APP_PREFIX, APP_PREFIX_END),
                    2 => Span::key(&outside),
                    _ => Span::range(CROSSING.0, CROSSING.1),
                };
                range(&t, span, rng.chance(0.5)).await;
            }
            65..=72 => {
                let span = match rng.below(3) {
                    0 => Span::range(APP_PREFIX, APP_PREFIX_END),
                    1 => Span::range(CROSSING.0, CROSSING.1),
                    _ => Span::key(&outside),
                };
                watch_create(&t, span).await;
            }
            73..=86 => own = own_lease(&t, own, rng.below(3), inside, outside, value).await,
            _ => {
                let helper = root[m].clone();
                roots = root_lease(&t, helper, roots, rng.chance(0.5), plan.id, seq).await;
            }
        }
    }
    Ok(())
}

/// Sends one operation, records it and returns what it answered (`None` when the answer is unknown).
async fn issue<T>(
    t: &Target<'_>,
    path: AuthPath,
    spans: Vec<Span>,
    writes: Vec<KeyValue>,
    call: impl Future<Output = Result<T, Status>>,
    returned: impl FnOnce(&T) -> Result<Vec<Vec<u8>>, Status>,
) -> Option<Result<T, Status>> {
    let op = AuthOp {
        id: 0,
        client: t.client,
        user: t.channel.user().to_owned(),
        member: t.member.to_owned(),
        path,
        spans,
        writes,
        invoke: 0,
        complete: None,
        outcome: AuthOutcome::Unknown,
    };
    let index = t.rec.invoke_auth(op);
    let answer = tokio::time::timeout(OP_TIMEOUT, call).await.ok();
    let outcome = match &answer {
        None => AuthOutcome::Unknown,
        Some(Ok(r)) => match returned(r) {
            Ok(keys) => AuthOutcome::Succeeded { returned: keys },
            Err(s) => refusal(&s),
        },
        Some(Err(s)) => refusal(s),
    };
    t.rec.complete_auth(index, outcome);
    answer
}

/// A definite refusal, or unknown when the request may still apply (unavailable, timeout, leader lost).
fn refusal(s: &Status) -> AuthOutcome {
    match s.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::OutOfRange
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::ResourceExhausted
        | Code::FailedPrecondition => AuthOutcome::Refused { code: s.code() as i32, message: s.message().to_owned() },
        _ => AuthOutcome::Unknown,
    }
}

fn nothing<T>(_: &T) -> Result<Vec<Vec<u8>>, Status> {
    Ok(Vec::new())
}

async fn put(t: &Target<'_>, key: Vec<u8>, value: Vec<u8>, lease: Option<i64>) -> bool {
    let path = if lease.is_some() { AuthPath::PutWithLease } else { AuthPath::Put };
    let writes = vec![KeyValue { key: key.clone(), value: value.clone() }];
    let req = PutRequest { key: key.clone(), value, lease: lease.unwrap_or(0), ..Default::default() };
    let mut client = KvClient::new(t.channel.clone());
    let call = client.put(req);
    matches!(issue(t, path, vec![Span::key(&key)], writes, call, nothing).await, Some(Ok(_)))
}

async fn delete(t: &Target<'_>, span: Span) {
    let req = DeleteRangeRequest { key: span.key.clone(), range_end: span.range_end.clone(), ..Default::default() };
    let mut client = KvClient::new(t.channel.clone());
    let call = client.delete_range(req);
    issue(t, AuthPath::Delete, vec![span], Vec::new(), call, nothing).await;
}

async fn range(t: &Target<'_>, span: Span, serializable: bool) {
    let path = if serializable { AuthPath::SerializableRange } else { AuthPath::LinearizableRange };
    let req =
        RangeRequest { key: span.key.clone(), range_end: span.range_end.clone(), serializable, ..Default::default() };
    let mut client = KvClient::new(t.channel.clone());
    let call = client.range(req);
    let keys = |r: &tonic::Response<meridian_proto::etcdserverpb::RangeResponse>| {
        Ok(r.get_ref().kvs.iter().map(|kv| kv.key.clone()).collect())
    };
    issue(t, path, vec![span], Vec::new(), call, keys).await;
}

/// A txn of one of four shapes: 0 compares a key outside the prefix; 1 has an op outside in the branch its
/// (always true) compare does not take; 2 nests a txn writing outside; 3 stays inside, nesting included.
async fn txn(t: &Target<'_>, shape: u64, inside: &[u8], outside: &[u8], value: &[u8]) {
    let always = |key: &[u8]| Compare {
        result: CompareResult::Greater as i32,
        target: CompareTarget::Version as i32,
        key: key.to_vec(),
        target_union: Some(TargetUnion::Version(-1)),
        ..Default::default()
    };
    let put_op = |key: &[u8]| RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            prev_kv: true,
            ..Default::default()
        })),
    };
    let nested = |key: &[u8]| RequestOp {
        request: Some(Request::RequestTxn(TxnRequest {
            compare: vec![always(inside)],
            success: vec![put_op(key)],
            failure: vec![],
        })),
    };
    let read_inside = RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            key: APP_PREFIX.to_vec(),
            range_end: APP_PREFIX_END.to_vec(),
            ..Default::default()
        })),
    };
    let (req, spans, written) = match shape {
        0 => (
            TxnRequest { compare: vec![always(outside)], success: vec![put_op(inside)], failure: vec![] },
            vec![Span::key(outside), Span::key(inside)],
            vec![inside],
        ),
        1 => (
            TxnRequest { compare: vec![always(inside)], success: vec![put_op(inside)], failure: vec![put_op(outside)] },
            vec![Span::key(inside), Span::key(inside), Span::key(outside)],
            vec![inside, outside],
        ),
        2 => (
            TxnRequest { compare: vec![always(inside)], success: vec![nested(outside)], failure: vec![] },
            vec![Span::key(inside), Span::key(inside), Span::key(outside)],
            vec![outside],
        ),
        _ => (
            TxnRequest {
                compare: vec![always(inside)],
                success: vec![put_op(inside), read_inside],
                failure: vec![nested(inside)],
            },
            vec![Span::key(inside), Span::key(inside), Span::range(APP_PREFIX, APP_PREFIX_END)],
            vec![inside],
        ),
    };
    let writes = written.into_iter().map(|k| KeyValue { key: k.to_vec(), value: value.to_vec() }).collect();
    let mut client = KvClient::new(t.channel.clone());
    let call = client.txn(req);
    issue(t, AuthPath::Txn, spans, writes, call, nothing).await;
}

/// Creates a watch on `span` and waits for the answer: created, or cancelled with a reason.
async fn watch_create(t: &Target<'_>, span: Span) {
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: span.key.clone(),
            range_end: span.range_end.clone(),
            ..Default::default()
        })),
    };
    let channel = t.channel.clone();
    let call = async move {
        let mut answer = Err(Status::unavailable("no attempt"));
        // A refused token is forgotten and the watch created again after a fresh login, once.
        for _ in 0..2 {
            // The outbound stream stays open until the answer is in: ending it would half-close the watch.
            let outbound = futures::stream::iter([create.clone()]).chain(futures::stream::pending());
            let mut inbound = WatchClient::new(channel.clone()).watch(outbound).await?.into_inner();
            answer = inbound.message().await?.ok_or_else(|| Status::unavailable("watch stream ended"));
            match &answer {
                Ok(r) if r.canceled && refuses_token(&r.cancel_reason) => channel.forget_token(),
                _ => break,
            }
        }
        answer
    };
    let answer = |r: &meridian_proto::etcdserverpb::WatchResponse| {
        if !r.canceled {
            return Ok(r.events.iter().filter_map(|e| e.kv.as_ref().map(|kv| kv.key.clone())).collect());
        }
        // The cancel reason is the error the create would have failed with.
        let code = match r.cancel_reason.as_str() {
            "etcdserver: permission denied" => Code::PermissionDenied,
            "etcdserver: invalid auth token" => Code::Unauthenticated,
            _ => Code::FailedPrecondition,
        };
        Err(Status::new(code, r.cancel_reason.clone()))
    };
    issue(t, AuthPath::WatchCreate, vec![span], Vec::new(), call, answer).await;
}

/// One step of the user's own lease: grant one (none held), or put with it inside or outside the prefix, or
/// revoke it (its spans: the keys attached to it).
async fn own_lease(
    t: &Target<'_>,
    held: Option<Held>,
    choice: u64,
    inside: Vec<u8>,
    outside: Vec<u8>,
    value: Vec<u8>,
) -> Option<Held> {
    let Some(mut held) = held else {
        let mut client = LeaseClient::new(t.channel.clone());
        let call = client.lease_grant(LeaseGrantRequest { ttl: LEASE_TTL_SECS, id: 0 });
        return match issue(t, AuthPath::LeaseGrant, Vec::new(), Vec::new(), call, nothing).await {
            Some(Ok(r)) => Some(Held { id: r.into_inner().id, keys: Vec::new() }),
            _ => None,
        };
    };
    match choice {
        0 | 1 => {
            let key = if choice == 0 { inside } else { outside };
            let ok = put(t, key.clone(), value, Some(held.id)).await;
            // A put that may have attached the key counts it, so a revoke names it; outside keys only attach
            // when the server wrongly accepted the put.
            if ok || Span::key(&key).inside_app_prefix() {
                held.keys.push(key);
            }
            // Refused: most likely the lease expired; start over.
            ok.then_some(held)
        }
        _ => {
            let spans = held.keys.iter().map(|k| Span::key(k)).collect();
            let mut client = LeaseClient::new(t.channel.clone());
            let call = client.lease_revoke(LeaseRevokeRequest { id: held.id });
            issue(t, AuthPath::LeaseRevoke, spans, Vec::new(), call, nothing).await;
            None
        }
    }
}

/// Root grants a lease and attaches a key outside the prefix to it (not recorded: root's setup for the check);
/// then the limited user tries to revoke it, or to list its keys.
async fn root_lease(
    t: &Target<'_>,
    helper: SimChannel,
    held: Option<Held>,
    revoke: bool,
    client: u32,
    seq: u64,
) -> Option<Held> {
    let Some(held) = held else {
        let mut lease = LeaseClient::new(helper.clone());
        let grant = lease.lease_grant(LeaseGrantRequest { ttl: LEASE_TTL_SECS, id: 0 });
        let id = tokio::time::timeout(OP_TIMEOUT, grant).await.ok()?.ok()?.into_inner().id;
        let key = format!("secret/lease-{client}-{seq}").into_bytes();
        let req = PutRequest { key: key.clone(), value: b"root".to_vec(), lease: id, ..Default::default() };
        let mut kv = KvClient::new(helper);
        tokio::time::timeout(OP_TIMEOUT, kv.put(req)).await.ok()?.ok()?;
        return Some(Held { id, keys: vec![key] });
    };
    let spans: Vec<Span> = held.keys.iter().map(|k| Span::key(k)).collect();
    if revoke {
        let mut client = LeaseClient::new(t.channel.clone());
        let call = client.lease_revoke(LeaseRevokeRequest { id: held.id });
        issue(t, AuthPath::LeaseRevoke, spans, Vec::new(), call, nothing).await;
        return None;
    }
    let mut client = LeaseClient::new(t.channel.clone());
    let call = client.lease_time_to_live(LeaseTimeToLiveRequest { id: held.id, keys: true });
    let keys = |r: &tonic::Response<meridian_proto::etcdserverpb::LeaseTimeToLiveResponse>| {
        let r = r.get_ref();
        // An expired lease lists nothing: the answer reveals no key.
        if r.ttl < 0 { Err(Status::not_found("etcdserver: requested lease not found")) } else { Ok(r.keys.clone()) }
    };
    issue(t, AuthPath::LeaseTimeToLiveKeys, spans, Vec::new(), call, keys).await;
    Some(held)
}
