//! The source-network map of DNS clients (`10.1.0.0/16=dc-a/z1`, longest prefix wins): which datacenter and zone a
//! client address is in. Parsed from the configuration; `dns::locality` applies it to each query.

use std::net::IpAddr;

use meridian_registry::Locality;
use meridian_types::{DcName, ZoneName};

/// One network of the map.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
    locality: Locality,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(&net.octets(), self.prefix) == masked(&ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(&net.octets(), self.prefix) == masked(&ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// The first `prefix` bits of `octets`, the rest zero.
fn masked(octets: &[u8], prefix: u8) -> Vec<u8> {
    let mut out = octets.to_vec();
    for (i, byte) in out.iter_mut().enumerate() {
        let bits_before = (i * 8) as u32;
        let keep = u32::from(prefix).saturating_sub(bits_before).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    out
}

/// Source networks to client localities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneMap {
    /// Longest prefix first.
    networks: Vec<Network>,
}

impl ZoneMap {
    /// A map of `(network, locality)` entries: `10.1.0.0/16` (a bare address is a /32 or /128) and `dc/zone`
    /// or `dc`.
    pub fn from_entries<'e>(entries: impl IntoIterator<Item = (&'e str, &'e str)>) -> Result<ZoneMap, String> {
        let mut networks = Vec::new();
        for (net, place) in entries {
            let (addr, prefix) = parse_network(net.trim())?;
            networks.push(Network { addr, prefix, locality: parse_locality(place.trim())? });
        }
        networks.sort_by_key(|n| std::cmp::Reverse(n.prefix));
        Ok(ZoneMap { networks })
    }

    /// The flag's form: `10.1.0.0/16=dc-a/z1,10.2.0.0/16=dc-b` (empty: no map).
    pub fn parse_flag(text: &str) -> Result<Vec<(String, String)>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (net, place) = e
                    .split_once('=')
                    .ok_or_else(|| format!("{e:?}: expected NETWORK=DC/ZONE, such as 10.1.0.0/16=dc-a/z1"))?;
                Ok((net.trim().to_owned(), place.trim().to_owned()))
            })
            .collect()
    }

    /// Where a client at `ip` is, with the matching network's prefix length; `None` if no network holds it.
    pub fn place(&self, ip: IpAddr) -> Option<(&Locality, u8)> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks.iter().find(|n| n.contains(ip)).map(|n| (&n.locality, n.prefix))
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| format!("{text:?}: expected a network such as 10.1.0.0/16"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{text:?}: prefix 0..={max}"))?,
    };
    Ok((addr, prefix))
}

fn parse_locality(text: &str) -> Result<Locality, String> {
    let (dc, zone) = match text.split_once('/') {
        Some((dc, zone)) => (dc, Some(zone)),
        None => (text, None),
    };
    let label = meridian_registry::name::is_dns_label;
    if !label(dc) || zone.is_some_and(|z| !label(z)) {
        return Err(format!("{text:?}: expected DC/ZONE or DC, each a DNS label"));
    }
    Ok(Locality { dc: DcName::from(dc), zone: zone.map(ZoneName::from) })
}
