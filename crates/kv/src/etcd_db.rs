//! The store as an etcd 3.4 backend database: the bytes `Maintenance.Snapshot` streams, so that `etcdctl
//! snapshot status` reads a Meridian snapshot and `etcdctl snapshot restore` turns it into an etcd data dir.
//!
//! etcd keeps its MVCC history in a bbolt file, and a snapshot is that file. The same history goes into the
//! same buckets here ([`crate::bbolt`] writes the file):
//! - `key`: one entry per record, keyed by revision (main and sub as big-endian u64s around a `_`, plus a
//!   `t` for a tombstone), each value an `mvccpb.KeyValue` (a tombstone's holds only the key, as etcd's does);
//! - `lease`: one entry per lease, keyed by its id (big-endian), each value a `leasepb.Lease`;
//! - `meta`: the compaction revision as etcd records it (`scheduledCompactRev`, `finishedCompactRev`), when
//!   there has been a compaction.
//!
//! etcd's other buckets (members, cluster version, auth, alarms) are created by etcd when it opens the file,
//! and `etcdctl snapshot restore` rewrites the membership anyway; its consistent index is also set by the
//! restore, since Meridian's Raft log indexes mean nothing to an etcd cluster.

use std::io::{Seek, Write};

use meridian_proto::mvccpb::KeyValue;
use prost::Message;

use crate::backend::BackendView;
use crate::bbolt::{BoltError, BoltFile};
use crate::error::{Error, Result};
use crate::lease::decode_lease;
use crate::record::Record;
use crate::revision::RevisionKey;
use crate::store::{META_COMPACT, meta_i64};

/// etcd's `leasepb.Lease` (field numbers from etcd's `lease/leasepb/lease.proto`).
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdLease {
    #[prost(int64, tag = "1")]
    id: i64,
    #[prost(int64, tag = "2")]
    ttl: i64,
    #[prost(int64, tag = "3")]
    remaining_ttl: i64,
}

/// etcd's key for revision (`main`, `sub`): 17 bytes, or 18 with the tombstone mark.
fn revision_key(main: i64, sub: i64, tombstone: bool) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.extend_from_slice(&main.to_be_bytes());
    k.push(b'_');
    k.extend_from_slice(&sub.to_be_bytes());
    if tombstone {
        k.push(b't');
    }
    k
}

fn bolt(e: BoltError) -> Error {
    Error::Backend(e.to_string())
}

/// Writes the etcd backend database holding everything a view of a committed store
/// ([`crate::KvStore::commit_and_view`]) holds, every record since the last compaction, every lease and the
/// compaction revision, into `out` from its start (a file, so a large store never sits in memory); returns
/// the writer and the database's length.
pub fn write_etcd_db_of_view<V: BackendView, W: Write + Seek>(view: &V, out: W) -> Result<(W, u64)> {
    let mut file = BoltFile::new(out).map_err(bolt)?;
    let mut keys = file.bucket(b"key");
    view.scan_records(RevisionKey::MIN, &mut |rev, bytes| {
        let record = Record::decode(rev, bytes)?;
        let key = revision_key(rev.main, rev.sub, record.tombstone);
        let value = if record.tombstone {
            KeyValue { key: record.kv.key, ..Default::default() }.encode_to_vec()
        } else {
            record.kv.encode_to_vec()
        };
        keys.push(&key, &value).map_err(bolt)?;
        Ok(true)
    })?;
    keys.finish().map_err(bolt)?;

    let mut leases = view.leases()?;
    // Big-endian keys sort as unsigned numbers; lease ids are positive.
    leases.sort_by_key(|(id, _)| *id as u64);
    let mut bucket = file.bucket(b"lease");
    for (id, bytes) in leases {
        let lease = decode_lease(id, &bytes)?;
        let value = EtcdLease { id, ttl: lease.ttl, remaining_ttl: lease.remaining.unwrap_or(0) }.encode_to_vec();
        bucket.push(&id.to_be_bytes(), &value).map_err(bolt)?;
    }
    bucket.finish().map_err(bolt)?;

    let compact = meta_i64(META_COMPACT, view.meta(META_COMPACT)?)?.unwrap_or(0);
    let mut meta = file.bucket(b"meta");
    if compact > 0 {
        let rev = revision_key(compact, 0, false);
        meta.push(b"finishedCompactRev", &rev).map_err(bolt)?;
        meta.push(b"scheduledCompactRev", &rev).map_err(bolt)?;
    }
    meta.finish().map_err(bolt)?;
    file.finish().map_err(bolt)
}
