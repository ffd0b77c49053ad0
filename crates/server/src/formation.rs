//! Cluster formation: from the configuration (and the topology file, when given) work out who this member is,
//! which members found a new cluster, and the cluster id. Reads the topology file; otherwise pure, so the
//! rules are unit-tested.
//!
//! - With a topology: this member is the entry named `--name`; its URLs, dc, zone and the cluster's timing
//!   come from the file (listen addresses only where not given explicitly). Voters found the cluster; the
//!   consensus layer adds the learners once a leader exists.
//! - With `join`: no bootstrap at all; the member waits until the cluster contacts it (after a member add).
//! - Without a topology: a single-node cluster of this member, as before clusters existed.

use std::collections::BTreeMap;

use meridian_consensus::MemberRecord;
use meridian_types::{MemberSpec, NodeId, Topology};

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::identity;

/// Who this member is and how the cluster forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterPlan {
    /// This member's id.
    pub id: NodeId,
    /// The cluster id reported in every response header.
    pub cluster_id: u64,
    /// This member's description in the Raft membership.
    pub this: MemberRecord,
    /// Founding voters (empty when joining).
    pub bootstrap_members: BTreeMap<NodeId, MemberRecord>,
    /// Founding learners (empty when joining).
    pub bootstrap_learners: BTreeMap<NodeId, MemberRecord>,
    /// The founding voter that writes the first membership, and so is the first leader (no other member
    /// can campaign before it hears of the membership): the lowest-id voter of the most preferred
    /// datacenter that has voters, else the lowest-id voter.
    pub bootstrapper: Option<NodeId>,
}

fn raft_member(spec: &MemberSpec) -> MemberRecord {
    MemberRecord {
        name: spec.name.0.clone(),
        dc: spec.dc.0.clone(),
        zone: spec.zone.0.clone(),
        peer_url: spec.peer_url.clone(),
        client_url: spec.client_url.clone(),
    }
}

/// Reads, parses and validates the topology file named by `config.topology`, logging its warnings.
pub fn load_topology(config: &ServerConfig) -> Result<Option<Topology>> {
    let Some(path) = &config.topology else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("reading topology {}: {e}", path.display())))?;
    let topology = Topology::from_toml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    validated(topology, config).map(Some).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Validates a topology given in code, like one read from a file.
pub fn checked(topology: Topology, config: &ServerConfig) -> Result<Topology> {
    validated(topology, config).map_err(|e| Error::Config(format!("topology: {e}")))
}

/// Validates `topology` for `config` (honouring `force_topology`) and logs its warnings.
fn validated(topology: Topology, config: &ServerConfig) -> std::result::Result<Topology, String> {
    let warnings = topology.validate(config.force_topology).map_err(|e| e.to_string())?;
    for w in warnings {
        tracing::warn!("topology: {w}");
    }
    Ok(topology)
}

/// Applies `topology` to `config` and works out the plan. Listen addresses left at their defaults take the
/// member's URLs from the topology; dc, zone and timing always come from it.
pub fn plan(config: &mut ServerConfig, topology: Option<&Topology>) -> Result<ClusterPlan> {
    let Some(topology) = topology else {
        let id = identity::member_id(&config.listen_peer);
        let this = MemberRecord {
            name: config.name.clone(),
            dc: config.dc.0.clone(),
            zone: config.zone.0.clone(),
            peer_url: config.listen_peer.clone(),
            client_url: config.listen_client.clone(),
        };
        let bootstrap_members = if config.join { BTreeMap::new() } else { BTreeMap::from([(id, this.clone())]) };
        let bootstrapper = bootstrap_members.keys().next().copied();
        return Ok(ClusterPlan {
            id,
            cluster_id: identity::cluster_id(&[id]),
            this,
            bootstrap_members,
            bootstrap_learners: BTreeMap::new(),
            bootstrapper,
        });
    };
    let spec = topology.member(&config.name).ok_or_else(|| {
        let names: Vec<&str> = topology.members.iter().map(|m| m.name.0.as_str()).collect();
        Error::Config(format!("member {:?} is not in the topology (members: {})", config.name, names.join(", ")))
    })?;
    let defaults = ServerConfig::default();
    if config.listen_client == defaults.listen_client {
        config.listen_client = spec.client_url.clone();
    }
    if config.listen_peer == defaults.listen_peer {
        config.listen_peer = spec.peer_url.clone();
    }
    if config.listen_admin.is_none() {
        config.listen_admin = spec.admin_url.clone();
    }
    config.dc = spec.dc.clone();
    config.zone = spec.zone.clone();
    config.timing = topology.timing.clone();

    let voters: BTreeMap<NodeId, MemberRecord> =
        topology.voters().map(|m| (identity::member_id(&m.peer_url), raft_member(m))).collect();
    let learners: BTreeMap<NodeId, MemberRecord> =
        topology.learners().map(|m| (identity::member_id(&m.peer_url), raft_member(m))).collect();
    let founders: Vec<NodeId> = voters.keys().copied().collect();
    let preferred = topology
        .policy
        .leader_preference
        .iter()
        .find_map(|dc| voters.iter().find(|(_, m)| m.dc == dc.0).map(|(id, _)| *id));
    let (bootstrap_members, bootstrap_learners) =
        if config.join { (BTreeMap::new(), BTreeMap::new()) } else { (voters, learners) };
    let bootstrapper = preferred.or_else(|| bootstrap_members.keys().next().copied()).filter(|_| !config.join);
    Ok(ClusterPlan {
        id: identity::member_id(&spec.peer_url),
        cluster_id: identity::cluster_id(&founders),
        this: raft_member(spec),
        bootstrap_members,
        bootstrap_learners,
        bootstrapper,
    })
}

