//! Disk space as etcd manages it: the backend quota and the NOSPACE alarm, `alarm list|disarm`, `endpoint
//! status` (dbSize, dbSizeInUse, errors), compaction and a defragmentation that gives space back, and
//! auto-compaction. The same etcdctl script runs against etcd 3.4 and Meridian with a 4 MiB quota; the
//! normalised transcripts must match, and each side is checked against what etcd is known to do.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, Options, voter};
use common::transcript::{Session, differential_with_args};
use common::{etcdctl, poll_until};

/// A small quota, so a test fills it in a few dozen writes.
const QUOTA: &str = "4194304";
/// Values big enough to fill the quota quickly.
const VALUE_BYTES: usize = 64 * 1024;
/// Writes tried before giving up on reaching the quota.
const MAX_FILL: usize = 400;

fn status_json(s: &mut Session) -> serde_json::Value {
    let out = s.run_quiet(&["endpoint", "status", "-w", "json"]);
    let all: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
    all[0]["Status"].clone()
}

/// What a fill wrote: the keys acknowledged, and those whose put failed and may still have been applied: one
/// that timed out on a busy machine, and the one refused with NOSPACE (etcd 3.4's quota applier applies a put
/// that crosses the quota and then answers NOSPACE for it).
struct Filled {
    acked: Vec<String>,
    unknown: Vec<String>,
    /// Whether a put was refused with NOSPACE.
    refused: bool,
}

impl Filled {
    /// Whether `listed` holds every acknowledged key, and nothing but those and the unknown ones.
    fn matches(&self, listed: &[&str]) -> bool {
        self.acked.iter().all(|k| listed.contains(&k.as_str()))
            && listed.iter().all(|k| self.acked.iter().chain(&self.unknown).any(|a| a == k))
    }
}

/// Puts until the quota refuses one (the first failure with NOSPACE's text).
fn fill(s: &mut Session) -> Filled {
    let value = "x".repeat(VALUE_BYTES);
    let mut filled = Filled { acked: Vec::new(), unknown: Vec::new(), refused: false };
    for i in 0..MAX_FILL {
        let key = format!("k{i:03}");
        let out = s.run_quiet(&["put", &key, &value]);
        if out.ok() {
            filled.acked.push(key);
        } else if out.stderr.contains("database space exceeded") {
            filled.unknown.push(key);
            filled.refused = true;
            break;
        } else {
            filled.unknown.push(key);
        }
    }
    filled
}

fn expect_no_space(s: &mut Session, out: &common::Output, what: &str) {
    let ok = !out.ok() && out.stderr.contains("etcdserver: mvcc: database space exceeded");
    s.expect(ok, format!("{what}: expected etcd's NOSPACE error, got {out:?}"));
}

#[test]
fn quota_alarm_defragment_and_disarm_answer_as_etcd_does() {
    differential_with_args("quota_alarm_defragment_and_disarm", &["--quota-backend-bytes", QUOTA], |s| {
        let lease = s.grant(600);
        let filled = fill(s);
        let acked = filled.acked.len();
        s.expect(filled.refused && acked >= 8, format!("the quota stopped writes after {acked} acknowledged puts"));
        s.note("the quota refused a put; the NOSPACE alarm is up");
        let refused = s.run(&["put", "one-more", "value"]);
        expect_no_space(s, &refused, "a put past the quota");
        let listed = s.run(&["alarm", "list"]);
        s.expect(listed.stdout.contains("alarm:NOSPACE"), format!("alarm list shows NOSPACE: {listed:?}"));
        let status = status_json(s);
        s.expect(
            status["errors"].as_array().is_some_and(|e| e.iter().any(|e| e.as_str().unwrap_or("").contains("NOSPACE"))),
            format!("endpoint status lists the alarm: {status}"),
        );
        s.run(&["endpoint", "status"]);

        s.note("reads, deletes, delete-only txns, lease keep-alives and revokes go on; grants and puts do not");
        let keys = s.run_quiet(&["get", "k", "--prefix", "--keys-only"]);
        let listed: Vec<&str> = keys.stdout.lines().filter(|l| !l.is_empty()).collect();
        s.expect(
            filled.matches(&listed),
            format!(
                "every acknowledged put is readable, and only those or ones of unknown outcome: {} listed, {} acked, {} unknown",
                listed.len(),
                filled.acked.len(),
                filled.unknown.len()
            ),
        );
        s.run(&["get", "k000", "--keys-only"]);
        s.run(&["del", "k001"]);
        s.run_stdin(&["txn"], b"\n\ndel k002\n\n");
        s.run_stdin(&["txn"], b"\n\nput k002 again\n\n");
        s.run(&["lease", "keep-alive", "--once", &lease]);
        let grant = s.run(&["lease", "grant", "60"]);
        expect_no_space(s, &grant, "a lease grant under NOSPACE");
        s.run(&["lease", "revoke", &lease]);

        s.note("compact, defragment: the space comes back; the alarm stays until disarmed");
        let before = status_json(s)["dbSize"].as_i64().unwrap_or(0);
        let head = s.run_quiet(&["get", "k", "-w", "json"]);
        let rev =
            serde_json::from_str::<serde_json::Value>(head.stdout.trim()).unwrap_or_default()["header"]["revision"]
                .as_i64()
                .unwrap_or(0);
        s.run_quiet(&["del", "k", "--prefix"]);
        // The revision depends on how many writes fit, which differs: not recorded.
        let compacted = s.run_quiet(&["compaction", &(rev + 1).to_string(), "--physical"]);
        s.expect(compacted.ok(), format!("compaction under the alarm: {compacted:?}"));
        s.run(&["defrag"]);
        let after = status_json(s);
        let after_size = after["dbSize"].as_i64().unwrap_or(i64::MAX);
        s.expect(after_size * 4 < before, format!("defrag gave the space back: {before} -> {after_size} bytes"));
        s.expect(
            after["dbSizeInUse"].as_i64().is_some_and(|u| u > 0 && u <= after_size),
            format!("dbSizeInUse is the part in use: {after}"),
        );
        let still = s.run(&["put", "a", "b"]);
        expect_no_space(s, &still, "a put while the alarm is still active");
        s.run(&["alarm", "disarm"]);
        s.run(&["alarm", "list"]);
        s.run(&["put", "a", "b"]);
        s.run(&["get", "a"]);
        let status = status_json(s);
        s.expect(status.get("errors").is_none(), format!("no alarm is listed after disarm: {status}"));
        s.run(&["endpoint", "status"]);
    });
}

