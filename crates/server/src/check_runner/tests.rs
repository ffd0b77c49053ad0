//! The runner core driven by hand: assignment and hand-over, probe pacing, thresholds through the machine,
//! batching and a failed proposal, TTL expiry and reports, takeover of a TTL check, adoption of records written
//! by others, and deregistration of an instance that stays critical.

use std::time::Duration;

use meridian_proto::mvccpb::KeyValue;
use meridian_registry::consul::{AgentContext, parse_register};
use meridian_registry::keys::check_key;
use meridian_registry::{CheckRecord, CheckRef, LiveMember, NodeName, Outcome, Registration, Status, Timestamp};
use meridian_types::{DcName, MemberName, ZoneName};

use super::core::{ProbeResult, RunnerConfig, RunnerCore, TtlReport};
use crate::discovery::catalog::Catalog;

const T0: u64 = 1_000_000;

fn at(ms: u64) -> Timestamp {
    Timestamp(T0 + ms)
}

fn member(name: &str) -> LiveMember {
    LiveMember { name: MemberName::from(name), dc: DcName::from("dc-a"), zone: Some(ZoneName::from("z1")) }
}

fn registration(id: &str, check: &str) -> Registration {
    let agent = AgentContext {
        node: NodeName::new("n1").unwrap(),
        node_address: "10.0.0.1".into(),
        dc: DcName::from("dc-a"),
        zone: Some(ZoneName::from("z1")),
        lease: None,
    };
    let body = format!(r#"{{"Name":"web","ID":"{id}","Address":"10.0.0.1","Port":80,"Check":{check}}}"#);
    parse_register(body.as_bytes(), &agent).unwrap()
}

fn http(id: &str) -> Registration {
    registration(
        id,
        r#"{"CheckID":"http","HTTP":"http://10.0.0.1/health","Interval":"1s","Status":"passing",
            "FailuresBeforeCritical":3,"DeregisterCriticalServiceAfter":"5s"}"#,
    )
}

