//! `KeyIndex`: the in-memory history of one key, as etcd's keyIndex. Revisions are grouped in
//! generations; a generation starts with the put that creates the key and, once the key is deleted, ends
//! with the tombstone. Only what compares, lease bookkeeping and revision arithmetic need about the live
//! value is kept here ([`LiveMeta`]); values themselves stay in storage and are read by revision, so the
//! index costs tens of bytes per key instead of the key's whole value (etcd's keyIndex keeps no values
//! either).

use crate::revision::RevisionKey;

/// One life of a key: from creation to (optionally) its tombstone.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Generation {
    pub revs: Vec<RevisionKey>,
    /// Whether the last revision is a tombstone.
    pub closed: bool,
}

/// The fields of a live key's current value that are not its bytes. Its `mod_revision` is the main
/// revision of the last put in the open generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LiveMeta {
    pub create_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// History of one key.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct KeyIndex {
    /// Oldest first. Every generation but the last is closed.
    pub generations: Vec<Generation>,
    /// The current value's metadata when the key is live.
    pub live: Option<LiveMeta>,
}

impl KeyIndex {
    pub fn put(&mut self, rev: RevisionKey, meta: LiveMeta) {
        match self.generations.last_mut() {
            Some(g) if !g.closed => g.revs.push(rev),
            _ => self.generations.push(Generation { revs: vec![rev], closed: false }),
        }
        self.live = Some(meta);
    }

    /// The record holding the live value, when the key is live.
    pub fn live_rev(&self) -> Option<RevisionKey> {
        self.live?;
        self.generations.last().filter(|g| !g.closed).and_then(|g| g.revs.last()).copied()
    }

    pub fn tombstone(&mut self, rev: RevisionKey) {
        match self.generations.last_mut() {
            Some(g) if !g.closed => {
                g.revs.push(rev);
                g.closed = true;
            }
            // Only reachable when rebuilding from inconsistent storage; keep the tombstone so that the
            // record is still tracked (and compacted) instead of dropping it silently.
            _ => self.generations.push(Generation { revs: vec![rev], closed: true }),
        }
        self.live = None;
    }

    /// The put record visible at main revision `at`, if the key was live then.
    pub fn rev_at(&self, at: i64) -> Option<RevisionKey> {
        for g in self.generations.iter().rev() {
            match g.revs.first() {
                Some(first) if first.main <= at => {}
                _ => continue,
            }
            let n = g.revs.partition_point(|r| r.main <= at);
            if g.closed && n == g.revs.len() {
                return None;
            }
            return n.checked_sub(1).and_then(|i| g.revs.get(i)).copied();
        }
        None
    }

    /// The revision written just before `rev` in the same generation (the prev_kv of an event at `rev`).
    pub fn prev_of(&self, rev: RevisionKey) -> Option<RevisionKey> {
        for g in &self.generations {
            if let Ok(i) = g.revs.binary_search(&rev) {
                return i.checked_sub(1).and_then(|p| g.revs.get(p)).copied();
            }
        }
        None
    }

    /// etcd's keyIndex.compact: keep the newest revision <= `at` of the generation alive at `at` (nothing
    /// if the key was deleted at or before `at`), keep everything newer, and push every dropped revision
    /// to `removed`. Returns true when nothing is left, so the key can leave the index.
    pub fn compact(&mut self, at: i64, removed: &mut Vec<RevisionKey>) -> bool {
        let first_kept = self
            .generations
            .iter()
            .position(|g| !g.closed || g.revs.last().is_some_and(|t| t.main > at))
            .unwrap_or(self.generations.len());
        for g in self.generations.drain(..first_kept) {
            removed.extend(g.revs);
        }
        if let Some(g) = self.generations.first_mut() {
            let n = g.revs.partition_point(|r| r.main <= at);
            if n > 1 {
                removed.extend(g.revs.drain(..n - 1));
            }
        }
        self.generations.is_empty()
    }

