//! Where a TTL report goes. Only state changes go through the log, yet the runner of a TTL check must learn of
//! every report to restart the check's deadline; so a member that receives a report hands it to the check's
//! runner (over the [`Inbox`] when that is itself, else over the peer link with [`CheckClient`]), and the
//! runner feeds it to the check's machine, which publishes a change only if the status moves; the runner says
//! "taken" once that change is written ([`super::waiting`]). When the runner cannot be reached, does not run the
//! check yet (its catalog has not seen the registration), or dropped the change because the check moved to
//! another runner first, the caller writes the reported state through the log as before, and the runner adopts
//! that record when it sees it ([`super::core`]): an acknowledged report is never lost.

use std::time::Duration;

use meridian_consensus::MemberRecord;
use meridian_registry::{Instance, runner_for};

use super::inbox::Inbox;
use super::{members, wire};
use crate::discovery::{ReportRoute, TtlReport, report::Delivery};
use crate::member::Member;
use crate::peer_client::check_client::CheckClient;

/// The longest a forwarded report waits for the runner's answer before the report goes through the log.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Hands reports to their checks' runners.
pub struct Relay {
    inbox: Inbox,
    client: CheckClient,
}

impl Relay {
    /// A relay delivering to this member's runner through `inbox` and to the others' through `client`.
    pub fn new(inbox: Inbox, client: CheckClient) -> Relay {
        Relay { inbox, client }
    }

    /// Hands `report` of one of `instance`'s checks to the check's runner; `Err` says why it did not take it.
    pub async fn deliver(&self, member: &Member, instance: &Instance, report: TtlReport) -> Result<(), String> {
        let live = members::live(member);
        let runner = runner_for(instance, &live).ok_or("no live member")?;
        if runner.name.0 == member.config().name {
            return match self.inbox.deliver(report).await {
                true => Ok(()),
                false => Err("this member's runner does not run the check (yet)".into()),
            };
        }
        let record: MemberRecord = member
            .raft()
            .status()
            .members
            .into_values()
            .find(|m| m.name == runner.name.0)
            .ok_or_else(|| format!("{} is no longer a member", runner.name))?;
        match self.client.report(&record, wire::to_wire(&report), FORWARD_TIMEOUT).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("{} does not run the check (yet)", runner.name)),
            Err(e) => Err(format!("forwarding to {}: {e}", runner.name)),
        }
    }
}

impl ReportRoute for Relay {
    fn deliver<'a>(&'a self, member: &'a Member, instance: &'a Instance, report: TtlReport) -> Delivery<'a> {
        Box::pin(Relay::deliver(self, member, instance, report))
    }
}
