//! Where the registry lives in the store, under the reserved prefix `/meridian/` (which clients may read and
//! watch but not write):
//!
//! - `/meridian/services/<service>/<node>/<instance-id>`: the registration (a [`crate::Registration`] as JSON:
//!   the instance and its check definitions);
//! - `/meridian/health/<service>/<node>/<instance-id>/<check-id>`: one check's state (a
//!   [`crate::CheckRecord`]: status, output, since).
//!
//! Why this layout:
//! - **One prefix per service** under each root, so a blocking query or DNS cache for service `web` watches
//!   `/meridian/services/web/` and `/meridian/health/web/` and wakes for nothing else.
//! - **Registrations and health apart**: health flips are frequent; catalog readers (`/v1/catalog/*`) watch
//!   only the registrations and are not woken by them.
//! - **The node in the key**: Consul's identity of an instance is (node, service id), and clients that give no
//!   id get the service name as id; two nodes registering `web` must not overwrite each other.
//! - **Leases**: a registration bound to a lease is written with it, and so are its check records, so when the
//!   lease expires every key of the instance disappears and watchers see the deletions.
//!
//! Both roots are under `meridian_types::reserved::RESERVED_PREFIX` (a test checks it), so clients cannot write
//! them. Every component is a validated name without `/`, so splitting a key on `/` is unambiguous.

use crate::error::{Error, Result};
use crate::name::{CheckId, CheckRef, InstanceId, InstanceRef, NodeName, ServiceName};

/// The root of every registration.
pub const SERVICES_PREFIX: &str = "/meridian/services/";
/// The root of every check state record.
pub const HEALTH_PREFIX: &str = "/meridian/health/";

/// The key of an instance's registration.
pub fn instance_key(r: &InstanceRef) -> String {
    format!("{SERVICES_PREFIX}{}/{}/{}", r.service, r.node, r.id)
}

/// The key of a check's state record.
pub fn check_key(r: &CheckRef) -> String {
    let i = &r.instance;
    format!("{HEALTH_PREFIX}{}/{}/{}/{}", i.service, i.node, i.id, r.check)
}

/// The prefix of every registration of `service` (watch it for the catalog of one service).
pub fn service_prefix(service: &ServiceName) -> String {
    format!("{SERVICES_PREFIX}{service}/")
}

/// The prefix of every check record of `service`.
pub fn service_health_prefix(service: &ServiceName) -> String {
    format!("{HEALTH_PREFIX}{service}/")
}

/// The prefix of every check record of one instance (delete it with the registration).
pub fn instance_health_prefix(r: &InstanceRef) -> String {
    format!("{HEALTH_PREFIX}{}/{}/{}/", r.service, r.node, r.id)
}

/// A registry key, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryKey {
    /// A registration's key.
    Instance(InstanceRef),
    /// A check state record's key.
    Check(CheckRef),
}

/// Parses a registry key back into what it locates. Keys outside the two roots, with the wrong number of
/// components, or with a component that is not a valid name are errors.
pub fn parse_key(key: &[u8]) -> Result<RegistryKey> {
    let text = String::from_utf8_lossy(key);
    let bad = |why| Error::BadKey { key: text.to_string(), why };
    let text_ref: &str = &text;
    let (rest, want) = if let Some(rest) = text_ref.strip_prefix(SERVICES_PREFIX) {
        (rest, 3)
    } else if let Some(rest) = text_ref.strip_prefix(HEALTH_PREFIX) {
        (rest, 4)
    } else {
        return Err(bad("not under /meridian/services/ or /meridian/health/"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() != want {
        return Err(bad(if want == 3 {
            "expected <service>/<node>/<instance-id>"
        } else {
            "expected <service>/<node>/<instance-id>/<check-id>"
        }));
    }
    let invalid = |_| bad("a component is not a valid name");
    let instance = InstanceRef {
        service: ServiceName::new(parts[0]).map_err(invalid)?,
        node: NodeName::new(parts[1]).map_err(invalid)?,
        id: InstanceId::new(parts[2]).map_err(invalid)?,
    };
    if parts[0] != instance.service.as_str() {
        return Err(bad("the service name is not in lower case"));
    }
    if want == 3 {
        return Ok(RegistryKey::Instance(instance));
    }
    Ok(RegistryKey::Check(CheckRef { instance, check: CheckId::new(parts[3]).map_err(invalid)? }))
}

#[cfg(test)]
mod tests {
    use meridian_types::reserved::{RESERVED_PREFIX, prefix_end, touches_reserved};

    use super::*;

    fn web1() -> InstanceRef {
        InstanceRef {
            service: ServiceName::new("web").unwrap(),
            node: NodeName::new("node-1").unwrap(),
            id: InstanceId::new("web-1").unwrap(),
        }
    }

    #[test]
    fn keys_are_built_under_the_reserved_prefix() {
        let check = CheckRef { instance: web1(), check: CheckId::new("service:web-1").unwrap() };
        assert_eq!(instance_key(&web1()), "/meridian/services/web/node-1/web-1");
        assert_eq!(check_key(&check), "/meridian/health/web/node-1/web-1/service:web-1");
        assert_eq!(service_prefix(&web1().service), "/meridian/services/web/");
        assert_eq!(service_health_prefix(&web1().service), "/meridian/health/web/");
        assert_eq!(instance_health_prefix(&web1()), "/meridian/health/web/node-1/web-1/");
        assert!(check_key(&check).starts_with(&instance_health_prefix(&web1())));
        for root in [SERVICES_PREFIX, HEALTH_PREFIX] {
            assert!(root.as_bytes().starts_with(RESERVED_PREFIX), "{root} is reserved, so clients cannot write it");
        }
        for key in [instance_key(&web1()), check_key(&check)] {
            assert!(touches_reserved(key.as_bytes(), b""), "{key}");
        }
        assert!(touches_reserved(SERVICES_PREFIX.as_bytes(), &prefix_end(SERVICES_PREFIX)));
    }

    #[test]
    fn a_service_prefix_does_not_catch_a_longer_service_name() {
        let other = instance_key(&InstanceRef { service: ServiceName::new("web2").unwrap(), ..web1() });
        assert!(!other.starts_with(&service_prefix(&web1().service)));
    }

    #[test]
    fn keys_parse_back() {
        let check = CheckRef { instance: web1(), check: CheckId::new("c1").unwrap() };
        assert_eq!(parse_key(instance_key(&web1()).as_bytes()).unwrap(), RegistryKey::Instance(web1()));
        assert_eq!(parse_key(check_key(&check).as_bytes()).unwrap(), RegistryKey::Check(check));
    }

    #[test]
    fn foreign_or_malformed_keys_are_errors() {
        let cases: [(&[u8], &str); 8] = [
            (b"/meridian/dc/dc-a", "not under"),
            (b"/meridian/services/web/node-1", "expected <service>/<node>/<instance-id>"),
            (b"/meridian/services/web/node-1/web-1/extra", "expected <service>/<node>/<instance-id>"),
            (b"/meridian/health/web/node-1/web-1", "<check-id>"),
            (b"/meridian/services/web//web-1", "not a valid name"),
            (b"/meridian/services/we_b/node-1/web-1", "not a valid name"),
            (b"/meridian/services/Web/node-1/web-1", "lower case"),
            (b"/meridian/health/web/node-1/web-1/a b", "not a valid name"),
        ];
        for (key, want) in cases {
            let msg = parse_key(key).unwrap_err().message();
            assert!(msg.contains(want), "{}: {msg}", String::from_utf8_lossy(key));
        }
    }
}
