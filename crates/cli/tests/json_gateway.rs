//! etcd's JSON gateway, compared with etcd 3.4's own: the same requests, sent with curl to a fresh etcd 3.4 and
//! to a fresh Meridian, must get the same HTTP status and the same JSON once the values that legitimately
//! differ between two clusters are normalised (ids, terms, sizes, versions, hashes, tokens, snapshot bytes, the
//! text of a JSON decoder's error). Every gateway path is called, errors included; the streaming calls (watch,
//! keep-alive, snapshot, observe) are read line by line. A second test serves the gateway over TLS on the
//! port gRPC uses, with both HTTP/1.1 and HTTP/2.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Kind, Server, line_diff};
use serde_json::{Map, Value};

/// How long a streamed line may take to arrive.
const LINE_DEADLINE: Duration = Duration::from_secs(10);

/// Maps ids to stable labels in order of first appearance, so equal ids stay equal after normalising.
#[derive(Default)]
struct Ids(HashMap<String, String>);

impl Ids {
    fn label(&mut self, prefix: &str, id: &str) -> String {
        let n = self.0.len() + 1;
        self.0.entry(id.to_owned()).or_insert_with(|| format!("{prefix}{n}")).clone()
    }
}

/// One gateway and the transcript of what it answered.
struct Gateway {
    base: String,
    ids: Ids,
    lines: Vec<String>,
}

impl Gateway {
    fn new(base: String) -> Gateway {
        Gateway { base, ids: Ids::default(), lines: Vec::new() }
    }

    /// POSTs `body` to `path` and records the normalised answer under `label`; returns the raw JSON.
    fn post(&mut self, label: &str, path: &str, body: &str) -> Value {
        let (status, text) = curl(&["-X", "POST", "--data-binary", body, &format!("{}{path}", self.base)]);
        self.record(label, status, &text)
    }

    /// POSTs a large `body` (through a file: too long for a command line) to `path` and records the answer.
    fn post_large(&mut self, label: &str, path: &str, body: &str) -> Value {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("body.json");
        std::fs::write(&file, body).expect("write body");
        let data = format!("@{}", file.display());
        let (status, text) = curl(&["-X", "POST", "--data-binary", &data, &format!("{}{path}", self.base)]);
        self.record(label, status, &text)
    }

    /// GETs `path` and records the answer.
    fn get(&mut self, label: &str, path: &str) -> Value {
        let (status, text) = curl(&[&format!("{}{path}", self.base)]);
        self.record(label, status, &text)
    }

    fn record(&mut self, label: &str, status: u16, text: &str) -> Value {
        let value: Value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.trim().to_owned()));
        let shown = self.normalise(value.clone());
        self.lines.push(format!("{label}: {status} {shown}"));
        value
    }

    /// Sends `body` to the streaming `path`, records every line until `n` have arrived (running `between`
    /// after the first), then hangs up.
    fn stream(&mut self, label: &str, path: &str, body: &str, n: usize, between: impl FnOnce(&mut Gateway)) {
        let mut child = Command::new("curl")
            .args(["-sS", "-N", "-X", "POST", "--data-binary", body, &format!("{}{path}", self.base)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut got = Vec::new();
        let mut between = Some(between);
        while got.len() < n {
            let Ok(line) = rx.recv_timeout(LINE_DEADLINE) else { break };
            got.push(line);
            if let Some(f) = between.take() {
                f(self);
            }
        }
        child.kill().ok();
        child.wait().ok();
        for (i, line) in got.iter().enumerate() {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.clone()));
            let shown = self.normalise(value);
            self.lines.push(format!("{label} line {}: {shown}", i + 1));
        }
        if got.len() < n {
            self.lines.push(format!("{label}: only {} of {n} lines", got.len()));
        }
    }

    fn normalise(&mut self, value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let decoder_error = map.get("code").is_some_and(|c| c == 3 || c == 2)
                    && map.get("message").and_then(Value::as_str).is_some_and(|m| !m.starts_with("etcdserver"));
                let mut out = Map::new();
                for (k, v) in map {
                    let v = match k.as_str() {
                        "cluster_id" | "member_id" | "leader" | "ID" | "lease" => match v.as_str() {
                            Some(id) => Value::String(self.ids.label("id", id)),
                            None => self.normalise(v),
                        },
                        "raft_term" | "raftTerm" | "raftIndex" | "raftAppliedIndex" | "dbSize" | "dbSizeInUse"
                        | "version" | "hash" | "blob" | "token" | "etcdserver" | "etcdcluster" | "remaining_bytes"
                        | "name" => Value::String("<x>".into()),
                        "error" | "message" if decoder_error => Value::String("<decoder error>".into()),
                        "clientURLs" | "peerURLs" => Value::String("<urls>".into()),
                        "key" if lock_key(&v) => Value::String("<name>/<lease>".into()),
                        _ => self.normalise(v),
                    };
                    out.insert(k, v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.normalise(v)).collect()),
            other => other,
        }
    }
}

