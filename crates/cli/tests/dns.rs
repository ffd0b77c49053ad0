//! Discovery's DNS against `dig` (Debian's dnsutils): two in-process members, a1 (voter, dc-a) and b1 (learner,
//! dc-b), each serving DNS on its own loopback port, with `web` registered in both datacenters through a1's
//! discovery (the HTTP API that would take registrations from another process is another part of issue 26).
//!
//! - each member answers `web.service.meridian SRV` with its own datacenter's instances first (priority 1),
//!   unless the query's EDNS Client Subnet is a network the zone map places elsewhere;
//! - when dc-a's instances turn critical (their TTL checks report a failure), a1's answers move to dc-b;
//! - unknown names are NXDOMAIN and names without the asked type NODATA, both with the SOA; names outside the
//!   domain are REFUSED; `aa` is set and `ra` clear;
//! - without EDNS a UDP answer holds three records and sets `tc`; dig then retries over TCP and gets them all;
//! - an explicit DNS address that is taken fails the start; a taken default only turns DNS off.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meridian_registry::consul::{AgentContext, parse_register};
use meridian_registry::{CheckId, CheckRef, NodeName, Outcome};
use meridian_server::{RunningServer, ServerConfig, ServerEnv};
use meridian_types::{DcName, Topology, ZoneName};

/// How long any awaited condition may take.
const DEADLINE: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port free for both UDP and TCP on loopback.
fn free_dns_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn topology() -> Topology {
    let mut text = String::new();
    for (name, dc, role) in [("a1", "dc-a", "voter"), ("b1", "dc-b", "learner")] {
        text.push_str(&format!(
            "[[members]]\nname = \"{name}\"\ndc = \"{dc}\"\nzone = \"{dc}-1\"\nrole = \"{role}\"\n\
             peer_url = \"http://127.0.0.1:{}\"\nclient_url = \"http://127.0.0.1:{}\"\n",
            free_port(),
            free_port()
        ));
    }
    Topology::from_toml(&text).unwrap()
}

fn config(name: &str, dir: &std::path::Path, dns: String) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        data_dir: dir.join(name),
        listen_dns: Some(dns),
        dns_zone_map: [("10.2.0.0/16".to_owned(), "dc-b/dc-b-1".to_owned())].into(),
        force_topology: true,
        ..Default::default()
    }
}

/// Polls `probe` until it yields a value, at most [`DEADLINE`].
async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `dig @addr <args>`'s output.
async fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+time=2", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig (Debian's dnsutils) must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `+short` SRV answers as (priority, port, target).
async fn srv(addr: SocketAddr, name: &str) -> Vec<(u16, u16, String)> {
    dig(addr, &[name, "SRV", "+short"])
        .await
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [p, _w, port, target] => Some((p.parse().ok()?, port.parse().ok()?, target.to_owned())),
                _ => None,
            }
        })
        .collect()
}

/// Registers `web` instance `id` in `dc` at `127.0.<n>.1:8080`, passing, with a TTL check.
async fn register(server: &RunningServer, dc: &str, id: &str, n: u8) {
    let ctx = AgentContext {
        node: NodeName::new(format!("node-{id}")).unwrap(),
        node_address: format!("127.0.{n}.1"),
        dc: DcName::from(dc),
        zone: Some(ZoneName(format!("{dc}-1"))),
        lease: None,
    };
    let body = format!(
        r#"{{"Name":"web","ID":"{id}","Address":"127.0.{n}.1","Port":8080,"Check":{{"CheckID":"ttl","TTL":"60s","Status":"passing"}}}}"#
    );
    let reg = parse_register(body.as_bytes(), &ctx).unwrap();
    server.discovery.register(&reg).await.unwrap();
}

