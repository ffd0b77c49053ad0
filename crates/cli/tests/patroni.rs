//! Patroni running PostgreSQL 15 across datacenters with the store as its DCS (Patroni's `etcd3` client talks
//! to etcd's HTTP/JSON gateway), end to end with real processes: the canonical layout (voters a1,a2 in dc-a,
//! b1,b2 in dc-b, c1 in dc-c, the learner sg1 in dc-d) and three Patroni + PostgreSQL nodes pa, pb, pc, one per
//! datacenter, each given the store members of its own datacenter. Synchronous mode, ttl 10, loop_wait 2.
//!
//! - the three nodes come up as one leader and two replicas, and `patronictl switchover` moves the leader;
//! - with the primary in dc-a, a writer inserts numbered rows through whichever node accepts writes and a
//!   sampler asks every node `pg_is_in_recovery()` at 10 Hz (`tests/patroni/workload.py`); then dc-a dies:
//!   kill -9 of a1, a2 and pa's Patroni, an immediate stop of pa's PostgreSQL. A node in dc-b or dc-c becomes
//!   primary, no sample tick ever sees two primaries, and every row acknowledged as committed is on the new
//!   primary;
//! - healed (a1, a2 and pa's Patroni restarted), pa rejoins as a replica of the new primary (pg_rewind);
//! - outside the window from the kill to the heal, Patroni's store client logs no wrong answer (an error reply, a
//!   reply it cannot read, lease or auth trouble) and never loses the store ("DCS is not accessible"); requests
//!   that merely timed out (a slow store on a loaded machine) are printed and counted.
//!
//! The store is Meridian unless `MERIDIAN_TEST_SUBJECT=etcd`, which runs the same script against five etcd 3.4
//! members laid out 2+2+1 (the reference). Runs as root (PostgreSQL and Patroni are started as `postgres`) and
//! needs `patroni`, `python3-etcd`, `python3-psycopg2` and PostgreSQL 15, which `.ci/run` installs; a missing
//! piece fails the test, it is not skipped. Timings are printed (`--nocapture`); they are measurements, not
//! assertions.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::net::SocketAddr;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::cluster::{Cluster, Options, canonical};
use common::http::http;
use common::{ETCD_BIN, Kind, etcdctl, free_port, poll_until};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PATRONI: &str = "/usr/bin/patroni";
const PATRONICTL: &str = "/usr/bin/patronictl";
/// psycopg2 is installed for Debian's python3 (Patroni's), not necessarily the first python3 on PATH.
const PYTHON: &str = "/usr/bin/python3";
const WORKLOAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/patroni/workload.py");
/// Bound on anything to happen on a loaded machine (bootstrap, a switchover, a failover, a rejoin).
const DEADLINE: Duration = Duration::from_secs(120);
/// Patroni's datacenters and node names.
const NODES: [(&str, &str); 3] = [("pa", "dc-a"), ("pb", "dc-b"), ("pc", "dc-c")];
/// Lines of a Patroni log that say talking to the store went wrong: a traceback, its etcd3 client's exceptions and
/// complaints (`patroni/dcs/etcd.py` and `etcd3.py`), "DCS is not accessible". Patroni's other ERROR lines (a
/// demoted primary's `pg_waldump` check, say) are about PostgreSQL and are printed, not counted.
const LOG_ERRORS: &str = concat!(
    r"Traceback|EtcdException|Etcd3Exception|Etcd3ClientError|Failed to get list of machines|Request to server .* failed|",
    r"watchprefix failed|KVCache\.run|refresh_lease|lease disappeared|Invalid auth token|not owner of the lease|",
    r"DCS is not accessible|Etcd version"
);