/// Whether `v` is a lock or election key (`<name>/<lease hex>`) of the script's names, in base64.
fn lock_key(v: &Value) -> bool {
    let Some(b64) = v.as_str() else { return false };
    let Some(bytes) = base64_decode(b64) else { return false };
    let key = String::from_utf8_lossy(&bytes);
    ["gw-lock/", "gw-election/"].iter().any(|p| key.starts_with(p))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Runs curl with `args`, returning the HTTP status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl").args(["-sS", "-w", "\n%{http_code}"]).args(args).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn b64(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The script: every gateway path, with the errors a client can provoke.
fn script(gw: &mut Gateway) {
    let (a, b, c) = (b64("a"), b64("b"), b64("c"));
    // KV.
    gw.post("put", "/v3/kv/put", &format!(r#"{{"key":"{a}","value":"{b}"}}"#));
    gw.post("put prev_kv", "/v3/kv/put", &format!(r#"{{"key":"{a}","value":"{c}","prev_kv":true}}"#));
    gw.post("put, unknown field", "/v3/kv/put", &format!(r#"{{"key":"{b}","value":"{b}","bogus":1}}"#));
    gw.post("range", "/v3/kv/range", &format!(r#"{{"key":"{a}"}}"#));
    gw.post("range, no match", "/v3/kv/range", &format!(r#"{{"key":"{c}"}}"#));
    gw.post("range, all keys", "/v3/kv/range", r#"{"key":"AA==","range_end":"AA==","keys_only":true}"#);
    gw.post("range, count only", "/v3/kv/range", r#"{"key":"AA==","range_end":"AA==","count_only":true}"#);
    gw.post("range, no key", "/v3/kv/range", "{}");
    gw.post("range, empty body", "/v3/kv/range", "");
    gw.post("put, value of the wrong type", "/v3/kv/put", &format!(r#"{{"key":"{a}","value":5}}"#));
    gw.post("put, truncated JSON", "/v3/kv/put", r#"{"key":"#);
    gw.post("put, not an object", "/v3/kv/put", "[1]");
    gw.post("put, unknown lease", "/v3/kv/put", &format!(r#"{{"key":"{a}","lease":"99"}}"#));
    // Over etcd's request limit (1.5 MiB): refused by the server's check; over the gRPC message limit (2 MiB):
    // refused in grpc-go's words, with the decoded message's size.
    for (label, size) in
        [("put, 1.6 MB value", 1_600_000), ("put, 2.1 MB value", 2_100_000), ("put, 5 MB value", 5_000_000)]
    {
        gw.post_large(label, "/v3/kv/put", &format!(r#"{{"key":"{a}","value":"{}"}}"#, b64(&"x".repeat(size))));
    }
    gw.post(
        "txn, create compare fails",
        "/v3/kv/txn",
        &format!(
            r#"{{"compare":[{{"target":"CREATE","create_revision":0,"key":"{a}"}}],"success":[{{"request_put":{{"key":"{a}","value":"{b}"}}}}]}}"#
        ),
    );
    gw.post(
        "txn, create compare holds",
        "/v3/kv/txn",
        &format!(
            r#"{{"compare":[{{"target":"CREATE","create_revision":0,"key":"{c}"}}],"success":[{{"request_put":{{"key":"{c}","value":"{b}"}}}},{{"request_range":{{"key":"{c}"}}}}]}}"#
        ),
    );
    gw.post(
        "txn, mod compare then delete",
        "/v3/kv/txn",
        &format!(
            r#"{{"compare":[{{"target":"MOD","mod_revision":"5","key":"{c}","result":"EQUAL"}}],"success":[{{"request_delete_range":{{"key":"{c}","prev_kv":true}}}}]}}"#
        ),
    );
    gw.post("deleterange", "/v3/kv/deleterange", &format!(r#"{{"key":"{b}","prev_kv":true}}"#));
    gw.post("deleterange, nothing", "/v3/kv/deleterange", &format!(r#"{{"key":"{b}"}}"#));
    gw.post("compaction, future", "/v3/kv/compaction", r#"{"revision":"1000"}"#);
    gw.post("compaction", "/v3/kv/compaction", r#"{"revision":"3","physical":true}"#);
    gw.post("range at a compacted revision", "/v3/kv/range", &format!(r#"{{"key":"{a}","revision":"2"}}"#));
    gw.post("v3beta alias", "/v3beta/kv/range", &format!(r#"{{"key":"{a}"}}"#));

    // Watch: a put (no "type": PUT is the zero value) and a delete.
    let w = b64("w/");
    let w_end = b64("w0");
    let (w1, x) = (b64("w/1"), b64("x"));
    gw.stream(
        "watch",
        "/v3/watch",
        &format!(r#"{{"create_request":{{"key":"{w}","range_end":"{w_end}"}}}}"#),
        3,
        |gw| {
            gw.post("put under watch", "/v3/kv/put", &format!(r#"{{"key":"{w1}","value":"{x}"}}"#));
            gw.post("delete under watch", "/v3/kv/deleterange", &format!(r#"{{"key":"{w1}"}}"#));
        },
    );
    gw.stream(
        "watch, compacted start",
        "/v3/watch",
        r#"{"create_request":{"key":"YQ==","start_revision":"2"}}"#,
        1,
        |_| {},
    );
    gw.stream("watch, garbage", "/v3/watch", r#"{"create_request":"#, 1, |_| {});
    gw.stream("watch, empty key", "/v3/watch", r#"{"create_request":{"key":""}}"#, 1, |_| {});
    let backwards = format!(r#"{{"create_request":{{"key":"{b}","range_end":"{a}"}}}}"#);
    gw.stream("watch, range ends before it starts", "/v3/watch", &backwards, 1, |_| {});
    gw.stream(
        "watch, future start",
        "/v3/watch",
        r#"{"create_request":{"key":"YQ==","start_revision":"99"}}"#,
        1,
        |_| {},
    );

    // Leases.
    let grant = gw.post("lease grant", "/v3/lease/grant", r#"{"TTL":30}"#);
    let id = grant["ID"].as_str().expect("lease id").to_owned();
    gw.post("lease grant, id taken", "/v3/lease/grant", &format!(r#"{{"TTL":30,"ID":"{id}"}}"#));
    gw.post("put with the lease", "/v3/kv/put", &format!(r#"{{"key":"{}","value":"{b}","lease":"{id}"}}"#, b64("l")));
    gw.stream("keepalive", "/v3/lease/keepalive", &format!(r#"{{"ID":"{id}"}}"#), 1, |_| {});
    gw.stream("keepalive, unknown lease", "/v3/lease/keepalive", r#"{"ID":"123"}"#, 1, |_| {});
    let ttl = gw.post("timetolive", "/v3/lease/timetolive", &format!(r#"{{"ID":"{id}","keys":true}}"#));
    let remaining: i64 = ttl["TTL"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
    gw.lines.push(format!("timetolive in (20, 30]: {}", remaining > 20 && remaining <= 30));
    gw.post("timetolive, alias", "/v3/kv/lease/timetolive", r#"{"ID":"123"}"#);
    gw.post("leases", "/v3/lease/leases", "{}");
    gw.post("leases, alias", "/v3/kv/lease/leases", "{}");
    gw.post("revoke", "/v3/lease/revoke", &format!(r#"{{"ID":"{id}"}}"#));
    gw.post("revoke, unknown", "/v3/kv/lease/revoke", &format!(r#"{{"ID":"{id}"}}"#));

    // Cluster.
    gw.post("member list", "/v3/cluster/member/list", "{}");
    gw.post("member update, unknown", "/v3/cluster/member/update", r#"{"ID":"42","peerURLs":["http://127.0.0.1:1"]}"#);
    gw.post("member remove, unknown", "/v3/cluster/member/remove", r#"{"ID":"42"}"#);
    gw.post("member promote, unknown", "/v3/cluster/member/promote", r#"{"ID":"42"}"#);
    gw.post("member add, no urls", "/v3/cluster/member/add", "{}");

    // Maintenance.
    gw.post("status", "/v3/maintenance/status", "{}");
    gw.post("alarm list", "/v3/maintenance/alarm", r#"{"action":"GET"}"#);
    gw.post("defragment", "/v3/maintenance/defragment", "{}");
    gw.post("hash", "/v3/maintenance/hash", "{}");
    gw.post("transfer leadership, unknown", "/v3/maintenance/transfer-leadership", r#"{"targetID":"42"}"#);
    let (status, text) =
        curl(&["-N", "-X", "POST", "--data-binary", "{}", &format!("{}/v3/maintenance/snapshot", gw.base)]);
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let blobs = lines.iter().all(|l| l["result"]["blob"].as_str().is_some_and(|b| !b.is_empty()));
    gw.lines.push(format!("snapshot: {status}, lines with a blob: {}", !lines.is_empty() && blobs));

    // Locks and elections.
    let session = gw.post("session lease", "/v3/lease/grant", r#"{"TTL":30}"#);
    let lease = session["ID"].as_str().expect("lease").to_owned();
    let lock = gw.post("lock", "/v3/lock/lock", &format!(r#"{{"name":"{}","lease":"{lease}"}}"#, b64("gw-lock")));
    let key = lock["key"].as_str().unwrap_or_default().to_owned();
    gw.post("unlock", "/v3/lock/unlock", &format!(r#"{{"key":"{key}"}}"#));
    gw.post("lock, no lease", "/v3/lock/lock", &format!(r#"{{"name":"{}","lease":"77"}}"#, b64("gw-lock")));
    let name = b64("gw-election");
    let campaign = gw.post(
        "campaign",
        "/v3/election/campaign",
        &format!(r#"{{"name":"{name}","lease":"{lease}","value":"{a}"}}"#),
    );
    let leader = campaign["leader"].clone();
    gw.post("election leader", "/v3/election/leader", &format!(r#"{{"name":"{name}"}}"#));
    gw.stream("observe", "/v3/election/observe", &format!(r#"{{"name":"{name}"}}"#), 1, |_| {});
    gw.post("proclaim", "/v3/election/proclaim", &format!(r#"{{"leader":{leader},"value":"{b}"}}"#));
    gw.post("resign", "/v3/election/resign", &format!(r#"{{"leader":{leader}}}"#));
    gw.post("election leader, none", "/v3/election/leader", &format!(r#"{{"name":"{name}"}}"#));

    // Auth: the token travels in the Authorization header.
    gw.post("authenticate, auth off", "/v3/auth/authenticate", r#"{"name":"root","password":"pw"}"#);
    gw.post("user add root", "/v3/auth/user/add", r#"{"name":"root","password":"pw"}"#);
    gw.post("user add alice", "/v3/auth/user/add", r#"{"name":"alice","password":"apw"}"#);
    gw.post("user add, taken", "/v3/auth/user/add", r#"{"name":"alice","password":"apw"}"#);
    gw.post("role add", "/v3/auth/role/add", r#"{"name":"app"}"#);
    gw.post(
        "role grant",
        "/v3/auth/role/grant",
        &format!(
            r#"{{"name":"app","perm":{{"permType":"READWRITE","key":"{}","range_end":"{}"}}}}"#,
            b64("app/"),
            b64("app0")
        ),
    );
    gw.post("role get", "/v3/auth/role/get", r#"{"role":"app"}"#);
    gw.post("role list", "/v3/auth/role/list", "{}");
    gw.post("user grant root", "/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#);
    gw.post("user grant alice", "/v3/auth/user/grant", r#"{"user":"alice","role":"app"}"#);
    gw.post("user get", "/v3/auth/user/get", r#"{"name":"alice"}"#);
    gw.post("user list", "/v3/auth/user/list", "{}");
    gw.post("user changepw", "/v3/auth/user/changepw", r#"{"name":"alice","password":"apw2"}"#);
    gw.post("auth enable", "/v3/auth/enable", "{}");
    gw.post("authenticate, wrong password", "/v3/auth/authenticate", r#"{"name":"alice","password":"apw"}"#);
    let alice = gw.post("authenticate alice", "/v3/auth/authenticate", r#"{"name":"alice","password":"apw2"}"#);
    let token = alice["token"].as_str().unwrap_or_default().to_owned();
    gw.post("range without a token", "/v3/kv/range", &format!(r#"{{"key":"{a}"}}"#));
    let base = gw.base.clone();
    for (label, key) in [("alice puts in her prefix", b64("app/1")), ("alice puts outside it", b64("zzz"))] {
        let (status, text) = curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: {token}"),
            "--data-binary",
            &format!(r#"{{"key":"{key}","value":"{b}"}}"#),
            &format!("{base}/v3/kv/put"),
        ]);
        gw.record(label, status, &text);
    }
    let (status, text) = curl(&[
        "-X",
        "POST",
        "-H",
        "Authorization: not-a-token",
        "--data-binary",
        &format!(r#"{{"key":"{a}"}}"#),
        &format!("{base}/v3/kv/range"),
    ]);
    gw.record("a bad token", status, &text);
    let root = gw.post("authenticate root", "/v3/auth/authenticate", r#"{"name":"root","password":"pw"}"#);
    let root_token = root["token"].as_str().unwrap_or_default().to_owned();
    for (label, path, body) in [
        (
            "role revoke",
            "/v3/auth/role/revoke",
            format!(r#"{{"role":"app","key":"{}","range_end":"{}"}}"#, b64("app/"), b64("app0")),
        ),
        ("user revoke", "/v3/auth/user/revoke", r#"{"name":"alice","role":"app"}"#.to_owned()),
        ("role delete", "/v3/auth/role/delete", r#"{"role":"app"}"#.to_owned()),
        ("user delete", "/v3/auth/user/delete", r#"{"name":"alice"}"#.to_owned()),
        ("auth disable", "/v3/auth/disable", "{}".to_owned()),
    ] {
        let (status, text) = curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: {root_token}"),
            "--data-binary",
            &body,
            &format!("{base}{path}"),
        ]);
        gw.record(label, status, &text);
    }

    // Plain endpoints and paths that are not the gateway's.
    let version = gw.get("version", "/version");
    for field in ["etcdserver", "etcdcluster"] {
        let numeric = version[field]
            .as_str()
            .is_some_and(|v| v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()));
        gw.lines.push(format!("version {field} numeric and dotted: {numeric}"));
    }
    gw.get("health", "/health");
    gw.post("unknown path", "/v3/kv/nope", "{}");
    gw.get("GET on a POST path", "/v3/kv/range");
}

fn transcript(server: &Server) -> String {
    let mut gw = Gateway::new(server.endpoint());
    script(&mut gw);
    gw.lines.join("\n")
}

#[test]
fn every_gateway_path_answers_as_etcds_gateway_does() {
    let etcd = Server::start(Kind::Etcd);
    let meridian = Server::start(Kind::Meridian);
    let (want, got) = (transcript(&etcd), transcript(&meridian));
    assert!(
        want == got,
        "the gateways differ (- etcd 3.4, + meridian):\n{}\n\netcd's transcript:\n{want}",
        line_diff(&want, &got, "etcd", "meridian")
    );
    // The transcript is not vacuous: values the script reads back are there.
    assert!(got.contains(r#""kvs":[{"create_revision":"2","key":"YQ==""#), "{got}");
}
