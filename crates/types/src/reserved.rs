//! The reserved keyspace `/meridian/`: where the server keeps what it decides for clients to read and watch
//! (datacenter verdicts, the active datacenter of each failover group, audit logs). Clients may read and watch
//! it with any etcd tool; only the server's own commands may write it.

/// Every reserved key starts with this prefix.
pub const RESERVED_PREFIX: &[u8] = b"/meridian/";

/// The end of the reserved range (`/meridian0`, the prefix with its last byte incremented).
pub const RESERVED_END: &[u8] = b"/meridian0";

/// Datacenter verdicts: `/meridian/dc/<dc>`.
pub const DC_PREFIX: &str = "/meridian/dc/";

/// Failover groups' active datacenters: `/meridian/active/<group>`.
pub const ACTIVE_PREFIX: &str = "/meridian/active/";

/// Failover groups' definitions managed through the API: `/meridian/groups/<group>`.
pub const GROUP_PREFIX: &str = "/meridian/groups/";

/// The audit log of failover hooks: `/meridian/audit/<group>/<token>/<attempt>`.
pub const AUDIT_PREFIX: &str = "/meridian/audit/";

/// The key holding a datacenter's verdict.
pub fn dc_key(dc: &str) -> String {
    format!("{DC_PREFIX}{dc}")
}

/// The key holding a failover group's active datacenter.
pub fn active_key(group: &str) -> String {
    format!("{ACTIVE_PREFIX}{group}")
}

/// The key holding a failover group's definition made through the admin API.
pub fn group_key(group: &str) -> String {
    format!("{GROUP_PREFIX}{group}")
}

/// The end of the etcd range of every key starting with `prefix`: the prefix with its last byte below 0xff
/// incremented (etcd's `"\0"`, every key, when there is none).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Whether the etcd key range `[key, range_end)` touches the reserved keyspace. etcd's conventions: an empty
/// `range_end` means the single key `key`; `range_end == "\0"` means every key from `key` on.
pub fn touches_reserved(key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        return key.starts_with(RESERVED_PREFIX);
    }
    let starts_before_end = key < RESERVED_END;
    let ends_after_start = range_end == b"\0" || range_end > RESERVED_PREFIX;
    starts_before_end && ends_after_start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_keys_are_reserved_only_under_the_prefix() {
        assert!(touches_reserved(b"/meridian/dc/dc-a", b""));
        assert!(touches_reserved(b"/meridian/", b""));
        assert!(!touches_reserved(b"/meridian", b""));
        assert!(!touches_reserved(b"/meridian0", b""));
        assert!(!touches_reserved(b"app/x", b""));
    }

    #[test]
    fn ranges_overlapping_the_prefix_are_reserved() {
        // Every key from "" on, and a prefix range that contains the reserved one.
        assert!(touches_reserved(b"", b"\0"));
        assert!(touches_reserved(b"/", b"0"));
        assert!(touches_reserved(b"/meridian/dc/", b"/meridian/dc0"));
        // Ranges that end at or before the prefix, or start after it.
        assert!(!touches_reserved(b"/a", b"/meridian/"));
        assert!(!touches_reserved(b"/meridian0", b"\0"));
        assert!(!touches_reserved(b"app/", b"app0"));
    }

    #[test]
    fn keys_are_built_under_their_prefixes() {
        assert_eq!(dc_key("dc-a"), "/meridian/dc/dc-a");
        assert_eq!(active_key("db"), "/meridian/active/db");
        assert!(touches_reserved(active_key("db").as_bytes(), b""));
        assert_eq!(group_key("db"), "/meridian/groups/db");
        assert_eq!(prefix_end(ACTIVE_PREFIX), b"/meridian/active0");
    }
}
