//! Locks and elections with real processes, against etcd 3.4 and Meridian alike:
//! - `etcdctl lock` and `etcdctl elect` (clientv3/concurrency on the client, over KV, Watch and Lease): the same
//!   normalised transcripts, with a second locker waiting for the first, a holder that dies, and an observer
//!   that sees the next leader after the first resigns;
//! - the `etcd-client` crate's lock and election clients (the Lock and Election services of the server);
//! - Go's clientv3: the `concurrency` Mutex and Election and the `v3lock`/`v3election` services, driven by
//!   `tests/go/lockcheck` (built here, offline, from Debian's `golang-etcd-server-dev`), the same output from
//!   both servers;
//! - a lock and an election served by followers of a three-voter Meridian cluster (forwarded writes,
//!   linearizable reads through the leader, waits on each member's own watch hub);
//! - the classic fencing failure: a holder paused (SIGSTOP) past its lease, a second holder, the first resuming
//!   and writing; a fenced write is refused, an unfenced one is the double write.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::cluster::{Cluster, LEADER_DEADLINE, voter};
use common::transcript::{Session, differential};
use common::{Kind, Server, WatchProc, assert_grpc, block_on_fresh, connect, on_both, poll_until};
use etcd_client::{Client, Compare, CompareOp, GetOptions, LockOptions, ProclaimOptions, ResignOptions, Txn, TxnOp};
use tonic::Code;

/// Bound on every wait for a background process.
const WAIT: Duration = Duration::from_secs(20);

/// Polls (quietly) until `prefix` holds `n` keys.
fn wait_keys(s: &mut Session, prefix: &str, n: usize) {
    // etcd leaves `count` out of the JSON when it is 0.
    let counted = poll_until(WAIT, Duration::from_millis(50), || {
        let out = s.run_quiet(&["get", prefix, "--prefix", "--keys-only", "-w", "json"]);
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v.get("count").and_then(serde_json::Value::as_u64))
            .unwrap_or(0)
            == n as u64
    });
    s.expect(counted, format!("{prefix} never held {n} keys"));
}

/// Expects a background etcdctl that queued behind another to have printed nothing yet.
fn still_waiting(s: &mut Session, w: &mut WatchProc, who: &str) {
    let early = w.wait_lines(1, Duration::ZERO);
    s.expect(early.is_empty(), format!("{who} was answered while another held the lock: {early:?}"));
}

#[test]
fn etcdctl_lock_matches_etcd() {
    differential("etcdctl_lock", |s| {
        s.lease_keys_under("jobs");
        s.note("a lock around a command: the command sees the key and the revision it was taken at");
        s.run(&["lock", "jobs", "--", "sh", "-c", "echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"]);
        s.run(&["lock", "jobs", "--", "false"]);
        s.run(&["lock"]);
        s.run(&["get", "jobs/", "--prefix"]);

        s.note("a second locker waits until the first releases (SIGTERM unlocks)");
        let first_args = ["lock", "jobs"];
        let mut first = s.spawn(&first_args);
        wait_keys(s, "jobs/", 1);
        let second_args = ["lock", "jobs", "--", "echo", "the second locker holds it"];
        let mut second = s.spawn(&second_args);
        wait_keys(s, "jobs/", 2);
        s.run(&["get", "jobs/", "--prefix", "--sort-by=CREATE", "--order=ASCEND", "--keys-only"]);
        still_waiting(s, &mut second, "the second locker");
        // A SIGTERM before the holder's own Lock call answered would cancel it: wait for the key it prints.
        let held = first.wait_lines(1, WAIT);
        first.signal("TERM");
        s.finish_background_after(first, &first_args, held, WAIT);
        s.finish_background(second, &second_args, WAIT);
        s.run(&["get", "jobs/", "--prefix"]);

        s.note("a holder that dies: its key goes with its lease (--ttl 2), then the waiter holds the lock");
        let dead_args = ["lock", "--ttl", "2", "jobs"];
        let dead = s.spawn(&dead_args);
        wait_keys(s, "jobs/", 1);
        let next_args = ["lock", "jobs", "--", "echo", "the holder died; the waiter holds it"];
        let mut next = s.spawn(&next_args);
        wait_keys(s, "jobs/", 2);
        still_waiting(s, &mut next, "the locker behind the holder that dies");
        s.collect(dead, &dead_args, 2);
        s.finish_background(next, &next_args, WAIT);
    });
}

