//! `meridian bench` against real servers: every workload against a `meridian server`, put, watch-latency,
//! lock (and txn) against etcd 3.4, put, range and mixed over the JSON gateway of both (checked by reading the
//! keys back), the workloads over every endpoint of a three-voter Meridian cluster, and the refusal of
//! non-loopback endpoints. Each run is small (`--total`), and the assertions are about the report's
//! shape and accounting (every operation counted once, no errors, ordered quantiles), never about timing.

mod common;

use std::process::Command;

use common::cluster::{Cluster, voter};
use common::{Kind, Server};
use serde_json::Value;

/// Operations per run: enough for the quantiles to mean something, small enough for a debug build.
const TOTAL: u64 = 300;

/// Runs `meridian bench ARGS --json --total TOTAL --endpoints ENDPOINTS`; returns the parsed report.
fn bench(endpoints: &[String], args: &str) -> Value {
    bench_raw(endpoints, &format!("{args} --total {TOTAL}"))
}

/// Runs `meridian bench ARGS --json --endpoints ENDPOINTS`; returns the parsed report.
fn bench_raw(endpoints: &[String], args: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("bench")
        .args(args.split_whitespace())
        .args(["--json", "--timeout", "20s", "--endpoints", &endpoints.join(",")])
        .env("MERIDIAN_LOG", "warn")
        .output()
        .expect("run meridian bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {args} failed: {}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    assert_eq!(stdout.lines().count(), 1, "bench {args}: one JSON line on stdout, got {stdout:?}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bench {args}: stdout is not JSON ({e}): {stdout}"))
}

/// Asserts the accounting every report of `workload` must satisfy.
fn check(report: &Value, args: &str, workload: &str) {
    let n = |k: &str| report[k].as_u64().unwrap_or_else(|| panic!("{args}: {k} missing in {report}"));
    assert_eq!(report["workload"], workload, "{args}: {report}");
    assert_eq!(n("ops"), TOTAL, "{args}: every operation counted: {report}");
    assert_eq!(n("errors"), 0, "{args}: {report}");
    assert_eq!(report["error_kinds"].as_array().map(Vec::len), Some(0), "{args}: {report}");
    assert!(report["ops_per_s"].as_f64().is_some_and(|r| r > 0.0), "{args}: {report}");
    let l = &report["latency_ms"];
    let q = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{args}: latency_ms.{k} missing in {report}"));
    assert!(0.0 < q("min") && q("min") <= q("p50"), "{args}: {l}");
    assert!(q("p50") <= q("p90") && q("p90") <= q("p99"), "{args}: {l}");
    assert!(q("p99") <= q("p999") && q("p999") <= q("max"), "{args}: {l}");
}

fn check_txn(report: &Value, args: &str) {
    let t = &report["txn"];
    let (ok, conflicts) = (t["succeeded"].as_u64().unwrap(), t["conflicts"].as_u64().unwrap());
    assert_eq!(ok + conflicts, TOTAL, "{args}: every compare-and-set succeeded or conflicted: {report}");
    assert!(ok > 0, "{args}: some compare-and-set must win: {report}");
}

#[test]
fn every_workload_runs_against_meridian() {
    let server = Server::start(Kind::Meridian);
    let eps = [server.endpoint()];
    let runs = [
        ("put --clients 4 --conns 2", "put"),
        ("put --clients 4 --conns 2 --key-order random --key-space 50 --key-size 4 --val-size 64", "put"),
        ("put --clients 2 --rate 3000", "put"),
        ("range --clients 4 --conns 2", "range-l"),
        ("range --clients 4 --conns 2 --consistency s --key-space 20 --key-order random", "range-s"),
        ("watch-latency --clients 4 --conns 2", "watch-latency"),
        ("mixed --clients 4 --conns 2 --key-space 100 --key-order random --read-ratio 0.5", "mixed-l"),
        // Every client contends for one lock; then for a lock of their own each.
        ("lock --clients 4 --conns 2", "lock"),
        ("lock --clients 4 --conns 2 --key-space 0", "lock"),
        // The same workloads on several generator threads instead of the default one.
        ("put --clients 4 --conns 2 --threads 3", "put"),
        ("watch-latency --clients 4 --conns 2 --threads 2", "watch-latency"),
    ];
    for (args, workload) in runs {
        let report = bench(&eps, args);
        check(&report, args, workload);
        let threads = if args.contains("--threads") { args.rsplit(' ').next().unwrap().parse().unwrap() } else { 1 };
        assert_eq!(report["threads"].as_u64(), Some(threads), "{args}: {report}");
        if workload == "mixed-l" {
            let (r, w) = (report["reads"]["ops"].as_u64().unwrap(), report["writes"]["ops"].as_u64().unwrap());
            assert_eq!(r + w, TOTAL, "{args}: {report}");
            assert!(r > 0 && w > 0, "{args}: half reads, half writes: {report}");
        }
        if workload == "lock" {
            // Every lock was unlocked and every client's lease revoked at the end.
            let keys = server.etcdctl(&["get", "__meridian_bench/lock/", "--prefix", "--keys-only"]);
            assert_eq!(keys.stdout, "", "{args}: lock keys left behind");
            assert_eq!(server.etcdctl(&["lease", "list"]).stdout, "found 0 leases\n", "{args}: leases left behind");
        }
        if workload == "watch-latency" {
            // Every put was also acknowledged; those latencies are reported apart from the event latency.
            assert_eq!(report["writes"]["ops"].as_u64(), Some(TOTAL), "{args}: {report}");
        }
    }
    // Few keys and several clients: compare-and-sets collide, and every one is either a success or a conflict.
    let args = "txn --clients 8 --conns 2 --key-space 3 --key-order random";
    let report = bench(&eps, args);
    check(&report, args, "txn-l");
    check_txn(&report, args);
    // A paced run for a duration does exactly the operations due within it: rate × duration.
    let args = "put --clients 4 --conns 2 --duration 1s --rate 150";
    let report = bench_raw(&eps, args);
    assert_eq!(report["ops"].as_u64(), Some(150), "{args}: {report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{args}: {report}");
    assert_eq!(report["duration_s"].as_f64(), Some(1.0), "{args}: {report}");
}

#[test]
fn put_watch_latency_and_txn_run_against_etcd() {
    let etcd = Server::start(Kind::Etcd);
    let eps = [etcd.endpoint()];
    for (args, workload) in [
        ("put --clients 4 --conns 2", "put"),
        ("watch-latency --clients 4 --conns 2", "watch-latency"),
        ("lock --clients 4 --conns 2", "lock"),
    ] {
        check(&bench(&eps, args), args, workload);
    }
    let args = "txn --clients 8 --conns 2 --key-space 3 --key-order random";
    let report = bench(&eps, args);
    check(&report, args, "txn-l");
    check_txn(&report, args);
}

/// The keys of `from`'s length that `etcdctl get FROM END` finds on `server` (the bench's keys are zero-padded
/// numbers, so shorter and longer ones sort in between).
fn keys_between(server: &Server, from: &str, end: &str) -> Vec<String> {
    let out = server.etcdctl(&["get", from, end, "--keys-only"]);
    assert!(out.ok(), "get {from} {end}: {out:?}");
    out.stdout.lines().filter(|l| l.len() == from.len()).map(str::to_owned).collect()
}

#[test]
fn put_range_and_mixed_run_over_the_json_gateway_of_both_servers() {
    for kind in [Kind::Meridian, Kind::Etcd] {
        let server = Server::start(kind);
        let eps = [server.endpoint()];
        // Every put wrote its key (00000000 to 00000299, sequential) with its 256-byte value: nothing was
        // counted that the server did not do.
        let args = "put --clients 4 --protocol json";
        let report = bench(&eps, args);
        check(&report, args, "put");
        assert_eq!(report["protocol"], "json", "{kind:?}: {report}");
        assert_eq!(report["conns"].as_u64(), Some(4), "{kind:?}: a connection per client: {report}");
        let keys = keys_between(&server, "00000000", "00000300");
        assert_eq!(keys.len() as u64, TOTAL, "{kind:?}: every put over JSON wrote its key");
        assert_eq!(keys.first().map(String::as_str), Some("00000000"), "{kind:?}");
        let value = server.etcdctl(&["get", "00000123", "--print-value-only"]);
        assert_eq!(value.stdout.trim_end(), "v".repeat(256), "{kind:?}: {value:?}");
        // Ranges, serializable and linearizable, of a key space the bench first wrote over JSON (6-byte keys,
        // apart from the puts' 8-byte ones).
        for (args, workload) in [
            (
                "range --clients 4 --protocol json --consistency s --key-size 6 --key-space 20 --key-order random",
                "range-s",
            ),
            ("range --clients 4 --protocol json --key-size 6 --key-space 20 --key-order random", "range-l"),
        ] {
            let report = bench(&eps, args);
            check(&report, args, workload);
            assert_eq!(report["reads"]["ops"].as_u64(), Some(TOTAL), "{kind:?} {args}: {report}");
        }
        assert_eq!(keys_between(&server, "000000", "000020").len(), 20, "{kind:?}: the range prefill wrote over JSON");
        let args = "mixed --clients 4 --protocol json --key-size 5 --key-space 50 --key-order random --read-ratio 0.5";
        let report = bench(&eps, args);
        check(&report, args, "mixed-l");
        let (r, w) = (report["reads"]["ops"].as_u64().unwrap(), report["writes"]["ops"].as_u64().unwrap());
        assert!(r > 0 && w > 0 && r + w == TOTAL, "{kind:?} {args}: {report}");
        assert_eq!(keys_between(&server, "00000", "00050").len(), 50, "{kind:?}: the mixed prefill wrote over JSON");
    }
}

#[test]
fn json_gateway_errors_are_counted_with_their_message_and_other_workloads_are_refused() {
    let server = Server::start(Kind::Meridian);
    let eps = [server.endpoint()];
    // A value over the request limit: every put is refused, and counted as the gRPC error it is.
    let report = bench_raw(&eps, "put --protocol json --total 3 --val-size 1572864");
    assert_eq!((report["ops"].as_u64(), report["errors"].as_u64()), (Some(0), Some(3)), "{report}");
    let kind = report["error_kinds"][0]["kind"].as_str().unwrap_or_default();
    assert!(kind.starts_with("InvalidArgument: ") && kind.contains("too large"), "{report}");
    for workload in ["txn", "watch-latency", "lock"] {
        let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(["bench", workload, "--protocol", "json", "--total", "1", "--endpoints", &eps[0]])
            .output()
            .expect("run meridian bench");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("--protocol json runs put, range and mixed only"), "{stderr}");
    }
}

