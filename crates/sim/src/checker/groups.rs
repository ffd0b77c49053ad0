//! Failover groups, as their hooks saw them (the recorder acknowledges every call at once): a token names one
//! active datacenter, never two; and once a token has been acknowledged, no hook of that group is called with a
//! smaller one (a receiver that keeps the largest token it has seen would otherwise refuse a true switch, or a
//! stale leader would announce an old active datacenter).
//!
//! Liveness, from the runner's samples of the leader's store ([`GroupTimeline`], every 20 ms of the fault phase):
//! while the leader's store shows the group active in a datacenter it also shows `down`, with another of the
//! group's datacenters not `down`, the same leader (member and term) in office throughout and no fault in force
//! but a datacenter's isolation, the group must have moved within the timeline's `switch_bound_ms` (two
//! heartbeats and an election timeout, `runner::group_switch_bound_ms`: the driver's tick, the read barrier and
//! the switch's commit, and one failed round). A span in which any of those conditions lapses (a new leader, a
//! crash, a lossy link, the verdict lifted) is not judged, nor is one cut short by the end of the sampling; the
//! sampling's 20 ms step is far inside the bound.

use std::collections::BTreeMap;

use crate::history::{GroupTimeline, History};

/// A failover-group invariant broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupViolation {
    /// Two calls with one token named different datacenters.
    #[error("group {group}: token {token} announced both {first} and {second} as active")]
    TwoActiveForOneToken {
        /// The group.
        group: String,
        /// The token.
        token: i64,
        /// The datacenter of the first call.
        first: String,
        /// The other.
        second: String,
    },
    /// A stable leader left the group active in a datacenter its store showed `down` for longer than the bound.
    #[error(
        "group {group} stayed active in {dc}, down in the leader's store, from {from}ns for {held_ms} ms under leader {leader} (bound {bound_ms} ms) while {alive:?} were not down"
    )]
    NotMovedOffDown {
        /// The group.
        group: String,
        /// The down datacenter it stayed in.
        dc: String,
        /// When the span began.
        from: u64,
        /// How long it lasted (at least), in milliseconds.
        held_ms: u64,
        /// The leader throughout.
        leader: String,
        /// The bound.
        bound_ms: u64,
        /// The group's datacenters not down then.
        alive: Vec<String>,
    },
    /// A call with a smaller token after a larger one was acknowledged.
    #[error("group {group}: token {token} was announced after token {acknowledged} had been acknowledged")]
    TokenWentBack {
        /// The group.
        group: String,
        /// The later, smaller token.
        token: i64,
        /// The larger token acknowledged before.
        acknowledged: i64,
    },
}

/// Checks the hook calls of `history`, and with `liveness` its group timeline.
pub fn check(history: &History, liveness: bool) -> Vec<GroupViolation> {
    let mut out = hooks(history);
    if liveness && let Some(timeline) = &history.group_timeline {
        out.extend(moved_off_down(timeline));
    }
    out
}

