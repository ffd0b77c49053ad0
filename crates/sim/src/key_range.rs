//! etcd's (key, range_end) convention as a set of keys, for deciding which events a watch may carry. Written
//! apart from `meridian_kv`'s own key range on purpose: the checker is the oracle for the server, so it must not
//! share the code it judges.

/// A set of keys named by etcd's (key, range_end) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// `range_end` empty: exactly one key.
    Single(Vec<u8>),
    /// `range_end` = `"\0"`: every key >= the start.
    From(Vec<u8>),
    /// Otherwise the half-open interval [start, end), empty when end <= start.
    Span(Vec<u8>, Vec<u8>),
}

impl KeyRange {
    /// The set named by `key` and `range_end`.
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        match range_end {
            [] => KeyRange::Single(key.to_vec()),
            [0] => KeyRange::From(key.to_vec()),
            end => KeyRange::Span(key.to_vec(), end.to_vec()),
        }
    }

    /// Whether `k` is in the set.
    pub fn contains(&self, k: &[u8]) -> bool {
        match self {
            KeyRange::Single(s) => k == s.as_slice(),
            KeyRange::From(s) => k >= s.as_slice(),
            KeyRange::Span(s, e) => k >= s.as_slice() && k < e.as_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyRange;

    #[test]
    fn range_end_forms_select_etcd_key_sets() {
        let single = KeyRange::new(b"a", b"");
        assert!(single.contains(b"a") && !single.contains(b"ab"));
        let from = KeyRange::new(b"b", b"\0");
        assert!(from.contains(b"b") && from.contains(b"\xff") && !from.contains(b"a"));
        let prefix = KeyRange::new(b"k/", b"k0");
        assert!(prefix.contains(b"k/") && prefix.contains(b"k/x") && !prefix.contains(b"k0") && !prefix.contains(b"j"));
        let inverted = KeyRange::new(b"z", b"a");
        assert!(!inverted.contains(b"z") && !inverted.contains(b"m"));
    }
}
