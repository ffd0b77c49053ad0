//! The instance model: one running copy of a service, where it is (node, address, port, datacenter, zone),
//! how it is labelled (tags, meta) and how much traffic it takes (weights).
//!
//! Decisions:
//! - **The address is never empty in the model.** Consul lets a registration leave `Address` empty and means
//!   the node's address; the Consul conversion ([`crate::consul`]) fills it in from the node's at registration,
//!   so DNS and HTTP answers never have to resolve it later.
//! - **Port 0 is refused** (Consul allows it): SRV records and health checks need a port.
//! - **Limits** follow Consul's where it has them: at most 64 meta keys, keys of at most 128 bytes made of
//!   letters, digits, `_` and `-` and not starting with `consul-`, values of at most 512 bytes; and, ours, at
//!   most 64 tags of 1 to 255 bytes without control characters.

use std::collections::BTreeMap;
use std::net::IpAddr;

use meridian_types::{DcName, LeaseId, ZoneName};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shown};
use crate::name::{InstanceId, InstanceRef, NodeName, ServiceName, is_dns_label};

/// The most tags an instance may carry.
pub const MAX_TAGS: usize = 64;
/// The longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 255;
/// The most meta keys an instance may carry.
pub const MAX_META: usize = 64;
/// The longest meta key, in bytes.
pub const MAX_META_KEY_LEN: usize = 128;
/// The longest meta value, in bytes.
pub const MAX_META_VALUE_LEN: usize = 512;
/// The longest address (a DNS name's limit), in bytes.
pub const MAX_ADDRESS_LEN: usize = 253;

/// How much DNS traffic an instance takes, by its health: the SRV weight it is given. Consul's defaults are 1
/// and 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// The weight while passing, 1 to 65535.
    pub passing: u16,
    /// The weight while warning, 0 to 65535.
    pub warning: u16,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { passing: 1, warning: 1 }
    }
}

/// One registered instance of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The service it belongs to.
    pub service: ServiceName,
    /// Its id, unique among the service's instances on its node.
    pub id: InstanceId,
    /// The node it is registered on (for a registration through the agent API, the member that took it).
    pub node: NodeName,
    /// The node's address, for Consul's `Node.Address` and `<node>.node` DNS answers; may be empty if unknown.
    #[serde(default)]
    pub node_address: String,
    /// Where clients reach it: an IP address or a host name. Never empty.
    pub address: String,
    /// Its port, 1 to 65535.
    pub port: u16,
    /// Free-form labels, in the order given; `<tag>.<service>.service` DNS names and `?tag=` filter on them.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form key/value metadata.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Its datacenter.
    pub dc: DcName,
    /// Its zone inside the datacenter, if known. An instance without one is never in a client's zone tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<ZoneName>,
    /// Its SRV weights.
    #[serde(default)]
    pub weights: Weights,
    /// The lease its registration is bound to, if any: the registration and its check records are written
    /// with this lease, so they disappear when the lease expires (the instance's agent died). `None`: they stay
    /// until deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseId>,
}

impl Instance {
    /// Where this instance lives.
    pub fn reference(&self) -> InstanceRef {
        InstanceRef { service: self.service.clone(), node: self.node.clone(), id: self.id.clone() }
    }

    /// Whether it carries every one of `tags` (Consul's `?tag=` given several times).
    pub fn has_tags(&self, tags: &[String]) -> bool {
        tags.iter().all(|t| self.tags.contains(t))
    }

    /// Checks every rule of the module docs. Names and ids are valid by construction.
    pub fn validate(&self) -> Result<()> {
        validate_address("address", &self.address)?;
        if !self.node_address.is_empty() {
            validate_address("node address", &self.node_address)?;
        }
        if self.port == 0 {
            return Err(Error::BadPort(0));
        }
        validate_tags(&self.tags)?;
        validate_meta(&self.meta)?;
        if self.weights.passing == 0 {
            let why = "must be at least 1".to_owned();
            return Err(Error::Invalid { what: "passing weight", value: "0".into(), why });
        }
        validate_location("datacenter", &self.dc.0)?;
        if let Some(zone) = &self.zone {
            validate_location("zone", &zone.0)?;
        }
        Ok(())
    }
}

/// Checks that `addr` is an IP address or a host name (DNS labels joined by dots).
pub fn validate_address(what: &'static str, addr: &str) -> Result<()> {
    if addr.is_empty() {
        return Err(Error::Missing { what });
    }
    if addr.len() > MAX_ADDRESS_LEN {
        return Err(Error::TooLong { what, len: addr.len(), max: MAX_ADDRESS_LEN });
    }
    let host = addr.strip_suffix('.').unwrap_or(addr);
    if addr.parse::<IpAddr>().is_ok() || host.split('.').all(is_dns_label) {
        return Ok(());
    }
    let why = "must be an IP address or a host name".to_owned();
    Err(Error::Invalid { what, value: shown(addr), why })
}

fn validate_location(what: &'static str, name: &str) -> Result<()> {
    if is_dns_label(name) {
        return Ok(());
    }
    if name.is_empty() {
        return Err(Error::Missing { what });
    }
    Err(Error::Invalid { what, value: shown(name), why: "must be a DNS label".into() })
}

fn validate_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::TooMany { what: "tags", count: tags.len(), max: MAX_TAGS });
    }
    for tag in tags {
        if tag.is_empty() {
            return Err(Error::Missing { what: "tag text" });
        }
        if tag.len() > MAX_TAG_LEN {
            return Err(Error::TooLong { what: "tag", len: tag.len(), max: MAX_TAG_LEN });
        }
        if tag.chars().any(char::is_control) {
            let why = "control characters are not allowed".to_owned();
            return Err(Error::Invalid { what: "tag", value: shown(tag), why });
        }
    }
    Ok(())
}

fn validate_meta(meta: &BTreeMap<String, String>) -> Result<()> {
    if meta.len() > MAX_META {
        return Err(Error::TooMany { what: "meta keys", count: meta.len(), max: MAX_META });
    }
    for (key, value) in meta {
        if key.is_empty() {
            return Err(Error::Missing { what: "meta key" });
        }
        if key.len() > MAX_META_KEY_LEN {
            return Err(Error::TooLong { what: "meta key", len: key.len(), max: MAX_META_KEY_LEN });
        }
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            let why = "letters, digits, '_' and '-' only".to_owned();
            return Err(Error::Invalid { what: "meta key", value: shown(key), why });
        }
        if key.starts_with("consul-") {
            let why = "the prefix consul- is reserved".to_owned();
            return Err(Error::Invalid { what: "meta key", value: shown(key), why });
        }
        if value.len() > MAX_META_VALUE_LEN {
            return Err(Error::TooLong { what: "meta value", len: value.len(), max: MAX_META_VALUE_LEN });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
