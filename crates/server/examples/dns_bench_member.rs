//! A single member for `bench/dns`: serves discovery DNS on the address given (no rate limit), registers
//! `web` with three instances in its own datacenter (dc-a) and three in dc-b, prints `ready` once its DNS
//! answers with all six, and runs until killed.
//!
//! Usage: `dns_bench_member <dns-addr> <data-dir>`.

use std::time::Duration;

use meridian_registry::NodeName;
use meridian_registry::consul::{AgentContext, parse_register};
use meridian_server::ServerConfig;
use meridian_types::{DcName, ZoneName};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (dns, dir) = match (args.next(), args.next()) {
        (Some(dns), Some(dir)) => (dns, dir),
        _ => {
            eprintln!("usage: dns_bench_member <dns-addr> <data-dir>");
            std::process::exit(2);
        }
    };
    let config = ServerConfig {
        name: "bench".into(),
        data_dir: dir.into(),
        listen_client: "http://127.0.0.1:0".into(),
        listen_peer: "http://127.0.0.1:0".into(),
        listen_dns: Some(dns),
        dns_rate_limit: 0,
        ..Default::default()
    };
    let server = meridian_server::start(config).await.expect("the member starts");
    while !server.member.raft().status().is_leader {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (dc, n) in [("dc-a", 1u8), ("dc-a", 2), ("dc-a", 3), ("dc-b", 4), ("dc-b", 5), ("dc-b", 6)] {
        let ctx = AgentContext {
            node: NodeName::new(format!("node-{n}")).unwrap(),
            node_address: format!("10.0.0.{n}"),
            dc: DcName::from(dc),
            zone: Some(ZoneName::from("zone-1")),
            lease: None,
        };
        let body = format!(r#"{{"Name":"web","ID":"web-{n}","Address":"10.0.0.{n}","Port":8080}}"#);
        let reg = parse_register(body.as_bytes(), &ctx).expect("a valid registration");
        server.discovery.register(&reg).await.expect("registered");
    }
    loop {
        let ready = server.discovery.live().read().instances().count() == 6;
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("ready {}", server.dns_addr.expect("DNS is served"));
    server.wait().await.expect("serving");
}
