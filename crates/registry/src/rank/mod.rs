//! Nearest-healthy ranking: the instances of one service as seen from a client in zone Z of datacenter D.
//!
//! **Tiers**, nearest first: (1) the instances in Z (only when the client's zone is known), (2) the rest of D
//! (instances in another zone or without one), (3) one tier per other datacenter, by measured round-trip time
//! from D, unknown RTTs last, ties by name. Datacenters whose verdict is `down` (D included) have no tier and
//! are listed in [`Ranked::excluded_down`]. A remote datacenter has a tier when it has any instance matching
//! the tag filter, healthy or not; the local tiers always exist, so an answer can say "0 healthy in dc-a".
//!
//! **Healthy** means passing, or warning too when the query includes warning; critical instances are never in
//! an answer. Within a tier passing instances come before warning ones; each group is in (node, id) order, or
//! shuffled from the query's seed (the only randomness, and it is an input).
//!
//! **Primary**: the first tier with at least `failover_threshold` healthy instances (default 1). If none
//! reaches it, the first tier with any healthy instance is primary (fewer than wanted beats none); if no tier
//! has one, there is no primary and the answer is empty. The primary tier's reason is
//! [`Reason::Failover`] when a nearer tier was passed over (below the threshold, or D is down); tiers before it
//! say [`Reason::BelowThreshold`].
//!
//! **Two views**: [`Ranked`] itself is the tiered view, serializable as the body of `/v1/query/<service>`.
//! [`Ranked::answer`] is the flat, failover-aware nearest-first list for DNS and `/v1/health/service`: the
//! primary tier, then the tiers after it in order, then the passed-over tiers (their few healthy instances
//! are a last resort). A DNS answer capped at N records therefore always leads with the primary tier.

mod order;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use meridian_types::{DcName, ZoneName};
use serde::Serialize;

pub use order::rank;

use crate::instance::Instance;
use crate::status::Status;

/// One instance with its aggregate health ([`crate::health::aggregate`] of its checks).
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The instance.
    pub instance: &'a Instance,
    /// Its aggregate health.
    pub health: Status,
}

/// Where the querying client is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locality {
    /// Its datacenter.
    pub dc: DcName,
    /// Its zone, if known.
    pub zone: Option<ZoneName>,
}

/// A service's failover setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ServicePolicy {
    /// The fewest healthy instances a tier needs to be primary (0 counts as 1).
    pub failover_threshold: usize,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy { failover_threshold: 1 }
    }
}

/// One query.
#[derive(Clone, Copy, Debug)]
pub struct Query<'q> {
    /// Where the client is.
    pub from: &'q Locality,
    /// Measured round-trip times from the client's datacenter, in milliseconds.
    pub rtt_ms: &'q BTreeMap<DcName, u64>,
    /// Datacenters whose verdict is `down`.
    pub down: &'q BTreeSet<DcName>,
    /// The service's failover setting.
    pub policy: ServicePolicy,
    /// Count warning instances as healthy (DNS's `only_passing = false`; `/v1/health/service` without
    /// `?passing`).
    pub include_warning: bool,
    /// Only instances carrying every one of these tags.
    pub tags: &'q [String],
    /// Shuffle each tier with this seed; `None` keeps (node, id) order.
    pub seed: Option<u64>,
}

/// What a tier covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// The client's zone.
    Zone {
        /// The client's datacenter.
        dc: DcName,
        /// The client's zone.
        zone: ZoneName,
    },
    /// The client's datacenter, outside its zone when it has one.
    Dc {
        /// The client's datacenter.
        dc: DcName,
        /// The client's zone, which the zone tier holds.
        #[serde(skip_serializing_if = "Option::is_none")]
        except_zone: Option<ZoneName>,
    },
    /// Another datacenter.
    RemoteDc {
        /// The datacenter.
        dc: DcName,
        /// Its round-trip time from the client's datacenter, if measured.
        rtt_ms: Option<u64>,
    },
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Zone { dc, zone } => write!(f, "zone {zone} of {dc}"),
            Scope::Dc { dc, except_zone: Some(zone) } => write!(f, "{dc} outside zone {zone}"),
            Scope::Dc { dc, except_zone: None } | Scope::RemoteDc { dc, .. } => write!(f, "{dc}"),
        }
    }
}

/// Why a tier is where it is, machine-readable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The client's own zone.
    LocalZone,
    /// The client's own datacenter.
    LocalDc,
    /// Another datacenter, placed by round-trip time.
    RemoteDc {
        /// Its round-trip time, if measured (unmeasured ones come last).
        rtt_ms: Option<u64>,
    },
    /// The primary tier, serving because nearer tiers were passed over.
    Failover {
        /// The tier the client would be served from normally.
        from: Scope,
        /// What was passed over, such as `0 healthy in zone z1 of dc-a (threshold 1)`.
        why: String,
    },
    /// A tier nearer than the primary, with too few healthy instances.
    BelowThreshold {
        /// Its healthy instances.
        healthy: usize,
        /// The threshold.
        threshold: usize,
    },
}

/// One instance in an answer.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Entry<'a> {
    /// The instance.
    pub instance: &'a Instance,
    /// Its health (passing or warning).
    pub health: Status,
    /// Its SRV weight at that health.
    pub weight: u16,
}

/// One tier of an answer.
#[derive(Clone, Debug, Serialize)]
pub struct Tier<'a> {
    /// What it covers.
    pub scope: Scope,
    /// Why it is where it is.
    pub reason: Reason,
    /// How many healthy instances it has (the length of `instances`).
    pub healthy: usize,
    /// Whether that reaches the service's threshold.
    pub meets_threshold: bool,
    /// Its healthy instances, in answer order.
    pub instances: Vec<Entry<'a>>,
}

/// The ranked answer: the tiered view (`/v1/query`) and, through [`answer`](Ranked::answer), the flat one.
#[derive(Clone, Debug, Serialize)]
pub struct Ranked<'a> {
    /// Every tier, nearest first.
    pub tiers: Vec<Tier<'a>>,
    /// The index of the primary tier in `tiers`; `None` when nothing is healthy.
    pub primary: Option<usize>,
    /// The threshold applied.
    pub threshold: usize,
    /// Datacenters left out because their verdict is `down`.
    pub excluded_down: Vec<DcName>,
}

impl<'a> Ranked<'a> {
    /// The primary tier.
    pub fn primary_tier(&self) -> Option<&Tier<'a>> {
        self.tiers.get(self.primary?)
    }

    /// Every healthy instance, failover-aware nearest first: the primary tier, the tiers after it, then the
    /// tiers passed over before it.
    pub fn answer(&self) -> Vec<&Entry<'a>> {
        let Some(p) = self.primary else { return Vec::new() };
        self.tiers[p..].iter().chain(&self.tiers[..p]).flat_map(|t| &t.instances).collect()
    }
}

#[cfg(test)]
mod tests;
