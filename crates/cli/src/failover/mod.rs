//! `meridian failover status|promote|demote`: the failover groups of the user's services through a member's
//! admin API (`/failover`). `status` lists every group (or one) with its active datacenter, fencing token, since
//! when, and the hooks that have not acknowledged the token yet; `promote GROUP DC` and `demote GROUP` switch a
//! group by an operator's order (through the log, with a new token). Admin URLs are tried in order until one
//! answers; TLS (`--cacert`) and the bearer token (`--admin-token`, `MERIDIAN_ADMIN_TOKEN`) as for the
//! playground. Output is a table, or the API's JSON with `-w json`.

mod view;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use meridian_server::failover_groups::{ActiveView, FailoverReport};

use crate::admin_http::{self, AdminClient, Answer, parse_url, segment};
use crate::tls_client::{self, ClientTlsFiles};

/// Flags of `meridian failover`.
#[derive(Args, Debug)]
pub struct FailoverArgs {
    /// Admin API URLs of members, tried in order until one answers (comma-separated or repeated).
    #[arg(long, global = true, value_delimiter = ',', default_value = "http://127.0.0.1:2381")]
    admin: Vec<String>,
    /// CA of the members' certificates, for https:// admin URLs.
    #[arg(long, global = true)]
    cacert: Option<PathBuf>,
    /// Bearer token of the admin API (prefer the environment variable: flags show in `ps`).
    #[arg(long, global = true, env = "MERIDIAN_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Output format.
    #[arg(short = 'w', long = "write-out", global = true, value_enum, default_value_t = Output::Table)]
    write_out: Output,
    /// Bound on each request, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    action: Action,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// A table for people.
    Table,
    /// The admin API's JSON.
    Json,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Every group (or GROUP): active datacenter, fencing token, since, hooks not yet acknowledged.
    Status {
        /// Only this group.
        group: Option<String>,
    },
    /// Make DC the group's active datacenter.
    Promote {
        /// The group.
        group: String,
        /// The datacenter to make active.
        dc: String,
    },
    /// Move the group to the next datacenter after its active one that is not down.
    Demote {
        /// The group.
        group: String,
    },
}

/// Runs `meridian failover`.
pub fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (method, path, body) = match &args.action {
        Action::Status { .. } => ("GET", "/failover".to_owned(), String::new()),
        Action::Promote { group, dc } => {
            ("POST", format!("/failover/{}/promote", segment(group)), serde_json::json!({ "dc": dc }).to_string())
        }
        Action::Demote { group } => ("POST", format!("/failover/{}/demote", segment(group)), String::new()),
    };
    let answer = runtime.block_on(send(&args, method, &path, &body))?;
    if !(200..300).contains(&answer.code) {
        let error = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(answer.body);
        bail!("{method} {path}: {error} (HTTP {})", answer.code);
    }
    let text = match &args.action {
        Action::Status { group } => {
            let mut report: FailoverReport = serde_json::from_str(&answer.body).context("unexpected /failover body")?;
            if let Some(name) = group {
                report.groups.retain(|g| &g.name.0 == name);
                if report.groups.is_empty() {
                    bail!("no failover group {name:?}");
                }
            }
            match args.write_out {
                Output::Json => serde_json::to_string_pretty(&report)?,
                Output::Table => view::status_table(&report.groups),
            }
        }
        Action::Promote { .. } | Action::Demote { .. } => {
            let view: ActiveView = serde_json::from_str(&answer.body).context("unexpected switch answer")?;
            match args.write_out {
                Output::Json => serde_json::to_string_pretty(&view)?,
                Output::Table => view::switched(&view),
            }
        }
    };
    println!("{text}");
    Ok(())
}

/// Sends the request to the first admin URL that answers.
async fn send(args: &FailoverArgs, method: &str, path: &str, body: &str) -> anyhow::Result<Answer> {
    let client = AdminClient {
        tls: match &args.cacert {
            Some(ca) => Some(ClientTlsFiles { cacert: ca.clone(), identity: None }.config(&[tls_client::HTTP11])?),
            None => None,
        },
        token: args.admin_token.clone().filter(|t| !t.is_empty()),
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut last = anyhow!("no --admin URL given");
    for url in &args.admin {
        let (addr, https) = parse_url("--admin", url)?;
        match admin_http::request(&client, https, addr, method, path, body, timeout).await {
            Ok(answer) => return Ok(answer),
            // That member does not answer: the next one may.
            Err(e) => last = e.context(format!("{url} did not answer")),
        }
    }
    Err(last)
}
