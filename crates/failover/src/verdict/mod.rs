//! Datacenter verdicts, decided by quorum. [`assess`] reads the latest reachability reports of the members
//! against the membership and says, for each datacenter, what the members outside it see right now;
//! [`Verdicts`] adds hysteresis (a changed assessment must hold for its window before it is written) and
//! says which verdicts the leader should write through the log. Both are pure: reports, membership and
//! `now` in, verdicts out.

mod assess;
mod track;

pub use assess::{Assessment, MemberInfo, Quorum, VerdictConfig, assess};
pub use track::{Change, DcTrack, Verdicts};

#[cfg(test)]
mod tests;
