//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meridian_consensus::{InProcessTransport, MemberRecord, NodeConfig, NoopObserver, RaftNode, ReadPolicy, Transport};
use meridian_proto::etcdserverpb::{PutRequest, RangeRequest};
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use meridian_types::NodeId;

/// Generous bound for anything that needs an election or replication.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn put(key: &str, value: &str) -> RaftCommand {
    RaftCommand {
        auth: None,
        cmd: Some(Cmd::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn member(id: u64) -> MemberRecord {
    MemberRecord {
        name: format!("m{id}"),
        dc: "dc-a".into(),
        zone: "z1".into(),
        peer_url: format!("inproc://{id}"),
        client_url: format!("inproc://{id}"),
    }
}

pub fn config(id: u64, dir: &Path, voters: &[u64], snapshot_logs: u64) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        disk: meridian_consensus::OsDisk::shared(dir).unwrap(),
        heartbeat_ms: 50,
        election_min_ms: 200,
        election_max_ms: 400,
        snapshot_logs,
        bootstrap_members: voters.iter().map(|v| (NodeId(*v), member(*v))).collect::<BTreeMap<_, _>>(),
        bootstrap_learners: BTreeMap::new(),
        read_policy: ReadPolicy::ReadIndex,
        bootstrapper: None,
        resume_leadership_on_restart: false,
    }
}

/// Start a single-voter node with its own (unconnected) transport.
pub async fn start_single(dir: &Path, snapshot_logs: u64) -> RaftNode {
    let transport: Arc<dyn Transport> = Arc::new(InProcessTransport::new());
    RaftNode::start(config(1, dir, &[1], snapshot_logs), transport, Arc::new(NoopObserver)).await.unwrap()
}

/// Three voters (ids 1 to 3) on one in-process transport, reading with `policy`. The directories must live as long
/// as the nodes.
pub async fn start_three(policy: ReadPolicy) -> (Vec<RaftNode>, InProcessTransport, Vec<tempfile::TempDir>) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessTransport::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as u64 + 1;
        let mut cfg = config(id, dir.path(), &[1, 2, 3], 0);
        cfg.read_policy = policy;
        let node = RaftNode::start(cfg, net.for_node(NodeId(id)), Arc::new(NoopObserver)).await.unwrap();
        net.register(&node);
        nodes.push(node);
    }
    (nodes, net, dirs)
}

/// Wait until `node` sees a leader; return it.
pub async fn wait_leader(node: &RaftNode) -> NodeId {
    let m = node.raft().wait(Some(WAIT)).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
    NodeId(m.current_leader.unwrap())
}

/// Wait until `node` has applied at least `index`.
pub async fn wait_applied(node: &RaftNode, index: u64) {
    node.raft().wait(Some(WAIT)).applied_index_at_least(Some(index), "applied").await.unwrap();
}

/// Read `key` from the node's local kv store.
pub fn get(node: &RaftNode, key: &str) -> Option<Vec<u8>> {
    let req = RangeRequest { key: key.as_bytes().to_vec(), ..Default::default() };
    let resp = node.kv().read().range(&req).unwrap();
    resp.kvs.into_iter().next().map(|kv| kv.value)
}
