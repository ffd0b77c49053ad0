//! The simulated cluster: five founding voters over three datacenters (two in `dc-a`, two in `dc-b`,
//! one in `dc-c`), leader preference `dc-a` then `dc-b`, each member a turmoil host running the real
//! server (`meridian_server::start_in`) on the simulated network, a [`SimDisk`] that survives its
//! crashes, and its own clock drift. One client host per datacenter drives the workload.
//!
//! A sixth member, the joiner `l1` in `dc-c`, is in no founder's topology, so the cluster forms
//! without it. Its own topology lists the founders plus itself as a learner (the server requires its
//! own entry; the cluster id derives from the founding voters only, so it matches), and it starts
//! with `join`, only once the membership nemesis ([`crate::membership`]) has added it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meridian_consensus::RaftNode;
use meridian_server::clock::Clock;
use meridian_server::failover_groups::RecordingHooks;
use meridian_server::planted::PlantedBug;
use meridian_server::{ServerConfig, ServerEnv};
use meridian_types::{NodeId, Topology};
use parking_lot::Mutex;
use turmoil::Sim;

use crate::discovery_truth::Discoveries;
use crate::discovery_workload::{self, Agents};
use crate::sim_disk::SimDisk;
use crate::sim_net::TurmoilNetwork;

/// Datacenters, most preferred for the leader first (`dc-c` is never preferred).
pub const DCS: [&str; 3] = ["dc-a", "dc-b", "dc-c"];

/// The failover group of the simulated topology, over dc-a, dc-b, dc-c with automatic failback.
pub const GROUP: &str = "svc";

/// The Unix time, in milliseconds, at which every simulation starts (the runner's turmoil epoch).
pub const SIM_EPOCH_UNIX_MS: u64 = 1_800_000_000_000;
/// Leader preference of the topology.
pub const PREFERENCE: [&str; 2] = ["dc-a", "dc-b"];
/// How long a preferred datacenter must be healthy before leadership returns to it.
pub const FAILBACK_HOLD_MS: u64 = 2000;
const LAYOUT: [(&str, &str); 5] = [("a1", "dc-a"), ("a2", "dc-a"), ("b1", "dc-b"), ("b2", "dc-b"), ("c1", "dc-c")];
/// The member that joins the running cluster; never in a preferred datacenter, so never the
/// expected leader.
const JOINER: (&str, &str) = ("l1", "dc-c");
/// How often the joiner's host checks whether it has been added yet.
const JOIN_POLL: Duration = Duration::from_millis(20);
const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
/// Snapshot (and log purge) every this many entries: small, so runs exercise snapshot install.
const SNAPSHOT_LOGS: u64 = 300;

/// One simulated member.
#[derive(Clone, Debug)]
pub struct SimMember {
    /// Host name.
    pub name: String,
    /// Datacenter.
    pub dc: String,
    /// Simulated address.
    pub ip: IpAddr,
    /// Raft id.
    pub id: NodeId,
    /// Its disk, kept across crashes.
    pub disk: SimDisk,
    /// Clock drift in parts per million.
    pub drift_ppm: i32,
}

impl SimMember {
    /// The etcd API URL.
    pub fn client_url(&self) -> String {
        format!("http://{}:{CLIENT_PORT}", self.ip)
    }

    /// The peer URL (its member id derives from it).
    pub fn peer_url(&self) -> String {
        format!("http://{}:{PEER_PORT}", self.ip)
    }
}

/// Raft nodes of the members that are up, by name (the runner reads their status between steps).
pub type Registry = Arc<Mutex<BTreeMap<String, RaftNode>>>;

/// The members and what the runner needs to observe them.
pub struct SimCluster {
    /// The founding voters.
    pub members: Vec<SimMember>,
    /// The member that joins later; not a founder (see the module docs).
    pub joiner: SimMember,
    /// Set once the joiner has been added to the cluster; its host starts the server only then.
    pub joiner_added: Arc<AtomicBool>,
    /// Nodes of running members.
    pub registry: Registry,
    /// Every failover-group hook call any member made, in simulated-time order (each acknowledged at once).
    pub hooks: RecordingHooks,
    /// The discovery agents of the members (the discovery clients' way in; `discovery_workload`).
    pub agents: Agents,
    /// The members' discovery, for the runner to sample their catalogs.
    pub discoveries: Discoveries,
}

