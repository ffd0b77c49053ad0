//! Query names, read the way Consul reads them, case-insensitively: what a name under the domain asks for
//! ([`Lookup`]), or that it lies outside the domain (the server is no resolver: such a query is refused).
//!
//! Under `<domain>`, with an optional `.<dc>` after `service` or `node`:
//! - `<service>.service` and `<tag>.<service>.service`;
//! - `_<service>._<proto-or-tag>.service` (RFC 2782): `_tcp` means no tag filter, anything else is a tag;
//! - `<node>.node`, `<hex>.addr` (an IPv4 address as 8 hex digits, IPv6 as 32: the SRV targets' names);
//! - the apex itself and `ns` (the name server).
//!
//! Anything else under the domain is [`Lookup::Unknown`], which is NXDOMAIN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// What a name under the domain asks for. Every text is lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// The domain itself (SOA, NS).
    Apex,
    /// `ns.<domain>`, the name server the NS record names.
    Ns,
    /// A service's instances.
    Service {
        /// The service name as asked (not yet validated).
        service: String,
        /// Only instances carrying this tag.
        tag: Option<String>,
        /// Only instances in this datacenter.
        dc: Option<String>,
    },
    /// A node's address.
    Node {
        /// The node name as asked.
        node: String,
        /// Only in this datacenter.
        dc: Option<String>,
    },
    /// An address written in hex, as SRV targets name them.
    Addr(IpAddr),
    /// A name under the domain that means nothing.
    Unknown,
}

/// What `qname` asks for under `domain` (fully qualified, lower case); `None` when it is outside the domain.
pub fn parse(qname: &Name, domain: &Name) -> Option<Lookup> {
    if !domain.zone_of(qname) {
        return None;
    }
    let relative = usize::from(qname.num_labels()) - usize::from(domain.num_labels());
    let mut labels = Vec::with_capacity(relative);
    for label in qname.iter().take(relative) {
        match std::str::from_utf8(label) {
            Ok(s) => labels.push(s.to_ascii_lowercase()),
            Err(_) => return Some(Lookup::Unknown),
        }
    }
    Some(parse_labels(&labels))
}

fn parse_labels(labels: &[String]) -> Lookup {
    let kinds = ["service", "node", "addr"];
    let (kind_at, dc) = match labels {
        [] => return Lookup::Apex,
        [only] if only == "ns" => return Lookup::Ns,
        [.., kind] if kinds.contains(&kind.as_str()) => (labels.len() - 1, None),
        [.., kind, dc] if kinds.contains(&kind.as_str()) => (labels.len() - 2, Some(dc.clone())),
        _ => return Lookup::Unknown,
    };
    let head = &labels[..kind_at];
    match (labels[kind_at].as_str(), head) {
        ("service", [service]) if !service.starts_with('_') => {
            Lookup::Service { service: service.clone(), tag: None, dc }
        }
        ("service", [first, second]) => match (first.strip_prefix('_'), second.strip_prefix('_')) {
            (Some(service), Some(proto)) => {
                let tag = (proto != "tcp").then(|| proto.to_owned());
                Lookup::Service { service: service.to_owned(), tag, dc }
            }
            (None, None) => Lookup::Service { service: second.clone(), tag: Some(first.clone()), dc },
            _ => Lookup::Unknown,
        },
        ("node", [node]) => Lookup::Node { node: node.clone(), dc },
        ("addr", [hex]) => decode_hex_ip(hex).map_or(Lookup::Unknown, Lookup::Addr),
        _ => Lookup::Unknown,
    }
}

/// The label an address is named by in `<hex>.addr`: 8 hex digits for IPv4, 32 for IPv6.
pub fn hex_ip(ip: IpAddr) -> String {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex_ip(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok();
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::new(byte(0)?, byte(1)?, byte(2)?, byte(3)?))),
        32 => {
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = byte(i)?;
            }
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<Lookup> {
        parse(&Name::from_ascii(name).unwrap(), &Name::from_ascii("meridian.").unwrap())
    }

    fn service(service: &str, tag: Option<&str>, dc: Option<&str>) -> Option<Lookup> {
        Some(Lookup::Service { service: service.into(), tag: tag.map(Into::into), dc: dc.map(Into::into) })
    }

    #[test]
    fn consul_names_are_read_case_insensitively() {
        let cases: Vec<(&str, Option<Lookup>)> = vec![
            ("meridian.", Some(Lookup::Apex)),
            ("MERIDIAN.", Some(Lookup::Apex)),
            ("ns.meridian.", Some(Lookup::Ns)),
            ("web.service.meridian.", service("web", None, None)),
            ("Web.Service.Meridian.", service("web", None, None)),
            ("web.service.dc-b.meridian.", service("web", None, Some("dc-b"))),
            ("blue.web.service.meridian.", service("web", Some("blue"), None)),
            ("blue.web.service.dc-a.meridian.", service("web", Some("blue"), Some("dc-a"))),
            ("_web._tcp.service.meridian.", service("web", None, None)),
            ("_web._TCP.service.dc-b.meridian.", service("web", None, Some("dc-b"))),
            ("_web._blue.service.meridian.", service("web", Some("blue"), None)),
            ("node-1.node.meridian.", Some(Lookup::Node { node: "node-1".into(), dc: None })),
            ("Node-1.node.dc-a.meridian.", Some(Lookup::Node { node: "node-1".into(), dc: Some("dc-a".into()) })),
            ("0a000001.addr.dc-a.meridian.", Some(Lookup::Addr("10.0.0.1".parse().unwrap()))),
            ("20010db8000000000000000000000001.addr.meridian.", Some(Lookup::Addr("2001:db8::1".parse().unwrap()))),
            // Under the domain but meaningless: NXDOMAIN.
            ("service.meridian.", Some(Lookup::Unknown)),
            ("a.b.web.service.meridian.", Some(Lookup::Unknown)),
            ("_web.tcp.service.meridian.", Some(Lookup::Unknown)),
            ("_web.service.meridian.", Some(Lookup::Unknown)),
            ("web.meridian.", Some(Lookup::Unknown)),
            ("web.service.dc-a.extra.meridian.", Some(Lookup::Unknown)),
            ("zz000001.addr.meridian.", Some(Lookup::Unknown)),
            ("0a0001.addr.meridian.", Some(Lookup::Unknown)),
            ("a.b.node.meridian.", Some(Lookup::Unknown)),
            // Outside: refused.
            ("example.com.", None),
            ("meridian.com.", None),
            ("web.service.consul.", None),
            (".", None),
        ];
        for (name, want) in cases {
            assert_eq!(lookup(name), want, "{name}");
        }
    }

    #[test]
    fn hex_addresses_round_trip() {
        for ip in ["10.0.0.1", "255.1.0.7", "2001:db8::1", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(decode_hex_ip(&hex_ip(ip)), Some(ip));
        }
        assert_eq!(hex_ip("10.1.2.255".parse().unwrap()), "0a0102ff");
    }
}
