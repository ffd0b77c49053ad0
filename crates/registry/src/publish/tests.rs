//! The batcher: coalescing, pacing, batch size, rate and order.

use super::*;
use crate::name::{CheckId, InstanceId, NodeName, ServiceName};
use crate::status::Status::{self, Critical as C, Passing as P, Warning as W};

fn check(instance: &str, id: &str) -> CheckRef {
    CheckRef {
        instance: InstanceRef {
            service: ServiceName::new("web").unwrap(),
            node: NodeName::new("n1").unwrap(),
            id: InstanceId::new(instance).unwrap(),
        },
        check: CheckId::new(id).unwrap(),
    }
}

fn change(from: Status, to: Status, at: u64) -> Change {
    Change { from, to, output: format!("{to}@{at}"), since: Timestamp(at) }
}

fn config(min_interval_ms: u64, max_batch: usize, rate_per_sec: u32, burst: u32) -> PublishConfig {
    PublishConfig { min_interval: Duration::from_millis(min_interval_ms), max_batch, rate_per_sec, burst }
}

fn ids(updates: &[Update]) -> Vec<String> {
    updates.iter().map(|u| u.check.instance.id.to_string()).collect()
}

#[test]
fn the_latest_change_of_a_check_wins_and_a_change_undone_disappears() {
    let mut b = Batcher::new(PublishConfig::default(), Timestamp(0)).unwrap();
    b.push(check("w1", "c"), change(P, C, 1));
    b.push(check("w1", "c"), change(C, W, 2));
    assert_eq!(b.pending(), 1);
    let out = b.flush(Timestamp(2));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].change, Change { from: P, to: W, output: "warning@2".into(), since: Timestamp(2) });

    b.push(check("w1", "c"), change(W, C, 3));
    b.push(check("w1", "c"), change(C, W, 4));
    assert_eq!(b.pending(), 0, "back to what the store holds: nothing to write");
    assert_eq!(b.next_flush_at(), None);
}

#[test]
fn flushes_are_paced_by_min_interval() {
    let mut b = Batcher::new(config(100, 10, 1000, 1000), Timestamp(0)).unwrap();
    b.push(check("w1", "c"), change(P, C, 0));
    assert_eq!(ids(&b.flush(Timestamp(0))), ["w1"], "the first flush goes at once");
    b.push(check("w2", "c"), change(P, C, 10));
    assert!(b.flush(Timestamp(50)).is_empty());
    assert_eq!(b.next_flush_at(), Some(Timestamp(100)));
    assert!(b.flush(Timestamp(99)).is_empty());
    assert_eq!(ids(&b.flush(Timestamp(100))), ["w2"]);
}

#[test]
fn a_full_batch_goes_early_and_a_flush_never_exceeds_max_batch() {
    let mut b = Batcher::new(config(100, 3, 1000, 1000), Timestamp(0)).unwrap();
    b.push(check("w0", "c"), change(P, C, 0));
    assert_eq!(b.flush(Timestamp(0)).len(), 1);
    for n in 1..=7 {
        b.push(check(&format!("w{n}"), "c"), change(P, C, 10));
    }
    assert_eq!(b.next_flush_at(), Some(Timestamp(0)), "a full batch is due at once");
    assert_eq!(ids(&b.flush(Timestamp(10))), ["w1", "w2", "w3"]);
    assert_eq!(ids(&b.flush(Timestamp(10))), ["w4", "w5", "w6"]);
    assert!(b.flush(Timestamp(10)).is_empty(), "one left: it waits for the interval");
    assert_eq!(ids(&b.flush(Timestamp(110))), ["w7"]);
}

#[test]
fn the_bucket_bounds_a_storm() {
    let mut b = Batcher::new(config(0, 100, 10, 5), Timestamp(0)).unwrap();
    for n in 0..50 {
        b.push(check(&format!("w{n:02}"), "c"), change(P, C, 0));
    }
    let mut written = b.flush(Timestamp(0)).len();
    assert_eq!(written, 5, "the burst");
    assert!(b.flush(Timestamp(0)).is_empty());
    assert_eq!(b.next_flush_at(), Some(Timestamp(100)), "the next token");
    let mut t = 0;
    while t < 2_000 {
        t += 10;
        written += b.flush(Timestamp(t)).len();
    }
    assert_eq!(written, 25, "burst 5 plus 10 a second for 2 s");
    assert_eq!(b.pending(), 25);
}

#[test]
fn worse_news_goes_first() {
    let mut b = Batcher::new(config(0, 10, 1000, 1), Timestamp(0)).unwrap();
    b.push(check("up", "c"), change(C, P, 1));
    b.push(check("warn", "c"), change(P, W, 2));
    b.push(check("down-1", "c"), change(P, C, 3));
    b.push(check("down-2", "c"), change(W, C, 4));
    let mut order = Vec::new();
    for t in 0..10 {
        order.extend(ids(&b.flush(Timestamp(t))));
    }
    assert_eq!(order, ["down-1", "down-2", "warn", "up"]);
}

#[test]
fn a_deregistered_instance_drops_its_pending_changes() {
    let mut b = Batcher::new(PublishConfig::default(), Timestamp(0)).unwrap();
    b.push(check("w1", "a"), change(P, C, 1));
    b.push(check("w1", "b"), change(P, C, 1));
    b.push(check("w2", "a"), change(P, C, 1));
    assert_eq!(b.discard_instance(&check("w1", "a").instance), 2);
    assert_eq!(ids(&b.flush(Timestamp(1))), ["w2"]);
}

#[test]
fn settings_that_could_never_flush_are_refused() {
    assert!(Batcher::new(config(0, 0, 1, 1), Timestamp(0)).is_err());
    assert!(Batcher::new(config(0, 1, 1, 0), Timestamp(0)).is_err());
}
