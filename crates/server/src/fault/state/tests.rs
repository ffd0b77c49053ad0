//! Table-driven tests of the pure decision: each case names the behaviour it pins down.

use super::*;

fn dc(s: &str) -> DcName {
    DcName::from(s)
}

fn link(from: &str, to: &str, rtt_ms: u64, loss: f64, blocked: bool, symmetric: bool) -> LinkSpec {
    LinkSpec { from: dc(from), to: dc(to), rtt_ms, loss, blocked, symmetric }
}

fn ms(n: u64) -> Verdict {
    Verdict::Deliver { delay: Duration::from_micros(n * 1000) }
}

const A1: NodeId = NodeId(11);
const A2: NodeId = NodeId(12);
const B1: NodeId = NodeId(21);
const C1: NodeId = NodeId(31);

/// The canonical playground matrix: dc-a↔dc-b 10 ms, dc-c 30 ms from both.
fn canonical() -> Faults {
    Faults::from_wan(WanConfig {
        links: vec![
            link("dc-a", "dc-b", 10, 0.0, false, true),
            link("dc-a", "dc-c", 30, 0.0, false, true),
            link("dc-b", "dc-c", 30, 0.0, false, true),
        ],
    })
}

struct Case {
    name: &'static str,
    faults: Faults,
    from: (&'static str, NodeId),
    to: (&'static str, NodeId),
    random: f64,
    want: Verdict,
}

fn check(cases: Vec<Case>) {
    for c in cases {
        c.faults.validate().unwrap_or_else(|e| panic!("{}: invalid faults: {e}", c.name));
        let got = c.faults.decide(&dc(c.from.0), &dc(c.to.0), c.from.1, c.to.1, c.random);
        assert_eq!(got, c.want, "case: {}", c.name);
    }
}

#[test]
fn delays_are_half_the_round_trip_in_each_direction() {
    check(vec![
        Case {
            name: "a->b is 10ms rtt",
            faults: canonical(),
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.5,
            want: ms(5),
        },
        Case {
            name: "b->a uses the same symmetric link",
            faults: canonical(),
            from: ("dc-b", B1),
            to: ("dc-a", A1),
            random: 0.5,
            want: ms(5),
        },
        Case {
            name: "a->c is 30ms rtt",
            faults: canonical(),
            from: ("dc-a", A1),
            to: ("dc-c", C1),
            random: 0.5,
            want: ms(15),
        },
        Case {
            name: "c->b reverse of a listed link",
            faults: canonical(),
            from: ("dc-c", C1),
            to: ("dc-b", B1),
            random: 0.5,
            want: ms(15),
        },
        Case {
            name: "same dc is unlisted, so perfect",
            faults: canonical(),
            from: ("dc-a", A1),
            to: ("dc-a", A2),
            random: 0.0,
            want: ms(0),
        },
        Case {
            name: "unknown dcs are perfect",
            faults: canonical(),
            from: ("dc-x", A1),
            to: ("dc-y", B1),
            random: 0.0,
            want: ms(0),
        },
        Case {
            name: "odd rtt keeps its half millisecond",
            faults: Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 3, 0.0, false, true)] }),
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.5,
            want: Verdict::Deliver { delay: Duration::from_micros(1500) },
        },
    ]);
}

#[test]
fn loss_drops_exactly_when_random_is_below_the_rate() {
    let lossy = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10, 0.25, false, true)] });
    let never = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10, 0.0, false, true)] });
    let always = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10, 1.0, false, true)] });
    check(vec![
        Case {
            name: "random below the rate drops",
            faults: lossy.clone(),
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.1,
            want: Verdict::Drop,
        },
        Case {
            name: "random at the rate delivers",
            faults: lossy.clone(),
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.25,
            want: ms(5),
        },
        Case {
            name: "loss applies in the reverse direction too",
            faults: lossy,
            from: ("dc-b", B1),
            to: ("dc-a", A1),
            random: 0.24,
            want: Verdict::Drop,
        },
        Case {
            name: "zero loss never drops",
            faults: never,
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.0,
            want: ms(5),
        },
        Case {
            name: "full loss always drops",
            faults: always,
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.999_999,
            want: Verdict::Drop,
        },
    ]);
}

#[test]
fn one_way_links_only_govern_their_direction() {
    // dc-a can no longer send to dc-b, but dc-b still reaches dc-a (an asymmetric partition).
    let one_way_cut = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10, 0.0, true, false)] });
    // An exact-direction entry overrides the symmetric one written the other way round.
    let mut override_ = canonical();
    override_.wan.links.push(link("dc-b", "dc-a", 80, 0.0, false, false));
    check(vec![
        Case {
            name: "a->b cut",
            faults: one_way_cut.clone(),
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.9,
            want: Verdict::Block,
        },
        Case {
            name: "b->a untouched",
            faults: one_way_cut,
            from: ("dc-b", B1),
            to: ("dc-a", A1),
            random: 0.9,
            want: ms(0),
        },
        Case {
            name: "b->a uses its own entry",
            faults: override_.clone(),
            from: ("dc-b", B1),
            to: ("dc-a", A1),
            random: 0.9,
            want: ms(40),
        },
        Case {
            name: "a->b keeps the symmetric entry",
            faults: override_,
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.9,
            want: ms(5),
        },
    ]);
}

