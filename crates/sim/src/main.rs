//! `sim`: runs seeded simulations of a whole Meridian cluster and checks every history.
//!
//! `cargo run -p meridian-sim --release -- --seeds 1000` runs seeds 0..1000; `--seed S` replays one;
//! `--planted-bug stale-reads` runs a deliberately broken server and succeeds only if the checker
//! catches it; `--replay` runs each seed twice and requires byte-identical histories.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use meridian_server::member::PlantedBug;
use meridian_sim::checker::CheckResult;
use meridian_sim::faults::FaultKind;
use meridian_sim::runner::{self, RunOptions, RunOutcome};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Bug {
    /// Followers answer linearizable reads from local state.
    StaleReads,
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
    /// Worker threads (each runs whole seeds).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Plant a known bug; the run succeeds only if some seed's history is found invalid.
    #[arg(long, value_enum)]
    planted_bug: Option<Bug>,
    /// Run every seed twice and require byte-identical histories.
    #[arg(long)]
    replay: bool,
    /// Length of the fault phase in simulated seconds.
    #[arg(long, default_value_t = 12)]
    fault_secs: u64,
    /// Write the history of --seed as JSON to this file.
    #[arg(long, requires = "seed")]
    dump: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Totals {
    seeds: u64,
    sim_time: Duration,
    ops: u64,
    valid: u64,
    invalid: u64,
    unknown: u64,
    errors: u64,
    faults: BTreeMap<FaultKind, u64>,
    failures: Vec<String>,
    failed_seeds: Vec<u64>,
    replay_mismatches: Vec<u64>,
}

/// Failures printed with their whole report; later ones are listed by seed.
const MAX_FULL_REPORTS: usize = 5;

impl Totals {
    fn add(&mut self, out: &RunOutcome, replay_ok: Option<bool>) {
        self.seeds += 1;
        self.sim_time += out.sim_time;
        self.ops += out.report.ops_checked as u64;
        for (k, n) in &out.faults {
            *self.faults.entry(*k).or_default() += n;
        }
        if replay_ok == Some(false) {
            self.replay_mismatches.push(out.seed);
        }
        if out.error.is_some() || out.report.is_invalid() {
            self.failed_seeds.push(out.seed);
        }
        if let Some(e) = &out.error {
            self.errors += 1;
            self.failures.push(format!("seed {}: simulation error: {e}", out.seed));
        } else if out.report.is_invalid() {
            self.invalid += 1;
            self.failures.push(format!("seed {}: INVALID history\n{}", out.seed, out.report));
        } else if out.report.is_unknown() || out.report.linearizability == CheckResult::Unknown {
            self.unknown += 1;
        } else {
            self.valid += 1;
        }
    }
}

fn options(args: &Args, seed: u64) -> RunOptions {
    let mut o = RunOptions::new(seed);
    o.fault_phase = Duration::from_secs(args.fault_secs);
    if args.planted_bug.is_some() {
        o.planted_bug = PlantedBug::StaleLinearizableReads;
    }
    o
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seeds: Vec<u64> = match (args.seed, args.deep) {
        (Some(s), _) => vec![s],
        (None, true) => (args.start..args.start + 100_000).collect(),
        (None, false) => (args.start..args.start + args.seeds).collect(),
    };
    let started = Instant::now();
    let totals = Arc::new(Mutex::new(Totals::default()));
    let next = Arc::new(AtomicU64::new(0));
    let seeds = Arc::new(seeds);
    let args = Arc::new(args);
    let workers: Vec<_> = (0..args.jobs.max(1))
        .map(|_| {
            let (totals, next, seeds, args) = (totals.clone(), next.clone(), seeds.clone(), args.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(&seed) = seeds.get(i) else { return };
                    let out = runner::run(&options(&args, seed));
                    let replay_ok = args.replay.then(|| {
                        let again = runner::run(&options(&args, seed));
                        again.history.to_canonical_bytes() == out.history.to_canonical_bytes()
                    });
                    if args.seed.is_some() {
                        println!(
                            "seed {seed}: history fingerprint {:016x}, {} ops, {} watch streams",
                            out.history.fingerprint(),
                            out.history.ops.len(),
                            out.history.watches.len()
                        );
                        if let Some(path) = &args.dump {
                            let _ = std::fs::write(path, out.history.to_canonical_bytes());
                        }
                    }
                    totals.lock().unwrap_or_else(|e| e.into_inner()).add(&out, replay_ok);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let t = totals.lock().unwrap_or_else(|e| e.into_inner());
    println!("seeds run:            {}", t.seeds);
    println!("simulated time:       {:.1} s", t.sim_time.as_secs_f64());
    println!("wall time:            {:.1} s", started.elapsed().as_secs_f64());
    println!("operations checked:   {}", t.ops);
    println!("histories valid:      {}", t.valid);
    println!("histories invalid:    {}", t.invalid);
    println!("histories unknown:    {}", t.unknown);
    println!("simulation errors:    {}", t.errors);
    if args.replay {
        println!("replay mismatches:    {:?}", t.replay_mismatches);
    }
    println!("faults injected:");
    for (k, n) in &t.faults {
        println!("  {k:<16} {n}");
    }
    // Full reports for the first few failures; the seeds of all of them.
    for f in t.failures.iter().take(MAX_FULL_REPORTS) {
        println!("{f}");
    }
    if t.failures.len() > MAX_FULL_REPORTS {
        println!(
            "... and {} more failing seeds: {:?}",
            t.failures.len() - MAX_FULL_REPORTS,
            &t.failed_seeds[MAX_FULL_REPORTS..]
        );
    }
    let bad = t.invalid + t.errors + t.replay_mismatches.len() as u64;
    match args.planted_bug {
        Some(_) if t.invalid > 0 => {
            println!("planted bug caught");
            ExitCode::SUCCESS
        }
        Some(_) => {
            println!("planted bug NOT caught");
            ExitCode::FAILURE
        }
        None if bad == 0 => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}
