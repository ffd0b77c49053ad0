//! One simulated run: build the world from a seed, drive the workload through a fault phase, heal
//! everything, wait for the leader to settle in the most preferred datacenter, and check the history.
//!
//! Timeline (simulated): the cluster forms during the first seconds; clients run from
//! [`CLIENTS_START`] to the end of the fault phase plus a quiet tail; faults run inside the fault
//! phase only; after the heal the run waits up to [`RECOVERY_LIMIT`] for the leader to be in the
//! preferred datacenter for [`STABLE_FOR`] (the liveness check), then for every lease to run out, since
//! nobody keeps them alive any more; then makes a planned leadership move under load
//! ([`crate::planned_transfer`]) and waits for leadership to settle again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use meridian_server::planted::PlantedBug;
use parking_lot::Mutex;

use crate::auth_channel::ROOT;
use crate::auth_ops::{APP_USER, APP_VALUE_MARK, ClientCaller, FinalScan, KeyValue, SENTINEL_KEY, Span};
use crate::auth_setup;
use crate::auth_workload::{self, AppPlan};
use crate::checker::{self, CheckOptions, Report};
use crate::cluster::{self, DCS, PREFERENCE, SimMember};
use crate::discovery_truth::Sampler;
use crate::discovery_workload::{self, DiscoveryPlan, Site};
use crate::failover_watch::{self, Pending};
use crate::faults::{self, FaultCounts, FaultKind, Hosts};
use crate::history::{
    DcIsolation, FailoverObservation, FaultEffect, FinalVerdicts, GroupSample, GroupTimeline, History, HookCallRecord,
    LeaderObservation, LeaseObservation, PlannedTransfer, Restart, VerdictSetup,
};
use crate::lock_workload::{self, LockPlan};
use crate::membership::{self, MembershipPlan};
use crate::planned_transfer::{self, Founder};
use crate::recorder::Recorder;
use crate::restart_readers;
use crate::rng::SimRng;
use crate::workload::{self, ClientPlan};

/// When clients start issuing operations.
pub const CLIENTS_START: Duration = Duration::from_secs(3);
/// When the operator starts switching authentication on (the cluster is forming; the step retries until it
/// is up).
const AUTH_SETUP_START: Duration = Duration::from_secs(1);
/// Client ids of the limited user's clients.
pub const FIRST_APP_CLIENT_ID: u32 = 300;
/// How long after the heal the leader may take to settle in the preferred datacenter.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(30);
/// How long the leader must stay in the preferred datacenter to count as settled.
pub const STABLE_FOR: Duration = Duration::from_secs(1);
/// Clients keep going this long after the heal, so the history covers a healthy cluster too.
const QUIET_TAIL: Duration = Duration::from_secs(2);
/// After the clients stop nobody keeps a lease alive, so each runs out one TTL after the later of its last
/// keep-alive and the current leader's promotion. The lease phase allows twice the TTL (room for member clock
/// drift, the expiry tick and the revoke's commit) after the last leader change it saw ...
const LEASE_EXPIRY_LIMIT: Duration = Duration::from_secs(2 * workload::LEASE_TTL_SECS as u64);
/// ... but ends here in any case.
const LEASE_PHASE_MAX: Duration = Duration::from_secs(30);
/// Largest clock drift given to a member, in parts per million.
const MAX_DRIFT_PPM: u64 = 20_000;
/// The nemesis stops retrying a scheduled leader transfer this long after the clients stop.
const TRANSFER_GIVE_UP: Duration = Duration::from_secs(4);
/// Beyond its window, how long the planned move may take to report before the run calls it not made.
const PLANNED_MOVE_SLACK: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The seed: it fixes the whole run.
    pub seed: u64,
    /// Length of the fault phase.
    pub fault_phase: Duration,
    /// Register keys the clients share.
    pub keys: u64,
    /// A deliberate server bug the checker should find.
    pub planted_bug: PlantedBug,
    /// Checker settings.
    pub check: CheckOptions,
    /// Run the discovery clients (off only to measure what they cost).
    pub discovery: bool,
}

impl RunOptions {
    /// The defaults for `seed`.
    pub fn new(seed: u64) -> Self {
        RunOptions {
            seed,
            fault_phase: Duration::from_secs(12),
            keys: 4,
            planted_bug: PlantedBug::None,
            discovery: true,
            check: CheckOptions {
                // A member's clock may run up to 2% fast; leases are 3 s, and expiry is checked every 250 ms.
                lease_skew_allowance: 500_000_000,
                ..CheckOptions::default()
            },
        }
    }
}

