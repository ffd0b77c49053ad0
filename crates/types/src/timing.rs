//! Raft timing: the LAN and WAN presets, and explicit heartbeat and election timeouts that override them.

use serde::{Deserialize, Serialize};

/// Named timing presets for Raft heartbeats and elections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingPreset {
    /// Members within one metro area: 100 ms heartbeat, 1 s election timeout (etcd's defaults).
    #[default]
    Lan,
    /// Members across regions: 250 ms heartbeat, 2.5 s election timeout.
    Wan,
}

/// Raft timing, either from a preset or given explicitly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// The preset that supplies any value not given explicitly.
    pub preset: TimingPreset,
    /// Leader heartbeat interval in milliseconds.
    pub heartbeat_ms: Option<u64>,
    /// Election timeout in milliseconds: how long a follower hears nothing from its leader before it
    /// campaigns, at least (see [`TimingConfig::raft_election_bounds_ms`]).
    pub election_ms: Option<u64>,
}

impl TimingConfig {
    /// The effective heartbeat interval.
    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_ms.unwrap_or(match self.preset {
            TimingPreset::Lan => 100,
            TimingPreset::Wan => 250,
        })
    }

    /// The effective election timeout.
    pub fn election_ms(&self) -> u64 {
        self.election_ms.unwrap_or(match self.preset {
            TimingPreset::Lan => 1000,
            TimingPreset::Wan => 2500,
        })
    }

    /// The longest a majority may go without a leader after losing it (its leader crashed or cut off), in
    /// milliseconds: twice the election timeout and two heartbeats. A follower campaigns after at most `4E/3` of
    /// silence (see [`TimingConfig::raft_election_bounds_ms`]); one split vote costs another election timer of at
    /// most `2E/3`; the two heartbeats are for the round trips of the pre-vote and the vote across datacenters
    /// (without them the worst case of the first two already fills `2E`: the simulation saw 2100 ms against a 1 s
    /// timeout, a failed round then the vote, once in 500 seeds). A follower that sees the leader's process gone
    /// campaigns at once, far inside it.
    pub fn failover_bound_ms(&self) -> u64 {
        2 * self.election_ms() + 2 * self.heartbeat_ms()
    }

    /// The longest a majority may go without a leader after the leader's *process* died (its peer address
    /// refuses connections), in milliseconds: one election timeout and one heartbeat. The survivors see the death
    /// at once and campaign in turn, one every heartbeat, so only a member that missed the death waits out the
    /// timer; the heartbeat is for the vote round after it (the simulation saw 1057 ms with a 1 s timeout once
    /// in 500 seeds: a survivor that missed the death, then a vote across datacenters).
    pub fn dead_leader_failover_bound_ms(&self) -> u64 {
        self.election_ms() + self.heartbeat_ms()
    }

    /// Whether the timing can be used: a positive heartbeat, and an election timeout of more than three
    /// heartbeats (openraft's smallest election timer, a third of it, must exceed the heartbeat).
    pub fn is_valid(&self) -> bool {
        let heartbeat = self.heartbeat_ms();
        heartbeat > 0 && self.election_ms() > heartbeat.saturating_mul(3)
    }

    /// openraft's `(election_timeout_min, election_timeout_max)` for this election timeout `E`: `(E/3, 2E/3)`.
    ///
    /// openraft counts a follower's silence from its leader in two parts: the leader lease, which equals
    /// `election_timeout_max` and during which the follower refuses to vote for anyone, and then its
    /// election timer, drawn from `[min, max)`. So a follower campaigns after `max + [min, max)` =
    /// `[E, 4E/3)` of silence: never sooner than `E`, as etcd's followers, and since every other follower's
    /// lease has run out by then (`2E/3 < E`), its pre-vote is granted at the first try. etcd draws its
    /// followers' timeouts from `[E, 2E)`. With openraft's bounds set to `(E, 1.5E)` instead, followers waited
    /// 2.5–3 s on the LAN preset before a pre-vote their peers still refused (their leases had 1.5 s to run).
    /// The lease is also how long a leader goes without a quorum's acknowledgement before it stops serving
    /// (the isolated-leader watchdog), and the age a lease read may rely on: `2E/3`, before any follower can
    /// campaign.
    pub fn raft_election_bounds_ms(&self) -> (u64, u64) {
        let e = self.election_ms();
        (e / 3, e * 2 / 3)
    }

    /// etcd's minimum lease TTL: one and a half election timeouts, rounded up to whole seconds.
    pub fn min_lease_ttl_secs(&self) -> i64 {
        let ms = self.election_ms() * 3 / 2;
        i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_campaign_after_one_to_four_thirds_of_the_election_timeout() {
        for preset in [TimingPreset::Lan, TimingPreset::Wan] {
            let t = TimingConfig { preset, ..TimingConfig::default() };
            let (min, max) = t.raft_election_bounds_ms();
            let e = t.election_ms();
            // Silence before a campaign is the lease (= max) plus a timer drawn from [min, max).
            assert_eq!(max + min, e - e % 3, "{preset:?}: the earliest campaign comes after E");
            assert!(2 * max < e * 4 / 3 + 1, "{preset:?}: the latest comes before 4E/3");
            assert!(min > t.heartbeat_ms(), "{preset:?}: openraft needs its smallest timer above the heartbeat");
            assert!(t.is_valid());
        }
    }

    #[test]
    fn an_election_timeout_of_three_heartbeats_or_less_is_invalid() {
        let t = |heartbeat_ms, election_ms| TimingConfig {
            heartbeat_ms: Some(heartbeat_ms),
            election_ms: Some(election_ms),
            ..TimingConfig::default()
        };
        assert!(!t(100, 300).is_valid());
        assert!(t(100, 301).is_valid());
        assert!(!t(0, 1000).is_valid());
    }
}
