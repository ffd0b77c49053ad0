//! What Meridian checks beyond etcd 3.4, with real processes: the calls etcd's advisories found open
//! (MemberList, Alarm, lease calls, LeaseTimeToLive with keys, lease attach, watches, maintenance) need
//! credentials or the root role; a follower judges its own serializable reads and watches, and writes it
//! forwards are judged where they apply; failed logins are throttled and never logged with the password;
//! simple tokens expire and do not cross clusters; JWT tokens survive a leader change and a token signed with
//! another key is refused.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cluster::{Cluster, Options, voter};
use common::{Kind, Output, Server, etcdctl, poll_until};
use meridian_proto::etcdserverpb::auth_client::AuthClient;
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::{AuthenticateRequest, RangeRequest};

const ROOT: &str = "--user=root:rootpw";
const ALICE: &str = "--user=alice:alicepw";

fn run(endpoint: &str, args: &[&str]) -> Output {
    etcdctl(endpoint, args, None)
}

fn ok(endpoint: &str, args: &[&str]) -> Output {
    let out = run(endpoint, args);
    assert!(out.ok(), "etcdctl {args:?} failed: {out:?}");
    out
}

fn refused(endpoint: &str, args: &[&str], text: &str) {
    let out = run(endpoint, args);
    assert!(!out.ok() && out.stderr.contains(text), "etcdctl {args:?}: expected {text:?}, got {out:?}");
}

/// root (root role) and alice (read-write on `a/`), auth on; root owns `secret`, attached to a lease it returns.
fn secure(endpoint: &str) -> String {
    ok(endpoint, &["user", "add", "root:rootpw"]);
    ok(endpoint, &["user", "add", "alice:alicepw"]);
    ok(endpoint, &["role", "add", "app"]);
    ok(endpoint, &["role", "grant-permission", "app", "readwrite", "a/", "--prefix"]);
    ok(endpoint, &["user", "grant-role", "alice", "app"]);
    ok(endpoint, &["auth", "enable"]);
    let lease = ok(endpoint, &[ROOT, "lease", "grant", "600"]);
    let id = lease.stdout.split_whitespace().nth(1).expect("lease id").to_owned();
    ok(endpoint, &[ROOT, "put", "secret", "root's", "--lease", &id]);
    id
}

#[test]
fn the_calls_etcds_advisories_found_open_need_credentials() {
    let server = Server::start(Kind::Meridian);
    let ep = server.endpoint();
    let lease = secure(&ep);
    for args in [vec!["member", "list"], vec!["lease", "grant", "10"], vec!["lease", "list"], vec!["alarm", "list"]] {
        let out = run(&ep, &args);
        assert!(!out.ok() && out.stderr.contains("etcdserver: user name is empty"), "{args:?}: {out:?}");
    }
    refused(&ep, &[ROOT, "user", "add", "bob:"], "etcdserver: password is empty");
    let denied = "etcdserver: permission denied";
    let snapshot = server.dir().join("alice.db");
    for args in [
        vec!["alarm", "list"],
        vec!["compaction", "1"],
        vec!["defrag"],
        vec!["endpoint", "hashkv"],
        vec!["snapshot", "save", snapshot.to_str().expect("utf-8 path")],
        vec!["member", "add", "x", "--peer-urls=http://127.0.0.1:1"],
        vec!["lease", "timetolive", &lease, "--keys"],
        vec!["put", "a/attached", "x", "--lease", &lease],
        vec!["lease", "revoke", &lease],
    ] {
        let mut full = vec![ALICE];
        full.extend(args.iter().copied());
        refused(&ep, &full, denied);
    }
    // What alice may do: her keys, her own lease, the lease's TTL without its keys, the member list.
    let own = ok(&ep, &[ALICE, "lease", "grant", "60"]);
    let own = own.stdout.split_whitespace().nth(1).expect("lease id").to_owned();
    ok(&ep, &[ALICE, "put", "a/1", "x", "--lease", &own]);
    ok(&ep, &[ALICE, "lease", "timetolive", &own, "--keys"]);
    ok(&ep, &[ALICE, "lease", "timetolive", &lease]);
    ok(&ep, &[ALICE, "member", "list"]);
    ok(&ep, &[ALICE, "lease", "revoke", &own]);
    // A watch of a key she may not read is cancelled, with etcd's text.
    let watch = run(&ep, &[ALICE, "watch", "secret"]);
    assert!(
        watch
            .stderr
            .contains("watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)"),
        "{watch:?}"
    );
    // And root may do it all; nothing alice tried changed anything.
    ok(&ep, &[ROOT, "alarm", "list"]);
    ok(&ep, &[ROOT, "endpoint", "hashkv"]);
    let secret = ok(&ep, &[ROOT, "get", "secret", "--print-value-only"]);
    assert_eq!(secret.stdout.trim(), "root's");
}

