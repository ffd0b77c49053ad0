//! The replicated lease table: which leases exist, their granted TTL, the last checkpointed remaining
//! TTL, and which keys are attached. Applying LeaseGrant, LeaseRevoke and LeaseCheckpoint lives here.
//! Expiry is not decided here (that is `LeaseClock`, on the leader); a revoke arrives as a command.
//!
//! Stored lease value: version byte 1, ttl (i64 BE), a flag byte (1 = a remaining TTL follows), remaining
//! (i64 BE). Attached keys are not stored: `open` derives them from the live keys' `lease` fields.

use std::collections::{BTreeMap, BTreeSet};

use meridian_proto::etcdserverpb::{LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse};
use meridian_proto::meridianpb::LeaseCheckpoint;
use meridian_types::{EtcdError, LeaseId, Revision};

use crate::apply::WriteCtx;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::response::{Applied, CommandResponse, LeaseInfo, header};
use crate::store::KvStore;

/// Largest TTL a lease may be granted with, in seconds (etcd's MaxLeaseTTL).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;
/// Smallest TTL a lease gets; smaller requests are raised to it.
pub const MIN_LEASE_TTL: i64 = 1;

const LEASE_FORMAT: u8 = 1;

/// One lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lease {
    pub ttl: i64,
    pub remaining: Option<i64>,
    pub keys: BTreeSet<Vec<u8>>,
}

/// All leases by id.
#[derive(Clone, Debug, Default)]
pub(crate) struct LeaseTable {
    pub leases: BTreeMap<i64, Lease>,
}

impl LeaseTable {
    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn insert(&mut self, id: i64, lease: Lease) {
        self.leases.insert(id, lease);
    }

    /// Attach `key` to lease `id`; no-op for id 0 or an unknown lease.
    pub fn attach(&mut self, id: i64, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key.to_vec());
        }
    }

    pub fn detach(&mut self, id: i64, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.remove(key);
        }
    }
}

pub(crate) fn encode_lease(l: &Lease) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    out.push(LEASE_FORMAT);
    out.extend_from_slice(&l.ttl.to_be_bytes());
    out.push(u8::from(l.remaining.is_some()));
    out.extend_from_slice(&l.remaining.unwrap_or(0).to_be_bytes());
    out
}

pub(crate) fn decode_lease(id: i64, bytes: &[u8]) -> Result<Lease> {
    let bad = || Error::corrupt(format!("lease {id} has a malformed value"));
    let (&fmt, rest) = bytes.split_first().ok_or_else(bad)?;
    if fmt != LEASE_FORMAT || rest.len() != 17 {
        return Err(bad());
    }
    let (ttl, rest) = rest.split_at(8);
    let (&flag, rem) = rest.split_first().ok_or_else(bad)?;
    let ttl = i64::from_be_bytes(ttl.try_into().map_err(|_| bad())?);
    let rem = i64::from_be_bytes(rem.try_into().map_err(|_| bad())?);
    let remaining = match flag {
        0 => None,
        1 => Some(rem),
        _ => return Err(bad()),
    };
    Ok(Lease { ttl, remaining, keys: BTreeSet::new() })
}

impl<B: Backend> KvStore<B> {
    pub(crate) fn apply_lease_grant(&mut self, req: &LeaseGrantRequest) -> Result<Applied> {
        if req.ttl > MAX_LEASE_TTL {
            return Err(EtcdError::LeaseTtlTooLarge.into());
        }
        let id = if req.id == 0 {
            // etcd picks a random id; replicas must agree, so take the next free one from a counter that
            // is part of the replicated state.
            let mut id = self.next_lease_id.max(1);
            while self.leases.contains(id) {
                id = id.checked_add(1).ok_or_else(|| Error::Etcd(EtcdError::Internal("lease ids exhausted".into())))?;
            }
            self.next_lease_id = id.saturating_add(1);
            self.pending.meta_dirty = true;
            id
        } else if self.leases.contains(req.id) {
            return Err(EtcdError::LeaseExists.into());
        } else {
            req.id
        };
        let lease = Lease { ttl: req.ttl.max(MIN_LEASE_TTL), remaining: None, keys: BTreeSet::new() };
        let ttl = lease.ttl;
        self.pending.put_lease(id, encode_lease(&lease));
        self.leases.insert(id, lease);
        Ok(Applied {
            response: CommandResponse::LeaseGrant(LeaseGrantResponse {
                header: header(self.current),
                id,
                ttl,
                error: String::new(),
            }),
            events: Vec::new(),
            revision: Revision(self.current),
        })
    }

    /// Deletes every attached key in one revision (sorted key order, sub revisions ascending), then drops
    /// the lease.
    pub(crate) fn apply_lease_revoke(&mut self, req: &LeaseRevokeRequest) -> Result<Applied> {
        let keys: Vec<Vec<u8>> = match self.leases.leases.get(&req.id) {
            Some(l) => l.keys.iter().cloned().collect(),
            None => return Err(EtcdError::LeaseNotFound.into()),
        };
        let mut ctx = WriteCtx::new(self.current);
        for key in &keys {
            self.write_delete(&mut ctx, key)?;
        }
        self.leases.leases.remove(&req.id);
        self.pending.delete_lease(req.id);
        let (revision, events) = self.finish(ctx);
        Ok(Applied {
            response: CommandResponse::LeaseRevoke(LeaseRevokeResponse { header: header(revision) }),
            events,
            revision: Revision(revision),
        })
    }

    /// Records the remaining TTL; unknown leases are ignored, as etcd does.
    pub(crate) fn apply_lease_checkpoint(&mut self, cp: &LeaseCheckpoint) -> Result<Applied> {
        if let Some(l) = self.leases.leases.get_mut(&cp.id) {
            l.remaining = (cp.remaining_ttl > 0).then_some(cp.remaining_ttl);
            let bytes = encode_lease(l);
            self.pending.put_lease(cp.id, bytes);
        }
        Ok(Applied { response: CommandResponse::LeaseCheckpoint, events: Vec::new(), revision: Revision(self.current) })
    }

    /// One lease: granted TTL, checkpointed remaining TTL and attached keys.
    pub fn lease(&self, id: LeaseId) -> Option<LeaseInfo> {
        self.leases.leases.get(&id.0).map(|l| info(id.0, l))
    }

    /// Every lease, by ascending id.
    pub fn leases(&self) -> Vec<LeaseInfo> {
        self.leases.leases.iter().map(|(id, l)| info(*id, l)).collect()
    }
}

fn info(id: i64, l: &Lease) -> LeaseInfo {
    LeaseInfo { id: LeaseId(id), ttl: l.ttl, remaining: l.remaining, keys: l.keys.iter().cloned().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_value_roundtrip() {
        for remaining in [None, Some(0), Some(42)] {
            let l = Lease { ttl: 30, remaining, keys: BTreeSet::new() };
            assert_eq!(decode_lease(1, &encode_lease(&l)), Ok(l));
        }
    }

    #[test]
    fn malformed_lease_value_is_corrupt() {
        let good = encode_lease(&Lease::default());
        let mut bad_flag = good.clone();
        bad_flag[9] = 7;
        let mut bad_fmt = good.clone();
        bad_fmt[0] = 9;
        for bytes in [vec![], good[..10].to_vec(), bad_flag, bad_fmt] {
            assert!(matches!(decode_lease(1, &bytes), Err(Error::Corrupt(_))));
        }
    }
}