#[test]
fn partitions_isolate_members_and_datacenters() {
    let mut member_cut = canonical();
    member_cut.isolated_members.insert(A1);
    let mut dc_cut = canonical();
    dc_cut.isolated_dcs.insert(dc("dc-c"));
    check(vec![
        Case {
            name: "isolated member cannot send",
            faults: member_cut.clone(),
            from: ("dc-a", A1),
            to: ("dc-a", A2),
            random: 0.9,
            want: Verdict::Block,
        },
        Case {
            name: "isolated member cannot receive",
            faults: member_cut.clone(),
            from: ("dc-b", B1),
            to: ("dc-a", A1),
            random: 0.9,
            want: Verdict::Block,
        },
        Case {
            name: "its dc-mate still talks to others",
            faults: member_cut,
            from: ("dc-a", A2),
            to: ("dc-b", B1),
            random: 0.9,
            want: ms(5),
        },
        Case {
            name: "isolated dc cannot reach out",
            faults: dc_cut.clone(),
            from: ("dc-c", C1),
            to: ("dc-a", A1),
            random: 0.9,
            want: Verdict::Block,
        },
        Case {
            name: "nobody reaches the isolated dc",
            faults: dc_cut.clone(),
            from: ("dc-b", B1),
            to: ("dc-c", C1),
            random: 0.9,
            want: Verdict::Block,
        },
        Case {
            name: "inside the isolated dc traffic flows",
            faults: dc_cut.clone(),
            from: ("dc-c", C1),
            to: ("dc-c", NodeId(32)),
            random: 0.9,
            want: ms(0),
        },
        Case {
            name: "the other dcs are unaffected",
            faults: dc_cut,
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.9,
            want: ms(5),
        },
    ]);
}

#[test]
fn bridge_member_sees_both_sides_of_a_cut() {
    // dc-a and dc-b cannot talk, but dc-c reaches both: its member bridges the partition.
    let mut bridge = canonical();
    bridge.wan.links[0].blocked = true;
    check(vec![
        Case {
            name: "a->b blocked",
            faults: bridge.clone(),
            from: ("dc-a", A1),
            to: ("dc-b", B1),
            random: 0.9,
            want: Verdict::Block,
        },
        Case {
            name: "b->a blocked",
            faults: bridge.clone(),
            from: ("dc-b", B1),
            to: ("dc-a", A1),
            random: 0.9,
            want: Verdict::Block,
        },
        Case {
            name: "bridge reaches a",
            faults: bridge.clone(),
            from: ("dc-c", C1),
            to: ("dc-a", A1),
            random: 0.9,
            want: ms(15),
        },
        Case {
            name: "bridge reaches b",
            faults: bridge.clone(),
            from: ("dc-c", C1),
            to: ("dc-b", B1),
            random: 0.9,
            want: ms(15),
        },
        Case {
            name: "a reaches the bridge",
            faults: bridge.clone(),
            from: ("dc-a", A2),
            to: ("dc-c", C1),
            random: 0.9,
            want: ms(15),
        },
        Case {
            name: "b reaches the bridge",
            faults: bridge,
            from: ("dc-b", B1),
            to: ("dc-c", C1),
            random: 0.9,
            want: ms(15),
        },
    ]);
}

#[test]
fn a_message_to_oneself_is_never_faulted() {
    let mut f = canonical();
    f.isolated_members.insert(A1);
    assert_eq!(f.decide(&dc("dc-a"), &dc("dc-a"), A1, A1, 0.0), ms(0));
}

#[test]
fn invalid_descriptions_are_refused_with_the_reason() {
    let bad_loss = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10, 1.5, false, true)] });
    assert!(matches!(bad_loss.validate(), Err(FaultsError::BadLoss { .. })));
    assert!(bad_loss.validate().unwrap_err().to_string().contains("loss 1.5 must be between 0 and 1"));
    let nan_loss = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10, f64::NAN, false, true)] });
    assert!(matches!(nan_loss.validate(), Err(FaultsError::BadLoss { .. })));
    let empty = Faults::from_wan(WanConfig { links: vec![link("", "dc-b", 10, 0.0, false, true)] });
    assert_eq!(empty.validate(), Err(FaultsError::EmptyDc { index: 0 }));
    let slow = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", MAX_RTT_MS + 1, 0.0, false, true)] });
    assert!(matches!(slow.validate(), Err(FaultsError::RttTooLarge { .. })));
    let dup = Faults::from_wan(WanConfig {
        links: vec![link("dc-a", "dc-b", 10, 0.0, false, true), link("dc-b", "dc-a", 20, 0.0, false, true)],
    });
    assert!(matches!(dup.validate(), Err(FaultsError::Duplicate { first: 0, second: 1, .. })));
    // Two one-way links in opposite directions are not a conflict.
    let pair = Faults::from_wan(WanConfig {
        links: vec![link("dc-a", "dc-b", 10, 0.0, false, false), link("dc-b", "dc-a", 20, 0.0, false, false)],
    });
    pair.validate().unwrap();
}

#[test]
fn state_set_replaces_everything_and_refuses_invalid_input() {
    let state = FaultState::new(canonical()).unwrap();
    assert_eq!(state.decide(&dc("dc-a"), &dc("dc-b"), A1, B1, 0.5), ms(5));
    let bad = Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10, -0.1, false, true)] });
    assert!(state.set(bad).is_err());
    assert_eq!(state.get(), canonical(), "a refused update changes nothing");
    let mut cut = Faults::default();
    cut.isolated_members.insert(B1);
    state.set(cut.clone()).unwrap();
    assert_eq!(state.get(), cut);
    assert_eq!(state.decide(&dc("dc-a"), &dc("dc-b"), A1, B1, 0.5), Verdict::Block);
    assert_eq!(state.decide(&dc("dc-a"), &dc("dc-c"), A1, C1, 0.5), ms(0), "the old links are gone");
}
