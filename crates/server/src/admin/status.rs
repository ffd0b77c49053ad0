//! `GET /status` and `GET /health`: one member's view of the cluster, built from the Raft metrics and the kv
//! store at the moment of the request.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use meridian_kv::Backend;
use meridian_proto::etcdserverpb::AlarmType;
use meridian_types::NodeId;
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::tls::expiry::{self, CertificateStatus};

/// The leader as this member knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// Member id, hex as etcdctl prints it.
    pub id: String,
    /// Member name (empty if the leader is not in this member's membership view).
    pub name: String,
    /// Datacenter of the leader.
    pub dc: String,
}

/// One member of the cluster, as seen from here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Member id, hex.
    pub id: String,
    /// Member name.
    pub name: String,
    /// Datacenter.
    pub dc: String,
    /// Zone.
    pub zone: String,
    /// `voter` or `learner`.
    pub role: String,
    /// Peer URL.
    pub peer_url: String,
    /// Client URL.
    pub client_url: String,
    /// On the leader: the highest log index known replicated to this member.
    pub matched: Option<u64>,
    /// On the leader: how many entries this member is behind the leader's log.
    pub lag: Option<u64>,
}

/// A datacenter's verdict as recorded in this member's store (`/meridian/dc/<dc>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictSummary {
    /// `up`, `degraded`, `partitioned` or `down`.
    pub state: String,
    /// When it entered that state, RFC 3339.
    pub since: String,
    /// The term of the leader that decided it.
    pub term: u64,
}

/// A failover group's active datacenter as recorded in this member's store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The active datacenter.
    pub dc: String,
    /// The fencing token: the active record's revision.
    pub token: i64,
}

/// What this member measures of another one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachSummary {
    /// The probed member's name (its hex id if unknown).
    pub member: String,
    /// Its datacenter.
    pub dc: String,
    /// Whether it answered within its link's window.
    pub reachable: bool,
    /// Milliseconds since its last answer.
    pub silent_ms: u64,
    /// Smoothed round trip, once measured.
    pub rtt_ms: Option<u64>,
}

/// The auth store as this member has applied it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSummary {
    /// Whether authentication is on.
    pub enabled: bool,
    /// The auth revision.
    pub revision: u64,
    /// Checksum of users, roles and permissions: members that agree have the same.
    pub hash: u32,
}

/// The body of `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// This member's id, hex.
    pub id: String,
    /// This member's name.
    pub name: String,
    /// This member's datacenter.
    pub dc: String,
    /// This member's zone.
    pub zone: String,
    /// `voter`, `learner`, or `none` while not (yet) in the membership.
    pub role: String,
    /// Whether this member is the leader.
    pub is_leader: bool,
    /// The leader this member knows of.
    pub leader: Option<LeaderInfo>,
    /// Why the leader is where it is (from the placement policy).
    pub leader_reason: String,
    /// Current Raft term.
    pub term: u64,
    /// Last index in the local log.
    pub last_log_index: u64,
    /// Highest index known committed.
    pub committed: u64,
    /// Highest index applied to the kv store.
    pub applied: u64,
    /// Current MVCC revision of the local store.
    pub revision: i64,
    /// Watchers open on this member.
    pub watchers: usize,
    /// Every member in this member's view of the membership, voters first.
    pub members: Vec<MemberStatus>,
    /// Datacenter verdicts as recorded in the store (written by the leader, decided by quorum).
    #[serde(default)]
    pub verdicts: BTreeMap<String, VerdictSummary>,
    /// Each failover group's active datacenter and token, as recorded in the store.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupSummary>,
    /// This member's probes of every other member.
    #[serde(default)]
    pub reachability: Vec<ReachSummary>,
    /// Size of this member's kv store file (`state.redb`), in bytes.
    pub db_size: u64,
    /// Bytes free on the file system of its data dir, when known.
    pub free_disk: Option<u64>,
    /// Active alarms, as `NOSPACE (member name)`.
    pub alarms: Vec<String>,
    /// Users and roles as applied here.
    pub auth: AuthSummary,
    /// The TLS certificates and CAs this member loaded, with their expiry.
    #[serde(default)]
    pub certificates: Vec<CertificateStatus>,
    /// The member runs a non-loopback listener without TLS, allowed by `--insecure-allow-remote`.
    #[serde(default)]
    pub insecure_allow_remote: bool,
}

/// Hex member id, as etcd prints member ids.
pub(crate) fn hex_id(id: NodeId) -> String {
    format!("{:x}", id.0)
}

