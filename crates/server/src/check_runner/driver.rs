//! The runner task: the thin loop around [`RunnerCore`] that owns the timers and sockets. It waits for the
//! catalog's first load, then: re-syncs the core with the catalog and the live members whenever the catalog
//! moves and every [`SYNC_EVERY`] (membership and reachability have no signal); lets the core step; starts the
//! probes it orders (each a task bounded by its check's timeout, its result coming back on a channel); writes the
//! batch it flushes as one proposal (awaited here, so nothing else reaches the core meanwhile, bounded by
//! [`PUBLISH_WITHIN`]); deregisters what it asks; answers the TTL reports the core has settled; and sleeps until
//! the core's next wake-up, the next result, report or catalog change. Time is the member's clock and tokio's
//! timers, both simulated in the simulation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meridian_registry::Timestamp;
use meridian_types::MemberName;
use tokio::sync::{mpsc, oneshot};

use super::core::{Actions, RunnerConfig, RunnerCore};
use super::inbox::Delivery;
use super::waiting::Ticket;
use super::{Stats, members, probe};
use crate::discovery::writes;
use crate::discovery::{Discovery, DiscoveryError};
use crate::net::Network;

/// How often the assignment is recomputed without a catalog change (members dying or coming back).
pub const SYNC_EVERY: Duration = Duration::from_millis(250);

/// The longest one batch's proposal may take before its changes go back for the next flush.
pub const PUBLISH_WITHIN: Duration = Duration::from_secs(5);

/// Runs this member's checks until the task is aborted.
pub async fn run(
    discovery: Arc<Discovery>,
    net: Arc<dyn Network>,
    mut inbox: mpsc::Receiver<Delivery>,
    config: RunnerConfig,
    stats: Arc<Stats>,
) {
    let member = discovery.member().clone();
    let live = discovery.live().clone();
    let mut moved = live.subscribe();
    // Reports that come before the catalog is loaded are refused, so they go through the log.
    let loaded = live.wait_loaded();
    tokio::pin!(loaded);
    loop {
        tokio::select! {
            () = &mut loaded => break,
            Some(delivery) = inbox.recv() => { let _ = delivery.accepted.send(false); }
        }
    }
    let me = MemberName(member.config().name.clone());
    let mut core = RunnerCore::new(me, config, discovery.now());
    let (results_tx, mut results) = mpsc::unbounded_channel();
    let mut next_sync = Timestamp(0);
    let mut catalog_moved = true;
    let mut signal_open = true;
    // Where to answer each taken report once the core says whether its effect is safe.
    let mut answering: BTreeMap<Ticket, oneshot::Sender<bool>> = BTreeMap::new();
    loop {
        let now = discovery.now();
        if catalog_moved || now >= next_sync {
            let members = members::live(&member);
            core.sync(&live.read(), &members, now);
            stats.checks_run.store(core.checks_run() as u64, Ordering::Relaxed);
            next_sync = now.plus(SYNC_EVERY);
            catalog_moved = false;
        }
        let actions = core.step(now);
        perform(&discovery, &net, &mut core, actions, &results_tx, &stats).await;

        let wake = core.next_wake().map_or(next_sync, |w| w.min(next_sync));
        let sleep = Duration::from_millis(wake.0.saturating_sub(discovery.now().0));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            changed = moved.changed(), if signal_open => {
                signal_open = changed.is_ok();
                catalog_moved = true;
            }
            Some(result) = results.recv() => core.probed(result, discovery.now()),
            Some(delivery) = inbox.recv() => match core.report(delivery.report, discovery.now()) {
                Some(ticket) => {
                    stats.reports.fetch_add(1, Ordering::Relaxed);
                    answering.insert(ticket, delivery.accepted);
                }
                None => {
                    let _ = delivery.accepted.send(false);
                }
            },
        }
        for (ticket, taken) in core.take_answers() {
            if let Some(answer) = answering.remove(&ticket) {
                let _ = answer.send(taken);
            }
        }
    }
}

/// Starts the probes, writes the batch and asks for the deregistrations of `actions`.
async fn perform(
    discovery: &Discovery,
    net: &Arc<dyn Network>,
    core: &mut RunnerCore,
    actions: Actions,
    results: &mpsc::UnboundedSender<super::core::ProbeResult>,
    stats: &Stats,
) {
    for order in actions.probes {
        stats.probes.fetch_add(1, Ordering::Relaxed);
        let (net, results) = (net.clone(), results.clone());
        tokio::spawn(async move {
            let _ = results.send(probe::run(net, order).await);
        });
    }
    if !actions.publish.is_empty() {
        let written = tokio::time::timeout(PUBLISH_WITHIN, writes::publish_at(discovery.member(), &actions.publish));
        match written.await {
            Ok(Ok(revision)) => {
                stats.publishes.fetch_add(1, Ordering::Relaxed);
                stats.changes_published.fetch_add(actions.publish.len() as u64, Ordering::Relaxed);
                core.published(Ok(revision));
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, changes = actions.publish.len(), "publishing check states failed; kept");
                core.published(Err(()));
            }
            Err(_) => {
                tracing::debug!(changes = actions.publish.len(), "publishing check states timed out; kept");
                core.published(Err(()));
            }
        }
    }
    for r in actions.deregister {
        match discovery.deregister(&r).await {
            Ok(()) | Err(DiscoveryError::UnknownInstance(_)) => {
                tracing::info!(instance = %r, "deregistered: a check stayed critical past deregister_critical_after");
                stats.deregistrations.fetch_add(1, Ordering::Relaxed);
                core.deregistered(&r);
            }
            Err(e) => tracing::debug!(instance = %r, error = %e, "deregistration failed; asked again later"),
        }
    }
}
