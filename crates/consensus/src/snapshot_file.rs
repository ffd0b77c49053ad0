//! The current snapshot on disk (`<data_dir>/snapshot.bin`): metadata plus the kv dump.
//!
//! Replaced atomically: write a temp file, fsync it, rename over the old one, fsync the
//! directory. A crash leaves either the old or the new snapshot, never a torn one.
//! Layout: magic (8 bytes) | meta length (u64 BE) | bincode(meta) | kv snapshot bytes.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::codec::{decode, encode};
use crate::fsutil::fsync_dir;
use crate::types::SnapshotMeta;

/// File name of the current snapshot inside the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const MAGIC: &[u8; 8] = b"MRDSNAP1";

/// Path of the snapshot file in `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

/// Durably replace the snapshot in `dir`.
pub(crate) fn write(dir: &Path, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
    let meta_bytes = encode(meta)?;
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&(meta_bytes.len() as u64).to_be_bytes())?;
        f.write_all(&meta_bytes)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path(dir))?;
    fsync_dir(dir)
}

/// Read only the metadata of the snapshot in `dir`, if there is one (the data can be large).
pub(crate) fn read_meta(dir: &Path) -> io::Result<Option<SnapshotMeta>> {
    let mut f = match std::fs::File::open(path(dir)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
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

/// Read the snapshot in `dir`, if there is one.
pub(crate) fn read(dir: &Path) -> io::Result<Option<(SnapshotMeta, Vec<u8>)>> {
    let bytes = match std::fs::read(path(dir)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
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
        assert!(read_meta(dir.path()).unwrap().is_none());
        let meta = SnapshotMeta::default();
        write(dir.path(), &meta, b"data").unwrap();
        assert_eq!(read_meta(dir.path()).unwrap(), Some(meta.clone()));
        assert_eq!(read(dir.path()).unwrap(), Some((meta, b"data".to_vec())));
        let bytes = std::fs::read(path(dir.path())).unwrap();
        std::fs::write(path(dir.path()), &bytes[..MAGIC.len() + 4]).unwrap();
        assert!(read_meta(dir.path()).is_err());
    }
}
