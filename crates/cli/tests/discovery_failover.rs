//! Discovery's datacenter failover end to end (issue 26's first acceptance check), with real `meridian server`
//! processes in the canonical layout (voters a1, a2 in dc-a, b1, b2 in dc-b, c1 in dc-c, learner sg1 in dc-d;
//! `lan` timing, emulated WAN links dc-a–dc-b 10 ms, dc-a–dc-c 30 ms, dc-b–dc-c 30 ms, fault injection on).
//! Every voter registers, through its own Consul HTTP API, an instance of `web` with an HTTP check (interval
//! 1 s) against a small HTTP server of this test on a loopback address of the instance's own (127.0.1.x for
//! dc-a, 127.0.2.x for dc-b, 127.0.3.1 for dc-c), and an instance of `api` with a TTL check (3 s) that the
//! test keeps passing with `PUT /v1/agent/check/pass/<id>`. A client in dc-a is `dig` (SRV and A) and `curl`
//! (`/v1/health/service/<svc>?passing`, `/v1/query/<svc>`) asking a1. Checked:
//!
//! - once every check passes, the client in dc-a gets dc-a's instances first (SRV priority 1, dc-b's 2, dc-c's
//!   3; the health answer and the primary tier of `/v1/query` likewise);
//! - dc-a's HTTP endpoints answer 500: the answers move to dc-b within the check interval plus 1 s; they come
//!   back when the endpoints recover;
//! - dc-a's TTL reports stop: `api`'s answers move to dc-b within the TTL plus 1 s of the last report; back when
//!   the reports resume;
//! - dc-a isolated (`isolated_dcs` on every member): a client placed in dc-a but asking b1 (DNS with an EDNS
//!   Client Subnet that `--dns-zone-map` puts in dc-a, HTTP with `?near=a1`) gets dc-b first within 2 s of the
//!   fault: b1 leaves dc-a out of its answers once it has heard from none of dc-a's members for an election
//!   timeout, before the quorum's `down` verdict (two election timeouts), which follows and then is the reason;
//! - healed: dc-a's instances come first again, for that client and for the one asking a1.
//!
//! Every wait is a bounded poll; the measured times are printed (`--nocapture`).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options, canonical};
use common::http::http;
use common::poll_until;
use serde_json::Value;

/// Bound on anything that has no bound of its own to prove (start, registration, recovery, heal).
const DEADLINE: Duration = Duration::from_secs(30);
/// How often answers are polled while a time is measured.
const EVERY: Duration = Duration::from_millis(20);
/// The HTTP checks' interval (failures before critical: Consul's default, the first failure).
const INTERVAL: Duration = Duration::from_secs(1);
/// The TTL checks' TTL.
const TTL: Duration = Duration::from_secs(3);
/// How often the test reports a TTL check passing.
const PASS_EVERY: Duration = Duration::from_millis(500);
/// The issue's bound on answers leaving a failed datacenter, over the check's own period.
const OVER_THE_CHECK: Duration = Duration::from_secs(1);
/// The issue's bound on answers leaving an isolated datacenter, from the fault.
const ISOLATION_BOUND: Duration = Duration::from_secs(2);
/// Failback hold, which is also the verdicts' stable window before a datacenter is `up` again.
const HOLD_MS: u64 = 2000;
/// Where the zone map puts a client (its EDNS Client Subnet): zone dc-a-z1 of dc-a.
const DC_A_SUBNET: &str = "10.1.0.0/24";
/// The emulated WAN, so that dc-b is measurably nearer to dc-a than dc-c is.
const LINKS: &str = r#"[{"from": "dc-a", "to": "dc-b", "rtt_ms": 10},
    {"from": "dc-a", "to": "dc-c", "rtt_ms": 30}, {"from": "dc-b", "to": "dc-c", "rtt_ms": 30}]"#;

/// The instances: (member that registers them, datacenter, address of their HTTP server).
const INSTANCES: [(&str, &str, [u8; 4]); 5] = [
    ("a1", "dc-a", [127, 0, 1, 1]),
    ("a2", "dc-a", [127, 0, 1, 2]),
    ("b1", "dc-b", [127, 0, 2, 1]),
    ("b2", "dc-b", [127, 0, 2, 2]),
    ("c1", "dc-c", [127, 0, 3, 1]),
];

