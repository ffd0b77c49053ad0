//! `sim`: runs seeded simulations of a whole Meridian cluster and checks every history.
//!
//! `cargo run -p sim --release -- --seeds 1000` runs seeds 0..1000; `--seed S` replays one;
//! `--planted-bug stale-reads` (or `serializable-one-behind`, `untimed-leases`, `resumed-leader`,
//! `forwarded-writes-skip-auth`, `verdict-from-minority`, `lock-skips-wait`, `discovery-ignores-critical`) runs a deliberately broken server and succeeds
//! only if the checker catches it; `--replay` runs each seed twice and requires byte-identical histories.
//!
//! Parallel runs use worker *processes*, not threads: tokio numbers tasks with one counter per process,
//! and a crashed host's tasks shut down in that order, so seeds sharing a process concurrently would not
//! replay exactly. Each worker runs every `--jobs`-th seed and reports one JSON line per seed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use meridian_server::planted::PlantedBug;
use meridian_sim::checker::CheckResult;
use meridian_sim::faults::{FaultKind, Tally};
use meridian_sim::runner::{self, RunOptions};
use serde::{Deserialize, Serialize};

/// Prints a line to stdout, ignoring a closed pipe (`sim ... | head` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Bug {
    /// Followers answer linearizable reads from local state.
    StaleReads,
    /// Serializable reads show the store one revision behind their header revision.
    SerializableOneBehind,
    /// The lease clock ignores applied grants, so leases granted under the current leader never expire.
    UntimedLeases,
    /// A restarted leader resumes its old term without an election.
    ResumedLeader,
    /// A follower forwards a client's write to the leader without its caller, skipping the permission check.
    ForwardedWritesSkipAuth,
    /// The leader declares a datacenter down from its own view alone, not a majority outside it.
    VerdictFromMinority,
    /// The Lock service grants a lock without waiting for the previous holder's key to be deleted.
    LockSkipsWait,
    /// The discovery catalog reads critical check records as passing.
    DiscoveryIgnoresCritical,
}

/// Deterministic simulation of Meridian clusters under faults.
#[derive(Parser, Debug)]
#[command(name = "sim")]
struct Args {
    /// Number of seeds to run, starting at --start.
    #[arg(long, default_value_t = 100, conflicts_with = "seed")]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Run exactly this seed (and print its history fingerprint).
    #[arg(long)]
    seed: Option<u64>,
    /// Deep mode: 100,000 seeds.
    #[arg(long, conflicts_with_all = ["seed", "seeds"])]
    deep: bool,
    /// Worker processes (each runs whole seeds).
    #[arg(long, default_value_t = 2)]
    jobs: u64,
    /// Plant a known bug; the run succeeds only if some seed's history is found invalid.
    #[arg(long, value_enum)]
    planted_bug: Option<Bug>,
    /// Run every seed twice and require byte-identical histories.
    #[arg(long)]
    replay: bool,
    /// Leave the discovery clients out (to measure what they cost).
    #[arg(long)]
    without_discovery: bool,
    /// Length of the fault phase in simulated seconds.
    #[arg(long, default_value_t = 12)]
    fault_secs: u64,
    /// Write the history of --seed as JSON to this file.
    #[arg(long, requires = "seed")]
    dump: Option<std::path::PathBuf>,
    /// Internal: run as worker `k` of `--jobs`, printing one JSON record per seed.
    #[arg(long, hide = true)]
    worker: Option<u64>,
}

/// What a worker reports about one seed.
#[derive(Debug, Serialize, Deserialize)]
struct SeedRecord {
    seed: u64,
    sim_ns: u64,
    ops: u64,
    serializable_reads: u64,
    verdict: Verdict,
    faults: BTreeMap<FaultKind, Tally>,
    /// Each leader the majority lost: the fault's kind and how long until a successor led (`None`: healed first).
    failovers: Vec<(String, Option<u64>)>,
    /// What the discovery check judged and measured.
    #[serde(default)]
    discovery: DiscoveryTally,
    /// The checker's report or the simulation error, for failures.
    detail: Option<String>,
    replay_ok: Option<bool>,
}

/// One seed's discovery numbers.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct DiscoveryTally {
    answers: u64,
    judged: u64,
    nonempty: u64,
    lags: u64,
    lag_p99_ms: u64,
    lag_max_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Verdict {
    Valid,
    Invalid,
    Unknown,
    Error,
}

#[derive(Default)]
struct Totals {
    seeds: u64,
    sim_time: Duration,
    ops: u64,
    serializable_reads: u64,
    verdicts: BTreeMap<&'static str, u64>,
    faults: BTreeMap<FaultKind, Tally>,
    failovers: BTreeMap<String, Vec<Option<u64>>>,
    failures: Vec<(u64, String)>,
    replay_mismatches: Vec<u64>,
    discovery: DiscoveryTally,
    /// Each seed's largest catalog lag, in milliseconds.
    lag_max_ms: Vec<u64>,
}

/// Failures printed with their whole report; later ones are listed by seed.
const MAX_FULL_REPORTS: usize = 5;

