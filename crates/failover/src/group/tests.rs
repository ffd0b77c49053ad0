//! The decision table: one row per behaviour, named by it.

use meridian_types::GroupName;

use super::*;
use crate::ActiveRecord;

const NOW: u64 = 1_000_000;
const HOLD: u64 = 5_000;

/// What a row expects.
enum Want {
    /// A switch to this datacenter.
    To(&'static str),
    /// No switch, with a reason containing this text.
    Keep(&'static str),
}

struct Row {
    name: &'static str,
    list: &'static [&'static str],
    failback: Failback,
    hold_ms: Option<u64>,
    /// The active datacenter and whether an operator chose it.
    active: Option<(&'static str, bool)>,
    /// Verdicts: datacenter, state, how many milliseconds before `NOW` it entered the state.
    verdicts: &'static [(&'static str, DcState, u64)],
    want: Want,
}

const ABC: &[&str] = &["dc-a", "dc-b", "dc-c"];

fn row(name: &'static str) -> Row {
    Row {
        name,
        list: ABC,
        failback: Failback::Automatic,
        hold_ms: None,
        active: None,
        verdicts: &[],
        want: Want::Keep(""),
    }
}

use DcState::{Degraded, Down, Partitioned, Up};

fn rows() -> Vec<Row> {
    vec![
        Row { want: Want::To("dc-a"), ..row("no active yet takes the first datacenter (unjudged ones are up)") },
        Row { verdicts: &[("dc-a", Down, 10)], want: Want::To("dc-b"), ..row("no active yet skips a down datacenter") },
        Row {
            verdicts: &[("dc-a", Partitioned, 10), ("dc-b", Down, 10)],
            want: Want::To("dc-a"),
            ..row("no active yet takes a partitioned datacenter: it is not down")
        },
        Row {
            verdicts: &[("dc-a", Down, 10), ("dc-b", Down, 10), ("dc-c", Down, 10)],
            want: Want::Keep("every datacenter of the group is down"),
            ..row("no active and every datacenter down writes nothing")
        },
        Row {
            active: Some(("dc-a", false)),
            verdicts: &[("dc-a", Down, 10)],
            want: Want::To("dc-b"),
            ..row("a down active datacenter fails over to the next")
        },
        Row {
            active: Some(("dc-a", false)),
            verdicts: &[("dc-a", Down, 10), ("dc-b", Down, 10)],
            want: Want::To("dc-c"),
            ..row("failover skips a down next datacenter")
        },
        Row {
            active: Some(("dc-b", false)),
            verdicts: &[("dc-b", Down, 10), ("dc-c", Down, 10), ("dc-a", Up, 1)],
            want: Want::To("dc-a"),
            ..row("failover wraps round to the front of the list")
        },
        Row {
            active: Some(("dc-a", false)),
            verdicts: &[("dc-a", Down, 10), ("dc-b", Down, 10), ("dc-c", Down, 10)],
            want: Want::Keep("so is every other datacenter"),
            ..row("every datacenter down keeps the active one")
        },
        Row {
            active: Some(("dc-a", false)),
            verdicts: &[("dc-a", Partitioned, 60_000)],
            want: Want::Keep("dc-a is partitioned, not down"),
            ..row("a partitioned active datacenter never moves: a cut link is not a dead datacenter")
        },
        Row {
            active: Some(("dc-a", false)),
            verdicts: &[("dc-a", Degraded, 60_000)],
            want: Want::Keep("dc-a is degraded, not down"),
            ..row("a degraded active datacenter never moves")
        },
        Row {
            active: Some(("dc-a", false)),
            want: Want::Keep("dc-a is up and no more preferred datacenter is"),
            ..row("the most preferred datacenter stays")
        },
        Row {
            active: Some(("dc-b", false)),
            verdicts: &[("dc-a", Up, HOLD)],
            want: Want::To("dc-a"),
            ..row("automatic failback once the preferred datacenter has been up for the hold")
        },
        Row {
            active: Some(("dc-b", false)),
            verdicts: &[("dc-a", Up, HOLD - 1)],
            want: Want::Keep("waiting for dc-a to be up for 5.0s before failing back (up 5.0s)"),
            ..row("no failback before the hold")
        },
        Row {
            active: Some(("dc-c", false)),
            verdicts: &[("dc-a", Up, 1_000), ("dc-b", Up, 60_000)],
            want: Want::To("dc-b"),
            ..row("failback goes to the most preferred datacenter that has been up for the hold")
        },
        Row {
            active: Some(("dc-c", false)),
            verdicts: &[("dc-a", Up, 60_000), ("dc-b", Up, 60_000)],
            want: Want::To("dc-a"),
            ..row("failback goes to the most preferred of several held datacenters")
        },
        Row {
            active: Some(("dc-b", false)),
            verdicts: &[("dc-a", Degraded, 60_000)],
            want: Want::Keep("dc-b is up and no more preferred datacenter is"),
            ..row("no failback to a degraded datacenter")
        },
        Row {
            active: Some(("dc-b", false)),
            hold_ms: Some(1_000),
            verdicts: &[("dc-a", Up, 1_500)],
            want: Want::To("dc-a"),
            ..row("the group's own hold overrides the policy's")
        },
        Row {
            active: Some(("dc-b", false)),
            verdicts: &[("dc-a", Up, 0)],
            want: Want::Keep("(up 0.0s)"),
            ..row("a verdict that has only just become up is not held")
        },
        Row {
            active: Some(("dc-b", false)),
            failback: Failback::Manual,
            verdicts: &[("dc-a", Up, 600_000)],
            want: Want::Keep("failback is manual: staying in dc-b while dc-a is up"),
            ..row("manual failback never moves back by itself")
        },
        Row {
            active: Some(("dc-b", false)),
            failback: Failback::Manual,
            verdicts: &[("dc-b", Down, 10)],
            want: Want::To("dc-c"),
            ..row("manual failback still fails over")
        },
        Row {
            active: Some(("dc-b", true)),
            verdicts: &[("dc-a", Up, 600_000)],
            want: Want::Keep("chosen by an operator"),
            ..row("an operator's choice is not failed back")
        },
        Row {
            active: Some(("dc-b", true)),
            verdicts: &[("dc-b", Down, 10)],
            want: Want::To("dc-c"),
            ..row("an operator's choice still fails over when its datacenter goes down")
        },
        Row {
            active: Some(("dc-x", false)),
            verdicts: &[("dc-a", Down, 10)],
            want: Want::To("dc-b"),
            ..row("an active datacenter no longer in the group moves to the first not down")
        },
    ]
}

