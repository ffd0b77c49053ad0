//! `RevisionKey`, the position of one MVCC record, and its 16-byte big-endian encoding. Big-endian makes
//! byte order equal to revision order, so a backend can keep records in a plain ordered byte map.

use std::fmt;

/// Position of one MVCC record: main revision + sub revision (index of the change inside the revision).
///
/// Revisions are never negative, so the big-endian encoding of [`RevisionKey::to_bytes`] sorts exactly
/// like the struct.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevisionKey {
    /// The store revision the change belongs to.
    pub main: i64,
    /// Index of the change inside its main revision, from 0.
    pub sub: i64,
}

impl RevisionKey {
    /// Length of the encoded form.
    pub const LEN: usize = 16;

    /// The smallest key; scanning from here visits every record.
    pub const MIN: RevisionKey = RevisionKey { main: 0, sub: 0 };

    /// A key for `main`.`sub`.
    pub const fn new(main: i64, sub: i64) -> Self {
        RevisionKey { main, sub }
    }

    /// Encodes as 8 bytes of `main` then 8 bytes of `sub`, both big-endian.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (m, s) = out.split_at_mut(8);
        m.copy_from_slice(&self.main.to_be_bytes());
        s.copy_from_slice(&self.sub.to_be_bytes());
        out
    }

    /// Decodes the form written by [`RevisionKey::to_bytes`]; `None` unless exactly 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: &[u8; 16] = bytes.try_into().ok()?;
        let (m, s) = arr.split_at(8);
        Some(RevisionKey { main: i64::from_be_bytes(m.try_into().ok()?), sub: i64::from_be_bytes(s.try_into().ok()?) })
    }
}

impl fmt::Display for RevisionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.main, self.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_key_bytes_roundtrip() {
        let k = RevisionKey::new(0x0102_0304_0506_0708, 9);
        assert_eq!(RevisionKey::from_bytes(&k.to_bytes()), Some(k));
    }

    #[test]
    fn revision_key_byte_order_is_revision_order() {
        let keys = [
            RevisionKey::new(1, 0),
            RevisionKey::new(1, 1),
            RevisionKey::new(1, 256),
            RevisionKey::new(2, 0),
            RevisionKey::new(256, 0),
            RevisionKey::new(i64::MAX, 0),
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_bytes() < w[1].to_bytes());
        }
    }

    #[test]
    fn revision_key_rejects_wrong_length() {
        assert_eq!(RevisionKey::from_bytes(&[0; 15]), None);
        assert_eq!(RevisionKey::from_bytes(&[0; 17]), None);
        assert_eq!(RevisionKey::from_bytes(&[]), None);
    }
}