async fn fail(server: &RunningServer, dc: &str, id: &str) {
    let reg = parse_register(
        format!(r#"{{"Name":"web","ID":"{id}","Address":"127.0.0.1","Port":1}}"#).as_bytes(),
        &AgentContext {
            node: NodeName::new(format!("node-{id}")).unwrap(),
            node_address: String::new(),
            dc: DcName::from(dc),
            zone: None,
            lease: None,
        },
    )
    .unwrap();
    let check = CheckRef { instance: reg.instance.reference(), check: CheckId::new("ttl").unwrap() };
    server.discovery.report_ttl(&check, Outcome::Fail, "down".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_sees_the_nearest_healthy_instances_and_follows_failover() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology();
    let env = || ServerEnv { topology: Some(topology.clone()), ..Default::default() };
    let (port_a, port_b) = (free_dns_port(), free_dns_port());
    let a1 = meridian_server::start_in(config("a1", dir.path(), format!("127.0.0.1:{port_a}")), env()).await.unwrap();
    let b1 = meridian_server::start_in(config("b1", dir.path(), format!("127.0.0.1:{port_b}")), env()).await.unwrap();
    let (dns_a, dns_b) = (a1.dns_addr.expect("a1 serves DNS"), b1.dns_addr.expect("b1 serves DNS"));
    assert_eq!((dns_a.port(), dns_b.port()), (port_a, port_b));
    wait_for("a1 to lead", || async { a1.member.raft().status().is_leader.then_some(()) }).await;

    register(&a1, "dc-a", "web-a1", 1).await;
    register(&a1, "dc-a", "web-a2", 2).await;
    register(&a1, "dc-b", "web-b1", 3).await;

    // Each member ranks its own datacenter first.
    let at_a = wait_for("a1 to answer with 3 instances", || async {
        let a = srv(dns_a, "web.service.meridian").await;
        (a.len() == 3).then_some(a)
    })
    .await;
    assert!(at_a[..2].iter().all(|(p, _, t)| *p == 1 && t.contains(".addr.dc-a.meridian.")), "{at_a:?}");
    assert_eq!((at_a[2].0, at_a[2].2.contains(".addr.dc-b.")), (2, true), "{at_a:?}");
    let at_b = wait_for("b1 to answer with 3 instances", || async {
        let a = srv(dns_b, "_web._tcp.service.meridian").await;
        (a.len() == 3).then_some(a)
    })
    .await;
    assert!(at_b[0].0 == 1 && at_b[0].2.contains(".addr.dc-b."), "b1 answers dc-b first: {at_b:?}");
    // A client that says (EDNS Client Subnet) it is in a network the zone map puts in dc-b gets dc-b first from a1.
    let ecs = dig(dns_a, &["web.service.meridian", "SRV", "+short", "+subnet=10.2.7.0/24"]).await;
    assert!(ecs.lines().next().is_some_and(|l| l.starts_with("1 ") && l.contains(".addr.dc-b.")), "{ecs}");
    // The SRV target's address comes in the additional section.
    let full = dig(dns_a, &["web.service.meridian", "SRV"]).await;
    assert!(full.contains("flags: qr aa rd;") || full.contains("flags: qr aa;"), "aa set, ra clear:\n{full}");
    assert!(full.contains("ADDITIONAL: 4"), "three glue records and the OPT record:\n{full}");
    assert!(dig(dns_a, &["web.service.meridian", "A", "+short"]).await.lines().next() == Some("127.0.1.1"));

    // dc-a fails its checks: a1's answers move to dc-b.
    fail(&a1, "dc-a", "web-a1").await;
    fail(&a1, "dc-a", "web-a2").await;
    let moved = wait_for("a1's answers to move to dc-b", || async {
        let a = srv(dns_a, "web.service.meridian").await;
        (a.len() == 1).then_some(a)
    })
    .await;
    assert_eq!(moved[0].0, 1, "dc-b is now the primary tier");
    assert!(moved[0].2.starts_with("7f000301.addr.dc-b."), "{moved:?}");
    // The datacenter-restricted name still says dc-a exists, with nothing healthy: NODATA.
    let nodata = dig(dns_a, &["web.service.dc-a.meridian", "SRV"]).await;
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0") && nodata.contains("AUTHORITY: 1"),
        "{nodata}"
    );

    // NXDOMAIN and NODATA, both with the SOA; outside the domain, REFUSED.
    let nx = dig(dns_a, &["db.service.meridian", "SRV"]).await;
    assert!(nx.contains("status: NXDOMAIN") && nx.contains("AUTHORITY: 1") && nx.contains("SOA"), "{nx}");
    let txt = dig(dns_a, &["web.service.meridian", "TXT"]).await;
    assert!(txt.contains("status: NOERROR") && txt.contains("ANSWER: 0") && txt.contains("AUTHORITY: 1"), "{txt}");
    let outside = dig(dns_a, &["example.com", "A"]).await;
    assert!(outside.contains("status: REFUSED"), "{outside}");
    let soa = dig(dns_a, &["meridian", "SOA", "+short"]).await;
    assert!(soa.starts_with("ns.meridian. hostmaster.meridian."), "{soa}");

    // Truncation: five healthy instances in dc-b; without EDNS, UDP carries three and sets tc.
    for (id, n) in [("web-b2", 4), ("web-b3", 5), ("web-b4", 6), ("web-b5", 7)] {
        register(&a1, "dc-b", id, n).await;
    }
    wait_for("five healthy instances", || async {
        (srv(dns_a, "web.service.meridian").await.len() == 5).then_some(())
    })
    .await;
    let udp = dig(dns_a, &["web.service.meridian", "SRV", "+noedns", "+notcp", "+ignore"]).await;
    assert!(udp.contains(" tc") && udp.contains("ANSWER: 3"), "truncated over UDP:\n{udp}");
    let retried = dig(dns_a, &["web.service.meridian", "SRV", "+noedns"]).await;
    assert!(retried.contains("ANSWER: 5") && !retried.contains(" tc"), "dig retried over TCP:\n{retried}");
    let tcp = dig(dns_a, &["web.service.meridian", "SRV", "+tcp", "+noedns"]).await;
    assert!(tcp.contains("ANSWER: 5"), "{tcp}");

    b1.stop().await.unwrap();
    a1.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_explicit_address_fails_the_start_and_a_taken_default_turns_dns_off() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let solo = |name: &str, dns: Option<String>| ServerConfig {
        name: name.into(),
        data_dir: dir.path().join(name),
        listen_client: "http://127.0.0.1:0".into(),
        listen_peer: "http://127.0.0.1:0".into(),
        listen_dns: dns,
        ..Default::default()
    };
    let err = meridian_server::start(solo("s1", Some(addr.to_string()))).await.err().expect("the start must fail");
    assert!(err.to_string().contains(&format!("dns {addr}")), "{err}");
    // Hold the default port (or find it held by someone else): the member starts without DNS.
    let _default = std::net::UdpSocket::bind(meridian_server::dns::DEFAULT_LISTEN);
    let server = meridian_server::start(solo("s2", None)).await.unwrap();
    assert_eq!(server.dns_addr, None);
    server.stop().await.unwrap();
}

/// A tiny HTTP server on loopback answering every request with `body`; returns its port.
async fn http_server(body: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let reply =
                    format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

/// One `GET /` through `port`; the body, or `None` if the request failed.
async fn get(port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        conn.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").await.ok()?;
        let mut out = String::new();
        conn.read_to_string(&mut out).await.ok()?;
        let (head, body) = out.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), request).await.ok().flatten()
}

