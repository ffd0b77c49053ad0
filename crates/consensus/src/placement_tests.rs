//! Table-driven tests of the placement policy over the canonical layout: voters 1,2 in dc-a,
//! 3,4 in dc-b, 5 in dc-c, learner 6 in dc-d; preference dc-a, dc-b; hold 5 s; ack window 1 s;
//! max lag 100; cooldown 2 s.

use super::*;

const LAST: u64 = 1_000;

fn cfg() -> PlacementConfig {
    PlacementConfig {
        leader_preference: vec![DcName::from("dc-a"), DcName::from("dc-b")],
        failback_hold_ms: 5_000,
        healthy_ack_ms: 1_000,
        max_lag: 100,
        cooldown_ms: 2_000,
    }
}

const LAYOUT: [(u64, &str, bool); 6] =
    [(1, "dc-a", true), (2, "dc-a", true), (3, "dc-b", true), (4, "dc-b", true), (5, "dc-c", true), (6, "dc-d", false)];

/// One tick: time, leader, members that are down (no ack for 10 s), members lagging by
/// `LAST / 2` entries, and what the policy must answer.
struct Step {
    now: u64,
    leader: u64,
    down: &'static [u64],
    lagging: &'static [u64],
    want: Want,
}

enum Want {
    /// Stay, with a reason containing this text.
    Stay(&'static str),
    /// Transfer to this member.
    To(u64),
}

fn step(now: u64, leader: u64, down: &'static [u64], want: Want) -> Step {
    Step { now, leader, down, lagging: &[], want }
}

fn observation(s: &Step) -> Observation {
    let members = LAYOUT
        .iter()
        .map(|(id, dc, voter)| {
            let down = s.down.contains(id);
            MemberView {
                id: NodeId(*id),
                dc: DcName::from(*dc),
                voter: *voter,
                last_ack_ms: if down { s.now.checked_sub(10_000) } else { Some(s.now.saturating_sub(50)) },
                no_space: false,
                // Member 4 is always a little further ahead than 3, so it is the preferred dc-b target.
                matched: Some(if s.lagging.contains(id) {
                    LAST / 2
                } else if *id == 4 {
                    LAST
                } else {
                    LAST - 3
                }),
            }
        })
        .collect();
    Observation { now_ms: s.now, leader: NodeId(s.leader), leader_last_index: LAST, members }
}

fn run(name: &str, config: PlacementConfig, steps: &[Step]) {
    let mut p = Placement::new(config);
    for (i, s) in steps.iter().enumerate() {
        let got = p.tick(&observation(s));
        match (&s.want, &got) {
            (Want::Stay(text), Decision::Stay { reason }) => {
                assert!(reason.contains(text), "{name} step {i}: reason {reason:?} lacks {text:?}");
            }
            (Want::To(id), Decision::Transfer { to, reason }) => {
                assert_eq!(*to, NodeId(*id), "{name} step {i}: wrong target ({reason})");
            }
            _ => panic!("{name} step {i} (t={}): unexpected {got:?}", s.now),
        }
    }
}

#[test]
fn placement_cases() {
    use Want::*;
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "leader in the most preferred DC stays",
            vec![
                step(0, 1, &[], Stay("leader in dc-a: most preferred healthy DC")),
                step(60_000, 2, &[3, 4], Stay("most preferred")),
            ],
        ),
        (
            "a new leader in dc-b waits the hold before failing back to dc-a",
            vec![
                step(0, 3, &[], Stay("waiting for dc-a to be stable for 5.0s before failback")),
                step(4_999, 3, &[], Stay("healthy for 4.9s")),
                step(5_000, 3, &[], To(1)),
            ],
        ),
        (
            "dc-a down: leader stays in dc-b and says why",
            vec![
                step(0, 3, &[1, 2], Stay("dc-a unhealthy for 0.0s; leader in dc-b")),
                step(10_000, 3, &[1, 2], Stay("dc-a unhealthy for 10.0s; leader in dc-b")),
            ],
        ),
        (
            "a leader without a healthy quorum orders nothing",
            vec![
                step(0, 1, &[3, 4, 5], Stay("leader in dc-a has lost contact with a quorum (2 of 5 voters healthy)")),
                step(0, 3, &[1, 2, 5], Stay("lost contact with a quorum")),
                step(60_000, 3, &[1, 2, 5], Stay("lost contact with a quorum")),
            ],
        ),
        (
            "one healthy voter is enough for a DC",
            vec![step(0, 3, &[1], Stay("waiting for dc-a")), step(5_000, 3, &[1], To(2))],
        ),
        (
            "a flap of dc-a restarts the hold",
            vec![
                step(0, 3, &[], Stay("waiting for dc-a")),
                step(3_000, 3, &[1, 2], Stay("dc-a unhealthy")),
                step(3_500, 3, &[], Stay("healthy for 0.0s")),
                step(8_000, 3, &[], Stay("healthy for 4.5s")),
                step(8_500, 3, &[], To(1)),
            ],
        ),
        (
            "after a transfer the policy cools down before ordering another",
            vec![
                step(0, 3, &[], Stay("waiting")),
                step(5_000, 3, &[], To(1)),
                step(6_000, 3, &[], Stay("cooling down for 2.0s before moving to dc-a")),
                step(7_000, 3, &[], To(1)),
            ],
        ),
        (
            "leader in an unlisted DC moves to the next preferred healthy DC, to its most caught-up voter",
            vec![
                step(0, 5, &[1, 2], Stay("dc-a unhealthy for 0.0s; leader in dc-c (not in the preference list)")),
                step(5_000, 5, &[1, 2], To(4)),
            ],
        ),
        (
            "dc-b stable while dc-a is still in its hold: the leader in dc-c moves to dc-b",
            vec![
                step(0, 5, &[], Stay("waiting for dc-a")),
                step(3_000, 5, &[1, 2], Stay("dc-a unhealthy")),
                step(3_500, 5, &[], Stay("waiting for dc-a")),
                step(5_000, 5, &[], To(4)),
            ],
        ),
    ];
    for (name, steps) in cases {
        run(name, cfg(), &steps);
    }
}

