//! The transitions of [`CheckState`]: observing a result, and the clock's `tick` (TTL expiry, deregistration,
//! releasing a held improvement).

use super::*;

impl CheckState {
    /// A new check in its initial status at `now` (the status written with the registration, so it counts as
    /// published). For a TTL check the first report is due `ttl` after `now`.
    pub fn new(cfg: &MachineConfig, initial: Status, now: Timestamp) -> CheckState {
        let track = Track {
            successes: if initial == Status::Critical { 0 } else { cfg.thresholds.success_before_passing },
            failures: if initial == Status::Critical { cfg.thresholds.failures_before_critical } else { 0 },
            since: now,
            output: String::new(),
            published: initial,
            last_report: now,
            flaps: FlapHistory::default(),
        };
        CheckState::from_parts(initial, track)
    }

    /// A check taken over from the record in the store (its runner changed, or this member restarted): the
    /// stored status, output and `since` (so `deregister_critical_after` keeps counting), counters as if the
    /// status had just been reached, and for a TTL check a full TTL from `now` before it can expire.
    pub fn resume(cfg: &MachineConfig, record: &CheckRecord, now: Timestamp) -> CheckState {
        let (_, mut t) = CheckState::new(cfg, record.status, now).into_parts();
        t.since = record.since;
        t.output = record.output.clone();
        CheckState::from_parts(record.status, t)
    }

    /// The status as judged from the results.
    pub fn status(&self) -> Status {
        match self {
            CheckState::Passing(_) => Status::Passing,
            CheckState::Warning(_) => Status::Warning,
            CheckState::Critical(_) => Status::Critical,
        }
    }

    /// The status last published (differs from [`status`](Self::status) while damping holds an improvement).
    pub fn published(&self) -> Status {
        self.track().published
    }

    /// The output of the result that set the current status (or the latest one since).
    pub fn output(&self) -> &str {
        &self.track().output
    }

    /// When the check entered its current status.
    pub fn since(&self) -> Timestamp {
        self.track().since
    }

    /// Feeds one result; the status moves when a threshold is reached.
    pub fn observe(self, cfg: &MachineConfig, observation: Observation) -> Step {
        let (status, mut t) = self.into_parts();
        let (outcome, report) = observation.into_parts();
        let now = report.now;
        if cfg.ttl.is_some() {
            t.last_report = t.last_report.max(now);
        }
        let th = &cfg.thresholds;
        let judged = match outcome {
            Outcome::Pass | Outcome::Warn => {
                t.successes = t.successes.saturating_add(1);
                t.failures = 0;
                let to = if outcome == Outcome::Pass { Status::Passing } else { Status::Warning };
                (t.successes >= th.success_before_passing).then_some(to)
            }
            Outcome::Fail => {
                t.failures = t.failures.saturating_add(1);
                t.successes = 0;
                if t.failures >= th.failures_before_critical {
                    Some(Status::Critical)
                } else {
                    (t.failures >= th.failures_before_warning).then_some(Status::Warning)
                }
            }
        };
        let Some(new) = judged else {
            let publish = t.try_publish(status, cfg, now);
            return Step { state: CheckState::from_parts(status, t), publish, deregister: false };
        };
        t.output = truncate(&report.output, MAX_OUTPUT_MAX).to_owned();
        if new != status {
            t.since = now;
        }
        let publish = t.try_publish(new, cfg, now);
        Step { state: CheckState::from_parts(new, t), publish, deregister: false }
    }

    /// Lets time pass to `now`: expires a TTL check whose report is overdue, publishes a held improvement the
    /// damping window now allows, and says whether the instance should be deregistered.
    pub fn tick(self, cfg: &MachineConfig, now: Timestamp) -> Step {
        let (mut status, mut t) = self.into_parts();
        if let Some(ttl) = cfg.ttl {
            let deadline = t.last_report.plus(ttl);
            if now >= deadline && status != Status::Critical {
                status = Status::Critical;
                t.since = deadline;
                t.successes = 0;
                t.output = format!("TTL expired: no report for {}", format_duration(ttl));
            }
        }
        let publish = t.try_publish(status, cfg, now);
        let deregister =
            status == Status::Critical && cfg.deregister_after.is_some_and(|after| now >= t.since.plus(after));
        Step { state: CheckState::from_parts(status, t), publish, deregister }
    }

    /// The next time [`tick`](Self::tick) may do something (a TTL deadline, a deregistration, a held change's
    /// release); `None` if nothing is pending. The server may tick more often; never later is enough.
    pub fn next_deadline(&self, cfg: &MachineConfig) -> Option<Timestamp> {
        let t = self.track();
        let critical = self.status() == Status::Critical;
        let ttl = cfg.ttl.filter(|_| !critical).map(|ttl| t.last_report.plus(ttl));
        let deregister = cfg.deregister_after.filter(|_| critical).map(|after| t.since.plus(after));
        let release = cfg.damping.filter(|_| self.status() != t.published).map(|d| t.flaps.release_at(&d));
        [ttl, deregister, release].into_iter().flatten().min()
    }

    fn track(&self) -> &Track {
        match self {
            CheckState::Passing(t) | CheckState::Warning(t) | CheckState::Critical(t) => t,
        }
    }

    fn into_parts(self) -> (Status, Track) {
        let status = self.status();
        match self {
            CheckState::Passing(t) | CheckState::Warning(t) | CheckState::Critical(t) => (status, t),
        }
    }

    fn from_parts(status: Status, track: Track) -> CheckState {
        match status {
            Status::Passing => CheckState::Passing(track),
            Status::Warning => CheckState::Warning(track),
            Status::Critical => CheckState::Critical(track),
        }
    }
}

impl Track {
    /// Publishes `judged` if it differs from what was published and damping lets it through.
    fn try_publish(&mut self, judged: Status, cfg: &MachineConfig, now: Timestamp) -> Option<Change> {
        if judged == self.published {
            return None;
        }
        let worse = judged > self.published;
        if let Some(rule) = &cfg.damping {
            if !worse && !self.flaps.allows(rule, now) {
                return None;
            }
            self.flaps.record(rule, now);
        }
        let change = Change { from: self.published, to: judged, output: self.output.clone(), since: self.since };
        self.published = judged;
        Some(change)
    }
}
