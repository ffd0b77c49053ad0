//! `meridian status`: the cluster as its members' admin APIs see it, in one table (or `-w json`): every member
//! with its role and lag, the leader and why it is there, and each datacenter's verdict. Given several admin
//! URLs it asks them all and prefers the leader's report, which alone knows the followers' lag.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, ValueEnum};
use meridian_server::admin::StatusReport;

use crate::admin_http::{self, AdminClient};
use crate::tls_client::{self, ClientTlsFiles};

/// How long one member may take to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// The chosen member's whole status report, as JSON.
    Json,
}

/// `meridian status` flags.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Admin URL of a member (`http://127.0.0.1:2381`); repeat to ask several, the leader's answer is shown.
    #[arg(long = "admin", required = true, env = "MERIDIAN_ADMIN")]
    admins: Vec<String>,
    /// CA of the members' certificates, for `https://` admin URLs.
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// The admin token (`Authorization: Bearer`), when the members require one.
    #[arg(long, env = "MERIDIAN_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Output format.
    #[arg(short = 'w', long = "write-out", value_enum, default_value_t = Format::Table)]
    write_out: Format,
}

/// Runs `meridian status`.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = AdminClient {
        tls: match &args.cacert {
            Some(ca) => Some(ClientTlsFiles { cacert: ca.clone(), identity: None }.config(&[tls_client::HTTP11])?),
            None => None,
        },
        token: args.admin_token.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for url in &args.admins {
        let (addr, https) = admin_http::parse_url("--admin", url)?;
        match rt.block_on(admin_http::status(&client, https, addr, TIMEOUT)) {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(format!("{url}: {e:#}")),
        }
    }
    let Some(chosen) = reports.iter().find(|r| r.is_leader).or(reports.first()) else {
        bail!("no member answered: {}", errors.join("; "));
    };
    match args.write_out {
        Format::Json => println!("{}", serde_json::to_string_pretty(chosen)?),
        Format::Table => print!("{}", render(chosen, &errors)),
    }
    Ok(())
}

/// The tables for `report`, with the members that did not answer.
pub fn render(report: &StatusReport, errors: &[String]) -> String {
    let mut out = String::new();
    let seen_from = if report.is_leader { "the leader" } else { "a follower: no lag known" };
    let _ = writeln!(out, "cluster as seen by {} ({}), term {}", report.name, seen_from, report.term);
    match &report.leader {
        Some(l) => {
            let _ = writeln!(out, "leader: {} ({}): {}", l.name, l.dc, report.leader_reason);
        }
        None => {
            let _ = writeln!(out, "leader: none");
        }
    }
    let _ = writeln!(out, "\n{:<10} {:<8} {:<8} {:>8} {:>8}", "MEMBER", "DC", "ROLE", "MATCHED", "LAG");
    for m in &report.members {
        let num = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let mark = if report.leader.as_ref().is_some_and(|l| l.name == m.name) { " *" } else { "" };
        let _ = writeln!(out, "{:<10} {:<8} {:<8} {:>8} {:>8}{mark}", m.name, m.dc, m.role, num(m.matched), num(m.lag));
    }
    let _ = writeln!(out, "\n{:<8} {:<12} {:<26} {:>5}", "DC", "VERDICT", "SINCE", "TERM");
    if report.verdicts.is_empty() {
        let _ = writeln!(out, "(none written yet)");
    }
    for (dc, v) in &report.verdicts {
        let _ = writeln!(out, "{:<8} {:<12} {:<26} {:>5}", dc, v.state, v.since, v.term);
    }
    if !report.alarms.is_empty() {
        let _ = writeln!(out, "\nalarms: {}", report.alarms.join(", "));
    }
    for e in errors {
        let _ = writeln!(out, "unreachable: {e}");
    }
    out
}
