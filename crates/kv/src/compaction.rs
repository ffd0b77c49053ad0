//! Compaction: drop history older than a revision. Per key, the newest record at or below the compact
//! revision survives unless it is a tombstone (etcd's keyIndex.compact); everything older leaves the
//! index and, through the pending batch, the backend. Synchronous, so `physical` needs no waiting.

use meridian_proto::etcdserverpb::{CompactionRequest, CompactionResponse};
use meridian_types::{EtcdError, Revision};

use crate::backend::Backend;
use crate::error::Result;
use crate::response::{Applied, CommandResponse, header};
use crate::store::KvStore;

impl<B: Backend> KvStore<B> {
    pub(crate) fn apply_compaction(&mut self, req: &CompactionRequest) -> Result<Applied> {
        let at = req.revision;
        // etcd's order: an already compacted revision wins over a future one.
        if at <= self.compact {
            return Err(EtcdError::Compacted.into());
        }
        if at > self.current {
            return Err(EtcdError::FutureRevision.into());
        }
        let mut removed = Vec::new();
        let mut emptied = Vec::new();
        for (key, ki) in self.index.iter_mut() {
            if ki.compact(at, &mut removed) {
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.index.remove(&key);
        }
        for rev in removed {
            self.pending.delete_record(rev);
        }
        self.compact = at;
        self.pending.meta_dirty = true;
        Ok(Applied {
            response: CommandResponse::Compaction(CompactionResponse { header: header(self.current) }),
            events: Vec::new(),
            revision: Revision(self.current),
        })
    }
}
