//! The placement driver over three in-process members (1 in dc-b, 2 in dc-a, 3 in dc-c;
//! preference dc-a, dc-b; hold 600 ms): leadership moves to dc-a, lands in dc-b when dc-a is cut
//! off, and returns to dc-a once it has been healthy for the hold — with one transfer, no flapping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_consensus::{InProcessTransport, MemberRecord, NodeConfig, NoopObserver, RaftNode, ReadPolicy};
use meridian_proto::etcdserverpb::PutRequest;
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use meridian_server::placement::{self, PlacementHandle};
use meridian_types::{DcName, NodeId, PlacementPolicy};
use parking_lot::Mutex;

const WAIT: Duration = Duration::from_secs(20);
const HEARTBEAT_MS: u64 = 50;
const ELECTION_MAX_MS: u64 = 400;
const DCS: [(u64, &str); 3] = [(1, "dc-b"), (2, "dc-a"), (3, "dc-c")];

fn member(id: u64, dc: &str) -> MemberRecord {
    MemberRecord {
        name: format!("m{id}"),
        dc: dc.into(),
        zone: "z1".into(),
        peer_url: format!("inproc://{id}"),
        client_url: format!("inproc://{id}"),
    }
}

struct Cluster {
    nodes: Vec<RaftNode>,
    handles: Vec<PlacementHandle>,
    net: InProcessTransport,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start() -> Cluster {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let net = InProcessTransport::new();
        let bootstrap: BTreeMap<NodeId, MemberRecord> =
            DCS.iter().map(|(id, dc)| (NodeId(*id), member(*id, dc))).collect();
        let policy = PlacementPolicy {
            leader_preference: vec![DcName::from("dc-a"), DcName::from("dc-b")],
            failback_hold_ms: 600,
        };
        let mut nodes = Vec::new();
        let mut handles = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let id = NodeId(i as u64 + 1);
            let cfg = NodeConfig {
                id,
                disk: meridian_consensus::OsDisk::shared(dir.path()).unwrap(),
                heartbeat_ms: HEARTBEAT_MS,
                election_min_ms: ELECTION_MAX_MS / 2,
                election_max_ms: ELECTION_MAX_MS,
                snapshot_logs: 0,
                bootstrap_members: bootstrap.clone(),
                read_policy: ReadPolicy::ReadIndex,
                bootstrapper: None,
                resume_leadership_on_restart: false,
                bootstrap_learners: BTreeMap::new(),
            };
            let node = RaftNode::start(cfg, net.for_node(id), Arc::new(NoopObserver)).await.unwrap();
            net.register(&node);
            let handle = PlacementHandle::new();
            tokio::spawn(placement::run(
                node.clone(),
                placement::placement_config(&policy, ELECTION_MAX_MS),
                Duration::from_millis(HEARTBEAT_MS),
                handle.clone(),
                meridian_server::clock::Clock::new(),
            ));
            nodes.push(node);
            handles.push(handle);
        }
        Cluster { nodes, handles, net, _dirs: dirs }
    }

    fn node(&self, id: u64) -> &RaftNode {
        &self.nodes[(id - 1) as usize]
    }

    fn reason(&self, id: u64) -> String {
        self.handles[(id - 1) as usize].reason()
    }

    /// Wait until `id`'s placement reason contains `text`.
    async fn wait_reason(&self, id: u64, text: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.reason(id).contains(text) {
            assert!(Instant::now() < deadline, "m{id}'s reason never said {text:?}: {:?}", self.reason(id));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until `id` is leader (in its own view and in `observer`'s) and its reason contains `text`.
    async fn wait_leader_with_reason(&self, id: u64, observer: u64, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let leads = self.node(id).status().is_leader;
            let seen = self.node(observer).status().leader == Some(NodeId(id));
            if leads && seen && self.reason(id).contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "m{id} never became leader with reason {text:?}; leader per m{observer}: {:?}, reasons: {:?}",
                self.node(observer).status().leader,
                (1..=3).map(|i| self.reason(i)).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn put(key: &str) -> RaftCommand {
    RaftCommand {
        auth: None,
        cmd: Some(Cmd::Put(PutRequest { key: key.into(), value: b"v".to_vec(), ..Default::default() })),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_follows_preference_fails_over_and_fails_back_once() {
    let c = Cluster::start().await;
    // Record every leader m3 (dc-c, never preferred, never cut off) sees.
    let seen = Arc::new(Mutex::new(Vec::<Option<NodeId>>::new()));
    let mut rx = c.node(3).leader_changes();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            log.lock().push(*rx.borrow_and_update());
            if rx.changed().await.is_err() {
                return;
            }
        }
    });

    // 1. Whoever wins the first election, leadership settles in dc-a.
    c.wait_leader_with_reason(2, 3, "leader in dc-a: most preferred healthy DC").await;
    c.node(2).propose(put("a")).await.unwrap().unwrap();
    // A follower's reason changes on its next placement tick after it learns of the new leader.
    c.wait_reason(1, "leader m2 in dc-a").await;

    // 2. dc-a is cut off: the majority elects a leader, which ends in dc-b and says why.
    c.net.set_isolated(NodeId(2), true);
    c.wait_leader_with_reason(1, 3, "dc-a unhealthy").await;
    c.node(1).propose(put("b")).await.unwrap().unwrap();

    // 3. dc-a heals: after the hold, leadership returns to it, in one transfer.
    let healed_at = seen.lock().len();
    c.net.set_isolated(NodeId(2), false);
    let heal = Instant::now();
    c.wait_leader_with_reason(2, 3, "leader in dc-a: most preferred healthy DC").await;
    let took = heal.elapsed();
    eprintln!("failback to dc-a took {took:?} (hold 600 ms)");
    assert!(took >= Duration::from_millis(600), "failback after {took:?}, before the 600 ms hold");
    c.node(2).propose(put("c")).await.unwrap().unwrap();

    let after_heal: Vec<NodeId> = seen.lock()[healed_at..].iter().flatten().copied().collect();
    let mut distinct = after_heal.clone();
    distinct.dedup();
    assert!(
        distinct == vec![NodeId(1), NodeId(2)] || distinct == vec![NodeId(2)],
        "leadership flapped after heal: {after_heal:?}"
    );
    for n in &c.nodes {
        n.shutdown().await.unwrap();
    }
}
