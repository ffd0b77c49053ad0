//! The records that answer one [`Lookup`] of one type for a client at one locality, from one catalog: pure,
//! so every rule is tested without sockets and the result can be cached.
//!
//! - **Services**: the healthy instances ([`meridian_registry::rank`]: passing, and warning unless
//!   only-passing; nearest tier first, failing over when the nearest has none). SRV priority is the tier's
//!   place in the answer (1 for the primary tier, then 2, 3, … for each further non-empty tier), the weight
//!   is the instance's DNS weight at its health, the target names the instance's address: `<hex>.addr.<dc>.
//!   <domain>` with its A/AAAA record in the additional section, or the host name itself (no glue, no CNAME)
//!   when the address is a host name. A/AAAA answers carry the instances' IP addresses, nearest first, each
//!   once.
//! - **Names and data**: a service (with that tag, in that datacenter) with no registration at all, a node
//!   nobody registered on, or an unknown name is NXDOMAIN; a name that exists but has no healthy instance or
//!   no record of the asked type is NODATA (NOERROR, no answer). Both carry the SOA in the authority section.
//! - **The apex** has the SOA (serial: the catalog's revision, truncated to 32 bits) and one NS, `ns.<domain>`,
//!   which resolves to the listener's address when it has a specific one.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use meridian_registry::{Candidate, Locality, Query, ServiceName, ServicePolicy, rank};

use super::DnsSettings;
use super::name::{Lookup, hex_ip};
use crate::discovery::answer::{Surroundings, candidates};
use crate::discovery::catalog::Catalog;

/// What a lookup answers: the response code and the three sections.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// NOERROR or NXDOMAIN.
    pub rcode: ResponseCode,
    /// The answer section, nearest first.
    pub answers: Vec<Record>,
    /// The authority section: the SOA when there is no answer.
    pub authority: Vec<Record>,
    /// The additional section: addresses of SRV targets, the name server's address.
    pub additionals: Vec<Record>,
}

impl Answer {
    /// Whether the name exists but has no record of the asked type.
    pub fn is_nodata(&self) -> bool {
        self.rcode == ResponseCode::NoError && self.answers.is_empty()
    }
}

impl AsRef<Answer> for Answer {
    fn as_ref(&self) -> &Answer {
        self
    }
}

/// What the records come from.
pub struct Scene<'a> {
    /// The member's catalog.
    pub catalog: &'a Catalog,
    /// Round-trip times and datacenters that are down.
    pub surroundings: &'a Surroundings,
    /// The DNS settings.
    pub settings: &'a DnsSettings,
}

/// The answer to `lookup` (asked as `qname`, lower case) of type `qtype` for a client at `from`.
pub fn answer(scene: &Scene<'_>, lookup: &Lookup, qname: &Name, qtype: RecordType, from: &Locality) -> Answer {
    let mut out = Builder { scene, qname, answers: Vec::new(), additionals: Vec::new() };
    let exists = match lookup {
        Lookup::Apex => {
            out.apex(qtype);
            true
        }
        Lookup::Ns => {
            if let Some(ip) = scene.settings.ns_addr {
                out.address(qname.clone(), ip, qtype);
            }
            true
        }
        Lookup::Service { service, tag, dc } => out.service(service, tag.as_deref(), dc.as_deref(), qtype, from),
        Lookup::Node { node, dc } => out.node(node, dc.as_deref(), qtype),
        Lookup::Addr(ip) => {
            out.address(qname.clone(), *ip, qtype);
            true
        }
        Lookup::Unknown => false,
    };
    let Builder { answers, additionals, .. } = out;
    let rcode = if exists { ResponseCode::NoError } else { ResponseCode::NXDomain };
    let authority = if answers.is_empty() { vec![soa(scene)] } else { Vec::new() };
    Answer { rcode, answers, authority, additionals }
}

/// The domain's SOA record.
pub fn soa(scene: &Scene<'_>) -> Record {
    let settings = scene.settings;
    let domain = settings.domain.clone();
    let mname = ns_name(&domain);
    let rname = Name::from_ascii("hostmaster").expect("a label").append_domain(&domain).unwrap_or(domain.clone());
    let serial = (scene.catalog.index().max(1) as u64 & u64::from(u32::MAX)) as u32;
    let data = SOA::new(mname, rname, serial, 3600, 600, 86_400, settings.ttl);
    Record::from_rdata(domain, settings.ttl, RData::SOA(data))
}

fn ns_name(domain: &Name) -> Name {
    Name::from_ascii("ns").expect("a label").append_domain(domain).unwrap_or(domain.clone())
}

struct Builder<'s, 'a> {
    scene: &'s Scene<'a>,
    qname: &'s Name,
    answers: Vec<Record>,
    additionals: Vec<Record>,
}

impl Builder<'_, '_> {
    fn ttl(&self) -> u32 {
        self.scene.settings.ttl
    }

