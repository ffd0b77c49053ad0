//! The flags of `meridian service register` and the Consul registration body they make
//! (`PUT /v1/agent/service/register`): one instance, with at most one check (HTTP, TCP or TTL).

use anyhow::bail;
use clap::Args;
use serde_json::{Map, Value, json};

/// Flags of `meridian service register`.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The service name.
    pub name: String,
    /// The instance id (default: the service name).
    #[arg(long)]
    pub id: Option<String>,
    /// Where clients reach it: an IP address or a host name.
    #[arg(long)]
    pub address: String,
    /// Its port.
    #[arg(long)]
    pub port: u16,
    /// A tag (repeatable).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Metadata as KEY=VALUE (repeatable).
    #[arg(long)]
    pub meta: Vec<String>,
    /// Its zone, when it is not the answering member's.
    #[arg(long)]
    pub zone: Option<String>,
    /// An HTTP check of this URL (2xx passing, 429 warning, else critical).
    #[arg(long, conflicts_with_all = ["tcp_check", "ttl"])]
    pub http_check: Option<String>,
    /// A TCP check connecting to HOST:PORT.
    #[arg(long, conflicts_with = "ttl")]
    pub tcp_check: Option<String>,
    /// A TTL check: the instance must report within this time (`10s`, `1m`).
    #[arg(long)]
    pub ttl: Option<String>,
    /// How often the HTTP or TCP check runs.
    #[arg(long, default_value = "10s")]
    pub interval: String,
    /// How long one HTTP or TCP check may take.
    #[arg(long, default_value = "5s")]
    pub check_timeout: String,
    /// Remove the instance after its check has been critical this long.
    #[arg(long)]
    pub deregister_after: Option<String>,
}

impl RegisterArgs {
    /// The registration body.
    pub fn body(&self) -> anyhow::Result<Value> {
        let mut meta = Map::new();
        for pair in &self.meta {
            let Some((k, v)) = pair.split_once('=') else { bail!("--meta {pair}: expected KEY=VALUE") };
            meta.insert(k.to_owned(), Value::String(v.to_owned()));
        }
        if let Some(zone) = &self.zone {
            meta.insert("meridian-zone".to_owned(), Value::String(zone.clone()));
        }
        let mut body = json!({
            "Name": self.name,
            "ID": self.id.clone().unwrap_or_else(|| self.name.clone()),
            "Address": self.address,
            "Port": self.port,
            "Tags": self.tag,
            "Meta": meta,
        });
        let mut check = Map::new();
        if let Some(url) = &self.http_check {
            check.insert("HTTP".into(), json!(url));
        } else if let Some(target) = &self.tcp_check {
            check.insert("TCP".into(), json!(target));
        } else if let Some(ttl) = &self.ttl {
            check.insert("TTL".into(), json!(ttl));
        }
        if !check.is_empty() {
            if self.ttl.is_none() {
                check.insert("Interval".into(), json!(self.interval));
                check.insert("Timeout".into(), json!(self.check_timeout));
            }
            if let Some(after) = &self.deregister_after {
                check.insert("DeregisterCriticalServiceAfter".into(), json!(after));
            }
            body["Check"] = Value::Object(check);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RegisterArgs,
    }

    fn body(argv: &[&str]) -> anyhow::Result<Value> {
        Cli::try_parse_from(std::iter::once("register").chain(argv.iter().copied())).unwrap().args.body()
    }

    #[test]
    fn an_http_checked_instance_with_tags_meta_and_zone() {
        let b = body(&[
            "web",
            "--id",
            "web-1",
            "--address",
            "127.0.0.1",
            "--port",
            "8080",
            "--tag",
            "v1",
            "--tag",
            "blue",
            "--meta",
            "version=1.2",
            "--zone",
            "z1",
            "--http-check",
            "http://127.0.0.1:8080/health",
            "--interval",
            "2s",
        ])
        .unwrap();
        assert_eq!(b["Name"], "web");
        assert_eq!(b["ID"], "web-1");
        assert_eq!(b["Port"], 8080);
        assert_eq!(b["Tags"], json!(["v1", "blue"]));
        assert_eq!(b["Meta"], json!({"version": "1.2", "meridian-zone": "z1"}));
        assert_eq!(b["Check"], json!({"HTTP": "http://127.0.0.1:8080/health", "Interval": "2s", "Timeout": "5s"}));
    }

    #[test]
    fn a_ttl_check_has_no_interval_and_bad_meta_is_refused() {
        let b = body(&["db", "--address", "db.local", "--port", "5432", "--ttl", "15s"]).unwrap();
        assert_eq!(b["ID"], "db", "the id defaults to the name");
        assert_eq!(b["Check"], json!({"TTL": "15s"}));
        assert!(b.get("Check").unwrap().get("Interval").is_none());
        let none = body(&["db", "--address", "db.local", "--port", "5432"]).unwrap();
        assert!(none.get("Check").is_none(), "no check flag, no check");
        let err = body(&["db", "--address", "x", "--port", "1", "--meta", "novalue"]).unwrap_err();
        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
    }
}