/// What in a Patroni log block says the store answered wrongly or was lost, rather than slowly: the etcd3 client's
/// exceptions for an error reply other than Unavailable and DeadlineExceeded (gRPC codes 14 and 4, which Patroni
/// retries: "etcdserver: request timed out" on a loaded machine), a reply it could not read, lease and auth
/// trouble, "DCS is not accessible" (no member answered for retry_timeout).
const WRONG: &str = concat!(
    r"patroni\.dcs\.etcd3\.(Unknown|InvalidArgument|NotFound|FailedPrecondition|LeaseNotFound|UserEmpty|AuthFailed|",
    r"PermissionDenied|AuthNotEnabled|InvalidAuthToken|UnsupportedEtcdVersion|Etcd3Error|Etcd3ClientError|",
    r"Etcd3Exception)\b|KeyError|TypeError|ValueError|JSONDecodeError|AttributeError|IndexError|UnicodeDecodeError|",
    r"Invalid auth token|not owner of the lease|lease disappeared|DCS is not accessible|Etcd version"
);

/// Seconds since the epoch, the workload's clock.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Run `cmd`, killing it after `limit`; its output either way.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let end = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().expect("try_wait").is_none() {
        child.kill().ok();
    }
    child.wait_with_output().expect("wait")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Five etcd 3.4 members laid out 2+2+1 like the canonical voters (etcd's defaults: 100 ms heartbeat, 1 s
/// election timeout, the `lan` preset's timings).
struct EtcdCluster {
    dir: tempfile::TempDir,
    /// (name, dc, client port, peer port, process)
    members: Vec<(String, String, u16, u16, Option<Child>)>,
}

impl EtcdCluster {
    fn start() -> EtcdCluster {
        let dir = tempfile::Builder::new().prefix("etcd-patroni-").tempdir().expect("tempdir");
        let members = canonical()
            .into_iter()
            .filter(|s| !s.learner)
            .map(|s| (s.name, s.dc, free_port(), free_port(), None))
            .collect();
        let mut cluster = EtcdCluster { dir, members };
        for i in 0..cluster.members.len() {
            cluster.spawn(i);
        }
        for i in 0..cluster.members.len() {
            let ep = format!("http://127.0.0.1:{}", cluster.members[i].2);
            let mut last = String::new();
            let healthy = poll_until(DEADLINE, Duration::from_millis(200), || {
                let out = etcdctl(&ep, &["endpoint", "health"], None);
                last = format!("{out:?}");
                out.ok()
            });
            assert!(healthy, "etcd member {} never healthy: {last}\n{}", cluster.members[i].0, cluster.log_tails());
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let initial: Vec<String> =
            self.members.iter().map(|(n, _, _, peer, _)| format!("{n}=http://127.0.0.1:{peer}")).collect();
        let (name, _, client, peer, child) = &mut self.members[i];
        assert!(child.is_none(), "{name} already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .expect("open etcd log");
        let err = log.try_clone().expect("clone log");
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        *child = Some(
            Command::new(ETCD_BIN)
                .arg("--name")
                .arg(&*name)
                .arg("--data-dir")
                .arg(self.dir.path().join(format!("{name}-data")))
                .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial.join(","), "--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "patroni-test"])
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(err))
                .spawn()
                .expect("spawn etcd"),
        );
    }

    fn index(&self, name: &str) -> usize {
        self.members.iter().position(|m| m.0 == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].4.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    fn log_tails(&self) -> String {
        let mut out = String::new();
        for (name, ..) in &self.members {
            let text = fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(out, "----- {name} -----\n{}", lines[lines.len().saturating_sub(30)..].join("\n"));
        }
        out
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails());
        }
        for i in 0..self.members.len() {
            self.kill9(i);
        }
    }
}

/// Patroni's store: a Meridian cluster (the subject) or etcd 3.4 (the reference).
enum Store {
    Meridian(Cluster),
    Etcd(EtcdCluster),
}

impl Store {
    fn start(kind: Kind) -> Store {
        match kind {
            Kind::Meridian => Store::Meridian(Cluster::start_with(&canonical(), &Options::preset("lan"))),
            Kind::Etcd => Store::Etcd(EtcdCluster::start()),
        }
    }

    /// `127.0.0.1:PORT` of the client listeners of the members in `dc`.
    fn hosts(&self, dc: &str) -> Vec<String> {
        match self {
            Store::Meridian(c) => {
                c.nodes.iter().filter(|n| n.spec.dc == dc).map(|n| format!("127.0.0.1:{}", n.client_port)).collect()
            }
            Store::Etcd(e) => e.members.iter().filter(|m| m.1 == dc).map(|m| format!("127.0.0.1:{}", m.2)).collect(),
        }
    }

    fn kill9(&mut self, name: &str) {
        match self {
            Store::Meridian(c) => {
                let i = c.index(name);
                c.kill9(i);
            }
            Store::Etcd(e) => {
                let i = e.index(name);
                e.kill9(i);
            }
        }
    }

    fn spawn(&mut self, name: &str) {
        match self {
            Store::Meridian(c) => {
                let i = c.index(name);
                c.spawn(i);
            }
            Store::Etcd(e) => {
                let i = e.index(name);
                e.spawn(i);
            }
        }
    }
}

/// One Patroni + PostgreSQL node.
struct Node {
    name: &'static str,
    rest_port: u16,
    pg_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn config(&self) -> PathBuf {
        self.dir.join(format!("{}.yml", self.name))
    }

    fn rest(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.rest_port))
    }
}