/// The HAProxy process; killed when dropped.
struct Haproxy(std::process::Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HAProxy (Debian's haproxy) with `server-template` and `resolvers` on the member's DNS follows the failover of
/// `_web._tcp.service.meridian`: it serves both datacenters' instances (it ignores SRV priorities), and once
/// dc-a's instance turns critical only dc-b's, with every request through it succeeding throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_follows_the_failover_through_srv_records() {
    let dir = tempfile::tempdir().unwrap();
    let dns_port = free_dns_port();
    let config = ServerConfig {
        name: "a1".into(),
        data_dir: dir.path().join("a1"),
        listen_client: "http://127.0.0.1:0".into(),
        listen_peer: "http://127.0.0.1:0".into(),
        listen_dns: Some(format!("127.0.0.1:{dns_port}")),
        dc: DcName::from("dc-a"),
        ..Default::default()
    };
    let a1 = meridian_server::start(config).await.unwrap();
    wait_for("a1 to lead", || async { a1.member.raft().status().is_leader.then_some(()) }).await;
    let (port_a, port_b) = (http_server("a").await, http_server("b").await);
    for (dc, id, port) in [("dc-a", "web-a", port_a), ("dc-b", "web-b", port_b)] {
        let ctx = AgentContext {
            node: NodeName::new(format!("node-{id}")).unwrap(),
            node_address: "127.0.0.1".into(),
            dc: DcName::from(dc),
            zone: None,
            lease: None,
        };
        let body = format!(
            r#"{{"Name":"web","ID":"{id}","Address":"127.0.0.1","Port":{port},"Check":{{"CheckID":"ttl","TTL":"60s","Status":"passing"}}}}"#
        );
        a1.discovery.register(&parse_register(body.as_bytes(), &ctx).unwrap()).await.unwrap();
    }

    let front = free_port();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 256\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             resolvers meridian\n  nameserver m1 127.0.0.1:{dns_port}\n  accepted_payload_size 4096\n\
             \x20 resolve_retries 3\n  timeout resolve 100ms\n  timeout retry 100ms\n  hold valid 100ms\n\
             \x20 hold obsolete 0s\n  hold nx 100ms\n\
             frontend fe\n  bind 127.0.0.1:{front}\n  default_backend web\n\
             backend web\n  balance roundrobin\n\
             \x20 server-template web 4 _web._tcp.service.meridian resolvers meridian init-addr none\n"
        ),
    )
    .unwrap();
    let child = std::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy (Debian's haproxy) must be installed");
    let _haproxy = Haproxy(child);

    // Both instances serve through HAProxy once it resolved the SRV records.
    wait_for("HAProxy to serve from both datacenters", || async {
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.extend(get(front).await);
        }
        (seen.iter().any(|b| b == "a") && seen.iter().any(|b| b == "b")).then_some(())
    })
    .await;

    // dc-a's instance turns critical: HAProxy drops it, and no request fails on the way.
    fail(&a1, "dc-a", "web-a").await;
    let mut failed = 0;
    let mut only_b = 0;
    let end = Instant::now() + DEADLINE;
    while only_b < 30 {
        assert!(Instant::now() < end, "HAProxy still sends requests to dc-a");
        match get(front).await.as_deref() {
            Some("b") => only_b += 1,
            Some(_) => only_b = 0,
            None => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(failed, 0, "every request through HAProxy succeeded during the failover");
    a1.stop().await.unwrap();
}
