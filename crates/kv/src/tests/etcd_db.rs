//! The store as an etcd backend database: every record, lease and the compaction revision land in etcd's
//! buckets under etcd's keys, in a file the bbolt read-back accepts.

use std::io::Cursor;

use meridian_proto::mvccpb::KeyValue;
use prost::Message;

use super::util::*;
use crate::bbolt::read_back::read;
use crate::write_etcd_db_of_view;

fn rev_key(main: i64, tombstone: bool) -> Vec<u8> {
    let mut k = main.to_be_bytes().to_vec();
    k.push(b'_');
    k.extend_from_slice(&0i64.to_be_bytes());
    if tombstone {
        k.push(b't');
    }
    k
}

/// The database of `s` in memory.
fn etcd_db(s: &mut Store) -> Vec<u8> {
    let (out, len) = write_etcd_db_of_view(&s.commit_and_view().unwrap(), Cursor::new(Vec::new())).unwrap();
    assert_eq!(out.get_ref().len() as u64, len);
    out.into_inner()
}

fn kv(key: &str, value: &str, create: i64, modified: i64, version: i64, lease: i64) -> Vec<u8> {
    KeyValue { key: key.into(), value: value.into(), create_revision: create, mod_revision: modified, version, lease }
        .encode_to_vec()
}

#[test]
fn history_leases_and_compaction_land_in_etcds_buckets() {
    let mut s = store();
    let lease = grant(&mut s, 0, 30).unwrap();
    put_lease(&mut s, "a", "1", lease); // rev 2
    put(&mut s, "b", "2"); // rev 3
    put(&mut s, "a", "3"); // rev 4: the lease is dropped, as etcd does for a put without one
    del(&mut s, "b", ""); // rev 5
    put(&mut s, "c", "4"); // rev 6
    compact(&mut s, 3).unwrap();
    let read = read(&etcd_db(&mut s));

    let keys = &read.buckets[&b"key".to_vec()];
    let expected = vec![
        // a@2 and b@3 are the newest revisions at or below the compaction, so they stay.
        (rev_key(2, false), kv("a", "1", 2, 2, 1, lease)),
        (rev_key(3, false), kv("b", "2", 3, 3, 1, 0)),
        (rev_key(4, false), kv("a", "3", 2, 4, 2, 0)),
        // etcd's tombstone value holds the key alone.
        (rev_key(5, true), KeyValue { key: b"b".to_vec(), ..Default::default() }.encode_to_vec()),
        (rev_key(6, false), kv("c", "4", 6, 6, 1, 0)),
    ];
    assert_eq!(keys, &expected);

    let leases = &read.buckets[&b"lease".to_vec()];
    // leasepb.Lease { ID: 1, TTL: 2 } with field numbers 1 and 2, varint-encoded.
    let mut value = vec![0x08];
    prost::encoding::encode_varint(lease as u64, &mut value);
    value.extend_from_slice(&[0x10, 30]);
    assert_eq!(leases, &vec![(lease.to_be_bytes().to_vec(), value)]);

    let meta = &read.buckets[&b"meta".to_vec()];
    let compacted = rev_key(3, false);
    assert_eq!(
        meta,
        &vec![(b"finishedCompactRev".to_vec(), compacted.clone()), (b"scheduledCompactRev".to_vec(), compacted)]
    );
}

#[test]
fn a_fresh_store_gives_empty_buckets_and_no_compaction() {
    let mut s = store();
    let read = read(&etcd_db(&mut s));
    let names: Vec<_> = read.buckets.keys().cloned().collect();
    assert_eq!(names, vec![b"key".to_vec(), b"lease".to_vec(), b"meta".to_vec()]);
    assert!(read.buckets.values().all(Vec::is_empty));
}
