//! Auto-compaction as etcd 3.4 runs it (`--auto-compaction-mode`, `--auto-compaction-retention`): a pure
//! policy fed the time and the current revision, answering which revision to compact to and when to ask again.
//! The leader drives it; nothing here reads a clock.
//!
//! - **revision**: every 5 minutes, compact to `current - retention` when that is positive and new.
//! - **periodic**: keep `retention` of history. The current revision is sampled every tenth of the compaction
//!   interval (the retention, at most an hour); the first compaction waits a whole retention, later ones one
//!   interval, and each compacts to the oldest sample, the revision of about one retention ago.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use meridian_types::Revision;

/// How often revision mode compacts (etcd's `revInterval`).
pub const REVISION_MODE_INTERVAL: Duration = Duration::from_secs(300);

/// The policy: off, keep some revisions, or keep some time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Never compact by itself (retention 0, etcd's default).
    Off,
    /// Keep this many revisions.
    Revision(i64),
    /// Keep this much time of history.
    Periodic(Duration),
}

impl AutoCompaction {
    /// Reads etcd's flags: `mode` is `periodic` or `revision`; `retention` is a number (hours for periodic,
    /// revisions for revision) or, for periodic, a duration such as `30m`, `1h30m` or `90s`.
    pub fn parse(mode: &str, retention: &str) -> Result<AutoCompaction, String> {
        let retention = retention.trim();
        let number = retention.parse::<i64>().ok().filter(|n| *n >= 0);
        let policy = match (mode, number) {
            ("revision", Some(n)) => AutoCompaction::Revision(n),
            ("revision", None) => {
                return Err(format!("auto-compaction-retention {retention:?}: revision mode takes a revision count"));
            }
            ("periodic", Some(hours)) => AutoCompaction::Periodic(Duration::from_secs(hours as u64 * 3600)),
            ("periodic", None) => AutoCompaction::Periodic(parse_duration(retention)?),
            (other, _) => return Err(format!("unknown auto-compaction-mode {other:?}; expected periodic or revision")),
        };
        Ok(match policy {
            AutoCompaction::Revision(0) => AutoCompaction::Off,
            AutoCompaction::Periodic(d) if d.is_zero() => AutoCompaction::Off,
            p => p,
        })
    }
}

impl fmt::Display for AutoCompaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoCompaction::Off => f.write_str("off"),
            AutoCompaction::Revision(n) => write!(f, "keep {n} revisions"),
            AutoCompaction::Periodic(d) => write!(f, "keep {}s of history", d.as_secs_f64()),
        }
    }
}

/// A Go-style duration: one or more `<number><unit>` with units `h`, `m`, `s`, `ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("auto-compaction-retention {text:?}: expected hours or a duration such as 30m or 1h30m");
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let value = f64::from_str(&rest[..digits]).map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(value * seconds).map_err(|_| bad())?;
    }
    Ok(total)
}

/// What the driver should do after a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Compact to this revision now.
    pub compact: Option<Revision>,
    /// Ask again at this time.
    pub next: Duration,
}

/// The running policy of one leader term.
#[derive(Debug)]
pub struct AutoCompactor {
    policy: AutoCompaction,
    /// Revision mode: the last revision compacted to. Periodic: the time of the last compaction (or start).
    last_revision: i64,
    last_compaction: Duration,
    /// Periodic: one sample per sampling interval, oldest first.
    samples: VecDeque<i64>,
    /// Periodic: the first compaction waits a whole retention.
    first_done: bool,
}

impl AutoCompactor {
    /// Starts the policy at `now` (when this member became leader).
    pub fn new(policy: AutoCompaction, now: Duration) -> Self {
        AutoCompactor { policy, last_revision: 0, last_compaction: now, samples: VecDeque::new(), first_done: false }
    }

    /// The policy.
    pub fn policy(&self) -> AutoCompaction {
        self.policy
    }

    /// Called at the time the previous tick asked for (or at start), with the store's current revision.
    pub fn tick(&mut self, now: Duration, current: Revision) -> Tick {
        match self.policy {
            AutoCompaction::Off => Tick { compact: None, next: now + REVISION_MODE_INTERVAL },
            AutoCompaction::Revision(keep) => {
                let target = current.0 - keep;
                let compact = (target > 0 && target != self.last_revision).then(|| {
                    self.last_revision = target;
                    Revision(target)
                });
                Tick { compact, next: now + REVISION_MODE_INTERVAL }
            }
            AutoCompaction::Periodic(retention) => self.periodic(retention, now, current),
        }
    }