/// What one run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The seed.
    pub seed: u64,
    /// Simulated time the run took.
    pub sim_time: Duration,
    /// The recorded history.
    pub history: History,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// The checker's verdict.
    pub report: Report,
    /// A simulation error (a host failed), if any.
    pub error: Option<String>,
}

/// Runs one seed.
pub fn run(opts: &RunOptions) -> RunOutcome {
    // openraft's election timeouts draw from this thread's generator: seed it so the run replays.
    meridian_consensus::seed_thread_rng(opts.seed ^ 0x6d65_7269_6469_616e);
    crate::sim_net::clear_refusing();
    align_task_ids();
    let mut rng = SimRng::new(opts.seed);
    let heal_at = CLIENTS_START + opts.fault_phase;
    let clients_until = heal_at + QUIET_TAIL;
    let mut sim = turmoil::Builder::new()
        .rng_seed(opts.seed)
        .epoch(UNIX_EPOCH + Duration::from_millis(cluster::SIM_EPOCH_UNIX_MS))
        .simulation_duration(
            heal_at
                + QUIET_TAIL
                + 2 * RECOVERY_LIMIT
                + planned_transfer::WINDOW
                + PLANNED_MOVE_SLACK
                + LEASE_PHASE_MAX
                + Duration::from_secs(10),
        )
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_micros(200))
        .max_message_latency(Duration::from_millis(2))
        .tcp_capacity(1 << 16)
        .build();

    let mut counts = FaultCounts::new();
    let drifts: Vec<i32> = if rng.chance(0.5) {
        counts.entry(FaultKind::ClockSkew).or_default().add(true);
        (0..5).map(|_| i32::try_from(rng.below(2 * MAX_DRIFT_PPM + 1)).unwrap_or(0) - MAX_DRIFT_PPM as i32).collect()
    } else {
        vec![0; 5]
    };
    let cluster = cluster::build(&mut sim, &drifts, rng.next_u64(), opts.planted_bug);
    let rec = Recorder::new();
    let mut hosts: Hosts = cluster.all_members().map(|m| (m.name.clone(), m.dc.clone())).collect();
    let founder_urls: Vec<String> = cluster.members.iter().map(SimMember::client_url).collect();
    let (ready_tx, ready) = tokio::sync::watch::channel(false);
    {
        let (urls, rec, until) = (founder_urls.clone(), rec.clone(), nanos(clients_until));
        sim.client("auth-setup", async move {
            tokio::time::sleep(AUTH_SETUP_START).await;
            auth_setup::run(urls, rec, ready_tx, until).await
        });
        hosts.push(("auth-setup".to_owned(), PREFERENCE[0].to_owned()));
    }
    for (i, dc) in DCS.iter().enumerate() {
        let name = format!("client-{dc}");
        let plan = ClientPlan {
            id: i as u32,
            endpoints: cluster.endpoints_from(dc),
            local_readers: cluster.all_members().map(SimMember::client_url).collect(),
            seed: rng.next_u64(),
            until_ns: nanos(clients_until),
            keys: opts.keys,
            watch: true,
        };
        rec.with_auth(|a| a.callers.push(ClientCaller { client: plan.id, user: ROOT.to_owned() }));
        let (rec, start, mut ready) = (rec.clone(), CLIENTS_START, ready.clone());
        sim.client(name.as_str(), async move {
            tokio::time::sleep(start).await;
            if !auth_setup::wait(&mut ready, plan.until_ns).await {
                return Ok(());
            }
            workload::run_client(plan, rec).await
        });
        hosts.push((name, (*dc).to_owned()));
    }
    // The lock clients, one per datacenter, all after one lock.
    for (i, dc) in DCS.iter().enumerate() {
        let name = format!("lock-client-{dc}");
        let plan = LockPlan {
            id: lock_workload::FIRST_LOCK_CLIENT_ID + i as u32,
            endpoints: cluster.endpoints_from(dc),
            seed: rng.next_u64(),
            until_ns: nanos(clients_until),
        };
        let (rec, mut ready) = (rec.clone(), ready.clone());
        sim.client(name.as_str(), async move {
            tokio::time::sleep(CLIENTS_START).await;
            if !auth_setup::wait(&mut ready, plan.until_ns).await {
                return Ok(());
            }
            lock_workload::run(plan, rec).await
        });
        hosts.push((name, (*dc).to_owned()));
    }
    rec.with_locks(|l| l.name = lock_workload::LOCK_NAME.as_bytes().to_vec());
    // The discovery clients, each owning instances in every datacenter, asking any member's agent.
    {
        let sites: Vec<Site> = cluster
            .members
            .iter()
            .map(|m| Site { node: m.name.clone(), dc: m.dc.clone(), zone: format!("{}-z", m.name) })
            .collect();
        let members: Vec<String> = cluster.all_members().map(|m| m.name.clone()).collect();
        for (i, instances) in discovery_workload::instances(&sites).into_iter().enumerate() {
            let plan = DiscoveryPlan {
                id: discovery_workload::FIRST_DISCOVERY_CLIENT_ID + i as u32,
                instances,
                members: members.clone(),
                seed: rng.next_u64(),
                until_ns: nanos(clients_until),
            };
            let name = format!("discovery-client-{i}");
            let (rec, agents, enabled) = (rec.clone(), cluster.agents.clone(), opts.discovery);
            sim.client(name.as_str(), async move {
                tokio::time::sleep(CLIENTS_START).await;
                // Left out, the client does nothing: the rest of the run draws and schedules the same.
                if !enabled {
                    return Ok(());
                }
                discovery_workload::run(plan, agents, rec).await
            });
            hosts.push((name, DCS[i % DCS.len()].to_owned()));
        }
        rec.with_discovery(|_| ());
    }
    let mut sampler = Sampler::new();
    // The limited user's clients, in the datacenters that do not lead (most of what they send is forwarded).
    for (i, dc) in DCS.iter().skip(1).enumerate() {
        let name = format!("app-client-{dc}");
        let plan = AppPlan {
            id: FIRST_APP_CLIENT_ID + i as u32,
            members: founder_urls.clone(),
            seed: rng.next_u64(),
            until_ns: nanos(clients_until),
        };
        rec.with_auth(|a| a.callers.push(ClientCaller { client: plan.id, user: APP_USER.to_owned() }));
        let (rec, ready) = (rec.clone(), ready.clone());
        sim.client(name.as_str(), async move {
            tokio::time::sleep(CLIENTS_START).await;
            auth_workload::run(plan, rec, ready).await
        });
        hosts.push((name, (*dc).to_owned()));
    }
    let burst_until = restart_readers::BurstUntil::default();
    {
        let urls: Vec<String> = cluster.members.iter().map(SimMember::client_url).collect();
        let (rec, burst_until, keys, until) = (rec.clone(), burst_until.clone(), opts.keys, nanos(clients_until));
        sim.client("restart-readers", async move { restart_readers::run(urls, keys, burst_until, rec, until).await });
        hosts.push(("restart-readers".to_owned(), "dc-a".to_owned()));
    }
    let planned_start = planned_transfer::StartAt::default();
    let planned_done = planned_transfer::Done::default();
    {
        let founders: Vec<Founder> =
            cluster.members.iter().map(|m| Founder { id: m.id.0, url: m.client_url(), dc: m.dc.clone() }).collect();
        let (rec, start, done, keys) = (rec.clone(), planned_start.clone(), planned_done.clone(), opts.keys);
        sim.client("planned-transfer", async move { planned_transfer::run(founders, keys, start, rec, done).await });
        hosts.push(("planned-transfer".to_owned(), PREFERENCE[0].to_owned()));
    }
    let shared_counts = Arc::new(Mutex::new(FaultCounts::new()));
    let transfers: Vec<u64> = {
        let n = rng.below(4);
        let mut at: Vec<u64> =
            (0..n).map(|_| nanos(CLIENTS_START) + rng.below(nanos(opts.fault_phase).max(1))).collect();
        at.sort_unstable();
        at
    };
    let endpoints: Vec<(u64, String)> = cluster.members.iter().map(|m| (m.id.0, m.client_url())).collect();
    let nemesis_seed = rng.next_u64();
    let nemesis_counts = shared_counts.clone();
    let changes = MembershipPlan::draw(opts.seed, &cluster, CLIENTS_START, opts.fault_phase, clients_until);
    let (added, member_counts) = (cluster.joiner_added.clone(), shared_counts.clone());
    sim.client("nemesis", async move {
        let give_up = nanos(clients_until + TRANSFER_GIVE_UP);
        let transfers = faults::leader_transfers(endpoints, transfers, give_up, nemesis_seed, nemesis_counts);
        let members = async move {
            match changes {
                Some(plan) => membership::run(plan, added, member_counts).await,
                None => Ok(()),
            }
        };
        let (transferred, changed) = tokio::join!(transfers, members);
        transferred.and(changed)
    });
    hosts.push(("nemesis".to_owned(), "dc-c".to_owned()));
    cluster::set_latencies(&sim, &hosts);

    let mut windows = faults::plan(&mut rng, &cluster, &hosts, CLIENTS_START, heal_at);
    let mut next_window = 0;
    let mut active: Option<usize> = None;
    let mut error = None;
    let timing = meridian_types::TimingConfig::default();
    let mut failing_over: Option<Pending> = None;
    let mut failovers: Vec<FailoverObservation> = Vec::new();
    let mut restarts: Vec<Restart> = Vec::new();
    let mut isolations: Vec<DcIsolation> = Vec::new();
    let mut leader_terms: Vec<(u64, u64)> = Vec::new();
    let mut group = GroupTimeline {
        group: cluster::GROUP.to_owned(),
        datacenters: DCS.iter().map(|d| (*d).to_owned()).collect(),
        switch_bound_ms: group_switch_bound_ms(&timing),
        samples: Vec::new(),
        until: 0,
    };
    let mut next_sample = Duration::ZERO;
    while sim.elapsed() < clients_until {
        let now = sim.elapsed();
        sampler.fault(nanos(now), active.is_some());
        sampler.sample_catalogs(&cluster, &cluster.discoveries, nanos(now));
        if now.as_millis() % TRUTH_READ_EVERY_MS == 0 {
            sampler.read_truth(&cluster);
        }
        if now >= next_sample {
            next_sample = now + GROUP_SAMPLE_EVERY;
            let other_fault = active.is_some_and(|i| windows[i].fault.kind() != FaultKind::IsolateDc);
            sample_group(&cluster, &mut group, nanos(now), other_fault);
        }
        if let Some(term) = cluster.leader_term()
            && leader_terms.last().is_none_or(|(_, last)| term > *last)
        {
            leader_terms.push((nanos(now), term));
        }
        if let Some(pending) = &failing_over
            && let Some(done) = pending.successor(&cluster, now)
        {
            failovers.push(done);
            failing_over = None;
        }
        if let Some(i) = active
            && now >= windows[i].end
        {
            // A leader the fault took and nobody replaced comes back with the heal: stop looking.
            if let Some(pending) = failing_over.take() {
                failovers.push(pending.unresolved(now));
            }
            if isolated_dc(&windows[i].fault, &hosts).is_some()
                && let Some(open) = isolations.last_mut()
            {
                open.until = nanos(now);
                open.state_at_heal =
                    cluster.leader().and_then(|l| cluster.verdicts_at(&l)).and_then(|v| v.get(&open.dc).cloned());
            }
            faults::heal(&mut sim, &cluster, &hosts, &windows[i].fault);
            let restarted = faults::restarted_at_heal(&windows[i].fault);
            for member in &restarted {
                restarts.push(Restart { member: cluster.member(member).client_url(), at: nanos(now) });
            }
            // The readers storm every member after any restart: a member back from a crash while the others
            // went on is behind them, and must not answer from there.
            if !restarted.is_empty() {
                burst_until.store(nanos(now + restart_readers::BURST), Ordering::Release);
            }
            if windows[i].fault.kind() == FaultKind::KillLeaderAfterRestart {
                counts.entry(FaultKind::KillLeaderAfterRestart).or_default().add(windows[i].fault.completed());
            }
            if windows[i].fault.kind() == FaultKind::CrashLeaderMajority {
                failing_over = Some(failover_watch::restarted(&cluster, now, &timing));
            }
            active = None;
        }
        if active.is_none()
            && let Some(w) = windows.get(next_window)
            && now >= w.start
            && now < heal_at
            && faults::ready(&cluster, &w.fault, now - w.start, now)
        {
            let kind = w.fault.kind();
            if let Some(pending) = failing_over.take() {
                failovers.push(pending.unresolved(now));
            }
            let leader = cluster.leader();
            // A fault that waited for its moment lasts as long as planned all the same, and the ones after it keep
            // their distance, within the fault phase.
            let late = now - windows[next_window].start;
            for w in &mut windows[next_window..] {
                w.start += late;
                w.end = (w.end + late).min(heal_at).max(w.start);
            }
            let took_effect = faults::apply(&mut sim, &cluster, &mut windows[next_window].fault);
            if let Some(dc) = isolated_dc(&windows[next_window].fault, &hosts) {
                let leader_inside = leader.as_ref().is_some_and(|l| cluster.member(l).dc == dc);
                isolations.push(DcIsolation { dc, from: nanos(now), until: 0, leader_inside, state_at_heal: None });
            }
            // A fault in stages is counted when it is healed, by how far it got.
            if kind != FaultKind::KillLeaderAfterRestart {
                counts.entry(kind).or_default().add(took_effect);
            }
            failing_over = failover_watch::lost(&cluster, &windows[next_window].fault, leader.as_deref(), now, &timing);
            active = Some(next_window);
            next_window += 1;
        }
        if let Some(i) = active
            && let waited = now - windows[i].start
            && let Some(leader) = faults::advance(&mut sim, &cluster, &mut windows[i].fault, waited)
        {
            failing_over = Some(failover_watch::leader_killed(&cluster, &leader, now, &timing));
        }
        if let Err(e) = sim.step() {
            error = Some(e.to_string());
            break;
        }
    }
    if let Some(pending) = failing_over.take() {
        failovers.push(pending.unresolved(sim.elapsed()));
    }
    group.until = nanos(sim.elapsed());
    let expected_dc = PREFERENCE[0].to_owned();
    let mut final_leader = None;
    if error.is_none() {
        match await_settled(&mut sim, &cluster, &expected_dc) {
            Ok(obs) => final_leader = Some(obs),
            Err(e) => error = Some(e),
        }
    }
    // Leases are judged only once leadership settled (a run whose leader never did has failed already), and
    // before the planned move: a new leader re-times every lease it inherits, which would hide a lease that
    // never expires under the leader that granted it.
    let settled = |obs: &Option<LeaderObservation>| {
        obs.as_ref().is_some_and(|o| o.leader_dc.as_deref() == Some(expected_dc.as_str()))
    };
    let mut final_leases = None;
    if settled(&final_leader) && error.is_none() {
        match await_lease_expiry(&mut sim, &cluster) {
            Ok(obs) => final_leases = Some(obs),
            Err(e) => error = Some(e),
        }
    }
    // The planned move runs on a settled, healthy cluster, so that anything it costs is its own doing.
    let mut planned: Option<PlannedTransfer> = None;
    if settled(&final_leader) && error.is_none() {
        planned_start.store(nanos(sim.elapsed()), Ordering::Release);
        let limit = sim.elapsed() + planned_transfer::WINDOW + PLANNED_MOVE_SLACK;
        while planned_done.lock().is_none() && sim.elapsed() < limit && error.is_none() {
            if let Err(e) = sim.step() {
                error = Some(e.to_string());
            }
        }
        planned = Some(planned_done.lock().take().unwrap_or(PlannedTransfer {
            asked_at: 0,
            moved: false,
            writers: Vec::new(),
        }));
        if error.is_none() {
            match await_settled(&mut sim, &cluster, &expected_dc) {
                Ok(obs) => final_leader = Some(obs),
                Err(e) => error = Some(e),
            }
        }
    }
    let mut final_verdicts = None;
    if settled(&final_leader) && error.is_none() {
        match await_verdicts_up(&mut sim, &cluster) {
            Ok(obs) => final_verdicts = Some(obs),
            Err(e) => error = Some(e),
        }
    }
    let final_scan = if error.is_none() { scan_store(&cluster, nanos(sim.elapsed())) } else { None };
    // Whatever of the registry was committed after the clients stopped (writes of unknown outcome).
    sampler.read_truth(&cluster);
    let founders: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
    rec.with_discovery(|d| sampler.finish(d, founders, discovery_window_ms(&timing), timing.election_ms()));
    for (kind, tally) in shared_counts.lock().iter() {
        counts.entry(*kind).or_default().merge(*tally);
    }
    let sim_time = sim.elapsed();
    drop(sim);
    rec.with_history(|h| {
        h.final_leader = final_leader;
        h.final_leases = final_leases;
        h.fault_effects = counts
            .iter()
            .map(|(kind, t)| FaultEffect { kind: kind.to_string(), scheduled: t.scheduled, took_effect: t.took_effect })
            .collect();
        h.failovers = failovers;
        h.restarts = restarts;
        h.planned_transfer = planned;
        h.verdict_setup = Some(VerdictSetup {
            voters: cluster.members.iter().map(|m| (m.name.clone(), m.dc.clone())).collect(),
            detection_window_ms: 2 * timing.election_ms(),
            epoch_unix_ms: cluster::SIM_EPOCH_UNIX_MS,
            isolations,
            leader_terms,
        });
        h.final_verdicts = final_verdicts;
        h.group_timeline = Some(group);
        h.hook_calls = cluster
            .hooks
            .calls()
            .into_iter()
            .map(|c| HookCallRecord { group: c.call.group.0, dc: c.call.dc.0, token: c.call.token, term: c.call.term })
            .collect();
    });
    rec.with_auth(|a| a.final_scan = final_scan);
    let history = rec.snapshot();
    let report = checker::check(&history, &opts.check);
    RunOutcome { seed: opts.seed, sim_time, history, faults: counts, report, error }
}

