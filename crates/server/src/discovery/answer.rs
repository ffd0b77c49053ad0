//! What a query needs besides the catalog: where the client is, the round-trip times from this member to each
//! datacenter (the smallest smoothed RTT to any of its members, from this member's reachability probes) and
//! the datacenters left out of answers. The ranking itself is `meridian_registry::rank`.
//!
//! Left out are the datacenters whose verdict is `down` (decided by a quorum, the same for every member) and,
//! on this member only, those it is cut off from: every one of their members silent to this member's probes for
//! its unreachable window (an election timeout on a near link). The verdict waits for a second window and for the
//! leader, so this member's own view moves its answers about an election timeout sooner when a datacenter
//! disappears. That is safe here where it would not be for a failover group: an answer is advice to a client, not
//! a decision that must be unique, and a member that cannot reach a datacenter is the best witness its clients
//! have. A member is never cut off from its own datacenter.

use std::collections::{BTreeMap, BTreeSet};

use meridian_failover::DcState;
use meridian_registry::{Candidate, Locality, ServiceName};
use meridian_types::{DcName, NodeId};

use super::catalog::Catalog;
use crate::member::Member;

/// The ranking's inputs that come from the cluster, not from the catalog.
#[derive(Clone, Debug, Default)]
pub struct Surroundings {
    /// Round-trip times from this member's datacenter, in milliseconds (its own datacenter is 0).
    pub rtt_ms: BTreeMap<DcName, u64>,
    /// Datacenters whose verdict is `down`.
    pub down: BTreeSet<DcName>,
    /// Other datacenters none of whose members this member has heard from for their unreachable window.
    pub cut_off: BTreeSet<DcName>,
    /// What answers leave out: `down` and `cut_off` together (the ranking's `down` input).
    pub excluded: BTreeSet<DcName>,
}

/// The surroundings as this member sees them now.
pub fn surroundings(member: &Member) -> Surroundings {
    let status = member.raft().status();
    let dc_of = |id| status.members.get(&id).map(|m| DcName(m.dc.clone())).filter(|dc| !dc.0.is_empty());
    let mut rtt_ms = BTreeMap::new();
    rtt_ms.insert(member.config().dc.clone(), 0);
    for peer in member.reach().own_report().peers {
        let (Some(dc), Some(rtt)) = (dc_of(peer.member), peer.rtt_ms) else { continue };
        let best = rtt_ms.entry(dc).or_insert(rtt);
        *best = (*best).min(rtt);
    }
    let down: BTreeSet<DcName> = crate::verdicts::recorded(member)
        .into_iter()
        .filter(|(_, record)| record.state == DcState::Down)
        .map(|(dc, _)| dc)
        .collect();
    let silent: BTreeSet<NodeId> = member.reach().silent_members().into_iter().collect();
    let own = &member.config().dc;
    let mut heard: BTreeMap<DcName, bool> = BTreeMap::new();
    for id in status.members.keys() {
        let Some(dc) = dc_of(*id).filter(|dc| dc != own) else { continue };
        *heard.entry(dc).or_insert(false) |= !silent.contains(id);
    }
    let cut_off: BTreeSet<DcName> = heard.into_iter().filter(|(_, heard)| !heard).map(|(dc, _)| dc).collect();
    let excluded = down.union(&cut_off).cloned().collect();
    Surroundings { rtt_ms, down, cut_off, excluded }
}

/// The member's own locality: the default for clients that say nothing of theirs.
pub fn own_locality(member: &Member) -> Locality {
    let config = member.config();
    let zone = (!config.zone.0.is_empty()).then(|| config.zone.clone());
    Locality { dc: config.dc.clone(), zone }
}

/// The candidates of `service` in `catalog`, each with its aggregate health.
pub fn candidates<'c>(catalog: &'c Catalog, service: &ServiceName) -> Vec<Candidate<'c>> {
    catalog
        .service(service)
        .map(|stored| Candidate { instance: &stored.registration.instance, health: catalog.health(stored) })
        .collect()
}
