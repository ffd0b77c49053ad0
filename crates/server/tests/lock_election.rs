//! The Lock and Election services over gRPC on one member: the queue order, release by unlock, revoke and
//! expiry, the cleanup of a cancelled waiter, the leader's value changes seen by Observe, and the errors with
//! etcd 3.4's texts and codes (observed with etcd 3.4.23's own services). The same behaviour against etcd
//! itself, through etcdctl, the etcd-client crate and Go's clientv3, is in `crates/cli/tests/lock_election.rs`.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use meridian_proto::authpb::Permission;
use meridian_proto::authpb::permission::Type as PermType;
use meridian_proto::etcdserverpb::auth_client::AuthClient;
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::lease_client::LeaseClient;
use meridian_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use meridian_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest, AuthUserAddRequest,
    AuthUserGrantRoleRequest, AuthenticateRequest, LeaseGrantRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    RangeRequest, StatusRequest,
};
use meridian_proto::v3electionpb::election_client::ElectionClient;
use meridian_proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest, ResignRequest,
};
use meridian_proto::v3lockpb::lock_client::LockClient;
use meridian_proto::v3lockpb::{LockRequest, UnlockRequest};
use meridian_server::RunningServer;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Bound on every wait for a condition.
const DEADLINE: Duration = Duration::from_secs(15);

struct Fixture {
    server: RunningServer,
    channel: Channel,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let server = meridian_server::start(common::solo(dir.path())).await.unwrap();
        let channel = Channel::from_shared(format!("http://{}", server.client_addr)).unwrap().connect().await.unwrap();
        let mut maintenance = MaintenanceClient::new(channel.clone());
        let ready = poll(|| {
            let mut m = maintenance.clone();
            async move { m.status(StatusRequest {}).await.is_ok_and(|s| s.get_ref().leader != 0) }
        })
        .await;
        assert!(ready, "no leader within {DEADLINE:?}");
        maintenance.status(StatusRequest {}).await.unwrap();
        Fixture { server, channel, _dir: dir }
    }

    fn lock(&self) -> LockClient<Channel> {
        LockClient::new(self.channel.clone())
    }

    fn election(&self) -> ElectionClient<Channel> {
        ElectionClient::new(self.channel.clone())
    }

    async fn grant(&self, ttl: i64) -> i64 {
        let mut lease = LeaseClient::new(self.channel.clone());
        lease.lease_grant(LeaseGrantRequest { ttl, id: 0 }).await.unwrap().into_inner().id
    }

    async fn revoke(&self, id: i64) {
        LeaseClient::new(self.channel.clone()).lease_revoke(LeaseRevokeRequest { id }).await.unwrap();
    }

    /// The keys under `prefix`, in key order.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().unwrap() += 1;
        let req = RangeRequest { key: prefix.into(), range_end: end, keys_only: true, ..Default::default() };
        let resp = KvClient::new(self.channel.clone()).range(req).await.unwrap().into_inner();
        resp.kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
    }

    /// Polls until `prefix` holds exactly `n` keys.
    async fn wait_keys(&self, prefix: &str, n: usize) {
        let seen = poll(|| async { self.keys(prefix).await.len() == n }).await;
        assert!(seen, "{prefix} never held {n} keys: {:?}", self.keys(prefix).await);
    }
}

/// Polls `cond` every 20 ms until it holds or [`DEADLINE`] passes; returns whether it held.
async fn poll<F: Future<Output = bool>>(mut cond: impl FnMut() -> F) -> bool {
    let end = Instant::now() + DEADLINE;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn key_of(name: &str, lease: i64) -> String {
    format!("{name}/{lease:x}")
}

fn assert_status<T: std::fmt::Debug>(r: Result<T, Status>, code: Code, message: &str, what: &str) {
    match r {
        Ok(v) => panic!("{what}: expected {code:?} {message:?}, got {v:?}"),
        Err(s) => assert_eq!((s.code(), s.message()), (code, message), "{what}"),
    }
}

/// Waits at most [`DEADLINE`] for a call that must not block.
async fn within<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, call).await.expect("a call that must answer at once blocked")
}

