//! The state machine driven by scripts: each line is an event and what must follow it (the judged status,
//! the change published if any, whether deregistration is due).

use super::*;
use Status::{Critical as C, Passing as P, Warning as W};

#[derive(Clone, Copy, Debug)]
enum Ev {
    Pass(u64),
    Warn(u64),
    Fail(u64),
    Tick(u64),
}

/// (event, judged status after it, published change (from, to) if any, deregister)
type Line = (Ev, Status, Option<(Status, Status)>, bool);

fn cfg(success: u32, warn: u32, crit: u32) -> MachineConfig {
    MachineConfig {
        thresholds: Thresholds {
            success_before_passing: success,
            failures_before_warning: warn,
            failures_before_critical: crit,
        },
        ttl: None,
        deregister_after: None,
        damping: None,
    }
}

fn run(cfg: &MachineConfig, initial: Status, script: &[Line]) -> CheckState {
    let mut state = CheckState::new(cfg, initial, Timestamp(0));
    for (n, (ev, want, want_pub, want_dereg)) in script.iter().enumerate() {
        let step = match *ev {
            Ev::Pass(t) => state.observe(cfg, Observation::new(Outcome::Pass, format!("pass@{t}"), Timestamp(t))),
            Ev::Warn(t) => state.observe(cfg, Observation::new(Outcome::Warn, format!("warn@{t}"), Timestamp(t))),
            Ev::Fail(t) => state.observe(cfg, Observation::new(Outcome::Fail, format!("fail@{t}"), Timestamp(t))),
            Ev::Tick(t) => state.tick(cfg, Timestamp(t)),
        };
        let published = step.publish.as_ref().map(|c| (c.from, c.to));
        assert_eq!(
            (step.state.status(), published, step.deregister),
            (*want, *want_pub, *want_dereg),
            "line {n}: {ev:?}"
        );
        if let Some(change) = &step.publish {
            assert_eq!(change.since, step.state.since(), "line {n}: a change carries when its status began");
        }
        state = step.state;
    }
    state
}

#[test]
fn checks_start_critical_and_move_on_each_result_by_default() {
    run(
        &cfg(1, 1, 1),
        C,
        &[
            (Ev::Pass(1), P, Some((C, P)), false),
            (Ev::Pass(2), P, None, false),
            (Ev::Warn(3), W, Some((P, W)), false),
            (Ev::Fail(4), C, Some((W, C)), false),
            (Ev::Fail(5), C, None, false),
        ],
    );
}

#[test]
fn success_threshold_needs_consecutive_successes() {
    run(
        &cfg(3, 1, 1),
        C,
        &[
            (Ev::Pass(1), C, None, false),
            (Ev::Pass(2), C, None, false),
            (Ev::Fail(3), C, None, false),
            (Ev::Pass(4), C, None, false),
            (Ev::Warn(5), C, None, false),
            (Ev::Pass(6), P, Some((C, P)), false),
        ],
    );
}

#[test]
fn failures_go_through_warning_to_critical() {
    run(
        &cfg(1, 2, 4),
        P,
        &[
            (Ev::Fail(1), P, None, false),
            (Ev::Fail(2), W, Some((P, W)), false),
            (Ev::Fail(3), W, None, false),
            (Ev::Pass(4), P, Some((W, P)), false),
            (Ev::Fail(5), P, None, false),
            (Ev::Fail(6), W, Some((P, W)), false),
            (Ev::Fail(7), W, None, false),
            (Ev::Fail(8), C, Some((W, C)), false),
        ],
    );
}

#[test]
fn a_result_below_its_threshold_keeps_the_old_output() {
    let c = cfg(1, 3, 3);
    let state = run(&c, C, &[(Ev::Pass(1), P, Some((C, P)), false), (Ev::Fail(2), P, None, false)]);
    assert_eq!(state.output(), "pass@1");
    assert_eq!(state.since(), Timestamp(1));
}

#[test]
fn output_only_changes_are_not_published() {
    let state = run(&cfg(1, 1, 1), C, &[(Ev::Pass(1), P, Some((C, P)), false), (Ev::Pass(2), P, None, false)]);
    assert_eq!(state.output(), "pass@2", "the latest output is kept locally");
    assert_eq!(state.since(), Timestamp(1), "since moves only with the status");
}

/// Found by the simulation: a held improvement of a TTL check was lost when the check moved to another runner.
#[test]
fn ttl_checks_take_no_damping_so_every_flip_is_published() {
    let ttl = crate::check::TtlCheck { ttl: Duration::from_secs(3600) };
    let def = crate::check::tests::def("ttl", crate::check::CheckKind::Ttl(ttl));
    let damping = FlapDamping { max_changes: 1, window: Duration::from_secs(60) };
    let c = MachineConfig::of(&def, Some(damping));
    assert_eq!(c.damping, None);
    run(
        &c,
        P,
        &[
            (Ev::Fail(1), C, Some((P, C)), false),
            (Ev::Pass(2), P, Some((C, P)), false),
            (Ev::Fail(3), C, Some((P, C)), false),
            (Ev::Pass(4), P, Some((C, P)), false),
        ],
    );
    let tcp = crate::check::TcpCheck { target: "10.0.0.1:5432".into(), schedule: crate::check::tests::S10 };
    let probed = crate::check::tests::def("tcp", crate::check::CheckKind::Tcp(tcp));
    assert_eq!(MachineConfig::of(&probed, Some(damping)).damping, Some(damping), "probed checks keep it");
}