#[test]
fn etcdctl_elect_matches_etcd() {
    differential("etcdctl_elect", |s| {
        s.lease_keys_under("leader");
        s.run(&["elect"]);
        s.run(&["elect", "leader"]);
        s.run(&["elect", "-l", "leader", "p"]);

        s.note("an observer, two candidates; the first resigns (SIGTERM) and the second leads");
        let observer_args = ["elect", "-l", "leader"];
        let observer = s.spawn(&observer_args);
        let first_args = ["elect", "leader", "proposal-1"];
        let mut first = s.spawn(&first_args);
        wait_keys(s, "leader/", 1);
        let second_args = ["elect", "leader", "proposal-2"];
        let mut second = s.spawn(&second_args);
        wait_keys(s, "leader/", 2);
        s.run(&["get", "leader/", "--prefix", "--sort-by=CREATE", "--order=ASCEND"]);
        still_waiting(s, &mut second, "the second candidate");
        let leads = first.wait_lines(2, WAIT);
        first.signal("TERM");
        s.finish_background_after(first, &first_args, leads, WAIT);
        s.collect(observer, &observer_args, 4);
        // The observer may see the second candidate lead before the candidate's own Campaign call has answered;
        // a SIGTERM in between cancels that call ("context canceled"), so wait for its two lines first.
        let led = second.wait_lines(2, WAIT);
        s.expect(led.len() == 2, format!("the second candidate leads once the first resigned: {led:?}"));
        second.signal("TERM");
        s.finish_background_after(second, &second_args, led, WAIT);
        s.run(&["get", "leader/", "--prefix"]);
    });
}

