//! The runner's pure core: which checks this member runs, when each probe is due, what the results and TTL
//! reports do to each check's state machine, which changes go to the log in which batch, and which instances to
//! deregister. It does no I/O and reads no clock: the driver feeds it the catalog, the live members, probe
//! results, reports and `now`, and performs the [`Actions`] it returns.
//!
//! Rules:
//! - **Assignment** ([`RunnerCore::sync`]): this member runs the checks of every instance for which it is the
//!   runner over the live members (`meridian_registry::assign`). A check taken over (or seen for the first time)
//!   resumes from its published record ([`CheckState::resume`]: a TTL check gets a full TTL from the takeover);
//!   a check without a record starts in its initial status. An instance given up drops its unpublished changes:
//!   its new runner starts from the record. A re-registration (the registration's modify revision moved) starts
//!   the instance's checks over from their records.
//! - **Foreign writes**: a check record that changed in the store without this runner writing it (a TTL report
//!   written through the log because forwarding it here failed, or a write by a runner that still thought the
//!   check was its own) is adopted when its status differs from what this runner last published, or whenever
//!   the check is a TTL check (the write was a report: the deadline restarts). Never while this runner has a
//!   change of the check on its way to the log. A TTL report carries the check's record as committed when it
//!   arrived, adopted by the same rule before the report is judged: the catalog may lag behind the store.
//! - **Probes**: the first probe of a check is due at once, each next one an interval after the previous one
//!   was ordered; a probe still running is never ordered again. Results of a check replaced since (a
//!   re-registration, a hand-over and back) are ignored, by generation.
//! - **Publishing**: every [`Change`] goes into the [`Batcher`]; [`Actions::publish`] is one flush, to be
//!   written as one proposal, and [`RunnerCore::published`] must follow before anything else is fed: on
//!   failure the changes go back into the batcher for the next flush.
//! - **Reports are answered when safe** ([`super::waiting`]): a taken report gets a [`Ticket`], answered
//!   through [`RunnerCore::take_answers`] once no change of its check waits or is being written (`true`), or
//!   once the check stops being run as it was, its unwritten change dropped (`false`: the receiving member then
//!   writes the report through the log).
//! - **Deregistration**: a check critical for its `deregister_critical_after` makes its instance one of
//!   [`Actions::deregister`], again every [`RunnerConfig::deregister_retry`] until it is gone.

pub use crate::discovery::report::TtlReport;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use meridian_registry::check::CheckKind;
use meridian_registry::publish::Update;
use meridian_registry::{
    Batcher, CheckDef, CheckId, CheckRecord, CheckRef, CheckState, FlapDamping, InstanceRef, LiveMember, MachineConfig,
    Observation, Outcome, PublishConfig, Step, Timestamp, is_runner,
};
use meridian_types::{LeaseId, MemberName};

use super::waiting::{Standing, Ticket, Waiting};
use crate::discovery::catalog::Catalog;
use crate::discovery::writes::CheckWrite;

/// The runner's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Batching and rate limiting of changes.
    pub publish: PublishConfig,
    /// Flap damping of every check's machine.
    pub damping: Option<FlapDamping>,
    /// How long to wait before asking again for a deregistration that did not happen.
    pub deregister_retry: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            publish: PublishConfig::default(),
            damping: Some(FlapDamping::DEFAULT),
            deregister_retry: Duration::from_secs(1),
        }
    }
}

/// One probe to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOrder {
    /// The check.
    pub check: CheckRef,
    /// Its definition (never a TTL check).
    pub kind: CheckKind,
    /// The longest the probe may take.
    pub timeout: Duration,
    /// Hand back with the result.
    pub generation: u64,
}

/// A probe's judged result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// The check.
    pub check: CheckRef,
    /// The order's generation.
    pub generation: u64,
    /// The verdict.
    pub outcome: Outcome,
    /// The output shown with the check.
    pub output: String,
}

/// What the driver must do now.
#[derive(Debug, Default)]
pub struct Actions {
    /// Probes to start.
    pub probes: Vec<ProbeOrder>,
    /// Check states to write, in one proposal (empty: nothing to write).
    pub publish: Vec<CheckWrite>,
    /// Instances to deregister.
    pub deregister: Vec<InstanceRef>,
}

/// A running check.
#[derive(Debug)]
struct Running {
    def: CheckDef,
    cfg: MachineConfig,
    /// Always `Some` between calls (taken out during a transition).
    state: Option<CheckState>,
    generation: u64,
    /// When the next probe is due (`None` for TTL checks).
    next_probe: Option<Timestamp>,
    probing: bool,
    /// The modify revision of the check's record as last seen or written by this runner.
    seen_mod: i64,
}

