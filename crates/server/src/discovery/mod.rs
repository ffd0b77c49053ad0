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
pub mod error;
pub mod follow;
pub mod live;
pub mod report;
pub mod writes;

use std::sync::{Arc, OnceLock};

use meridian_registry::consul::AgentContext;
use meridian_registry::{CheckRecord, CheckRef, InstanceRef, NodeName, Outcome, Registration, Status, Timestamp};

pub use error::DiscoveryError;
pub use report::{ReportRoute, TtlReport};

use crate::member::Member;
use live::LiveCatalog;
use writes::CheckWrite;

/// Discovery's state on one member.
pub struct Discovery {
    member: Arc<Member>,
    live: Arc<LiveCatalog>,
    agent: AgentContext,
    /// Hands TTL reports to their checks' runners, once the runner is started.
    relay: OnceLock<Box<dyn ReportRoute>>,
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
        Ok(Arc::new(Discovery { member, live: Arc::new(LiveCatalog::default()), agent, relay: OnceLock::new() }))
    }

    /// Sends TTL reports to their checks' runners through `relay` from now on (set once, when the check runner
    /// starts; until then reports are written through the log).
    pub fn set_relay(&self, relay: Box<dyn ReportRoute>) {
        let _ = self.relay.set(relay);
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

    /// Keeps the catalog following the store, every record seen through `lens` (`run` passes the planted-bug
    /// seam's choice, [`follow::as_stored`] unless a bug is planted).
    pub async fn follow_through(self: Arc<Self>, lens: follow::Lens) {
        follow::follow_through(self.member.clone(), self.live.clone(), lens).await
    }

    /// Registers `reg` (validated first), replacing an earlier registration of the same instance; its checks start
    /// over at their initial status. Returns the revision it was written at.
    pub async fn register(&self, reg: &Registration) -> Result<i64, DiscoveryError> {
        reg.validate()?;
        Ok(writes::register(&self.member, reg, self.now()).await?)
    }

    /// Deregisters an instance; an instance that is not registered is [`DiscoveryError::UnknownInstance`].
    pub async fn deregister(&self, r: &InstanceRef) -> Result<(), DiscoveryError> {
        if writes::deregister(&self.member, r).await? {
            Ok(())
        } else {
            Err(DiscoveryError::UnknownInstance(r.clone()))
        }
    }

    /// A TTL check's report (Consul's `/v1/agent/check/pass|warn|fail`): the check's status becomes the
    /// reported one. The report goes to the check's runner (`check_runner::relay`), which restarts the check's
    /// TTL and publishes a status change if there is one. If the runner cannot take it, the report is written
    /// through the log here, even when it changes nothing, so the runner still learns of it (it adopts a TTL
    /// check's record written by another member as a report); before the runner is started, only when the status
    /// or the output changes.
    pub async fn report_ttl(&self, check: &CheckRef, outcome: Outcome, output: String) -> Result<(), DiscoveryError> {
        let (registered, lease, current, instance) = {
            let catalog = self.live.read();
            let stored = catalog
                .instance(&check.instance)
                .ok_or_else(|| DiscoveryError::UnknownCheck(check.check.to_string()))?;
            let def = stored
                .registration
                .checks
                .iter()
                .find(|d| d.id == check.check)
                .ok_or_else(|| DiscoveryError::UnknownCheck(check.check.to_string()))?;
            if def.kind.ttl().is_none() {
                return Err(DiscoveryError::NotTtl(check.clone()));
            }
            let current = catalog.check(&check.instance, &check.check).map(|(r, _)| r.clone());
            let instance = stored.registration.instance.clone();
            (stored.indexes.create, stored.registration.instance.lease, current, instance)
        };
        // Whether the report must be written even if it changes nothing: the runner learns of it only through
        // the log then, and needs every report to restart the check's TTL.
        let mut runner_missed = false;
        if let Some(relay) = self.relay.get() {
            // The runner judges the report against the record as committed now, which its catalog may not show yet.
            self.member.read_barrier().await?;
            let committed = writes::committed_check(&self.member, check)?;
            let report = TtlReport { check: check.clone(), outcome, output: output.clone(), committed };
            match relay.deliver(&self.member, &instance, report).await {
                Ok(()) => return Ok(()),
                Err(why) => {
                    tracing::debug!(check = %check, %why, "TTL report written through the log");
                    runner_missed = true;
                }
            }
        }
        let status = match outcome {
            Outcome::Pass => Status::Passing,
            Outcome::Warn => Status::Warning,
            Outcome::Fail => Status::Critical,
        };
        if !runner_missed && current.as_ref().is_some_and(|r| r.status == status && r.output == output) {
            return Ok(());
        }
        let since = match &current {
            Some(r) if r.status == status => r.since,
            _ => self.now(),
        };
        let write =
            CheckWrite { check: check.clone(), record: CheckRecord { status, output, since }, registered, lease };
        match writes::publish(&self.member, &[write]).await? {
            0 => Err(DiscoveryError::UnknownCheck(check.check.to_string())),
            _ => Ok(()),
        }
    }
}