/// Waits at most [`DEADLINE`] for a spawned call.
async fn finished<T>(task: tokio::task::JoinHandle<T>, what: &str) -> T {
    tokio::time::timeout(DEADLINE, task).await.unwrap_or_else(|_| panic!("{what} never returned")).unwrap()
}

#[tokio::test]
async fn lock_queues_waiters_in_order_and_releases_on_unlock_revoke_and_expiry() {
    let f = Fixture::start().await;
    let (l1, l2, l3) = (f.grant(60).await, f.grant(60).await, f.grant(60).await);

    let first = within(f.lock().lock(LockRequest { name: b"db".to_vec(), lease: l1 })).await.unwrap().into_inner();
    assert_eq!(String::from_utf8(first.key.clone()).unwrap(), key_of("db", l1));
    let token1 = first.header.as_ref().unwrap().revision;

    // Two waiters queue behind the holder, in the order they arrived.
    let mut c = f.lock();
    let second = tokio::spawn(async move { c.lock(LockRequest { name: b"db".to_vec(), lease: l2 }).await });
    f.wait_keys("db/", 2).await;
    let mut c = f.lock();
    let third = tokio::spawn(async move { c.lock(LockRequest { name: b"db".to_vec(), lease: l3 }).await });
    f.wait_keys("db/", 3).await;
    assert!(!second.is_finished() && !third.is_finished(), "waiters were answered while the lock was held");

    // The same lease locking again holds it already: same key, at once.
    let again = within(f.lock().lock(LockRequest { name: b"db".to_vec(), lease: l1 })).await.unwrap().into_inner();
    assert_eq!(again.key, first.key);

    // Unlock hands the lock to the second waiter only.
    let unlocked = within(f.lock().unlock(UnlockRequest { key: first.key.clone() })).await.unwrap().into_inner();
    let got = finished(second, "the second waiter").await.unwrap().into_inner();
    assert_eq!(String::from_utf8(got.key.clone()).unwrap(), key_of("db", l2));
    assert!(got.header.unwrap().revision >= unlocked.header.unwrap().revision);
    assert!(!third.is_finished(), "the third waiter got the lock while the second held it");

    // A revoked lease releases its lock: the third waiter gets it, with a larger fencing token.
    f.revoke(l2).await;
    let got = finished(third, "the third waiter").await.unwrap().into_inner();
    assert_eq!(String::from_utf8(got.key.clone()).unwrap(), key_of("db", l3));
    let kv = KvClient::new(f.channel.clone()).range(RangeRequest { key: got.key, ..Default::default() }).await;
    let token3 = kv.unwrap().into_inner().kvs[0].create_revision;
    assert!(token3 > token1, "fencing tokens grow: {token3} after {token1}");

    // An expiring lease releases it too (the leader revokes it once its TTL runs out).
    f.revoke(l3).await;
    let short = f.grant(2).await;
    within(f.lock().lock(LockRequest { name: b"exp".to_vec(), lease: short })).await.unwrap();
    let waiter_lease = f.grant(60).await;
    let mut c = f.lock();
    let waiter = tokio::spawn(async move { c.lock(LockRequest { name: b"exp".to_vec(), lease: waiter_lease }).await });
    let got = finished(waiter, "the waiter behind an expiring lease").await.unwrap().into_inner();
    assert_eq!(String::from_utf8(got.key).unwrap(), key_of("exp", waiter_lease));
    assert_eq!(f.keys("exp/").await, vec![key_of("exp", waiter_lease)]);
    f.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_lock_waiter_deletes_its_key_and_a_waiter_whose_lease_expired_still_gets_the_lock() {
    let f = Fixture::start().await;
    let (holder, quitter) = (f.grant(60).await, f.grant(60).await);
    let held = within(f.lock().lock(LockRequest { name: b"q".to_vec(), lease: holder })).await.unwrap().into_inner();

    // The client gives up (its call is dropped): the server deletes the waiter's key, as etcd's does.
    let mut c = f.lock();
    let waiter = tokio::spawn(async move { c.lock(LockRequest { name: b"q".to_vec(), lease: quitter }).await });
    f.wait_keys("q/", 2).await;
    waiter.abort();
    f.wait_keys("q/", 1).await;
    assert_eq!(f.keys("q/").await, vec![key_of("q", holder)]);

    // etcd 3.4 answers a waiter whose own key expired while it waited with the lock once the keys ahead are
    // gone, and the key it answers with no longer exists: only a fenced write can tell.
    let short = f.grant(2).await;
    let mut c = f.lock();
    let waiter = tokio::spawn(async move { c.lock(LockRequest { name: b"q".to_vec(), lease: short }).await });
    f.wait_keys("q/", 2).await;
    f.wait_keys("q/", 1).await;
    assert!(!waiter.is_finished(), "the waiter was answered while the lock was held");
    within(f.lock().unlock(UnlockRequest { key: held.key })).await.unwrap();
    let got = finished(waiter, "the waiter whose lease expired").await.unwrap().into_inner();
    assert_eq!(String::from_utf8(got.key).unwrap(), key_of("q", short));
    assert!(f.keys("q/").await.is_empty(), "the expired waiter's key is gone");
    f.server.stop().await.unwrap();
}

#[tokio::test]
async fn lock_errors_carry_etcds_texts_with_code_unknown() {
    let f = Fixture::start().await;
    let unknown = within(f.lock().lock(LockRequest { name: b"x".to_vec(), lease: 0x1234 })).await;
    assert_status(unknown, Code::Unknown, "etcdserver: requested lease not found", "lock with an unknown lease");
    let empty = within(f.lock().unlock(UnlockRequest { key: Vec::new() })).await;
    assert_status(empty, Code::Unknown, "etcdserver: key is not provided", "unlock without a key");
    let reserved = within(f.lock().lock(LockRequest { name: b"/meridian/x".to_vec(), lease: f.grant(60).await })).await;
    assert_eq!(reserved.unwrap_err().code(), Code::PermissionDenied, "a lock key under /meridian/ is refused");

    // A lock that names no lease gets a new one of 60 s, as etcd's session grants.
    let got = within(f.lock().lock(LockRequest { name: b"nolease".to_vec(), lease: 0 })).await.unwrap().into_inner();
    let key = String::from_utf8(got.key).unwrap();
    let hex = key.strip_prefix("nolease/").expect("the key is under the name");
    let id = i64::from_str_radix(hex, 16).unwrap();
    let ttl = LeaseClient::new(f.channel.clone()).lease_time_to_live(LeaseTimeToLiveRequest { id, keys: true }).await;
    let ttl = ttl.unwrap().into_inner();
    assert_eq!((ttl.granted_ttl, ttl.keys), (60, vec![key.into_bytes()]));
    f.server.stop().await.unwrap();
}

fn leader_key(c: &CampaignResponse) -> LeaderKey {
    c.leader.clone().expect("a campaign answers with the leader key")
}

fn value(r: &LeaderResponse) -> String {
    String::from_utf8_lossy(&r.kv.as_ref().expect("a leader has a key").value).into_owned()
}

/// The value of the next leader the observer reports.
async fn next(observed: &mut tonic::Streaming<LeaderResponse>) -> String {
    let msg = tokio::time::timeout(DEADLINE, observed.message()).await.expect("observer stalled").unwrap();
    value(&msg.expect("the observer's stream ended"))
}

#[tokio::test]
async fn an_election_campaigns_proclaims_observes_and_resigns() {
    let f = Fixture::start().await;
    let none = within(f.election().leader(LeaderRequest { name: b"e".to_vec() })).await;
    assert_status(none, Code::Unknown, "election: no leader", "leader of an empty election");

    // An observer from before the first candidate sees every leader and every value.
    let mut observed = within(f.election().observe(LeaderRequest { name: b"e".to_vec() })).await.unwrap().into_inner();

    let (la, lb, lc) = (f.grant(60).await, f.grant(60).await, f.grant(60).await);
    let a =
        within(f.election().campaign(CampaignRequest { name: b"e".to_vec(), lease: la, value: b"a1".to_vec() })).await;
    let a = a.unwrap().into_inner();
    let ka = leader_key(&a);
    assert_eq!(
        (String::from_utf8(ka.key.clone()).unwrap(), ka.rev, ka.lease),
        (key_of("e", la), a.header.unwrap().revision, la)
    );
    assert_eq!(next(&mut observed).await, "a1");

    let mut c = f.election();
    let b = tokio::spawn(async move {
        c.campaign(CampaignRequest { name: b"e".to_vec(), lease: lb, value: b"b1".to_vec() }).await
    });
    f.wait_keys("e/", 2).await;

    within(f.election().proclaim(ProclaimRequest { leader: Some(ka.clone()), value: b"a2".to_vec() })).await.unwrap();
    assert_eq!(next(&mut observed).await, "a2");
    assert_eq!(
        value(&within(f.election().leader(LeaderRequest { name: b"e".to_vec() })).await.unwrap().into_inner()),
        "a2"
    );

    // Only the leader key at its create revision may proclaim; a resign of anything else changes nothing.
    let stale = LeaderKey { rev: ka.rev + 1, ..ka.clone() };
    let r = within(f.election().proclaim(ProclaimRequest { leader: Some(stale.clone()), value: b"x".to_vec() })).await;
    assert_status(r, Code::Unknown, "election: not leader", "proclaim at a wrong revision");
    let waiting = LeaderKey { key: key_of("e", lb).into_bytes(), lease: lb, ..ka.clone() };
    let r = within(f.election().proclaim(ProclaimRequest { leader: Some(waiting), value: b"x".to_vec() })).await;
    assert_status(r, Code::Unknown, "election: not leader", "proclaim by a waiting candidate");
    let r = within(f.election().proclaim(ProclaimRequest { leader: None, value: b"x".to_vec() })).await;
    assert_status(r, Code::Unknown, "\"leader\" field must be provided", "proclaim without a leader");
    let r = within(f.election().resign(ResignRequest { leader: None })).await;
    assert_status(r, Code::Unknown, "\"leader\" field must be provided", "resign without a leader");
    within(f.election().resign(ResignRequest { leader: Some(stale) })).await.unwrap();
    assert_eq!(f.keys("e/").await.len(), 2, "a resign at a wrong revision deleted something");
    assert!(!b.is_finished(), "the second candidate leads while the first has not resigned");

    // The leader resigns: the waiting candidate leads, and the observer sees it.
    within(f.election().resign(ResignRequest { leader: Some(ka) })).await.unwrap();
    let b = finished(b, "the second candidate").await.unwrap().into_inner();
    let kb = leader_key(&b);
    assert_eq!(String::from_utf8(kb.key.clone()).unwrap(), key_of("e", lb));
    assert_eq!(next(&mut observed).await, "b1");

    // Campaigning again with the same lease and another value keeps the place and proclaims the value.
    let again =
        within(f.election().campaign(CampaignRequest { name: b"e".to_vec(), lease: lb, value: b"b2".to_vec() })).await;
    assert_eq!(leader_key(&again.unwrap().into_inner()).rev, kb.rev);
    assert_eq!(next(&mut observed).await, "b2");

    // A cancelled campaign resigns its key.
    let mut c = f.election();
    let quitter = tokio::spawn(async move {
        c.campaign(CampaignRequest { name: b"e".to_vec(), lease: lc, value: b"c".to_vec() }).await
    });
    f.wait_keys("e/", 2).await;
    quitter.abort();
    f.wait_keys("e/", 1).await;

    // The leader's lease is revoked: no leader until the next candidate, whom the observer then sees.
    f.revoke(lb).await;
    f.wait_keys("e/", 0).await;
    let ld = f.grant(60).await;
    within(f.election().campaign(CampaignRequest { name: b"e".to_vec(), lease: ld, value: b"d".to_vec() }))
        .await
        .unwrap();
    assert_eq!(next(&mut observed).await, "d");
    // An open stream holds the server's graceful stop.
    drop(observed);
    f.server.stop().await.unwrap();
}

#[tokio::test]
async fn locks_and_elections_are_judged_as_the_callers_own_requests() {
    let f = Fixture::start().await;
    let mut auth = AuthClient::new(f.channel.clone());
    let user = |name: &str, password: &str| AuthUserAddRequest {
        name: name.into(),
        password: password.into(),
        ..Default::default()
    };
    auth.user_add(user("root", "rootpw")).await.unwrap();
    auth.user_grant_role(AuthUserGrantRoleRequest { user: "root".into(), role: "root".into() }).await.unwrap();
    auth.role_add(AuthRoleAddRequest { name: "app".into() }).await.unwrap();
    let perm = Permission { perm_type: PermType::Readwrite as i32, key: b"a/".to_vec(), range_end: b"a0".to_vec() };
    auth.role_grant_permission(AuthRoleGrantPermissionRequest { name: "app".into(), perm: Some(perm) }).await.unwrap();
    auth.user_add(user("app", "apppw")).await.unwrap();
    auth.user_grant_role(AuthUserGrantRoleRequest { user: "app".into(), role: "app".into() }).await.unwrap();
    auth.auth_enable(AuthEnableRequest {}).await.unwrap();
    let login = AuthenticateRequest { name: "app".into(), password: "apppw".into() };
    let token: tonic::metadata::MetadataValue<_> =
        auth.authenticate(login).await.unwrap().into_inner().token.parse().unwrap();
    let as_app = move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("token", token.clone());
        Ok(req)
    };
    let mut lock = LockClient::with_interceptor(f.channel.clone(), as_app.clone());
    let mut election = ElectionClient::with_interceptor(f.channel.clone(), as_app.clone());
    let mut leases = LeaseClient::with_interceptor(f.channel.clone(), as_app);
    let lease = leases.lease_grant(LeaseGrantRequest { ttl: 60, id: 0 }).await.unwrap().into_inner().id;

    let denied = "etcdserver: permission denied";
    let r = within(lock.lock(LockRequest { name: b"b".to_vec(), lease })).await;
    assert_status(r, Code::Unknown, denied, "lock outside the user's prefix");
    let r = within(election.campaign(CampaignRequest { name: b"b".to_vec(), lease, value: b"v".to_vec() })).await;
    assert_status(r, Code::Unknown, denied, "campaign outside the user's prefix");
    let r = within(election.leader(LeaderRequest { name: b"b".to_vec() })).await;
    assert_status(r, Code::Unknown, denied, "leader outside the user's prefix");
    // etcd's Observe ends the stream without an error when its read is refused.
    let mut refused = within(election.observe(LeaderRequest { name: b"b".to_vec() })).await.unwrap().into_inner();
    let end = tokio::time::timeout(DEADLINE, refused.message()).await.expect("observe of a refused prefix hangs");
    assert!(matches!(end, Ok(None)), "observe of a refused prefix: {end:?}");

    let held = within(lock.lock(LockRequest { name: b"a/x".to_vec(), lease })).await.unwrap().into_inner();
    assert_eq!(String::from_utf8(held.key).unwrap(), key_of("a/x", lease));
    within(election.campaign(CampaignRequest { name: b"a/e".to_vec(), lease, value: b"v".to_vec() })).await.unwrap();
    assert_eq!(
        value(&within(election.leader(LeaderRequest { name: b"a/e".to_vec() })).await.unwrap().into_inner()),
        "v"
    );

    let anonymous = LockClient::new(f.channel.clone()).lock(LockRequest { name: b"a/y".to_vec(), lease }).await;
    assert_status(anonymous, Code::Unknown, "etcdserver: user name is empty", "lock without credentials");
    f.server.stop().await.unwrap();
}