    fn periodic(&mut self, retention: Duration, now: Duration, current: Revision) -> Tick {
        let interval = retention.min(Duration::from_secs(3600));
        let sample_every = (interval / 10).max(Duration::from_millis(1));
        let keep = (retention.as_nanos() / sample_every.as_nanos()) as usize + 1;
        self.samples.push_back(current.0);
        while self.samples.len() > keep {
            self.samples.pop_front();
        }
        let wait = if self.first_done { interval } else { retention };
        let mut compact = None;
        if now.saturating_sub(self.last_compaction) >= wait {
            let oldest = self.samples[0];
            self.first_done = true;
            self.last_compaction = now;
            if oldest > self.last_revision {
                self.last_revision = oldest;
                compact = Some(Revision(oldest));
            }
        }
        Tick { compact, next: now + sample_every }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    #[test]
    fn flags_parse_as_etcd_reads_them() {
        assert_eq!(AutoCompaction::parse("periodic", "0"), Ok(AutoCompaction::Off));
        assert_eq!(AutoCompaction::parse("periodic", "1"), Ok(AutoCompaction::Periodic(Duration::from_secs(H))));
        assert_eq!(AutoCompaction::parse("periodic", "30m"), Ok(AutoCompaction::Periodic(Duration::from_secs(1800))));
        assert_eq!(AutoCompaction::parse("periodic", "1h30m"), Ok(AutoCompaction::Periodic(Duration::from_secs(5400))));
        assert_eq!(
            AutoCompaction::parse("periodic", "1.5s"),
            Ok(AutoCompaction::Periodic(Duration::from_millis(1500)))
        );
        assert_eq!(AutoCompaction::parse("revision", "1000"), Ok(AutoCompaction::Revision(1000)));
        assert!(AutoCompaction::parse("revision", "10m").unwrap_err().contains("revision count"));
        assert!(AutoCompaction::parse("periodic", "ten").unwrap_err().contains("ten"));
        assert!(AutoCompaction::parse("periodic", "-1").is_err());
        assert!(AutoCompaction::parse("hourly", "1").unwrap_err().contains("hourly"));
    }

    #[test]
    fn revision_mode_compacts_every_five_minutes_to_current_minus_retention() {
        let mut c = AutoCompactor::new(AutoCompaction::Revision(100), Duration::ZERO);
        let t0 = Duration::ZERO;
        assert_eq!(c.tick(t0, Revision(50)), Tick { compact: None, next: REVISION_MODE_INTERVAL });
        let t1 = REVISION_MODE_INTERVAL;
        assert_eq!(c.tick(t1, Revision(350)).compact, Some(Revision(250)));
        assert_eq!(c.tick(t1 * 2, Revision(350)).compact, None, "nothing new to compact");
        assert_eq!(c.tick(t1 * 3, Revision(351)).compact, Some(Revision(251)));
    }

    #[test]
    fn periodic_mode_keeps_one_retention_of_history() {
        // Ten-minute retention: a sample a minute, the first compaction after ten minutes, then every ten.
        let retention = Duration::from_secs(600);
        let mut c = AutoCompactor::new(AutoCompaction::Periodic(retention), Duration::ZERO);
        let minute = Duration::from_secs(60);
        let mut compactions = Vec::new();
        let mut now = Duration::ZERO;
        for rev in 0..35i64 {
            // One hundred revisions a minute.
            let tick = c.tick(now, Revision(1 + rev * 100));
            assert_eq!(tick.next, now + minute);
            if let Some(r) = tick.compact {
                compactions.push((now.as_secs() / 60, r.0));
            }
            now = tick.next;
        }
        // At minute 10 the oldest sample is minute 0's; at 20, minute 10's: ten minutes of history kept.
        assert_eq!(compactions, vec![(10, 1), (20, 1001), (30, 2001)]);
    }

    #[test]
    fn long_periodic_retention_compacts_hourly_keeping_the_whole_retention() {
        let mut c = AutoCompactor::new(AutoCompaction::Periodic(Duration::from_secs(5 * H)), Duration::ZERO);
        let mut now = Duration::ZERO;
        let mut compactions = Vec::new();
        while now < Duration::from_secs(8 * H) {
            // The revision is the minute number.
            let tick = c.tick(now, Revision(1 + (now.as_secs() / 60) as i64));
            assert_eq!(tick.next - now, Duration::from_secs(360), "a sample every six minutes");
            if let Some(r) = tick.compact {
                compactions.push((now.as_secs() / 60, r.0));
            }
            now = tick.next;
        }
        // First after five hours (to the start), then hourly, each to five hours before.
        assert_eq!(compactions, vec![(300, 1), (360, 61), (420, 121)]);
    }
}
