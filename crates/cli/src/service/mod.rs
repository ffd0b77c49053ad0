//! `meridian service register|deregister|list|health|query`: service discovery through a member's
//! Consul-compatible HTTP API (`--http`, default `http://127.0.0.1:8500`, the API's default address). URLs are
//! tried in order until one answers; TLS with `--cacert`, and a token (an etcd auth token, sent as
//! `X-Consul-Token`) with `--token` or `MERIDIAN_TOKEN` when the cluster has auth enabled. Output is a table,
//! or the API's JSON with `-w json`.

mod register;
mod view;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::admin_http::{self, AdminClient, Answer, parse_url, segment};
use crate::tls_client::{self, ClientTlsFiles};
pub use register::RegisterArgs;

/// Flags of `meridian service`.
#[derive(Args, Debug)]
pub struct ServiceArgs {
    /// HTTP API URLs of members, tried in order until one answers (comma-separated or repeated).
    #[arg(long, global = true, value_delimiter = ',', default_value = "http://127.0.0.1:8500")]
    http: Vec<String>,
    /// CA of the members' certificates, for https:// URLs.
    #[arg(long, global = true)]
    cacert: Option<PathBuf>,
    /// Auth token (prefer the environment variable: flags show in `ps`).
    #[arg(long, global = true, env = "MERIDIAN_TOKEN", hide_env_values = true)]
    token: Option<String>,
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
    /// The API's JSON.
    Json,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Register an instance of a service (with the member answering as its agent: its node, datacenter, zone).
    Register(Box<RegisterArgs>),
    /// Deregister an instance by its id.
    Deregister {
        /// The instance id.
        id: String,
    },
    /// Every service with its tags.
    List,
    /// The instances of SERVICE with their checks, nearest first.
    Health {
        /// The service.
        service: String,
        /// Only instances whose checks all pass.
        #[arg(long)]
        passing: bool,
        /// Only instances with this tag (repeatable).
        #[arg(long)]
        tag: Vec<String>,
    },
    /// The ranked, failover-aware answer for SERVICE, tier by tier with the reason for each.
    Query {
        /// The service.
        service: String,
    },
}

/// Runs `meridian service`.
pub fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (method, path, body) = request_of(&args.action)?;
    let answer = runtime.block_on(send(&args, method, &path, &body))?;
    if !(200..300).contains(&answer.code) {
        bail!("{method} {path}: {} (HTTP {})", answer.body.trim(), answer.code);
    }
    let json = || -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&answer.body).with_context(|| format!("{path}: the answer is not JSON"))
    };
    let text = match (&args.action, args.write_out) {
        (Action::Register(r), _) => format!("registered {} ({})", r.id.as_deref().unwrap_or(&r.name), r.name),
        (Action::Deregister { id }, _) => format!("deregistered {id}"),
        (_, Output::Json) => serde_json::to_string_pretty(&json()?)?,
        (Action::List, Output::Table) => view::services(&json()?),
        (Action::Health { .. }, Output::Table) => view::health(&json()?),
        (Action::Query { .. }, Output::Table) => view::query(&json()?),
    };
    println!("{}", text.trim_end());
    Ok(())
}

/// The HTTP request an action makes.
fn request_of(action: &Action) -> anyhow::Result<(&'static str, String, String)> {
    Ok(match action {
        Action::Register(r) => ("PUT", "/v1/agent/service/register".to_owned(), r.body()?.to_string()),
        Action::Deregister { id } => ("PUT", format!("/v1/agent/service/deregister/{}", segment(id)), String::new()),
        Action::List => ("GET", "/v1/catalog/services".to_owned(), String::new()),
        Action::Health { service, passing, tag } => {
            let mut query: Vec<String> = tag.iter().map(|t| format!("tag={}", segment(t))).collect();
            if *passing {
                query.push("passing".to_owned());
            }
            let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
            ("GET", format!("/v1/health/service/{}{query}", segment(service)), String::new())
        }
        Action::Query { service } => ("GET", format!("/v1/query/{}", segment(service)), String::new()),
    })
}

/// Sends the request to the first URL that answers.
async fn send(args: &ServiceArgs, method: &str, path: &str, body: &str) -> anyhow::Result<Answer> {
    let client = AdminClient {
        tls: match &args.cacert {
            Some(ca) => Some(ClientTlsFiles { cacert: ca.clone(), identity: None }.config(&[tls_client::HTTP11])?),
            None => None,
        },
        token: args.token.clone().filter(|t| !t.is_empty()),
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut last = anyhow!("no --http URL given");
    for url in &args.http {
        let (addr, https) = parse_url("--http", url)?;
        match admin_http::request(&client, https, addr, method, path, body, timeout).await {
            Ok(answer) => return Ok(answer),
            // That member does not answer: the next one may.
            Err(e) => last = e.context(format!("{url} did not answer")),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServiceArgs,
    }

    fn parse(argv: &[&str]) -> ServiceArgs {
        Cli::try_parse_from(std::iter::once("service").chain(argv.iter().copied())).unwrap().args
    }

    #[test]
    fn actions_become_consul_requests() {
        let (m, p, b) = request_of(&parse(&["deregister", "web 1"]).action).unwrap();
        assert_eq!((m, p.as_str(), b.as_str()), ("PUT", "/v1/agent/service/deregister/web%201", ""));
        let (_, p, _) = request_of(&parse(&["health", "web", "--passing", "--tag", "v1"]).action).unwrap();
        assert_eq!(p, "/v1/health/service/web?tag=v1&passing");
        let (_, p, _) = request_of(&parse(&["health", "web"]).action).unwrap();
        assert_eq!(p, "/v1/health/service/web");
        let (m, p, _) = request_of(&parse(&["list"]).action).unwrap();
        assert_eq!((m, p.as_str()), ("GET", "/v1/catalog/services"));
        let (_, p, _) = request_of(&parse(&["query", "web"]).action).unwrap();
        assert_eq!(p, "/v1/query/web");
    }

    #[test]
    fn several_urls_are_accepted_and_bad_ones_refused() {
        let args = parse(&["--http", "http://127.0.0.10:8500,http://127.0.0.11:8500", "list"]);
        assert_eq!(args.http.len(), 2);
        let err = parse_url("--http", "127.0.0.1:8500").unwrap_err().to_string();
        assert!(err.contains("expected http://"), "{err}");
    }
}
