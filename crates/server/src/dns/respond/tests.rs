//! The protocol rules around the answer: flags, refusals, FORMERR, EDNS and ECS, truncation; and a bounded
//! fuzz loop over random and mutated packets that must never panic and must get FORMERR, a well-formed answer or
//! nothing.

use std::net::IpAddr;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{RData, Record};
use meridian_types::{DcName, SplitMix64, ZoneName};

use super::*;
use crate::dns::ZoneMap;
use crate::dns::records::Answer;

fn settings() -> DnsSettings {
    let mut s = DnsSettings::new("meridian").unwrap();
    s.zone_map = ZoneMap::from_entries([("10.2.0.0/16", "dc-b/z7")]).unwrap();
    s
}

fn own() -> Locality {
    Locality { dc: DcName::from("dc-a"), zone: Some(ZoneName::from("z1")) }
}

/// A query's bytes: one question, EDNS with `edns` as the advertised size if given.
fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x1234;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// `n` SRV records for the question's name, each with a long target, and their glue.
fn many(q: &Question, n: usize) -> Answer {
    let target = |i: usize| Name::from_ascii(format!("{i:08x}.addr.dc-a.meridian.")).unwrap();
    let answers =
        (0..n).map(|i| Record::from_rdata(q.qname.clone(), 0, RData::SRV(SRV::new(1, 1, 8080, target(i))))).collect();
    let additionals = (0..n)
        .map(|i| Record::from_rdata(target(i), 0, RData::A(hickory_proto::rr::rdata::A([10, 0, 0, i as u8].into()))))
        .collect();
    Answer { rcode: ResponseCode::NoError, answers, authority: vec![], additionals }
}

fn ask(raw: &[u8], src: &str, t: Transport, n: usize) -> Option<Message> {
    respond(raw, src.parse().unwrap(), t, &settings(), &own(), |q| many(q, n))
}

#[test]
fn answers_are_authoritative_without_recursion_and_echo_the_question() {
    let r = ask(&query("Web.Service.MERIDIAN.", RecordType::SRV, Some(1232)), "127.0.0.1", Transport::Udp, 2).unwrap();
    assert_eq!(r.metadata.id, 0x1234);
    assert_eq!(r.metadata.message_type, MessageType::Response);
    assert!(r.metadata.authoritative && !r.metadata.recursion_available && r.metadata.recursion_desired);
    assert!(!r.metadata.truncation);
    assert_eq!(r.queries[0].name().to_ascii(), "Web.Service.MERIDIAN.");
    assert_eq!(r.answers[0].name.to_ascii(), "Web.Service.MERIDIAN.", "owner names in the question's case");
    assert_eq!((r.answers.len(), r.additionals.len()), (2, 2));
    assert_eq!(r.edns.as_ref().map(Edns::max_payload), Some(MAX_UDP_PAYLOAD));
}

#[test]
fn the_answers_rcode_passes_through() {
    let r = respond(
        &query("db.service.meridian.", RecordType::A, None),
        "127.0.0.1".parse().unwrap(),
        Transport::Udp,
        &settings(),
        &own(),
        |_| Answer { rcode: ResponseCode::NXDomain, answers: vec![], authority: vec![], additionals: vec![] },
    )
    .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(r.metadata.authoritative);
}

#[test]
fn no_recursion_no_transfers_no_other_classes() {
    let refused = |raw: Vec<u8>| {
        let mut called = false;
        let r = respond(&raw, "127.0.0.1".parse().unwrap(), Transport::Udp, &settings(), &own(), |q| {
            called = true;
            many(q, 1)
        })
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(!called, "nothing is looked up");
    };
    refused(query("example.com.", RecordType::A, None));
    refused(query("web.service.consul.", RecordType::SRV, Some(4096)));
    refused(query("meridian.", RecordType::AXFR, None));
    let mut chaos = Message::from_vec(&query("web.service.meridian.", RecordType::A, None)).unwrap();
    chaos.queries[0].set_query_class(DNSClass::CH);
    refused(chaos.to_vec().unwrap());
}

#[test]
fn bad_packets_get_formerr_or_nothing() {
    // Too short for a header: dropped.
    assert!(ask(&[0x12, 0x34, 0x01], "127.0.0.1", Transport::Udp, 1).is_none());
    // A header that promises a question that is not there: FORMERR with the id.
    let mut raw = query("web.service.meridian.", RecordType::A, None);
    raw.truncate(16);
    let r = ask(&raw, "127.0.0.1", Transport::Udp, 1).unwrap();
    assert_eq!((r.metadata.id, r.metadata.response_code), (0x1234, ResponseCode::FormErr));
    // Responses are never answered (no reflection loops).
    let mut raw = query("web.service.meridian.", RecordType::A, None);
    raw[2] |= 0x80;
    assert!(ask(&raw, "127.0.0.1", Transport::Udp, 1).is_none());
    // Two questions: FORMERR.
    let mut two = Message::from_vec(&query("web.service.meridian.", RecordType::A, None)).unwrap();
    two.add_query(Query::query(Name::from_ascii("db.service.meridian.").unwrap(), RecordType::A));
    let r = ask(&two.to_vec().unwrap(), "127.0.0.1", Transport::Udp, 1).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // An UPDATE: not implemented.
    let mut update = Message::from_vec(&query("meridian.", RecordType::SOA, None)).unwrap();
    update.metadata.op_code = OpCode::Update;
    let r = ask(&update.to_vec().unwrap(), "127.0.0.1", Transport::Udp, 1).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    // EDNS version 1: BADVERS.
    let mut v1 = Message::from_vec(&query("meridian.", RecordType::SOA, Some(1232))).unwrap();
    v1.edns.as_mut().unwrap().set_version(1);
    let r = ask(&v1.to_vec().unwrap(), "127.0.0.1", Transport::Udp, 1).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::BADVERS);
}