#[test]
fn workloads_spread_over_every_endpoint_of_a_three_voter_cluster() {
    let cluster = Cluster::start(&[voter("v1", "dc-a"), voter("v2", "dc-b"), voter("v3", "dc-c")], "lan");
    let eps = cluster.live_endpoints();
    for (args, workload) in [
        ("put --clients 6 --conns 3", "put"),
        ("range --clients 6 --conns 3", "range-l"),
        ("watch-latency --clients 6 --conns 3", "watch-latency"),
    ] {
        let report = bench(&eps, args);
        assert_eq!(report["endpoints"].as_array().map(Vec::len), Some(3), "{report}");
        // Every member answered some of the requests.
        let answered = report["answered_by_endpoint"].as_array().expect("answered_by_endpoint");
        assert_eq!(answered.len(), 3, "{report}");
        for (entry, ep) in answered.iter().zip(&eps) {
            assert_eq!(entry["endpoint"].as_str(), Some(ep.as_str()), "{report}");
            assert!(entry["ops"].as_u64().is_some_and(|n| n > 0), "{ep} answered nothing: {report}");
        }
        check(&report, args, workload);
    }
}

#[test]
fn non_loopback_endpoints_are_refused_before_connecting() {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["bench", "put", "--total", "10", "--json", "--endpoints", "http://127.0.0.1:1,http://10.1.2.3:2379"])
        .output()
        .expect("run meridian bench");
    assert!(!out.status.success(), "a remote endpoint must be refused");
    assert!(out.stdout.is_empty(), "no report for a refused run: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http://10.1.2.3:2379") && stderr.contains("--allow-remote"), "{stderr}");
}

