//! Stable identities derived from configuration: member ids and the cluster id. They must not change across
//! restarts, because clients and peers remember them.

use meridian_types::NodeId;

/// FNV-1a, 64 bits: small, stable across Rust versions (unlike `DefaultHasher`), good enough for ids.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The member id of the member reachable at this peer URL. Never zero, since etcd treats 0 as "none".
///
/// It depends on the peer URL alone because `etcdctl member add` names a new member only by its peer URLs:
/// the id the cluster assigns then must be the id the new process derives for itself when it starts.
pub fn member_id(peer_url: &str) -> NodeId {
    NodeId(fnv1a(&[peer_url.trim_end_matches('/').as_bytes()]).max(1))
}

/// The cluster id: derived from the sorted ids of the founding members.
pub fn cluster_id(members: &[NodeId]) -> u64 {
    let mut ids: Vec<u64> = members.iter().map(|m| m.0).collect();
    ids.sort_unstable();
    let bytes: Vec<[u8; 8]> = ids.iter().map(|id| id.to_be_bytes()).collect();
    let parts: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
    fnv1a(&parts).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_id_is_stable_and_distinguishes_members() {
        let a = member_id("http://127.0.0.1:2380");
        assert_eq!(a, member_id("http://127.0.0.1:2380/"));
        assert_ne!(a, member_id("http://127.0.0.2:2380"));
        assert_ne!(a.0, 0);
    }

    #[test]
    fn cluster_id_ignores_member_order() {
        let (a, b) = (NodeId(7), NodeId(9));
        assert_eq!(cluster_id(&[a, b]), cluster_id(&[b, a]));
        assert_ne!(cluster_id(&[a]), cluster_id(&[a, b]));
    }
}
