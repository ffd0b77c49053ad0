//! The leader's failover-group loop. Every member runs it; it acts only while its member leads. Every heartbeat
//! it takes a read barrier (so its view includes every write acknowledged before), reads the verdicts, groups
//! and active records from the local store, asks the pure decision of each group (`meridian_failover::decide`),
//! and writes each switch through the log as a txn guarded by the token it decided from. Then it keeps one hook
//! delivery task per group with hooks for the group's current token. With no group defined it does nothing,
//! not even the barrier.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use meridian_failover::{ActiveRecord, Decision, Situation, UpSince, decide};
use meridian_types::{FailoverGroupSpec, GroupName, Hook, Revision};
use tokio::task::JoinHandle;

use super::commands;
use super::delivery::{self, Job};
use super::hooks::HookRunner;
use super::store::{self, Active, GroupKeys};
use crate::failover_catalog::Source;
use crate::member::Member;

/// A task aborted when its handle is dropped (a delivery outlives neither its token nor this member's lead).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running delivery, and what it delivers.
struct Running {
    token: Revision,
    hooks: Vec<Hook>,
    _task: AbortOnDrop,
}

/// What the loop keeps while this member leads; dropped (aborting every delivery) when it stops.
#[derive(Default)]
struct Leading {
    up_since: UpSince,
    deliveries: BTreeMap<GroupName, Running>,
    /// Unreadable keys and invalid definitions already logged, so each is logged once per leadership.
    logged: BTreeSet<String>,
}

/// Runs the loop until the member's task is aborted, ticking every `heartbeat`.
pub async fn run(member: Arc<Member>, runner: Arc<dyn HookRunner>, heartbeat: Duration) {
    let mut ticker = tokio::time::interval(heartbeat.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading: Option<Leading> = None;
    loop {
        ticker.tick().await;
        if member.raft().current_leader() != Some(member.id()) {
            leading = None;
            continue;
        }
        leading.get_or_insert_with(Leading::default).tick(&member, &runner).await;
    }
}

impl Leading {
    async fn tick(&mut self, member: &Arc<Member>, runner: &Arc<dyn HookRunner>) {
        let failover = member.failover();
        if !failover.catalog().has_topology_groups() && !store::has_stored_groups(&member.kv().read()) {
            self.deliveries.clear();
            return;
        }
        if let Err(e) = member.raft().read_barrier().await {
            tracing::debug!(error = %e, "failover groups wait for a read barrier");
            return;
        }
        let keys = store::read(&member.kv().read());
        let GroupKeys { verdicts, stored_groups, mut active, unreadable } = keys;
        for bad in unreadable {
            self.log_once(format!("{} at revision {}", bad.key, bad.mod_revision), || {
                tracing::warn!(key = %bad.key, revision = bad.mod_revision, error = %bad.error,
                    "failover groups: a key does not parse (a verdict then counts as none, an active record is replaced)")
            });
        }
        let now = failover.now_unix_ms();
        let dcs = self.up_since.observe(&verdicts, now);
        let (groups, invalid) = failover.catalog().effective(stored_groups);
        for e in invalid {
            self.log_once(e.to_string(), || tracing::warn!(error = %e, "failover group definition ignored"));
        }
        for (spec, _) in &groups {
            let current = active.get(&spec.name);
            let situation = Situation {
                group: spec,
                default_hold_ms: failover.catalog().default_hold_ms(),
                active: current.and_then(|a| a.record.as_ref()),
                dcs: &dcs,
                now_unix_ms: now,
            };
            let Decision::Switch(switch) = decide(&situation) else { continue };
            let from = current.map_or(Revision(0), |a| a.token);
            let previous = current.and_then(|a| a.record.as_ref()).map(|r| r.dc.clone());
            let record = ActiveRecord::of_switch(spec.name.clone(), switch, previous, member.raft().term(), now, false);
            match commands::switch_as_leader(member, &record, from).await {
                Ok(Some(token)) => {
                    tracing::info!(group = %spec.name, dc = %record.dc, previous = ?record.previous, token = token.0,
                        reason = %record.reason, "failover group switched");
                    active.insert(spec.name.clone(), Active { record: Some(record), token });
                }
                Ok(None) => tracing::debug!(group = %spec.name, "the active record changed meanwhile; deciding again"),
                Err(e) => {
                    tracing::warn!(group = %spec.name, error = %e, "writing a failover switch failed");
                    return;
                }
            }
        }
        self.keep_deliveries(member, runner, &groups, &active);
    }

    fn log_once(&mut self, what: String, log: impl FnOnce()) {
        if self.logged.insert(what) {
            log();
        }
    }

    /// One delivery per group with hooks and an active record, for its current token and hooks.
    fn keep_deliveries(
        &mut self,
        member: &Arc<Member>,
        runner: &Arc<dyn HookRunner>,
        groups: &[(FailoverGroupSpec, Source)],
        active: &BTreeMap<GroupName, Active>,
    ) {
        let wanted: BTreeMap<&GroupName, (&FailoverGroupSpec, &ActiveRecord, Revision)> = groups
            .iter()
            .filter(|(spec, _)| !spec.hooks.is_empty())
            .filter_map(|(spec, _)| {
                let a = active.get(&spec.name)?;
                Some((&spec.name, (spec, a.record.as_ref()?, a.token)))
            })
            .collect();
        self.deliveries.retain(|name, running| {
            wanted.get(name).is_some_and(|(spec, _, token)| running.token == *token && running.hooks == spec.hooks)
        });
        for (name, (spec, record, token)) in wanted {
            if self.deliveries.contains_key(name) {
                continue;
            }
            let job = Job { group: name.clone(), hooks: spec.hooks.clone(), record: record.clone(), token };
            let task = tokio::spawn(delivery::deliver(member.clone(), runner.clone(), job));
            self.deliveries
                .insert(name.clone(), Running { token, hooks: spec.hooks.clone(), _task: AbortOnDrop(task) });
        }
    }
}