#[test]
fn without_edns_three_answers_and_tc_over_udp_all_over_tcp() {
    let raw = query("web.service.meridian.", RecordType::SRV, None);
    let r = ask(&raw, "127.0.0.1", Transport::Udp, 5).unwrap();
    assert_eq!(r.answers.len(), NO_EDNS_RECORDS);
    assert!(r.metadata.truncation, "more exist: the client retries over TCP");
    assert!(r.to_vec().unwrap().len() <= 512);
    let r = ask(&raw, "127.0.0.1", Transport::Udp, 3).unwrap();
    assert!(!r.metadata.truncation, "exactly three fit");
    let r = ask(&raw, "127.0.0.1", Transport::Tcp, 50).unwrap();
    assert_eq!((r.answers.len(), r.metadata.truncation), (50, false));
}

#[test]
fn udp_responses_fit_the_advertised_size() {
    for size in [512u16, 1232, 4096, 65_000] {
        let raw = query("web.service.meridian.", RecordType::SRV, Some(size));
        let r = ask(&raw, "127.0.0.1", Transport::Udp, 300).unwrap();
        let len = r.to_vec().unwrap().len();
        assert!(len <= usize::from(size.min(MAX_UDP_PAYLOAD)), "{size}: {len}");
        assert!(r.metadata.truncation && !r.answers.is_empty(), "{size}");
        assert!(r.additionals.is_empty(), "glue goes before answers");
    }
    let r = ask(&query("web.service.meridian.", RecordType::SRV, Some(4096)), "127.0.0.1", Transport::Udp, 20).unwrap();
    assert_eq!((r.answers.len(), r.additionals.len(), r.metadata.truncation), (20, 20, false), "20 fit in 4096");
}

#[test]
fn the_client_is_placed_by_ecs_then_by_source_then_at_the_member() {
    let placed = |raw: &[u8], src: &str| {
        let mut from = None;
        let r = respond(raw, src.parse().unwrap(), Transport::Udp, &settings(), &own(), |q| {
            from = Some(q.from.clone());
            many(q, 1)
        })
        .unwrap();
        let scope = r.edns.as_ref().and_then(|e| match e.option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        });
        (from.unwrap(), scope)
    };
    let b = Locality { dc: DcName::from("dc-b"), zone: Some(ZoneName::from("z7")) };
    let raw = query("web.service.meridian.", RecordType::SRV, Some(1232));
    assert_eq!(placed(&raw, "127.0.0.1"), (own(), None));
    assert_eq!(placed(&raw, "10.2.3.4"), (b.clone(), None));
    let mut with_ecs = Message::from_vec(&raw).unwrap();
    let ecs = ClientSubnet::new("10.2.3.0".parse::<IpAddr>().unwrap(), 24, 0);
    with_ecs.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(ecs));
    assert_eq!(placed(&with_ecs.to_vec().unwrap(), "127.0.0.1"), (b, Some(16)), "ECS wins; scope is the map's /16");
    let mut elsewhere = Message::from_vec(&raw).unwrap();
    let ecs = ClientSubnet::new("192.168.1.0".parse::<IpAddr>().unwrap(), 24, 0);
    elsewhere.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(ecs));
    assert_eq!(placed(&elsewhere.to_vec().unwrap(), "10.2.0.1"), (own(), Some(0)), "an unmapped ECS: scope 0");
}

/// Random bytes, and valid queries with random bytes changed, cut or added: never a panic; nothing, FORMERR, or a
/// response that encodes and (over UDP) fits.
#[test]
fn fuzzed_packets_never_panic() {
    let mut rng = SplitMix64::new(0x5eed_d15c);
    let seeds: Vec<Vec<u8>> = vec![
        query("web.service.meridian.", RecordType::SRV, None),
        query("_web._tcp.service.dc-a.meridian.", RecordType::SRV, Some(1232)),
        query("node-1.node.meridian.", RecordType::A, Some(512)),
        query("meridian.", RecordType::SOA, None),
    ];
    let (mut formerr, mut dropped, mut answered) = (0, 0, 0);
    for round in 0..20_000u32 {
        let raw: Vec<u8> = if round % 4 == 0 {
            let len = rng.below(80) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            let mut raw = seeds[rng.below(seeds.len() as u64) as usize].clone();
            for _ in 0..=rng.below(4) {
                match rng.below(3) {
                    0 if !raw.is_empty() => {
                        let i = rng.below(raw.len() as u64) as usize;
                        raw[i] = rng.next_u64() as u8;
                    }
                    1 => raw.truncate(rng.below(raw.len() as u64 + 1) as usize),
                    _ => raw.push(rng.next_u64() as u8),
                }
            }
            raw
        };
        let transport = if round % 3 == 0 { Transport::Tcp } else { Transport::Udp };
        let n = rng.below(40) as usize;
        match ask(&raw, "10.2.0.9", transport, n) {
            None => dropped += 1,
            Some(r) => {
                let bytes = r.to_vec().expect("a response always encodes");
                assert!(wire_bound(&r) >= bytes.len(), "the bound holds, round {round}");
                if transport == Transport::Udp {
                    assert!(bytes.len() <= usize::from(MAX_UDP_PAYLOAD), "round {round}");
                }
                assert_eq!(r.metadata.message_type, MessageType::Response);
                if r.metadata.response_code == ResponseCode::FormErr {
                    formerr += 1;
                } else {
                    answered += 1;
                }
            }
        }
    }
    assert!(formerr > 100 && dropped > 100 && answered > 100, "{formerr} {dropped} {answered}");
}