#[test]
fn a_follower_judges_forwarded_writes_and_its_own_reads_and_watches() {
    let cluster =
        Cluster::start_with(&[voter("m1", "dc-a"), voter("m2", "dc-b"), voter("m3", "dc-c")], &Options::preset("lan"));
    let leader = cluster.wait_agreed_leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    secure(&cluster.nodes[leader].endpoint());
    let ep = cluster.nodes[follower].endpoint();
    // Alice's writes through the follower are forwarded; the leader's apply judges them.
    ok(&ep, &[ALICE, "put", "a/1", "from-a-follower"]);
    refused(&ep, &[ALICE, "put", "secret", "alice's"], "etcdserver: permission denied");
    refused(&ep, &[ALICE, "del", "secret"], "etcdserver: permission denied");
    // Serializable reads are served by the follower alone: it judges them itself.
    assert!(
        poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
            run(&ep, &[ALICE, "get", "a/1", "--consistency=s", "--print-value-only"]).stdout.trim() == "from-a-follower"
        }),
        "the follower serves alice's own key"
    );
    refused(&ep, &[ALICE, "get", "secret", "--consistency=s"], "etcdserver: permission denied");
    let watch = run(&ep, &[ALICE, "watch", "secret"]);
    assert!(watch.stderr.contains("etcdserver: permission denied"), "{watch:?}");
    // Every member applied the same users and roles.
    let hashes: Vec<(u64, u32)> = (0..3)
        .map(|i| {
            let mut seen = (0, 0);
            poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
                let s = cluster.admin_status(i).expect("status");
                seen = (s.auth.revision, s.auth.hash);
                s.auth.enabled && s.applied >= cluster.admin_status(leader).map_or(u64::MAX, |l| l.committed)
            });
            seen
        })
        .collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "auth stores differ between members: {hashes:?}");
    let value = ok(&cluster.nodes[leader].endpoint(), &[ROOT, "get", "secret", "--print-value-only"]);
    assert_eq!(value.stdout.trim(), "root's");
}

#[test]
fn failed_logins_are_throttled_and_never_logged_with_the_password() {
    let server = Server::start(Kind::Meridian);
    let ep = server.endpoint();
    secure(&ep);
    for _ in 0..6 {
        refused(&ep, &["--user=alice:guess-one", "get", "a/1"], "etcdserver: authentication failed");
    }
    // Locked out: the right password and another user from the same address wait too.
    refused(&ep, &[ALICE, "get", "a/1"], "etcdserver: too many requests");
    refused(&ep, &[ROOT, "get", "a/1"], "etcdserver: too many requests");
    assert!(
        poll_until(Duration::from_secs(5), Duration::from_millis(200), || run(&ep, &[ALICE, "get", "a/1"]).ok()),
        "the lockout ends"
    );
    let log = std::fs::read_to_string(server.log_path()).expect("log");
    assert!(log.contains("authentication failed"), "failures are logged");
    for secret in ["guess-one", "alicepw", "rootpw"] {
        assert!(!log.contains(secret), "a password reached the log: {secret}");
    }
}

async fn token(endpoint: &str, name: &str, password: &str) -> String {
    let mut auth = AuthClient::connect(endpoint.to_owned()).await.expect("connect");
    let req = AuthenticateRequest { name: name.into(), password: password.into() };
    auth.authenticate(req).await.expect("authenticate").into_inner().token
}

/// A range of `key` with `token`: the status code and message on failure.
async fn get_with(endpoint: &str, token: &str, key: &str) -> Result<(), (tonic::Code, String)> {
    let mut kv = KvClient::connect(endpoint.to_owned()).await.expect("connect");
    let mut req = tonic::Request::new(RangeRequest { key: key.into(), ..Default::default() });
    req.metadata_mut().insert("token", token.parse().expect("ascii token"));
    kv.range(req).await.map(|_| ()).map_err(|s| (s.code(), s.message().to_owned()))
}

