//! Membership changes as a fault. In the runs the seed picks, the nemesis takes the joiner (see
//! [`crate::cluster`]) through etcd's whole sequence while the workload and the other faults run:
//! `MemberAdd` as a learner (after which the joiner's host starts), `MemberPromote` to voter once it
//! has caught up, and `MemberRemove`. Each call goes to one of the founders (Meridian forwards
//! membership requests to the leader), moving on to the next after an answer worth retrying.
//!
//! Each step starts at its seed-chosen time in the fault phase, is tried at most [`MAX_ATTEMPTS`]
//! times, and starts no attempt after the plan's deadline (the end of the clients' quiet tail, so the
//! membership is settled when the liveness check begins). Each step tried counts as one scheduled
//! [`FaultKind::Membership`], and as one that took effect if it did. When the add does not, the sequence stops; a failed promotion still
//! leads to the removal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::auth_channel::SimChannel as Channel;
use meridian_proto::etcdserverpb::cluster_client::ClusterClient;
use meridian_proto::etcdserverpb::{MemberAddRequest, MemberPromoteRequest, MemberRemoveRequest};
use meridian_types::EtcdError;
use parking_lot::Mutex;
use tonic::{Code, Status};

use crate::cluster::SimCluster;
use crate::faults::{FaultCounts, FaultKind};
use crate::recorder::now_ns;
use crate::rng::SimRng;
use crate::sim_net::client_channels;

/// Attempts per step before giving up.
const MAX_ATTEMPTS: u32 = 20;
/// Pause between attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Mixed into the run's seed for this nemesis's own generator, so its draws leave the others alone.
const SALT: u64 = 0x6d65_6d62_6572_7321;
/// Chance that a run changes the membership at all.
const CHANCE: f64 = 0.5;
/// Where in the fault phase each step is scheduled, as a window of per-mille of its length.
const WINDOWS: [(u64, u64); 3] = [(0, 250), (300, 550), (600, 850)];

/// One step of the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `MemberAdd` as a learner.
    Add,
    /// `MemberPromote` to voter.
    Promote,
    /// `MemberRemove`.
    Remove,
}

/// What to make of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// The step took effect.
    Done,
    /// Try again (elsewhere); `maybe_applied` when the attempt may have taken effect all the same.
    Retry {
        /// Whether the attempt's fate is unknown.
        maybe_applied: bool,
    },
    /// A definite refusal that retrying will not change.
    GiveUp,
}

/// When and through whom the membership changes happen in one run.
#[derive(Clone, Debug)]
pub struct MembershipPlan {
    /// Client URLs of the founders, the first one tried first.
    pub endpoints: Vec<String>,
    /// The joiner's peer URL (what `MemberAdd` names).
    pub peer_url: String,
    /// The joiner's member id.
    pub id: u64,
    /// When to add, promote and remove (simulated ns).
    pub at_ns: [u64; 3],
    /// No attempt starts after this (simulated ns).
    pub deadline_ns: u64,
}

impl MembershipPlan {
    /// The plan for `seed`, or `None` when the seed changes no membership. Steps fall in the fault
    /// phase `from..from + phase`; attempts stop at `deadline`.
    pub fn draw(seed: u64, cluster: &SimCluster, from: Duration, phase: Duration, deadline: Duration) -> Option<Self> {
        let mut rng = SimRng::new(seed ^ SALT);
        if !rng.chance(CHANCE) {
            return None;
        }
        let (from, phase) = (nanos(from), nanos(phase));
        let at_ns = WINDOWS.map(|(lo, hi)| from + phase / 1000 * rng.between(lo, hi));
        let mut endpoints: Vec<String> = cluster.members.iter().map(|m| m.client_url()).collect();
        let first = rng.below(endpoints.len() as u64) as usize;
        endpoints.rotate_left(first);
        Some(MembershipPlan {
            endpoints,
            peer_url: cluster.joiner.peer_url(),
            id: cluster.joiner.id.0,
            at_ns,
            deadline_ns: nanos(deadline),
        })
    }
}

/// The nemesis: runs `plan`, sets `added` once the joiner is a member (its host waits for that),
/// and counts each step tried, and whether it took effect, in `counts`.
pub async fn run(plan: MembershipPlan, added: Arc<AtomicBool>, counts: Arc<Mutex<FaultCounts>>) -> turmoil::Result {
    let channels = client_channels(&plan.endpoints, CALL_TIMEOUT);
    let mut next = 0;
    for (step, at) in [Step::Add, Step::Promote, Step::Remove].into_iter().zip(plan.at_ns) {
        let now = now_ns();
        if at > now {
            tokio::time::sleep(Duration::from_nanos(at - now)).await;
        }
        let done = perform(step, &plan, &channels, &mut next).await;
        counts.lock().entry(FaultKind::Membership).or_default().add(done);
        match step {
            Step::Add if done => added.store(true, Ordering::Release),
            // Never added, or unknown: with nothing known to promote or remove, stop.
            Step::Add => return Ok(()),
            Step::Promote | Step::Remove => {}
        }
    }
    Ok(())
}