impl Totals {
    fn add(&mut self, r: SeedRecord) {
        self.seeds += 1;
        self.sim_time += Duration::from_nanos(r.sim_ns);
        self.ops += r.ops;
        self.serializable_reads += r.serializable_reads;
        self.discovery.answers += r.discovery.answers;
        self.discovery.judged += r.discovery.judged;
        self.discovery.nonempty += r.discovery.nonempty;
        self.discovery.lags += r.discovery.lags;
        self.discovery.lag_p99_ms = self.discovery.lag_p99_ms.max(r.discovery.lag_p99_ms);
        if r.discovery.lags > 0 {
            self.lag_max_ms.push(r.discovery.lag_max_ms);
        }
        for (k, tally) in &r.faults {
            self.faults.entry(*k).or_default().merge(*tally);
        }
        for (kind, took) in &r.failovers {
            self.failovers.entry(kind.clone()).or_default().push(*took);
        }
        if r.replay_ok == Some(false) {
            self.replay_mismatches.push(r.seed);
        }
        let name = match r.verdict {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::Error => "error",
        };
        *self.verdicts.entry(name).or_default() += 1;
        if matches!(r.verdict, Verdict::Invalid | Verdict::Error) {
            self.failures.push((r.seed, r.detail.unwrap_or_default()));
        }
    }

    fn count(&self, verdict: &str) -> u64 {
        self.verdicts.get(verdict).copied().unwrap_or(0)
    }
}

fn options(args: &Args, seed: u64) -> RunOptions {
    let mut o = RunOptions::new(seed);
    o.fault_phase = Duration::from_secs(args.fault_secs);
    o.discovery = !args.without_discovery;
    o.planted_bug = match args.planted_bug {
        None => PlantedBug::None,
        Some(Bug::StaleReads) => PlantedBug::StaleLinearizableReads,
        Some(Bug::SerializableOneBehind) => PlantedBug::SerializableReadsOneBehind,
        Some(Bug::UntimedLeases) => PlantedBug::UntimedLeaseGrants,
        Some(Bug::ResumedLeader) => PlantedBug::ResumedLeaderSkipsElection,
        Some(Bug::ForwardedWritesSkipAuth) => PlantedBug::ForwardedWritesSkipAuth,
        Some(Bug::VerdictFromMinority) => PlantedBug::VerdictFromMinority,
        Some(Bug::LockSkipsWait) => PlantedBug::LockSkipsWait,
        Some(Bug::DiscoveryIgnoresCritical) => PlantedBug::DiscoveryIgnoresCritical,
    };
    o
}

/// Runs one seed in this process.
fn run_seed(args: &Args, seed: u64) -> SeedRecord {
    let out = runner::run(&options(args, seed));
    let replay_ok = args.replay.then(|| {
        let again = runner::run(&options(args, seed));
        again.history.to_canonical_bytes() == out.history.to_canonical_bytes()
    });
    if args.seed.is_some() {
        say!(
            "seed {seed}: history fingerprint {:016x}, {} ops, {} watch streams",
            out.history.fingerprint(),
            out.history.ops.len(),
            out.history.watches.len()
        );
        if let Some(path) = &args.dump
            && let Err(e) = std::fs::write(path, out.history.to_canonical_bytes())
        {
            eprintln!("writing {}: {e}", path.display());
        }
    }
    let (verdict, detail) = if let Some(e) = &out.error {
        (Verdict::Error, Some(format!("simulation error: {e}")))
    } else if out.report.is_invalid() {
        (Verdict::Invalid, Some(format!("INVALID history\n{}", out.report)))
    } else if out.report.is_unknown() || out.report.linearizability == CheckResult::Unknown {
        (Verdict::Unknown, None)
    } else {
        (Verdict::Valid, None)
    };
    SeedRecord {
        seed,
        sim_ns: u64::try_from(out.sim_time.as_nanos()).unwrap_or(u64::MAX),
        ops: out.report.ops_checked as u64,
        serializable_reads: out.report.serializable_checked as u64,
        verdict,
        faults: out.faults,
        failovers: out
            .history
            .failovers
            .iter()
            .map(|f| (f.kind.clone(), f.elected_at.map(|at| at.saturating_sub(f.lost_at))))
            .collect(),
        discovery: {
            let d = &out.report.discovery_stats;
            DiscoveryTally {
                answers: d.answers as u64,
                judged: d.judged as u64,
                nonempty: d.nonempty as u64,
                lags: d.lags_measured as u64,
                lag_p99_ms: d.lag_p99_ms,
                lag_max_ms: d.lag_max_ms,
            }
        },
        detail,
        replay_ok,
    }
}