/// The three Patroni nodes, their logs and the workload; dropping it stops every process it started (Patroni by
/// PID, PostgreSQL with `pg_ctl stop -m immediate`), and prints the logs if the test is failing.
struct Patroni {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    uid: u32,
    gid: u32,
    workload: Option<Child>,
}

/// `postgres`'s uid and gid, from /etc/passwd.
fn postgres_ids() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no postgres user: apt-get install postgresql (.ci/run does)");
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().expect("uid"), f[3].parse().expect("gid"))
}

/// Fail (not skip) when something the test runs is missing.
fn require_tools() {
    for path in [PATRONI, PATRONICTL, PYTHON, &format!("{PG_BIN}/postgres"), &format!("{PG_BIN}/pg_ctl")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: this test needs `apt-get install patroni python3-etcd postgresql` (.ci/run installs them)"
        );
    }
    let etcd3 =
        Command::new(PYTHON).args(["-c", "import etcd, psycopg2, patroni.dcs.etcd3"]).output().expect("python3");
    assert!(
        etcd3.status.success(),
        "Patroni's etcd3 store cannot load (python3-etcd, python3-psycopg2): {}",
        text(&etcd3)
    );
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test runs as root: PostgreSQL and Patroni are started as the postgres user"
    );
}

impl Patroni {
    fn new(store: &Store) -> Patroni {
        let (uid, gid) = postgres_ids();
        let dir = tempfile::Builder::new().prefix("patroni-it-").tempdir().expect("tempdir");
        // postgres must reach its data dirs through this directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let scope =
            format!("it-{}-{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis());
        let mut nodes = Vec::new();
        for (name, dc) in NODES {
            let node =
                Node { name, rest_port: free_port(), pg_port: free_port(), dir: dir.path().join(name), child: None };
            fs::create_dir(&node.dir).expect("mkdir");
            chown(&node.dir, Some(uid), Some(gid)).expect("chown");
            fs::write(node.config(), config(&node, &scope, &store.hosts(dc))).expect("write config");
            nodes.push(node);
        }
        Patroni { dir, nodes, uid, gid, workload: None }
    }

    fn index(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("patroni-{}.log", self.nodes[i].name))
    }

