//! Consul's result thresholds: how many consecutive results move a check's status. Consul's zero means "at
//! once", the same as one; these hold the effective counts, each at least 1.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest threshold accepted.
pub const MAX_THRESHOLD: u32 = 1000;

/// Consecutive-result thresholds, Consul's names. A warning result counts as a success, as in Consul.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Successes (pass or warn) in a row before the status becomes passing or warning.
    pub success_before_passing: u32,
    /// Failures in a row before the status becomes warning.
    pub failures_before_warning: u32,
    /// Failures in a row before the status becomes critical.
    pub failures_before_critical: u32,
}

impl Default for Thresholds {
    /// Every result counts at once.
    fn default() -> Self {
        Thresholds { success_before_passing: 1, failures_before_warning: 1, failures_before_critical: 1 }
    }
}

impl Thresholds {
    /// The thresholds from Consul's fields: zero (or absent) means one, and `failures_before_warning` defaults
    /// to `failures_before_critical`, so without it a failing check goes straight to critical.
    pub fn from_consul(
        success_before_passing: u32,
        failures_before_warning: Option<u32>,
        before_critical: u32,
    ) -> Self {
        let critical = before_critical.max(1);
        Thresholds {
            success_before_passing: success_before_passing.max(1),
            failures_before_warning: failures_before_warning.map_or(critical, |w| w.max(1)),
            failures_before_critical: critical,
        }
    }

    /// Each count is 1 to [`MAX_THRESHOLD`], and warning comes no later than critical.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("success_before_passing", self.success_before_passing),
            ("failures_before_warning", self.failures_before_warning),
            ("failures_before_critical", self.failures_before_critical),
        ];
        for (what, n) in fields {
            if !(1..=MAX_THRESHOLD).contains(&n) {
                let why = format!("must be 1 to {MAX_THRESHOLD}");
                return Err(Error::Invalid { what, value: n.to_string(), why });
            }
        }
        if self.failures_before_warning > self.failures_before_critical {
            let why = format!("must not exceed failures_before_critical ({})", self.failures_before_critical);
            let value = self.failures_before_warning.to_string();
            return Err(Error::Invalid { what: "failures_before_warning", value, why });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_fields_map_to_effective_counts() {
        let cases = [
            ((0, None, 0), (1, 1, 1)),
            ((3, None, 5), (3, 5, 5)),
            ((0, Some(2), 4), (1, 2, 4)),
            ((2, Some(0), 3), (2, 1, 3)),
        ];
        for ((s, w, c), (ws, ww, wc)) in cases {
            let t = Thresholds::from_consul(s, w, c);
            assert_eq!(
                (t.success_before_passing, t.failures_before_warning, t.failures_before_critical),
                (ws, ww, wc),
                "{s} {w:?} {c}"
            );
        }
    }

    #[test]
    fn warning_after_critical_and_out_of_range_counts_are_refused() {
        let bad = [
            Thresholds { success_before_passing: 1, failures_before_warning: 5, failures_before_critical: 3 },
            Thresholds { success_before_passing: 0, failures_before_warning: 1, failures_before_critical: 1 },
            Thresholds { success_before_passing: 1, failures_before_warning: 1, failures_before_critical: 1001 },
        ];
        for t in bad {
            assert!(t.validate().is_err(), "{t:?}");
        }
        Thresholds::from_consul(3, Some(2), 4).validate().unwrap();
    }
}
