//! The current snapshot on disk (`snapshot.bin` on the member's [`Disk`]): metadata plus the kv
//! dump.
//!
//! Replaced atomically through [`Disk::replace_file`]: a crash leaves either the old or the new
//! snapshot, never a torn one.
//! Layout: magic (8 bytes) | meta length (u64 BE) | bincode(meta) | kv snapshot bytes.

use std::io::{self, Read, Write};

use crate::codec::{decode, encode};
use crate::disk::Disk;
use crate::types::SnapshotMeta;

/// File name of the current snapshot inside the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const MAGIC: &[u8; 8] = b"MRDSNAP1";

/// Durably replace the snapshot on `disk`, its data streamed by `data`.
pub(crate) fn write_with(
    disk: &dyn Disk,
    meta: &SnapshotMeta,
    data: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let meta_bytes = encode(meta)?;
    let len = (meta_bytes.len() as u64).to_be_bytes();
    disk.replace_file_with(SNAPSHOT_FILE, &mut |w| {
        w.write_all(MAGIC)?;
        w.write_all(&len)?;
        w.write_all(&meta_bytes)?;
        data(w)
    })
}

/// Read only the metadata of the snapshot on `disk`, if there is one (the data can be large).
pub(crate) fn read_meta(disk: &dyn Disk) -> io::Result<Option<SnapshotMeta>> {
    let Some(mut f) = disk.open_file(SNAPSHOT_FILE)? else { return Ok(None) };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot file: {what}"));
    let mut header = [0u8; MAGIC.len() + 8];
    f.read_exact(&mut header).map_err(|_| bad("truncated header"))?;
    let (magic, len) = header.split_at(MAGIC.len());
    if magic != MAGIC.as_slice() {
        return Err(bad("bad magic"));
    }
    let len = u64::from_be_bytes(len.try_into().map_err(|_| bad("truncated header"))?);
    // Metadata is a log id and a membership; anything near this size is a corrupt length.
    if len > 64 << 20 {
        return Err(bad("meta too large"));
    }
    let mut meta = Vec::new();
    f.take(len).read_to_end(&mut meta)?;
    if meta.len() as u64 != len {
        return Err(bad("truncated meta"));
    }
    Ok(Some(decode(&meta)?))
}

/// Read the snapshot on `disk`, if there is one.
pub(crate) fn read(disk: &dyn Disk) -> io::Result<Option<(SnapshotMeta, Vec<u8>)>> {
    let Some(mut f) = disk.open_file(SNAPSHOT_FILE)? else { return Ok(None) };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot file: {what}"));
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bad("bad magic"))?;
    let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(|| bad("truncated header"))?;
    let len = usize::try_from(u64::from_be_bytes(*len)).map_err(|_| bad("meta too large"))?;
    if rest.len() < len {
        return Err(bad("truncated meta"));
    }
    let (meta_bytes, data) = rest.split_at(len);
    Ok(Some((decode(meta_bytes)?, data.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_alone_reads_back_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let disk = crate::disk::OsDisk::open(dir.path()).unwrap();
        assert!(read_meta(&disk).unwrap().is_none());
        let meta = SnapshotMeta::default();
        write_with(&disk, &meta, &mut |w| w.write_all(b"data")).unwrap();
        assert_eq!(read_meta(&disk).unwrap(), Some(meta.clone()));
        assert_eq!(read(&disk).unwrap(), Some((meta, b"data".to_vec())));
        let path = dir.path().join(SNAPSHOT_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..MAGIC.len() + 4]).unwrap();
        assert!(read_meta(&disk).is_err());
    }
}
