//! What a query needs besides the catalog: where the client is, the round-trip times from this member to each
//! datacenter (the smallest smoothed RTT to any of its members, from this member's reachability probes) and
//! the datacenters whose verdict is `down`. The ranking itself is `meridian_registry::rank`.

use std::collections::{BTreeMap, BTreeSet};

use meridian_failover::DcState;
use meridian_registry::{Candidate, Locality, ServiceName};
use meridian_types::DcName;

use super::catalog::Catalog;
use crate::member::Member;

/// The ranking's inputs that come from the cluster, not from the catalog.
#[derive(Clone, Debug, Default)]
pub struct Surroundings {
    /// Round-trip times from this member's datacenter, in milliseconds (its own datacenter is 0).
    pub rtt_ms: BTreeMap<DcName, u64>,
    /// Datacenters whose verdict is `down`.
    pub down: BTreeSet<DcName>,
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
    let down = crate::verdicts::recorded(member)
        .into_iter()
        .filter(|(_, record)| record.state == DcState::Down)
        .map(|(dc, _)| dc)
        .collect();
    Surroundings { rtt_ms, down }
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
