//! Failover groups of the user's services, as the topology file (`[[failover_groups]]`) and the admin API
//! (`/meridian/groups/<name>`) define them: an ordered list of datacenters (most preferred first), whether the
//! group fails back by itself, and the hooks to call when its active datacenter changes. Pure: parsing and
//! validation only. A hook is checked as it is parsed (exactly one of `webhook` or `command`), so a definition
//! that parsed always names something callable.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{DcName, GroupName};

/// How long one hook call may take when its definition does not say.
pub const DEFAULT_HOOK_TIMEOUT_MS: u64 = 5000;

/// The longest group name: it is a key component and a path segment of the admin API.
pub const MAX_GROUP_NAME_LEN: usize = 64;

/// A name the admin API's routes use themselves (`/failover/groups/<name>`), so no group may be called it.
const RESERVED_GROUP_NAME: &str = "groups";

/// Whether a group moves back to a more preferred datacenter by itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Failback {
    /// Once a more preferred datacenter has been up for the hold, the group moves back to it.
    #[default]
    Automatic,
    /// The group stays where failover put it until an operator moves it.
    Manual,
}

impl Failback {
    /// The lowercase name used in files, JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Failback::Automatic => "automatic",
            Failback::Manual => "manual",
        }
    }
}

/// A webhook's URL, `http://host[:port][/path]` or `https://...`, checked when parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WebhookUrl {
    url: String,
    /// Where the scheme (with its `://`) ends in `url`.
    scheme_end: usize,
    /// Where `host[:port]` ends in `url`.
    authority_end: usize,
}

impl WebhookUrl {
    /// Checks `url`: `http://` or `https://`, a non-empty host, a port (if given) in 1-65535.
    pub fn parse(url: &str) -> Result<WebhookUrl, &'static str> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or("a webhook URL must start with http:// or https://")?;
        let scheme_end = url.len() - rest.len();
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = match authority.rsplit_once(':') {
            Some((host, port)) => {
                match port.parse::<u16>() {
                    Ok(0) | Err(_) => return Err("the port must be 1-65535"),
                    Ok(_) => {}
                }
                host
            }
            None => authority,
        };
        if host.is_empty() {
            return Err("the URL has no host");
        }
        let path = &rest[authority.len()..];
        if !(path.is_empty() || path.starts_with('/')) {
            return Err("the path must start with /");
        }
        Ok(WebhookUrl { url: url.to_owned(), scheme_end, authority_end: scheme_end + authority.len() })
    }

    /// The whole URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Whether the webhook speaks TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// `host:port` to connect to (port 80, or 443 for https, when the URL names none).
    pub fn connect_to(&self) -> String {
        let authority = self.authority();
        if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if self.is_tls() { 443 } else { 80 })
        }
    }

    /// `host[:port]` as written, for the `Host` header.
    pub fn authority(&self) -> &str {
        &self.url[self.scheme_end..self.authority_end]
    }

    /// The host alone: the name a TLS receiver's certificate must carry.
    pub fn host(&self) -> &str {
        let authority = self.authority();
        match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => authority,
        }
    }

    /// The path and query to request (`/` when the URL has none).
    pub fn path(&self) -> &str {
        match &self.url[self.authority_end..] {
            "" => "/",
            p => p,
        }
    }
}

/// What a hook calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HookTarget {
    /// An HTTP POST of the change as JSON; success is a 2xx answer. An `https://` receiver must present a
    /// certificate for its host from `ca_file`'s CAs (by default the system's bundle).
    Webhook {
        /// Where to post.
        url: WebhookUrl,
        /// PEM file of the CAs an https receiver's certificate must chain to; `None`: the system's bundle.
        ca_file: Option<String>,
    },
    /// A program and its arguments, run with the change in its environment; success is exit status 0.
    Command(Vec<String>),
}

impl HookTarget {
    /// A short description for logs, audit records and tables: `webhook http://...` or `command prog`.
    pub fn describe(&self) -> String {
        match self {
            HookTarget::Webhook { url, .. } => format!("webhook {}", url.as_str()),
            HookTarget::Command(argv) => format!("command {}", argv.join(" ")),
        }
    }
}

/// One hook of a group: what to call and how long one call may take.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "HookFields", into = "HookFields")]
pub struct Hook {
    /// What is called.
    pub target: HookTarget,
    /// Bound on one call; a call still running then is abandoned (a command is killed) and retried.
    pub timeout_ms: u64,
}

