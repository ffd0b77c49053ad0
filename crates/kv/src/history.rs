//! Watch history: the events of past revisions, rebuilt from stored records for watchers that start
//! behind the current revision. An event's prev_kv is the record before it in the key's generation.

use meridian_proto::mvccpb::Event;
use meridian_proto::mvccpb::event::EventType;
use meridian_types::{EtcdError, Revision};

use crate::backend::Backend;
use crate::error::Result;
use crate::key_range::KeyRange;
use crate::record::Record;
use crate::revision::RevisionKey;
use crate::store::KvStore;

impl<B: Backend> KvStore<B> {
    /// Events with revision in [start, current] for keys in [key, range_end) (etcd range_end rules),
    /// in revision order, prev_kv filled when the key existed before.
    ///
    /// - Err(Compacted) if 0 < start < compact_revision. Starting exactly at the compact revision is allowed,
    ///   as in etcd: the puts retained at that revision are replayed, while deletes at it (whose tombstones
    ///   compaction dropped) and prev_kvs from before it are gone.
    /// - start <= 0 means "all retained history" (from compact_revision + 1).
    /// - start > current gives no events.
    /// - `max_events` (0 = unlimited) never splits a revision: the answer ends at a revision boundary,
    ///   so the caller resumes at last revision + 1. A single revision larger than `max_events` is
    ///   returned whole.
    pub fn events_since(&self, start: Revision, key: &[u8], range_end: &[u8], max_events: usize) -> Result<Vec<Event>> {
        if start.0 > 0 && start.0 < self.compact {
            return Err(EtcdError::Compacted.into());
        }
        let from = if start.0 > 0 { start.0 } else { self.compact.saturating_add(1) }.max(1);
        if from > self.current {
            return Ok(Vec::new());
        }
        let range = KeyRange::new(key, range_end);
        let mut found: Vec<(RevisionKey, Record)> = Vec::new();
        self.scan_merged(RevisionKey::new(from, 0), &mut |rev, bytes| {
            if rev.main > self.current {
                return Ok(false);
            }
            if max_events > 0
                && found.len() >= max_events
                && found.last().is_some_and(|(last, _)| last.main != rev.main)
            {
                return Ok(false);
            }
            let rec = Record::decode(rev, bytes)?;
            if range.contains(&rec.kv.key) {
                found.push((rev, rec));
            }
            Ok(true)
        })?;

        let mut prev_revs = Vec::new();
        let mut has_prev = Vec::with_capacity(found.len());
        for (rev, rec) in &found {
            let prev = self.index.get(&rec.kv.key).and_then(|ki| ki.prev_of(*rev));
            has_prev.push(prev.is_some());
            prev_revs.extend(prev);
        }
        let mut prevs = self.load_records(&prev_revs)?.into_iter();
        Ok(found
            .into_iter()
            .zip(has_prev)
            .map(|((_, rec), has_prev)| Event {
                r#type: if rec.tombstone { EventType::Delete } else { EventType::Put } as i32,
                kv: Some(rec.kv),
                prev_kv: if has_prev { prevs.next().map(|p| p.kv) } else { None },
            })
            .collect())
    }
}