#[cfg(test)]
mod tests {
    use meridian_types::{DcName, TimingPreset};

    use super::*;

    fn example() -> Topology {
        let topo = Topology::from_toml(include_str!("../../../config/topology.example.toml")).unwrap();
        topo.validate(false).unwrap();
        topo
    }

    #[test]
    fn every_member_of_a_topology_agrees_on_ids_and_founders() {
        let topo = example();
        let plans: Vec<ClusterPlan> = topo
            .members
            .iter()
            .map(|m| {
                let mut cfg = ServerConfig { name: m.name.0.clone(), ..Default::default() };
                plan(&mut cfg, Some(&topo)).unwrap()
            })
            .collect();
        for p in &plans {
            assert_eq!(p.cluster_id, plans[0].cluster_id, "one cluster id");
            assert_eq!(p.bootstrap_members, plans[0].bootstrap_members);
            assert_eq!(p.bootstrap_learners, plans[0].bootstrap_learners);
        }
        assert_eq!(plans[0].bootstrap_members.len(), 5);
        let learner = plans.iter().find(|p| p.this.name == "sg1").unwrap();
        assert_eq!(learner.bootstrap_learners.keys().copied().collect::<Vec<_>>(), vec![learner.id]);
        assert!(!learner.bootstrap_members.contains_key(&learner.id), "a learner is not a founding voter");
    }

    #[test]
    fn the_first_leader_is_a_voter_of_the_most_preferred_dc() {
        let mut topo = example();
        let plan_of = |topo: &Topology| {
            let mut cfg = ServerConfig { name: "a1".into(), ..Default::default() };
            plan(&mut cfg, Some(topo)).unwrap()
        };
        let dc_of = |p: &ClusterPlan| p.bootstrap_members[&p.bootstrapper.unwrap()].dc.clone();
        for preferred in ["dc-a", "dc-b", "dc-c"] {
            topo.policy.leader_preference = vec![DcName::from(preferred)];
            let p = plan_of(&topo);
            assert_eq!(dc_of(&p), preferred);
            let lowest_there = p.bootstrap_members.iter().filter(|(_, m)| m.dc == preferred).map(|(id, _)| *id).min();
            assert_eq!(p.bootstrapper, lowest_there, "the lowest id of {preferred}, so every member agrees");
        }
        topo.policy.leader_preference.clear();
        let p = plan_of(&topo);
        assert_eq!(p.bootstrapper, p.bootstrap_members.keys().next().copied(), "no preference: the lowest id");
    }

    #[test]
    fn topology_supplies_urls_labels_and_timing_unless_given() {
        let mut topo = example();
        topo.timing.preset = TimingPreset::Wan;
        let mut cfg = ServerConfig { name: "b1".into(), ..Default::default() };
        let p = plan(&mut cfg, Some(&topo)).unwrap();
        assert_eq!(cfg.listen_client, "http://127.0.0.1:2579");
        assert_eq!(cfg.listen_peer, "http://127.0.0.1:2580");
        assert_eq!(cfg.listen_admin.as_deref(), Some("http://127.0.0.1:2581"));
        assert_eq!((cfg.dc.0.as_str(), cfg.zone.0.as_str()), ("dc-b", "b-1"));
        assert_eq!(cfg.timing.preset, TimingPreset::Wan);
        assert_eq!(p.id, identity::member_id("http://127.0.0.1:2580"));

        let mut cfg =
            ServerConfig { name: "b1".into(), listen_client: "http://127.0.0.1:9999".into(), ..Default::default() };
        plan(&mut cfg, Some(&topo)).unwrap();
        assert_eq!(cfg.listen_client, "http://127.0.0.1:9999", "an explicit listen address wins");
    }

    #[test]
    fn unknown_name_is_a_clear_error_and_join_skips_bootstrap() {
        let topo = example();
        let mut cfg = ServerConfig { name: "zz".into(), ..Default::default() };
        let err = plan(&mut cfg, Some(&topo)).unwrap_err().to_string();
        assert!(err.contains("\"zz\" is not in the topology") && err.contains("a1, a2"), "{err}");
        let mut cfg = ServerConfig { name: "a1".into(), join: true, ..Default::default() };
        let p = plan(&mut cfg, Some(&topo)).unwrap();
        assert!(p.bootstrap_members.is_empty() && p.bootstrap_learners.is_empty() && p.bootstrapper.is_none());
    }

    #[test]
    fn without_topology_the_member_founds_a_single_node_cluster() {
        let mut cfg = ServerConfig::default();
        let p = plan(&mut cfg, None).unwrap();
        assert_eq!(p.bootstrap_members.keys().copied().collect::<Vec<_>>(), vec![p.id]);
        assert_eq!(p.id, identity::member_id(&cfg.listen_peer));
    }
}