/// Runs the simulation until the leader has been in `expected_dc` for [`STABLE_FOR`], or [`RECOVERY_LIMIT`] has
/// passed, and reports where it was then.
fn await_settled(
    sim: &mut turmoil::Sim<'_>,
    cluster: &cluster::SimCluster,
    expected_dc: &str,
) -> Result<LeaderObservation, String> {
    let start = sim.elapsed();
    let mut settled_since: Option<Duration> = None;
    loop {
        let now = sim.elapsed();
        let leader_dc = cluster.leader().map(|name| cluster.member(&name).dc.clone());
        if leader_dc.as_deref() == Some(expected_dc) {
            let since = *settled_since.get_or_insert(now);
            if now - since >= STABLE_FOR {
                return Ok(LeaderObservation { at: nanos(now), leader_dc, expected_dc: expected_dc.to_owned() });
            }
        } else {
            settled_since = None;
            if now >= start + RECOVERY_LIMIT {
                return Ok(LeaderObservation { at: nanos(now), leader_dc, expected_dc: expected_dc.to_owned() });
            }
        }
        sim.step().map_err(|e| e.to_string())?;
    }
}

/// How often (simulated milliseconds) the runner reads what the registry committed since its last read.
const TRUTH_READ_EVERY_MS: u128 = 5;