#[test]
fn lagging_or_silent_voters_do_not_make_a_dc_healthy() {
    use Want::*;
    // Voter 1 is far behind and voter 2 is down: dc-a is not a target however long we wait.
    let steps = vec![
        Step { now: 0, leader: 3, down: &[2], lagging: &[1], want: Stay("dc-a unhealthy") },
        Step { now: 20_000, leader: 3, down: &[2], lagging: &[1], want: Stay("dc-a unhealthy for 20.0s") },
        // Voter 1 catches up: the hold starts then.
        Step { now: 21_000, leader: 3, down: &[2], lagging: &[], want: Stay("healthy for 0.0s") },
        Step { now: 26_000, leader: 3, down: &[2], lagging: &[], want: To(1) },
    ];
    run("lagging", cfg(), &steps);
}

#[test]
fn learners_never_make_a_dc_a_target() {
    let config = PlacementConfig { leader_preference: vec![DcName::from("dc-d"), DcName::from("dc-b")], ..cfg() };
    let steps = vec![step(0, 3, &[], Want::Stay("dc-d unhealthy")), step(60_000, 3, &[], Want::Stay("dc-d unhealthy"))];
    run("learner", config, &steps);
}

#[test]
fn without_preference_the_leader_stays() {
    let config = PlacementConfig { leader_preference: vec![], ..cfg() };
    run("none", config, &[step(0, 5, &[], Want::Stay("no leader preference configured"))]);
}

#[test]
fn a_dc_that_flaps_faster_than_the_hold_never_gets_leadership() {
    // dc-a is up for 3 s, down for 1 s, repeatedly, for two minutes: no transfer, ever.
    let mut p = Placement::new(cfg());
    for t in (0..120_000).step_by(250) {
        let down: &'static [u64] = if t % 4_000 >= 3_000 { &[1, 2] } else { &[] };
        let d = p.tick(&observation(&step(t, 3, down, Want::Stay(""))));
        assert!(matches!(d, Decision::Stay { .. }), "t={t}: flapping DC got leadership: {d:?}");
    }
}

#[test]
fn a_new_leader_in_the_preferred_dc_does_not_bounce_back() {
    // The old leader in dc-b transferred to 1; the new leader's fresh state machine sees dc-b
    // healthy but never moves away from the most preferred DC.
    let mut p = Placement::new(cfg());
    for t in (0..60_000).step_by(100) {
        let d = p.tick(&observation(&step(t, 1, &[], Want::Stay(""))));
        assert_eq!(d, Decision::Stay { reason: "leader in dc-a: most preferred healthy DC".into() }, "t={t}");
    }
}

#[test]
fn a_member_that_raised_nospace_is_never_the_target() {
    let obs = |now: u64, full: &[usize]| {
        let mut o = observation(&step(now, 3, &[], Want::Stay("")));
        for &i in full {
            o.members[i].no_space = true;
        }
        o
    };
    let mut p = Placement::new(cfg());
    p.tick(&obs(0, &[0]));
    match p.tick(&obs(5_000, &[0])) {
        Decision::Transfer { to, .. } => assert_eq!(to, NodeId(2), "member 1 is full: its dc-a peer instead"),
        other => panic!("expected a failback to member 2, got {other:?}"),
    }
    let mut p = Placement::new(cfg());
    p.tick(&obs(0, &[0, 1]));
    let got = p.tick(&obs(5_000, &[0, 1]));
    assert!(!matches!(got, Decision::Transfer { .. }), "both dc-a voters are full: no failback, got {got:?}");
}
