//! Where each playground member lives: member i of the topology gets its own loopback address, base + i, with
//! the fixed ports 2379 (client), 2380 (peer) and 2381 (admin). Linux routes all of 127.0.0.0/8 to loopback, so
//! every member keeps etcd's familiar ports. Pure: no files, no sockets.

use std::net::Ipv4Addr;

use meridian_types::topology::Topology;
use meridian_types::wan::WanConfig;

/// etcd's client port.
pub const CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const PEER_PORT: u16 = 2380;
/// The admin HTTP port, next to the peer port.
pub const ADMIN_PORT: u16 = 2381;

/// The address of member `index` counted from `base`, refused when it would leave 127.0.0.0/8.
pub fn member_ip(base: Ipv4Addr, index: usize) -> Result<Ipv4Addr, String> {
    let ip = u32::try_from(index)
        .ok()
        .and_then(|i| u32::from(base).checked_add(i))
        .map(Ipv4Addr::from)
        .ok_or_else(|| format!("--base-ip {base}: member {index} would overflow the address space"))?;
    if !ip.is_loopback() {
        return Err(format!("--base-ip {base}: member {index} would get {ip}, outside loopback 127.0.0.0/8"));
    }
    Ok(ip)
}

/// Rewrites every member's URLs onto its own loopback address (`https://` with `tls`) and, with `no_wan`, drops
/// the emulated WAN. The result is validated as a topology; its warnings are returned for printing.
pub fn plan(
    mut topology: Topology,
    base: Ipv4Addr,
    no_wan: bool,
    tls: bool,
) -> Result<(Topology, Vec<String>), String> {
    let scheme = if tls { "https" } else { "http" };
    for (i, m) in topology.members.iter_mut().enumerate() {
        let ip = member_ip(base, i)?;
        m.client_url = format!("{scheme}://{ip}:{CLIENT_PORT}");
        m.peer_url = format!("{scheme}://{ip}:{PEER_PORT}");
        m.admin_url = Some(format!("{scheme}://{ip}:{ADMIN_PORT}"));
    }
    if no_wan {
        topology.wan = WanConfig::default();
    }
    // The timing is the topology's as written: replication RPCs are never given less than an election
    // timeout (`PeerClient::ttl` in the consensus crate), so the lan preset copes with the 150 ms learner link.
    let notes: Vec<String> =
        topology.validate(false).map_err(|e| e.to_string())?.iter().map(|w| w.to_string()).collect();
    Ok((topology, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical() -> Topology {
        Topology::from_toml(super::super::CANONICAL_TOPOLOGY).unwrap()
    }

    #[test]
    fn canonical_members_get_consecutive_loopback_addresses_with_etcd_ports() {
        let (t, _) = plan(canonical(), Ipv4Addr::new(127, 0, 0, 10), false, false).unwrap();
        let names: Vec<&str> = t.members.iter().map(|m| m.name.0.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "b1", "b2", "c1", "sg1"]);
        assert_eq!(t.members[0].client_url, "http://127.0.0.10:2379");
        assert_eq!(t.members[0].peer_url, "http://127.0.0.10:2380");
        assert_eq!(t.members[0].admin_url.as_deref(), Some("http://127.0.0.10:2381"));
        assert_eq!(t.members[5].client_url, "http://127.0.0.15:2379");
        assert!(!t.wan.links.is_empty(), "the canonical WAN matrix is kept");
        assert_eq!(t.timing, canonical().timing, "the timing runs as written, 150 ms learner link included");
        let (t, _) = plan(canonical(), Ipv4Addr::new(127, 0, 0, 10), false, true).unwrap();
        assert_eq!(t.members[0].peer_url, "https://127.0.0.10:2380", "--secure: every link over TLS");
        assert_eq!(t.members[0].admin_url.as_deref(), Some("https://127.0.0.10:2381"));
    }

    #[test]
    fn no_wan_drops_the_emulated_links_and_the_plan_round_trips_through_toml() {
        let (t, _) = plan(canonical(), Ipv4Addr::new(127, 1, 2, 3), true, false).unwrap();
        assert!(t.wan.links.is_empty());
        let text = toml::to_string(&t).unwrap();
        assert_eq!(Topology::from_toml(&text).unwrap(), t, "the file the servers read is the plan");
    }

    #[test]
    fn addresses_outside_loopback_are_refused() {
        let err = plan(canonical(), Ipv4Addr::new(127, 255, 255, 253), false, false).unwrap_err();
        assert!(err.contains("outside loopback"), "{err}");
        let err = plan(canonical(), Ipv4Addr::new(10, 0, 0, 1), false, false).unwrap_err();
        assert!(err.contains("outside loopback"), "{err}");
        let err = member_ip(Ipv4Addr::new(255, 255, 255, 255), 1).unwrap_err();
        assert!(err.contains("overflow"), "{err}");
    }
}
