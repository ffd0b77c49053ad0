//! Multi-process cluster harness: writes a topology file into a temp dir, starts every member as a real
//! `meridian server --topology FILE --name X --data-dir D` process on loopback ports from free-port probing,
//! and offers kill -9 / restart by PID and cluster-wide checks (agreed leader, HashKV agreement).

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{block_on_fresh, free_port, try_connect};

/// How long a cluster may take to agree on a leader after starting or after a fault.
pub const LEADER_DEADLINE: Duration = Duration::from_secs(60);

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

/// One running (or stopped) member process.
pub struct Node {
    /// The member's spec.
    pub spec: Spec,
    /// Client port.
    pub client_port: u16,
    /// Peer port.
    pub peer_port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Node {
    /// `http://127.0.0.1:PORT` of the etcd API.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
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
}

impl Cluster {
    /// Write the topology (`preset` is `lan` or `wan`), start every member and wait until all agree on a leader.
    pub fn start(specs: &[Spec], preset: &str) -> Cluster {
        let dir = tempfile::Builder::new().prefix("meridian-cluster-").tempdir().expect("tempdir");
        let nodes: Vec<Node> = specs
            .iter()
            .map(|s| Node { spec: s.clone(), client_port: free_port(), peer_port: free_port(), child: None, starts: 0 })
            .collect();
        let mut toml = format!("[timing]\npreset = \"{preset}\"\n");
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
        std::fs::write(dir.path().join("topology.toml"), toml).expect("write topology");
        let mut cluster = Cluster { dir, nodes };
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

    /// Start member `i` (on its data dir, same ports) without waiting.
    pub fn spawn(&mut self, i: usize) {
        let topo = self.topology_path();
        let log_path = self.log_path(i);
        let data = self.dir.path().join(format!("{}-data", self.nodes[i].spec.name));
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} already running", node.spec.name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meridian"));
        cmd.arg("server").arg("--topology").arg(&topo).arg("--name").arg(&node.spec.name).arg("--data-dir").arg(&data);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MERIDIAN_") {
                cmd.env_remove(&k);
            }
        }
        node.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&log_path).expect("open member log");
        writeln!(log, "===== harness: start #{} of {} =====", node.starts, node.spec.name).ok();
        let err = log.try_clone().expect("clone log");
        cmd.stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(err));
        node.child = Some(cmd.spawn().expect("spawn meridian server"));
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