/// Spans in which a stable leader kept the group on a `down` datacenter longer than the bound.
fn moved_off_down(t: &GroupTimeline) -> Vec<GroupViolation> {
    // The judged condition of one sample: (leader, term, the down active datacenter).
    let judged = |i: usize| {
        let s = &t.samples[i];
        let (leader, active) = (s.leader.as_ref()?, s.active.as_ref()?);
        let another_up = t.datacenters.iter().any(|d| d != active && !s.down.contains(d));
        (!s.other_fault && s.down.contains(active) && another_up).then_some((leader, active))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.samples.len() {
        let Some(condition) = judged(i) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < t.samples.len() && judged(j) == Some(condition) {
            j += 1;
        }
        // The span ends at the next sample (something changed) or where sampling stopped.
        let from = t.samples[i].at;
        let to = t.samples.get(j).map_or(t.until, |s| s.at);
        let held_ms = to.saturating_sub(from) / 1_000_000;
        if held_ms > t.switch_bound_ms {
            let s = &t.samples[i];
            out.push(GroupViolation::NotMovedOffDown {
                group: t.group.clone(),
                dc: condition.1.clone(),
                from,
                held_ms,
                leader: format!("{} (term {})", condition.0.0, condition.0.1),
                bound_ms: t.switch_bound_ms,
                alive: t.datacenters.iter().filter(|d| !s.down.contains(d)).cloned().collect(),
            });
        }
        i = j;
    }
    out
}

/// The hook calls: one datacenter per token, tokens never going back.
fn hooks(history: &History) -> Vec<GroupViolation> {
    let mut out = Vec::new();
    let mut dc_of: BTreeMap<(&str, i64), &str> = BTreeMap::new();
    let mut highest: BTreeMap<&str, i64> = BTreeMap::new();
    for call in &history.hook_calls {
        let group = call.group.as_str();
        match dc_of.get(&(group, call.token)) {
            Some(first) if *first != call.dc => out.push(GroupViolation::TwoActiveForOneToken {
                group: group.to_owned(),
                token: call.token,
                first: (*first).to_owned(),
                second: call.dc.clone(),
            }),
            Some(_) => {}
            None => {
                dc_of.insert((group, call.token), call.dc.as_str());
            }
        }
        let top = highest.entry(group).or_insert(call.token);
        if call.token < *top {
            out.push(GroupViolation::TokenWentBack { group: group.to_owned(), token: call.token, acknowledged: *top });
        }
        *top = (*top).max(call.token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{GroupSample, HookCallRecord};

    fn call(dc: &str, token: i64) -> HookCallRecord {
        HookCallRecord { group: "svc".into(), dc: dc.into(), token, term: 2 }
    }

    fn sample(at_ms: u64, term: u64, down: &[&str], active: &str) -> GroupSample {
        GroupSample {
            at: at_ms * 1_000_000,
            leader: Some(("b1".into(), term)),
            down: down.iter().map(|d| (*d).to_owned()).collect(),
            active: Some(active.into()),
            other_fault: false,
        }
    }

    fn timeline(samples: Vec<GroupSample>, until_ms: u64) -> History {
        History {
            group_timeline: Some(GroupTimeline {
                group: "svc".into(),
                datacenters: vec!["dc-a".into(), "dc-b".into(), "dc-c".into()],
                switch_bound_ms: 1200,
                samples,
                until: until_ms * 1_000_000,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_group_left_on_a_down_datacenter_under_a_stable_leader_is_caught() {
        let moved = timeline(
            vec![sample(0, 3, &[], "dc-a"), sample(100, 3, &["dc-a"], "dc-a"), sample(400, 3, &["dc-a"], "dc-b")],
            9000,
        );
        assert_eq!(check(&moved, true), []);
        let stuck = timeline(
            vec![sample(0, 3, &[], "dc-a"), sample(100, 3, &["dc-a"], "dc-a"), sample(2000, 3, &["dc-a"], "dc-b")],
            9000,
        );
        assert!(matches!(&check(&stuck, true)[..], [GroupViolation::NotMovedOffDown { held_ms: 1900, .. }]));
        assert_eq!(check(&stuck, false), []);
        // A new leader at 1000 ms starts the span again; so does the end of sampling.
        let new_leader = timeline(
            vec![
                sample(100, 3, &["dc-a"], "dc-a"),
                sample(1000, 4, &["dc-a"], "dc-a"),
                sample(1500, 4, &["dc-a"], "dc-b"),
            ],
            9000,
        );
        assert_eq!(check(&new_leader, true), []);
        let cut_short = timeline(vec![sample(100, 3, &["dc-a"], "dc-a")], 1000);
        assert_eq!(check(&cut_short, true), []);
        // Nowhere to go: every other datacenter down too.
        let nowhere = timeline(vec![sample(100, 3, &["dc-a", "dc-b", "dc-c"], "dc-a")], 9000);
        assert_eq!(check(&nowhere, true), []);
    }

    #[test]
    fn repeated_calls_of_one_token_are_fine_and_going_back_or_changing_the_dc_is_not() {
        let ok = History { hook_calls: vec![call("dc-a", 3), call("dc-a", 3), call("dc-b", 9)], ..Default::default() };
        assert!(check(&ok, true).is_empty());
        let back =
            History { hook_calls: vec![call("dc-a", 3), call("dc-b", 9), call("dc-a", 3)], ..Default::default() };
        assert_eq!(
            check(&back, true),
            [GroupViolation::TokenWentBack { group: "svc".into(), token: 3, acknowledged: 9 }]
        );
        let two = History { hook_calls: vec![call("dc-a", 3), call("dc-b", 3)], ..Default::default() };
        assert!(matches!(check(&two, true)[0], GroupViolation::TwoActiveForOneToken { token: 3, .. }));
    }
}
