//! The operations of the key-value workloads (`put`, `range`, `txn`, `mixed`, `authenticate`, and `lock`
//! through [`Locker`]): one [`Worker`] per client turns an operation number into requests on its connection,
//! gRPC or, for `put`, `range` and `mixed` with `--protocol json`, the JSON gateway ([`JsonClient`]).
//! `watch-latency` lives in `watch`.

use std::sync::Arc;

use meridian_proto::etcdserverpb::auth_client::AuthClient;
use meridian_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::etcdserverpb::{AuthenticateRequest, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use tonic::Status;

use super::args::{Consistency, Plan, Workload};
use super::consul_client::{ConsulClient, registration, service_name};
use super::credentials::Conn;
use super::json_client::JsonClient;
use meridian_types::SplitMix64;

use super::keys::client_rng;
use super::lock::Locker;
use super::stats::OpClass;

/// One client of a key-value workload.
pub struct Worker {
    api: Api,
    plan: Arc<Plan>,
    value: Vec<u8>,
    rng: SplitMix64,
}

/// How a worker reaches the member.
#[allow(clippy::large_enum_variant)] // one per client, made once: its size costs nothing per operation
enum Api {
    /// gRPC on a shared connection.
    Grpc { kv: KvClient<Conn>, auth: AuthClient<Conn>, locker: Locker },
    /// The JSON gateway on a connection of the client's own.
    Json(JsonClient),
    /// The Consul-compatible HTTP API on a connection of the client's own (`health` and `register`).
    Consul(ConsulClient),
}

impl Worker {
    /// A gRPC client on connection `conn`; `seed` makes its random draws its own.
    pub fn new(conn: &Conn, plan: Arc<Plan>, seed: u64) -> Worker {
        let value = vec![b'v'; plan.val_size];
        let kv = KvClient::new(conn.clone()).max_decoding_message_size(64 << 20);
        let (auth, locker) = (AuthClient::new(conn.clone()), Locker::new(conn));
        Worker { api: Api::Grpc { kv, auth, locker }, plan, value, rng: client_rng(seed) }
    }

    /// A client of the JSON gateway (put, range and mixed only); `seed` as for [`Worker::new`].
    pub fn json(client: JsonClient, plan: Arc<Plan>, seed: u64) -> Worker {
        Worker { api: Api::Json(client), plan, value: Vec::new(), rng: client_rng(seed) }
    }

    /// A client of the Consul-compatible HTTP API (`health` and `register`); `seed` as for [`Worker::new`].
    pub fn consul(client: ConsulClient, plan: Arc<Plan>, seed: u64) -> Worker {
        Worker { api: Api::Consul(client), plan, value: Vec::new(), rng: client_rng(seed) }
    }

    /// What the client needs before the run, unmeasured: the lock workload's lease.
    pub async fn prepare(&mut self) -> Result<(), Status> {
        if let Api::Grpc { locker, .. } = &mut self.api
            && self.plan.workload == Workload::Lock
        {
            locker.prepare().await?;
        }
        Ok(())
    }

    /// Cleans up after the run: the lock workload revokes its lease.
    pub async fn finish(&mut self) {
        if let Api::Grpc { locker, .. } = &mut self.api {
            locker.finish().await;
        }
    }

    /// Runs operation `op` of the plan's workload and says what it was.
    pub async fn run(&mut self, op: u64) -> Result<OpClass, Status> {
        if let Api::Consul(consul) = &mut self.api {
            let space = self.plan.keys.space.max(1);
            return match self.plan.workload {
                Workload::Health => {
                    let service = service_name(self.rng.next_u64() % space);
                    consul.health(&service).await.map(|_| OpClass::Read)
                }
                Workload::Register => consul.register(registration(op, space)).await.map(|()| OpClass::Write),
                w => Err(Status::unimplemented(format!("{} does not run over the HTTP API's clients", w.name()))),
            };
        }
        let index = self.plan.keys.index(op, &mut self.rng);
        match self.plan.workload {
            Workload::Put | Workload::WatchLatency => self.put(index).await,
            Workload::Authenticate => self.login().await,
            Workload::Range => self.range(index).await.map(|_| OpClass::Read),
            Workload::Txn => self.compare_and_set(index).await,
            Workload::Lock => match &mut self.api {
                Api::Grpc { locker, .. } => locker.lock_unlock(&self.plan.keys.key(index)).await,
                _ => Err(json_only("lock")),
            },
            Workload::Health | Workload::Register | Workload::BlockingWake => Err(consul_only(self.plan.workload)),
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
        let key = self.plan.keys.key(index);
        match &mut self.api {
            Api::Grpc { kv, .. } => {
                let req = PutRequest { key, value: self.value.clone(), ..Default::default() };
                kv.put(req).await.map(|_| OpClass::Write)
            }
            Api::Json(json) => json.put(&key).await.map(|()| OpClass::Write),
            Api::Consul(_) => Err(consul_only(self.plan.workload)),
        }
    }

    /// Logs in as the plan's user (counted as a write: etcd replicates a login, Meridian reads after a barrier).
    async fn login(&mut self) -> Result<OpClass, Status> {
        let creds = self.plan.user.as_ref().ok_or_else(|| Status::invalid_argument("authenticate needs --user"))?;
        let Api::Grpc { auth, .. } = &mut self.api else { return Err(json_only("authenticate")) };
        let req = AuthenticateRequest { name: creds.name.clone(), password: creds.password.clone() };
        auth.authenticate(req).await.map(|_| OpClass::Write)
    }

    /// Reads key `index`; returns its mod_revision (0 when it does not exist; always 0 over JSON, where only
    /// `range` and `mixed` read and nothing compares).
    async fn range(&mut self, index: u64) -> Result<i64, Status> {
        let key = self.plan.keys.key(index);
        let serializable = self.plan.consistency == Consistency::S;
        match &mut self.api {
            Api::Grpc { kv, .. } => {
                let req = RangeRequest { key, serializable, ..Default::default() };
                let resp = kv.range(req).await?.into_inner();
                Ok(resp.kvs.first().map_or(0, |kv| kv.mod_revision))
            }
            Api::Json(json) => json.range(&key, serializable).await.map(|()| 0),
            Api::Consul(_) => Err(consul_only(self.plan.workload)),
        }
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
        let Api::Grpc { kv, .. } = &mut self.api else { return Err(json_only("txn")) };
        let resp = kv.txn(req).await?.into_inner();
        Ok(if resp.succeeded { OpClass::TxnSucceeded } else { OpClass::TxnConflict })
    }
}

/// The error of an etcd operation asked of a client of the HTTP API, or a discovery workload of an etcd client
/// (the plan refuses both before any client starts).
fn consul_only(workload: Workload) -> Status {
    Status::unimplemented(format!("{} and the HTTP API's clients do not go together", workload.name()))
}

/// The error of a workload the JSON clients do not run (the plan refuses them before any client starts).
fn json_only(workload: &str) -> Status {
    Status::unimplemented(format!("{workload} does not run over --protocol json"))
}
