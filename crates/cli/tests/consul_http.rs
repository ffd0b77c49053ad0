//! The Consul-compatible HTTP API against real `meridian server` processes, driven by curl and by
//! python3-consul (Debian's `python3-consul`, run with /usr/bin/python3): TTL checks passed and failed,
//! catalog and health read with blocking queries that return when a check flips, KV with cas and recurse, bad
//! input answered 400/404 with a message, etcd auth mapped onto Consul's 403s, a member in each of three
//! datacenters serving the same catalog, TLS on the HTTP listener, and the rule for a taken address (the
//! default: a warning; an explicit one: a failed start).

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, voter};
use common::{Kind, Server, free_port, poll_until};
use serde_json::Value;

/// How long a condition may take to show (replication, the catalog following the store).
const DEADLINE: Duration = Duration::from_secs(20);
/// How often a condition is polled.
const EVERY: Duration = Duration::from_millis(50);
/// Debian's interpreter, where python3-consul is installed.
const PYTHON: &str = "/usr/bin/python3";

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `X-Consul-Index`, which must be present and positive.
    fn index(&self) -> u64 {
        let index: u64 = self
            .header("X-Consul-Index")
            .unwrap_or_else(|| panic!("no X-Consul-Index in {self:?}"))
            .parse()
            .expect("numeric index");
        assert!(index > 0, "index 0 in {self:?}");
        index
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Runs curl with `args` (a method, URL, data...) and parses its `-i` output.
fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-s", "-S", "-i", "--max-time", "40", "-H", "Expect:"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let code = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).expect("status");
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    Answer { code, headers, body: body.to_owned() }
}

fn get(url: &str) -> Answer {
    curl(&[url])
}

fn put(url: &str, body: &str) -> Answer {
    curl(&["-X", "PUT", "--data-binary", body, url])
}

