//! Where each playground member lives: member i of the topology gets its own loopback address, base + i, with
//! the fixed ports 2379 (client), 2380 (peer) and 2381 (admin). Linux routes all of 127.0.0.0/8 to loopback, so
//! every member keeps etcd's familiar ports. Pure: no files, no sockets.

use std::net::Ipv4Addr;

use meridian_types::topology::Topology;
use meridian_types::wan::WanConfig;
use meridian_types::{TimingConfig, TimingPreset};

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

/// Rewrites every member's URLs onto its own loopback address and, with `no_wan`, drops the emulated WAN.
/// The result is validated as a topology; its warnings are returned for printing.
pub fn plan(mut topology: Topology, base: Ipv4Addr, no_wan: bool) -> Result<(Topology, Vec<String>), String> {
    for (i, m) in topology.members.iter_mut().enumerate() {
        let ip = member_ip(base, i)?;
        m.client_url = format!("http://{ip}:{CLIENT_PORT}");
        m.peer_url = format!("http://{ip}:{PEER_PORT}");
        m.admin_url = Some(format!("http://{ip}:{ADMIN_PORT}"));
    }
    if no_wan {
        topology.wan = WanConfig::default();
    }
    let mut notes: Vec<String> =
        topology.validate(false).map_err(|e| e.to_string())?.iter().map(|w| w.to_string()).collect();
    notes.extend(fit_timing(&mut topology));
    Ok((topology, notes))
}

/// openraft bounds each replication RPC by one heartbeat interval, so a member whose emulated round trip is
/// not shorter than the heartbeat never acknowledges an append and falls ever further behind. When the lan
/// preset is in force (no explicit values) and the wan preset's heartbeat covers the slowest link, switch to
/// it; otherwise warn. Returns the note to print.
fn fit_timing(topology: &mut Topology) -> Option<String> {
    let slowest = topology.wan.links.iter().filter(|l| !l.blocked).map(|l| l.rtt_ms).max()?;
    let heartbeat = topology.timing.heartbeat_ms();
    if slowest < heartbeat {
        return None;
    }
    let wan = TimingConfig { preset: TimingPreset::Wan, heartbeat_ms: None, election_ms: None };
    let explicit = topology.timing.heartbeat_ms.is_some() || topology.timing.election_ms.is_some();
    if topology.timing.preset == TimingPreset::Lan && !explicit && slowest < wan.heartbeat_ms() {
        topology.timing = wan;
        Some(format!(
            "the slowest emulated link ({slowest} ms RTT) is not shorter than the lan heartbeat ({heartbeat} ms), \
             which bounds each replication RPC; using the wan timing preset"
        ))
    } else {
        Some(format!(
            "the slowest emulated link ({slowest} ms RTT) is not shorter than the heartbeat ({heartbeat} ms), which \
             bounds each replication RPC: members behind it will not keep up"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical() -> Topology {
        Topology::from_toml(super::super::CANONICAL_TOPOLOGY).unwrap()
    }

    #[test]
    fn canonical_members_get_consecutive_loopback_addresses_with_etcd_ports() {
        let (t, _) = plan(canonical(), Ipv4Addr::new(127, 0, 0, 10), false).unwrap();
        let names: Vec<&str> = t.members.iter().map(|m| m.name.0.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "b1", "b2", "c1", "sg1"]);
        assert_eq!(t.members[0].client_url, "http://127.0.0.10:2379");
        assert_eq!(t.members[0].peer_url, "http://127.0.0.10:2380");
        assert_eq!(t.members[0].admin_url.as_deref(), Some("http://127.0.0.10:2381"));
        assert_eq!(t.members[5].client_url, "http://127.0.0.15:2379");
        assert!(!t.wan.links.is_empty(), "the canonical WAN matrix is kept");
    }

    #[test]
    fn no_wan_drops_the_emulated_links_and_the_plan_round_trips_through_toml() {
        let (t, _) = plan(canonical(), Ipv4Addr::new(127, 1, 2, 3), true).unwrap();
        assert!(t.wan.links.is_empty());
        let text = toml::to_string(&t).unwrap();
        assert_eq!(Topology::from_toml(&text).unwrap(), t, "the file the servers read is the plan");
    }

    #[test]
    fn timing_is_fitted_to_the_slowest_emulated_link() {
        // The canonical WAN has a 150 ms link to the learner's DC: above the lan heartbeat of 100 ms.
        let (t, notes) = plan(canonical(), Ipv4Addr::new(127, 0, 0, 10), false).unwrap();
        assert_eq!(t.timing.preset, TimingPreset::Wan);
        assert!(
            notes.iter().any(|n| n.contains("150 ms RTT") && n.contains("using the wan timing preset")),
            "{notes:?}"
        );
        // Without the WAN there is nothing to fit.
        let (t, notes) = plan(canonical(), Ipv4Addr::new(127, 0, 0, 10), true).unwrap();
        assert_eq!(t.timing.preset, TimingPreset::Lan);
        assert!(notes.iter().all(|n| !n.contains("RTT")), "{notes:?}");
        // Explicit timings are the user's choice: kept, with a warning.
        let mut explicit = canonical();
        explicit.timing.heartbeat_ms = Some(120);
        explicit.timing.election_ms = Some(1200);
        let (t, notes) = plan(explicit, Ipv4Addr::new(127, 0, 0, 10), false).unwrap();
        assert_eq!(t.timing.heartbeat_ms, Some(120));
        assert!(notes.iter().any(|n| n.contains("will not keep up")), "{notes:?}");
        // Fast links under the heartbeat change nothing.
        let mut fast = canonical();
        fast.wan.links.retain(|l| l.rtt_ms < 100);
        let (t, notes) = plan(fast, Ipv4Addr::new(127, 0, 0, 10), false).unwrap();
        assert_eq!((t.timing.preset, notes.len()), (TimingPreset::Lan, 0), "{notes:?}");
    }

    #[test]
    fn addresses_outside_loopback_are_refused() {
        let err = plan(canonical(), Ipv4Addr::new(127, 255, 255, 253), false).unwrap_err();
        assert!(err.contains("outside loopback"), "{err}");
        let err = plan(canonical(), Ipv4Addr::new(10, 0, 0, 1), false).unwrap_err();
        assert!(err.contains("outside loopback"), "{err}");
        let err = member_ip(Ipv4Addr::new(255, 255, 255, 255), 1).unwrap_err();
        assert!(err.contains("overflow"), "{err}");
    }
}
