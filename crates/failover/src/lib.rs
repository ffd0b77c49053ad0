//! Failover without split brain, as pure state machines: reachability reports, membership, topology and `now`
//! go in; datacenter verdicts and failover-group switches come out. The server feeds them from its probes and
//! its store and writes what they decide through the Raft log; the simulation replays them from a seed. This
//! crate does no I/O and reads no clock.

mod error;
pub mod reach;
pub mod record;
pub mod report;
pub mod verdict;

pub use error::{Error, Result};
pub use reach::{ReachConfig, ReachTable};
pub use record::{DcState, Evidence, VerdictRecord, rfc3339};
pub use report::{PeerSeen, ReceivedReport, Report};
pub use verdict::{Assessment, Change, MemberInfo, Quorum, VerdictConfig, Verdicts, assess};
