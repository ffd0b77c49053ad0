//! An operator's switches, checked against the group and the verdicts: `promote` makes a named datacenter of
//! the group active, `demote` moves the group to the next datacenter after the active one that is not down
//! (wrapping round, as failover does). Neither goes to a `down` datacenter. The switch is then written through
//! the log like an automatic one, marked `manual`.

use std::collections::BTreeMap;

use meridian_types::{DcName, FailoverGroupSpec};

use crate::group::{DcStatus, Situation, Switch, next_not_down};
use crate::{ActiveRecord, DcState, Error, Result};

fn situation<'a>(
    group: &'a FailoverGroupSpec,
    active: Option<&'a ActiveRecord>,
    dcs: &'a BTreeMap<DcName, DcStatus>,
) -> Situation<'a> {
    // Manual switches look at verdicts only, never at holds or time.
    Situation { group, default_hold_ms: 0, active, dcs, now_unix_ms: 0 }
}

/// Makes `target` the group's active datacenter.
pub fn promote(
    group: &FailoverGroupSpec,
    active: Option<&ActiveRecord>,
    dcs: &BTreeMap<DcName, DcStatus>,
    target: &DcName,
) -> Result<Switch> {
    let name = group.name.0.clone();
    if !group.datacenters.contains(target) {
        let datacenters = group.datacenters.iter().map(|d| d.0.as_str()).collect::<Vec<_>>().join(", ");
        return Err(Error::NotInGroup { group: name, dc: target.0.clone(), datacenters });
    }
    if dcs.get(target).is_some_and(|s| s.state == DcState::Down) {
        return Err(Error::DcDown { group: name, dc: target.0.clone() });
    }
    if active.is_some_and(|a| &a.dc == target) {
        return Err(Error::AlreadyActive { group: name, dc: target.0.clone() });
    }
    Ok(Switch { to: target.clone(), reason: format!("promoted to {target} by an operator") })
}

/// Moves the group off its active datacenter, to the next one of its list that is not down.
pub fn demote(
    group: &FailoverGroupSpec,
    active: Option<&ActiveRecord>,
    dcs: &BTreeMap<DcName, DcStatus>,
) -> Result<Switch> {
    let name = group.name.0.clone();
    let Some(active) = active else { return Err(Error::NoActive { group: name }) };
    let list = &group.datacenters;
    let s = situation(group, Some(active), dcs);
    // An active datacenter that left the group is behind every listed one: the next is the first.
    let next = match list.iter().position(|dc| dc == &active.dc) {
        Some(at) => next_not_down(&s, list, at),
        None => crate::group::first_not_down(&s, list),
    };
    match next {
        Some(dc) => {
            Ok(Switch { to: dc.clone(), reason: format!("{} demoted by an operator: {dc} is next", active.dc) })
        }
        None => Err(Error::NoOtherDc { group: name, dc: active.dc.0.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use meridian_types::{Failback, GroupName};

    use super::*;

    fn group() -> FailoverGroupSpec {
        FailoverGroupSpec {
            name: GroupName::from("db"),
            datacenters: ["dc-a", "dc-b", "dc-c"].map(DcName::from).to_vec(),
            failback: Failback::Automatic,
            failback_hold_ms: None,
            hooks: Vec::new(),
        }
    }

    fn active(dc: &str) -> ActiveRecord {
        ActiveRecord {
            group: GroupName::from("db"),
            dc: DcName::from(dc),
            previous: None,
            reason: String::new(),
            term: 1,
            since: String::new(),
            since_unix_ms: 0,
            manual: false,
        }
    }

    /// The datacenter a switch goes to, or text its refusal contains.
    type Want = std::result::Result<&'static str, &'static str>;

    /// A promote case: name, active record, down datacenters, target, expectation.
    type PromoteCase<'a> = (&'a str, Option<&'a ActiveRecord>, &'a [&'a str], &'a str, Want);

    fn verdicts(down: &[&str]) -> BTreeMap<DcName, DcStatus> {
        down.iter().map(|d| (DcName::from(*d), DcStatus { state: DcState::Down, since_unix_ms: 0 })).collect()
    }

    #[test]
    fn promote_table() {
        let g = group();
        let a = active("dc-a");
        let cases: Vec<PromoteCase<'_>> = vec![
            ("promotes a datacenter of the group", Some(&a), &[], "dc-b", Ok("dc-b")),
            ("a group with no active datacenter can be promoted", None, &[], "dc-c", Ok("dc-c")),
            (
                "refuses a datacenter outside the group",
                Some(&a),
                &[],
                "dc-z",
                Err("datacenter \"dc-z\" is not in failover group \"db\" (dc-a, dc-b, dc-c)"),
            ),
            ("refuses a down datacenter", Some(&a), &["dc-b"], "dc-b", Err("dc-b is down")),
            ("refuses the active datacenter", Some(&a), &[], "dc-a", Err("already the active datacenter")),
        ];
        for (name, act, down, target, want) in cases {
            let got = promote(&g, act, &verdicts(down), &DcName::from(target));
            match (want, got) {
                (Ok(dc), Ok(s)) => assert_eq!((s.to.0.as_str(), s.reason.contains("operator")), (dc, true), "{name}"),
                (Err(text), Err(e)) => assert!(e.to_string().contains(text), "{name}: {e}"),
                (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn demote_table() {
        let g = group();
        let cases: Vec<(&str, Option<ActiveRecord>, &[&str], Want)> = vec![
            ("demotes to the next datacenter", Some(active("dc-a")), &[], Ok("dc-b")),
            ("skips a down next datacenter", Some(active("dc-a")), &["dc-b"], Ok("dc-c")),
            ("wraps round to the front", Some(active("dc-c")), &[], Ok("dc-a")),
            ("an active datacenter outside the group goes to the first", Some(active("dc-x")), &[], Ok("dc-a")),
            (
                "refuses when every other datacenter is down",
                Some(active("dc-a")),
                &["dc-b", "dc-c"],
                Err("every other datacenter is down"),
            ),
            ("refuses a group with no active datacenter", None, &[], Err("has no active datacenter")),
        ];
        for (name, act, down, want) in cases {
            let got = demote(&g, act.as_ref(), &verdicts(down));
            match (want, got) {
                (Ok(dc), Ok(s)) => assert_eq!(s.to.0, dc, "{name}"),
                (Err(text), Err(e)) => assert!(e.to_string().contains(text), "{name}: {e}"),
                (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
    }
}
