//! Leader placement policy (design §5, "leader affinity"): a pure state machine, ticked by the
//! leader with what it currently knows about every voter, that decides whether leadership should
//! stay or move to another datacenter.
//!
//! Rules:
//! - a voter is *healthy* when it acknowledged the leader within `healthy_ack_ms` (an election
//!   timeout) and its matched log index is within `max_lag` entries of the leader's last index;
//!   the leader itself is always healthy from its own point of view;
//! - a datacenter is healthy while it has at least one healthy voter, and *stable* once it has been
//!   continuously healthy for `failback_hold_ms`;
//! - the target is the most preferred stable datacenter (order of `leader_preference`; datacenters
//!   not listed rank after every listed one and are never a target); the leader moves there,
//!   to its healthy voter with the highest matched index, when it ranks better than the leader's own;
//! - after a transfer, no new transfer is ordered for `cooldown_ms`, so a transfer that is slow to
//!   complete is not re-issued, and leadership cannot ping-pong.
//!
//! A leader that sees no healthy quorum never orders a transfer.
//!
//! A fresh state machine (a new leader) has seen no datacenter healthy for any time yet, so it
//! always waits one hold before moving leadership: that is the hysteresis against flapping.
//! Time is passed in as milliseconds since an arbitrary epoch; the state machine never reads a clock.

use std::collections::BTreeMap;

use meridian_types::{DcName, NodeId};

/// Tunables of the placement policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementConfig {
    /// Datacenters in the order the leader should live in them, most preferred first.
    pub leader_preference: Vec<DcName>,
    /// How long a datacenter must be continuously healthy before leadership moves into it.
    pub failback_hold_ms: u64,
    /// A voter that has not acknowledged the leader for longer than this is unhealthy
    /// (normally the election timeout).
    pub healthy_ack_ms: u64,
    /// A voter whose matched index trails the leader's last log index by more than this is not
    /// caught up.
    pub max_lag: u64,
    /// Minimum time between two transfers ordered by this state machine.
    pub cooldown_ms: u64,
}

/// What the leader knows about one member at the time of a tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// The member.
    pub id: NodeId,
    /// Its datacenter.
    pub dc: DcName,
    /// Whether it votes; learners are never leadership targets and never make a datacenter healthy.
    pub voter: bool,
    /// When it last acknowledged the leader (ms, same epoch as `now_ms`), if ever.
    pub last_ack_ms: Option<u64>,
    /// The highest log index known replicated to it, if any.
    pub matched: Option<u64>,
    /// It raised the NOSPACE alarm (its disk or its database is full): never a leadership target.
    pub no_space: bool,
}

/// One tick's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Current time (ms since an arbitrary epoch).
    pub now_ms: u64,
    /// The current leader (the member ticking the state machine).
    pub leader: NodeId,
    /// Index of the leader's last log entry.
    pub leader_last_index: u64,
    /// Every member of the effective membership, the leader included.
    pub members: Vec<MemberView>,
}

/// The policy's verdict for one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Leadership stays where it is.
    Stay {
        /// Why, for humans (status and admin API).
        reason: String,
    },
    /// Leadership should be transferred to `to`.
    Transfer {
        /// The voter that should become leader.
        to: NodeId,
        /// Why, for humans.
        reason: String,
    },
}

impl Decision {
    /// The human-readable reason of either variant.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Stay { reason } | Decision::Transfer { reason, .. } => reason,
        }
    }
}

/// The placement state machine. One instance lives as long as one leadership term of this member.
#[derive(Clone, Debug)]
pub struct Placement {
    cfg: PlacementConfig,
    /// Datacenter → time since which it has been continuously healthy.
    healthy_since: BTreeMap<DcName, u64>,
    /// Datacenter → time since which it has been unhealthy (only for datacenters seen healthy or
    /// unhealthy at least once).
    unhealthy_since: BTreeMap<DcName, u64>,
    /// When the last transfer was ordered.
    last_transfer_ms: Option<u64>,
}

impl Placement {
    /// A state machine that has observed nothing yet.
    pub fn new(cfg: PlacementConfig) -> Self {
        Placement { cfg, healthy_since: BTreeMap::new(), unhealthy_since: BTreeMap::new(), last_transfer_ms: None }
    }

    /// The configuration in use.
    pub fn config(&self) -> &PlacementConfig {
        &self.cfg
    }

