//! The `lock` workload: one operation is a Lock then an Unlock through the Lock service (etcd's `v3lockpb`),
//! each client holding its lock keys with a lease of its own. Lock names are `__meridian_bench/lock/` and a key
//! of the key space; the default space of 1 makes every client contend for one lock, so with many clients the
//! latency includes the wait in the queue, and throughput is how fast the lock passes from holder to holder.

use meridian_proto::etcdserverpb::lease_client::LeaseClient;
use meridian_proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest};
use meridian_proto::v3lockpb::lock_client::LockClient;
use meridian_proto::v3lockpb::{LockRequest, UnlockRequest};
use tonic::Status;

use super::credentials::Conn;
use super::stats::OpClass;

/// Lease TTL of a client, in seconds: longer than most runs. A lease that expires anyway (a longer run, a
/// paused generator) is replaced by the next operation.
const LEASE_TTL_SECS: i64 = 600;

/// The prefix of every lock name.
const NAME_PREFIX: &[u8] = b"__meridian_bench/lock/";

/// One client of the lock workload.
pub struct Locker {
    lock: LockClient<Conn>,
    leases: LeaseClient<Conn>,
    lease: Option<i64>,
}

impl Locker {
    /// A client on connection `conn`, with no lease yet.
    pub fn new(conn: &Conn) -> Locker {
        Locker { lock: LockClient::new(conn.clone()), leases: LeaseClient::new(conn.clone()), lease: None }
    }

    /// Grants the client's lease (before the run, so it is not measured).
    pub async fn prepare(&mut self) -> Result<i64, Status> {
        if let Some(id) = self.lease {
            return Ok(id);
        }
        let granted = self.leases.lease_grant(LeaseGrantRequest { ttl: LEASE_TTL_SECS, id: 0 }).await?;
        let id = granted.into_inner().id;
        self.lease = Some(id);
        Ok(id)
    }

    /// Locks the lock named by `key`, then unlocks it.
    pub async fn lock_unlock(&mut self, key: &[u8]) -> Result<OpClass, Status> {
        let lease = self.prepare().await?;
        let name = [NAME_PREFIX, key].concat();
        let locked = match self.lock.lock(LockRequest { name, lease }).await {
            Ok(resp) => resp.into_inner(),
            Err(status) => {
                if status.message() == "etcdserver: requested lease not found" {
                    self.lease = None;
                }
                return Err(status);
            }
        };
        self.lock.unlock(UnlockRequest { key: locked.key }).await?;
        Ok(OpClass::Write)
    }

    /// Revokes the client's lease after the run, so nothing of the run outlives it.
    pub async fn finish(&mut self) {
        if let Some(id) = self.lease.take()
            && let Err(status) = self.leases.lease_revoke(LeaseRevokeRequest { id }).await
        {
            tracing::debug!(%status, "revoking a lock client's lease after the run");
        }
    }
}