    /// Every revision tracked for this key.
    #[cfg(test)]
    pub fn revisions(&self) -> impl Iterator<Item = RevisionKey> + '_ {
        self.generations.iter().flat_map(|g| g.revs.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> RevisionKey {
        RevisionKey::new(main, 0)
    }

    fn kv(main: i64) -> LiveMeta {
        LiveMeta { create_revision: main, version: 1, lease: 0 }
    }

    /// put 2, put 4, delete 6, put 8, put 10
    fn sample() -> KeyIndex {
        let mut ki = KeyIndex::default();
        ki.put(r(2), kv(2));
        ki.put(r(4), kv(4));
        ki.tombstone(r(6));
        ki.put(r(8), kv(8));
        ki.put(r(10), kv(10));
        ki
    }

    #[test]
    fn rev_at_follows_generations_and_tombstones() {
        let ki = sample();
        let cases = [
            (1, None),
            (2, Some(2)),
            (3, Some(2)),
            (5, Some(4)),
            (6, None),
            (7, None),
            (8, Some(8)),
            (9, Some(8)),
            (100, Some(10)),
        ];
        for (at, want) in cases {
            assert_eq!(ki.rev_at(at), want.map(r), "at {at}");
        }
    }

    #[test]
    fn the_live_value_is_the_last_put_of_an_open_generation() {
        let mut ki = sample();
        assert_eq!(ki.live_rev(), Some(r(10)));
        ki.tombstone(r(12));
        assert_eq!(ki.live_rev(), None, "deleted keys have no live value");
        ki.put(r(14), kv(14));
        assert_eq!(ki.live_rev(), Some(r(14)));
        assert_eq!(ki.live, Some(kv(14)));
    }

    #[test]
    fn the_index_holds_no_values() {
        // One entry per key of the whole data set lives in memory: keeping values (or a `KeyValue`, 80 bytes
        // before its heap parts) here is what made the 1M-key footprint several times etcd's.
        assert!(std::mem::size_of::<KeyIndex>() <= 64, "KeyIndex is {} bytes", std::mem::size_of::<KeyIndex>());
    }

    #[test]
    fn prev_of_stays_inside_generation() {
        let ki = sample();
        assert_eq!(ki.prev_of(r(2)), None);
        assert_eq!(ki.prev_of(r(4)), Some(r(2)));
        assert_eq!(ki.prev_of(r(6)), Some(r(4)));
        assert_eq!(ki.prev_of(r(8)), None);
        assert_eq!(ki.prev_of(r(10)), Some(r(8)));
    }

    #[test]
    fn compaction_keeps_latest_record_at_compact_revision() {
        // (compact at, expected remaining revisions, expected removed)
        let cases: &[(i64, &[i64], &[i64])] = &[
            (1, &[2, 4, 6, 8, 10], &[]),
            (3, &[2, 4, 6, 8, 10], &[]),
            (4, &[4, 6, 8, 10], &[2]),
            (5, &[4, 6, 8, 10], &[2]),
            (6, &[8, 10], &[2, 4, 6]),
            (7, &[8, 10], &[2, 4, 6]),
            (9, &[8, 10], &[2, 4, 6]),
            (10, &[10], &[2, 4, 6, 8]),
        ];
        for (at, keep, gone) in cases {
            let mut ki = sample();
            let mut removed = Vec::new();
            assert!(!ki.compact(*at, &mut removed));
            let kept: Vec<i64> = ki.revisions().map(|x| x.main).collect();
            let removed: Vec<i64> = removed.iter().map(|x| x.main).collect();
            assert_eq!((&kept[..], &removed[..]), (*keep, *gone), "compact at {at}");
            // Reads at or after the compact revision are unchanged.
            let full = sample();
            for read in *at..12 {
                assert_eq!(ki.rev_at(read), full.rev_at(read), "read {read} after compact {at}");
            }
        }
    }

    #[test]
    fn compaction_drops_key_deleted_before_compact_revision() {
        let mut ki = KeyIndex::default();
        ki.put(r(2), kv(2));
        ki.tombstone(r(3));
        let mut removed = Vec::new();
        assert!(!ki.compact(2, &mut removed));
        assert_eq!(removed, vec![]);
        assert!(ki.compact(3, &mut removed));
        assert_eq!(removed, vec![r(2), r(3)]);
    }
}
