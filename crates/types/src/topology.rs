//! The topology file: every member of a cluster (name, datacenter, zone, role, URLs), the placement policy
//! (where the leader should live), Raft timing, the emulated WAN and the failover groups of the user's services.
//! Pure: parsing and validation only, so the same checks run in the server, the playground and tests.
//!
//! Validation separates hard errors (the cluster cannot work, or the file is ambiguous) from warnings (the
//! cluster works but loses a guarantee). Losing one datacenter losing the majority is an error unless forced,
//! because surviving a datacenter outage is the point of a multi-DC layout (design §1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::failover_group::{FailoverGroupSpec, GroupError, validate_groups};
use crate::wan::WanConfig;
use crate::{DcName, MemberName, TimingConfig, ZoneName};

/// Whether a member votes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Votes in elections and counts towards quorum.
    #[default]
    Voter,
    /// Receives the log and serves local reads; never votes, never counts towards quorum.
    Learner,
}

/// One member of the topology.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    /// Unique member name (`--name` selects the entry a process runs as).
    pub name: MemberName,
    /// Datacenter.
    pub dc: DcName,
    /// Zone inside the datacenter.
    pub zone: ZoneName,
    /// Voter (default) or learner.
    #[serde(default)]
    pub role: Role,
    /// URL peers use to reach this member, `http://IP:PORT`. Its member id derives from it.
    pub peer_url: String,
    /// URL clients use (the etcd v3 API), `http://IP:PORT`.
    pub client_url: String,
    /// URL of the admin HTTP API, if the member serves one.
    #[serde(default)]
    pub admin_url: Option<String>,
}

/// Where the leader should live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlacementPolicy {
    /// Datacenters in order of preference for the leader. Empty: no preference.
    pub leader_preference: Vec<DcName>,
    /// How long a more preferred datacenter must be healthy before leadership moves back to it.
    pub failback_hold_ms: u64,
}

/// Default [`PlacementPolicy::failback_hold_ms`]: long enough to ride out a flapping link.
pub const DEFAULT_FAILBACK_HOLD_MS: u64 = 5000;

impl Default for PlacementPolicy {
    fn default() -> Self {
        PlacementPolicy { leader_preference: Vec::new(), failback_hold_ms: DEFAULT_FAILBACK_HOLD_MS }
    }
}

/// A whole topology file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Every member, voters and learners.
    pub members: Vec<MemberSpec>,
    /// Leader placement.
    #[serde(default)]
    pub policy: PlacementPolicy,
    /// Raft timing for every member.
    #[serde(default)]
    pub timing: TimingConfig,
    /// Emulated WAN between datacenters (applied only where the transport emulates it).
    #[serde(default)]
    pub wan: WanConfig,
    /// Failover groups of the user's services: the initial set (the admin API may add and override groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_groups: Vec<FailoverGroupSpec>,
}

/// Why a topology is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The TOML text did not parse or did not match the schema.
    #[error("topology: {0}")]
    Parse(String),
    /// No members at all.
    #[error("topology lists no members")]
    NoMembers,
    /// A member has an empty name, datacenter or zone.
    #[error("member #{index}: {field} must not be empty")]
    EmptyField {
        /// Position of the member in the file (0-based).
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// Two members share a name.
    #[error("duplicate member name {0:?}")]
    DuplicateName(String),
    /// Two URLs (of the same or different members) are equal.
    #[error("URL {url} is used twice: by {first} and by {second}")]
    DuplicateUrl {
        /// The URL.
        url: String,
        /// First use, e.g. `a1 peer_url`.
        first: String,
        /// Second use.
        second: String,
    },
    /// A URL is not `http://IP:PORT`.
    #[error("member {member}: {field} {url:?} is not a valid URL ({why}); expected http://IP:PORT")]
    BadUrl {
        /// The member.
        member: String,
        /// Which field.
        field: &'static str,
        /// The text.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Every member is a learner.
    #[error("topology has no voters: at least one member must have role = \"voter\"")]
    NoVoters,
    /// The leader preference names a datacenter without members.
    #[error("leader_preference names {0:?}, which is not the dc of any member")]
    UnknownPreferredDc(String),
    /// The leader preference lists a datacenter twice.
    #[error("leader_preference lists {0:?} twice")]
    DuplicatePreferredDc(String),
    /// A WAN link names a datacenter without members.
    #[error("wan link {from} <-> {to} names {dc:?}, which is not the dc of any member")]
    UnknownWanDc {
        /// One end.
        from: String,
        /// Other end.
        to: String,
        /// The unknown one.
        dc: String,
    },
    /// A WAN link's loss is outside [0, 1].
    #[error("wan link {from} <-> {to}: loss {loss} is outside [0, 1]")]
    BadLoss {
        /// One end.
        from: String,
        /// Other end.
        to: String,
        /// The value.
        loss: String,
    },
    /// Timing values that cannot work.
    #[error(
        "timing: election timeout ({election_ms} ms) must exceed three heartbeats ({heartbeat_ms} ms each), and both must be positive"
    )]
    BadTiming {
        /// Effective heartbeat.
        heartbeat_ms: u64,
        /// Effective election timeout.
        election_ms: u64,
    },
    /// A failover group is unusable.
    #[error(transparent)]
    FailoverGroup(#[from] GroupError),
    /// Losing one datacenter would lose the voting majority (only an error without `force`).
    #[error("{0} (pass --force to run anyway)")]
    SingleDcMajority(TopologyWarning),
}

/// Something that works but loses a guarantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopologyWarning {
    /// This datacenter holds at least half of the voters, so losing it loses the majority.
    DcHoldsMajority {
        /// The datacenter.
        dc: String,
        /// Its voters.
        voters: usize,
        /// All voters.
        total: usize,
    },
    /// A preferred datacenter has no voter, so the leader can never live there.
    PreferredDcWithoutVoters(String),
}

