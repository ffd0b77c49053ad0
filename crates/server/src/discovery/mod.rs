//! Service discovery on a member (issue 26), built on the pure `meridian_registry` core and on the store:
//! registrations and check states are keys under `/meridian/services/` and `/meridian/health/`, written
//! through the Raft log as the server's own commands ([`writes`]) and read from an in-memory [`catalog`] that
//! follows the member's own store ([`follow`], shared as a [`live::LiveCatalog`] whose change signal wakes
//! blocking queries). [`answer`] adds what ranking needs from the cluster (round-trip times, datacenter
//! verdicts). [`Discovery`] bundles them for the HTTP API, DNS and the check runners above.
//!
//! Reads are answered from the member's own store, as Consul's `?stale` mode is: fast and available on any
//! member, at most as old as the member's apply lag; `X-Consul-Index` says which revision an answer reflects.

pub mod answer;
pub mod catalog;
pub mod follow;
pub mod live;
pub mod writes;

use std::sync::Arc;

use meridian_registry::consul::AgentContext;
use meridian_registry::{NodeName, Timestamp};

use crate::member::Member;
use live::LiveCatalog;

/// Discovery's state on one member.
pub struct Discovery {
    member: Arc<Member>,
    live: Arc<LiveCatalog>,
    agent: AgentContext,
}

impl Discovery {
    /// Discovery on `member`, with an empty catalog until [`follow::follow`] loads it. Registrations taken
    /// through this member's agent API get its name as their node, its datacenter and zone, and
    /// `node_address` as their node address.
    pub fn new(member: Arc<Member>, node_address: String) -> crate::error::Result<Arc<Discovery>> {
        let config = member.config();
        let node = NodeName::new(config.name.clone())
            .map_err(|e| crate::error::Error::Config(format!("member name as a discovery node: {}", e.message())))?;
        let zone = (!config.zone.0.is_empty()).then(|| config.zone.clone());
        let agent = AgentContext { node, node_address, dc: config.dc.clone(), zone, lease: None };
        Ok(Arc::new(Discovery { member, live: Arc::new(LiveCatalog::default()), agent }))
    }

    /// The member.
    pub fn member(&self) -> &Arc<Member> {
        &self.member
    }

    /// The catalog.
    pub fn live(&self) -> &Arc<LiveCatalog> {
        &self.live
    }

    /// Who this member is as Consul's agent.
    pub fn agent(&self) -> &AgentContext {
        &self.agent
    }

    /// Now, in the registry's time (Unix milliseconds on the member's clock, simulated in the simulation).
    pub fn now(&self) -> Timestamp {
        Timestamp(self.member.reach().clock().unix_ms())
    }

    /// Keeps the catalog following the store; run as a background task.
    pub async fn follow(self: Arc<Self>) {
        follow::follow(self.member.clone(), self.live.clone()).await
    }
}