fn key_str(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

async fn create_revision(c: &mut Client, key: &[u8]) -> i64 {
    c.get(key, None).await.unwrap().kvs().first().map_or(0, |kv| kv.create_revision())
}

async fn lock_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    let (l1, l2) = (c.lease_grant(60, None).await.unwrap().id(), c.lease_grant(60, None).await.unwrap().id());
    let first = c.lock("crate-lock", Some(LockOptions::new().with_lease(l1))).await.unwrap();
    assert_eq!(key_str(first.key()), format!("crate-lock/{l1:x}"), "[{k}] the lock key");
    let token1 = create_revision(&mut c, first.key()).await;
    assert_eq!(first.header().unwrap().revision(), token1, "[{k}] an uncontended lock is taken at its key's revision");

    let mut waiter = c.clone();
    let second = tokio::spawn(async move { waiter.lock("crate-lock", Some(LockOptions::new().with_lease(l2))).await });
    let mut count = 0;
    for _ in 0..400 {
        count = c.get("crate-lock/", Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap().count();
        if count == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(count, 2, "[{k}] the second locker queued");
    assert!(!second.is_finished(), "[{k}] the second locker got the lock while the first held it");

    // A write fenced by the first holder's key and token goes through while it holds the lock.
    let fenced = |key: &[u8], token: i64, value: &str| {
        Txn::new().when([Compare::create_revision(key, CompareOp::Equal, token)]).and_then([TxnOp::put(
            "crate-resource",
            value,
            None,
        )])
    };
    assert!(c.txn(fenced(first.key(), token1, "first")).await.unwrap().succeeded(), "[{k}] holder's fenced write");
    c.unlock(first.key()).await.unwrap();
    let second = tokio::time::timeout(WAIT, second).await.expect("the second locker waits forever").unwrap().unwrap();
    assert_eq!(key_str(second.key()), format!("crate-lock/{l2:x}"), "[{k}] the second lock key");
    let token2 = create_revision(&mut c, second.key()).await;
    assert!(token2 > token1, "[{k}] tokens grow: {token2} after {token1}");
    assert!(!c.txn(fenced(first.key(), token1, "late")).await.unwrap().succeeded(), "[{k}] stale fenced write");
    assert!(c.txn(fenced(second.key(), token2, "second")).await.unwrap().succeeded(), "[{k}] new holder's write");

    assert_grpc(
        kind,
        c.lock("crate-x", Some(LockOptions::new().with_lease(0x1234))).await,
        Code::Unknown,
        "etcdserver: requested lease not found",
        "lock with an unknown lease",
    );
    assert_grpc(kind, c.unlock("").await, Code::Unknown, "etcdserver: key is not provided", "unlock without a key");
    c.unlock(second.key()).await.unwrap();
}

#[tokio::test]
async fn etcd_client_crate_locks() {
    on_both(|kind, ep, _| Box::pin(lock_scenario(kind, ep))).await;
}

async fn election_scenario(kind: Kind, ep: String) {
    let k = kind.label();
    let mut c = connect(&ep).await;
    assert_grpc(kind, c.leader("crate-e").await, Code::Unknown, "election: no leader", "leader of an empty election");
    let (la, lb) = (c.lease_grant(60, None).await.unwrap().id(), c.lease_grant(60, None).await.unwrap().id());
    let a = c.campaign("crate-e", "a1", la).await.unwrap();
    let ka = a.leader().unwrap().clone();
    assert_eq!((key_str(ka.key()), ka.lease()), (format!("crate-e/{la:x}"), la), "[{k}] leader key");
    assert_eq!(ka.rev(), a.header().unwrap().revision(), "[{k}] the leader key's revision");

    // etcd sends an Observe stream's headers with its first message, so the call returns once there is a leader.
    let mut observer = c.observe("crate-e").await.unwrap();

    let mut next = async || {
        let msg = tokio::time::timeout(WAIT, observer.message()).await.expect("observer stalled").unwrap();
        msg.and_then(|m| m.kv().map(|kv| key_str(kv.value()))).expect("the observer's stream ended")
    };
    assert_eq!(next().await, "a1", "[{k}] observed first leader");

    let mut b_client = c.clone();
    let b = tokio::spawn(async move { b_client.campaign("crate-e", "b1", lb).await });
    c.proclaim("a2", Some(ProclaimOptions::new().with_leader(ka.clone()))).await.unwrap();
    assert_eq!(next().await, "a2", "[{k}] observed proclaim");
    let leader = c.leader("crate-e").await.unwrap();
    assert_eq!(key_str(leader.kv().unwrap().value()), "a2", "[{k}] leader value");

    let stale =
        etcd_client::LeaderKey::new().with_name("crate-e").with_key(ka.key()).with_rev(ka.rev() + 1).with_lease(la);
    assert_grpc(
        kind,
        c.proclaim("x", Some(ProclaimOptions::new().with_leader(stale.clone()))).await,
        Code::Unknown,
        "election: not leader",
        "proclaim at another revision",
    );
    assert_grpc(kind, c.proclaim("x", None).await, Code::Unknown, "\"leader\" field must be provided", "no leader");
    c.resign(Some(ResignOptions::new().with_leader(stale))).await.unwrap();
    assert!(!b.is_finished(), "[{k}] the second candidate leads before the first resigned");

    c.resign(Some(ResignOptions::new().with_leader(ka))).await.unwrap();
    let b = tokio::time::timeout(WAIT, b).await.expect("the second candidate waits forever").unwrap().unwrap();
    assert_eq!(key_str(b.leader().unwrap().key()), format!("crate-e/{lb:x}"), "[{k}] the second leader");
    assert_eq!(next().await, "b1", "[{k}] observed the next leader");
    c.resign(Some(ResignOptions::new().with_leader(b.leader().unwrap().clone()))).await.unwrap();
}

#[tokio::test]
async fn etcd_client_crate_elections() {
    on_both(|kind, ep, _| Box::pin(election_scenario(kind, ep))).await;
}

#[test]
fn locks_and_elections_work_through_followers() {
    let cluster = Cluster::start(&[voter("a1", "dc-a"), voter("b1", "dc-b"), voter("c1", "dc-c")], "lan");
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let followers: Vec<String> = (0..3).filter(|i| *i != leader).map(|i| cluster.nodes[i].endpoint()).collect();
    let leader_ep = cluster.nodes[leader].endpoint();
    block_on_fresh(move || {
        Box::pin(async move {
            let (mut one, mut two) = (connect(&followers[0]).await, connect(&followers[1]).await);
            let mut at_leader = connect(&leader_ep).await;
            let l1 = one.lease_grant(60, None).await.unwrap().id();
            let l2 = two.lease_grant(60, None).await.unwrap().id();
            let held = one.lock("fl", Some(LockOptions::new().with_lease(l1))).await.unwrap();
            let mut waiter = two.clone();
            let second = tokio::spawn(async move { waiter.lock("fl", Some(LockOptions::new().with_lease(l2))).await });
            let mut queued = false;
            for _ in 0..400 {
                let r = at_leader.get("fl/", Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap();
                if r.count() == 2 {
                    queued = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert!(queued && !second.is_finished(), "the second locker queues behind the first");

            // An observer on one follower sees what candidates on the other do.
            one.campaign("fe", "x", l1).await.unwrap();
            let mut observer = two.observe("fe").await.unwrap();
            let mut next = async || {
                let msg = tokio::time::timeout(WAIT, observer.message()).await.expect("observer stalled").unwrap();
                msg.and_then(|m| m.kv().map(|kv| key_str(kv.value()))).expect("the observer's stream ended")
            };
            assert_eq!(next().await, "x");

            one.unlock(held.key()).await.unwrap();
            let got = tokio::time::timeout(WAIT, second).await.expect("the waiter on a follower waits forever");
            assert_eq!(key_str(got.unwrap().unwrap().key()), format!("fl/{l2:x}"));

            // The leader of the election loses its lease: the observer sees the next candidate.
            at_leader.lease_revoke(l1).await.unwrap();
            two.campaign("fe", "z", l2).await.unwrap();
            assert_eq!(next().await, "z");
        })
    });
}

/// Builds `tests/go/lockcheck` offline in GOPATH mode against Debian's etcd 3.4 sources
/// (`/usr/share/gocode`), into `dir`; returns the binary.
fn build_lockcheck(dir: &Path) -> PathBuf {
    let go_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/lockcheck");
    let gopath = dir.join("gopath");
    let pkg = gopath.join("src/lockcheck");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::copy(go_src.join("main.go"), pkg.join("main.go")).unwrap();
    let bin = dir.join("lockcheck");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("lockcheck")
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .output()
        .unwrap_or_else(|e| panic!("run `go` ({e}): install golang-go and golang-etcd-server-dev (see .ci/run)"));
    assert!(out.status.success(), "go build lockcheck failed:\n{}", String::from_utf8_lossy(&out.stderr));
    bin
}

/// Runs one lockcheck scenario against `server`; its stdout, or a panic with its stderr.
fn lockcheck(bin: &Path, scenario: &str, server: &Server) -> String {
    let out = Command::new(bin).args([scenario, &server.endpoint()]).output().expect("run lockcheck");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // etcd's client logs its retries as JSON lines; anything else on stderr is the program's complaint.
    let complaints: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('{')).collect();
    assert!(
        out.status.success(),
        "lockcheck {scenario} against {}: {}\n{}",
        server.kind().label(),
        out.status,
        complaints.join("\n")
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn go_clientv3_concurrency_and_services_match_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_lockcheck(dir.path());
    let (etcd, subject) = thread::scope(|sc| {
        let e = sc.spawn(|| Server::start(Kind::Etcd));
        let m = sc.spawn(|| Server::start(Kind::subject()));
        (e.join().unwrap(), m.join().unwrap())
    });
    let expected: [(&str, &[&str]); 3] = [
        ("mutex", &["m2 waits while m1 holds it", "m1 fenced write after its unlock: false", "resource holds \"m2\""]),
        ("election", &["the observer sees leader value \"e2-first\"", "the observer sees leader value \"e4\""]),
        (
            "services",
            &[
                "the cancelled locker's key is deleted",
                "lock with an unknown lease: Unknown \"etcdserver: requested lease not found\"",
                "proclaim at another revision: Unknown \"election: not leader\"",
                "the observe stream reports \"v3\"",
            ],
        ),
    ];
    for (scenario, must_say) in expected {
        let (reference, got) = thread::scope(|sc| {
            let r = sc.spawn(|| lockcheck(&bin, scenario, &etcd));
            let g = sc.spawn(|| lockcheck(&bin, scenario, &subject));
            (r.join().unwrap(), g.join().unwrap())
        });
        assert_eq!(got, reference, "lockcheck {scenario}: {} differs from etcd 3.4", subject.kind().label());
        for line in must_say {
            assert!(reference.lines().any(|l| l == *line), "lockcheck {scenario} never said {line:?}:\n{reference}");
        }
    }
}

/// A resource that checks fencing tokens: it accepts a write only with a token at least as large as the
/// largest it has accepted, so a holder whose lock passed to another (a larger token) is refused.
#[derive(Default)]
struct FencedResource {
    largest: i64,
    accepted: Vec<&'static str>,
}

impl FencedResource {
    fn write(&mut self, who: &'static str, token: i64) -> bool {
        if token < self.largest {
            return false;
        }
        self.largest = token;
        self.accepted.push(who);
        true
    }
}

/// What one run of the paused-holder scenario saw.
#[derive(Debug, PartialEq)]
struct Fencing {
    /// A's output after it resumed: the fenced txn's answer, then the plain put's.
    a_after_resume: Vec<String>,
    /// Whether B's token exceeded A's.
    b_token_larger: bool,
    /// The fenced key's value and version: only B's write may be there.
    fenced: (String, i64),
    /// The unfenced key's value and version: B wrote, then A overwrote it (the double write).
    unfenced: (String, i64),
    /// The writers the token-checking resource accepted.
    resource_accepted: Vec<&'static str>,
}

async fn value_and_version(c: &mut Client, key: &str) -> (String, i64) {
    let resp = c.get(key, None).await.unwrap();
    resp.kvs().first().map_or((String::new(), 0), |kv| (key_str(kv.value()), kv.version()))
}

/// Holder A (`etcdctl lock --ttl 2` running a script) takes the lock, is paused with SIGSTOP past its lease,
/// B takes the lock and writes, A is resumed and writes: through a txn fenced by its lock key's create revision,
/// plainly, and to a resource that checks tokens.
fn paused_holder(server: &Server) -> Fencing {
    let ep = server.endpoint();
    let go = server.dir().join("a-may-write");
    let script = format!(
        "echo \"holds $ETCD_LOCK_KEY $ETCD_LOCK_REV\"; \
         i=0; while [ ! -e '{go}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         printf 'c(\"%s\") = \"%s\"\\n\\nput fenced A\\n\\n\\n' \"$ETCD_LOCK_KEY\" \"$ETCD_LOCK_REV\" \
           | ETCDCTL_API=3 etcdctl --endpoints={ep} txn; \
         ETCDCTL_API=3 etcdctl --endpoints={ep} put unfenced A",
        go = go.display()
    );
    let mut a = WatchProc::spawn_in_group(&ep, &["lock", "--ttl", "2", "fence", "--", "sh", "-c", &script]);
    let holds = a.wait_lines(1, WAIT);
    let (a_key, a_token) = match holds.first().map(|l| l.split_whitespace().collect::<Vec<_>>()).as_deref() {
        Some(["holds", key, token]) => (key.to_string(), token.parse::<i64>().expect("A's token")),
        other => panic!("[{}] A never held the lock: {other:?}", server.kind().label()),
    };

    // A stops (its lock client and its script) for longer than its lease lives.
    a.signal_group("STOP");
    let ep_b = ep.clone();
    let (b_token, a_key_left) = block_on_fresh(move || {
        Box::pin(async move {
            let mut c = connect(&ep_b).await;
            let lease = c.lease_grant(60, None).await.unwrap().id();
            // Answered once A's lease has expired and its key is gone.
            let b = c.lock("fence", Some(LockOptions::new().with_lease(lease))).await.unwrap();
            let b_token = create_revision(&mut c, b.key()).await;
            let txn = Txn::new()
                .when([Compare::create_revision(b.key(), CompareOp::Equal, b_token)])
                .and_then([TxnOp::put("fenced", "B", None)]);
            assert!(c.txn(txn).await.unwrap().succeeded(), "B's fenced write");
            c.put("unfenced", "B", None).await.unwrap();
            (b_token, create_revision(&mut c, a_key.as_bytes()).await)
        })
    });
    assert_eq!(a_key_left, 0, "A's key outlived its lease");
    let mut resource = FencedResource::default();
    assert!(resource.write("B", b_token), "the resource refused B");

    // A resumes and goes on with its critical section as if it still held the lock.
    std::fs::write(&go, b"").unwrap();
    a.signal_group("CONT");
    let exit = a.wait_exit(WAIT);
    let a_after_resume: Vec<String> = a.wait_lines(usize::MAX, Duration::from_secs(5));
    let (_, a_err, _) = a.kill();
    assert_eq!(exit, Some(0), "[{}] A's lock command failed: {a_err}", server.kind().label());
    resource.write("A", a_token);

    let ep_check = ep.clone();
    let (fenced, unfenced) = block_on_fresh(move || {
        Box::pin(async move {
            let mut c = connect(&ep_check).await;
            (value_and_version(&mut c, "fenced").await, value_and_version(&mut c, "unfenced").await)
        })
    });
    Fencing {
        a_after_resume: a_after_resume.into_iter().filter(|l| !l.is_empty()).collect(),
        b_token_larger: b_token > a_token,
        fenced,
        unfenced,
        resource_accepted: resource.accepted,
    }
}

#[test]
fn a_paused_holder_is_fenced_off_and_unfenced_writes_collide() {
    let (reference, got) = thread::scope(|sc| {
        let r = sc.spawn(|| paused_holder(&Server::start(Kind::Etcd)));
        let g = sc.spawn(|| paused_holder(&Server::start(Kind::subject())));
        (r.join().unwrap(), g.join().unwrap())
    });
    let expected = Fencing {
        // The fenced txn fails (A's key is gone); the plain put succeeds.
        a_after_resume: vec!["FAILURE".into(), "OK".into()],
        b_token_larger: true,
        // Only B's fenced write landed.
        fenced: ("B".into(), 1),
        // B wrote, then A overwrote it after its lock had passed to B: the double write fencing prevents.
        unfenced: ("A".into(), 2),
        // The token-checking resource refused A's late write.
        resource_accepted: vec!["B"],
    };
    assert_eq!(reference, expected, "etcd 3.4 (the scenario itself)");
    assert_eq!(got, expected, "{}", Kind::subject().label());
}
