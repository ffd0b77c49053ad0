//! The keys of a lock or an election and the reads over them, as etcd's `concurrency` package makes them:
//! every waiter (or candidate) of name `N` holds `N/<lease id in lowercase hex>`, so they all live under the
//! prefix `N/` and are ordered by create revision.

use meridian_proto::etcdserverpb::RangeRequest;
use meridian_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use meridian_types::{LeaseId, Revision};

/// The prefix every waiter's key of `name` starts with: `name` and a slash.
pub fn prefix(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

/// The key of the waiter holding `lease` under `name`. Go's `%x` of the lease id: lowercase hex without
/// padding, a minus sign before the magnitude of a negative id.
pub fn waiter_key(name: &[u8], lease: LeaseId) -> Vec<u8> {
    let hex = if lease.0 < 0 { format!("-{:x}", lease.0.unsigned_abs()) } else { format!("{:x}", lease.0) };
    let mut key = prefix(name);
    key.extend_from_slice(hex.as_bytes());
    key
}

/// The end of the range of every key that starts with `prefix` (etcd's `GetPrefixRangeEnd`): the prefix up to
/// its last byte below 0xff, that byte incremented; `\0` (every key from the prefix on) when there is none.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|b| *b < 0xff) {
        Some(at) => {
            let mut end = prefix[..=at].to_vec();
            end[at] += 1;
            end
        }
        None => vec![0],
    }
}

/// The key under `prefix` created first (`WithFirstCreate`): the lock's holder, the election's leader.
pub fn first_created(prefix: &[u8]) -> RangeRequest {
    by_create_revision(prefix, SortOrder::Ascend, None)
}

/// The key under `prefix` created last at or before `max_create` (`WithLastCreate` and `WithMaxCreateRev`): the
/// waiter just ahead of the one whose key was created right after `max_create`.
pub fn last_created_up_to(prefix: &[u8], max_create: Revision) -> RangeRequest {
    by_create_revision(prefix, SortOrder::Descend, Some(max_create))
}

fn by_create_revision(prefix: &[u8], order: SortOrder, max_create: Option<Revision>) -> RangeRequest {
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: order as i32,
        sort_target: SortTarget::Create as i32,
        max_create_revision: max_create.map_or(0, |r| r.0),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiter_keys_are_the_name_a_slash_and_the_lease_in_go_hex() {
        assert_eq!(waiter_key(b"db", LeaseId(0x694d_a24a_62d3_4506)), b"db/694da24a62d34506");
        assert_eq!(waiter_key(b"db", LeaseId(10)), b"db/a");
        assert_eq!(waiter_key(b"", LeaseId(255)), b"/ff");
        assert_eq!(waiter_key(b"x", LeaseId(-5)), b"x/-5");
        assert_eq!(waiter_key(b"x", LeaseId(i64::MIN)), b"x/-8000000000000000");
    }

    #[test]
    fn prefix_end_is_the_first_key_after_every_prefixed_key() {
        assert_eq!(prefix_end(b"db/"), b"db0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
        assert_eq!(prefix_end(b""), [0]);
    }

    #[test]
    fn queue_reads_sort_by_create_revision_and_take_one() {
        let first = first_created(b"n/");
        assert_eq!((first.key.as_slice(), first.range_end.as_slice()), (&b"n/"[..], &b"n0"[..]));
        assert_eq!((first.sort_order(), first.sort_target(), first.limit), (SortOrder::Ascend, SortTarget::Create, 1));
        assert_eq!(first.max_create_revision, 0);
        let ahead = last_created_up_to(b"n/", Revision(41));
        assert_eq!((ahead.sort_order(), ahead.max_create_revision, ahead.limit), (SortOrder::Descend, 41, 1));
    }
}
