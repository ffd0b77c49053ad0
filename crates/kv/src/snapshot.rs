//! Full logical snapshots of the store and their installation.
//!
//! Format (all integers big-endian):
//! `"MKVS"` magic, format version byte (1), current revision (i64), compact revision (i64), next lease
//! id (i64), record count (u64) then per record: revision key (16 bytes), length (u32), stored bytes;
//! lease count (u64) then per lease: id (i64), length (u32), stored bytes; from version 2 the alarm table
//! (length (u32), stored bytes); from version 3 the auth store (length (u32), stored bytes); finally a CRC-32C
//! (u32) of everything before it. Versions 1 (no alarms) and 2 (no auth store) are still read. Restore checks every part and every record before touching the backend.
//!
//! A dump is written either from the live store (`KvStore::snapshot`, pending changes included) or from a
//! frozen backend view (`write_snapshot_of_view`, streaming into any writer), which lets the caller release
//! the store's lock first and never holds the whole dump in memory.

use std::io::Write;

use meridian_types::Revision;

use crate::alarm::AlarmTable;
use crate::auth::AuthStore;
use crate::backend::{Backend, BackendView, WriteBatch};
use crate::error::{Error, Result};
use crate::hash::{Crc32c, crc32c};
use crate::lease::decode_lease;
use crate::record::Record;
use crate::revision::RevisionKey;
use crate::store::{
    KvStore, META_ALARMS, META_AUTH, META_COMPACT, META_CURRENT, META_NEXT_LEASE, META_PREFIX, meta_i64,
};

const MAGIC: &[u8; 4] = b"MKVS";
const FORMAT_VERSION: u8 = 3;

impl<B: Backend> KvStore<B> {
    /// Full logical dump (records, leases, revisions, lease counter), including applied but uncommitted
    /// changes. Reads the whole store while borrowing it; to dump without holding up writers, use
    /// [`KvStore::commit_and_view`] and [`write_snapshot_of_view`].
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let mut leases = self.backend.leases()?;
        leases.retain(|(id, _)| !self.pending.leases.contains_key(id));
        leases.extend(self.pending.leases.iter().filter_map(|(id, b)| b.as_ref().map(|b| (*id, b.clone()))));
        let header = Header {
            current: self.current,
            compact: self.compact,
            next_lease: self.next_lease_id,
            alarms: self.alarms.encode(),
            auth: self.auth.encode(),
        };
        let mut out = Vec::new();
        encode(header, &mut |visit| self.scan_merged(RevisionKey::MIN, visit), leases, &mut out)?;
        Ok(out)
    }

    /// Replace the backend's contents with `snapshot` (one atomic `replace_all`) and open it.
    pub fn restore(backend: B, snapshot: &[u8]) -> Result<Self> {
        Self::restore_with_meta(backend, snapshot, Vec::new())
    }

    /// As [`KvStore::restore`], writing caller metadata (e.g. the snapshot's raft log id) in the same
    /// transaction, so a crash cannot leave new state with old metadata. Keys of `meta` must not start
    /// with [`META_PREFIX`].
    pub fn restore_with_meta(backend: B, snapshot: &[u8], meta: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let mut batch = parse(snapshot)?;
        batch.put_meta.extend(meta.into_iter().filter(|(k, _)| !k.starts_with(META_PREFIX)));
        backend.replace_all(batch)?;
        Self::open(backend)
    }
}

/// Streams the same dump as [`KvStore::snapshot`] of the state a backend view holds into `out`, so a
/// large store is never held in memory twice. Revisions and lease counter come from the view's `kv/`
/// metadata, so the view must come from a committed store ([`KvStore::commit_and_view`]). Returns the
/// bytes written.
pub fn write_snapshot_of_view<V: BackendView>(view: &V, out: &mut dyn Write) -> Result<u64> {
    let header = Header {
        current: meta_i64(META_CURRENT, view.meta(META_CURRENT)?)?.unwrap_or(1).max(1),
        compact: meta_i64(META_COMPACT, view.meta(META_COMPACT)?)?.unwrap_or(0).max(0),
        next_lease: meta_i64(META_NEXT_LEASE, view.meta(META_NEXT_LEASE)?)?.unwrap_or(1).max(1),
        alarms: view.meta(META_ALARMS)?.unwrap_or_default(),
        auth: match view.meta(META_AUTH)? {
            Some(bytes) => bytes,
            None => AuthStore::default().encode(),
        },
    };
    encode(header, &mut |visit| view.scan_records(RevisionKey::MIN, visit), view.leases()?, out)
}

/// The revisions, lease counter, alarms and auth store of a dump.
#[derive(Clone)]
struct Header {
    current: i64,
    compact: i64,
    next_lease: i64,
    /// The stored alarm table (`AlarmTable::encode`).
    alarms: Vec<u8>,
    /// The stored auth store (`AuthStore::encode`).
    auth: Vec<u8>,
}

/// Visits every record in revision order (a scan of a store or of a view).
type Scan<'a> = dyn FnMut(&mut dyn FnMut(RevisionKey, &[u8]) -> Result<bool>) -> Result<()> + 'a;