    fn apex(&mut self, qtype: RecordType) {
        let domain = &self.scene.settings.domain;
        if matches!(qtype, RecordType::SOA | RecordType::ANY) {
            self.answers.push(soa(self.scene));
        }
        if matches!(qtype, RecordType::NS | RecordType::ANY) {
            let ns = ns_name(domain);
            self.answers.push(Record::from_rdata(domain.clone(), self.ttl(), RData::NS(NS(ns.clone()))));
            if let Some(ip) = self.scene.settings.ns_addr {
                self.additionals.push(address_record(ns, ip, self.ttl()));
            }
        }
    }

    /// `ip`'s record under `name`, if `qtype` asks for its family.
    fn address(&mut self, name: Name, ip: IpAddr, qtype: RecordType) {
        if wants(qtype, ip) {
            let ttl = self.ttl();
            self.answers.push(address_record(name, ip, ttl));
        }
    }

    /// Returns whether the name exists (the service has a matching registration, healthy or not).
    fn service(
        &mut self,
        service: &str,
        tag: Option<&str>,
        dc: Option<&str>,
        qtype: RecordType,
        from: &Locality,
    ) -> bool {
        let Ok(service) = ServiceName::new(service) else { return false };
        let catalog = self.scene.catalog;
        let matching: Vec<Candidate<'_>> = candidates(catalog, &service)
            .into_iter()
            .filter(|c| dc.is_none_or(|dc| c.instance.dc.0.eq_ignore_ascii_case(dc)))
            .filter(|c| tag.is_none_or(|t| c.instance.tags.iter().any(|it| it.eq_ignore_ascii_case(t))))
            .collect();
        if matching.is_empty() {
            return false;
        }
        let surroundings = self.scene.surroundings;
        let query = Query {
            from,
            rtt_ms: &surroundings.rtt_ms,
            down: &surroundings.excluded,
            policy: ServicePolicy::default(),
            include_warning: !self.scene.settings.only_passing,
            tags: &[],
            seed: None,
        };
        let ranked = rank(&matching, &query);
        let Some(primary) = ranked.primary else { return true };
        let tiers = ranked.tiers[primary..].iter().chain(&ranked.tiers[..primary]).filter(|t| !t.instances.is_empty());
        let ttl = self.ttl();
        let domain = &self.scene.settings.domain;
        let mut seen: Vec<IpAddr> = Vec::new();
        for (priority, tier) in (1u16..).zip(tiers) {
            for entry in &tier.instances {
                let i = entry.instance;
                let ip = i.address.parse::<IpAddr>().ok();
                match qtype {
                    RecordType::SRV => {
                        let target = match ip {
                            Some(ip) => addr_name(ip, &i.dc.0, domain),
                            None => Name::from_ascii(&i.address).ok().map(with_root),
                        };
                        let Some(target) = target else { continue };
                        let srv = SRV::new(priority, entry.weight, i.port, target.clone());
                        self.answers.push(Record::from_rdata(self.qname.clone(), ttl, RData::SRV(srv)));
                        if let Some(ip) = ip
                            && !self.additionals.iter().any(|r| r.name == target)
                        {
                            self.additionals.push(address_record(target, ip, ttl));
                        }
                    }
                    _ => {
                        if let Some(ip) = ip.filter(|ip| wants(qtype, *ip) && !seen.contains(ip)) {
                            seen.push(ip);
                            self.answers.push(address_record(self.qname.clone(), ip, ttl));
                        }
                    }
                }
            }
        }
        true
    }

    /// Returns whether the node exists (has any registration, in `dc` if given).
    fn node(&mut self, node: &str, dc: Option<&str>, qtype: RecordType) -> bool {
        let mut exists = false;
        let mut seen: Vec<IpAddr> = Vec::new();
        for stored in self.scene.catalog.instances() {
            let i = &stored.registration.instance;
            if !i.node.as_str().eq_ignore_ascii_case(node) || dc.is_some_and(|dc| !i.dc.0.eq_ignore_ascii_case(dc)) {
                continue;
            }
            exists = true;
            if let Ok(ip) = i.node_address.parse::<IpAddr>()
                && !seen.contains(&ip)
            {
                seen.push(ip);
                self.address(self.qname.clone(), ip, qtype);
            }
        }
        exists
    }
}

/// Whether `qtype` asks for an address of `ip`'s family.
fn wants(qtype: RecordType, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => matches!(qtype, RecordType::A | RecordType::ANY),
        IpAddr::V6(_) => matches!(qtype, RecordType::AAAA | RecordType::ANY),
    }
}

fn address_record(name: Name, ip: IpAddr, ttl: u32) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name, ttl, data)
}

/// `<hex>.addr.<dc>.<domain>`.
fn addr_name(ip: IpAddr, dc: &str, domain: &Name) -> Option<Name> {
    Name::from_ascii(format!("{}.addr.{}", hex_ip(ip), dc.to_ascii_lowercase())).ok()?.append_domain(domain).ok()
}

fn with_root(mut name: Name) -> Name {
    name.set_fqdn(true);
    name
}

#[cfg(test)]
mod tests;
