//! The etcd `Maintenance` service: status, hashes for comparing members, streamed snapshots (etcd's own
//! format, a bbolt database built from a frozen backend view off the kv lock, so `etcdctl snapshot status`
//! and `restore` read them), and the housekeeping calls (`Alarm`, `Defragment`) that tools expect to succeed.

use std::sync::Arc;

use meridian_kv::Backend;
use meridian_proto::etcdserverpb::maintenance_server::Maintenance;
use meridian_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest, HashKvResponse, HashRequest,
    HashResponse, MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest,
    StatusResponse,
};
use meridian_types::Revision;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::error::kv_status;
use crate::member::Member;

/// The etcd version Meridian reports; tools such as Kubernetes gate features on it.
pub const ETCD_COMPAT_VERSION: &str = "3.5.16";

/// Response metadata key of Maintenance.Status naming the leader's datacenter.
pub const LEADER_DC_METADATA: &str = "x-meridian-leader-dc";
/// Response metadata key of Maintenance.Status saying why the leader is where it is.
pub const PLACEMENT_METADATA: &str = "x-meridian-placement";

/// Snapshot bytes sent per stream message.
const SNAPSHOT_CHUNK: usize = 64 * 1024;

/// The Maintenance service of one member.
pub struct MaintenanceService {
    member: Arc<Member>,
}

impl MaintenanceService {
    /// Serves maintenance calls on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        MaintenanceService { member }
    }
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, _request: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        // No alarm (such as NOSPACE) is ever raised yet, so there is nothing to list, activate or disarm.
        Ok(Response::new(AlarmResponse { header: Some(self.member.current_header()), alarms: Vec::new() }))
    }

    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let status = self.member.raft.status();
        let db_size = i64::try_from(self.member.kv().read().backend().size_bytes()).unwrap_or(i64::MAX);
        let leader_dc = status.leader.and_then(|l| status.members.get(&l)).map(|m| m.dc.clone()).unwrap_or_default();
        let mut response = Response::new(StatusResponse {
            header: Some(self.member.current_header()),
            version: ETCD_COMPAT_VERSION.to_owned(),
            db_size,
            leader: status.leader.map_or(0, |l| l.0),
            raft_index: status.last_log_index,
            raft_term: status.term,
            raft_applied_index: status.applied,
            errors: Vec::new(),
            db_size_in_use: db_size,
            is_learner: status.learners.contains(&status.id),
            ..Default::default()
        });
        // etcd's StatusResponse has no field for placement, so it travels as response metadata: invisible to
        // etcdctl, readable by any gRPC client (and shown by the admin API's /status).
        for (key, value) in [(LEADER_DC_METADATA, leader_dc), (PLACEMENT_METADATA, self.member.placement.reason())] {
            if let Ok(value) = value.parse() {
                response.metadata_mut().insert(key, value);
            }
        }
        Ok(response)
    }

    async fn defragment(&self, _request: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        // redb reuses freed pages itself; there is nothing to rewrite.
        Ok(Response::new(DefragmentResponse { header: Some(self.member.current_header()) }))
    }

    async fn hash(&self, _request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, _, rev) = self.member.kv().read().hash_kv(Revision(0)).map_err(kv_status)?;
        Ok(Response::new(HashResponse { header: Some(self.member.header(rev.0)), hash }))
    }

    async fn hash_kv(&self, request: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        let rev = request.into_inner().revision;
        let (hash, compact, hash_rev) = self.member.kv().read().hash_kv(Revision(rev)).map_err(kv_status)?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.member.current_header()),
            hash,
            compact_revision: compact.0,
            hash_revision: hash_rev.0,
        }))
    }

    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<Response<BoxStream<SnapshotResponse>>, Status> {
        let kv = self.member.kv().clone();
        // The kv write lock is held only to commit what is pending and freeze a view; the dump
        // reads that view on a blocking thread while applies go on.
        let mut data = tokio::task::spawn_blocking(move || {
            let view = kv.write().commit_and_view()?;
            meridian_kv::etcd_db_of_view(&view)
        })
        .await
        .map_err(|e| Status::internal(format!("etcdserver: snapshot task failed: {e}")))?
        .map_err(kv_status)?;
        // As etcd sends it: the database, then its SHA-256, which `etcdctl snapshot restore` checks.
        let hash = Sha256::digest(&data);
        data.extend_from_slice(&hash);
        let header = self.member.current_header();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let total = data.len();
            let mut sent = 0;
            for chunk in data.chunks(SNAPSHOT_CHUNK) {
                sent += chunk.len();
                let msg = SnapshotResponse {
                    header: Some(header),
                    remaining_bytes: u64::try_from(total - sent).unwrap_or(0),
                    blob: chunk.to_vec(),
                    version: ETCD_COMPAT_VERSION.to_owned(),
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn move_leader(&self, request: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        let target = request.into_inner().target_id;
        if target == self.member.id().0 {
            return Ok(Response::new(MoveLeaderResponse { header: Some(self.member.current_header()) }));
        }
        Err(Status::failed_precondition("etcdserver: bad leader transferee"))
    }
}