    /// Feed one observation; returns whether leadership should move.
    pub fn tick(&mut self, obs: &Observation) -> Decision {
        let now = obs.now_ms;
        let healthy = self.healthy_voters(obs);
        self.update_dc_health(obs, &healthy);

        let Some(leader_dc) = obs.members.iter().find(|m| m.id == obs.leader).map(|m| m.dc.clone()) else {
            return Decision::Stay { reason: format!("leader {} is not in the membership", obs.leader) };
        };
        // A leader cut off from its quorum is not in a position to move leadership anywhere (and
        // the watchdog already refuses requests); say so instead of claiming a healthy placement.
        let voters = obs.members.iter().filter(|m| m.voter).count();
        if healthy.len() * 2 <= voters {
            return Decision::Stay {
                reason: format!(
                    "leader in {leader_dc} has lost contact with a quorum ({} of {voters} voters healthy)",
                    healthy.len()
                ),
            };
        }
        if self.cfg.leader_preference.is_empty() {
            return Decision::Stay { reason: format!("leader in {leader_dc}: no leader preference configured") };
        }
        let leader_rank = self.rank(&leader_dc);

        // Walk the preferred datacenters that rank better than the leader's, best first; the first
        // one that is healthy and stable is the target. Remember why the better ones were skipped.
        let mut skipped: Option<String> = None;
        for dc in self.cfg.leader_preference.iter().take(leader_rank) {
            let Some(since) = self.healthy_since.get(dc).copied() else {
                skipped.get_or_insert_with(|| self.unhealthy_text(dc, now));
                continue;
            };
            let stable_for = now.saturating_sub(since);
            if stable_for < self.cfg.failback_hold_ms {
                skipped.get_or_insert_with(|| {
                    format!(
                        "waiting for {dc} to be stable for {} before failback (healthy for {})",
                        secs(self.cfg.failback_hold_ms),
                        secs(stable_for)
                    )
                });
                continue;
            }
            if let Some(last) = self.last_transfer_ms {
                let since_last = now.saturating_sub(last);
                if since_last < self.cfg.cooldown_ms {
                    return Decision::Stay {
                        reason: format!(
                            "leader in {leader_dc}: last transfer {} ago, cooling down for {} before moving to {dc}",
                            secs(since_last),
                            secs(self.cfg.cooldown_ms)
                        ),
                    };
                }
            }
            let Some(to) = best_voter(obs, dc, &healthy) else {
                // healthy_since says the DC has a healthy voter; this cannot happen, but staying is safe.
                continue;
            };
            self.last_transfer_ms = Some(now);
            let why = match &skipped {
                Some(s) => format!("{s}; "),
                None => String::new(),
            };
            return Decision::Transfer {
                to,
                reason: format!(
                    "{why}moving leader from {leader_dc} to {dc}: most preferred healthy DC (stable for {})",
                    secs(stable_for)
                ),
            };
        }

        let reason = match (skipped, leader_rank) {
            (None, 0) => format!("leader in {leader_dc}: most preferred healthy DC"),
            (None, _) => format!("leader in {leader_dc}: no more preferred DC"),
            (Some(s), r) if r < self.cfg.leader_preference.len() => {
                format!("{s}; leader in {leader_dc}")
            }
            (Some(s), _) => format!("{s}; leader in {leader_dc} (not in the preference list)"),
        };
        Decision::Stay { reason }
    }

    /// Position of `dc` in the preference list; unlisted datacenters rank after all listed ones.
    fn rank(&self, dc: &DcName) -> usize {
        self.cfg.leader_preference.iter().position(|d| d == dc).unwrap_or(self.cfg.leader_preference.len())
    }

    /// Ids of the voters that count as healthy at `obs.now_ms`.
    fn healthy_voters(&self, obs: &Observation) -> Vec<NodeId> {
        obs.members
            .iter()
            .filter(|m| m.voter)
            .filter(|m| {
                if m.id == obs.leader {
                    return true;
                }
                let acked = m.last_ack_ms.is_some_and(|t| obs.now_ms.saturating_sub(t) <= self.cfg.healthy_ack_ms);
                let lag = obs.leader_last_index.saturating_sub(m.matched.unwrap_or(0));
                acked && lag <= self.cfg.max_lag
            })
            .map(|m| m.id)
            .collect()
    }

    fn update_dc_health(&mut self, obs: &Observation, healthy: &[NodeId]) {
        let now = obs.now_ms;
        let mut dcs: BTreeMap<&DcName, bool> = BTreeMap::new();
        for m in obs.members.iter().filter(|m| m.voter) {
            *dcs.entry(&m.dc).or_insert(false) |= healthy.contains(&m.id);
        }
        for dc in &self.cfg.leader_preference {
            dcs.entry(dc).or_insert(false);
        }
        for (dc, ok) in dcs {
            if ok {
                self.unhealthy_since.remove(dc);
                self.healthy_since.entry(dc.clone()).or_insert(now);
            } else {
                self.healthy_since.remove(dc);
                self.unhealthy_since.entry(dc.clone()).or_insert(now);
            }
        }
    }

    fn unhealthy_text(&self, dc: &DcName, now: u64) -> String {
        match self.unhealthy_since.get(dc) {
            Some(since) => format!("{dc} unhealthy for {}", secs(now.saturating_sub(*since))),
            None => format!("{dc} unhealthy"),
        }
    }
}

/// The healthy voter of `dc` without NOSPACE with the highest matched index (lowest id on ties).
fn best_voter(obs: &Observation, dc: &DcName, healthy: &[NodeId]) -> Option<NodeId> {
    obs.members
        .iter()
        .filter(|m| m.voter && !m.no_space && &m.dc == dc && healthy.contains(&m.id))
        .max_by(|a, b| a.matched.cmp(&b.matched).then(b.id.cmp(&a.id)))
        .map(|m| m.id)
}

/// Milliseconds as seconds with one decimal, for reasons.
fn secs(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