impl Running {
    fn state(&self) -> &CheckState {
        self.state.as_ref().expect("a check's state is always present between calls")
    }
}

/// The checks of one instance this member runs.
#[derive(Debug)]
struct RunInstance {
    /// The registration's create revision (the guard of every write).
    registered: i64,
    /// The registration's modify revision (a re-registration moves it).
    modified: i64,
    lease: Option<LeaseId>,
    checks: BTreeMap<CheckId, Running>,
    deregister: Deregister,
}

/// Where an instance's deregistration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deregister {
    /// Not wanted.
    No,
    /// Wanted: ask at the next step.
    Due,
    /// Asked for at this time; ask again after the retry delay if it is still here.
    Asked(Timestamp),
}

/// The runner's state on one member.
#[derive(Debug)]
pub struct RunnerCore {
    me: MemberName,
    config: RunnerConfig,
    instances: BTreeMap<InstanceRef, RunInstance>,
    batcher: Batcher,
    /// Changes handed out by the last flush and not yet confirmed.
    in_flight: Vec<Update>,
    /// Checks with a change pushed since the batcher and the in-flight batch were last empty.
    unpublished: BTreeSet<CheckRef>,
    /// Taken reports not yet answered.
    waiting: Waiting,
    next_generation: u64,
}

impl RunnerCore {
    /// A runner for member `me` that runs nothing yet.
    pub fn new(me: MemberName, config: RunnerConfig, now: Timestamp) -> RunnerCore {
        let batcher = Batcher::new(config.publish, now).unwrap_or_else(|_| {
            Batcher::new(PublishConfig::default(), now).expect("the default publish config is valid")
        });
        RunnerCore {
            me,
            config,
            instances: BTreeMap::new(),
            batcher,
            in_flight: Vec::new(),
            unpublished: BTreeSet::new(),
            waiting: Waiting::default(),
            next_generation: 0,
        }
    }

    /// How many checks this member runs.
    pub fn checks_run(&self) -> usize {
        self.instances.values().map(|i| i.checks.len()).sum()
    }

    /// Whether this member runs `instance`'s checks.
    pub fn runs(&self, instance: &InstanceRef) -> bool {
        self.instances.contains_key(instance)
    }

    /// The status a running check is judged to be in.
    pub fn status(&self, check: &CheckRef) -> Option<meridian_registry::Status> {
        self.running(check).map(|c| c.state().status())
    }

    /// How many changes wait to be published (in flight excluded).
    pub fn pending(&self) -> usize {
        self.batcher.pending()
    }

    fn running(&self, check: &CheckRef) -> Option<&Running> {
        self.instances.get(&check.instance)?.checks.get(&check.check)
    }

    /// Takes up the checks this member now runs and gives up the others, from the catalog and the live
    /// members; adopts records written by others (see the module docs).
    pub fn sync(&mut self, catalog: &Catalog, live: &[LiveMember], now: Timestamp) {
        let mut keep = BTreeSet::new();
        for stored in catalog.instances() {
            let reg = &stored.registration;
            if reg.checks.is_empty() || !is_runner(&self.me, &reg.instance, live) {
                continue;
            }
            let r = reg.instance.reference();
            keep.insert(r.clone());
            let current = self
                .instances
                .get(&r)
                .is_some_and(|run| run.registered == stored.indexes.create && run.modified == stored.indexes.modify);
            if current {
                self.adopt_foreign_writes(catalog, &r, now);
                continue;
            }
            if self.instances.contains_key(&r) {
                self.batcher.discard_instance(&r);
            }
            let mut checks = BTreeMap::new();
            for def in &reg.checks {
                let cfg = MachineConfig::of(def, self.config.damping);
                let record = catalog.check(&r, &def.id);
                let state = match record {
                    Some((record, _)) => CheckState::resume(&cfg, record, now),
                    None => CheckState::new(&cfg, def.initial, now),
                };
                let generation = self.next_generation;
                self.next_generation += 1;
                let running = Running {
                    def: def.clone(),
                    cfg,
                    state: Some(state),
                    generation,
                    next_probe: def.kind.schedule().map(|_| now),
                    probing: false,
                    seen_mod: record.map_or(0, |(_, indexes)| indexes.modify),
                };
                checks.insert(def.id.clone(), running);
            }
            let run = RunInstance {
                registered: stored.indexes.create,
                modified: stored.indexes.modify,
                lease: reg.instance.lease,
                checks,
                deregister: Deregister::No,
            };
            self.instances.insert(r, run);
        }
        let released: Vec<InstanceRef> = self.instances.keys().filter(|r| !keep.contains(*r)).cloned().collect();
        for r in released {
            self.instances.remove(&r);
            self.batcher.discard_instance(&r);
        }
        self.forget_published();
        self.settle_reports();
    }