#[test]
fn workloads_run_as_an_etcd_user_and_logins_are_measured_on_both_servers() {
    for kind in [Kind::Meridian, Kind::Etcd] {
        let server = Server::start(kind);
        let eps = [server.endpoint()];
        for args in ["user add root:rootpw", "user add bench:benchpw", "role add bench", "user grant-role bench bench"]
        {
            let out = server.etcdctl(&args.split_whitespace().collect::<Vec<_>>());
            assert!(out.ok(), "{args}: {out:?}");
        }
        // The bench role may write and read the bench's zero-padded decimal keys only.
        let out = server.etcdctl(&["role", "grant-permission", "bench", "readwrite", "0", ":"]);
        assert!(out.ok(), "{out:?}");
        assert!(server.etcdctl(&["auth", "enable"]).ok());
        for (args, workload) in [
            ("put --clients 4 --conns 2 --user bench:benchpw", "put"),
            ("range --clients 2 --user bench --password benchpw", "range-l"),
            // Over JSON the token travels in the Authorization header.
            ("put --clients 4 --protocol json --user bench:benchpw", "put"),
            ("range --clients 2 --protocol json --user bench --password benchpw", "range-l"),
        ] {
            check(&bench(&eps, args), args, workload);
        }
        // Logins cost a bcrypt each (~50 ms at etcd's cost): a few suffice to show they are counted.
        let report = bench_raw(&eps, "authenticate --clients 2 --total 20 --user bench:benchpw");
        assert_eq!(report["workload"], "authenticate", "{report}");
        assert_eq!((report["ops"].as_u64(), report["errors"].as_u64()), (Some(20), Some(0)), "{kind:?}: {report}");
        // Without credentials every request is refused, and counted as such.
        for args in ["put --clients 2", "put --clients 2 --protocol json"] {
            let report = bench(&eps, args);
            assert_eq!(report["errors"].as_u64(), Some(TOTAL), "{kind:?} {args}: {report}");
        }
        // A wrong password fails the login before any load.
        let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(["bench", "put", "--total", "1", "--user", "bench:wrong", "--endpoints", &eps[0]])
            .output()
            .expect("run meridian bench");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("authentication failed"), "{kind:?}: {stderr}");
    }
}
