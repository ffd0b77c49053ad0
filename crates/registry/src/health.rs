//! An instance's health from its checks, and the DNS weight that follows from it.
//!
//! Worst wins: any critical check makes the instance critical, else any warning makes it warning, else it is
//! passing. An instance without checks is passing (Consul's rule). Critical instances get no weight: DNS
//! never answers with them.

use crate::instance::Weights;
use crate::status::Status;

/// The aggregate health of an instance whose checks have `statuses`.
pub fn aggregate(statuses: impl IntoIterator<Item = Status>) -> Status {
    statuses.into_iter().max().unwrap_or(Status::Passing)
}

/// The SRV weight of an instance in `health`: its passing or warning weight; `None` for critical (excluded).
pub fn dns_weight(health: Status, weights: Weights) -> Option<u16> {
    match health {
        Status::Passing => Some(weights.passing),
        Status::Warning => Some(weights.warning),
        Status::Critical => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Critical as C, Passing as P, Warning as W};

    #[test]
    fn worst_check_wins() {
        let cases: [(&[Status], Status); 7] =
            [(&[], P), (&[P], P), (&[P, P], P), (&[P, W], W), (&[W, P, W], W), (&[P, W, C], C), (&[C, P], C)];
        for (checks, want) in cases {
            assert_eq!(aggregate(checks.iter().copied()), want, "{checks:?}");
        }
    }

    #[test]
    fn weight_follows_health() {
        let w = Weights { passing: 10, warning: 2 };
        assert_eq!(dns_weight(P, w), Some(10));
        assert_eq!(dns_weight(W, w), Some(2));
        assert_eq!(dns_weight(C, w), None);
        assert_eq!(dns_weight(P, Weights::default()), Some(1));
    }
}
