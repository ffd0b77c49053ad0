//! The etcd `Maintenance` service: status, hashes for comparing members, streamed snapshots (etcd's own
//! format, a bbolt database built from a frozen backend view off the kv lock, so `etcdctl snapshot status`
//! and `restore` read them), alarms (listed from the replicated table after a read barrier, raised and cleared
//! through the log), and defragmentation.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::sync::Arc;

use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::alarm_request::AlarmAction;
use meridian_proto::etcdserverpb::maintenance_server::Maintenance;
use meridian_proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse, ResponseHeader, SnapshotRequest,
    SnapshotResponse, StatusRequest, StatusResponse,
};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::{EtcdError, NodeId, Revision};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::access;
use crate::error::{kv_status, to_status};
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
    async fn alarm(&self, request: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let who = access::admin(&self.member, &request)?;
        let req = request.into_inner();
        let alarms = match AlarmAction::try_from(req.action) {
            Ok(AlarmAction::Get) => {
                self.member.read_barrier().await.map_err(to_status)?;
                let alarm = AlarmType::try_from(req.alarm).unwrap_or(AlarmType::None);
                self.member.kv().read().alarms().get(alarm)
            }
            Ok(AlarmAction::Activate | AlarmAction::Deactivate) => {
                if AlarmType::try_from(req.alarm).is_err() {
                    return Err(Status::invalid_argument(format!("etcdserver: unknown alarm type {}", req.alarm)));
                }
                match self
                    .member
                    .propose(RaftCommand { auth: Some(who), cmd: Some(Cmd::Alarm(req)), ..Default::default() })
                    .await
                    .map_err(to_status)?
                {
                    CommandResponse::Alarm(resp) => resp.alarms,
                    _ => return Err(to_status(EtcdError::Internal("unexpected apply result for an alarm".into()))),
                }
            }
            // etcd answers an action it does not know with no alarms.
            Err(_) => Vec::new(),
        };
        // etcd 3.4 answers alarms and defragment without a header.
        Ok(Response::new(AlarmResponse { header: None, alarms }))
    }

    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let status = self.member.raft().status();
        let (db_size, in_use) = self.member.raft().db_sizes().await;
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        // etcd lists "no leader" and every active alarm, in the alarm's protobuf text form.
        let mut errors = Vec::new();
        if status.leader.is_none() {
            errors.push(EtcdError::NoLeader.to_string());
        }
        for alarm in self.member.kv().read().alarms().get(AlarmType::None) {
            errors.push(alarm_text(&alarm));
        }
        let leader_dc = status.leader.and_then(|l| status.members.get(&l)).map(|m| m.dc.clone()).unwrap_or_default();
        let mut response = Response::new(StatusResponse {
            header: Some(self.member.current_header()),
            version: ETCD_COMPAT_VERSION.to_owned(),
            db_size: as_i64(db_size),
            leader: status.leader.map_or(0, |l| l.0),
            raft_index: status.last_log_index,
            raft_term: status.term,
            raft_applied_index: status.applied,
            errors,
            db_size_in_use: as_i64(in_use),
            is_learner: status.learners.contains(&status.id),
            ..Default::default()
        });
        // etcd's StatusResponse has no field for placement, so it travels as response metadata: invisible to
        // etcdctl, readable by any gRPC client (and shown by the admin API's /status).
        for (key, value) in [(LEADER_DC_METADATA, leader_dc), (PLACEMENT_METADATA, self.member.placement().reason())] {
            if let Ok(value) = value.parse() {
                response.metadata_mut().insert(key, value);
            }
        }
        Ok(response)
    }

    async fn defragment(&self, request: Request<DefragmentRequest>) -> Result<Response<DefragmentResponse>, Status> {
        access::admin(&self.member, &request)?;
        let report = self.member.raft().defragment().await.map_err(|e| to_status(EtcdError::from(e)))?;
        tracing::info!(
            before = report.before,
            after = report.after,
            replayed = report.replayed,
            took_ms = report.took.as_millis() as u64,
            swap_ms = report.swap.as_millis() as u64,
            "defragmented the kv store"
        );
        Ok(Response::new(DefragmentResponse { header: None }))
    }

    async fn hash(&self, request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        access::admin(&self.member, &request)?;
        let (hash, _, rev) = self.member.kv().read().hash_kv(Revision(0)).map_err(kv_status)?;
        Ok(Response::new(HashResponse { header: Some(self.member.header(rev.0)), hash }))
    }

    async fn hash_kv(&self, request: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        access::admin(&self.member, &request)?;
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
        request: Request<SnapshotRequest>,
    ) -> Result<Response<BoxStream<SnapshotResponse>>, Status> {
        access::admin(&self.member, &request)?;
        let kv = self.member.kv().clone();
        let dir = self.member.config().data_dir.clone();
        // The kv write lock is held only to commit what is pending and freeze a view; the database is
        // written from that view on a blocking thread while applies go on, into an unnamed file in the data
        // dir (gone once closed, even after a crash) rather than memory, since it is as big as the store.
        let (file, len) = tokio::task::spawn_blocking(move || -> Result<(File, u64), Status> {
            let file = tempfile::tempfile_in(&dir).map_err(|e| snapshot_io("creating", &e))?;
            let view = kv.write().commit_and_view().map_err(kv_status)?;
            let (out, len) = meridian_kv::write_etcd_db_of_view(&view, BufWriter::new(file)).map_err(kv_status)?;
            let file = out.into_inner().map_err(|e| snapshot_io("writing", e.error()))?;
            Ok((file, len))
        })
        .await
        .map_err(|e| to_status(EtcdError::Internal(format!("snapshot task failed: {e}"))))??;
        let header = self.member.current_header();
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || send_snapshot(file, len, header, &tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn move_leader(&self, request: Request<MoveLeaderRequest>) -> Result<Response<MoveLeaderResponse>, Status> {
        access::admin(&self.member, &request)?;
        let target = NodeId(request.into_inner().target_id);
        self.member
            .raft()
            .move_leader(target, self.member.request_timeout())
            .await
            .map_err(|e| to_status(EtcdError::from(e)))?;
        Ok(Response::new(MoveLeaderResponse { header: Some(self.member.current_header()) }))
    }
}

/// An alarm as etcd's Status lists it (gogoproto's compact text form).
fn alarm_text(alarm: &AlarmMember) -> String {
    let name =
        AlarmType::try_from(alarm.alarm).map_or_else(|_| alarm.alarm.to_string(), |a| a.as_str_name().to_owned());
    format!("memberID:{} alarm:{name} ", alarm.member_id)
}

type SnapshotSender = mpsc::Sender<Result<SnapshotResponse, Status>>;

fn snapshot_io(doing: &str, e: &std::io::Error) -> Status {
    to_status(EtcdError::Internal(format!("{doing} the snapshot file: {e}")))
}

/// Streams the `len`-byte database in `file` from its start, then its SHA-256, as etcd sends a snapshot
/// (`etcdctl snapshot restore` checks the hash). Stops quietly if the client goes away.
fn send_snapshot(mut file: File, len: u64, header: ResponseHeader, tx: &SnapshotSender) {
    let total = len + Sha256::output_size() as u64;
    let mut sent = 0u64;
    let send = |blob: Vec<u8>, sent: u64| {
        let msg = SnapshotResponse {
            header: Some(header),
            remaining_bytes: total.saturating_sub(sent),
            blob,
            version: ETCD_COMPAT_VERSION.to_owned(),
        };
        tx.blocking_send(Ok(msg)).is_ok()
    };
    let fail = |e: Status| {
        let _ = tx.blocking_send(Err(e));
    };
    if let Err(e) = file.seek(SeekFrom::Start(0)) {
        return fail(snapshot_io("reading", &e));
    }
    let mut hasher = Sha256::new();
    let mut reader = file.take(len);
    loop {
        let mut blob = vec![0; SNAPSHOT_CHUNK];
        let n = match reader.read(&mut blob) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return fail(snapshot_io("reading", &e)),
        };
        blob.truncate(n);
        hasher.update(&blob);
        sent += n as u64;
        if !send(blob, sent) {
            return;
        }
    }
    if sent != len {
        return fail(to_status(EtcdError::Internal(format!("the snapshot file ended at {sent} of {len} bytes"))));
    }
    let hash = hasher.finalize().to_vec();
    sent += hash.len() as u64;
    send(hash, sent);
}