#[test]
fn simple_tokens_expire_and_do_not_cross_clusters() {
    let server = Server::start_with_args(Kind::Meridian, &["--auth-token-ttl", "1"]);
    let other = Server::start(Kind::Meridian);
    let (ep, other_ep) = (server.endpoint(), other.endpoint());
    secure(&ep);
    secure(&other_ep);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let t = token(&ep, "alice", "alicepw").await;
        assert_eq!(get_with(&ep, &t, "a/1").await, Ok(()));
        let invalid = Err((tonic::Code::Unauthenticated, "etcdserver: invalid auth token".to_owned()));
        assert_eq!(get_with(&other_ep, &t, "a/1").await, invalid, "a token of another cluster");
        assert_eq!(get_with(&ep, "forged.1", "a/1").await, invalid, "a made-up token");
        // The TTL is what is under test: let it pass without using the token.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(get_with(&ep, &t, "a/1").await, invalid, "an expired token");
    });
    let log = std::fs::read_to_string(server.log_path()).expect("log");
    assert!(!log.contains("alicepw"), "no password in the log");
}

fn write_key_pair(dir: &Path, name: &str) -> (String, String) {
    let pair = rcgen::KeyPair::generate().expect("key pair");
    let (private, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    std::fs::write(&private, pair.serialize_pem()).expect("write key");
    std::fs::write(&public, pair.public_key_pem()).expect("write public key");
    (private.display().to_string(), public.display().to_string())
}

#[test]
fn jwt_tokens_survive_a_leader_change_and_other_keys_are_refused() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (private, public) = write_key_pair(keys.path(), "cluster");
    let (other_private, other_public) = write_key_pair(keys.path(), "other");
    let spec =
        |private: &str, public: &str| format!("jwt,pub-key={public},priv-key={private},sign-method=ES256,ttl=5m");
    let mut opts = Options::preset("lan");
    opts.extra_args = vec!["--auth-token".into(), spec(&private, &public)];
    let mut cluster = Cluster::start_with(&[voter("m1", "dc-a"), voter("m2", "dc-b"), voter("m3", "dc-c")], &opts);
    let leader = cluster.wait_agreed_leader(Duration::from_secs(20));
    secure(&cluster.nodes[leader].endpoint());
    let stranger = Server::start_with_args(Kind::Meridian, &["--auth-token", &spec(&other_private, &other_public)]);
    secure(&stranger.endpoint());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = rt.block_on(token(&cluster.nodes[leader].endpoint(), "alice", "alicepw"));
    assert_eq!(t.split('.').count(), 3, "a JWT: {t}");
    for node in &cluster.nodes {
        assert_eq!(rt.block_on(get_with(&node.endpoint(), &t, "a/1")), Ok(()), "member {} accepts it", node.spec.name);
    }
    let foreign = rt.block_on(token(&stranger.endpoint(), "alice", "alicepw"));
    let invalid = Err((tonic::Code::Unauthenticated, "etcdserver: invalid auth token".to_owned()));
    assert_eq!(
        rt.block_on(get_with(&cluster.nodes[leader].endpoint(), &foreign, "a/1")),
        invalid,
        "signed with another key"
    );
    cluster.kill9(leader);
    let survivor = (leader + 1) % 3;
    assert!(
        poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
            rt.block_on(get_with(&cluster.nodes[survivor].endpoint(), &t, "a/1")).is_ok()
                && run(&cluster.nodes[survivor].endpoint(), &[ALICE, "put", "a/after", "x"]).ok()
        }),
        "the token works after the leader is gone"
    );
}

/// `GET /status` on the admin API with `Authorization: Bearer <bearer>`: the status code.
fn admin_status_code(addr: std::net::SocketAddr, bearer: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let req =
        format!("GET /status HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status code")
}

#[test]
fn the_admin_api_takes_its_token_or_a_root_users_token() {
    let port = common::free_port();
    let admin_url = format!("http://127.0.0.1:{port}");
    let server =
        Server::start_with_args(Kind::Meridian, &["--listen-admin", &admin_url, "--admin-token", "configured-secret"]);
    let ep = server.endpoint();
    secure(&ep);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (root, alice) =
        rt.block_on(async { (token(&ep, "root", "rootpw").await, token(&ep, "alice", "alicepw").await) });
    assert_eq!(admin_status_code(addr, "configured-secret"), 200);
    assert_eq!(admin_status_code(addr, &root), 200, "a root user's etcd token");
    assert_eq!(admin_status_code(addr, &alice), 401, "a user without the root role");
    assert_eq!(admin_status_code(addr, "forged"), 401);
    // The server's own lines (the harness writes the command line it started, flags included, into the log).
    let log: String = std::fs::read_to_string(server.log_path())
        .expect("log")
        .lines()
        .filter(|l| !l.starts_with("===== harness"))
        .collect();
    assert!(!log.contains(&root), "root's etcd token in the log");
    assert!(!log.contains("configured-secret"), "the admin token in the log");
}