impl fmt::Display for TopologyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologyWarning::DcHoldsMajority { dc, voters, total } => write!(
                f,
                "losing one DC loses the majority: {dc} holds {voters} of {total} voters, and a quorum needs {}",
                total / 2 + 1
            ),
            TopologyWarning::PreferredDcWithoutVoters(dc) => {
                write!(f, "leader_preference names {dc}, which has no voters; the leader can never live there")
            }
        }
    }
}

/// Checks that `url` is `http://HOST:PORT` or `https://HOST:PORT` (TLS on that link) with a non-empty host and
/// a numeric, non-zero port.
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("scheme must be http:// or https://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("must not have a path");
    }
    let (host, port) = rest.rsplit_once(':').ok_or("missing :PORT")?;
    if host.is_empty() {
        return Err("missing host");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err("port must be 1-65535"),
        Ok(_) => Ok(()),
    }
}

impl Topology {
    /// Parses a topology file's text; unknown keys are an error. Does not validate (see [`Topology::validate`]).
    pub fn from_toml(text: &str) -> Result<Self, TopologyError> {
        toml::from_str(text).map_err(|e| TopologyError::Parse(e.to_string()))
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&MemberSpec> {
        self.members.iter().find(|m| m.name.0 == name)
    }

    /// Every datacenter that has a member.
    pub fn datacenters(&self) -> BTreeSet<DcName> {
        self.members.iter().map(|m| m.dc.clone()).collect()
    }

    /// The voting members, in file order.
    pub fn voters(&self) -> impl Iterator<Item = &MemberSpec> {
        self.members.iter().filter(|m| m.role == Role::Voter)
    }

    /// The learners, in file order.
    pub fn learners(&self) -> impl Iterator<Item = &MemberSpec> {
        self.members.iter().filter(|m| m.role == Role::Learner)
    }

    /// Checks the topology. Returns the warnings of a usable topology; a layout where losing one datacenter
    /// loses the majority is an error unless `force`, and then a warning.
    pub fn validate(&self, force: bool) -> Result<Vec<TopologyWarning>, TopologyError> {
        if self.members.is_empty() {
            return Err(TopologyError::NoMembers);
        }
        let mut names = BTreeSet::new();
        let mut urls: BTreeMap<String, String> = BTreeMap::new();
        for (index, m) in self.members.iter().enumerate() {
            for (field, value) in [("name", &m.name.0), ("dc", &m.dc.0), ("zone", &m.zone.0)] {
                if value.trim().is_empty() {
                    return Err(TopologyError::EmptyField { index, field });
                }
            }
            if !names.insert(m.name.0.as_str()) {
                return Err(TopologyError::DuplicateName(m.name.0.clone()));
            }
            let fields = [
                ("peer_url", Some(&m.peer_url)),
                ("client_url", Some(&m.client_url)),
                ("admin_url", m.admin_url.as_ref()),
            ];
            for (field, url) in fields {
                let Some(url) = url else { continue };
                check_url(url).map_err(|why| TopologyError::BadUrl {
                    member: m.name.0.clone(),
                    field,
                    url: url.clone(),
                    why,
                })?;
                let normalized = url.trim_end_matches('/').to_owned();
                let this = format!("{} {field}", m.name.0);
                if let Some(first) = urls.insert(normalized.clone(), this.clone()) {
                    return Err(TopologyError::DuplicateUrl { url: normalized, first, second: this });
                }
            }
        }

        let total = self.voters().count();
        if total == 0 {
            return Err(TopologyError::NoVoters);
        }
        let dcs: BTreeSet<&str> = self.members.iter().map(|m| m.dc.0.as_str()).collect();
        let mut voters_per_dc: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.voters() {
            *voters_per_dc.entry(m.dc.0.as_str()).or_default() += 1;
        }

        let mut warnings = Vec::new();
        let mut seen = BTreeSet::new();
        for dc in &self.policy.leader_preference {
            if !dcs.contains(dc.0.as_str()) {
                return Err(TopologyError::UnknownPreferredDc(dc.0.clone()));
            }
            if !seen.insert(dc.0.as_str()) {
                return Err(TopologyError::DuplicatePreferredDc(dc.0.clone()));
            }
            if !voters_per_dc.contains_key(dc.0.as_str()) {
                warnings.push(TopologyWarning::PreferredDcWithoutVoters(dc.0.clone()));
            }
        }

        for link in &self.wan.links {
            for dc in [&link.from, &link.to] {
                if !dcs.contains(dc.0.as_str()) {
                    return Err(TopologyError::UnknownWanDc {
                        from: link.from.0.clone(),
                        to: link.to.0.clone(),
                        dc: dc.0.clone(),
                    });
                }
            }
            if !(0.0..=1.0).contains(&link.loss) {
                return Err(TopologyError::BadLoss {
                    from: link.from.0.clone(),
                    to: link.to.0.clone(),
                    loss: link.loss.to_string(),
                });
            }
        }

        validate_groups(&self.failover_groups, &self.datacenters())?;

        let (heartbeat_ms, election_ms) = (self.timing.heartbeat_ms(), self.timing.election_ms());
        if !self.timing.is_valid() {
            return Err(TopologyError::BadTiming { heartbeat_ms, election_ms });
        }

        // A DC holding half or more of the voters takes the quorum with it when it goes down.
        for (dc, voters) in &voters_per_dc {
            if voters * 2 >= total {
                let w = TopologyWarning::DcHoldsMajority { dc: (*dc).to_owned(), voters: *voters, total };
                if !force {
                    return Err(TopologyError::SingleDcMajority(w));
                }
                warnings.push(w);
            }
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests;