fn record(dc: &str, manual: bool) -> ActiveRecord {
    ActiveRecord {
        group: GroupName::from("g"),
        dc: DcName::from(dc),
        previous: None,
        reason: String::new(),
        term: 1,
        since: String::new(),
        since_unix_ms: 0,
        manual,
    }
}

#[test]
fn decision_table() {
    for r in rows() {
        let group = FailoverGroupSpec {
            name: GroupName::from("g"),
            datacenters: r.list.iter().map(|d| DcName::from(*d)).collect(),
            failback: r.failback,
            failback_hold_ms: r.hold_ms,
            hooks: Vec::new(),
        };
        let active = r.active.map(|(dc, manual)| record(dc, manual));
        let dcs: BTreeMap<DcName, DcStatus> = r
            .verdicts
            .iter()
            .map(|(dc, state, ago)| (DcName::from(*dc), DcStatus { state: *state, since_unix_ms: NOW - ago }))
            .collect();
        let situation =
            Situation { group: &group, default_hold_ms: HOLD, active: active.as_ref(), dcs: &dcs, now_unix_ms: NOW };
        let got = decide(&situation);
        match (&r.want, &got) {
            (Want::To(dc), Decision::Switch(s)) => {
                assert_eq!(s.to.0, *dc, "{}: {got:?}", r.name);
                assert!(!s.reason.is_empty(), "{}: a switch says why", r.name);
            }
            (Want::Keep(why), Decision::Keep(reason)) => assert!(reason.contains(why), "{}: {reason}", r.name),
            _ => panic!("{}: got {got:?}", r.name),
        }
    }
}

#[test]
fn a_verdict_dated_after_now_counts_as_just_up() {
    // Clocks of members differ: a verdict stamped ahead of this leader's clock is not yet held.
    let group = FailoverGroupSpec {
        name: GroupName::from("g"),
        datacenters: vec![DcName::from("dc-a"), DcName::from("dc-b")],
        failback: Failback::Automatic,
        failback_hold_ms: Some(100),
        hooks: Vec::new(),
    };
    let dcs = BTreeMap::from([(DcName::from("dc-a"), DcStatus { state: Up, since_unix_ms: NOW + 50 })]);
    let active = record("dc-b", false);
    let s = Situation { group: &group, default_hold_ms: HOLD, active: Some(&active), dcs: &dcs, now_unix_ms: NOW };
    assert_eq!(decide(&s), Decision::Keep("waiting for dc-a to be up for 0.1s before failing back (up 0.0s)".into()));
}
