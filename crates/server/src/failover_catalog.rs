//! Which failover groups exist: the topology file's, overridden and extended by those defined through the admin
//! API (stored as JSON under `/meridian/groups/<name>`), checked against the topology's datacenters; with the
//! clock their records are stamped by, this is what a member holds of its failover groups
//! ([`FailoverGroups`]). The groups' behaviour is `crate::failover_groups`'.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use meridian_types::{DcName, FailoverGroupSpec, GroupError, GroupName, Topology};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// Where a group's definition comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The topology file.
    Topology,
    /// The admin API (it overrides a topology group of the same name).
    Api,
}

/// The fixed part of the failover groups: what the topology file says.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Every datacenter a group may list.
    datacenters: BTreeSet<DcName>,
    /// The hold of groups that set none (the topology policy's).
    default_hold_ms: u64,
    /// The topology's groups, in file order.
    topology: Vec<FailoverGroupSpec>,
}

impl Catalog {
    /// The catalog of `topology`; without one, the member's own datacenter and no groups.
    pub fn new(topology: Option<&Topology>, own_dc: &DcName) -> Catalog {
        match topology {
            Some(t) => Catalog {
                datacenters: t.datacenters(),
                default_hold_ms: t.policy.failback_hold_ms,
                topology: t.failover_groups.clone(),
            },
            None => Catalog {
                datacenters: BTreeSet::from([own_dc.clone()]),
                default_hold_ms: meridian_types::topology::DEFAULT_FAILBACK_HOLD_MS,
                topology: Vec::new(),
            },
        }
    }

    /// The hold of groups that set none.
    pub fn default_hold_ms(&self) -> u64 {
        self.default_hold_ms
    }

    /// Whether the topology file defines `name`.
    pub fn in_topology(&self, name: &GroupName) -> bool {
        self.topology.iter().any(|g| &g.name == name)
    }

    /// Whether there are groups whatever the store holds.
    pub fn has_topology_groups(&self) -> bool {
        !self.topology.is_empty()
    }

    /// Checks a definition given through the admin API.
    pub fn check(&self, spec: &FailoverGroupSpec) -> Result<(), GroupError> {
        spec.validate(&self.datacenters)
    }

    /// Every group: the topology's, each replaced by a stored definition of its name, then the other stored ones
    /// (`stored` in key order). Stored definitions that no longer validate (a datacenter left the topology) are
    /// skipped and returned apart, so one bad definition does not stop the others.
    pub fn effective(&self, stored: Vec<FailoverGroupSpec>) -> (Vec<(FailoverGroupSpec, Source)>, Vec<GroupError>) {
        let mut invalid = Vec::new();
        let mut by_name: BTreeMap<GroupName, FailoverGroupSpec> = BTreeMap::new();
        for spec in stored {
            match self.check(&spec) {
                Ok(()) => {
                    by_name.insert(spec.name.clone(), spec);
                }
                Err(e) => invalid.push(e),
            }
        }
        let mut groups: Vec<(FailoverGroupSpec, Source)> = self
            .topology
            .iter()
            .map(|g| match by_name.remove(&g.name) {
                Some(over) => (over, Source::Api),
                None => (g.clone(), Source::Topology),
            })
            .collect();
        groups.extend(by_name.into_values().map(|g| (g, Source::Api)));
        (groups, invalid)
    }
}

/// What every part of a member that deals with failover groups shares: the catalog and the wall clock the
/// records are stamped with.
#[derive(Clone, Debug)]
pub struct FailoverGroups {
    catalog: Arc<Catalog>,
    clock: Clock,
}

impl FailoverGroups {
    /// Groups of `catalog`, stamped by `clock`.
    pub fn new(catalog: Catalog, clock: Clock) -> FailoverGroups {
        FailoverGroups { catalog: Arc::new(catalog), clock }
    }

    /// Which groups the topology defines, and the datacenters any group may list.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_unix_ms(&self) -> u64 {
        self.clock.unix_ms()
    }
}

#[cfg(test)]
mod tests {
    use meridian_types::Failback;

    use super::*;

    fn group(name: &str, dcs: &[&str]) -> FailoverGroupSpec {
        FailoverGroupSpec {
            name: GroupName::from(name),
            datacenters: dcs.iter().map(|d| DcName::from(*d)).collect(),
            failback: Failback::Automatic,
            failback_hold_ms: None,
            hooks: Vec::new(),
        }
    }

    #[test]
    fn stored_groups_override_and_extend_the_topology() {
        let catalog = Catalog {
            datacenters: ["dc-a", "dc-b"].map(DcName::from).into(),
            default_hold_ms: 5000,
            topology: vec![group("db", &["dc-a", "dc-b"]), group("web", &["dc-a"])],
        };
        let (groups, invalid) = catalog.effective(vec![
            group("cache", &["dc-b"]),
            group("db", &["dc-b", "dc-a"]),
            group("gone", &["dc-z"]),
        ]);
        let got: Vec<(&str, &str, Source)> =
            groups.iter().map(|(g, s)| (g.name.0.as_str(), g.datacenters[0].0.as_str(), *s)).collect();
        assert_eq!(
            got,
            [("db", "dc-b", Source::Api), ("web", "dc-a", Source::Topology), ("cache", "dc-b", Source::Api)],
            "the stored db replaces the file's in place; cache is added"
        );
        assert_eq!(invalid.len(), 1, "a stored group naming an unknown datacenter is skipped: {invalid:?}");
        assert!(catalog.in_topology(&GroupName::from("web")) && !catalog.in_topology(&GroupName::from("cache")));
    }
}