fn ttl(id: &str) -> Registration {
    registration(id, r#"{"CheckID":"ttl","TTL":"10s"}"#)
}

/// A catalog of `regs` (each created at its revision), with check `records` (each written at its revision).
fn catalog(regs: &[(&Registration, i64)], records: &[(CheckRef, CheckRecord, i64)]) -> Catalog {
    let mut kvs = Vec::new();
    for (reg, rev) in regs {
        kvs.push(KeyValue {
            key: reg.key().into_bytes(),
            value: reg.encode(),
            create_revision: *rev,
            mod_revision: *rev,
            ..Default::default()
        });
    }
    for (check, record, rev) in records {
        kvs.push(KeyValue {
            key: check_key(check).into_bytes(),
            value: record.encode(),
            create_revision: *rev,
            mod_revision: *rev,
            ..Default::default()
        });
    }
    let top = kvs.iter().map(|kv| kv.mod_revision).max().unwrap_or(1);
    Catalog::load(&kvs, top)
}

fn record(status: Status, since: Timestamp) -> CheckRecord {
    CheckRecord { status, output: String::new(), since }
}

fn check_of(reg: &Registration) -> CheckRef {
    reg.check_ref(&reg.checks[0].id)
}

fn core(me: &str) -> RunnerCore {
    RunnerCore::new(MemberName::from(me), RunnerConfig::default(), at(0))
}

fn result(order: &super::ProbeOrder, outcome: Outcome) -> ProbeResult {
    ProbeResult { check: order.check.clone(), generation: order.generation, outcome, output: format!("{outcome:?}") }
}

#[test]
fn exactly_one_member_runs_each_instance_and_a_dead_ones_checks_move_with_their_record() {
    let regs: Vec<Registration> = (0..20).map(|n| http(&format!("web-{n}"))).collect();
    let passing: Vec<(CheckRef, CheckRecord, i64)> =
        regs.iter().map(|r| (check_of(r), record(Status::Passing, at(0)), 30)).collect();
    let cat = catalog(&regs.iter().map(|r| (r, 2)).collect::<Vec<_>>(), &passing);
    let live = [member("a1"), member("a2")];
    let (mut a1, mut a2) = (core("a1"), core("a2"));
    a1.sync(&cat, &live, at(0));
    a2.sync(&cat, &live, at(0));
    for reg in &regs {
        let r = reg.instance.reference();
        assert!(a1.runs(&r) != a2.runs(&r), "{r}: exactly one runner");
    }
    assert_eq!(a1.checks_run() + a2.checks_run(), 20);
    assert!(a1.checks_run() > 0 && a2.checks_run() > 0, "both take a share");

    // a2 dies: a1 takes everything, each check resumed from its published record (passing), not restarted.
    a1.sync(&cat, &[member("a1")], at(10));
    assert_eq!(a1.checks_run(), 20);
    for reg in &regs {
        assert_eq!(a1.status(&check_of(reg)), Some(Status::Passing));
    }
    // a2 comes back: a1 gives its share back and publishes nothing for what it gave up.
    a1.sync(&cat, &live, at(20));
    assert_eq!(a1.checks_run() + a2.checks_run(), 20);
    assert!(a1.step(at(20)).publish.is_empty());
}

#[test]
fn probes_are_due_at_once_then_every_interval_and_never_twice_at_a_time() {
    let reg = http("web-1");
    let cat = catalog(&[(&reg, 2)], &[]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(0));
    let first = core.step(at(0));
    assert_eq!(first.probes.len(), 1, "the first probe is due at once");
    assert_eq!(first.probes[0].timeout, Duration::from_secs(1), "timeout capped at the interval");
    assert!(core.step(at(1_500)).probes.is_empty(), "still running: not ordered again");
    core.probed(result(&first.probes[0], Outcome::Pass), at(1_600));
    assert_eq!(core.next_wake(), Some(at(1_000)), "it fell behind: due at once");
    let second = core.step(at(1_600));
    assert_eq!(second.probes.len(), 1);
    core.probed(result(&second.probes[0], Outcome::Pass), at(1_700));
    assert_eq!(core.next_wake(), Some(at(2_000)), "paced from when it was due, not when it ran");
    assert!(core.step(at(1_999)).probes.is_empty());
    let third = core.step(at(2_000));
    assert_eq!(third.probes.len(), 1);
    // A whole interval behind: paced from now instead, so a stalled runner does not fire a burst.
    core.probed(result(&third.probes[0], Outcome::Pass), at(5_500));
    let fourth = core.step(at(5_500));
    assert_eq!(fourth.probes.len(), 1);
    assert_eq!(core.next_wake(), None, "a probe in flight wakes the driver by its result");
    core.probed(result(&fourth.probes[0], Outcome::Pass), at(5_600));
    assert_eq!(core.next_wake(), Some(at(6_500)));
}

#[test]
fn failures_reach_the_threshold_then_one_guarded_write_goes_out_and_a_failed_one_is_kept() {
    let reg = http("web-1");
    let check = check_of(&reg);
    let cat = catalog(&[(&reg, 7)], &[(check.clone(), record(Status::Passing, at(0)), 8)]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(0));
    let mut now = 0;
    for n in 1..=3 {
        let actions = core.step(at(now));
        assert!(actions.publish.is_empty(), "failure {n}: below the threshold nothing is published");
        core.probed(result(&actions.probes[0], Outcome::Fail), at(now + 10));
        now += 1_000;
    }
    assert_eq!(core.status(&check), Some(Status::Critical), "three failures in a row");
    let actions = core.step(at(now));
    assert_eq!(actions.publish.len(), 1);
    let write = &actions.publish[0];
    assert_eq!((write.record.status, write.registered, &write.check), (Status::Critical, 7, &check));
    // No leader: the change is kept and goes out with the next flush, not before the pacing allows.
    core.published(Err(()));
    assert_eq!(core.pending(), 1);
    assert!(core.step(at(now + 50)).publish.is_empty(), "paced: 100 ms between flushes");
    let again = core.step(at(now + 100));
    assert_eq!(again.publish.len(), 1);
    assert_eq!(again.publish[0].record.status, Status::Critical);
    core.published(Ok(20));
    assert_eq!(core.pending(), 0);
    // Its own write coming back through the catalog is not mistaken for someone else's.
    let cat = catalog(&[(&reg, 7)], &[(check.clone(), write.record.clone(), 20)]);
    core.sync(&cat, &[member("a1")], at(now + 200));
    assert_eq!(core.status(&check), Some(Status::Critical));
}

#[test]
fn a_ttl_check_expires_without_reports_and_each_report_restarts_its_ttl() {
    let reg = ttl("web-1");
    let check = check_of(&reg);
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Critical, at(0)), 2)]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(0));
    assert!(core.step(at(0)).probes.is_empty(), "a TTL check is never probed");
    let pass = |o| TtlReport { check: check.clone(), outcome: o, output: "ok".into(), committed: None };
    let first = core.report(pass(Outcome::Pass), at(1_000)).expect("taken");
    assert!(core.take_answers().is_empty(), "not answered before its change is written");
    let actions = core.step(at(1_000));
    assert_eq!(actions.publish[0].record.status, Status::Passing, "a report sets the status at once");
    assert!(core.take_answers().is_empty(), "not answered while its change is being written");
    core.published(Ok(3));
    assert_eq!(core.take_answers(), vec![(first, true)], "answered once written");
    let second = core.report(pass(Outcome::Pass), at(8_000)).expect("taken");
    assert_eq!(core.take_answers(), vec![(second, true)], "nothing to write: answered at once");
    assert!(core.step(at(8_000)).publish.is_empty(), "same status: nothing to publish");
    assert_eq!(core.next_wake(), Some(at(18_000)), "the TTL restarted at the last report");
    assert!(core.step(at(17_999)).publish.is_empty());
    let expired = core.step(at(18_000));
    assert_eq!(expired.publish.len(), 1);
    assert_eq!(expired.publish[0].record.status, Status::Critical);
    assert_eq!(expired.publish[0].record.since, at(18_000), "critical since the deadline");
    assert!(expired.publish[0].record.output.contains("TTL expired"));
}

