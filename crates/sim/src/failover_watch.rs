//! Failover times: the runner tells this module when a fault takes the leader away from the majority (crashes
//! it, or cuts off its datacenter), or when a crashed majority restarts; it then watches, step by step, for
//! the majority to follow a successor of a later term, and records how long that took against the bound the
//! timing preset states: [`TimingConfig::dead_leader_failover_bound_ms`] when the leader's process was killed
//! (its address refuses connections, which the survivors notice), [`TimingConfig::failover_bound_ms`] otherwise.

use std::time::Duration;

use meridian_types::TimingConfig;

use crate::cluster::SimCluster;
use crate::faults::{Fault, FaultKind};
use crate::history::FailoverObservation;

/// A leader lost, not yet replaced.
#[derive(Clone, Debug)]
pub struct Pending {
    kind: FaultKind,
    lost_at: Duration,
    /// The highest term any live member had when the leader was lost: a successor's is higher.
    term: u64,
    /// Members that cannot be the successor (the crashed or cut-off leader).
    excluded: Vec<String>,
    bound: Duration,
}

/// The failover `fault` starts, if it takes the leader (`leader`, as the majority saw it just before) from the
/// majority: a crash of the leader, or the isolation of its datacenter. A crash of the majority is watched
/// from its restart instead ([`restarted`]).
pub fn lost(
    cluster: &SimCluster,
    fault: &Fault,
    leader: Option<&str>,
    now: Duration,
    timing: &TimingConfig,
) -> Option<Pending> {
    let leader = leader?;
    let taken = match fault {
        Fault::Crash { member, .. } => member == leader,
        Fault::Partition { kind: FaultKind::IsolateDc, pairs } => pairs.iter().any(|(inside, _)| inside == leader),
        _ => false,
    };
    let bound = match fault.kind() {
        FaultKind::KillRestart => timing.dead_leader_failover_bound_ms(),
        _ => timing.failover_bound_ms(),
    };
    taken.then(|| Pending {
        kind: fault.kind(),
        lost_at: now,
        term: highest_term(cluster),
        excluded: vec![leader.to_owned()],
        bound: Duration::from_millis(bound),
    })
}

/// The failover that starts when a fault in stages kills the leader's process ([`FaultKind::KillLeaderAfterRestart`]).
pub fn leader_killed(cluster: &SimCluster, leader: &str, now: Duration, timing: &TimingConfig) -> Pending {
    Pending {
        kind: FaultKind::KillLeaderAfterRestart,
        lost_at: now,
        term: highest_term(cluster),
        excluded: vec![leader.to_owned()],
        bound: Duration::from_millis(timing.dead_leader_failover_bound_ms()),
    }
}

/// The failover that starts when a crashed majority restarts together.
pub fn restarted(cluster: &SimCluster, now: Duration, timing: &TimingConfig) -> Pending {
    Pending {
        kind: FaultKind::CrashLeaderMajority,
        lost_at: now,
        term: highest_term(cluster),
        excluded: Vec::new(),
        bound: Duration::from_millis(timing.failover_bound_ms()),
    }
}

impl Pending {
    /// The observation, once a successor leads a majority; `None` while none does.
    pub fn successor(&self, cluster: &SimCluster, now: Duration) -> Option<FailoverObservation> {
        let leader = cluster.leader().filter(|l| !self.excluded.contains(l))?;
        let term = cluster.registry.lock().get(&leader).map(|node| node.status().term)?;
        (term > self.term).then(|| self.observation(Some(now), now))
    }

    /// The observation when the runner stops looking without a successor (the fault was healed).
    pub fn unresolved(&self, now: Duration) -> FailoverObservation {
        self.observation(None, now)
    }

    fn observation(&self, elected_at: Option<Duration>, until: Duration) -> FailoverObservation {
        FailoverObservation {
            kind: self.kind.to_string(),
            lost_at: nanos(self.lost_at),
            elected_at: elected_at.map(nanos),
            bound: nanos(self.bound),
            observed_until: nanos(until),
        }
    }
}

fn highest_term(cluster: &SimCluster) -> u64 {
    cluster.registry.lock().values().map(|node| node.status().term).max().unwrap_or(0)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
