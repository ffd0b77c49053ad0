//! Where a DNS client is: the datacenter and zone its answers are ranked for. A source-network map
//! (`10.1.0.0/16=dc-a/z1`, longest prefix wins) places the address a query names through EDNS Client Subnet
//! (RFC 7871: a resolver asking on behalf of a client), else the query's source address; a client the map does
//! not place is where the answering member is.

use std::net::IpAddr;

use meridian_registry::Locality;

pub use crate::dns_settings::ZoneMap;

/// Where the client of one query is, and the ECS scope prefix to answer with (when the query carried ECS).
pub fn client_locality(map: &ZoneMap, own: &Locality, src: IpAddr, ecs: Option<IpAddr>) -> (Locality, Option<u8>) {
    if let Some(ip) = ecs {
        return match map.place(ip) {
            Some((l, prefix)) => (l.clone(), Some(prefix)),
            None => (own.clone(), Some(0)),
        };
    }
    match map.place(src) {
        Some((l, _)) => (l.clone(), None),
        None => (own.clone(), None),
    }
}

#[cfg(test)]
mod tests {
    use meridian_types::{DcName, ZoneName};

    use super::*;

    fn loc(dc: &str, zone: Option<&str>) -> Locality {
        Locality { dc: DcName::from(dc), zone: zone.map(ZoneName::from) }
    }

    fn map() -> ZoneMap {
        let entries =
            ZoneMap::parse_flag("10.1.0.0/16=dc-a/z1, 10.1.2.0/24=dc-a/z2,10.2.0.0/16=dc-b,fd00::/8=dc-c/z9").unwrap();
        ZoneMap::from_entries(entries.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap()
    }

    #[test]
    fn the_longest_prefix_places_a_client() {
        let m = map();
        let place = |ip: &str| m.place(ip.parse().unwrap()).map(|(l, p)| (l.clone(), p));
        assert_eq!(place("10.1.9.9"), Some((loc("dc-a", Some("z1")), 16)));
        assert_eq!(place("10.1.2.3"), Some((loc("dc-a", Some("z2")), 24)));
        assert_eq!(place("10.2.0.1"), Some((loc("dc-b", None), 16)));
        assert_eq!(place("::ffff:10.2.0.1"), Some((loc("dc-b", None), 16)), "v4-mapped v6 sources");
        assert_eq!(place("fd12::1"), Some((loc("dc-c", Some("z9")), 8)));
        assert_eq!(place("10.3.0.1"), None);
        assert_eq!(place("127.0.0.1"), None);
    }

    #[test]
    fn ecs_wins_over_the_source_and_unplaced_clients_are_where_the_member_is() {
        let (m, own) = (map(), loc("dc-x", Some("zx")));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_locality(&m, &own, ip("127.0.0.1"), None), (own.clone(), None));
        assert_eq!(client_locality(&m, &own, ip("10.2.0.5"), None), (loc("dc-b", None), None));
        assert_eq!(
            client_locality(&m, &own, ip("10.2.0.5"), Some(ip("10.1.2.0"))),
            (loc("dc-a", Some("z2")), Some(24))
        );
        assert_eq!(client_locality(&m, &own, ip("10.2.0.5"), Some(ip("192.168.0.0"))), (own, Some(0)));
    }

    #[test]
    fn bad_entries_are_refused() {
        for (net, place) in [("10.1.0.0/33", "dc-a"), ("10.1.0/16", "dc-a"), ("10.0.0.0/8", "dc a"), ("::/8", "a/b/c")]
        {
            assert!(ZoneMap::from_entries([(net, place)]).is_err(), "{net}={place}");
        }
        assert!(ZoneMap::parse_flag("10.0.0.0/8").is_err());
        assert_eq!(ZoneMap::parse_flag("").unwrap(), vec![]);
    }
}
