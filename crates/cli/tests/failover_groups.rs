//! Failover groups on a real three-process cluster (one voter in each of dc-a, dc-b, dc-c): switches made with
//! `meridian failover promote|demote`, and a webhook that a new leader keeps calling after the old one was killed
//! with -9 while the receiver refused: the same token arrives once it accepts, and never a smaller one after a
//! larger. The receiver is a plain HTTP server on 127.0.0.1 in this test.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cluster::{Cluster, LEADER_DEADLINE, Options, voter};
use common::webhook::Receiver;
use common::{block_on_fresh, connect, poll_until};

/// How long a hook call or a switch may take to show.
const HOOK_DEADLINE: Duration = Duration::from_secs(30);

/// `meridian failover ARGS` against `admin`; returns (exit code, stdout, stderr).
fn failover_cli(admin: &[String], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("failover")
        .args(args)
        .arg("--admin")
        .arg(admin.join(","))
        .args(["--timeout-ms", "5000"])
        .env_remove("MERIDIAN_ADMIN_TOKEN")
        .output()
        .expect("run meridian failover");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The group's active datacenter and token, as `meridian failover status db -w json` says.
fn status(admin: &[String]) -> Option<(String, i64, Vec<String>)> {
    let (code, out, _) = failover_cli(admin, &["status", "db", "-w", "json"]);
    if code != 0 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let g = &v["groups"][0];
    let pending = g["pending_hooks"].as_array()?.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect();
    Some((g["active"]["dc"].as_str()?.to_owned(), g["active"]["token"].as_i64()?, pending))
}

/// The keys under `prefix` on `endpoint`.
fn keys(endpoint: &str, prefix: &str) -> Vec<String> {
    let (ep, prefix) = (endpoint.to_owned(), prefix.to_owned());
    block_on_fresh(move || {
        Box::pin(async move {
            let mut client = connect(&ep).await;
            let opts = etcd_client::GetOptions::new().with_prefix().with_keys_only();
            let resp = client.get(prefix, Some(opts)).await.expect("get the audit log");
            resp.kvs().iter().map(|kv| String::from_utf8_lossy(kv.key()).into_owned()).collect()
        })
    })
}

#[test]
fn hooks_resume_on_a_new_leader_with_the_same_token_and_the_cli_switches_groups() {
    let receiver = Receiver::start();
    let group = format!(
        "\n[[failover_groups]]\nname = \"db\"\ndatacenters = [\"dc-a\", \"dc-b\", \"dc-c\"]\n\
         [[failover_groups.hooks]]\nwebhook = \"{}\"\ntimeout_ms = 1000\n",
        receiver.url()
    );
    let specs = [voter("a1", "dc-a"), voter("b1", "dc-b"), voter("c1", "dc-c")];
    let mut cluster = Cluster::start_with_topology(&specs, &Options::preset("lan"), &group);
    let admins = |c: &Cluster| -> Vec<String> {
        c.nodes.iter().filter(|n| n.is_running()).map(|n| format!("http://{}", n.admin_addr())).collect()
    };

    // The first record (dc-a) reaches the refusing receiver, again and again.
    let mut first = None;
    assert!(poll_until(HOOK_DEADLINE, Duration::from_millis(100), || {
        first = status(&admins(&cluster)).filter(|(dc, _, _)| dc == "dc-a");
        first.is_some()
    }));
    let (_, t1, _) = first.unwrap();
    assert!(
        poll_until(HOOK_DEADLINE, Duration::from_millis(50), || receiver.calls().len() >= 2),
        "{:?}",
        receiver.calls()
    );

    // An operator promotes dc-b: a new, larger token.
    let (code, out, err) = failover_cli(&admins(&cluster), &["promote", "db", "dc-b"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("db: dc-a -> dc-b (token "), "{out}");
    let (dc, t2, pending) = status(&admins(&cluster)).expect("status after promote");
    assert_eq!(dc, "dc-b");
    assert!(t2 > t1, "{t2} > {t1}");
    assert_eq!(pending, [format!("webhook {}", receiver.url())], "the receiver refuses, so the hook is pending");
    assert!(poll_until(HOOK_DEADLINE, Duration::from_millis(50), || receiver.calls().iter().any(|c| c.token == t2)));

    // Kill the leader while the receiver still refuses; the new leader resumes the same token.
    let old = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let dead_admin = format!("http://{}", cluster.nodes[old].admin_addr());
    cluster.kill9(old);
    let new = cluster.wait_agreed_leader(LEADER_DEADLINE);
    assert_ne!(new, old);
    let before = receiver.calls().len();
    assert!(
        poll_until(HOOK_DEADLINE, Duration::from_millis(50), || receiver.calls().len() > before),
        "the new leader calls the hook again"
    );
    receiver.accept(true);
    assert!(poll_until(HOOK_DEADLINE, Duration::from_millis(50), || receiver.calls().iter().any(|c| c.accepted)));

    let calls = receiver.calls();
    let accepted: Vec<i64> = calls.iter().filter(|c| c.accepted).map(|c| c.token).collect();
    assert!(accepted.iter().all(|t| *t == t2), "only the current token is acknowledged: {calls:?}");
    assert!(calls.windows(2).all(|w| w[0].token <= w[1].token), "never a smaller token after a larger: {calls:?}");
    assert!(calls.iter().any(|c| c.token == t1) && calls.iter().all(|c| c.token == t1 || c.token == t2), "{calls:?}");

    // The audit log has the refused attempts of both leaders and the ack marker; status shows nothing pending.
    let endpoint = cluster.nodes[new].endpoint();
    let ack = format!("/meridian/audit/db/{t2:020}/ack");
    assert!(
        poll_until(HOOK_DEADLINE, Duration::from_millis(100), || keys(&endpoint, &ack).len() == 1),
        "the ack marker of token {t2}"
    );
    let attempts = keys(&endpoint, &format!("/meridian/audit/db/{t2:020}/0"));
    // Every call is recorded, but perhaps the one the killed leader made last.
    let calls_t2 = calls.iter().filter(|c| c.token == t2).count();
    assert!(attempts.len() >= 2 && attempts.len() + 1 >= calls_t2, "attempts: {attempts:?}, calls: {calls:?}");
    let (_, token, pending) = status(&admins(&cluster)).unwrap();
    assert_eq!((token, pending.len()), (t2, 0));

    // Demote through the CLI, trying the dead member's admin API first.
    let mut via_dead = vec![dead_admin];
    via_dead.extend(admins(&cluster));
    let (code, out, err) = failover_cli(&via_dead, &["demote", "db"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("db: dc-b -> dc-c (token "), "{out}");
    let (dc, t3, _) = status(&admins(&cluster)).unwrap();
    assert!(dc == "dc-c" && t3 > t2, "{dc} {t3}");
    // Every live member's /metrics shows where the group is and its token, once it applied the switch.
    for admin in admins(&cluster) {
        let want = [
            "meridian_failover_group_active{group=\"db\",dc=\"dc-c\"} 1\n".to_owned(),
            format!("meridian_failover_group_token{{group=\"db\"}} {t3}\n"),
        ];
        let mut text = String::new();
        let shown = poll_until(HOOK_DEADLINE, Duration::from_millis(100), || {
            let out = std::process::Command::new("curl").args(["-s", &format!("{admin}/metrics")]).output();
            text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
            want.iter().all(|w| text.contains(w.as_str()))
        });
        assert!(shown, "{admin}/metrics lacks {want:?}:\n{text}");
    }
    let (code, table, _) = failover_cli(&admins(&cluster), &["status"]);
    assert_eq!(code, 0);
    assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("db ") && l.contains(&t3.to_string())), "{table}");

    // Refusals come back as one clear line and a failing exit status.
    let cases: [(&[&str], &str); 3] = [
        (&["promote", "db", "dc-z"], "datacenter \"dc-z\" is not in failover group \"db\""),
        (&["promote", "nope", "dc-a"], "no failover group \"nope\" (HTTP 404)"),
        (&["promote", "db", "dc-c"], "dc-c is already the active datacenter"),
    ];
    for (args, text) in cases {
        let (code, out, err) = failover_cli(&admins(&cluster), args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(text), "{args:?}: {err}");
    }
}