/// Writes the snapshot format in one streaming pass, after a first pass over the records that counts them
/// (the count precedes them in the format) and finds the newest revision: `open` takes the current
/// revision as at least the newest record's, so restore must too.
fn encode(
    mut header: Header,
    scan: &mut Scan<'_>,
    mut leases: Vec<(i64, Vec<u8>)>,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut records = 0u64;
    scan(&mut |rev, _| {
        records += 1;
        header.current = header.current.max(rev.main);
        Ok(true)
    })?;
    let mut w = Checksummed { out, crc: Crc32c::new(), written: 0 };
    w.put(MAGIC)?;
    w.put(&[FORMAT_VERSION])?;
    for v in [header.current, header.compact, header.next_lease] {
        w.put(&v.to_be_bytes())?;
    }
    w.put(&records.to_be_bytes())?;
    let mut seen = 0u64;
    scan(&mut |rev, bytes| {
        seen += 1;
        w.put(&rev.to_bytes())?;
        w.put_bytes(bytes)?;
        Ok(true)
    })?;
    if seen != records {
        return Err(Error::Backend(format!(
            "snapshot: the store changed during the dump ({records} then {seen} records)"
        )));
    }
    leases.sort_by_key(|(id, _)| *id);
    w.put(&(leases.len() as u64).to_be_bytes())?;
    for (id, bytes) in &leases {
        w.put(&id.to_be_bytes())?;
        w.put_bytes(bytes)?;
    }
    w.put_bytes(&header.alarms)?;
    w.put_bytes(&header.auth)?;
    let crc = std::mem::replace(&mut w.crc, Crc32c::new()).finish();
    w.put(&crc.to_be_bytes())?;
    Ok(w.written)
}

/// A writer that checksums what passes through it.
struct Checksummed<'a> {
    out: &'a mut dyn Write,
    crc: Crc32c,
    written: u64,
}

impl Checksummed<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| Error::Backend(format!("writing snapshot: {e}")))?;
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Length-prefixed bytes.
    fn put_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| Error::corrupt("snapshot: value longer than 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }
}

/// The revision a snapshot was taken at, without installing it.
pub fn snapshot_revision(snapshot: &[u8]) -> Result<Revision> {
    let batch = parse(snapshot)?;
    batch
        .put_meta
        .iter()
        .find(|(k, _)| k == META_CURRENT)
        .and_then(|(_, v)| v.as_slice().try_into().ok())
        .map(|a: [u8; 8]| Revision(i64::from_be_bytes(a)))
        .ok_or_else(|| Error::corrupt("snapshot: no current revision"))
}

/// Checks a snapshot completely and turns it into the batch that installs it.
fn parse(snapshot: &[u8]) -> Result<WriteBatch> {
    let body_len = snapshot.len().checked_sub(4).ok_or_else(|| Error::corrupt("snapshot: too short"))?;
    let (body, trailer) = snapshot.split_at(body_len);
    let mut r = Reader { rest: body };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(Error::corrupt("snapshot: bad magic"));
    }
    let version = r.u8()?;
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(Error::corrupt(format!("snapshot: unsupported format version {version}")));
    }
    let want = u32::from_be_bytes(trailer.try_into().map_err(|_| Error::corrupt("snapshot: too short"))?);
    if crc32c(body) != want {
        return Err(Error::corrupt("snapshot: checksum mismatch"));
    }
    let current = r.i64()?;
    let compact = r.i64()?;
    let next_lease = r.i64()?;
    if current < 1 || compact < 0 || compact > current {
        return Err(Error::corrupt(format!("snapshot: impossible revisions current={current} compact={compact}")));
    }

    let mut batch = WriteBatch::default();
    let mut last: Option<RevisionKey> = None;
    for _ in 0..r.u64()? {
        let rev = RevisionKey::from_bytes(r.take(RevisionKey::LEN)?)
            .ok_or_else(|| Error::corrupt("snapshot: bad revision key"))?;
        if last.is_some_and(|l| l >= rev) || rev.main > current || rev.main < 1 {
            return Err(Error::corrupt(format!("snapshot: record {rev} out of order")));
        }
        last = Some(rev);
        let bytes = r.bytes()?;
        Record::decode(rev, bytes)?;
        batch.put_records.push((rev, bytes.to_vec()));
    }
    for _ in 0..r.u64()? {
        let id = r.i64()?;
        let bytes = r.bytes()?;
        decode_lease(id, bytes)?;
        batch.put_leases.push((id, bytes.to_vec()));
    }
    let alarms = if version >= 2 { AlarmTable::decode(r.bytes()?)?.encode() } else { Vec::new() };
    let auth = if version >= 3 { AuthStore::decode(r.bytes()?)? } else { AuthStore::default() }.encode();
    if !r.rest.is_empty() {
        return Err(Error::corrupt("snapshot: trailing bytes"));
    }
    batch.put_meta = vec![
        (META_CURRENT.to_owned(), current.to_be_bytes().to_vec()),
        (META_COMPACT.to_owned(), compact.to_be_bytes().to_vec()),
        (META_NEXT_LEASE.to_owned(), next_lease.to_be_bytes().to_vec()),
        (META_ALARMS.to_owned(), alarms),
        (META_AUTH.to_owned(), auth),
    ];
    Ok(batch)
}

/// Bounds-checked cursor over snapshot bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::corrupt("snapshot: truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| Error::corrupt("snapshot: truncated"))
    }

    fn u8(&mut self) -> Result<u8> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        self.take(len)
    }
}