    /// Answers the waiting reports whose checks are settled or dropped.
    fn settle_reports(&mut self) {
        let (instances, batcher, in_flight) = (&self.instances, &self.batcher, &self.in_flight);
        self.waiting.settle(|check, generation| {
            match instances.get(&check.instance).and_then(|run| run.checks.get(&check.check)) {
                Some(running) if running.generation == generation => {
                    if batcher.contains(check) || in_flight.iter().any(|u| &u.check == check) {
                        Standing::Pending
                    } else {
                        Standing::Settled
                    }
                }
                _ => Standing::Dropped,
            }
        });
    }

    /// The answers to taken reports that are ready: `true` if the report's effect is safe, `false` if it was
    /// dropped and must be written through the log.
    pub fn take_answers(&mut self) -> Vec<(Ticket, bool)> {
        self.waiting.take_answers()
    }

    /// How many taken reports wait for their answer.
    pub fn reports_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Clears the checks with unpublished changes once nothing waits or is in flight.
    fn forget_published(&mut self) {
        if self.batcher.pending() == 0 && self.in_flight.is_empty() {
            self.unpublished.clear();
        }
    }

    fn adopt_foreign_writes(&mut self, catalog: &Catalog, r: &InstanceRef, now: Timestamp) {
        let Some(run) = self.instances.get(r) else { return };
        let records: Vec<(CheckRef, CheckRecord, i64)> = run
            .checks
            .keys()
            .filter_map(|id| {
                let (record, indexes) = catalog.check(r, id)?;
                Some((CheckRef { instance: r.clone(), check: id.clone() }, record.clone(), indexes.modify))
            })
            .collect();
        for (check, record, revision) in records {
            self.adopt(&check, &record, revision, now);
        }
    }

    /// Adopts `record`, written at `revision`, if no write this runner knows of is as new and none of its own
    /// changes of the check is on its way to the log (see the module docs).
    fn adopt(&mut self, check_ref: &CheckRef, record: &CheckRecord, revision: i64, now: Timestamp) {
        let pending = self.unpublished.contains(check_ref);
        let Some(check) = self.running_mut(check_ref) else { return };
        if revision <= check.seen_mod || pending {
            return;
        }
        check.seen_mod = revision;
        if check.cfg.ttl.is_some() || record.status != check.state().published() {
            check.state = Some(CheckState::resume(&check.cfg, record, now));
        }
    }

    /// Feeds a probe's result to its check's machine (ignored if the check is no longer run, or was replaced).
    pub fn probed(&mut self, result: ProbeResult, now: Timestamp) {
        let Some(check) = self.running_mut(&result.check) else { return };
        if check.generation != result.generation || check.def.kind.schedule().is_none() {
            return;
        }
        check.probing = false;
        let observation = Observation::new(result.outcome, result.output, now);
        self.transition(&result.check, |state, cfg| state.observe(cfg, observation));
    }

    /// Feeds a TTL report to its check's machine and returns the ticket its answer will carry (see
    /// [`take_answers`](Self::take_answers)); `None` if this member does not run that TTL check (the caller
    /// then writes it through the log).
    pub fn report(&mut self, report: TtlReport, now: Timestamp) -> Option<Ticket> {
        let generation = match self.running(&report.check) {
            Some(check) if check.cfg.ttl.is_some() => check.generation,
            _ => return None,
        };
        if let Some((record, revision)) = &report.committed {
            self.adopt(&report.check, record, *revision, now);
        }
        let observation = Observation::new(report.outcome, report.output, now);
        self.transition(&report.check, |state, cfg| state.observe(cfg, observation));
        let ticket = self.waiting.wait(report.check, generation);
        self.settle_reports();
        Some(ticket)
    }

    fn running_mut(&mut self, check: &CheckRef) -> Option<&mut Running> {
        self.instances.get_mut(&check.instance)?.checks.get_mut(&check.check)
    }

