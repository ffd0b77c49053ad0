//! `etcdctl snapshot save` against Meridian gives a file the rest of etcd's tooling takes: the real `etcdctl
//! snapshot status` reads it, and `etcdctl snapshot restore` makes a data dir of it from which a real etcd 3.4
//! serves the same keys, the same history down to the compaction, and the same leases.

mod common;

use std::path::Path;

use common::{Kind, Server, etcdctl};
use serde_json::Value;

/// Runs etcdctl against `server` and returns its stdout; panics with everything it printed if it failed.
fn run(server: &Server, args: &[&str]) -> String {
    let o = server.etcdctl(args);
    assert!(o.ok(), "{} etcdctl {args:?}: {o:?}", server.kind().label());
    o.stdout
}

fn json(server: &Server, args: &[&str]) -> Value {
    let out = run(server, args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("etcdctl {args:?} printed no JSON ({e}): {out}"))
}

/// One transaction putting `count` keys `PREFIX000`... (one revision, consecutive sub-revisions).
fn put_many(server: &Server, prefix: &str, count: usize) {
    let mut ops = String::from("\n");
    for i in 0..count {
        ops.push_str(&format!("put {prefix}{i:03} value-{i}\n"));
    }
    ops.push_str("\n\n");
    let o = etcdctl(&server.endpoint(), &["txn"], Some(ops.as_bytes()));
    assert!(o.ok() && o.stdout.starts_with("SUCCESS"), "txn of {count} puts: {o:?}");
}

fn snapshot_status(path: &Path) -> Value {
    let o = etcdctl("http://127.0.0.1:1", &["snapshot", "status", &path.to_string_lossy(), "-w", "json"], None);
    assert!(o.ok(), "etcdctl snapshot status: {o:?}");
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("snapshot status printed no JSON ({e}): {o:?}"))
}

#[test]
fn a_meridian_snapshot_restores_into_a_real_etcd() {
    let m = Server::start(Kind::Meridian);
    run(&m, &["put", "a", "1"]); // revision 2
    run(&m, &["put", "b", "2"]); // 3
    run(&m, &["put", "a", "3"]); // 4
    run(&m, &["del", "b"]); // 5: a tombstone
    let lease = run(&m, &["lease", "grant", "600"]);
    let lease = lease.split_whitespace().nth(1).expect("lease id").to_owned();
    run(&m, &["put", "c", "4", "--lease", &lease]); // 6
    run(&m, &["compact", "3"]);
    // Enough records that the key bucket needs branch pages, and one value bigger than a page.
    for (i, prefix) in ["k", "l", "n"].iter().enumerate() {
        put_many(&m, prefix, 100 + i); // revisions 7, 8, 9
    }
    run(&m, &["put", "big", &"x".repeat(10_000)]); // 10

    let path = m.dir().join("meridian.db");
    let saved = run(&m, &["snapshot", "save", &path.to_string_lossy()]);
    assert!(saved.contains("Snapshot saved"), "{saved}");

    // The records left after compacting at 3 (a@2, b@3, a@4, the tombstone, c@6), the 303 transaction
    // puts and `big`; then one lease and the two compaction marks.
    let status = snapshot_status(&path);
    assert_eq!(status["revision"], 10, "the newest record's revision: {status}");
    assert_eq!(status["totalKey"], 5 + 303 + 1 + 1 + 2, "{status}");

    let e = Server::start_etcd_restored(&path);
    let everything = ["get", "", "--prefix", "-w", "json"];
    let (mine, theirs) = (json(&m, &everything), json(&e, &everything));
    assert_eq!(theirs["count"], 306, "{theirs}");
    assert_eq!(theirs["kvs"], mine["kvs"], "every key, value, revision, version and lease");
    assert_eq!(theirs["header"]["revision"], 10);

    // History down to the compaction: the store as of revisions 3 and 5.
    for rev in ["3", "5"] {
        let past = ["get", "", "--prefix", "--rev", rev, "-w", "json"];
        let (mine, theirs) = (json(&m, &past), json(&e, &past));
        assert_eq!(theirs["kvs"], mine["kvs"], "at revision {rev}");
    }
    assert_eq!(json(&e, &["get", "a", "--rev", "3", "-w", "json"])["kvs"][0]["value"], "MQ==", "a=1 at 3");
    for server in [&m, &e] {
        let o = server.etcdctl(&["get", "a", "--rev", "2"]);
        assert!(
            !o.ok() && o.stderr.contains("required revision has been compacted"),
            "{}: below the compaction: {o:?}",
            server.kind().label()
        );
    }

    let ttl = run(&e, &["lease", "timetolive", &lease, "--keys"]);
    assert!(ttl.contains("granted with TTL(600s)") && ttl.contains("attached keys([c])"), "{ttl}");

    // The restored etcd goes on from there.
    assert_eq!(json(&e, &["put", "after", "1", "-w", "json"])["header"]["revision"], 11);
}

#[test]
fn a_damaged_snapshot_is_refused_by_etcdctl_restore() {
    let m = Server::start(Kind::Meridian);
    run(&m, &["put", "a", "1"]);
    let path = m.dir().join("meridian.db");
    run(&m, &["snapshot", "save", &path.to_string_lossy()]);
    let mut bytes = std::fs::read(&path).unwrap();
    // A byte of the key bucket's leaf, past the meta and freelist pages; the SHA-256 trailer no longer matches.
    bytes[3 * 4096 + 40] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let target = m.dir().join("restored");
    let o = etcdctl(
        "http://127.0.0.1:1",
        &["snapshot", "restore", &path.to_string_lossy(), "--data-dir", &target.to_string_lossy()],
        None,
    );
    assert!(!o.ok() && o.stderr.contains("expected sha256"), "{o:?}");
}