/// Runs seeds `k, k + jobs, ...` of the list and prints one JSON record per seed.
fn worker(args: &Args, seeds: &[u64], k: u64) -> ExitCode {
    let stdout = std::io::stdout();
    for seed in seeds.iter().skip(k as usize).step_by(args.jobs.max(1) as usize) {
        let record = run_seed(args, *seed);
        let mut out = stdout.lock();
        let line = serde_json::to_string(&record).unwrap_or_default();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Runs the seeds in `--jobs` worker processes and collects their records.
fn run_workers(args: &Args, totals: &mut Totals) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let passthrough: Vec<String> = std::env::args().skip(1).collect();
    let mut children = Vec::new();
    for k in 0..args.jobs {
        let child = Command::new(&exe)
            .args(&passthrough)
            .args(["--worker", &k.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting worker {k}: {e}"))?;
        children.push(child);
    }
    let (tx, rx) = std::sync::mpsc::channel::<SeedRecord>();
    let mut readers = Vec::new();
    for child in &mut children {
        let Some(stdout) = child.stdout.take() else { continue };
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(record) = serde_json::from_str(&line) {
                    let _ = tx.send(record);
                }
            }
        }));
    }
    drop(tx);
    for record in rx {
        totals.add(record);
    }
    for r in readers {
        let _ = r.join();
    }
    for (k, mut child) in children.into_iter().enumerate() {
        let status = child.wait().map_err(|e| format!("worker {k}: {e}"))?;
        if !status.success() {
            return Err(format!("worker {k} failed: {status}"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    // `MERIDIAN_LOG=info sim --seed S` prints the members' own logs (off by default: thousands of lines a run).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("MERIDIAN_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let seeds: Vec<u64> = match (args.seed, args.deep) {
        (Some(s), _) => vec![s],
        (None, true) => (args.start..args.start + 100_000).collect(),
        (None, false) => (args.start..args.start + args.seeds).collect(),
    };
    if let Some(k) = args.worker {
        return worker(&args, &seeds, k);
    }
    let started = Instant::now();
    let mut totals = Totals::default();
    if args.jobs <= 1 || seeds.len() == 1 {
        for seed in &seeds {
            totals.add(run_seed(&args, *seed));
        }
    } else if let Err(e) = run_workers(&args, &mut totals) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let t = totals;
    say!("seeds run:            {}", t.seeds);
    say!("simulated time:       {:.1} s", t.sim_time.as_secs_f64());
    say!("wall time:            {:.1} s", started.elapsed().as_secs_f64());
    say!("operations checked:   {}", t.ops);
    say!("serializable reads:   {}", t.serializable_reads);
    let d = &t.discovery;
    say!(
        "discovery answers:    {} ({} judged against the committed registry, {} non-empty)",
        d.answers,
        d.judged,
        d.nonempty
    );
    let mut worst = t.lag_max_ms.clone();
    worst.sort_unstable();
    let at = |q: f64| worst.get(((worst.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    say!(
        "catalog lag (ms):     {} writes x founders measured; per-seed p99 up to {}; per-seed max: p50 {}, max {}",
        d.lags,
        d.lag_p99_ms,
        at(0.5),
        worst.last().copied().unwrap_or(0)
    );
    say!("histories valid:      {}", t.count("valid"));
    say!("histories invalid:    {}", t.count("invalid"));
    say!("histories unknown:    {}", t.count("unknown"));
    say!("simulation errors:    {}", t.count("error"));
    if args.replay {
        say!("replay mismatches:    {:?}", t.replay_mismatches);
    }
    say!("faults (scheduled / took effect):");
    for (k, tally) in &t.faults {
        say!("  {k:<20} {:>6} / {}", tally.scheduled, tally.took_effect);
    }
    say!("failover, leader lost to a successor leading a majority (simulated ms):");
    for (kind, samples) in &t.failovers {
        let mut took: Vec<u64> = samples.iter().flatten().map(|ns| ns / 1_000_000).collect();
        took.sort_unstable();
        let healed_first = samples.len() - took.len();
        let at = |q: f64| took.get(((took.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        say!(
            "  {kind:<20} {:>5} elected: p50 {:>5}  p99 {:>5}  max {:>5};  {healed_first} healed first",
            took.len(),
            at(0.5),
            at(0.99),
            took.last().copied().unwrap_or(0)
        );
    }
    let mut failures = t.failures.clone();
    failures.sort_by_key(|(seed, _)| *seed);
    let mut flags = format!("--fault-secs {}", args.fault_secs);
    if let Some(bug) = args.planted_bug {
        let name = bug.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
        flags.push_str(&format!(" --planted-bug {name}"));
    }
    for (seed, detail) in failures.iter().take(MAX_FULL_REPORTS) {
        say!("seed {seed}: {detail}");
        say!("  replay with: cargo run -p sim --release -- --seed {seed} {flags}");
    }
    if failures.len() > MAX_FULL_REPORTS {
        let rest: Vec<u64> = failures[MAX_FULL_REPORTS..].iter().map(|(s, _)| *s).collect();
        say!("... and {} more failing seeds: {rest:?}", rest.len());
    }
    let bad = t.count("invalid") + t.count("error") + t.replay_mismatches.len() as u64;
    match args.planted_bug {
        Some(_) if t.count("invalid") > 0 => {
            say!("planted bug caught");
            ExitCode::SUCCESS
        }
        Some(_) => {
            say!("planted bug NOT caught");
            ExitCode::FAILURE
        }
        None if bad == 0 => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}