/// What every healthy answer looks like from dc-a: its two instances, then dc-b's two, then dc-c's one.
const FROM_A: [&str; 5] = ["dc-a", "dc-a", "dc-b", "dc-b", "dc-c"];
/// And with dc-a failed over: dc-b's two, then dc-c's.
const FAILED_OVER: [&str; 3] = ["dc-b", "dc-b", "dc-c"];

fn options() -> Options {
    Options {
        preset: "lan".into(),
        leader_preference: Vec::new(),
        failback_hold_ms: Some(HOLD_MS),
        fault_injection: true,
        extra_args: vec!["--dns-zone-map".into(), "10.1.0.0/16=dc-a/dc-a-z1".into()],
    }
}

fn wan_toml() -> String {
    let links: Vec<Value> = serde_json::from_str(LINKS).expect("links JSON");
    links
        .iter()
        .map(|l| format!("\n[[wan.links]]\nfrom = {}\nto = {}\nrtt_ms = {}\n", l["from"], l["to"], l["rtt_ms"]))
        .collect()
}

/// A small HTTP server of one instance: `/health` answers with the status it is set to, anything else 200.
struct Backend {
    addr: SocketAddr,
    health: Arc<AtomicU16>,
}

impl Backend {
    fn start(ip: [u8; 4]) -> Backend {
        let listener = TcpListener::bind((Ipv4Addr::from(ip), 0)).expect("bind a loopback address");
        let addr = listener.local_addr().expect("local address");
        let health = Arc::new(AtomicU16::new(200));
        let answer = health.clone();
        // Accepts until the test process ends; each request on its own thread so a slow one delays no probe.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let health = answer.load(Ordering::Relaxed);
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let code = if request.starts_with(b"GET /health ") { health } else { 200 };
                    let reason = if code == 200 { "OK" } else { "Internal Server Error" };
                    let body = format!("{code} from {addr}\n");
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Backend { addr, health }
    }

    fn set(&self, code: u16) {
        self.health.store(code, Ordering::Relaxed);
    }
}

/// One TTL check kept passing by its own thread (a report to an isolated member must not delay the others').
struct Kept {
    dc: &'static str,
    paused: AtomicBool,
    /// When the last report was acknowledged; held while a report is in flight.
    last_ack: Mutex<Option<Instant>>,
}

/// Reports every kept TTL check passing every [`PASS_EVERY`], to the member that registered it.
struct TtlKeeper {
    checks: Vec<Arc<Kept>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TtlKeeper {
    fn start(targets: Vec<(&'static str, SocketAddr, String)>) -> TtlKeeper {
        let stop = Arc::new(AtomicBool::new(false));
        let mut checks = Vec::new();
        let mut threads = Vec::new();
        for (dc, member, check) in targets {
            let kept = Arc::new(Kept { dc, paused: AtomicBool::new(false), last_ack: Mutex::new(None) });
            checks.push(kept.clone());
            let stop = stop.clone();
            // The keeper outlives no test: a hard end besides the stop flag.
            let end = Instant::now() + Duration::from_secs(600);
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    {
                        let mut last = kept.last_ack.lock().unwrap();
                        if !kept.paused.load(Ordering::Relaxed)
                            && let Ok((200, _)) = http(member, "PUT", &format!("/v1/agent/check/pass/{check}"), "")
                        {
                            *last = Some(Instant::now());
                        }
                    }
                    std::thread::sleep(PASS_EVERY);
                }
            }));
        }
        TtlKeeper { checks, stop, threads }
    }

    /// Stops reporting `dc`'s checks; returns when the last of their acknowledged reports was (none is in
    /// flight once this returns).
    fn pause(&self, dc: &str) -> Instant {
        let of_dc: Vec<&Arc<Kept>> = self.checks.iter().filter(|k| k.dc == dc).collect();
        for k in &of_dc {
            k.paused.store(true, Ordering::Relaxed);
        }
        of_dc
            .iter()
            .map(|k| k.last_ack.lock().unwrap().expect("a report was acknowledged before the pause"))
            .max()
            .expect("checks in the datacenter")
    }

    fn resume(&self, dc: &str) {
        for k in self.checks.iter().filter(|k| k.dc == dc) {
            k.paused.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for TtlKeeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The datacenter of an instance address.
fn dc_of(ip: &str) -> Option<&'static str> {
    INSTANCES.iter().find(|(_, _, a)| Ipv4Addr::from(*a).to_string() == ip).map(|(_, dc, _)| *dc)
}

/// One answer, reduced to its instances in order, each as (tier: SRV priority or rank, datacenter).
type Seen = Vec<(u64, String)>;

/// `dig @addr -p port name qtype +short` and more; the answer lines, or why there are none.
fn dig(addr: SocketAddr, name: &str, qtype: &str, more: &[&str]) -> Result<Vec<String>, String> {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+time=1", "+tries=1", "+short", name, qtype])
        .args(more)
        .output()
        .map_err(|e| format!("dig (Debian's dnsutils) must be installed: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.starts_with(";;") {
        return Err(format!("dig {name} {qtype} @{addr}: {:?} {text}", out.status));
    }
    Ok(text.lines().map(str::to_owned).collect())
}

/// `<svc>.service.meridian SRV` as (priority, datacenter of the target's address).
fn srv(addr: SocketAddr, service: &str, more: &[&str]) -> Result<Seen, String> {
    let lines = dig(addr, &format!("{service}.service.meridian"), "SRV", more)?;
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [priority, _weight, _port, target] = f[..] else { return Err(format!("SRV line {l:?}")) };
            // The target is <hex address>.addr.<dc>.meridian.; its hex must be the instance's address of that dc.
            let (hex, rest) = target.split_once(".addr.").ok_or_else(|| format!("SRV target {target:?}"))?;
            let ip = u32::from_str_radix(hex, 16).map(|n| Ipv4Addr::from(n).to_string()).map_err(|e| e.to_string())?;
            let dc = dc_of(&ip).ok_or_else(|| format!("SRV target {target:?} is no instance"))?;
            if !rest.starts_with(&format!("{dc}.")) {
                return Err(format!("SRV target {target:?} names another dc than {dc}"));
            }
            Ok((priority.parse().map_err(|_| format!("SRV line {l:?}"))?, dc.to_owned()))
        })
        .collect()
}

