//! Where a failover group should be active, decided from the group's definition, its current active record,
//! the verdict of every datacenter and `now`. The leader asks once per heartbeat and writes a switch through the
//! log; this module only decides.
//!
//! The rules: a group with no active datacenter takes the first of its list that is not `down`. An active
//! datacenter whose verdict is `down` hands over to the next one of the list after it that is not `down`
//! (wrapping round to the front); when every one is down the group stays. `degraded` and `partitioned` never
//! move a group: a cut link is not a dead datacenter. With automatic failback, once a datacenter more preferred
//! than the active one has been `up` for the hold, the group moves back to the most preferred such; with manual
//! failback it never moves back by itself, and neither does it after an operator chose its datacenter (a
//! promote or demote is not undone by the rules; only a failure moves such a group on).

use std::collections::BTreeMap;

use meridian_types::{DcName, Failback, FailoverGroupSpec};

use crate::{ActiveRecord, DcState};

/// What is known of one datacenter: its verdict and since when it has had it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DcStatus {
    /// The verdict.
    pub state: DcState,
    /// When the datacenter entered that state, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
}

impl DcStatus {
    /// A datacenter never judged: up, for as long as anyone knows.
    pub const UNJUDGED: DcStatus = DcStatus { state: DcState::Up, since_unix_ms: 0 };
}

/// A move of a group to another datacenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch {
    /// The datacenter to make active.
    pub to: DcName,
    /// Why, in words (stored in the active record).
    pub reason: String,
}

/// The outcome of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Leave the active record as it is, for this reason.
    Keep(String),
    /// Write a new active record.
    Switch(Switch),
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct Situation<'a> {
    /// The group's definition.
    pub group: &'a FailoverGroupSpec,
    /// The hold of groups that do not set their own (the topology policy's `failback_hold_ms`).
    pub default_hold_ms: u64,
    /// The group's current active record, if it has one.
    pub active: Option<&'a ActiveRecord>,
    /// The verdict of each datacenter; one missing here has never been judged ([`DcStatus::UNJUDGED`]).
    pub dcs: &'a BTreeMap<DcName, DcStatus>,
    /// Now, in milliseconds since the Unix epoch.
    pub now_unix_ms: u64,
}

impl Situation<'_> {
    fn status(&self, dc: &DcName) -> DcStatus {
        self.dcs.get(dc).copied().unwrap_or(DcStatus::UNJUDGED)
    }

    fn is_down(&self, dc: &DcName) -> bool {
        self.status(dc).state == DcState::Down
    }

    /// How long `dc` has been `up`, if it is.
    fn up_for_ms(&self, dc: &DcName) -> Option<u64> {
        let s = self.status(dc);
        (s.state == DcState::Up).then(|| self.now_unix_ms.saturating_sub(s.since_unix_ms))
    }
}

/// The first datacenter of `list` that is not down.
pub fn first_not_down<'a>(s: &Situation<'_>, list: &'a [DcName]) -> Option<&'a DcName> {
    list.iter().find(|dc| !s.is_down(dc))
}

/// The next datacenter of `list` after position `at` that is not down, wrapping round to the front, never
/// `list[at]` itself.
pub fn next_not_down<'a>(s: &Situation<'_>, list: &'a [DcName], at: usize) -> Option<&'a DcName> {
    let after = list.iter().skip(at + 1);
    let before = list.iter().take(at);
    after.chain(before).find(|dc| !s.is_down(dc))
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// Decides whether the group keeps its active datacenter or moves, and why.
pub fn decide(s: &Situation<'_>) -> Decision {
    let list = &s.group.datacenters;
    let Some(active) = s.active else {
        return match first_not_down(s, list) {
            Some(dc) => Decision::Switch(Switch {
                to: dc.clone(),
                reason: format!("no active datacenter yet: {dc} is the most preferred not down"),
            }),
            None => Decision::Keep("no active datacenter: every datacenter of the group is down".into()),
        };
    };
    let current = &active.dc;
    let Some(at) = list.iter().position(|dc| dc == current) else {
        return match first_not_down(s, list) {
            Some(dc) => Decision::Switch(Switch {
                to: dc.clone(),
                reason: format!("{current} is no longer in the group: {dc} is the most preferred not down"),
            }),
            None => Decision::Keep(format!("{current} is no longer in the group, but every datacenter of it is down")),
        };
    };
    if s.is_down(current) {
        return match next_not_down(s, list, at) {
            Some(dc) => Decision::Switch(Switch {
                to: dc.clone(),
                reason: format!("{current} is down: {dc} is the next datacenter not down"),
            }),
            None => Decision::Keep(format!("{current} is down, and so is every other datacenter of the group")),
        };
    }
    let hold = s.group.hold_ms(s.default_hold_ms);
    // The more preferred datacenters that are up, with how long they have been.
    let better_up: Vec<(&DcName, u64)> =
        list[..at].iter().filter_map(|dc| s.up_for_ms(dc).map(|up| (dc, up))).collect();
    let Some(&(first_better, first_up)) = better_up.first() else {
        return Decision::Keep(keep_reason(s, current));
    };
    if s.group.failback == Failback::Manual {
        return Decision::Keep(format!("failback is manual: staying in {current} while {first_better} is up"));
    }
    if active.manual {
        return Decision::Keep(format!("{current} was chosen by an operator: no automatic failback"));
    }
    if let Some((dc, up)) = better_up.iter().find(|(_, up)| *up >= hold) {
        return Decision::Switch(Switch {
            to: (*dc).clone(),
            reason: format!("{dc} has been up for {} (hold {}): failing back from {current}", secs(*up), secs(hold)),
        });
    }
    Decision::Keep(format!(
        "waiting for {first_better} to be up for {} before failing back (up {})",
        secs(hold),
        secs(first_up)
    ))
}

fn keep_reason(s: &Situation<'_>, current: &DcName) -> String {
    match s.status(current).state {
        DcState::Up => format!("{current} is up and no more preferred datacenter is"),
        state => format!("{current} is {}, not down: staying", state.as_str()),
    }
}

#[cfg(test)]
mod tests;