impl SimCluster {
    /// Names of the members in `dc`.
    pub fn in_dc(&self, dc: &str) -> Vec<String> {
        self.members.iter().filter(|m| m.dc == dc).map(|m| m.name.clone()).collect()
    }

    /// The member called `name` (a founder or the joiner).
    pub fn member(&self, name: &str) -> &SimMember {
        self.all_members().find(|m| m.name == name).expect("known member")
    }

    /// The founders, then the joiner.
    pub fn all_members(&self) -> impl Iterator<Item = &SimMember> {
        self.members.iter().chain(std::iter::once(&self.joiner))
    }

    /// Client URLs, those in `dc` first.
    pub fn endpoints_from(&self, dc: &str) -> Vec<String> {
        let mut own: Vec<String> = self.members.iter().filter(|m| m.dc == dc).map(SimMember::client_url).collect();
        own.extend(self.members.iter().filter(|m| m.dc != dc).map(SimMember::client_url));
        own
    }

    /// The leases in `name`'s kv store, or `None` if it is not running.
    pub fn leases_at(&self, name: &str) -> Option<Vec<i64>> {
        let nodes = self.registry.lock();
        let kv = nodes.get(name)?.kv().clone();
        drop(nodes);
        let leases = kv.read().leases();
        Some(leases.into_iter().map(|l| l.id.0).collect())
    }

    /// Every key and value in `name`'s store now, or `None` if it is not running.
    pub fn scan(&self, name: &str) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let nodes = self.registry.lock();
        let kv = nodes.get(name)?.kv().clone();
        drop(nodes);
        let all = meridian_proto::etcdserverpb::RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() };
        let resp = kv.read().range(&all).ok()?;
        Some(resp.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect())
    }

    /// The datacenter verdicts in `name`'s store, by datacenter (`None` if it is not running).
    pub fn verdicts_at(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let all = self.scan(name)?;
        let prefix = meridian_types::reserved::DC_PREFIX.as_bytes();
        Some(
            all.into_iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .filter_map(|(k, v)| {
                    let key = String::from_utf8_lossy(&k).into_owned();
                    let record = meridian_failover::VerdictRecord::parse(&key, &v).ok()?;
                    Some((record.dc.0, record.state.as_str().to_owned()))
                })
                .collect(),
        )
    }

    /// The datacenters `name`'s store shows `down` and the active datacenter of failover group `group` (`None`
    /// if `name` is not running). Reads only the reserved keyspace.
    pub fn group_view(&self, name: &str, group: &str) -> Option<(Vec<String>, Option<String>)> {
        let nodes = self.registry.lock();
        let kv = nodes.get(name)?.kv().clone();
        drop(nodes);
        let reserved = meridian_proto::etcdserverpb::RangeRequest {
            key: meridian_types::reserved::RESERVED_PREFIX.to_vec(),
            range_end: meridian_types::reserved::RESERVED_END.to_vec(),
            ..Default::default()
        };
        let resp = kv.read().range(&reserved).ok()?;
        let mut down = Vec::new();
        let mut active = None;
        let active_key = meridian_types::reserved::active_key(group);
        for kv in resp.kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            if key.starts_with(meridian_types::reserved::DC_PREFIX) {
                if let Ok(record) = meridian_failover::VerdictRecord::parse(&key, &kv.value)
                    && record.state == meridian_failover::DcState::Down
                {
                    down.push(record.dc.0);
                }
            } else if key == active_key
                && let Ok(record) = meridian_failover::ActiveRecord::parse(&key, &kv.value)
            {
                active = Some(record.dc.0);
            }
        }
        down.sort();
        Some((down, active))
    }

    /// The leader as the running members see it: the one a majority of the founders, counting only
    /// live ones, names. The joiner's view does not count (it may be no member at all by then), but
    /// it can be the one named.
    pub fn leader(&self) -> Option<String> {
        let nodes = self.registry.lock();
        let mut votes: BTreeMap<NodeId, usize> = BTreeMap::new();
        for m in &self.members {
            if let Some(l) = nodes.get(&m.name).and_then(|node| node.status().leader) {
                *votes.entry(l).or_default() += 1;
            }
        }
        let (id, n) = votes.into_iter().max_by_key(|(_, n)| *n)?;
        let member = self.all_members().find(|m| m.id == id)?;
        (n * 2 > self.members.len() && nodes.contains_key(&member.name)).then(|| member.name.clone())
    }

    /// The term of the leader a majority follows ([`SimCluster::leader`]), as the leader itself has it.
    pub fn leader_term(&self) -> Option<u64> {
        let leader = self.leader()?;
        self.registry.lock().get(&leader).map(|node| node.status().term)
    }
}

