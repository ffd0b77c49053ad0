//! How TTL reports reach this member's runner task: a bounded queue, each report with a one-shot answer saying
//! whether the runner runs that check, fed it to its machine and has its effect in the store. Both the member's own report path
//! ([`super::relay`]) and the peer service (reports forwarded by other members) deliver through an [`Inbox`].

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::core::TtlReport;

/// Reports queued before a delivery is refused (the sender then writes through the log).
pub const CAPACITY: usize = 1024;

/// The longest a delivery waits for the runner's answer (the runner answers once the report's change is
/// written: a batch's pacing plus one proposal).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// One report and where to answer.
#[derive(Debug)]
pub struct Delivery {
    /// The report.
    pub report: TtlReport,
    /// `true` once the runner fed it to the check's machine and its effect is in the store; `false` if the
    /// runner does not run the check, or dropped the report's unwritten change (the check moved).
    pub accepted: oneshot::Sender<bool>,
}

/// The sending end, cloned wherever reports come in.
#[derive(Clone, Debug)]
pub struct Inbox(mpsc::Sender<Delivery>);

/// A new inbox and the runner's receiving end.
pub fn inbox() -> (Inbox, mpsc::Receiver<Delivery>) {
    let (tx, rx) = mpsc::channel(CAPACITY);
    (Inbox(tx), rx)
}

impl Inbox {
    /// Hands `report` to the runner; `true` if it runs the check, took the report and its effect is in the
    /// store. A full queue, a runner
    /// that is not running, or no answer within [`ANSWER_WITHIN`] is `false`.
    pub async fn deliver(&self, report: TtlReport) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.0.try_send(Delivery { report, accepted: tx }).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(ANSWER_WITHIN, rx).await, Ok(Ok(true)))
    }
}
