//! Multi-process cluster harness: writes a topology file into a temp dir, starts every member as a real
//! `meridian server --topology FILE --name X --data-dir D --listen-admin URL` process on loopback ports from
//! free-port probing (each its own admin, Consul HTTP and DNS ports too), and offers kill -9 / restart by PID
//! and cluster-wide checks (agreed leader, HashKV agreement). [`Options`] add a leader preference with a
//! failback hold and `--enable-fault-injection`; the admin HTTP API of every member is reachable through
//! [`Cluster::admin_status`] and [`Cluster::put_faults_everywhere`].

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meridian_server::admin::StatusReport;

use super::http::http;
use super::{block_on_fresh, free_port, try_connect};

/// How long a cluster may take to agree on a leader after starting or after a fault.
pub const LEADER_DEADLINE: Duration = Duration::from_secs(60);

/// A loopback port free for both TCP and UDP (DNS listens on both).
fn free_dns_port() -> u16 {
    for _ in 0..1000 {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("could not find a loopback port free for TCP and UDP");
}

/// One member of a test topology.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Member name.
    pub name: String,
    /// Datacenter.
    pub dc: String,
    /// Learner instead of voter.
    pub learner: bool,
}

/// `name@dc` voters and learners.
pub fn voter(name: &str, dc: &str) -> Spec {
    Spec { name: name.into(), dc: dc.into(), learner: false }
}

/// A learner.
pub fn learner(name: &str, dc: &str) -> Spec {
    Spec { name: name.into(), dc: dc.into(), learner: true }
}

/// Three voters in three DCs plus a learner in a fourth.
pub fn three_dcs_and_a_learner() -> Vec<Spec> {
    vec![voter("v1", "dc-a"), voter("v2", "dc-b"), voter("v3", "dc-c"), learner("l1", "dc-d")]
}

/// The canonical layout: voters 2+2+1 over three DCs plus a learner.
pub fn canonical() -> Vec<Spec> {
    vec![
        voter("a1", "dc-a"),
        voter("a2", "dc-a"),
        voter("b1", "dc-b"),
        voter("b2", "dc-b"),
        voter("c1", "dc-c"),
        learner("sg1", "dc-d"),
    ]
}

/// How a test cluster is configured beyond its members.
#[derive(Clone, Debug)]
pub struct Options {
    /// Timing preset: `lan` or `wan`.
    pub preset: String,
    /// `[policy] leader_preference`; empty for none.
    pub leader_preference: Vec<String>,
    /// `[policy] failback_hold_ms`; `None` keeps the default.
    pub failback_hold_ms: Option<u64>,
    /// Start every member with `--enable-fault-injection` (mounts `PUT /faults`).
    pub fault_injection: bool,
    /// More flags for every member's `meridian server`.
    pub extra_args: Vec<String>,
}

impl Options {
    /// Only a timing preset: no placement policy, no fault injection.
    pub fn preset(preset: &str) -> Options {
        Options {
            preset: preset.into(),
            leader_preference: Vec::new(),
            failback_hold_ms: None,
            fault_injection: false,
            extra_args: Vec::new(),
        }
    }
}

/// One running (or stopped) member process.
pub struct Node {
    /// The member's spec.
    pub spec: Spec,
    /// Client port.
    pub client_port: u16,
    /// Peer port.
    pub peer_port: u16,
    /// Admin HTTP port.
    pub admin_port: u16,
    /// Port of the Consul-compatible HTTP API (every member its own, as several share the host).
    pub http_port: u16,
    /// Port of the DNS listener, UDP and TCP (every member its own: the default 127.0.0.1:8600 would go to
    /// the first member only).
    pub dns_port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Node {
    /// `http://127.0.0.1:PORT` of the etcd API.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Address of the admin HTTP API.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.admin_port))
    }

    /// Address of the Consul-compatible HTTP API.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// Address of the DNS listener (UDP and TCP).
    pub fn dns_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.dns_port))
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A cluster of member processes sharing one topology file.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// The members, in topology order.
    pub nodes: Vec<Node>,
    fault_injection: bool,
    extra_args: Vec<String>,
}

impl Cluster {
    /// Write the topology (`preset` is `lan` or `wan`), start every member and wait until all agree on a leader.
    pub fn start(specs: &[Spec], preset: &str) -> Cluster {
        Cluster::start_with(specs, &Options::preset(preset))
    }

    /// Write the topology described by `specs` and `opts`, start every member and wait until all agree on a
    /// leader.
    pub fn start_with(specs: &[Spec], opts: &Options) -> Cluster {
        Cluster::start_with_topology(specs, opts, "")
    }

