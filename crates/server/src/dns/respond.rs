//! One request's bytes to one response message, with no socket and no catalog (the records come from a
//! callback): decoding, the protocol's rules and the size limits. This is what the fuzz test drives.
//!
//! - Undecodable bytes: FORMERR when at least the 12-byte header is there (and it is not a response), else
//!   dropped. Responses (QR set) are dropped, never answered. Not exactly one question: FORMERR. An opcode
//!   other than QUERY: NOTIMP. An EDNS version other than 0: BADVERS. A class other than IN, a name outside the
//!   domain, or a zone transfer: REFUSED (the server is authoritative for its domain only and never recurses).
//! - Every response has `aa` set, `ra` clear, `rd` copied, the question echoed as asked (and answer owner names
//!   in the question's case, for resolvers that randomise it).
//! - **Size**: over UDP a response must fit 512 bytes, or the size the query advertised through EDNS (at most
//!   [`MAX_UDP_PAYLOAD`]). Without EDNS at most [`NO_EDNS_RECORDS`] answers are sent. When records are left out
//!   for either reason the additional section goes first and `tc` is set as soon as an answer is dropped, so
//!   the client asks again over TCP, where only the 64 KiB message limit applies.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use meridian_registry::Locality;

use super::DnsSettings;
use super::locality::client_locality;
use super::name::{Lookup, parse};
use super::records::Answer;

/// The largest UDP response sent to a client that advertises more (the DNS flag day's safe size is smaller;
/// this is what BIND and Consul accept).
pub const MAX_UDP_PAYLOAD: u16 = 4096;
/// Answers in a UDP response to a query without EDNS (Consul's default).
pub const NO_EDNS_RECORDS: usize = 3;

/// The transport a request came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: size-limited, truncation applies.
    Udp,
    /// TCP: up to 64 KiB.
    Tcp,
}

/// One understood question: what the answer callback is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The name, lower case.
    pub qname: Name,
    /// What it asks for.
    pub lookup: Lookup,
    /// The record type.
    pub qtype: RecordType,
    /// Where the client is.
    pub from: Locality,
}

/// The response to the request `raw` from `src` over `transport`; `None` to send nothing. `own` is the answering
/// member's locality; `answer` gives the records of a question.
pub fn respond<A: AsRef<Answer>>(
    raw: &[u8],
    src: IpAddr,
    transport: Transport,
    settings: &DnsSettings,
    own: &Locality,
    answer: impl FnOnce(&Question) -> A,
) -> Option<Message> {
    let request = match Message::from_vec(raw) {
        Ok(m) => m,
        Err(_) => {
            // Bytes 0-1 are the id; bit 7 of byte 2 is QR (a response), bits 3-6 the opcode.
            if raw.len() < 12 || raw[2] & 0x80 != 0 {
                return None;
            }
            let op_code = OpCode::from_u8((raw[2] >> 3) & 0x0f);
            return Some(error(u16::from_be_bytes([raw[0], raw[1]]), op_code, ResponseCode::FormErr));
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    let mut response = Message::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = false;
    response.add_queries(request.queries.iter().cloned());
    if let Some(edns) = &request.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(MAX_UDP_PAYLOAD);
        if edns.version() != 0 {
            response.set_edns(ours);
            response.metadata.response_code = ResponseCode::BADVERS;
            return Some(response);
        }
        response.set_edns(ours);
    }
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return Some(response);
    }
    let [query] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return Some(response);
    };
    let qtype = query.query_type();
    let qname = query.name().to_lowercase();
    let lookup = parse(&qname, &settings.domain);
    let refused = query.query_class() != DNSClass::IN || matches!(qtype, RecordType::AXFR | RecordType::IXFR);
    let Some(lookup) = lookup.filter(|_| !refused) else {
        response.metadata.response_code = ResponseCode::Refused;
        return Some(response);
    };
    let ecs = request.edns.as_ref().and_then(|e| match e.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(s)) => Some(*s),
        _ => None,
    });
    let (from, scope) = client_locality(&settings.zone_map, own, src, ecs.as_ref().map(ClientSubnet::addr));
    if let (Some(ecs), Some(scope), Some(edns)) = (&ecs, scope, response.edns.as_mut()) {
        // RFC 7871: echo the client's address and source prefix, with the prefix the answer depends on.
        let mut echoed = *ecs;
        echoed.set_scope_prefix(scope.min(ecs.source_prefix()));
        edns.options_mut().insert(EdnsOption::Subnet(echoed));
    }
    let asked = query.name().clone();
    let question = Question { qname, lookup, qtype, from };
    let answer = answer(&question);
    let answer = answer.as_ref();
    response.metadata.response_code = answer.rcode;
    response.answers = answer.answers.clone();
    for record in &mut response.answers {
        if record.name == question.qname {
            record.name = asked.clone();
        }
    }
    response.authorities = answer.authority.clone();
    response.additionals = answer.additionals.clone();
    let limit = match (transport, &request.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => {
            if response.answers.len() > NO_EDNS_RECORDS {
                response.answers.truncate(NO_EDNS_RECORDS);
                response.metadata.truncation = true;
            }
            512
        }
        (Transport::Udp, Some(edns)) => usize::from(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
    };
    fit(&mut response, limit);
    Some(response)
}

/// Leaves records out of `response` until it encodes within `limit` bytes: additional records first, then
/// answers from the end (setting `tc`), then the authority section.
fn fit(response: &mut Message, limit: usize) {
    if wire_bound(response) <= limit {
        return;
    }
    let size = |m: &Message| m.to_vec().map_or(usize::MAX, |b| b.len());
    if size(response) <= limit {
        return;
    }
    response.additionals.clear();
    while size(response) > limit {
        if response.answers.pop().is_some() {
            response.metadata.truncation = true;
        } else if response.authorities.pop().is_none() {
            break;
        }
    }
}

/// An upper bound of `m`'s encoded size, without encoding it (no name compression counted); `usize::MAX` for
/// record types this server does not answer with.
fn wire_bound(m: &Message) -> usize {
    let name = |n: &Name| n.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    let rdata = |r: &hickory_proto::rr::Record| match &r.data {
        RData::A(_) => Some(4),
        RData::AAAA(_) => Some(16),
        RData::SRV(s) => Some(6 + name(&s.target)),
        RData::NS(ns) => Some(name(&ns.0)),
        RData::SOA(soa) => Some(name(&soa.mname) + name(&soa.rname) + 20),
        _ => None,
    };
    let mut total = 12 + m.queries.iter().map(|q| name(q.name()) + 4).sum::<usize>();
    for r in m.answers.iter().chain(&m.authorities).chain(&m.additionals) {
        let Some(data) = rdata(r) else { return usize::MAX };
        total += name(&r.name) + 10 + data;
    }
    if m.edns.is_some() {
        // The OPT record, and at most one ECS option (4 bytes of option header, 4 of family and prefixes, 16 of
        // address).
        total += 11 + 24;
    }
    total
}

fn error(id: u16, op_code: OpCode, rcode: ResponseCode) -> Message {
    let mut m = Message::new(id, MessageType::Response, op_code);
    m.metadata.response_code = rcode;
    m.metadata.authoritative = false;
    m
}

#[cfg(test)]
mod tests;