#[test]
fn a_runner_taking_over_a_ttl_check_gives_it_a_full_ttl_from_the_takeover() {
    let reg = ttl("web-1");
    let check = check_of(&reg);
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 3)]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(60_000));
    assert_eq!(core.status(&check), Some(Status::Passing));
    assert!(core.step(at(69_999)).publish.is_empty());
    assert_eq!(core.step(at(70_000)).publish[0].record.status, Status::Critical);
}

#[test]
fn reports_for_checks_this_member_does_not_run_are_refused() {
    let (h, t) = (http("web-1"), ttl("web-2"));
    let cat = catalog(&[(&h, 2), (&t, 3)], &[]);
    let mut core = core("a1");
    let report = |check| TtlReport { check, outcome: Outcome::Pass, output: String::new(), committed: None };
    assert!(core.report(report(check_of(&t)), at(0)).is_none(), "not synced yet");
    core.sync(&cat, &[member("a1")], at(0));
    assert!(core.report(report(check_of(&h)), at(0)).is_none(), "not a TTL check");
    assert!(core.report(report(check_of(&t)), at(0)).is_some());
    core.sync(&cat, &[member("a2")], at(10));
    assert!(core.report(report(check_of(&t)), at(10)).is_none(), "handed over");
}

/// Issue 26's lost report (the simulation found it): a runner took a fail report, then the check moved to
/// another member before the change was written. The report must not be acknowledged: its sender writes it
/// through the log instead.
#[test]
fn a_report_whose_change_is_dropped_by_a_handover_is_answered_not_taken() {
    let reg = ttl("web-1");
    let check = check_of(&reg);
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 3)]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(0));
    core.step(at(0));
    let fail = TtlReport { check: check.clone(), outcome: Outcome::Fail, output: "down".into(), committed: None };
    let ticket = core.report(fail, at(10)).expect("taken");
    assert!(core.take_answers().is_empty());
    assert_eq!(core.reports_waiting(), 1);
    core.sync(&cat, &[member("a2")], at(20));
    assert_eq!(core.take_answers(), vec![(ticket, false)], "its change was dropped with the check");
    assert_eq!(core.reports_waiting(), 0);
    assert!(core.step(at(200)).publish.is_empty(), "nothing of the check is written by the old runner");
}

#[test]
fn a_report_in_a_batch_whose_write_failed_waits_for_the_retry() {
    let reg = ttl("web-1");
    let check = check_of(&reg);
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 3)]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(0));
    let fail = TtlReport { check: check.clone(), outcome: Outcome::Fail, output: "down".into(), committed: None };
    let ticket = core.report(fail, at(10)).expect("taken");
    assert_eq!(core.step(at(10)).publish.len(), 1);
    core.published(Err(()));
    assert!(core.take_answers().is_empty(), "the change went back into the batcher");
    let retry = core.step(at(1_000));
    assert_eq!(retry.publish[0].record.status, Status::Critical);
    core.published(Ok(7));
    assert_eq!(core.take_answers(), vec![(ticket, true)]);
}

#[test]
fn a_report_undone_by_the_next_before_the_flush_is_answered_with_it() {
    let reg = ttl("web-1");
    let check = check_of(&reg);
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 3)]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(0));
    let report = |o| TtlReport { check: check.clone(), outcome: o, output: String::new(), committed: None };
    let fail = core.report(report(Outcome::Fail), at(10)).expect("taken");
    assert!(core.take_answers().is_empty());
    let pass = core.report(report(Outcome::Pass), at(20)).expect("taken");
    assert_eq!(
        core.take_answers(),
        vec![(fail, true), (pass, true)],
        "the store already holds the outcome of both: passing"
    );
    assert!(core.step(at(200)).publish.is_empty());
}