/// The topology of the founders, plus `learner` when given (the joiner's own view).
fn topology(members: &[SimMember], learner: Option<&SimMember>) -> Topology {
    let mut text = format!(
        "[policy]\nleader_preference = [{}]\nfailback_hold_ms = {FAILBACK_HOLD_MS}\n\n[timing]\npreset = \"lan\"\n",
        PREFERENCE.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ")
    );
    let roles = members.iter().map(|m| (m, "voter")).chain(learner.map(|m| (m, "learner")));
    for (m, role) in roles {
        text.push_str(&format!(
            "\n[[members]]\nname = \"{}\"\ndc = \"{}\"\nzone = \"{}-z\"\nrole = \"{role}\"\npeer_url = \"{}\"\nclient_url = \"{}\"\n",
            m.name,
            m.dc,
            m.name,
            m.peer_url(),
            m.client_url()
        ));
    }
    text.push_str(&format!(
        "\n[[failover_groups]]\nname = \"{GROUP}\"\ndatacenters = [\"dc-a\", \"dc-b\", \"dc-c\"]\n\
         [[failover_groups.hooks]]\ncommand = [\"true\"]\n"
    ));
    Topology::from_toml(&text).expect("the simulated topology is valid")
}

/// Adds the member hosts to `sim` (the founders and the joiner), with per-member clock drift from
/// `drifts` (the joiner's clock is true) and Raft log sync latencies drawn from `disk_seed`.
pub fn build(sim: &mut Sim<'_>, drifts: &[i32], disk_seed: u64, bug: PlantedBug) -> SimCluster {
    let drifts = drifts.iter().chain(std::iter::repeat(&0));
    let members: Vec<SimMember> =
        LAYOUT.iter().zip(drifts).map(|(place, drift)| sim_member(sim, *place, *drift, disk_seed)).collect();
    let joiner = sim_member(sim, JOINER, 0, disk_seed);
    let registry: Registry = Arc::default();
    let joiner_added = Arc::new(AtomicBool::new(false));
    let hooks = RecordingHooks::new();
    let discovery = (Agents::default(), Discoveries::default());
    let founders = topology(&members, None);
    for m in &members {
        host_member(sim, m, founders.clone(), &registry, &hooks, &discovery, bug, None);
    }
    let joiner_view = topology(&members, Some(&joiner));
    host_member(sim, &joiner, joiner_view, &registry, &hooks, &discovery, bug, Some(joiner_added.clone()));
    let (agents, discoveries) = discovery;
    SimCluster { members, joiner, joiner_added, registry, hooks, agents, discoveries }
}

fn sim_member(sim: &Sim<'_>, (name, dc): (&str, &str), drift_ppm: i32, disk_seed: u64) -> SimMember {
    let ip = sim.lookup(name);
    let peer_url = format!("http://{ip}:{PEER_PORT}");
    let id = meridian_server::identity::member_id(&peer_url);
    SimMember {
        name: name.to_owned(),
        dc: dc.to_owned(),
        ip,
        id,
        disk: SimDisk::with_sync_latency(disk_seed ^ id.0),
        drift_ppm,
    }
}