#[test]
fn periodic_auto_compaction_keeps_its_retention_of_history() {
    differential_with_args(
        "periodic_auto_compaction",
        &["--auto-compaction-mode", "periodic", "--auto-compaction-retention", "2s"],
        |s| {
            for v in 0..5 {
                s.run(&["put", "a", &v.to_string()]);
            }
            s.note("within a few retention periods the first revisions are compacted away");
            let compacted = poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
                s.run_quiet(&["get", "a", "--rev", "2"]).stderr.contains("required revision has been compacted")
            });
            s.expect(compacted, "revision 2 was compacted by auto-compaction");
            s.run(&["get", "a", "--rev", "2"]);
            s.run(&["get", "a"]);
        },
    );
}

#[test]
fn the_alarm_is_raised_on_every_member_and_no_acknowledged_write_is_lost() {
    let opts = Options { extra_args: vec!["--quota-backend-bytes".into(), QUOTA.into()], ..Options::preset("lan") };
    let cluster = Cluster::start_with(&[voter("a1", "dc-a"), voter("b1", "dc-b"), voter("c1", "dc-c")], &opts);
    let endpoints = cluster.live_endpoints();
    let value = "y".repeat(VALUE_BYTES);
    let mut filled = Filled { acked: Vec::new(), unknown: Vec::new(), refused: false };
    for i in 0..MAX_FILL {
        let key = format!("k{i:03}");
        // Writes through every member: followers forward them.
        let out = etcdctl(&endpoints[i % endpoints.len()], &["put", &key, &value], None);
        if out.ok() {
            filled.acked.push(key);
        } else if out.stderr.contains("database space exceeded") {
            filled.unknown.push(key);
            filled.refused = true;
            break;
        } else {
            filled.unknown.push(key);
        }
    }
    assert!(
        filled.refused,
        "the quota stopped writes with NOSPACE: {} acked, unknown {:?}",
        filled.acked.len(),
        filled.unknown
    );
    let acked = &filled.acked;
    for ep in &endpoints {
        // The alarm travels through the log: every member lists it and refuses writes.
        let listed = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            etcdctl(ep, &["alarm", "list"], None).stdout.contains("alarm:NOSPACE")
        });
        assert!(listed, "{ep} lists the NOSPACE alarm\n{}", cluster.log_tails(20));
        let put = etcdctl(ep, &["put", "small", "v"], None);
        assert!(put.stderr.contains("database space exceeded"), "{ep}: {put:?}");
        let keys = etcdctl(ep, &["get", "k", "--prefix", "--keys-only", "--consistency=s"], None);
        let listed: Vec<&str> = keys.stdout.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            listed.len() >= acked.len() - 1,
            "{ep} has the acknowledged writes: {} of {}",
            listed.len(),
            acked.len()
        );
    }
    let keys = etcdctl(&endpoints[0], &["get", "k", "--prefix", "--keys-only"], None);
    let listed: Vec<&str> = keys.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        filled.matches(&listed),
        "every acknowledged write is there, and nothing else but unknown outcomes: {listed:?}"
    );

    let head = etcdctl(&endpoints[1], &["del", "k", "--prefix", "-w", "json"], None);
    let rev: serde_json::Value = serde_json::from_str(head.stdout.trim()).expect("del -w json");
    let rev = rev["header"]["revision"].as_i64().expect("revision");
    assert!(etcdctl(&endpoints[2], &["compaction", &rev.to_string(), "--physical"], None).ok());
    for ep in &endpoints {
        let out = etcdctl(ep, &["defrag"], None);
        assert!(out.ok(), "{ep}: {out:?}");
    }
    let disarm = etcdctl(&endpoints[2], &["alarm", "disarm"], None);
    assert!(disarm.stdout.contains("alarm:NOSPACE"), "{disarm:?}");
    for ep in &endpoints {
        let ok = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            etcdctl(ep, &["put", "after", "disarm"], None).ok()
        });
        assert!(ok, "{ep} takes writes again after disarm\n{}", cluster.log_tails(20));
    }
    cluster.wait_hash_agreement(0, Duration::from_secs(10));
}
