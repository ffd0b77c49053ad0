//! `KeyRange`: etcd's `key` + `range_end` convention turned into a set of keys. Empty `range_end` is the
//! single key; `"\0"` means every key >= `key`; otherwise the half-open interval [key, range_end), which
//! is empty when `range_end <= key`. (Key `"\0"` with range_end `"\0"` therefore means all keys.)

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::Bound;

/// A set of keys named by etcd's (key, range_end) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyRange {
    Single(Vec<u8>),
    From(Vec<u8>),
    Span(Vec<u8>, Vec<u8>),
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        match range_end {
            [] => KeyRange::Single(key.to_vec()),
            [0] => KeyRange::From(key.to_vec()),
            end => KeyRange::Span(key.to_vec(), end.to_vec()),
        }
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        match self {
            KeyRange::Single(s) => k == s.as_slice(),
            KeyRange::From(s) => k >= s.as_slice(),
            KeyRange::Span(s, e) => k >= s.as_slice() && k < e.as_slice(),
        }
    }

    /// Bounds for `BTreeMap::range`. An inverted span becomes [start, start), which is empty: passing
    /// start > end to `range` would panic.
    fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        match self {
            KeyRange::Single(k) => (Bound::Included(k), Bound::Included(k)),
            KeyRange::From(s) => (Bound::Included(s), Bound::Unbounded),
            KeyRange::Span(s, e) if e <= s => (Bound::Included(s), Bound::Excluded(s)),
            KeyRange::Span(s, e) => (Bound::Included(s), Bound::Excluded(e)),
        }
    }

    /// The entries of `map` whose keys are in the range, in key order.
    pub fn iter<'a, V>(&self, map: &'a BTreeMap<Vec<u8>, V>) -> btree_map::Range<'a, Vec<u8>, V> {
        map.range::<[u8], _>(self.bounds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_forms_select_etcd_key_sets() {
        let map: BTreeMap<Vec<u8>, ()> =
            [&b"\x00"[..], b"a", b"ab", b"b", b"c", b"\xff"].iter().map(|k| (k.to_vec(), ())).collect();
        // (key, range_end, expected keys)
        type Case<'a> = (&'a [u8], &'a [u8], &'a [&'a [u8]]);
        let cases: &[Case<'_>] = &[
            (b"a", b"", &[b"a"]),
            (b"z", b"", &[]),
            (b"a", b"\x00", &[b"a", b"ab", b"b", b"c", b"\xff"]),
            (b"\x00", b"\x00", &[b"\x00", b"a", b"ab", b"b", b"c", b"\xff"]),
            (b"a", b"b", &[b"a", b"ab"]),
            (b"a", b"c", &[b"a", b"ab", b"b"]),
            (b"b", b"a", &[]),
            (b"b", b"b", &[]),
            (b"a", b"\x00\x00", &[]),
        ];
        for (key, end, want) in cases {
            let r = KeyRange::new(key, end);
            let got: Vec<&[u8]> = r.iter(&map).map(|(k, _)| k.as_slice()).collect();
            assert_eq!(&got, want, "key={key:?} end={end:?}");
            for k in map.keys() {
                assert_eq!(r.contains(k), want.contains(&k.as_slice()), "contains {k:?}");
            }
        }
    }
}
