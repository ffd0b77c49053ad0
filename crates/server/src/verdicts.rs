//! The leader's verdict driver and the reader of verdicts. Every heartbeat the leader assesses each
//! datacenter from the members' reachability reports (`meridian_failover::assess`), passes the assessments
//! through the hysteresis of `Verdicts`, and writes each due change to `/meridian/dc/<dc>` through the Raft
//! log as the server's own command, with its evidence and term. Only a leader holding a quorum can commit
//! the write, and `down` itself needs a majority of the voters outside the datacenter, so a cut-off minority
//! never declares the majority dead. Any member reads the verdicts from its own store (status, metrics).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meridian_failover::{Change, MemberInfo, Quorum, VerdictConfig, VerdictRecord, Verdicts, assess, rfc3339};
use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::reserved::{DC_PREFIX, dc_key};
use meridian_types::{DcName, EtcdError};

use crate::member::Member;
use crate::reach_state::ReachState;

/// Runs the driver until the task is aborted; acts only while this member leads.
pub async fn run(member: Arc<Member>, reach: Arc<ReachState>, config: VerdictConfig, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Created afresh on each election: a new leader waits a full window before changing a verdict.
    let mut verdicts: Option<Verdicts> = None;
    loop {
        ticker.tick().await;
        let status = member.raft().status();
        if !status.is_leader {
            verdicts = None;
            continue;
        }
        let verdicts = verdicts.get_or_insert_with(|| Verdicts::new(config));
        // A member added through the Cluster API has no datacenter until it starts and says which: it is left
        // out until then (an empty name is no datacenter).
        let members: Vec<MemberInfo> = status
            .members
            .iter()
            .filter(|(_, m)| !m.dc.is_empty())
            .map(|(id, m)| MemberInfo {
                id: *id,
                name: m.name.clone(),
                dc: DcName(m.dc.clone()),
                voter: status.voters.contains(id),
            })
            .collect();
        let now_ms = reach.clock().now_ms();
        let reports = match verdicts.config().quorum {
            Quorum::MajorityOutside => reach.reports(),
            // The simulation's planted bug: the leader's own view alone.
            Quorum::LeaderAlone => reach.reports().into_iter().filter(|(id, _)| *id == status.id).collect(),
        };
        let assessed = assess(&members, &reports, now_ms, verdicts.config());
        let recorded = recorded(&member);
        // A datacenter with no member left has no verdict to keep.
        for dc in recorded.keys().filter(|dc| !members.iter().any(|m| &m.dc == *dc)) {
            match forget(&member, dc, status.term).await {
                Ok(()) => tracing::info!(%dc, "verdict removed: no member left in the datacenter"),
                Err(e) => tracing::debug!(%dc, error = %e, "verdict not removed; retried next round"),
            }
        }
        let recorded_states = recorded.into_iter().map(|(dc, r)| (dc, r.state)).collect();
        for change in verdicts.decide(now_ms, &recorded_states, assessed) {
            let record = record_of(change, status.term, &reach);
            match write(&member, &record).await {
                Ok(()) => {
                    tracing::info!(dc = %record.dc, state = record.state.as_str(), term = record.term, "datacenter verdict")
                }
                Err(e) => tracing::debug!(dc = %record.dc, error = %e, "verdict not written; retried next round"),
            }
        }
    }
}

fn record_of(change: Change, term: u64, reach: &ReachState) -> VerdictRecord {
    let since_unix_ms = reach.clock().unix_ms_at(change.since_ms);
    VerdictRecord {
        dc: change.dc,
        state: change.state,
        since: rfc3339(since_unix_ms),
        since_unix_ms,
        term,
        evidence: change.evidence,
    }
}

/// Writes `record`, decided by this member as leader of `record.term`: only this member proposes it, and only
/// an entry of that term applies (a deposed leader's verdict is refused even if it reaches the log).
async fn write(member: &Member, record: &VerdictRecord) -> Result<(), EtcdError> {
    let put = PutRequest { key: dc_key(&record.dc.0).into_bytes(), value: record.to_json(), ..Default::default() };
    let cmd = RaftCommand { auth: None, cmd: Some(Cmd::Put(put)), ..Default::default() };
    match member.propose_as_leader(cmd, record.term).await? {
        CommandResponse::Put(_) => Ok(()),
        _ => Err(EtcdError::Internal("a verdict put answered with another response".into())),
    }
}

async fn forget(member: &Member, dc: &DcName, term: u64) -> Result<(), EtcdError> {
    let delete = DeleteRangeRequest { key: dc_key(&dc.0).into_bytes(), ..Default::default() };
    let cmd = RaftCommand { auth: None, cmd: Some(Cmd::DeleteRange(delete)), ..Default::default() };
    member.propose_as_leader(cmd, term).await.map(|_| ())
}

/// The verdicts in this member's store, by datacenter. A record that does not parse is logged and left out.
pub fn recorded(member: &Member) -> BTreeMap<DcName, VerdictRecord> {
    let mut end = DC_PREFIX.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let req = RangeRequest { key: DC_PREFIX.into(), range_end: end, ..Default::default() };
    let kvs = match member.kv().read().range(&req) {
        Ok(resp) => resp.kvs,
        Err(e) => {
            tracing::warn!(error = %e, "reading the verdicts failed");
            return BTreeMap::new();
        }
    };
    kvs.into_iter()
        .filter_map(|kv| {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            match VerdictRecord::parse(&key, &kv.value) {
                Ok(record) => Some((record.dc.clone(), record)),
                Err(e) => {
                    tracing::warn!(error = %e, "a verdict record does not parse");
                    None
                }
            }
        })
        .collect()
}