    /// As [`Cluster::start_with`], with `extra` TOML appended to the topology (failover groups, say).
    pub fn start_with_topology(specs: &[Spec], opts: &Options, extra: &str) -> Cluster {
        let dir = tempfile::Builder::new().prefix("meridian-cluster-").tempdir().expect("tempdir");
        let nodes: Vec<Node> = specs
            .iter()
            .map(|s| Node {
                spec: s.clone(),
                client_port: free_port(),
                peer_port: free_port(),
                admin_port: free_port(),
                http_port: free_port(),
                dns_port: free_dns_port(),
                child: None,
                starts: 0,
            })
            .collect();
        let mut toml = String::new();
        if !opts.leader_preference.is_empty() || opts.failback_hold_ms.is_some() {
            let prefs: Vec<String> = opts.leader_preference.iter().map(|d| format!("{d:?}")).collect();
            let _ = writeln!(toml, "[policy]\nleader_preference = [{}]", prefs.join(", "));
            if let Some(ms) = opts.failback_hold_ms {
                let _ = writeln!(toml, "failback_hold_ms = {ms}");
            }
        }
        let _ = writeln!(toml, "[timing]\npreset = \"{}\"", opts.preset);
        for n in &nodes {
            let _ = write!(
                toml,
                "\n[[members]]\nname = \"{}\"\ndc = \"{}\"\nzone = \"{}-z1\"\nrole = \"{}\"\n\
                 peer_url = \"http://127.0.0.1:{}\"\nclient_url = \"http://127.0.0.1:{}\"\n",
                n.spec.name,
                n.spec.dc,
                n.spec.dc,
                if n.spec.learner { "learner" } else { "voter" },
                n.peer_port,
                n.client_port
            );
        }
        toml.push_str(extra);
        std::fs::write(dir.path().join("topology.toml"), toml).expect("write topology");
        let mut cluster =
            Cluster { dir, nodes, fault_injection: opts.fault_injection, extra_args: opts.extra_args.clone() };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        cluster.wait_agreed_leader(LEADER_DEADLINE);
        cluster
    }