/// How long after a registry write was acknowledged a founder clear of faults may take to show it in its catalog,
/// in milliseconds: three election timeouts (a leader change, the entry's commit and apply, the catalog's watch).
pub fn discovery_window_ms(timing: &meridian_types::TimingConfig) -> u64 {
    3 * timing.election_ms()
}

/// How often the runner samples the failover group and the verdicts in the leader's store.
const GROUP_SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// How long a leader that stays in office may take to move a failover group off a datacenter its store shows
/// `down`, in milliseconds: two heartbeats and an election timeout. The group driver runs once a heartbeat (one
/// heartbeat until it looks); it takes a read barrier and proposes the switch, a quorum round trip each across
/// datacenters (tens of milliseconds, the second heartbeat); a round whose message was lost (a lossy link
/// elsewhere) fails only at the peer RPC timeout, which is never below the election timeout, and is tried
/// again at the next tick.
pub fn group_switch_bound_ms(timing: &meridian_types::TimingConfig) -> u64 {
    timing.election_ms() + 2 * timing.heartbeat_ms()
}

/// Records what the leader's store shows of the group and the verdicts now, if it changed.
fn sample_group(cluster: &cluster::SimCluster, timeline: &mut GroupTimeline, at: u64, other_fault: bool) {
    let leader = cluster.leader().and_then(|l| {
        let term = cluster.registry.lock().get(&l).map(|node| node.status().term)?;
        Some((l, term))
    });
    let (down, active) = match &leader {
        Some((l, _)) => cluster.group_view(l, cluster::GROUP).unwrap_or_default(),
        None => (Vec::new(), None),
    };
    let sample = GroupSample { at, leader, down, active, other_fault };
    let changed = timeline.samples.last().is_none_or(|last| {
        (&last.leader, &last.down, &last.active, last.other_fault)
            != (&sample.leader, &sample.down, &sample.active, sample.other_fault)
    });
    if changed {
        timeline.samples.push(sample);
    }
}

