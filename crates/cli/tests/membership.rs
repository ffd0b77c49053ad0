//! The etcd Cluster API through the real `etcdctl member ...`: the same script runs against a real
//! etcd 3.4 (the reference, so every expectation below is checked against etcd itself) and against
//! `meridian server`.

mod common;

use common::{Kind, Server, free_port};

/// One member as `member list -w json` shows it: (id, name, peer URLs, client URLs, isLearner).
type Listed = (u64, String, Vec<String>, Vec<String>, bool);

/// `member list -w json`, one entry per member.
fn members(server: &Server) -> Vec<Listed> {
    let o = server.etcdctl(&["member", "list", "-w", "json"]);
    assert!(o.ok(), "member list failed: {o:?}");
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("member list json");
    let strings = |x: &serde_json::Value| -> Vec<String> {
        x.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    v["members"]
        .as_array()
        .expect("members array")
        .iter()
        .map(|m| {
            (
                m["ID"].as_u64().expect("member ID"),
                m["name"].as_str().unwrap_or("").to_owned(),
                strings(&m["peerURLs"]),
                strings(&m["clientURLs"]),
                m["isLearner"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// The id `member add` printed ("Member <hex> added to cluster <hex>").
fn added_id(stdout: &str) -> u64 {
    let hex = stdout.split_whitespace().nth(1).expect("member add output");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("member id in {stdout:?}"))
}

fn fails_with(server: &Server, args: &[&str], message: &str) {
    fails_with_any(server, args, &[message]);
}

fn fails_with_any(server: &Server, args: &[&str], messages: &[&str]) {
    let o = server.etcdctl(args);
    assert!(
        o.code != 0 && messages.iter().any(|m| o.stderr.contains(m)),
        "{} `etcdctl {}`: expected failure with one of {messages:?}, got {o:?}",
        server.kind().label(),
        args.join(" ")
    );
}

fn cluster_api_on_one_member(kind: Kind) {
    let server = Server::start(kind);
    let label = kind.label();
    let own = members(&server);
    assert_eq!(own.len(), 1, "{label}: one member at start");
    let self_id = own[0].0;

    // Add a learner whose process never starts: allowed, and listed without name or client URLs.
    let url = format!("http://127.0.0.1:{}", free_port());
    let o = server.etcdctl(&["member", "add", "n2", &format!("--peer-urls={url}"), "--learner"]);
    assert!(o.ok() && o.stdout.contains("added to cluster"), "{label}: member add --learner: {o:?}");
    let id = added_id(&o.stdout);
    let list = members(&server);
    assert_eq!(list.len(), 2, "{label}: {list:?}");
    let learner = list.iter().find(|m| m.0 == id).expect("the learner is listed");
    assert_eq!(
        (learner.1.as_str(), learner.2.clone(), learner.3.is_empty(), learner.4),
        ("", vec![url.clone()], true, true),
        "{label}: the unstarted learner has no name and no client URLs"
    );
    assert!(!list.iter().find(|m| m.0 == self_id).expect("self").4, "{label}: the first member is a voter");

    // etcd's refusals, with etcd's messages.
    // etcd derives a new member's id from its peer URLs and the current second, so within the same
    // second it reports the id clash first; Meridian's ids come from the URL alone, and it names the
    // URL, which is etcd's answer whenever the seconds differ.
    let dup = ["member", "add", "dup", &format!("--peer-urls={url}")];
    match kind {
        Kind::Etcd => {
            fails_with_any(&server, &dup, &["etcdserver: Peer URLs already exists", "member ID already exist"])
        }
        Kind::Meridian => fails_with(&server, &dup, "etcdserver: Peer URLs already exists"),
    }
    fails_with(
        &server,
        &["member", "promote", &format!("{id:x}")],
        "etcdserver: can only promote a learner member which is in sync with leader",
    );
    fails_with(
        &server,
        &["member", "promote", &format!("{self_id:x}")],
        "etcdserver: can only promote a learner member",
    );
    fails_with(&server, &["member", "remove", "abcdef"], "etcdserver: member not found");
    fails_with(&server, &["member", "update", "abcdef", &format!("--peer-urls={url}")], "etcdserver: member not found");

    // Update the learner's peer URL, then remove it.
    let moved = format!("http://127.0.0.1:{}", free_port());
    let o = server.etcdctl(&["member", "update", &format!("{id:x}"), &format!("--peer-urls={moved}")]);
    assert!(o.ok(), "{label}: member update: {o:?}");
    let list = members(&server);
    assert_eq!(list.iter().find(|m| m.0 == id).map(|m| m.2.clone()), Some(vec![moved]), "{label}: {list:?}");
    let o = server.etcdctl(&["member", "remove", &format!("{id:x}")]);
    assert!(o.ok() && o.stdout.contains("removed from cluster"), "{label}: member remove: {o:?}");
    let list = members(&server);
    assert_eq!(list.iter().map(|m| m.0).collect::<Vec<_>>(), vec![self_id], "{label}: only the first member left");

    // The store still takes writes.
    let o = server.etcdctl(&["put", "after", "1"]);
    assert!(o.ok(), "{label}: put after membership changes: {o:?}");
}

#[test]
fn cluster_api_on_one_member_matches_etcd() {
    cluster_api_on_one_member(Kind::Etcd);
    cluster_api_on_one_member(Kind::Meridian);
}

// ---------------------------------------------------------------------------------------------
// Three real voters over the gRPC peer transport: add a learner, start it with --join, promote it,
// remove another voter, all while a writer keeps writing.

mod cluster {
    use std::fs::File;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use super::common::{Output, etcdctl, free_port, poll_until};

    /// Bound on the background writer, so a broken cluster cannot make it loop forever.
    const MAX_WRITES: usize = 20_000;
    /// Generous bound for elections, catch-up and membership changes on a loaded 2-core machine.
    const DEADLINE: Duration = Duration::from_secs(30);
    const POLL: Duration = Duration::from_millis(100);

    /// One `meridian server` process with its own directory and loopback ports.
    pub struct Proc {
        pub name: String,
        pub client: String,
        pub peer: String,
        dir: PathBuf,
        child: Option<Child>,
    }

    impl Proc {
        pub fn new(root: &std::path::Path, name: &str) -> Proc {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).expect("member dir");
            Proc {
                name: name.to_owned(),
                client: format!("http://127.0.0.1:{}", free_port()),
                peer: format!("http://127.0.0.1:{}", free_port()),
                dir,
                child: None,
            }
        }

        pub fn spawn(&mut self, extra: &[&str]) {
            let log = File::create(self.dir.join("server.log")).expect("server log");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_meridian"));
            cmd.arg("server")
                .args(["--name", &self.name, "--listen-client", &self.client, "--listen-peer", &self.peer])
                .arg("--data-dir")
                .arg(self.dir.join("data"))
                .args(extra)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("MERIDIAN_") {
                    cmd.env_remove(k);
                }
            }
            self.child = Some(cmd.spawn().expect("spawn meridian server"));
        }

        pub fn ctl(&self, args: &[&str]) -> Output {
            etcdctl(&self.client, args, None)
        }

        /// Kill by PID (this test started it) and reap.
        pub fn kill(&mut self) {
            if let Some(mut c) = self.child.take() {
                c.kill().ok();
                c.wait().ok();
            }
        }

        pub fn log_tail(&self) -> String {
            let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            if thread::panicking() && self.child.is_some() {
                eprintln!("----- {} log tail -----\n{}", self.name, self.log_tail());
            }
            self.kill();
        }
    }

    /// A topology of voters n1..n3, one per datacenter, so losing one leaves a majority.
    pub fn topology(procs: &[Proc]) -> String {
        let mut t = String::from("[policy]\nleader_preference = [\"dc-a\"]\n\n[timing]\npreset = \"lan\"\n");
        for (p, dc) in procs.iter().zip(["dc-a", "dc-b", "dc-c"]) {
            t.push_str(&format!(
                "\n[[members]]\nname = \"{}\"\ndc = \"{dc}\"\nzone = \"{dc}-1\"\nrole = \"voter\"\npeer_url = \"{}\"\nclient_url = \"{}\"\n",
                p.name, p.peer, p.client
            ));
        }
        t
    }

    /// Writes `w{i}` through etcd-client over the given endpoints until stopped; keeps acked keys.
    pub struct Writer {
        stop: Arc<AtomicBool>,
        acked: Arc<Mutex<Vec<String>>>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl Writer {
        pub fn start(endpoints: Vec<String>) -> Writer {
            let stop = Arc::new(AtomicBool::new(false));
            let acked = Arc::new(Mutex::new(Vec::new()));
            let (s, a) = (stop.clone(), acked.clone());
            let thread = thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    let opts = etcd_client::ConnectOptions::new()
                        .with_connect_timeout(Duration::from_secs(2))
                        .with_timeout(Duration::from_secs(5));
                    let mut client = etcd_client::Client::connect(endpoints, Some(opts)).await.expect("connect writer");
                    for i in 0..MAX_WRITES {
                        if s.load(Ordering::SeqCst) {
                            return;
                        }
                        let key = format!("w{i:05}");
                        if client.put(key.as_str(), "v", None).await.is_ok() {
                            a.lock().unwrap().push(key);
                        }
                    }
                });
            });
            Writer { stop, acked, thread: Some(thread) }
        }

        pub fn count(&self) -> usize {
            self.acked.lock().unwrap().len()
        }

        /// Wait until `n` more writes than now are acknowledged.
        pub fn wait_more(&self, n: usize, what: &str) {
            let target = self.count() + n;
            assert!(
                poll_until(DEADLINE, POLL, || self.count() >= target),
                "writes stalled ({what}) at {}",
                self.count()
            );
        }

        pub fn finish(mut self) -> Vec<String> {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                t.join().expect("writer thread");
            }
            std::mem::take(&mut *self.acked.lock().unwrap())
        }
    }

    pub fn json(o: &Output) -> serde_json::Value {
        assert!(o.ok(), "etcdctl failed: {o:?}");
        serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("json ({e}): {o:?}"))
    }

    /// `member list -w json` as (id, name, isLearner, has client URL).
    pub fn list(p: &Proc) -> Vec<(u64, String, bool, bool)> {
        let v = json(&p.ctl(&["member", "list", "-w", "json"]));
        v["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        (
                            m["ID"].as_u64().unwrap_or(0),
                            m["name"].as_str().unwrap_or("").to_owned(),
                            m["isLearner"].as_bool().unwrap_or(false),
                            m["clientURLs"].as_array().is_some_and(|a| !a.is_empty()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// (member id, leader id) from `endpoint status`.
    pub fn status(p: &Proc) -> Option<(u64, u64)> {
        let o = p.ctl(&["endpoint", "status", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).ok()?;
        let s = &v[0]["Status"];
        Some((s["header"]["member_id"].as_u64()?, s["leader"].as_u64()?))
    }

    /// The store revision `p` has applied (serializable read of its own state).
    pub fn local_revision(p: &Proc) -> i64 {
        let o = p.ctl(&["get", "none", "--consistency=s", "-w", "json"]);
        serde_json::from_str::<serde_json::Value>(o.stdout.trim())
            .ok()
            .and_then(|v| v["header"]["revision"].as_i64())
            .unwrap_or(0)
    }

    pub fn wait(what: &str, cond: impl FnMut() -> bool) {
        let start = Instant::now();
        assert!(poll_until(DEADLINE, POLL, cond), "timed out after {:?} waiting for {what}", start.elapsed());
    }
}

#[test]
fn learner_added_joined_promoted_and_a_voter_removed_while_writing() {
    use cluster::*;

    let root = tempfile::Builder::new().prefix("meridian-members-").tempdir().expect("tempdir");
    let mut procs: Vec<Proc> = ["n1", "n2", "n3"].iter().map(|n| Proc::new(root.path(), n)).collect();
    let topo = root.path().join("topology.toml");
    std::fs::write(&topo, topology(&procs)).expect("write topology");
    let topo = topo.to_string_lossy().into_owned();
    for p in procs.iter_mut() {
        // Small snapshot interval: the new member has to catch up through a snapshot.
        p.spawn(&["--topology", &topo, "--snapshot-count", "200"]);
    }
    wait("a leader on every voter", || procs.iter().all(|p| status(p).is_some_and(|(_, l)| l != 0)));
    let endpoints: Vec<String> = procs.iter().map(|p| p.client.clone()).collect();
    let writer = Writer::start(endpoints);
    writer.wait_more(250, "before the member add: past the first snapshot and log purge");

    let mut n4 = Proc::new(root.path(), "n4");
    let o = procs[0].ctl(&["member", "add", "n4", &format!("--peer-urls={}", n4.peer), "--learner"]);
    assert!(o.ok() && o.stdout.contains("added to cluster"), "member add --learner: {o:?}");
    let n4_id = added_id(&o.stdout);
    // Not running yet, so certainly not in sync: etcd's refusal.
    let o = procs[1].ctl(&["member", "promote", &format!("{n4_id:x}")]);
    assert!(
        o.code != 0 && o.stderr.contains("etcdserver: can only promote a learner member which is in sync with leader"),
        "promoting an unstarted learner must be refused: {o:?}"
    );

    n4.spawn(&["--join", "--dc", "dc-c", "--zone", "dc-c-2"]);
    // Caught up: its own state has every write acknowledged before now.
    let target = procs[0].ctl(&["get", "none", "-w", "json"]);
    let target = json(&target)["header"]["revision"].as_i64().expect("revision");
    wait("the learner to catch up", || local_revision(&n4) >= target);
    wait("the learner to publish its name and client URL", || {
        list(&procs[0]).iter().any(|m| m.0 == n4_id && m.1 == "n4" && m.3 && m.2)
    });
    writer.wait_more(50, "with the learner attached");
    let o = n4.ctl(&["member", "promote", &format!("{n4_id:x}")]);
    assert!(o.ok() && o.stdout.contains("promoted"), "promote the caught-up learner (asked on itself): {o:?}");
    for p in procs.iter().chain(std::iter::once(&n4)) {
        wait("every member to list 4 voters", || {
            let l = list(p);
            l.len() == 4 && l.iter().all(|m| !m.2)
        });
    }
    writer.wait_more(50, "after the promotion");

    // Remove a voter that is not the leader while writes go on.
    let (_, leader) = status(&procs[0]).expect("status");
    let gone = procs.iter().position(|p| status(p).is_some_and(|(id, _)| id != leader)).expect("a follower");
    let (gone_id, _) = status(&procs[gone]).expect("status");
    let o = procs[(gone + 1) % 3].ctl(&["member", "remove", &format!("{gone_id:x}")]);
    assert!(o.ok() && o.stdout.contains("removed from cluster"), "member remove: {o:?}");
    let mut removed = procs.remove(gone);
    removed.kill(); // etcd's removed members stop; ours is simply shut down here.
    procs.push(n4);
    for p in &procs {
        wait("every remaining member to list 3 voters", || {
            let l = list(p);
            l.len() == 3 && !l.iter().any(|m| m.0 == gone_id)
        });
    }
    writer.wait_more(100, "after the removal");
    let acked = writer.finish();
    assert!(acked.len() >= 300, "writes went on: {}", acked.len());

    // Nothing acknowledged is lost, and every member's HashKV agrees at the same revision.
    let rev = json(&procs[0].ctl(&["get", "none", "-w", "json"]))["header"]["revision"].as_i64().expect("revision");
    for p in &procs {
        wait("every member to apply up to the final revision", || local_revision(p) >= rev);
        let o = p.ctl(&["get", "w", "--prefix", "--keys-only", "--consistency=s"]);
        assert!(o.ok(), "{o:?}");
        let keys: std::collections::HashSet<&str> = o.stdout.lines().filter(|l| !l.is_empty()).collect();
        let missing: Vec<&String> = acked.iter().filter(|k| !keys.contains(k.as_str())).collect();
        assert!(missing.is_empty(), "{} lost {} acknowledged writes, e.g. {:?}", p.name, missing.len(), &missing[..1]);
    }
    let hashes: Vec<(String, u64)> = procs
        .iter()
        .map(|p| {
            let v = json(&p.ctl(&["endpoint", "hashkv", &format!("--rev={rev}"), "-w", "json"]));
            (p.name.clone(), v[0]["HashKV"]["hash"].as_u64().expect("hash"))
        })
        .collect();
    assert!(hashes.iter().all(|h| h.1 == hashes[0].1), "HashKV differs at revision {rev}: {hashes:?}");
}
