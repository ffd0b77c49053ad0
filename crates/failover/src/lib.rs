//! Failover without split brain, as pure state machines: reachability reports, membership, topology and `now`
//! go in; datacenter verdicts and failover-group switches come out. The server feeds them from its probes and
//! its store and writes what they decide through the Raft log; the simulation replays them from a seed. This
//! crate does no I/O and reads no clock.
//!
//! Failover groups: [`group::decide`] picks a group's active datacenter from the verdicts, [`manual`] checks an
//! operator's promote and demote, [`ActiveRecord`] is what `/meridian/active/<group>` holds, and the hooks told
//! of each switch are driven by [`Delivery`] over the [`audit`] log with the [`hook::HOOK_RETRY`] backoff.

pub mod active;
pub mod audit;
pub mod delivery;
mod error;
pub mod group;
pub mod hook;
pub mod manual;
pub mod reach;
pub mod record;
pub mod report;
pub mod up_since;
pub mod verdict;

pub use active::ActiveRecord;
pub use delivery::Delivery;
pub use error::{Error, Result};
pub use group::{DcStatus, Decision, Situation, Switch, decide};
pub use hook::{HookCall, RetrySchedule};
pub use reach::{ReachConfig, ReachTable};
pub use record::{DcState, Evidence, VerdictRecord, rfc3339};
pub use report::{PeerSeen, ReceivedReport, Report};
pub use up_since::UpSince;
pub use verdict::{Assessment, Change, MemberInfo, Quorum, VerdictConfig, Verdicts, assess};
