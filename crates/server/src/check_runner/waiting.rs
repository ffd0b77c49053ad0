//! TTL reports the runner took and has not yet answered. A report is acknowledged to its sender only once its
//! effect is safe: the check's change it caused (or merged into) is in the store, or it caused none. A report
//! whose check is handed over, re-registered or deregistered before its change was written is answered "not
//! taken", so the member that received it writes it through the log instead: an acknowledged report is never
//! dropped with a runner's unpublished changes.
//!
//! Pure bookkeeping: [`RunnerCore`](super::RunnerCore) says, for each waiting report, where its check stands
//! ([`Standing`]), and collects the answers the driver then sends.

use std::collections::BTreeMap;

use meridian_registry::CheckRef;

/// Names one taken report until it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// Where a waiting report's check stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// A change of the check waits in the batcher or is being written.
    Pending,
    /// Nothing of the check waits: the report's effect is in the store (or there was none to write).
    Settled,
    /// The check is no longer run as it was when the report was taken: its unwritten change is gone.
    Dropped,
}

/// The waiting reports and the answers ready to send.
#[derive(Debug, Default)]
pub struct Waiting {
    next: u64,
    /// Per check: each waiting ticket with the check's generation when its report was taken.
    by_check: BTreeMap<CheckRef, Vec<(Ticket, u64)>>,
    answers: Vec<(Ticket, bool)>,
}

impl Waiting {
    /// A new ticket for a report on `check`, taken at `generation`.
    pub fn wait(&mut self, check: CheckRef, generation: u64) -> Ticket {
        let ticket = Ticket(self.next);
        self.next += 1;
        self.by_check.entry(check).or_default().push((ticket, generation));
        ticket
    }

    /// Answers every waiting report whose check is settled (`true`) or dropped (`false`), as `standing` says.
    pub fn settle(&mut self, mut standing: impl FnMut(&CheckRef, u64) -> Standing) {
        let answers = &mut self.answers;
        self.by_check.retain(|check, tickets| {
            tickets.retain(|&(ticket, generation)| match standing(check, generation) {
                Standing::Pending => true,
                Standing::Settled => {
                    answers.push((ticket, true));
                    false
                }
                Standing::Dropped => {
                    answers.push((ticket, false));
                    false
                }
            });
            !tickets.is_empty()
        });
    }

    /// The answers ready to send, oldest first.
    pub fn take_answers(&mut self) -> Vec<(Ticket, bool)> {
        std::mem::take(&mut self.answers)
    }

    /// How many reports wait.
    pub fn len(&self) -> usize {
        self.by_check.values().map(Vec::len).sum()
    }

    /// Whether no report waits.
    pub fn is_empty(&self) -> bool {
        self.by_check.is_empty()
    }
}
