//! The byte format of a snapshot streamed by `Maintenance.Snapshot` (what `etcdctl snapshot save` writes).
//!
//! etcd streams its bbolt file, whose size is a multiple of the page size, followed by the SHA-256 of it, and
//! `etcdctl` refuses a download whose length is not 32 more than a multiple of 512. Meridian's state-machine
//! snapshot is framed the same way: a header, the logical snapshot from `meridian-kv`, zero padding to a
//! 512-byte boundary, then the SHA-256 of everything before it. [`decode`] checks all of it, so a truncated or
//! altered file is rejected before it could be restored.

use sha2::{Digest, Sha256};

/// Identifies a Meridian snapshot file.
const MAGIC: &[u8; 8] = b"MRDNSNAP";
/// Bumped whenever the framing changes.
const FORMAT_VERSION: u8 = 1;
/// etcdctl's alignment rule for snapshot files.
const ALIGN: usize = 512;
const HASH_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + 1 + 8;

/// Why a snapshot file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotFileError {
    /// The file is shorter than its own header or length field says.
    #[error("snapshot file is truncated")]
    Truncated,
    /// The file does not start with Meridian's magic bytes.
    #[error("not a Meridian snapshot file")]
    NotASnapshot,
    /// The file was written by a newer format.
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u8),
    /// The SHA-256 trailer does not match the contents.
    #[error("snapshot checksum mismatch")]
    ChecksumMismatch,
}

/// Frames a logical snapshot for streaming.
pub fn encode(snapshot: &[u8]) -> Vec<u8> {
    let body_len = HEADER_LEN + snapshot.len();
    let padded = body_len.div_ceil(ALIGN) * ALIGN;
    let mut out = Vec::with_capacity(padded + HASH_LEN);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&(snapshot.len() as u64).to_be_bytes());
    out.extend_from_slice(snapshot);
    out.resize(padded, 0);
    let hash = Sha256::digest(&out);
    out.extend_from_slice(&hash);
    out
}

/// Verifies a snapshot file and returns the logical snapshot inside it.
pub fn decode(file: &[u8]) -> Result<&[u8], SnapshotFileError> {
    if file.len() < HEADER_LEN + HASH_LEN {
        return Err(SnapshotFileError::Truncated);
    }
    let (body, hash) = file.split_at(file.len() - HASH_LEN);
    if !body.starts_with(MAGIC) {
        return Err(SnapshotFileError::NotASnapshot);
    }
    if Sha256::digest(body).as_slice() != hash {
        return Err(SnapshotFileError::ChecksumMismatch);
    }
    let version = body[MAGIC.len()];
    if version != FORMAT_VERSION {
        return Err(SnapshotFileError::UnsupportedVersion(version));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&body[MAGIC.len() + 1..HEADER_LEN]);
    let len = usize::try_from(u64::from_be_bytes(len_bytes)).map_err(|_| SnapshotFileError::Truncated)?;
    body.get(HEADER_LEN..HEADER_LEN.saturating_add(len)).ok_or(SnapshotFileError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_length_satisfies_etcdctl_checksum_rule() {
        for size in [0, 1, 495, 496, 497, 10_000] {
            let file = encode(&vec![7u8; size]);
            assert_eq!(file.len() % ALIGN, HASH_LEN, "size {size}");
        }
    }

    #[test]
    fn roundtrip_returns_the_snapshot() {
        let snap = b"logical snapshot bytes".to_vec();
        assert_eq!(decode(&encode(&snap)).unwrap(), snap.as_slice());
    }

    #[test]
    fn a_flipped_byte_or_truncation_is_rejected() {
        let mut file = encode(b"data");
        file[HEADER_LEN] ^= 1;
        assert_eq!(decode(&file), Err(SnapshotFileError::ChecksumMismatch));
        let file = encode(b"data");
        assert_eq!(decode(&file[..20]), Err(SnapshotFileError::Truncated));
        assert_eq!(decode(&[0u8; 600]), Err(SnapshotFileError::NotASnapshot));
    }
}