/// A hook as written: exactly one of `webhook` and `command`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    /// For an https webhook: the CAs to trust (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl TryFrom<HookFields> for Hook {
    type Error = String;

    fn try_from(f: HookFields) -> Result<Hook, String> {
        let target = match (f.webhook, f.command) {
            (Some(_), Some(_)) => return Err("a hook has either webhook or command, not both".into()),
            (None, None) => return Err("a hook needs webhook = \"http(s)://host:port/path\" or command = [...]".into()),
            (Some(url), None) => {
                let parsed = WebhookUrl::parse(&url).map_err(|why| format!("webhook {url:?}: {why}"))?;
                if f.ca_file.is_some() && !parsed.is_tls() {
                    return Err(format!("webhook {url:?}: ca_file is for https:// webhooks"));
                }
                HookTarget::Webhook { url: parsed, ca_file: f.ca_file }
            }
            (None, Some(_)) if f.ca_file.is_some() => {
                return Err("ca_file is for https:// webhooks, not commands".into());
            }
            (None, Some(argv)) => {
                if argv.first().is_none_or(|prog| prog.trim().is_empty()) {
                    return Err("a hook's command must name a program: command = [\"prog\", \"arg\", ...]".into());
                }
                HookTarget::Command(argv)
            }
        };
        let timeout_ms = f.timeout_ms.unwrap_or(DEFAULT_HOOK_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err("a hook's timeout_ms must be positive".into());
        }
        Ok(Hook { target, timeout_ms })
    }
}

impl From<Hook> for HookFields {
    fn from(h: Hook) -> HookFields {
        let (webhook, command, ca_file) = match h.target {
            HookTarget::Webhook { url, ca_file } => (Some(url.url), None, ca_file),
            HookTarget::Command(argv) => (None, Some(argv), None),
        };
        HookFields { webhook, command, ca_file, timeout_ms: Some(h.timeout_ms) }
    }
}

/// One failover group's definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverGroupSpec {
    /// The group's name.
    pub name: GroupName,
    /// Its datacenters, most preferred first.
    pub datacenters: Vec<DcName>,
    /// Whether it moves back by itself (default automatic).
    #[serde(default)]
    pub failback: Failback,
    /// How long a more preferred datacenter must have been up before an automatic failback; `None`: the
    /// topology policy's `failback_hold_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback_hold_ms: Option<u64>,
    /// Called, each until it acknowledges, whenever the active datacenter changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
}

/// Why a failover group definition is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The name cannot be a key component and a path segment.
    #[error(
        "failover group name {0:?} is not valid: use 1-{MAX_GROUP_NAME_LEN} characters of A-Z a-z 0-9 . _ -, \
         starting with a letter or digit (and not \"groups\")"
    )]
    BadName(String),
    /// Two groups share a name.
    #[error("failover group {0:?} is defined twice")]
    Duplicate(String),
    /// The datacenter list is empty.
    #[error("failover group {0:?} lists no datacenters")]
    NoDatacenters(String),
    /// A datacenter of the list has no members.
    #[error("failover group {group:?} names datacenter {dc:?}, which is not a datacenter of the topology ({known})")]
    UnknownDc {
        /// The group.
        group: String,
        /// The unknown datacenter.
        dc: String,
        /// The topology's datacenters, comma-separated.
        known: String,
    },
    /// A datacenter appears twice in the list.
    #[error("failover group {group:?} lists datacenter {dc:?} twice")]
    DuplicateDc {
        /// The group.
        group: String,
        /// The repeated datacenter.
        dc: String,
    },
}

/// Whether `name` may name a group: a key component and a single URL path segment.
pub fn valid_group_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && name.len() <= MAX_GROUP_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name != RESERVED_GROUP_NAME
}

impl FailoverGroupSpec {
    /// Checks the definition against the cluster's datacenters.
    pub fn validate(&self, datacenters: &BTreeSet<DcName>) -> Result<(), GroupError> {
        let group = &self.name.0;
        if !valid_group_name(group) {
            return Err(GroupError::BadName(group.clone()));
        }
        if self.datacenters.is_empty() {
            return Err(GroupError::NoDatacenters(group.clone()));
        }
        let mut seen = BTreeSet::new();
        for dc in &self.datacenters {
            if !datacenters.contains(dc) {
                let known: Vec<&str> = datacenters.iter().map(|d| d.0.as_str()).collect();
                return Err(GroupError::UnknownDc { group: group.clone(), dc: dc.0.clone(), known: known.join(", ") });
            }
            if !seen.insert(dc) {
                return Err(GroupError::DuplicateDc { group: group.clone(), dc: dc.0.clone() });
            }
        }
        Ok(())
    }

    /// The failback hold: the group's own, else `default` (the topology policy's).
    pub fn hold_ms(&self, default: u64) -> u64 {
        self.failback_hold_ms.unwrap_or(default)
    }
}

/// Checks every group of a topology: each valid, no name twice.
pub fn validate_groups(groups: &[FailoverGroupSpec], datacenters: &BTreeSet<DcName>) -> Result<(), GroupError> {
    let mut names = BTreeSet::new();
    for g in groups {
        g.validate(datacenters)?;
        if !names.insert(&g.name) {
            return Err(GroupError::Duplicate(g.name.0.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
