//! The etcd Cluster API through the real `etcdctl member ...`: the same script runs against a real
//! etcd 3.4 (the reference, so every expectation below is checked against etcd itself) and against
//! `meridian server`.

mod common;

use common::{Kind, Server, free_port};

/// One member as `member list -w json` shows it: (id, name, peer URLs, client URLs, isLearner).
type Listed = (u64, String, Vec<String>, Vec<String>, bool);

/// `member list -w json`, one entry per member.
fn members(server: &Server) -> Vec<Listed> {
    let o = server.etcdctl(&["member", "list", "-w", "json"]);
    assert!(o.ok(), "member list failed: {o:?}");
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("member list json");
    let strings = |x: &serde_json::Value| -> Vec<String> {
        x.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    v["members"]
        .as_array()
        .expect("members array")
        .iter()
        .map(|m| {
            (
                m["ID"].as_u64().expect("member ID"),
                m["name"].as_str().unwrap_or("").to_owned(),
                strings(&m["peerURLs"]),
                strings(&m["clientURLs"]),
                m["isLearner"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// The id `member add` printed ("Member <hex> added to cluster <hex>").
fn added_id(stdout: &str) -> u64 {
    let hex = stdout.split_whitespace().nth(1).expect("member add output");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("member id in {stdout:?}"))
}

fn fails_with(server: &Server, args: &[&str], message: &str) {
    fails_with_any(server, args, &[message]);
}

fn fails_with_any(server: &Server, args: &[&str], messages: &[&str]) {
    let o = server.etcdctl(args);
    assert!(
        o.code != 0 && messages.iter().any(|m| o.stderr.contains(m)),
        "{} `etcdctl {}`: expected failure with one of {messages:?}, got {o:?}",
        server.kind().label(),
        args.join(" ")
    );
}

fn cluster_api_on_one_member(kind: Kind) {
    let server = Server::start(kind);
    let label = kind.label();
    let own = members(&server);
    assert_eq!(own.len(), 1, "{label}: one member at start");
    let self_id = own[0].0;

    // Add a learner whose process never starts: allowed, and listed without name or client URLs.
    let url = format!("http://127.0.0.1:{}", free_port());
    let o = server.etcdctl(&["member", "add", "n2", &format!("--peer-urls={url}"), "--learner"]);
    assert!(o.ok() && o.stdout.contains("added to cluster"), "{label}: member add --learner: {o:?}");
    let id = added_id(&o.stdout);
    let list = members(&server);
    assert_eq!(list.len(), 2, "{label}: {list:?}");
    let learner = list.iter().find(|m| m.0 == id).expect("the learner is listed");
    assert_eq!(
        (learner.1.as_str(), learner.2.clone(), learner.3.is_empty(), learner.4),
        ("", vec![url.clone()], true, true),
        "{label}: the unstarted learner has no name and no client URLs"
    );
    assert!(!list.iter().find(|m| m.0 == self_id).expect("self").4, "{label}: the first member is a voter");

    // etcd's refusals, with etcd's messages.
    // etcd derives a new member's id from its peer URLs and the current second, so within the same
    // second it reports the id clash first; Meridian's ids come from the URL alone, and it names the
    // URL, which is etcd's answer whenever the seconds differ.
    let dup = ["member", "add", "dup", &format!("--peer-urls={url}")];
    match kind {
        Kind::Etcd => {
            fails_with_any(&server, &dup, &["etcdserver: Peer URLs already exists", "member ID already exist"])
        }
        Kind::Meridian => fails_with(&server, &dup, "etcdserver: Peer URLs already exists"),
    }
    fails_with(
        &server,
        &["member", "promote", &format!("{id:x}")],
        "etcdserver: can only promote a learner member which is in sync with leader",
    );
    fails_with(
        &server,
        &["member", "promote", &format!("{self_id:x}")],
        "etcdserver: can only promote a learner member",
    );
    fails_with(&server, &["member", "remove", "abcdef"], "etcdserver: member not found");
    fails_with(&server, &["member", "update", "abcdef", &format!("--peer-urls={url}")], "etcdserver: member not found");

    // Update the learner's peer URL, then remove it.
    let moved = format!("http://127.0.0.1:{}", free_port());
    let o = server.etcdctl(&["member", "update", &format!("{id:x}"), &format!("--peer-urls={moved}")]);
    assert!(o.ok(), "{label}: member update: {o:?}");
    let list = members(&server);
    assert_eq!(list.iter().find(|m| m.0 == id).map(|m| m.2.clone()), Some(vec![moved]), "{label}: {list:?}");
    let o = server.etcdctl(&["member", "remove", &format!("{id:x}")]);
    assert!(o.ok() && o.stdout.contains("removed from cluster"), "{label}: member remove: {o:?}");
    let list = members(&server);
    assert_eq!(list.iter().map(|m| m.0).collect::<Vec<_>>(), vec![self_id], "{label}: only the first member left");

    // The store still takes writes.
    let o = server.etcdctl(&["put", "after", "1"]);
    assert!(o.ok(), "{label}: put after membership changes: {o:?}");
}

#[test]
fn cluster_api_on_one_member_matches_etcd() {
    cluster_api_on_one_member(Kind::Etcd);
    cluster_api_on_one_member(Kind::Meridian);
}
