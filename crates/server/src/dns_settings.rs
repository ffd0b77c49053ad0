//! What discovery's DNS server answers with, as the configuration gives it: the domain, the TTL, whether warning
//! instances answer, the source-network map of client localities, the per-source rate limit. Below both the
//! configuration (which builds and checks these at startup) and `dns` (which serves with them).

mod zone_map;

use std::net::IpAddr;

use hickory_proto::rr::Name;

pub use zone_map::ZoneMap;

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