/// A single member serving the HTTP API on a port of its own; returns it and the API's base URL.
fn member(extra: &[&str]) -> (Server, String) {
    let port = free_port();
    let listen = format!("http://127.0.0.1:{port}");
    let mut args = vec!["--listen-http", listen.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start_with_args(Kind::Meridian, &args);
    (server, format!("http://127.0.0.1:{port}"))
}

/// The statuses of `service`'s checks as `/v1/health/service` shows them.
fn statuses(health: &Value) -> Vec<String> {
    health
        .as_array()
        .expect("array")
        .iter()
        .flat_map(|e| e["Checks"].as_array().cloned().unwrap_or_default())
        .map(|c| c["Status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn curl_registers_flips_ttl_checks_and_blocking_queries_follow() {
    let (_server, base) = member(&[]);
    let reg = put(
        &format!("{base}/v1/agent/service/register"),
        r#"{"name":"web","id":"web-1","port":8080,"tags":["blue"],"check":{"ttl":"30s"}}"#,
    );
    assert_eq!(reg.code, 200, "{reg:?}");

    // A TTL check starts critical: listed without ?passing, absent with it.
    let all = get(&format!("{base}/v1/health/service/web"));
    assert_eq!(all.code, 200, "{all:?}");
    assert_eq!(statuses(&all.json()), vec!["critical"]);
    assert_eq!(get(&format!("{base}/v1/health/service/web?passing")).json(), Value::Array(Vec::new()));
    assert_eq!(all.header("X-Consul-KnownLeader"), Some("true"));
    let last_contact: u64 = all.header("X-Consul-LastContact").expect("X-Consul-LastContact").parse().unwrap();
    assert!(last_contact < 10_000, "milliseconds since the leader was heard: {last_contact}");
    let before = all.index();

    // A blocking query returns when the check flips (GET, as python3-consul sends it), with a larger index.
    let waiter = {
        let url = format!("{base}/v1/health/service/web?index={before}&wait=30s");
        std::thread::spawn(move || {
            let started = Instant::now();
            (get(&url), started.elapsed())
        })
    };
    let pass = get(&format!("{base}/v1/agent/check/pass/service:web-1?note=fine"));
    assert_eq!(pass.code, 200, "{pass:?}");
    let (woken, took) = waiter.join().expect("waiter");
    assert!(woken.index() > before, "the index moved: {before} -> {}", woken.index());
    assert!(took < Duration::from_secs(25), "woken by the change, not the wait: {took:?}");
    let entries = woken.json();
    assert_eq!(statuses(&entries), vec!["passing"]);
    assert_eq!(entries[0]["Checks"][0]["Output"], "fine");
    assert_eq!(entries[0]["Service"]["Port"], 8080);

    // A blocking query with nothing changing waits out its wait, then answers the same index.
    let now = get(&format!("{base}/v1/health/service/web")).index();
    let started = Instant::now();
    let idle = get(&format!("{base}/v1/health/service/web?index={now}&wait=1s"));
    assert!(started.elapsed() >= Duration::from_millis(900), "held for the wait");
    assert_eq!(idle.index(), now);

    // PUT works too, and fail makes it critical; catalog and agent views agree.
    assert_eq!(curl(&["-X", "PUT", &format!("{base}/v1/agent/check/fail/service:web-1")]).code, 200);
    assert_eq!(statuses(&get(&format!("{base}/v1/health/service/web")).json()), vec!["critical"]);
    let services = get(&format!("{base}/v1/catalog/services"));
    assert_eq!(services.json()["web"], serde_json::json!(["blue"]));
    services.index();
    let catalog = get(&format!("{base}/v1/catalog/service/web?tag=blue")).json();
    assert_eq!(catalog[0]["ServiceID"], "web-1");
    assert_eq!(get(&format!("{base}/v1/catalog/service/web?tag=green")).json(), Value::Array(Vec::new()));
    assert_eq!(get(&format!("{base}/v1/agent/services")).json()["web-1"]["Service"], "web");
    assert_eq!(get(&format!("{base}/v1/agent/checks")).json()["service:web-1"]["Status"], "critical");
    let critical = get(&format!("{base}/v1/health/state/critical")).json();
    assert_eq!(critical[0]["CheckID"], "service:web-1");
    let me = get(&format!("{base}/v1/agent/self")).json();
    assert_eq!(
        (me["Config"]["Datacenter"].as_str(), me["Config"]["NodeName"].as_str()),
        (Some("dc-a"), Some("default"))
    );

    // Meridian's own views: the ranked answer and Prometheus's targets.
    put(&format!("{base}/v1/agent/check/update/service:web-1"), r#"{"Status":"warning","Output":"slow"}"#);
    let ranked = get(&format!("{base}/v1/query/web")).json();
    assert_eq!(ranked["primary"], 0, "{ranked}");
    assert_eq!(ranked["tiers"][0]["instances"][0]["instance"]["id"], "web-1", "{ranked}");
    assert!(ranked["index"].as_u64().is_some_and(|i| i > 0), "{ranked}");
    let targets = get(&format!("{base}/v1/sd/prometheus")).json();
    assert_eq!(targets[0]["targets"], serde_json::json!(["127.0.0.1:8080"]), "{targets}");
    assert_eq!(targets[0]["labels"]["__meta_meridian_tags"], ",blue,", "{targets}");
    assert_eq!(targets[0]["labels"]["__meta_meridian_dc"], "dc-a", "{targets}");

    // A check added to the instance and removed again; a check of the node itself is refused with a reason.
    let checks = format!("{base}/v1/agent/checks");
    let added = put(
        &format!("{base}/v1/agent/check/register"),
        r#"{"Name":"disk","ID":"disk-1","ServiceID":"web-1","TTL":"30s"}"#,
    );
    assert_eq!(added.code, 200, "{added:?}");
    assert_eq!(get(&checks).json()["disk-1"]["ServiceID"], "web-1");
    assert_eq!(get(&format!("{base}/v1/agent/check/deregister/disk-1")).code, 200);
    assert!(get(&checks).json().get("disk-1").is_none());
    let node_check = put(&format!("{base}/v1/agent/check/register"), r#"{"Name":"mem","TTL":"30s"}"#);
    assert_eq!(node_check.code, 400, "{node_check:?}");
    assert!(node_check.body.contains("ServiceID"), "{node_check:?}");

    // Deregistration (GET, as python3-consul sends it) empties the service; a second one is 404.
    assert_eq!(get(&format!("{base}/v1/agent/service/deregister/web-1")).code, 200);
    assert_eq!(get(&format!("{base}/v1/health/service/web")).json(), Value::Array(Vec::new()));
    let again = get(&format!("{base}/v1/agent/service/deregister/web-1"));
    assert_eq!(again.code, 404, "{again:?}");
    assert!(again.body.contains("Unknown service ID"), "{again:?}");
}

#[test]
fn bad_input_is_a_400_with_a_message_and_unknown_ids_are_404s() {
    let (_server, base) = member(&[]);
    let register = format!("{base}/v1/agent/service/register");
    for (body, says) in [
        (r#"{"port":80}"#, "service name"),
        (r#"{"name":"web","port":0}"#, "port"),
        (r#"{"name":"web","port":70000}"#, "port"),
        (r#"{"name":"web","port":80,"check":{"args":["/bin/true"],"interval":"10s"}}"#, "script"),
        (r#"{"name":"web","port":80,"check":{"type":"carrier-pigeon","interval":"10s"}}"#, "carrier-pigeon"),
        (r#"{"name":"web","#, "JSON"),
    ] {
        let answer = put(&register, body);
        assert_eq!(answer.code, 400, "{body}: {answer:?}");
        assert!(answer.body.contains(says), "{body}: {answer:?}");
    }
    // An oversized body, sent from a file.
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.json");
    // Valid JSON, but beyond the limit (MAX_BODY_BYTES, 512 KiB) with whitespace alone.
    let padding = " ".repeat(600 * 1024);
    std::fs::write(&big, format!(r#"{{"name":"web",{padding}"port":80}}"#)).expect("write");
    let answer = curl(&["-X", "PUT", "--data-binary", &format!("@{}", big.display()), &register]);
    assert_eq!(answer.code, 400, "{answer:?}");
    assert!(answer.body.contains("too large"), "{answer:?}");

    let unknown = get(&format!("{base}/v1/agent/check/pass/nope"));
    assert_eq!(unknown.code, 404, "{unknown:?}");
    assert!(unknown.body.contains("Unknown check ID"), "{unknown:?}");
    let state = get(&format!("{base}/v1/health/state/sideways"));
    assert_eq!(state.code, 400, "{state:?}");
    state.index();
    let wait = get(&format!("{base}/v1/catalog/services?index=1&wait=forever"));
    assert_eq!(wait.code, 400, "{wait:?}");
    wait.index();
    // A missing key is a 404 that still carries the blocking headers (python3-consul reads them).
    let missing = get(&format!("{base}/v1/kv/no/such/key"));
    assert_eq!(missing.code, 404, "{missing:?}");
    missing.index();
    // The reserved keyspace is the server's: no writes; a recursive delete of everything spares it, as on gRPC.
    let reserved = put(&format!("{base}/v1/kv//meridian/services/x"), "1");
    assert_eq!(reserved.code, 403, "{reserved:?}");
    assert_eq!(put(&format!("{base}/v1/agent/service/register"), r#"{"name":"kept","port":1}"#).code, 200);
    assert_eq!(put(&format!("{base}/v1/kv/doomed"), "1").body, "true");
    let wipe = curl(&["-X", "DELETE", &format!("{base}/v1/kv/?recurse")]);
    assert_eq!((wipe.code, wipe.body.as_str()), (200, "true"), "{wipe:?}");
    assert_eq!(get(&format!("{base}/v1/kv/doomed")).code, 404);
    assert!(get(&format!("{base}/v1/catalog/services")).json().get("kept").is_some(), "the registry survives");
}

#[test]
fn kv_put_get_cas_keys_recurse_and_delete() {
    let (_server, base) = member(&[]);
    let kv = |key: &str| format!("{base}/v1/kv/{key}");
    assert_eq!(put(&kv("app/config"), "v1").body, "true");
    let got = get(&kv("app/config"));
    let entry = &got.json()[0];
    assert_eq!((entry["Key"].as_str(), entry["Value"].as_str()), (Some("app/config"), Some("djE=")));
    let modify = entry["ModifyIndex"].as_u64().expect("ModifyIndex");
    assert_eq!(got.index(), modify);
    assert_eq!(get(&format!("{}?raw", kv("app/config"))).body, "v1");

    // cas: only at the current mod revision; 0 means "only if absent".
    assert_eq!(put(&format!("{}?cas={}", kv("app/config"), modify + 100), "v2").body, "false");
    assert_eq!(put(&format!("{}?cas={modify}", kv("app/config")), "v2").body, "true");
    assert_eq!(put(&format!("{}?cas=0", kv("app/config")), "v3").body, "false");
    assert_eq!(put(&format!("{}?cas=0", kv("app/db/url")), "pg").body, "true");
    assert_eq!(put(&kv("app/db/user"), "u").body, "true");

    let keys = get(&format!("{}?keys&separator=/", kv("app/"))).json();
    assert_eq!(keys, serde_json::json!(["app/config", "app/db/"]));
    let all = get(&format!("{}?recurse", kv("app/"))).json();
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");

    // A blocking read of a key returns when that key changes, not before.
    let index = get(&kv("app/config")).index();
    let waiter = {
        let url = format!("{}?index={index}&wait=30s", kv("app/config"));
        std::thread::spawn(move || get(&url))
    };
    assert_eq!(put(&kv("app/config"), "v4").body, "true");
    let woken = waiter.join().expect("waiter");
    assert!(woken.index() > index, "{woken:?}");
    assert_eq!(woken.json()[0]["Value"], "djQ=");

    let cas_delete = curl(&["-X", "DELETE", &format!("{}?cas=1", kv("app/config"))]);
    assert_eq!(cas_delete.body, "false", "{cas_delete:?}");
    assert_eq!(curl(&["-X", "DELETE", &format!("{}?recurse", kv("app/db"))]).body, "true");
    assert_eq!(get(&format!("{}?recurse", kv("app/db"))).code, 404);
    assert_eq!(curl(&["-X", "DELETE", &kv("app/config")]).body, "true");
    assert_eq!(get(&kv("app/config")).code, 404);
}

/// The python3-consul script: every call a Consul client makes, checked in Python.
const PYTHON_SCRIPT: &str = r#"
import sys, threading
import consul

c = consul.Consul(host='127.0.0.1', port=int(sys.argv[1]))
assert c.agent.self()['Config']['Datacenter'] == 'dc-a'
assert c.status.leader() != ''
assert c.catalog.datacenters() == ['dc-a']

assert c.agent.service.register('api', service_id='api-1', address='127.0.0.1', port=9000, tags=['v1'],
                                check=consul.Check.ttl('30s'))
assert c.agent.service.register('api', service_id='api-2', address='127.0.0.1', port=9001,
                                check=consul.Check.ttl('30s'))
assert set(c.agent.services()) == {'api-1', 'api-2'}, c.agent.services()
index, nodes = c.health.service('api')
assert sorted(n['Service']['ID'] for n in nodes) == ['api-1', 'api-2'], nodes
index, nodes = c.health.service('api', passing=True)
assert nodes == [], nodes

assert c.agent.check.ttl_pass('service:api-1', notes='ok')
index, nodes = c.health.service('api', passing=True)
assert [n['Service']['ID'] for n in nodes] == ['api-1'], nodes

# A blocking query returns when a check flips; the flip happens on another thread.
flip = threading.Thread(target=lambda: c.agent.check.ttl_pass('service:api-2', notes='up'))
flip.start()
new_index, nodes = c.health.service('api', index=index, wait='30s', passing=True)
flip.join()
assert int(new_index) > int(index), (index, new_index)
if len(nodes) < 2:
    new_index, nodes = c.health.service('api', index=new_index, wait='30s', passing=True)
assert sorted(n['Service']['ID'] for n in nodes) == ['api-1', 'api-2'], nodes

index, services = c.catalog.services()
assert services == {'api': ['v1']}, services
flip = threading.Thread(target=lambda: c.agent.check.ttl_fail('service:api-1', notes='down'))
flip.start()
new_index, nodes = c.health.service('api', index=new_index, wait='30s', passing=True)
flip.join()
assert [n['Service']['ID'] for n in nodes] == ['api-2'], nodes
index, nodes = c.catalog.service('api', tag='v1')
assert [n['ServiceID'] for n in nodes] == ['api-1'], nodes
index, checks = c.health.checks('api')
assert {ch['CheckID']: ch['Status'] for ch in checks} == {'service:api-1': 'critical', 'service:api-2': 'passing'}, checks
index, states = c.health.state('critical')
assert [ch['ServiceID'] for ch in states] == ['api-1'], states

assert c.agent.service.deregister('api-1')
assert set(c.agent.services()) == {'api-2'}, c.agent.services()

assert c.kv.put('cfg/a', 'one')
index, item = c.kv.get('cfg/a')
assert item['Value'] == b'one', item
assert not c.kv.put('cfg/a', 'two', cas=int(item['ModifyIndex']) + 1000)
assert c.kv.put('cfg/a', 'two', cas=item['ModifyIndex'])
assert c.kv.put('cfg/b/c', 'three')
index, keys = c.kv.get('cfg/', keys=True, separator='/')
assert keys == ['cfg/a', 'cfg/b/'], keys
index, items = c.kv.get('cfg/', recurse=True)
assert {i['Key']: i['Value'] for i in items} == {'cfg/a': b'two', 'cfg/b/c': b'three'}, items
flip = threading.Thread(target=lambda: c.kv.put('cfg/a', 'four'))
flip.start()
new_index, item = c.kv.get('cfg/a', index=index, wait='30s')
flip.join()
assert int(new_index) > int(index) and item['Value'] == b'four', (index, new_index, item)
assert c.kv.delete('cfg/', recurse=True)
index, item = c.kv.get('cfg/a')
assert item is None, item
print('ok')
"#;

#[test]
fn python3_consul_registers_checks_reads_with_blocking_queries_and_uses_kv() {
    let (_server, base) = member(&[]);
    let port = base.rsplit(':').next().expect("port").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("client.py");
    std::fs::write(&script, PYTHON_SCRIPT).expect("write script");
    let out = Command::new(PYTHON).arg(&script).arg(&port).output().expect("run python3");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("ok"), "python3-consul failed:\n{stdout}\n{stderr}");
}

/// Logs `user` in through the JSON gateway on the client port; returns the token.
fn token(server: &Server, user: &str, password: &str) -> String {
    let body = serde_json::json!({ "name": user, "password": password }).to_string();
    let answer = curl(&["-X", "POST", "--data-binary", &body, &format!("{}/v3/auth/authenticate", server.endpoint())]);
    answer.json()["token"].as_str().unwrap_or_else(|| panic!("no token: {answer:?}")).to_owned()
}

#[test]
fn with_auth_on_requests_need_credentials_and_permissions_follow_etcd_roles() {
    let (server, base) = member(&[]);
    for args in [
        vec!["user", "add", "root:rootpw"],
        vec!["role", "add", "web-reader"],
        vec!["role", "grant-permission", "web-reader", "read", "/meridian/services/web/", "--prefix=true"],
        vec!["user", "add", "reader:readerpw"],
        vec!["user", "grant-role", "reader", "web-reader"],
        vec!["auth", "enable"],
    ] {
        let out = server.etcdctl(&args);
        assert!(out.ok(), "etcdctl {args:?}: {out:?}");
    }
    let register = format!("{base}/v1/agent/service/register");
    let web = r#"{"name":"web","id":"web-1","port":8080,"check":{"ttl":"30s"}}"#;

    let anonymous = put(&register, web);
    assert_eq!((anonymous.code, anonymous.body.trim()), (403, "ACL not found"), "{anonymous:?}");
    let health = get(&format!("{base}/v1/health/service/web"));
    assert_eq!((health.code, health.body.trim()), (403, "ACL not found"), "{health:?}");
    health.index();
    let bad_token = curl(&["-H", "X-Consul-Token: not-a-token", &format!("{base}/v1/catalog/services")]);
    assert_eq!(bad_token.code, 403, "{bad_token:?}");

    // The reader may read web's keys but not write them, nor list the whole catalog.
    let reader = token(&server, "reader", "readerpw");
    let denied = curl(&["-X", "PUT", "-H", &format!("X-Consul-Token: {reader}"), "--data-binary", web, &register]);
    assert_eq!((denied.code, denied.body.trim()), (403, "Permission denied"), "{denied:?}");
    // Root registers with HTTP basic auth.
    let root = curl(&["-X", "PUT", "-u", "root:rootpw", "--data-binary", web, &register]);
    assert_eq!(root.code, 200, "{root:?}");
    let read = curl(&["-H", &format!("Authorization: Bearer {reader}"), &format!("{base}/v1/health/service/web")]);
    assert_eq!(read.code, 200, "{read:?}");
    assert_eq!(read.json()[0]["Service"]["ID"], "web-1");
    let by_query = get(&format!("{base}/v1/catalog/service/web?token={reader}"));
    assert_eq!(by_query.code, 200, "{by_query:?}");
    let listing = get(&format!("{base}/v1/catalog/services?token={reader}"));
    assert_eq!((listing.code, listing.body.trim()), (403, "Permission denied"), "{listing:?}");
    let report = get(&format!("{base}/v1/agent/check/pass/service:web-1?token={reader}"));
    assert_eq!(report.code, 403, "{report:?}");
    let kv = put(&format!("{base}/v1/kv/app/x?token={reader}"), "1");
    assert_eq!(kv.code, 403, "{kv:?}");
    let wrong_password = curl(&["-u", "root:nope", &format!("{base}/v1/catalog/services")]);
    assert_eq!(wrong_password.code, 403, "{wrong_password:?}");
    let root_read = curl(&["-u", "root:rootpw", &format!("{base}/v1/catalog/services")]);
    assert_eq!(root_read.code, 200, "{root_read:?}");
}

#[test]
fn three_datacenters_each_member_serves_the_same_catalog() {
    let specs = [voter("a1", "dc-a"), voter("b1", "dc-b"), voter("c1", "dc-c")];
    let cluster = Cluster::start(&specs, "lan");
    let bases: Vec<String> = cluster.nodes.iter().map(|n| format!("http://{}", n.http_addr())).collect();
    let reg = put(
        &format!("{}/v1/agent/service/register", bases[1]),
        r#"{"name":"db","id":"db-1","port":5432,"check":{"ttl":"30s","status":"passing"}}"#,
    );
    assert_eq!(reg.code, 200, "{reg:?}");
    for base in &bases {
        let shown = poll_until(DEADLINE, EVERY, || {
            get(&format!("{base}/v1/health/service/db?passing")).json().as_array().is_some_and(|a| a.len() == 1)
        });
        assert!(shown, "{base} never showed db-1");
        let entry = &get(&format!("{base}/v1/health/service/db")).json()[0];
        assert_eq!((entry["Node"]["Node"].as_str(), entry["Node"]["Datacenter"].as_str()), (Some("b1"), Some("dc-b")));
        let dcs = get(&format!("{base}/v1/catalog/datacenters")).json();
        assert_eq!(dcs.as_array().map(Vec::len), Some(3), "{dcs}");
        assert_eq!(get(&format!("{base}/v1/status/peers")).json().as_array().map(Vec::len), Some(3));
    }
    // The member in dc-a ranks dc-b's instance as a failover from its own empty datacenter.
    let ranked = get(&format!("{}/v1/query/db", bases[0])).json();
    let primary = ranked["primary"].as_u64().expect("a primary tier") as usize;
    assert_eq!(ranked["tiers"][primary]["scope"]["dc"], "dc-b", "{ranked}");
    // A check reported through another member (the one in dc-c) flips it everywhere.
    let index = get(&format!("{}/v1/health/service/db", bases[0])).index();
    assert_eq!(get(&format!("{}/v1/agent/check/fail/service:db-1", bases[2])).code, 200);
    let woken = get(&format!("{}/v1/health/service/db?index={index}&wait=20s", bases[0]));
    assert!(woken.index() > index, "{woken:?}");
    assert_eq!(statuses(&woken.json()), vec!["critical"]);

    // With an instance in each of dc-a and dc-b, each is first for the clients near it (?near=<member>).
    assert_eq!(get(&format!("{}/v1/agent/check/pass/service:db-1", bases[1])).code, 200);
    let reg = put(
        &format!("{}/v1/agent/service/register", bases[0]),
        r#"{"name":"db","id":"db-2","port":5432,"check":{"ttl":"30s","status":"passing"}}"#,
    );
    assert_eq!(reg.code, 200, "{reg:?}");
    let ids = |url: &str| -> Vec<String> {
        let entries = get(url).json();
        entries.as_array().into_iter().flatten().map(|e| e["Service"]["ID"].as_str().unwrap_or("").to_owned()).collect()
    };
    let both = poll_until(DEADLINE, EVERY, || ids(&format!("{}/v1/health/service/db?passing", bases[0])).len() == 2);
    assert!(both, "a1 never saw both instances passing");
    assert_eq!(ids(&format!("{}/v1/health/service/db?passing", bases[0])), vec!["db-2", "db-1"]);
    assert_eq!(ids(&format!("{}/v1/health/service/db?passing&near=_agent", bases[0])), vec!["db-2", "db-1"]);
    assert_eq!(ids(&format!("{}/v1/health/service/db?passing&near=b1", bases[0])), vec!["db-1", "db-2"]);
    assert_eq!(ids(&format!("{}/v1/health/service/db?passing&dc=dc-b", bases[0])), vec!["db-1"]);
}

#[test]
fn the_http_api_serves_tls_with_the_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = common::tls::Pki::new(&dir.path().join("pki"));
    let certs = pki.member("default", "127.0.0.1");
    let port = free_port();
    let listen = format!("https://127.0.0.1:{port}");
    let (crt, key) = (certs.server.crt.display().to_string(), certs.server.key.display().to_string());
    let _server =
        Server::start_with_args(Kind::Meridian, &["--listen-http", &listen, "--cert-file", &crt, "--key-file", &key]);
    let ca = pki.ca.crt.display().to_string();
    let me = curl(&["--cacert", &ca, &format!("{listen}/v1/agent/self")]);
    assert_eq!(me.code, 200, "{me:?}");
    assert_eq!(me.json()["Config"]["Datacenter"], "dc-a");
    let plain = Command::new("curl")
        .args(["-s", "--max-time", "5", &format!("http://127.0.0.1:{port}/v1/agent/self")])
        .output()
        .expect("curl");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("Datacenter"), "plain HTTP is not served on a TLS port");
}

#[test]
fn a_taken_default_address_is_a_warning_and_a_taken_explicit_one_fails_the_start() {
    // Hold Consul's default address (if something else already holds it, it is taken all the same).
    let _held = TcpListener::bind("127.0.0.1:8500");
    let server = Server::start(Kind::Meridian);
    assert!(
        poll_until(DEADLINE, EVERY, || server.log_tail(200).contains("running without the Consul-compatible HTTP API")),
        "no warning about the default address:\n{}",
        server.log_tail(200)
    );
    drop(server);

    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["server", "--name", "x", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen-client", &format!("http://127.0.0.1:{}", free_port())])
        .args(["--listen-peer", &format!("http://127.0.0.1:{}", free_port())])
        .args(["--listen-http", &format!("http://{addr}")])
        .output()
        .expect("run meridian server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started on a taken explicit address");
    assert!(stderr.contains("listen-http") && stderr.contains(&addr.to_string()), "{stderr}");
}

#[test]
fn a_registration_bound_to_a_lease_goes_with_it() {
    let (server, base) = member(&[]);
    let granted = server.etcdctl(&["lease", "grant", "60"]);
    assert!(granted.ok(), "{granted:?}");
    // "lease 694d7a2c1b granted with TTL(60s)"
    let lease = granted.stdout.split_whitespace().nth(1).expect("a lease id").to_owned();
    let body = r#"{"Name":"job","ID":"job-1","Port":9000,"Check":{"TTL":"30s"}}"#;
    let reg = put(&format!("{base}/v1/agent/service/register?lease={lease}"), body);
    assert_eq!(reg.code, 200, "{reg:?}");
    assert_eq!(get(&format!("{base}/v1/catalog/service/job")).json().as_array().map(Vec::len), Some(1));

    // Revoking the lease (an agent that died) removes the instance and its check state.
    let revoked = server.etcdctl(&["lease", "revoke", &lease]);
    assert!(revoked.ok(), "{revoked:?}");
    let gone = poll_until(DEADLINE, EVERY, || {
        get(&format!("{base}/v1/catalog/service/job")).json() == Value::Array(Vec::new())
    });
    assert!(gone, "the instance outlived its lease");
    assert_eq!(get(&format!("{base}/v1/health/checks/job")).json(), Value::Array(Vec::new()));

    // A lease that does not exist, or is not a lease id, is the caller's mistake.
    let unknown = put(&format!("{base}/v1/agent/service/register?lease=abc123"), body);
    assert_eq!(unknown.code, 400, "{unknown:?}");
    assert!(unknown.body.contains("lease abc123 not found"), "{unknown:?}");
    let bad = put(&format!("{base}/v1/agent/service/register?lease=zz"), body);
    assert_eq!(bad.code, 400, "{bad:?}");
}