impl StatusReport {
    /// Builds the report from the member's current state.
    pub fn collect(state: &AdminState) -> StatusReport {
        let member = &state.member;
        let status = member.raft().status();
        // Per-follower replication progress exists only on the leader.
        let replication: BTreeMap<u64, Option<u64>> = member.raft().replication_progress();
        let role_of = |id: NodeId| {
            if status.voters.contains(&id) {
                "voter"
            } else if status.learners.contains(&id) {
                "learner"
            } else {
                "none"
            }
        };
        let mut members: Vec<MemberStatus> = status
            .members
            .iter()
            .map(|(id, m)| {
                let matched = if status.is_leader {
                    if *id == status.id {
                        Some(status.last_log_index)
                    } else {
                        replication.get(&id.0).copied().flatten()
                    }
                } else {
                    None
                };
                // A follower with nothing replicated yet is behind by the whole log.
                let lag = status.is_leader.then(|| status.last_log_index.saturating_sub(matched.unwrap_or(0)));
                MemberStatus {
                    id: hex_id(*id),
                    name: m.name.clone(),
                    dc: m.dc.clone(),
                    zone: m.zone.clone(),
                    role: role_of(*id).to_owned(),
                    peer_url: m.peer_url.clone(),
                    client_url: m.client_url.clone(),
                    matched,
                    lag,
                }
            })
            .collect();
        members.sort_by(|a, b| (a.role != "voter", &a.name).cmp(&(b.role != "voter", &b.name)));
        let leader = status.leader.map(|id| {
            let m = status.members.get(&id);
            LeaderInfo {
                id: hex_id(id),
                name: m.map(|m| m.name.clone()).unwrap_or_default(),
                dc: m.map(|m| m.dc.clone()).unwrap_or_default(),
            }
        });
        let (db_size, alarms, auth) = {
            let kv = member.kv().read();
            let a = kv.auth();
            let auth = AuthSummary { enabled: a.enabled(), revision: a.revision(), hash: a.hash() };
            (kv.backend().size_bytes(), kv.alarms().get(AlarmType::None), auth)
        };
        let alarms = alarms
            .iter()
            .map(|a| {
                let kind = AlarmType::try_from(a.alarm).map_or("UNKNOWN", |t| t.as_str_name());
                let who = status
                    .members
                    .get(&NodeId(a.member_id))
                    .map_or_else(|| hex_id(NodeId(a.member_id)), |m| m.name.clone());
                format!("{kind} ({who})")
            })
            .collect();
        StatusReport {
            id: hex_id(status.id),
            name: member.config().name.clone(),
            dc: member.config().dc.0.clone(),
            zone: member.config().zone.0.clone(),
            role: role_of(status.id).to_owned(),
            is_leader: status.is_leader,
            leader,
            leader_reason: member.placement().reason(),
            term: status.term,
            last_log_index: status.last_log_index,
            committed: status.committed,
            applied: status.applied,
            revision: member.kv().read().current_revision().0,
            watchers: member.hub().watcher_count(),
            members,
            verdicts: crate::verdicts::recorded(member)
                .into_iter()
                .map(|(dc, r)| {
                    (dc.0, VerdictSummary { state: r.state.as_str().to_owned(), since: r.since, term: r.term })
                })
                .collect(),
            groups: crate::failover_groups::store::read(&member.kv().read())
                .active
                .into_iter()
                .filter_map(|(group, active)| {
                    let record = active.record?;
                    Some((group.0, GroupSummary { dc: record.dc.0, token: active.token.0 }))
                })
                .collect(),
            reachability: member
                .reach()
                .own_report()
                .peers
                .iter()
                .map(|p| {
                    let m = status.members.get(&p.member);
                    ReachSummary {
                        member: m.map_or_else(|| hex_id(p.member), |m| m.name.clone()),
                        dc: m.map(|m| m.dc.clone()).unwrap_or_default(),
                        reachable: p.reachable,
                        silent_ms: p.silent_ms,
                        rtt_ms: p.rtt_ms,
                    }
                })
                .collect(),
            db_size,
            free_disk: member.raft().free_disk_bytes(),
            alarms,
            auth,
            certificates: state.tls.as_deref().map(|tls| expiry::report(tls, expiry::unix_now())).unwrap_or_default(),
            insecure_allow_remote: state.insecure_allow_remote,
        }
    }
}

/// `GET /status`.
pub(super) async fn get_status(State(state): State<AdminState>) -> Json<StatusReport> {
    Json(StatusReport::collect(&state))
}

/// etcd's `/health` body.
#[derive(Serialize)]
pub(super) struct Health {
    health: &'static str,
    reason: String,
}

/// The `/health` answer for the leader this member knows: healthy when there is one, as etcd's `/health`.
pub(super) fn health(leader: Option<NodeId>) -> (StatusCode, Health) {
    match leader {
        Some(_) => (StatusCode::OK, Health { health: "true", reason: String::new() }),
        None => (StatusCode::SERVICE_UNAVAILABLE, Health { health: "false", reason: "RAFT NO LEADER".into() }),
    }
}

/// `GET /health`.
pub(super) async fn get_health(State(state): State<AdminState>) -> (StatusCode, Json<Health>) {
    let (code, body) = health(state.member.raft().status().leader);
    (code, Json(body))
}
