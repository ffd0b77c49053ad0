//! A check's status, as Consul names them: `passing`, `warning`, `critical`. Ordered from best to worst, so
//! the worst of several is their maximum.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shown};

/// The status of a check, or the aggregate health of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy: answers include it.
    Passing,
    /// Degraded: answers include it only when asked to (`include_warning`).
    Warning,
    /// Failing: no answer includes it.
    Critical,
}

impl Status {
    /// Consul's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }

    /// Parses Consul's name (`passing`, `warning`, `critical`; case-insensitive).
    pub fn parse(s: &str) -> Result<Status> {
        match s.to_ascii_lowercase().as_str() {
            "passing" => Ok(Status::Passing),
            "warning" => Ok(Status::Warning),
            "critical" => Ok(Status::Critical),
            _ => Err(Error::Invalid {
                what: "check status",
                value: shown(s),
                why: "must be passing, warning or critical".into(),
            }),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_order_and_serialize_as_consul_names() {
        for (text, status) in
            [("passing", Status::Passing), ("Warning", Status::Warning), ("CRITICAL", Status::Critical)]
        {
            assert_eq!(Status::parse(text).unwrap(), status);
        }
        assert!(Status::parse("maintenance").is_err());
        assert!(Status::Passing < Status::Warning && Status::Warning < Status::Critical);
        assert_eq!(serde_json::to_string(&Status::Warning).unwrap(), "\"warning\"");
    }
}