/// How long after the heal every verdict must be back to `up`: the stable window (the failback hold), a
/// detection window for a leader elected meanwhile, and slack.
const VERDICTS_UP_LIMIT: Duration = Duration::from_secs(10);

/// Runs the simulation until the leader's store shows every datacenter `up`, or [`VERDICTS_UP_LIMIT`] has passed,
/// and reports the verdicts then.
fn await_verdicts_up(sim: &mut turmoil::Sim<'_>, cluster: &cluster::SimCluster) -> Result<FinalVerdicts, String> {
    let start = sim.elapsed();
    loop {
        let now = sim.elapsed();
        let verdicts = cluster.leader().and_then(|l| cluster.verdicts_at(&l)).unwrap_or_default();
        let all_up = verdicts.len() == cluster::DCS.len() && verdicts.values().all(|s| s == "up");
        if all_up || now >= start + VERDICTS_UP_LIMIT {
            return Ok(FinalVerdicts { at: nanos(now), states: verdicts.into_iter().collect() });
        }
        sim.step().map_err(|e| e.to_string())?;
    }
}

/// The datacenter a fault cuts off from the rest, if it is such a fault.
fn isolated_dc(fault: &faults::Fault, hosts: &[(String, String)]) -> Option<String> {
    match fault {
        faults::Fault::Partition { kind: FaultKind::IsolateDc, pairs } => {
            let inside = &pairs.first()?.0;
            hosts.iter().find(|(h, _)| h == inside).map(|(_, dc)| dc.clone())
        }
        _ => None,
    }
}