/// Adds the host of member `m`. With `added`, it is a joiner: it waits for the flag, then starts
/// without bootstrapping.
#[allow(clippy::too_many_arguments)]
fn host_member(
    sim: &mut Sim<'_>,
    m: &SimMember,
    topology: Topology,
    registry: &Registry,
    hooks: &RecordingHooks,
    discovery: &(Agents, Discoveries),
    bug: PlantedBug,
    added: Option<Arc<AtomicBool>>,
) {
    let (name, disk, drift, registry) = (m.name.clone(), m.disk.clone(), m.drift_ppm, registry.clone());
    let hooks = hooks.clone();
    let discovery = discovery.clone();
    sim.host(m.name.as_str(), move || {
        let (name, disk, topology, registry, added, hooks) =
            (name.clone(), disk.clone(), topology.clone(), registry.clone(), added.clone(), hooks.clone());
        let (agents, discoveries) = discovery.clone();
        async move {
            if let Some(added) = &added {
                while !added.load(Ordering::Acquire) {
                    tokio::time::sleep(JOIN_POLL).await;
                }
            }
            // turmoil listens on the unspecified address only; the topology carries the real URLs.
            let mut config = ServerConfig {
                name: name.clone(),
                listen_client: format!("http://0.0.0.0:{CLIENT_PORT}"),
                listen_peer: format!("http://0.0.0.0:{PEER_PORT}"),
                insecure_allow_remote: true,
                // The simulated hosts serve no HTTP API (the default would bind a real port).
                listen_http: Some("none".into()),
                snapshot_count: SNAPSHOT_LOGS,
                join: added.is_some(),
                // The cheapest hash bcrypt allows: the workload logs users in, and hashing runs inline here.
                bcrypt_cost: meridian_server::auth::MIN_BCRYPT_COST,
                // DNS listens on real sockets, which the simulation has none of.
                listen_dns: Some("none".into()),
                ..Default::default()
            };
            // The one planted bug that is a setting of the member's configuration (the Lock service's).
            meridian_server::planted::configure(bug, &mut config);
            // Each life of the member gets its environment: a full disk stops the Raft node, and the member starts
            // again in place once space is back (`restart_in_place`), as `meridian server` does.
            let env = || ServerEnv {
                net: Arc::new(TurmoilNetwork),
                disk: Some(Arc::new(disk.clone())),
                // Unix time as the simulation's epoch (runner.rs) plus the simulated time this life starts at.
                clock: Clock::with_drift(drift)
                    .starting_at_unix_ms(SIM_EPOCH_UNIX_MS + crate::recorder::now_ns() / 1_000_000),
                fault_seed: None,
                topology: Some(topology.clone()),
                planted_bug: bug,
                // Salts and tokens from the member's name and the simulated time it starts at, so a seed replays
                // byte for byte, yet a restarted member does not issue again the tokens its previous life gave
                // out (clients still hold those: the same string would then name another user).
                auth_seed: Some(
                    name.as_str()
                        .bytes()
                        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
                        ^ crate::recorder::now_ns(),
                ),
                fixed_date_header: true,
                // The group's hooks are recorded (one recorder for every member, so the order of calls across
                // leaders is seen) and acknowledged at once.
                hook_runner: Arc::new(hooks.clone()),
            };
            let each_life = |server: &meridian_server::RunningServer| {
                let node = server.member.raft().clone();
                registry.lock().insert(name.clone(), node.clone());
                // The member's discovery agent runs on its own runtime, so it dies with the member.
                let (agent, calls) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(discovery_workload::serve_agent(server.discovery.clone(), calls));
                agents.lock().insert(name.clone(), agent);
                discoveries.lock().insert(name.clone(), server.discovery.clone());
                // A Raft node that stopped (on a full disk) is no longer one the runner may count on.
                let (registry, name) = (registry.clone(), name.clone());
                Ok(AbortOnDrop(tokio::spawn(async move {
                    node.stopped().await;
                    registry.lock().remove(&name);
                })))
            };
            meridian_server::restart_in_place::run(config, env, each_life, std::future::pending()).await?;
            Ok(())
        }
    });
}

/// Aborts a member life's task when the life ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets one-way delays: near within a datacenter, tens of milliseconds between datacenters.
pub fn set_latencies(sim: &Sim<'_>, hosts: &[(String, String)]) {
    for (i, (a, dc_a)) in hosts.iter().enumerate() {
        for (b, dc_b) in &hosts[i + 1..] {
            sim.set_link_latency(a.as_str(), b.as_str(), base_latency(dc_a, dc_b));
        }
    }
}

/// The latency matrix between datacenters.
pub fn base_latency(a: &str, b: &str) -> Duration {
    let ms = match (a.min(b), a.max(b)) {
        (x, y) if x == y => 1,
        ("dc-a", "dc-b") => 10,
        ("dc-a", "dc-c") => 25,
        _ => 30,
    };
    Duration::from_millis(ms)
}