/// Tries `step` until it takes effect, is refused for good, or runs out of attempts or time.
/// Moves `next` on to the next endpoint after each failed attempt.
async fn perform(step: Step, plan: &MembershipPlan, channels: &[Channel], next: &mut usize) -> bool {
    let mut maybe_applied = false;
    for _ in 0..MAX_ATTEMPTS {
        if now_ns() >= plan.deadline_ns {
            return false;
        }
        let mut client = ClusterClient::new(channels[*next].clone());
        let answer = match step {
            Step::Add => {
                let req = MemberAddRequest { peer_ur_ls: vec![plan.peer_url.clone()], is_learner: true };
                client.member_add(req).await.map(drop)
            }
            Step::Promote => client.member_promote(MemberPromoteRequest { id: plan.id }).await.map(drop),
            Step::Remove => client.member_remove(MemberRemoveRequest { id: plan.id }).await.map(drop),
        };
        match verdict(step, answer.err().as_ref(), maybe_applied) {
            Verdict::Done => return true,
            Verdict::GiveUp => return false,
            Verdict::Retry { maybe_applied: m } => {
                maybe_applied |= m;
                *next = (*next + 1) % channels.len();
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
    false
}

/// Judges one answer (`None` = success). `maybe_applied` says an earlier attempt of the same step
/// may have taken effect: the nemesis is the only one changing the membership, so then an answer
/// that the change is already made means that attempt did.
fn verdict(step: Step, error: Option<&Status>, maybe_applied: bool) -> Verdict {
    let Some(status) = error else { return Verdict::Done };
    let is = |e: EtcdError| status.message() == e.to_string();
    let already = match step {
        Step::Add => is(EtcdError::MemberExists) || is(EtcdError::PeerUrlExists),
        Step::Promote => is(EtcdError::MemberNotLearner),
        Step::Remove => is(EtcdError::MemberNotFound),
    };
    if already {
        return if maybe_applied { Verdict::Done } else { Verdict::GiveUp };
    }
    if step == Step::Promote && is(EtcdError::LearnerNotReady) {
        return Verdict::Retry { maybe_applied: false };
    }
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::Internal => {
            Verdict::Retry { maybe_applied: true }
        }
        // The member knew a leader it could not reach; the request may have got through before.
        Code::FailedPrecondition if is(EtcdError::NotLeader) => Verdict::Retry { maybe_applied: true },
        _ => Verdict::GiveUp,
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, e: EtcdError) -> Status {
        Status::new(code, e.to_string())
    }

    #[test]
    fn answers_are_judged_per_step() {
        let exists = status(Code::FailedPrecondition, EtcdError::MemberExists);
        let not_ready = status(Code::FailedPrecondition, EtcdError::LearnerNotReady);
        let not_found = status(Code::NotFound, EtcdError::MemberNotFound);
        let no_leader = status(Code::Unavailable, EtcdError::NoLeader);
        let not_leader = status(Code::FailedPrecondition, EtcdError::NotLeader);
        let bad_url = status(Code::InvalidArgument, EtcdError::MemberBadUrls);
        let cases = [
            (Step::Add, None, false, Verdict::Done, "success"),
            (Step::Add, Some(&exists), true, Verdict::Done, "an earlier attempt added it"),
            (Step::Add, Some(&exists), false, Verdict::GiveUp, "someone else's member"),
            (Step::Promote, Some(&not_ready), false, Verdict::Retry { maybe_applied: false }, "not caught up"),
            (Step::Add, Some(&not_ready), false, Verdict::GiveUp, "nonsense for an add"),
            (Step::Remove, Some(&not_found), true, Verdict::Done, "an earlier attempt removed it"),
            (Step::Remove, Some(&no_leader), false, Verdict::Retry { maybe_applied: true }, "no leader"),
            (Step::Promote, Some(&not_leader), false, Verdict::Retry { maybe_applied: true }, "leader unreachable"),
            (Step::Add, Some(&bad_url), false, Verdict::GiveUp, "definite refusal"),
        ];
        for (step, error, maybe, want, why) in cases {
            assert_eq!(verdict(step, error, maybe), want, "{why}");
        }
    }
}
