//! The stored form of one MVCC record: one flag byte (bit 0 = tombstone, other bits must be zero) followed
//! by the prost encoding of `mvccpb::KeyValue`. A put record carries the full key/value with its revisions
//! and lease; a tombstone carries the key and `mod_revision` = the delete revision. prost encodes
//! deterministically, so identical states give identical bytes on every replica (hash_kv relies on it).

use meridian_proto::mvccpb::KeyValue;
use prost::Message;

use crate::error::{Error, Result};
use crate::revision::RevisionKey;

const FLAG_TOMBSTONE: u8 = 0b1;

/// A decoded MVCC record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    pub tombstone: bool,
    pub kv: KeyValue,
}

impl Record {
    /// A put record for `kv`.
    #[cfg(test)]
    pub fn put(kv: KeyValue) -> Self {
        Record { tombstone: false, kv }
    }

    /// The tombstone written when `key` is deleted at `rev`.
    pub fn tombstone(key: &[u8], rev: i64) -> Self {
        Record { tombstone: true, kv: KeyValue { key: key.to_vec(), mod_revision: rev, ..Default::default() } }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_with_flags(if self.tombstone { FLAG_TOMBSTONE } else { 0 }, &self.kv)
    }

    /// The stored form of a put record for `kv`, without building (and so copying into) a `Record`.
    pub fn encode_put(kv: &KeyValue) -> Vec<u8> {
        encode_with_flags(0, kv)
    }

    /// Decodes and checks the record stored at `rev`.
    pub fn decode(rev: RevisionKey, bytes: &[u8]) -> Result<Self> {
        let (&flags, body) = bytes.split_first().ok_or_else(|| Error::corrupt(format!("record {rev} is empty")))?;
        if flags & !FLAG_TOMBSTONE != 0 {
            return Err(Error::corrupt(format!("record {rev} has unknown flags {flags:#04x}")));
        }
        let kv = KeyValue::decode(body).map_err(|e| Error::corrupt(format!("record {rev} does not decode: {e}")))?;
        if kv.mod_revision != rev.main {
            return Err(Error::corrupt(format!("record {rev} claims mod_revision {}", kv.mod_revision)));
        }
        if kv.key.is_empty() {
            return Err(Error::corrupt(format!("record {rev} has an empty key")));
        }
        Ok(Record { tombstone: flags & FLAG_TOMBSTONE != 0, kv })
    }
}

fn encode_with_flags(flags: u8, kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + kv.encoded_len());
    out.push(flags);
    // Encoding into a Vec cannot run out of space.
    kv.encode(&mut out).unwrap_or_default();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_tombstone_records_roundtrip() {
        let put = Record::put(KeyValue {
            key: b"k".to_vec(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            value: b"v".to_vec(),
            lease: 9,
        });
        assert_eq!(Record::encode_put(&put.kv), put.encode());
        assert_eq!(Record::decode(RevisionKey::new(5, 0), &put.encode()), Ok(put));
        let tomb = Record::tombstone(b"k", 6);
        assert_eq!(Record::decode(RevisionKey::new(6, 1), &tomb.encode()), Ok(tomb));
    }

    #[test]
    fn corrupt_records_are_errors() {
        let rev = RevisionKey::new(5, 0);
        let good = Record::put(KeyValue { key: b"k".to_vec(), mod_revision: 5, ..Default::default() }).encode();
        let mut bad_flag = good.clone();
        bad_flag[0] = 0x80;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("unknown flag", bad_flag),
            ("garbage body", vec![0, 0xff, 0xff, 0xff]),
            ("truncated body", good[..good.len() - 1].to_vec()),
        ];
        for (name, bytes) in cases {
            assert!(matches!(Record::decode(rev, &bytes), Err(Error::Corrupt(_))), "{name}");
        }
        assert!(matches!(Record::decode(RevisionKey::new(6, 0), &good), Err(Error::Corrupt(_))));
    }
}