/// Runs the simulation until the leader holds no lease, or until [`LEASE_EXPIRY_LIMIT`] has passed since the
/// last leader change (at most [`LEASE_PHASE_MAX`]), and reports what was left.
fn await_lease_expiry(sim: &mut turmoil::Sim<'_>, cluster: &cluster::SimCluster) -> Result<LeaseObservation, String> {
    let start = sim.elapsed();
    let mut leader = cluster.leader();
    let mut changed_at = start;
    loop {
        let now = sim.elapsed();
        let current = cluster.leader();
        if current != leader {
            leader = current;
            changed_at = now;
        }
        let outstanding = leader.as_deref().and_then(|l| cluster.leases_at(l));
        let done = outstanding.as_ref().is_some_and(Vec::is_empty);
        if done || now >= changed_at + LEASE_EXPIRY_LIMIT || now >= start + LEASE_PHASE_MAX {
            let outstanding = match outstanding {
                Some(leases) => leases,
                None => cluster.members.iter().find_map(|m| cluster.leases_at(&m.name)).unwrap_or_default(),
            };
            return Ok(LeaseObservation { at: nanos(now), outstanding });
        }
        sim.step().map_err(|e| e.to_string())?;
    }
}

/// What the leader's store (or, with none, the first running founder's) holds at `at` that the limited user
/// wrote outside its prefix, and the sentinel.
fn scan_store(cluster: &cluster::SimCluster, at: u64) -> Option<FinalScan> {
    let member = cluster.leader().or_else(|| {
        let running = cluster.registry.lock();
        cluster.members.iter().find(|m| running.contains_key(&m.name)).map(|m| m.name.clone())
    })?;
    let all = cluster.scan(&member)?;
    let sentinel = all.iter().find(|(k, _)| k.as_slice() == SENTINEL_KEY).map(|(_, v)| v.clone());
    let leaked = all
        .into_iter()
        .filter(|(k, v)| v.starts_with(APP_VALUE_MARK) && !Span::key(k).inside_app_prefix())
        .map(|(key, value)| KeyValue { key, value })
        .collect();
    Some(FinalScan { at, member, leaked, sentinel })
}

/// Task ids are aligned to a multiple of this (a power of two at least tokio's shard count).
const TASK_ID_ALIGN: u64 = 64;

/// Moves tokio's task-id counter to a multiple of [`TASK_ID_ALIGN`]. tokio numbers tasks from one
/// process-wide counter, and a crashed host's runtime shuts its tasks down shard by shard, the
/// shard being the task id modulo the shard count; the order decides in which order the dying
/// host's connections send their FINs, and with it the simulated network's random draws. Aligned,
/// a run assigns the same shards whatever ran before it on this thread, so `--replay` and a
/// later `--seed` reproduce it. (Runs on parallel worker threads share the counter and are not
/// aligned against each other.)
fn align_task_ids() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else { return };
    loop {
        // Never polled: dropped with the runtime.
        let Ok(id) = rt.spawn(async {}).id().to_string().parse::<u64>() else { return };
        if id % TASK_ID_ALIGN == TASK_ID_ALIGN - 1 {
            return;
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
