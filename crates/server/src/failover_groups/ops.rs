//! What the admin API does with failover groups, on any member: report them, switch one by an operator's
//! order (promote, demote), define or remove one. Each reads the store after a read barrier (forwarded to the
//! leader from a follower), so it sees every write acknowledged before, and writes through the log like the
//! leader's own switches: a manual switch is a txn guarded by the token it was decided from, marked `manual`.

use std::collections::BTreeMap;

use meridian_failover::{ActiveRecord, DcStatus, Switch, manual};
use meridian_types::{DcName, EtcdError, FailoverGroupSpec, GroupError, GroupName, Revision};

use super::commands;
use super::report::{ActiveView, GroupReport};
use super::store::{self, GroupKeys};
use crate::failover_catalog::Source;
use crate::member::Member;

/// Why an operation on failover groups was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No group has this name.
    #[error("no failover group {0:?}")]
    UnknownGroup(String),
    /// The switch is not allowed (a datacenter outside the group, down, already active; nowhere to go).
    #[error("switch refused")]
    Refused(#[source] meridian_failover::Error),
    /// The definition is invalid.
    #[error("invalid failover group")]
    Invalid(#[source] GroupError),
    /// The group is the topology file's own: it can be overridden, not removed.
    #[error("failover group {0:?} is defined in the topology file: edit the file to remove it")]
    InTopology(String),
    /// The active record changed between reading and writing: another switch won.
    #[error("failover group {0:?} was switched meanwhile; read its state and try again")]
    Raced(String),
    /// The cluster could not serve the read or the write.
    #[error("the cluster did not answer")]
    Cluster(#[source] EtcdError),
}

/// The groups as the store says after a barrier.
async fn read(member: &Member) -> Result<(GroupKeys, Vec<(FailoverGroupSpec, Source)>), OpError> {
    member.read_barrier().await.map_err(OpError::Cluster)?;
    let mut keys = store::read(&member.kv().read());
    let (groups, _) = member.failover().catalog().effective(std::mem::take(&mut keys.stored_groups));
    Ok((keys, groups))
}

/// Every group with its active datacenter, token and the hooks yet to acknowledge it.
pub async fn report(member: &Member) -> Result<Vec<GroupReport>, OpError> {
    let (keys, groups) = read(member).await?;
    let kv = member.kv().read();
    let hold = member.failover().catalog().default_hold_ms();
    Ok(groups
        .into_iter()
        .map(|(spec, source)| {
            let active = keys.active.get(&spec.name);
            let log = active.map(|a| store::token_log(&kv, &spec.name, a.token));
            GroupReport::new(spec, source, hold, active, log.as_ref())
        })
        .collect())
}

/// Switches `group` where `decide` says from its definition, active record and verdicts: a record marked
/// `manual`, written only if the active record is still the one read.
async fn manual_switch(
    member: &Member,
    group: &GroupName,
    decide: impl FnOnce(
        &FailoverGroupSpec,
        Option<&ActiveRecord>,
        &BTreeMap<DcName, DcStatus>,
    ) -> meridian_failover::Result<Switch>,
) -> Result<ActiveView, OpError> {
    let (keys, groups) = read(member).await?;
    let spec = groups
        .into_iter()
        .map(|(s, _)| s)
        .find(|s| &s.name == group)
        .ok_or_else(|| OpError::UnknownGroup(group.0.clone()))?;
    let current = keys.active.get(group);
    let record = current.and_then(|a| a.record.as_ref());
    let switch = decide(&spec, record, &keys.verdicts).map_err(OpError::Refused)?;
    let now = member.failover().now_unix_ms();
    let previous = record.map(|r| r.dc.clone());
    let new = ActiveRecord::of_switch(group.clone(), switch, previous, member.raft().term(), now, true);
    let from = current.map_or(Revision(0), |a| a.token);
    match commands::switch(member, &new, from).await.map_err(OpError::Cluster)? {
        Some(token) => {
            tracing::info!(group = %group, dc = %new.dc, previous = ?new.previous, token = token.0,
                "failover group switched by an operator");
            Ok(ActiveView::new(new, token))
        }
        None => Err(OpError::Raced(group.0.clone())),
    }
}

/// Makes `dc` the group's active datacenter.
pub async fn promote(member: &Member, group: &GroupName, dc: &DcName) -> Result<ActiveView, OpError> {
    manual_switch(member, group, |spec, active, dcs| manual::promote(spec, active, dcs, dc)).await
}

/// Moves the group to the next datacenter after its active one that is not down.
pub async fn demote(member: &Member, group: &GroupName) -> Result<ActiveView, OpError> {
    manual_switch(member, group, manual::demote).await
}

/// Defines (or redefines) a group; returns the write's revision.
pub async fn define(member: &Member, spec: &FailoverGroupSpec) -> Result<Revision, OpError> {
    member.failover().catalog().check(spec).map_err(OpError::Invalid)?;
    let revision = commands::define(member, spec).await.map_err(OpError::Cluster)?;
    tracing::info!(group = %spec.name, revision = revision.0, "failover group defined through the admin API");
    Ok(revision)
}

/// Removes a group defined through the API. A group that is gone then loses its active record too (in the same
/// write); one that the topology file defines as well keeps it, the file's definition applying again.
pub async fn remove(member: &Member, group: &GroupName) -> Result<Revision, OpError> {
    member.read_barrier().await.map_err(OpError::Cluster)?;
    let in_topology = member.failover().catalog().in_topology(group);
    if !has_stored(member, group) {
        return Err(if in_topology {
            OpError::InTopology(group.0.clone())
        } else {
            OpError::UnknownGroup(group.0.clone())
        });
    }
    let revision = commands::remove(member, group, !in_topology).await.map_err(OpError::Cluster)?;
    tracing::info!(group = %group, revision = revision.0, "failover group removed through the admin API");
    Ok(revision)
}

fn has_stored(member: &Member, group: &GroupName) -> bool {
    let req = meridian_proto::etcdserverpb::RangeRequest {
        key: meridian_types::reserved::group_key(&group.0).into_bytes(),
        count_only: true,
        ..Default::default()
    };
    member.kv().read().range(&req).is_ok_and(|r| r.count > 0)
}