#[test]
fn a_report_written_through_the_log_by_another_member_is_adopted() {
    let reg = ttl("web-1");
    let check = check_of(&reg);
    let mut core = core("a1");
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 3)]);
    core.sync(&cat, &[member("a1")], at(0));
    // Forwarding failed; the receiving member wrote "warning" itself at revision 9.
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Warning, at(5_000)), 9)]);
    core.sync(&cat, &[member("a1")], at(5_000));
    assert_eq!(core.status(&check), Some(Status::Warning));
    assert!(core.step(at(5_000)).publish.is_empty(), "the store already holds it");
    assert!(core.step(at(14_999)).publish.is_empty(), "the written report restarted the TTL");
    assert_eq!(core.step(at(15_000)).publish[0].record.status, Status::Critical);
}

#[test]
fn results_of_a_check_replaced_since_are_ignored() {
    let reg = http("web-1");
    let check = check_of(&reg);
    let mut core = core("a1");
    core.sync(&catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 2)]), &[member("a1")], at(0));
    let order = core.step(at(0)).probes.remove(0);
    // Re-registered (same key, so same create revision; newer modify revision): the check starts over.
    let mut kvs = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 5)]);
    kvs.apply(
        &[meridian_proto::mvccpb::Event {
            r#type: 0,
            kv: Some(KeyValue {
                key: reg.key().into_bytes(),
                value: reg.encode(),
                create_revision: 2,
                mod_revision: 5,
                ..Default::default()
            }),
            prev_kv: None,
        }],
        5,
    );
    core.sync(&kvs, &[member("a1")], at(10));
    for _ in 0..3 {
        core.probed(result(&order, Outcome::Fail), at(20));
    }
    assert_eq!(core.status(&check), Some(Status::Passing), "the old probe's failures do not count");
}

#[test]
fn an_instance_critical_past_its_deregister_delay_is_deregistered_and_asked_again_until_gone() {
    let reg = http("web-1");
    let r = reg.instance.reference();
    let mut core = core("a1");
    core.sync(&catalog(&[(&reg, 2)], &[]), &[member("a1")], at(0));
    let mut now = 0;
    for _ in 0..3 {
        let order = core.step(at(now)).probes.remove(0);
        core.probed(result(&order, Outcome::Fail), at(now));
        now += 1_000;
    }
    // Critical since 2000 (the third failure); deregister after 5 s.
    assert!(core.step(at(6_999)).deregister.is_empty());
    assert_eq!(core.step(at(7_000)).deregister, vec![r.clone()]);
    assert!(core.step(at(7_500)).deregister.is_empty(), "asked once per retry delay");
    assert_eq!(core.next_wake().map(|w| w <= at(8_000)), Some(true));
    assert_eq!(core.step(at(8_000)).deregister, vec![r.clone()], "still here: asked again");
    core.deregistered(&r);
    assert!(!core.runs(&r));
    assert_eq!(core.checks_run(), 0);
}

/// The other half of the lost report the simulation found: an earlier fail report was written through the log
/// (its runner dropped it), and the new runner's catalog has not seen that write when the next pass report
/// arrives. Judged against the catalog, the pass would change nothing and be acknowledged while the store says
/// critical; judged against the committed record the report carries, it is a change to write.
#[test]
fn a_report_is_judged_against_the_committed_record_it_carries() {
    let reg = ttl("web-1");
    let check = check_of(&reg);
    let cat = catalog(&[(&reg, 2)], &[(check.clone(), record(Status::Passing, at(0)), 3)]);
    let mut core = core("a1");
    core.sync(&cat, &[member("a1")], at(0));
    let committed = Some((record(Status::Critical, at(50)), 9));
    let pass = TtlReport { check: check.clone(), outcome: Outcome::Pass, output: "back".into(), committed };
    let ticket = core.report(pass, at(100)).expect("taken");
    assert!(core.take_answers().is_empty(), "a change to write, not a repeat");
    let actions = core.step(at(100));
    assert_eq!(actions.publish.len(), 1);
    assert_eq!(actions.publish[0].record.status, Status::Passing);
    core.published(Ok(10));
    assert_eq!(core.take_answers(), vec![(ticket, true)]);
    // A committed record older than what the runner knows changes nothing.
    let stale = Some((record(Status::Critical, at(50)), 9));
    let again = TtlReport { check: check.clone(), outcome: Outcome::Pass, output: "ok".into(), committed: stale };
    let ticket = core.report(again, at(200)).expect("taken");
    assert_eq!(core.take_answers(), vec![(ticket, true)]);
    assert_eq!(core.status(&check), Some(Status::Passing));
}
