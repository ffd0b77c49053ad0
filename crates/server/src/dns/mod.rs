//! Discovery over DNS (issue 26 part 5), as Consul serves it on port 8600: `<service>.service[.<dc>].<domain>`
//! (A, AAAA, SRV), `<tag>.<service>.service…`, RFC 2782 `_<service>._tcp.service…` (and `_<service>._<tag>`),
//! `<node>.node[.<dc>].<domain>`, and the `<hex>.addr…` names SRV targets use. Only healthy instances answer
//! (passing, and warning unless `dns_only_passing`), nearest first for where the client is, failing over to the
//! next tier when the nearest has none ([`meridian_registry::rank`]).
//!
//! DNS has no TLS and no authentication here: anyone who reaches the port can read every service's addresses.
//! It listens on loopback by default; beyond loopback it needs `insecure_allow_remote`, like every plain
//! listener.
//!
//! Modules, bottom up, all pure but the last two: [`name`] (query name → [`name::Lookup`]), [`locality`] (which
//! datacenter and zone a client is in: zone map, EDNS Client Subnet), [`records`] (a lookup → the records of an
//! [`records::Answer`]), [`respond`] (request bytes → response message: flags, NXDOMAIN/NODATA, EDNS,
//! truncation), [`limit`] (per-source token buckets), [`cache`] (answers per name, type and locality, dropped
//! when the catalog moves), [`server`] (hickory-server's UDP and TCP listeners around them).

pub mod cache;
pub mod limit;
pub mod locality;
pub mod name;
pub mod records;
pub mod respond;
pub mod server;

use std::net::IpAddr;

use hickory_proto::rr::Name;

pub use locality::ZoneMap;
pub use server::{DnsServer, bind};

/// Where DNS listens unless told otherwise: Consul's port, on loopback.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8600";
/// Queries per second per source address unless told otherwise.
pub const DEFAULT_RATE_LIMIT: u32 = 1000;

/// What the DNS server answers with, from the member's configuration.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    /// The domain, lower case and fully qualified (`meridian.`).
    pub domain: Name,
    /// The TTL of every record (and the SOA's negative-caching minimum).
    pub ttl: u32,
    /// Answer with passing instances only (warning ones too when false).
    pub only_passing: bool,
    /// Source networks to client localities.
    pub zone_map: ZoneMap,
    /// Queries per second per source address; 0 is unlimited.
    pub rate_limit: u32,
    /// The address `ns.<domain>` resolves to (the listener's, when it is a specific one).
    pub ns_addr: Option<IpAddr>,
}

impl DnsSettings {
    /// Settings for `domain` with the defaults (TTL 0, warning instances included, no zone map, the default
    /// rate limit).
    pub fn new(domain: &str) -> Result<DnsSettings, String> {
        Ok(DnsSettings {
            domain: parse_domain(domain)?,
            ttl: 0,
            only_passing: false,
            zone_map: ZoneMap::default(),
            rate_limit: DEFAULT_RATE_LIMIT,
            ns_addr: None,
        })
    }

    /// The settings of a member's configuration, checked.
    pub fn from_config(config: &crate::config::ServerConfig) -> Result<DnsSettings, String> {
        let zone_map = ZoneMap::from_entries(config.dns_zone_map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| format!("dns-zone-map: {e}"))?;
        Ok(DnsSettings {
            ttl: config.dns_ttl,
            only_passing: config.dns_only_passing,
            zone_map,
            rate_limit: config.dns_rate_limit,
            ..DnsSettings::new(&config.dns_domain)?
        })
    }
}

/// A domain given as `meridian`, `meridian.` or `sd.example.com`: DNS labels only, made fully qualified and
/// lower case.
fn parse_domain(domain: &str) -> Result<Name, String> {
    let trimmed = domain.strip_suffix('.').unwrap_or(domain);
    if trimmed.is_empty() || !trimmed.split('.').all(meridian_registry::name::is_dns_label) {
        return Err(format!("dns-domain {domain:?}: expected DNS labels joined by dots, such as meridian"));
    }
    let name = Name::from_ascii(format!("{}.", trimmed.to_ascii_lowercase()))
        .map_err(|e| format!("dns-domain {domain:?}: {e}"))?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_made_fully_qualified_and_lower_case() {
        assert_eq!(parse_domain("meridian").unwrap().to_ascii(), "meridian.");
        assert_eq!(parse_domain("SD.Example.com.").unwrap().to_ascii(), "sd.example.com.");
        for bad in ["", ".", "a..b", "-x", "a b", "x_y"] {
            assert!(parse_domain(bad).is_err(), "{bad:?}");
        }
    }
}