/// `<svc>.service.meridian A`: each address's datacenter, in answer order (the rank as the tier).
fn a_records(addr: SocketAddr, service: &str) -> Result<Seen, String> {
    let lines = dig(addr, &format!("{service}.service.meridian"), "A", &[])?;
    lines
        .iter()
        .enumerate()
        .map(|(i, ip)| Ok((i as u64, dc_of(ip).ok_or_else(|| format!("A {ip}"))?.to_owned())))
        .collect()
}

/// `curl` of `path` on a Consul HTTP listener; the JSON body of a 200.
fn curl(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let url = format!("http://{addr}{path}");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "2", "-w", "\n%{http_code}", &url])
        .output()
        .map_err(|e| format!("curl must be installed: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    if !out.status.success() || code != "200" {
        return Err(format!("curl {url}: {:?} {code} {body} {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_str(body).map_err(|e| format!("curl {url}: {e}: {body}"))
}

/// `/v1/health/service/<svc>?passing[&near=...]`: each entry's datacenter, in answer order.
fn health(addr: SocketAddr, service: &str, near: Option<&str>) -> Result<Seen, String> {
    let near = near.map(|n| format!("&near={n}")).unwrap_or_default();
    let entries = curl(addr, &format!("/v1/health/service/{service}?passing{near}"))?;
    let entries = entries.as_array().ok_or_else(|| format!("not an array: {entries}"))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| Ok((i as u64, e["Node"]["Datacenter"].as_str().ok_or_else(|| format!("entry {e}"))?.to_owned())))
        .collect()
}

/// `/v1/query/<svc>?passing`: its flat answer (primary tier, the tiers after it, the passed-over ones), each
/// instance with its tier's position after the primary (1 = primary), and the primary tier's reason.
fn query(addr: SocketAddr, service: &str, near: Option<&str>) -> Result<(Seen, String), String> {
    let near = near.map_or(String::new(), |n| format!("&near={n}"));
    let ranked = curl(addr, &format!("/v1/query/{service}?passing{near}"))?;
    let tiers = ranked["tiers"].as_array().ok_or_else(|| format!("no tiers: {ranked}"))?;
    let Some(primary) = ranked["primary"].as_u64().map(|p| p as usize) else { return Ok((Vec::new(), "none".into())) };
    let order = tiers[primary..].iter().chain(&tiers[..primary]).filter(|t| t["healthy"].as_u64() != Some(0));
    let mut seen = Vec::new();
    for (n, tier) in (1u64..).zip(order) {
        for i in tier["instances"].as_array().ok_or_else(|| format!("tier {tier}"))? {
            seen.push((n, i["instance"]["dc"].as_str().ok_or_else(|| format!("instance {i}"))?.to_owned()));
        }
    }
    let reason = tiers[primary]["reason"]["kind"].as_str().unwrap_or("?").to_owned();
    Ok((seen, reason))
}

/// Whether `seen` is exactly `dcs` in order, each datacenter one tier, tiers numbered from 1 (for ranks from the
/// HTTP API, only the order of datacenters is compared).
fn shows(seen: &Result<Seen, String>, dcs: &[&str], tiers_too: bool) -> bool {
    let Ok(seen) = seen else { return false };
    if seen.iter().map(|(_, dc)| dc.as_str()).collect::<Vec<_>>() != dcs {
        return false;
    }
    if !tiers_too {
        return true;
    }
    // Tier k (1-based) is the k-th distinct datacenter.
    let mut distinct: Vec<&str> = Vec::new();
    seen.iter().all(|(tier, dc)| {
        if distinct.last() != Some(&dc.as_str()) {
            distinct.push(dc);
        }
        *tier == distinct.len() as u64
    })
}

/// A client's view of one service through every front end it uses, by name ("dns srv web", ...).
type Views = BTreeMap<String, Result<Seen, String>>;

/// How a client reaches the cluster.
#[derive(Clone, Copy)]
enum Client {
    /// In dc-a, asking a dc-a member (its own locality): DNS SRV, health and `/v1/query`.
    InDcA { dns: SocketAddr, http: SocketAddr },
    /// Placed in dc-a but asking a member elsewhere: DNS with an EDNS Client Subnet of dc-a, health and
    /// `/v1/query` with `?near=<a dc-a member>`.
    PlacedInDcA { dns: SocketAddr, http: SocketAddr, near: &'static str },
}

impl Client {
    /// Its answers for `service`, per front end.
    fn look(self, service: &str) -> Views {
        let mut views = Views::new();
        match self {
            Client::InDcA { dns, http } => {
                views.insert(format!("dig {service} SRV"), srv(dns, service, &[]));
                views.insert(format!("curl health {service}"), health(http, service, None));
                views.insert(format!("curl query {service}"), query(http, service, None).map(|(s, _)| s));
            }
            Client::PlacedInDcA { dns, http, near } => {
                let subnet = format!("+subnet={DC_A_SUBNET}");
                views.insert(format!("dig {service} SRV {subnet}"), srv(dns, service, &[&subnet]));
                views.insert(format!("curl health {service} near={near}"), health(http, service, Some(near)));
                let ranked = query(http, service, Some(near)).map(|(s, _)| s);
                views.insert(format!("curl query {service} near={near}"), ranked);
            }
        }
        views
    }
}

/// Whether every view of `views` shows `dcs` (SRV and `/v1/query` with their tiers).
fn all_show(views: &Views, dcs: &[&str]) -> bool {
    views.iter().all(|(name, seen)| shows(seen, dcs, !name.contains("health")))
}

/// Polls `client`'s views of `services` until every one shows `dcs`, at most `deadline`; returns, per view,
/// how long after `from` it first showed them. Panics with the last answers after the deadline.
fn wait_all_show(
    cluster: &Cluster,
    client: Client,
    services: &[&str],
    dcs: &[&str],
    from: Instant,
    deadline: Duration,
) -> BTreeMap<String, Duration> {
    let mut first: BTreeMap<String, Duration> = BTreeMap::new();
    let mut last = Views::new();
    let done = poll_until(deadline, EVERY, || {
        last = services.iter().flat_map(|s| client.look(s)).collect();
        let at = from.elapsed();
        for (name, seen) in &last {
            if shows(seen, dcs, !name.contains("health")) {
                first.entry(name.clone()).or_insert(at);
            }
        }
        all_show(&last, dcs)
    });
    assert!(done, "after {deadline:?} the answers are not {dcs:?}: {last:#?}\n{}", cluster.log_tails(40));
    first
}

fn slowest(times: &BTreeMap<String, Duration>) -> Duration {
    times.values().copied().max().unwrap_or_default()
}

/// `PUT /v1/agent/service/register` with `body` on `addr`, retried until it is taken.
fn register(cluster: &Cluster, addr: SocketAddr, body: &str) {
    let mut last = Err(String::new());
    let taken = poll_until(DEADLINE, Duration::from_millis(200), || {
        last = http(addr, "PUT", "/v1/agent/service/register", body);
        matches!(last, Ok((200, _)))
    });
    assert!(taken, "registering {body} on {addr}: {last:?}\n{}", cluster.log_tails(30));
}

/// dc-a's verdict as member `i` has it.
fn verdict_of_dc_a(cluster: &Cluster, i: usize) -> Option<String> {
    cluster.admin_status(i).ok()?.verdicts.remove("dc-a").map(|v| v.state)
}

#[test]
fn answers_leave_a_failing_or_isolated_datacenter_and_come_back() {
    let cluster = Cluster::start_with_topology(&canonical(), &options(), &wan_toml());
    let node = |name: &str| &cluster.nodes[cluster.index(name)];

    // One HTTP server per instance; `web` with an HTTP check of it, `api` with a TTL check, both registered
    // through the Consul API of the member the instance lives by (so they take its dc and zone).
    let mut backends = BTreeMap::new();
    let mut kept = Vec::new();
    for (member, dc, ip) in INSTANCES {
        let backend = Backend::start(ip);
        let (addr, port, http_addr) = (backend.addr.ip(), backend.addr.port(), node(member).http_addr());
        let web = format!(
            r#"{{"Name": "web", "ID": "web-{member}", "Address": "{addr}", "Port": {port},
                "Check": {{"CheckID": "web-{member}-http", "HTTP": "http://{addr}:{port}/health",
                           "Interval": "{}s", "Timeout": "500ms"}}}}"#,
            INTERVAL.as_secs()
        );
        register(&cluster, http_addr, &web);
        let api = format!(
            r#"{{"Name": "api", "ID": "api-{member}", "Address": "{addr}", "Port": {port},
                "Check": {{"CheckID": "api-{member}-ttl", "TTL": "{}s"}}}}"#,
            TTL.as_secs()
        );
        register(&cluster, http_addr, &api);
        kept.push((dc, http_addr, format!("api-{member}-ttl")));
        backends.insert(member, backend);
    }
    let keeper = TtlKeeper::start(kept);

    // 1. Everything passes: the client in dc-a sees dc-a first, then dc-b, then dc-c, through every front end.
    let a1 = node("a1");
    let in_a = Client::InDcA { dns: a1.dns_addr(), http: a1.http_addr() };
    let started = Instant::now();
    wait_all_show(&cluster, in_a, &["web", "api"], &FROM_A, started, DEADLINE);
    eprintln!("all checks passing, dc-a first, {:?} after the registrations", started.elapsed());
    let addresses = a_records(a1.dns_addr(), "web");
    assert!(shows(&addresses, &FROM_A, false), "A records, nearest first: {addresses:?}");
    let (_, reason) = query(a1.http_addr(), "web", None).expect("/v1/query/web");
    assert_eq!(reason, "local_zone", "the primary tier is the client's own zone");
    let from_b = srv(node("b1").dns_addr(), "web", &[]);
    assert!(shows(&from_b, &["dc-b", "dc-b", "dc-a", "dc-a", "dc-c"], true), "b1's own clients: {from_b:?}");

    // 2. dc-a's HTTP endpoints fail: web's answers move to dc-b within the check interval plus 1 s.
    let failed = Instant::now();
    backends["a1"].set(500);
    backends["a2"].set(500);
    let moved = wait_all_show(&cluster, in_a, &["web"], &FAILED_OVER, failed, DEADLINE);
    eprintln!("HTTP checks failing: dc-a's client moved to dc-b after {moved:?}");
    assert!(
        slowest(&moved) <= INTERVAL + OVER_THE_CHECK,
        "answers must leave dc-a within the check interval ({INTERVAL:?}) plus 1 s: {moved:?}"
    );
    let (_, reason) = query(a1.http_addr(), "web", None).expect("/v1/query/web");
    assert_eq!(reason, "failover", "the primary tier says why it serves");
    let recovered = Instant::now();
    backends["a1"].set(200);
    backends["a2"].set(200);
    let back = wait_all_show(&cluster, in_a, &["web"], &FROM_A, recovered, DEADLINE);
    eprintln!("HTTP checks recovered: dc-a first again after {:?}", slowest(&back));

    // 3. dc-a's TTL reports stop: api's answers move to dc-b within the TTL plus 1 s of the last report.
    let last_report = keeper.pause("dc-a");
    let moved = wait_all_show(&cluster, in_a, &["api"], &FAILED_OVER, last_report, DEADLINE);
    eprintln!("TTL reports stopped: dc-a's client moved to dc-b after {moved:?} from the last report");
    assert!(
        slowest(&moved) <= TTL + OVER_THE_CHECK,
        "answers must leave dc-a within the TTL ({TTL:?}) plus 1 s of the last report: {moved:?}"
    );
    let resumed = Instant::now();
    keeper.resume("dc-a");
    let back = wait_all_show(&cluster, in_a, &["web", "api"], &FROM_A, resumed, DEADLINE);
    eprintln!("TTL reports resumed: dc-a first again after {:?}", slowest(&back));

    // 4. dc-a isolated. Its own members cannot tell; a client placed in dc-a that asks b1 must be served by
    // dc-b within 2 s of the fault (b1 is cut off from dc-a after an election timeout; the quorum's `down`
    // verdict follows a detection window later).
    let b1 = cluster.index("b1");
    let placed = Client::PlacedInDcA { dns: node("b1").dns_addr(), http: node("b1").http_addr(), near: "a1" };
    wait_all_show(&cluster, placed, &["web", "api"], &FROM_A, Instant::now(), DEADLINE);
    let up = poll_until(DEADLINE, EVERY, || verdict_of_dc_a(&cluster, b1).as_deref() == Some("up"));
    assert!(up, "dc-a is up before the isolation: {:?}", verdict_of_dc_a(&cluster, b1));
    let isolated = Instant::now();
    cluster.put_faults_everywhere(&format!(r#"{{"links": {LINKS}, "isolated_dcs": ["dc-a"]}}"#));
    let installed = isolated.elapsed();
    let mut down_at = None;
    let mut first = BTreeMap::new();
    let mut last = Views::new();
    let moved = poll_until(DEADLINE, EVERY, || {
        if down_at.is_none() && verdict_of_dc_a(&cluster, b1).as_deref() == Some("down") {
            down_at = Some(isolated.elapsed());
        }
        last = ["web", "api"].iter().flat_map(|s| placed.look(s)).collect();
        let at = isolated.elapsed();
        for (name, seen) in &last {
            if shows(seen, &FAILED_OVER, !name.contains("health")) {
                first.entry(name.clone()).or_insert(at);
            }
        }
        down_at.is_some() && all_show(&last, &FAILED_OVER)
    });
    let excluded = curl(node("b1").http_addr(), "/v1/query/web?near=a1")
        .map(|q| (q["excluded_down"].to_string(), q["excluded_cut_off"].to_string()));
    assert!(moved, "dc-a isolated: {:?} {last:#?}\n{}", verdict_of_dc_a(&cluster, b1), cluster.log_tails(40));
    let down_at = down_at.expect("down");
    eprintln!(
        "dc-a isolated (faults installed in {installed:?}): down at b1 after {down_at:?}; answers in dc-b after \
         {first:?} from the isolation"
    );
    for (name, at) in &first {
        assert!(
            *at <= ISOLATION_BOUND,
            "{name}: answers must leave dc-a within {ISOLATION_BOUND:?} of the fault: {at:?}"
        );
    }
    let excluded = excluded.expect("/v1/query at b1");
    assert_eq!(excluded, (r#"["dc-a"]"#.into(), "[]".into()), "once down, dc-a is left out for its verdict");

    // 5. Healed: dc-a first again, for the client placed there and for the one asking a1.
    let healed = Instant::now();
    cluster.put_faults_everywhere(&format!(r#"{{"links": {LINKS}}}"#));
    let placed_back = wait_all_show(&cluster, placed, &["web", "api"], &FROM_A, healed, DEADLINE);
    let a_back = wait_all_show(&cluster, in_a, &["web", "api"], &FROM_A, healed, DEADLINE);
    eprintln!(
        "healed: dc-a first again for the client placed in dc-a after {:?}, for the one asking a1 after {:?}",
        slowest(&placed_back),
        slowest(&a_back)
    );
    drop(keeper);
}