#[test]
fn ttl_checks_expire_and_ignore_thresholds() {
    let ttl = crate::check::TtlCheck { ttl: Duration::from_secs(10) };
    let mut def = crate::check::tests::def("ttl", crate::check::CheckKind::Ttl(ttl));
    def.thresholds = Thresholds::from_consul(5, None, 5);
    let c = MachineConfig::of(&def, None);
    assert_eq!(c.thresholds, Thresholds::default(), "a report sets a TTL check's status at once");
    let state = run(
        &c,
        C,
        &[
            (Ev::Pass(1_000), P, Some((C, P)), false),
            (Ev::Tick(10_999), P, None, false),
            (Ev::Pass(5_000), P, None, false),
            (Ev::Tick(14_999), P, None, false),
            (Ev::Tick(15_500), C, Some((P, C)), false),
            (Ev::Tick(16_000), C, None, false),
        ],
    );
    assert_eq!(state.since(), Timestamp(15_000), "the expiry dates from the deadline");
    assert_eq!(state.output(), "TTL expired: no report for 10s");
}

#[test]
fn ttl_runs_from_creation_without_any_report() {
    let mut c = cfg(1, 1, 1);
    c.ttl = Some(Duration::from_secs(5));
    run(&c, P, &[(Ev::Tick(4_999), P, None, false), (Ev::Tick(5_000), C, Some((P, C)), false)]);
}

#[test]
fn deregistration_is_due_after_critical_long_enough_and_resets_on_recovery() {
    let mut c = cfg(1, 1, 1);
    c.deregister_after = Some(Duration::from_secs(30));
    run(
        &c,
        P,
        &[
            (Ev::Fail(1_000), C, Some((P, C)), false),
            (Ev::Tick(30_999), C, None, false),
            (Ev::Pass(31_500), P, Some((C, P)), false),
            (Ev::Tick(60_000), P, None, false),
            (Ev::Fail(61_000), C, Some((P, C)), false),
            (Ev::Tick(90_999), C, None, false),
            (Ev::Tick(91_000), C, None, true),
            (Ev::Tick(95_000), C, None, true),
        ],
    );
}

#[test]
fn damping_holds_improvements_but_never_failures() {
    let mut c = cfg(1, 1, 1);
    c.damping = Some(FlapDamping { max_changes: 2, window: Duration::from_secs(10) });
    let state = run(
        &c,
        P,
        &[
            (Ev::Fail(1_000), C, Some((P, C)), false),
            (Ev::Pass(2_000), P, Some((C, P)), false),
            (Ev::Fail(3_000), C, Some((P, C)), false),
            (Ev::Pass(4_000), P, None, false),
        ],
    );
    assert_eq!((state.status(), state.published()), (P, C), "the improvement is held");
    assert_eq!(state.next_deadline(&c), Some(Timestamp(12_000)), "released when the change at 2s leaves the window");
    let step = state.tick(&c, Timestamp(11_999));
    assert!(step.publish.is_none());
    let step = step.state.tick(&c, Timestamp(12_000));
    let change = step.publish.expect("released");
    assert_eq!((change.from, change.to, change.since, change.output.as_str()), (C, P, Timestamp(4_000), "pass@4000"));
}

#[test]
fn a_held_improvement_is_dropped_when_the_check_fails_again() {
    let mut c = cfg(1, 1, 1);
    c.damping = Some(FlapDamping { max_changes: 1, window: Duration::from_secs(10) });
    let state = run(
        &c,
        P,
        &[
            (Ev::Fail(1_000), C, Some((P, C)), false),
            (Ev::Pass(2_000), P, None, false),
            (Ev::Fail(3_000), C, None, false),
            (Ev::Tick(20_000), C, None, false),
        ],
    );
    assert_eq!(state.published(), C);
    assert_eq!(state.next_deadline(&c), None, "nothing is held any more");
}

#[test]
fn resuming_keeps_the_stored_status_and_since() {
    let mut c = cfg(1, 1, 1);
    c.deregister_after = Some(Duration::from_secs(60));
    c.ttl = Some(Duration::from_secs(10));
    let record = CheckRecord { status: C, output: "down".into(), since: Timestamp(1_000) };
    let state = CheckState::resume(&c, &record, Timestamp(50_000));
    assert_eq!((state.status(), state.published(), state.output()), (C, C, "down"));
    assert_eq!(state.next_deadline(&c), Some(Timestamp(61_000)), "deregistration counts from the stored since");
    let step = state.tick(&c, Timestamp(61_000));
    assert!(step.deregister);
    let passing = CheckRecord { status: P, output: String::new(), since: Timestamp(1_000) };
    let state = CheckState::resume(&c, &passing, Timestamp(50_000));
    assert_eq!(state.next_deadline(&c), Some(Timestamp(60_000)), "a TTL check gets a full TTL on takeover");
    let step = state.observe(&c, Observation::new(Outcome::Warn, "slow", Timestamp(50_001)));
    assert_eq!(step.publish.map(|ch| ch.to), Some(W), "a resumed passing check counts as settled");
}

#[test]
fn huge_outputs_are_cut() {
    let c = cfg(1, 1, 1);
    let step = CheckState::new(&c, C, Timestamp(0))
        .observe(&c, Observation::new(Outcome::Pass, "x".repeat(100_000), Timestamp(1)));
    assert_eq!(step.publish.unwrap().output.len(), MAX_OUTPUT_MAX);
}