    /// Moves a check's machine with `f`; queues its change and notes a deregistration it asks for.
    fn transition(&mut self, check: &CheckRef, f: impl FnOnce(CheckState, &MachineConfig) -> Step) {
        let Some(running) = self.running_mut(check) else { return };
        let state = running.state.take().expect("a check's state is always present between calls");
        let step = f(state, &running.cfg);
        running.state = Some(step.state);
        if let Some(change) = step.publish {
            self.batcher.push(check.clone(), change);
            self.unpublished.insert(check.clone());
        }
        if step.deregister
            && let Some(run) = self.instances.get_mut(&check.instance)
            && run.deregister == Deregister::No
        {
            run.deregister = Deregister::Due;
        }
    }

    /// Lets time pass to `now`: expires TTLs, releases held changes, orders due probes, flushes a batch and
    /// lists the instances to deregister.
    pub fn step(&mut self, now: Timestamp) -> Actions {
        let mut due = Vec::new();
        for (r, run) in &self.instances {
            for (id, check) in &run.checks {
                if check.state().next_deadline(&check.cfg).is_some_and(|at| at <= now) {
                    due.push(CheckRef { instance: r.clone(), check: id.clone() });
                }
            }
        }
        for check in due {
            self.transition(&check, |state, cfg| state.tick(cfg, now));
        }
        let mut actions = Actions::default();
        let retry = self.config.deregister_retry;
        for (r, run) in &mut self.instances {
            let ask = match run.deregister {
                Deregister::No => false,
                Deregister::Due => true,
                Deregister::Asked(at) => now >= at.plus(retry),
            };
            if ask {
                run.deregister = Deregister::Asked(now);
                actions.deregister.push(r.clone());
            }
            for (id, check) in &mut run.checks {
                let (Some(at), Some(schedule)) = (check.next_probe, check.def.kind.schedule()) else { continue };
                if check.probing || at > now {
                    continue;
                }
                check.probing = true;
                // Paced from when it was due, not from when it ran, unless it fell a whole interval behind.
                let next = at.plus(schedule.interval);
                check.next_probe = Some(if next <= now { now.plus(schedule.interval) } else { next });
                actions.probes.push(ProbeOrder {
                    check: CheckRef { instance: r.clone(), check: id.clone() },
                    kind: check.def.kind.clone(),
                    timeout: schedule.timeout,
                    generation: check.generation,
                });
            }
        }
        if self.in_flight.is_empty() {
            let updates = self.batcher.flush(now);
            for u in &updates {
                let Some(run) = self.instances.get(&u.check.instance) else { continue };
                actions.publish.push(CheckWrite {
                    check: u.check.clone(),
                    record: u.change.record(),
                    registered: run.registered,
                    lease: run.lease,
                });
            }
            self.in_flight = updates;
        }
        self.settle_reports();
        actions
    }

    /// The outcome of writing the last flush: `Ok(revision)` it was written at, or `Err` (nothing may have
    /// been written: its changes go back into the batcher).
    pub fn published(&mut self, outcome: Result<i64, ()>) {
        let updates = std::mem::take(&mut self.in_flight);
        match outcome {
            Ok(revision) => {
                for u in &updates {
                    if let Some(check) = self.running_mut(&u.check) {
                        check.seen_mod = check.seen_mod.max(revision);
                    }
                }
            }
            Err(()) => {
                for u in updates {
                    if self.runs(&u.check.instance) {
                        self.batcher.push(u.check, u.change);
                    }
                }
            }
        }
        self.forget_published();
        self.settle_reports();
    }

    /// The instance was deregistered (or was already gone): stop running it.
    pub fn deregistered(&mut self, instance: &InstanceRef) {
        self.instances.remove(instance);
        self.batcher.discard_instance(instance);
        self.settle_reports();
    }

    /// When [`step`](Self::step) next has something to do; `None` if nothing is pending. Probes in flight
    /// wake the driver through their results.
    pub fn next_wake(&self) -> Option<Timestamp> {
        let mut wake = self.batcher.next_flush_at();
        let mut earliest = |t: Timestamp| wake = Some(wake.map_or(t, |w| w.min(t)));
        for run in self.instances.values() {
            match run.deregister {
                Deregister::No => {}
                Deregister::Due => earliest(Timestamp(0)),
                // The machines keep saying "deregister" (their deadline stays past): wait for the retry instead.
                Deregister::Asked(at) => earliest(at.plus(self.config.deregister_retry)),
            }
            for check in run.checks.values() {
                if run.deregister == Deregister::No
                    && let Some(at) = check.state().next_deadline(&check.cfg)
                {
                    earliest(at);
                }
                if let Some(at) = check.next_probe.filter(|_| !check.probing) {
                    earliest(at);
                }
            }
        }
        wake
    }
}
