//! Telling a group's hooks of one token, on the leader: the pure [`Delivery`] decides, this task calls. Each
//! round first checks (after a read barrier) that this member still leads and the token is still the group's;
//! then it calls every pending hook at once, each bounded by its timeout, records every attempt in the audit
//! log, and backs off (`HOOK_RETRY`) while any hook has not acknowledged. Once all have, it writes the ack
//! marker. A newer token ends the task; the driver starts one for the new token.

use std::sync::Arc;
use std::time::Duration;

use meridian_failover::audit::{self, AckRecord, AttemptRecord, AuditEntry, Outcome};
use meridian_failover::hook::HOOK_RETRY;
use meridian_failover::{ActiveRecord, Delivery, HookCall, rfc3339};
use meridian_types::reserved::active_key;
use meridian_types::{GroupName, Hook, Revision};

use super::hooks::HookRunner;
use super::{commands, store};
use crate::error_chain::chain;
use crate::member::Member;

/// How many attempt numbers a record tries before giving up (another leader writing the same token's records).
const NUMBER_TRIES: u32 = 16;

/// One token to deliver.
#[derive(Clone, Debug)]
pub struct Job {
    /// The group.
    pub group: GroupName,
    /// Its hooks, as defined when the job started.
    pub hooks: Vec<Hook>,
    /// The active record announced.
    pub record: ActiveRecord,
    /// Its token.
    pub token: Revision,
}

/// Whether the job's token is still the group's, as far as this member can tell.
enum Current {
    Yes,
    Superseded,
    /// No read barrier (no quorum, or this member no longer leads): try again after the backoff.
    Unknown,
}

async fn current(member: &Member, job: &Job) -> Current {
    if let Err(e) = member.raft().read_barrier().await {
        tracing::debug!(group = %job.group, error = %e, "failover hooks wait for a read barrier");
        return Current::Unknown;
    }
    let req =
        meridian_proto::etcdserverpb::RangeRequest { key: active_key(&job.group.0).into_bytes(), ..Default::default() };
    let token = member.kv().read().range(&req).ok().and_then(|r| r.kvs.first().map(|kv| kv.mod_revision));
    if token == Some(job.token.0) { Current::Yes } else { Current::Superseded }
}

/// One call of `hook`, bounded by its timeout (dropping the call abandons it; a command is killed).
async fn attempt(runner: &dyn HookRunner, hook: &Hook, call: &HookCall) -> (Outcome, Option<String>) {
    match tokio::time::timeout(Duration::from_millis(hook.timeout_ms), runner.call(hook, call)).await {
        Ok(Ok(())) => (Outcome::Ok, None),
        Ok(Err(e)) => (Outcome::Failed, Some(chain(&e))),
        Err(_) => (Outcome::TimedOut, Some(format!("no answer within {} ms", hook.timeout_ms))),
    }
}

/// Writes an audit record under the first free attempt number from `*next` on.
async fn record_attempt(member: &Member, job: &Job, next: &mut u32, mut record: AttemptRecord) {
    for _ in 0..NUMBER_TRIES {
        record.attempt = *next;
        *next = next.saturating_add(1);
        let key = audit::attempt_key(&job.group, job.token, record.attempt);
        match commands::audit_once(member, key, &AuditEntry::Attempt(record.clone())).await {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(group = %job.group, token = job.token.0, error = %e, "recording a hook attempt failed");
                return;
            }
        }
    }
}

/// Delivers `job` until every hook acknowledged, the token is superseded, or the task is aborted (the driver
/// aborts it when this member stops leading).
pub async fn deliver(member: Arc<Member>, runner: Arc<dyn HookRunner>, job: Job) {
    let call = HookCall::of(&job.record, job.token);
    let (log, highest) = {
        let kv = member.kv().read();
        (store::token_log(&kv, &job.group, job.token), store::highest_acked(&kv, &job.group))
    };
    let mut next = log.next_attempt;
    let mut delivery = Delivery::start(job.token, job.hooks.len(), &log, highest);
    loop {
        match &delivery {
            Delivery::Closed { .. } => return,
            Delivery::Superseded { acknowledged, .. } => {
                tracing::warn!(group = %job.group, token = job.token.0, acknowledged = acknowledged.0,
                    "not calling hooks: a larger token was acknowledged already");
                return;
            }
            Delivery::Acknowledged { .. } => {
                let now = member.failover().now_unix_ms();
                let ack = AckRecord {
                    group: job.group.clone(),
                    token: job.token.0,
                    hooks: job.hooks.len(),
                    at: rfc3339(now),
                    at_unix_ms: now,
                };
                match commands::audit_once(&member, audit::ack_key(&job.group, job.token), &AuditEntry::Ack(ack)).await
                {
                    Ok(_) => {
                        tracing::info!(group = %job.group, token = job.token.0, "every hook acknowledged the switch");
                        delivery = delivery.marked();
                    }
                    Err(e) => {
                        tracing::warn!(group = %job.group, error = %e, "writing the ack marker failed; retrying");
                        tokio::time::sleep(Duration::from_millis(HOOK_RETRY.max_ms)).await;
                    }
                }
            }
            Delivery::Calling { .. } => {
                tokio::time::sleep(Duration::from_millis(delivery.wait_ms(&HOOK_RETRY))).await;
                match current(&member, &job).await {
                    Current::Yes => {}
                    Current::Superseded => return,
                    Current::Unknown => {
                        // A round that could not run counts as failed, so the backoff grows.
                        delivery = delivery.after_round([]);
                        continue;
                    }
                }
                let pending = delivery.pending();
                let calls = pending.iter().map(|&i| attempt(&*runner, &job.hooks[i], &call));
                let outcomes = futures::future::join_all(calls).await;
                let mut acked = Vec::new();
                for (&hook, (outcome, error)) in pending.iter().zip(outcomes) {
                    let target = job.hooks[hook].target.describe();
                    match &error {
                        None => tracing::info!(group = %job.group, token = job.token.0, %target, "hook acknowledged"),
                        Some(e) => tracing::warn!(group = %job.group, token = job.token.0, %target, error = %e,
                            "hook failed; it will be retried"),
                    }
                    let now = member.failover().now_unix_ms();
                    let record = AttemptRecord {
                        group: job.group.clone(),
                        token: job.token.0,
                        hook,
                        target,
                        attempt: 0,
                        outcome,
                        error,
                        at: rfc3339(now),
                        at_unix_ms: now,
                    };
                    record_attempt(&member, &job, &mut next, record).await;
                    if outcome == Outcome::Ok {
                        acked.push(hook);
                    }
                }
                delivery = delivery.after_round(acked);
            }
        }
    }
}