    /// Start node `i`'s Patroni as postgres (it starts PostgreSQL), its output appended to its log.
    fn spawn(&mut self, i: usize) {
        let log = OpenOptions::new().create(true).append(true).open(self.log_path(i)).expect("open patroni log");
        let err = log.try_clone().expect("clone log");
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} already running", node.name);
        node.child = Some(
            Command::new(PATRONI)
                .arg(node.config())
                .current_dir(&node.dir)
                .env_clear()
                .envs([("PATH", "/usr/bin:/bin"), ("HOME", "/var/lib/postgresql"), ("USER", "postgres")])
                .envs([("LOGNAME", "postgres"), ("LANG", "C.UTF-8")])
                .uid(self.uid)
                .gid(self.gid)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(err))
                .spawn()
                .expect("spawn patroni"),
        );
    }

    /// kill -9 node `i`'s Patroni (its PostgreSQL keeps running: see [`Patroni::pg_stop`]).
    fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// `pg_ctl stop -m immediate` of node `i`'s PostgreSQL if it runs.
    fn pg_stop(&self, i: usize) {
        let data = self.nodes[i].data();
        if data.join("postmaster.pid").exists() {
            let out = run_bounded(
                Command::new(format!("{PG_BIN}/pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .args(["stop", "-m", "immediate"])
                    .env("PATH", "/usr/bin:/bin")
                    .uid(self.uid)
                    .gid(self.gid),
                Duration::from_secs(60),
            );
            if !out.status.success() {
                eprintln!("pg_ctl stop of {}: {}", self.nodes[i].name, text(&out));
            }
        }
    }

    /// Patroni's view of the cluster (`GET /cluster` of the first running node that answers), as
    /// name → (role, state, timeline).
    fn members(&self) -> Result<BTreeMap<String, (String, String, i64)>, String> {
        let mut last = "no Patroni running".to_string();
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            match http(n.rest(), "GET", "/cluster", "") {
                Ok((200, body)) => {
                    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{body}: {e}"))?;
                    let members = v["members"].as_array().cloned().unwrap_or_default();
                    return Ok(members
                        .iter()
                        .map(|m| {
                            let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
                            (s("name"), (s("role"), s("state"), m["timeline"].as_i64().unwrap_or(-1)))
                        })
                        .collect());
                }
                Ok((code, body)) => last = format!("{}: /cluster answered {code}: {body}", n.name),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The leader once there is one running leader and two synchronous standbys running on its timeline
    /// (`synchronous_node_count: 2`, so that either may be a switchover's candidate: Patroni refuses any other);
    /// and the leader is `leader` and `member` is one of the replicas if given.
    fn settled(&self, leader: Option<&str>, member: Option<&str>) -> Result<String, String> {
        let m = self.members()?;
        let leaders: Vec<_> = m.iter().filter(|(_, (role, state, _))| role == "leader" && state == "running").collect();
        let [(name, (_, _, timeline))] = leaders[..] else { return Err(format!("not one leader: {m:?}")) };
        let replicas: Vec<_> = m
            .iter()
            .filter(|(_, (role, state, tl))| {
                (role == "replica" || role == "sync_standby")
                    && (state == "running" || state == "streaming")
                    && tl == timeline
            })
            .collect();
        if replicas.len() != 2 || !replicas.iter().all(|(_, (role, ..))| role == "sync_standby") {
            return Err(format!("not two synchronous standbys on the leader's timeline: {m:?}"));
        }
        if leader.is_some_and(|l| l != name) || member.is_some_and(|x| !replicas.iter().any(|(n, _)| *n == x)) {
            return Err(format!("not yet as wanted (leader {leader:?}, replica {member:?}): {m:?}"));
        }
        Ok(name.clone())
    }

    fn wait_settled(&self, leader: Option<&str>, member: Option<&str>) -> String {
        let mut last = Err(String::new());
        let ok = poll_until(DEADLINE, Duration::from_millis(250), || {
            last = self.settled(leader, member);
            last.is_ok()
        });
        assert!(ok, "Patroni never settled (leader {leader:?}, replica {member:?}): {last:?}");
        last.unwrap()
    }

    fn patronictl(&self, args: &[&str]) -> Output {
        run_bounded(Command::new(PATRONICTL).arg("-c").arg(self.nodes[0].config()).args(args), DEADLINE)
    }

    fn switchover(&self, from: &str, to: &str) {
        let t0 = Instant::now();
        let out = self.patronictl(&["switchover", "--leader", from, "--candidate", to, "--force"]);
        assert!(
            out.status.success() && !text(&out).to_lowercase().contains("failed"),
            "patronictl switchover {from} -> {to}: {}",
            text(&out)
        );
        self.wait_settled(Some(to), None);
        eprintln!("switchover {from} -> {to}: {:?}", t0.elapsed());
    }

    /// The length of every Patroni log now (a mark for [`Patroni::errors`]).
    fn log_marks(&self) -> Vec<usize> {
        (0..self.nodes.len()).map(|i| fs::read_to_string(self.log_path(i)).map_or(0, |t| t.len())).collect()
    }

    /// Lines of every log matching `pattern` outside `[from, to)` (marks of [`Patroni::log_marks`]), or inside it,
    /// each with the lines after it that carry no timestamp of their own (a traceback's), as one block.
    fn grep(&self, pattern: &str, from: &[usize], to: &[usize], inside: bool) -> Vec<String> {
        let errors = regex::Regex::new(pattern).unwrap();
        let stamped = regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").unwrap();
        let mut found: Vec<String> = Vec::new();
        for i in 0..self.nodes.len() {
            let text = fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let parts = if inside { vec![&text[from[i]..to[i]]] } else { vec![&text[..from[i]], &text[to[i]..]] };
            for part in parts {
                let mut continued = false;
                for line in part.lines() {
                    if errors.is_match(line) {
                        found.push(format!("{}: {line}", self.nodes[i].name));
                        continued = true;
                    } else if continued && !stamped.is_match(line) {
                        let block = found.last_mut().unwrap();
                        block.push_str("\n    ");
                        block.push_str(line);
                    } else {
                        continued = false;
                    }
                }
            }
        }
        found
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.nodes.len() {
            let text = fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(
                out,
                "----- Patroni {} -----\n{}",
                self.nodes[i].name,
                lines[lines.len().saturating_sub(150)..].join("\n")
            );
        }
        out
    }
}

impl Drop for Patroni {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if let Some(mut w) = self.workload.take() {
            w.kill().ok();
            w.wait().ok();
        }
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
        for i in 0..self.nodes.len() {
            self.pg_stop(i);
        }
    }
}

fn config(node: &Node, scope: &str, hosts: &[String]) -> String {
    let dir = node.dir.display();
    format!(
        "scope: {scope}\nname: {name}\nrestapi:\n  listen: 127.0.0.1:{rest}\n  connect_address: 127.0.0.1:{rest}\n\
         etcd3:\n  hosts: [{hosts}]\n\
         bootstrap:\n  dcs:\n    ttl: 10\n    loop_wait: 2\n    retry_timeout: 3\n    maximum_lag_on_failover: 1048576\n\
         \x20   synchronous_mode: true\n    synchronous_node_count: 2\n    postgresql:\n      use_pg_rewind: true\n      parameters:\n\
         \x20       wal_log_hints: 'on'\n        max_connections: 40\n        max_wal_senders: 10\n\
         \x20       max_replication_slots: 10\n\
         \x20 initdb:\n  - encoding: UTF8\n  - data-checksums\n\
         postgresql:\n  listen: 127.0.0.1:{port}\n  connect_address: 127.0.0.1:{port}\n  data_dir: {dir}/data\n\
         \x20 bin_dir: {PG_BIN}\n  pgpass: {dir}/pgpass\n  use_pg_rewind: true\n\
         \x20 remove_data_directory_on_rewind_failure: true\n  remove_data_directory_on_diverged_timelines: true\n\
         \x20 authentication:\n    superuser: {{username: postgres}}\n    replication: {{username: postgres}}\n\
         \x20   rewind: {{username: postgres}}\n\
         \x20 parameters:\n    unix_socket_directories: '{dir}'\n    shared_buffers: 16MB\n\
         \x20 pg_hba:\n  - local all all trust\n  - host all all 127.0.0.1/32 trust\n\
         \x20 - host replication all 127.0.0.1/32 trust\n",
        name = node.name,
        rest = node.rest_port,
        port = node.pg_port,
        hosts = hosts.join(", "),
    )
}

/// The workload's samples: (tick, epoch seconds, node, role).
fn samples(out: &Path) -> Vec<(u64, f64, String, String)> {
    fs::read_to_string(out.join("samples"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 4 {
                return None;
            }
            Some((f[0].parse().ok()?, f[1].parse().ok()?, f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

/// The numbers in `acked` that node `name`'s table lacks.
fn missing_rows(pg: &Patroni, name: &str, acked: &[u64]) -> Vec<u64> {
    let port = pg.nodes[pg.index(name)].pg_port.to_string();
    let rows = run_bounded(
        Command::new(format!("{PG_BIN}/psql")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-Atc",
            "SELECT n FROM drill",
        ]),
        Duration::from_secs(30),
    );
    assert!(rows.status.success(), "reading the rows on {name}: {}", text(&rows));
    let have: BTreeSet<u64> =
        String::from_utf8_lossy(&rows.stdout).split_whitespace().filter_map(|n| n.parse().ok()).collect();
    acked.iter().filter(|n| !have.contains(n)).copied().collect()
}

/// The numbers whose INSERT the workload saw committed.
fn acked(out: &Path) -> Vec<u64> {
    fs::read_to_string(out.join("acked"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn patroni_fails_over_to_another_datacenter_without_losing_a_commit() {
    require_tools();
    let kind = Kind::subject();
    let t_start = Instant::now();
    let mut store = Store::start(kind);
    let mut pg = Patroni::new(&store);
    for i in 0..pg.nodes.len() {
        pg.spawn(i);
    }
    let leader = pg.wait_settled(None, None);
    eprintln!("store {}: one leader ({leader}) and two replicas after {:?}", kind.label(), t_start.elapsed());
    let list = pg.patronictl(&["list"]);
    let listed = text(&list);
    assert!(list.status.success(), "patronictl list: {listed}");
    assert_eq!(listed.matches("| Leader ").count(), 1, "patronictl list: {listed}");
    assert_eq!(listed.matches("| Replica ").count() + listed.matches("| Sync Standby ").count(), 2, "{listed}");

    // A switchover, ending with the primary in dc-a.
    let to = if leader == "pa" { "pb" } else { "pa" };
    pg.switchover(&leader, to);
    if to != "pa" {
        pg.switchover(to, "pa");
    }

    // The drill: writes and role samples throughout; dc-a dies.
    let out = pg.dir.path().join("drill");
    fs::create_dir(&out).expect("mkdir drill");
    let mut workload = Command::new(PYTHON);
    workload.arg(WORKLOAD).arg("--out").arg(&out).args(["--table", "drill", "--hz", "10"]);
    for n in &pg.nodes {
        workload.arg("--node").arg(format!("{}={}", n.name, n.pg_port));
    }
    pg.workload = Some(workload.stdin(Stdio::piped()).spawn().expect("spawn workload.py"));
    assert!(
        poll_until(Duration::from_secs(30), Duration::from_millis(100), || acked(&out).len() >= 50),
        "the writer never got 50 rows committed through pa: {}",
        fs::read_to_string(out.join("writer-errors")).unwrap_or_default()
    );
    let pa = pg.index("pa");
    let marks_kill = pg.log_marks();
    let t_kill = now();
    let kill = Instant::now();
    store.kill9("a1");
    store.kill9("a2");
    pg.kill9(pa);
    pg.pg_stop(pa);
    let mut promoted = None;
    assert!(
        poll_until(DEADLINE, Duration::from_millis(100), || {
            promoted = samples(&out).into_iter().find(|(_, t, n, role)| *t >= t_kill && n != "pa" && role == "primary");
            promoted.is_some()
        }),
        "no node in dc-b or dc-c became primary: {:?}",
        pg.members()
    );
    let (_, t_primary, new_primary, _) = promoted.unwrap();
    eprintln!("dc-a killed: {new_primary} primary after {:.2} s", t_primary - t_kill);
    let before = acked(&out).len();
    assert!(
        poll_until(Duration::from_secs(30), Duration::from_millis(100), || acked(&out).len() >= before + 20),
        "no writes committed through the new primary {new_primary}: {}",
        fs::read_to_string(out.join("writer-errors")).unwrap_or_default()
    );
    // Every row acknowledged so far is on the new primary (the writer goes on through the heal).
    let acked_before = acked(&out);
    let lost = missing_rows(&pg, &new_primary, &acked_before);
    assert!(lost.is_empty(), "acknowledged rows missing on {new_primary}: {lost:?} of {}", acked_before.len());

    // Healed: pa rejoins as a replica of the new primary; the workload samples the heal too.
    let heal = Instant::now();
    store.spawn("a1");
    store.spawn("a2");
    pg.spawn(pa);
    let mut settled = Err(String::new());
    poll_until(DEADLINE, Duration::from_millis(250), || {
        settled = pg.settled(None, Some("pa"));
        settled.is_ok()
    });
    let mut w = pg.workload.take().unwrap();
    drop(w.stdin.take());
    let exited =
        poll_until(Duration::from_secs(30), Duration::from_millis(50), || w.try_wait().ok().flatten().is_some());
    if !exited {
        w.kill().ok();
    }
    assert!(w.wait().expect("wait workload").success(), "workload.py failed");

    // Never two primaries in one tick, from before the kill to the end of the heal, and at least 5 samples a
    // second of every node.
    let samples = samples(&out);
    let mut primaries: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (tick, _, n, role) in &samples {
        if role == "primary" {
            primaries.entry(*tick).or_default().push(n);
        }
    }
    let doubles: Vec<_> = primaries.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(doubles.is_empty(), "two primaries at once at ticks {doubles:?} (Patroni: {:?})", pg.members());
    let span = samples.last().map(|s| s.1).unwrap_or(0.0) - samples.first().map(|s| s.1).unwrap_or(0.0);
    for (name, _) in NODES {
        let count = samples.iter().filter(|s| s.2 == name).count();
        assert!(count as f64 >= 5.0 * span, "{name} sampled {count} times in {span:.1} s");
    }
    let leader = settled.unwrap_or_else(|e| panic!("pa never came back as a replica: {e}"));
    assert_eq!(leader, new_primary, "leadership moved during the heal");
    let acked = acked(&out);
    let lost = missing_rows(&pg, &leader, &acked);
    assert!(lost.is_empty(), "acknowledged rows missing on {leader} after the heal: {lost:?} of {}", acked.len());
    eprintln!(
        "healed: pa a replica of {new_primary} after {:?} (drill {:?}); {} rows acknowledged, all on {leader}; {} \
         samples, never two primaries",
        heal.elapsed(),
        kill.elapsed(),
        acked.len(),
        samples.len()
    );
    let marks_healed = pg.log_marks();

    // No errors in any Patroni log outside the deliberate outage.
    // Outside it, a wrong answer or a lost store fails the test; requests that timed out (a slow store: a loaded
    // machine, a debug build) and their tracebacks are printed and counted.
    let wrong = regex::Regex::new(WRONG).unwrap();
    let (errors, slow): (Vec<String>, Vec<String>) =
        pg.grep(LOG_ERRORS, &marks_kill, &marks_healed, false).into_iter().partition(|b| wrong.is_match(b));
    assert!(errors.is_empty(), "Patroni's store client failed outside the outage:\n{}", errors.join("\n"));
    eprintln!("store requests that failed slowly outside the outage: {}\n{}", slow.len(), slow.join("\n"));
    let during = pg.grep(LOG_ERRORS, &marks_kill, &marks_healed, true);
    eprintln!("store errors during the outage (the killed members are unreachable):\n{}", during.join("\n"));
    let other = pg.grep(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR: ", &[0; 3], &pg.log_marks(), true);
    eprintln!("all of Patroni's ERROR lines:\n{}", other.join("\n"));
    eprintln!("total {:?}", t_start.elapsed());
}