    /// The topology file.
    pub fn topology_path(&self) -> PathBuf {
        self.dir.path().join("topology.toml")
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.nodes[i].spec.name))
    }

    /// Index of the member called `name`.
    pub fn index(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.spec.name == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    /// Endpoints of every running member.
    pub fn live_endpoints(&self) -> Vec<String> {
        self.nodes.iter().filter(|n| n.is_running()).map(Node::endpoint).collect()
    }

    /// Member `i`'s data dir.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}-data", self.nodes[i].spec.name))
    }

    /// Member `i`'s whole log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Start member `i` (on its data dir, same ports) without waiting.
    pub fn spawn(&mut self, i: usize) {
        let topo = self.topology_path();
        let log_path = self.log_path(i);
        let data = self.data_dir(i);
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} already running", node.spec.name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meridian"));
        cmd.arg("server").arg("--topology").arg(&topo).arg("--name").arg(&node.spec.name).arg("--data-dir").arg(&data);
        // The server validates its flags before reading the topology, so the admin listener is given explicitly.
        cmd.arg("--listen-admin").arg(format!("http://{}", node.admin_addr()));
        cmd.arg("--listen-http").arg(format!("http://{}", node.http_addr()));
        cmd.arg("--listen-dns").arg(node.dns_addr().to_string());
        if self.fault_injection {
            cmd.arg("--enable-fault-injection");
        }
        cmd.args(&self.extra_args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MERIDIAN_") {
                cmd.env_remove(&k);
            }
        }
        // Failover and forwarding in detail, so that a failed run's log tails say why.
        cmd.env("MERIDIAN_LOG", "info,meridian_server::leader_loss=debug,meridian_server::peer=debug");
        node.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&log_path).expect("open member log");
        writeln!(log, "===== harness: start #{} of {} =====", node.starts, node.spec.name).ok();
        let err = log.try_clone().expect("clone log");
        cmd.stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(err));
        node.child = Some(cmd.spawn().expect("spawn meridian server"));
    }

    /// The process id of member `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(std::process::Child::id)
    }

    /// SIGKILL member `i` (by its PID) and reap it.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Status of member `i`: (its member id, the leader it knows, raft term). Errors as text.
    pub fn status(&self, i: usize) -> Result<(u64, u64, u64), String> {
        let ep = self.nodes[i].endpoint();
        block_on_fresh(move || {
            Box::pin(async move {
                let mut c = try_connect(&ep, Duration::from_secs(2)).await.map_err(|e| e.to_string())?;
                let s = c.status().await.map_err(|e| e.to_string())?;
                Ok((s.header().map_or(0, |h| h.member_id()), s.leader(), s.raft_term()))
            })
        })
    }

    /// Member `i`'s admin `GET /status`. Errors as text.
    pub fn admin_status(&self, i: usize) -> Result<StatusReport, String> {
        let (code, body) = http(self.nodes[i].admin_addr(), "GET", "/status", "")?;
        if code != 200 {
            return Err(format!("{}: /status answered {code}: {body}", self.nodes[i].spec.name));
        }
        serde_json::from_str(&body).map_err(|e| format!("{}: /status body {body:?}: {e}", self.nodes[i].spec.name))
    }

    /// `PUT /faults` with `body` on every running member (faults apply to what each member sends, so a
    /// partition must be installed everywhere). Retries a member until it accepts, within [`LEADER_DEADLINE`]
    /// (a member that has just been restarted may not listen yet); panics on a refusal.
    pub fn put_faults_everywhere(&self, body: &str) {
        for n in self.nodes.iter().filter(|n| n.is_running()) {
            let end = Instant::now() + LEADER_DEADLINE;
            loop {
                match http(n.admin_addr(), "PUT", "/faults", body) {
                    Ok((200, _)) => break,
                    Ok((code, text)) => panic!("{}: PUT /faults {body} answered {code}: {text}", n.spec.name),
                    Err(e) if Instant::now() >= end => panic!("{}: PUT /faults: {e}", n.spec.name),
                    // Not listening yet: try again shortly.
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }

    /// Wait until every running member's admin `/status` names the same running leader and that leader is in
    /// `dc`; returns its index and its own status report. Panics with every log tail after `deadline`.
    pub fn wait_admin_leader_in(&self, dc: &str, deadline: Duration) -> (usize, StatusReport) {
        let end = Instant::now() + deadline;
        let mut last = String::new();
        while Instant::now() < end {
            match self.admin_agreed_leader() {
                Ok((i, report)) if self.nodes[i].spec.dc == dc => return (i, report),
                Ok((i, _)) => last = format!("leader {} is in {}", self.nodes[i].spec.name, self.nodes[i].spec.dc),
                Err(e) => last = e,
            }
            // Placement moves leadership after a hold of seconds; poll at a fraction of a heartbeat.
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no agreed leader in {dc} after {deadline:?}: {last}\n{}", self.log_tails(40));
    }

    fn admin_agreed_leader(&self) -> Result<(usize, StatusReport), String> {
        let mut reports = Vec::new();
        for (i, n) in self.nodes.iter().enumerate().filter(|(_, n)| n.is_running()) {
            reports.push((i, self.admin_status(i)?));
            let leader = reports.last().and_then(|(_, r)| r.leader.as_ref()).map(|l| l.id.clone());
            if leader.is_none() || leader != reports[0].1.leader.as_ref().map(|l| l.id.clone()) {
                return Err(format!(
                    "{} sees leader {leader:?}, {} sees {:?}",
                    n.spec.name, self.nodes[reports[0].0].spec.name, reports[0].1.leader
                ));
            }
        }
        let leader_id =
            reports.first().and_then(|(_, r)| r.leader.as_ref()).map(|l| l.id.clone()).ok_or("no running members")?;
        reports
            .into_iter()
            .find(|(_, r)| r.id == leader_id && r.is_leader)
            .ok_or_else(|| format!("leader {leader_id} is not running or does not know it leads"))
    }

    /// Wait until every running member reports the same leader, and that leader is a running member;
    /// returns its index. Panics with every log tail after `deadline`.
    pub fn wait_agreed_leader(&self, deadline: Duration) -> usize {
        let end = Instant::now() + deadline;
        let mut last = String::new();
        while Instant::now() < end {
            match self.agreed_leader() {
                Ok(i) => return i,
                Err(e) => last = e,
            }
            // Elections take an election timeout or more; poll at a fraction of it.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no agreed leader after {deadline:?}: {last}\n{}", self.log_tails(40));
    }

    fn agreed_leader(&self) -> Result<usize, String> {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.is_running() {
                continue;
            }
            let (id, leader, _) = self.status(i).map_err(|e| format!("{}: {e}", n.spec.name))?;
            ids.push((i, id));
            leaders.push(leader);
        }
        let first = *leaders.first().ok_or("no running members")?;
        if first == 0 || leaders.iter().any(|l| *l != first) {
            return Err(format!("leaders seen: {leaders:x?}"));
        }
        ids.iter().find(|(_, id)| *id == first).map(|(i, _)| *i).ok_or_else(|| "leader is not running".into())
    }

    /// Wait until every running member answers HashKV at `rev` with one hash; returns it.
    pub fn wait_hash_agreement(&self, rev: i64, deadline: Duration) -> u32 {
        let end = Instant::now() + deadline;
        let mut last = String::new();
        while Instant::now() < end {
            let mut hashes = Vec::new();
            for n in self.nodes.iter().filter(|n| n.is_running()) {
                let ep = n.endpoint();
                let r = block_on_fresh(move || {
                    Box::pin(async move {
                        let mut c = try_connect(&ep, Duration::from_secs(2)).await.map_err(|e| e.to_string())?;
                        let h = c.hash_kv(rev).await.map_err(|e| e.to_string())?;
                        Ok::<_, String>((h.hash(), h.hash_revision()))
                    })
                });
                hashes.push((n.spec.name.clone(), r));
            }
            if hashes.iter().all(|(_, r)| r.is_ok())
                && hashes.iter().all(|(_, r)| r.as_ref().ok() == hashes[0].1.as_ref().ok())
            {
                return hashes[0].1.as_ref().map(|(h, _)| *h).unwrap_or_default();
            }
            last = format!("{hashes:?}");
            // Members apply asynchronously; poll until the slowest has reached `rev`.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("HashKV never agreed at revision {rev}: {last}\n{}", self.log_tails(20));
    }

    /// The last `lines` lines of every member's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..self.nodes.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            let _ = writeln!(out, "----- {} -----\n{}", self.nodes[i].spec.name, all[from..].join("\n"));
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(60));
        }
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
    }
}
