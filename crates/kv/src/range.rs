//! Range request evaluation, as etcd's applier Range + mvcc rangeKeys: revision checks, key selection at
//! a revision (values read from storage by revision), count, revision filters, sort,
//! limit with `more`, keys_only and count_only.

use std::cmp::Ordering;

use meridian_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use meridian_proto::etcdserverpb::{RangeRequest, RangeResponse};
use meridian_proto::mvccpb::KeyValue;
use meridian_types::EtcdError;

use crate::backend::Backend;
use crate::error::Result;
use crate::key_range::KeyRange;
use crate::response::header;
use crate::revision::RevisionKey;
use crate::store::KvStore;
use crate::txn;

impl<B: Backend> KvStore<B> {
    /// Evaluate a range against the current state (including applied-but-uncommitted changes). The
    /// header revision is the current revision, whatever revision was read.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        self.range_at_view(req, self.current)
    }

    /// The revision a read asking for `requested` sees when the store is at `cur`: > cur is a future
    /// revision, <= 0 means cur, and below the compact revision it is gone (reading at the compact
    /// revision itself works, as in etcd: `rev < compactMainRev` fails).
    pub(crate) fn check_read_revision(&self, requested: i64, cur: i64) -> Result<i64> {
        if requested > cur {
            return Err(EtcdError::FutureRevision.into());
        }
        let rev = if requested <= 0 { cur } else { requested };
        if rev < self.compact {
            return Err(EtcdError::Compacted.into());
        }
        Ok(rev)
    }

    /// A range as seen by a reader whose current revision is `cur` (a txn in progress reads its own
    /// writes at `cur` = the txn revision).
    pub(crate) fn range_at_view(&self, req: &RangeRequest, cur: i64) -> Result<RangeResponse> {
        txn::check_range_request(req)?;
        let rev = self.check_read_revision(req.revision, cur)?;
        let range = KeyRange::new(&req.key, &req.range_end);
        let found: Vec<RevisionKey> = range.iter(&self.index).filter_map(|(_, ki)| ki.rev_at(rev)).collect();
        let count = found.len() as i64;
        if req.count_only {
            return Ok(RangeResponse { header: header(cur), kvs: Vec::new(), more: false, count });
        }

        let filtered = req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        // As etcd: fetch everything when sorting or filtering (an explicit sort order only), otherwise
        // one extra key to learn whether there is `more`.
        let fetch = if req.sort_order != SortOrder::None as i32 || filtered || req.limit <= 0 {
            found.len()
        } else {
            usize::try_from(req.limit).unwrap_or(usize::MAX).saturating_add(1).min(found.len())
        };
        let wanted = found.get(..fetch).unwrap_or(&found);
        let mut kvs: Vec<KeyValue> = self.load_records(wanted)?.into_iter().map(|rec| rec.kv).collect();

        let keep = |kv: &KeyValue| {
            (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
                && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
                && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
                && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
        };
        kvs.retain(keep);

        sort_kvs(&mut kvs, req.sort_order(), req.sort_target());

        let mut more = false;
        if let Ok(limit) = usize::try_from(req.limit)
            && limit > 0
            && kvs.len() > limit
        {
            kvs.truncate(limit);
            more = true;
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeResponse { header: header(cur), kvs, more, count })
    }
}

/// etcd's sort: a non-key target with order NONE sorts ascending. Results come in key order and the
/// sort is stable, so ties stay in key order in both directions (etcd's unstable sort leaves ties in an
/// unspecified order).
fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    let by = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::Descend => kvs.sort_by(|a, b| by(b, a)),
        _ => kvs.sort_by(by),
    }
}
