//! The operations of the key-value workloads (`put`, `range`, `txn`, `mixed`, `authenticate`, and `lock`
//! through [`Locker`]): one [`Worker`] per client turns an operation number into requests on its connection.
//! `watch-latency` lives in `watch`.

use std::sync::Arc;

use meridian_proto::etcdserverpb::auth_client::AuthClient;
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{AuthenticateRequest, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use tonic::Status;

use super::args::{Consistency, Plan, Workload};
use super::credentials::Conn;
use meridian_types::SplitMix64;

use super::keys::client_rng;
use super::lock::Locker;
use super::stats::OpClass;

/// One client of a key-value workload.
pub struct Worker {
    kv: KvClient<Conn>,
    auth: AuthClient<Conn>,
    locker: Locker,
    plan: Arc<Plan>,
    value: Vec<u8>,
    rng: SplitMix64,
}

impl Worker {
    /// A client on connection `kv`; `seed` makes its random draws its own.
    pub fn new(conn: &Conn, plan: Arc<Plan>, seed: u64) -> Worker {
        let value = vec![b'v'; plan.val_size];
        let kv = KvClient::new(conn.clone()).max_decoding_message_size(64 << 20);
        let (auth, locker) = (AuthClient::new(conn.clone()), Locker::new(conn));
        Worker { kv, auth, locker, plan, value, rng: client_rng(seed) }
    }

    /// What the client needs before the run, unmeasured: the lock workload's lease.
    pub async fn prepare(&mut self) -> Result<(), Status> {
        if self.plan.workload == Workload::Lock {
            self.locker.prepare().await?;
        }
        Ok(())
    }

    /// Cleans up after the run: the lock workload revokes its lease.
    pub async fn finish(&mut self) {
        self.locker.finish().await;
    }

    /// Runs operation `op` of the plan's workload and says what it was.
    pub async fn run(&mut self, op: u64) -> Result<OpClass, Status> {
        let index = self.plan.keys.index(op, &mut self.rng);
        match self.plan.workload {
            Workload::Put | Workload::WatchLatency => self.put(index).await,
            Workload::Authenticate => self.login().await,
            Workload::Range => self.range(index).await.map(|_| OpClass::Read),
            Workload::Txn => self.compare_and_set(index).await,
            Workload::Lock => self.locker.lock_unlock(&self.plan.keys.key(index)).await,
            Workload::Mixed => {
                if self.rng.unit() < self.plan.read_ratio {
                    self.range(index).await.map(|_| OpClass::Read)
                } else {
                    self.put(index).await
                }
            }
        }
    }

    /// Writes key `index` (used to fill the key space before reads are measured).
    pub async fn put(&mut self, index: u64) -> Result<OpClass, Status> {
        let req = PutRequest { key: self.plan.keys.key(index), value: self.value.clone(), ..Default::default() };
        self.kv.put(req).await.map(|_| OpClass::Write)
    }

    /// Logs in as the plan's user (counted as a write: etcd replicates a login, Meridian reads after a barrier).
    async fn login(&mut self) -> Result<OpClass, Status> {
        let creds = self.plan.user.as_ref().ok_or_else(|| Status::invalid_argument("authenticate needs --user"))?;
        let req = AuthenticateRequest { name: creds.name.clone(), password: creds.password.clone() };
        self.auth.authenticate(req).await.map(|_| OpClass::Write)
    }

    /// Reads key `index`; returns its mod_revision (0 when it does not exist).
    async fn range(&mut self, index: u64) -> Result<i64, Status> {
        let req = RangeRequest {
            key: self.plan.keys.key(index),
            serializable: self.plan.consistency == Consistency::S,
            ..Default::default()
        };
        let resp = self.kv.range(req).await?.into_inner();
        Ok(resp.kvs.first().map_or(0, |kv| kv.mod_revision))
    }

    /// Reads key `index`, then writes it in a Txn guarded by `mod_revision == seen` (0 for a missing key, as
    /// etcd compares missing keys).
    async fn compare_and_set(&mut self, index: u64) -> Result<OpClass, Status> {
        let seen = self.range(index).await?;
        let key = self.plan.keys.key(index);
        let req = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Mod as i32,
                key: key.clone(),
                target_union: Some(TargetUnion::ModRevision(seen)),
                range_end: Vec::new(),
            }],
            success: vec![RequestOp {
                request: Some(Request::RequestPut(PutRequest { key, value: self.value.clone(), ..Default::default() })),
            }],
            failure: Vec::new(),
        };
        let resp = self.kv.txn(req).await?.into_inner();
        Ok(if resp.succeeded { OpClass::TxnSucceeded } else { OpClass::TxnConflict })
    }
}
