//! Datacenter verdicts. Safety: every `down` verdict the leader wrote carries, as evidence, a majority of the
//! voters outside the datacenter that reached none of its members (a verdict written from a minority's view is
//! split brain waiting to happen). Liveness: a datacenter cut off from the rest for longer than the detection
//! window (with the leader outside it, so no election had to come first) was `down` by the heal, and once every
//! fault had healed, every datacenter went back to `up`.

use std::collections::BTreeMap;

use meridian_failover::{DcState, VerdictRecord};

use crate::history::{History, VerdictSetup};

/// Beyond the detection window, how long an isolation must last before its `down` verdict is expected: reports
/// travel to the leader every heartbeat, and the write must commit.
const VERDICT_SLACK_NS: u64 = 1_000_000_000;

/// How far a member's clock may be from the simulation's (drift over a run, milliseconds rounding).
const CLOCK_SLACK_NS: u64 = 100_000_000;

/// A verdict invariant broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerdictViolation {
    /// A `down` verdict whose evidence holds fewer confirming voters than a majority of those outside.
    #[error(
        "at revision {revision} {dc} was declared down on the word of {confirming:?}, fewer than the {needed} voters outside it a majority needs"
    )]
    DownWithoutQuorum {
        /// The verdict's revision.
        revision: i64,
        /// The datacenter.
        dc: String,
        /// Voters outside it whose evidence reached none of its members.
        confirming: Vec<String>,
        /// A majority of the voters outside it.
        needed: usize,
    },
    /// A verdict decided (its `since` at the latest) by a leader of term `term` after a majority already followed
    /// a leader of a later term: a deposed leader's view, committed all the same.
    #[error(
        "at revision {revision} {dc} was declared {state} by the leader of term {term} at {since}ns, after a majority followed the leader of term {newer_term} (from {elected_at}ns)"
    )]
    DecidedByDeposedLeader {
        /// The verdict's revision.
        revision: i64,
        /// The datacenter.
        dc: String,
        /// The state written.
        state: String,
        /// The term the verdict carries.
        term: u64,
        /// When its state began, as the deciding leader's clock had it.
        since: u64,
        /// The later term.
        newer_term: u64,
        /// When a majority followed its leader.
        elected_at: u64,
    },
    /// A verdict value that is not a verdict record.
    #[error("at revision {revision} the verdict under {key} does not parse: {reason}")]
    Unreadable {
        /// Its revision.
        revision: i64,
        /// Its key.
        key: String,
        /// The parse error.
        reason: String,
    },
    /// A long isolation with the leader outside it that did not end in `down`.
    #[error(
        "{dc} was cut off from {from}ns to {until}ns with the leader outside it, yet its verdict at the heal was {state}"
    )]
    IsolationNotDown {
        /// The datacenter.
        dc: String,
        /// When it was cut off.
        from: u64,
        /// When it healed.
        until: u64,
        /// Its verdict in the leader's store then.
        state: String,
    },
    /// After every fault healed, some datacenter did not return to `up`.
    #[error("at {at}ns, long after every fault healed, the verdicts were {states:?}")]
    NotUpAfterHeal {
        /// When the runner looked.
        at: u64,
        /// The verdicts then.
        states: Vec<(String, String)>,
    },
}

/// Checks the verdicts of `history` (nothing, for a history recorded without them); the liveness expectations
/// only with `liveness`.
pub fn check(history: &History, liveness: bool) -> Vec<VerdictViolation> {
    let Some(setup) = &history.verdict_setup else { return Vec::new() };
    let mut out = quorum(history, setup);
    if !liveness {
        return out;
    }
    for iso in &setup.isolations {
        let long_enough =
            iso.until.saturating_sub(iso.from) >= setup.detection_window_ms * 1_000_000 + VERDICT_SLACK_NS;
        if let (false, true, Some(state)) = (iso.leader_inside, long_enough, &iso.state_at_heal)
            && state != DcState::Down.as_str()
        {
            out.push(VerdictViolation::IsolationNotDown {
                dc: iso.dc.clone(),
                from: iso.from,
                until: iso.until,
                state: state.clone(),
            });
        }
    }
    if let Some(last) = &history.final_verdicts
        && (last.states.len() < crate::cluster::DCS.len() || last.states.iter().any(|(_, s)| s != DcState::Up.as_str()))
    {
        out.push(VerdictViolation::NotUpAfterHeal { at: last.at, states: last.states.clone() });
    }
    out
}

/// Every `down` verdict seen on any verdict watch (each revision once) has its majority.
fn quorum(history: &History, setup: &VerdictSetup) -> Vec<VerdictViolation> {
    let mut seen: BTreeMap<i64, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    for log in &history.verdict_watches {
        for resp in &log.responses {
            for e in &resp.events {
                seen.entry(e.mod_revision).or_insert_with(|| (e.key.clone(), e.value.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for (revision, (key, value)) in seen {
        let key = String::from_utf8_lossy(&key).into_owned();
        let record = match VerdictRecord::parse(&key, &value) {
            Ok(r) => r,
            Err(e) => {
                out.push(VerdictViolation::Unreadable { revision, key, reason: e.to_string() });
                continue;
            }
        };
        // `since` is at or before the decision; a majority following a later leader before it means the verdict
        // was decided by a deposed leader (allowing the members' clock drift).
        let since = record.since_unix_ms.saturating_sub(setup.epoch_unix_ms).saturating_mul(1_000_000);
        if let Some((elected_at, newer_term)) =
            setup.leader_terms.iter().find(|(at, t)| *t > record.term && at.saturating_add(CLOCK_SLACK_NS) < since)
        {
            out.push(VerdictViolation::DecidedByDeposedLeader {
                revision,
                dc: record.dc.0.clone(),
                state: record.state.as_str().to_owned(),
                term: record.term,
                since,
                newer_term: *newer_term,
                elected_at: *elected_at,
            });
        }
        if record.state != DcState::Down {
            continue;
        }
        let dc = record.dc.0.clone();
        let outside: Vec<&str> = setup.voters.iter().filter(|(_, d)| *d != dc).map(|(n, _)| n.as_str()).collect();
        let needed = outside.len() / 2 + 1;
        let mut confirming: Vec<String> = record
            .evidence
            .iter()
            .filter(|e| e.voter && e.reached.is_empty() && !e.unreachable.is_empty())
            .filter(|e| outside.contains(&e.reporter.as_str()))
            .map(|e| e.reporter.clone())
            .collect();
        confirming.sort();
        confirming.dedup();
        if confirming.len() < needed {
            out.push(VerdictViolation::DownWithoutQuorum { revision, dc, confirming, needed });
        }
    }
    out
}
