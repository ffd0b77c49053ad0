//! How the leader confirms it still leads before a linearizable read (design §4).

use serde::{Deserialize, Serialize};

/// The linearizable-read protocol. Both are linearizable; they differ in cost and assumptions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadPolicy {
    /// ReadIndex: every read (batch) confirms leadership with a quorum round trip. No clock
    /// assumptions. The default.
    #[default]
    #[serde(rename = "read-index")]
    ReadIndex,
    /// Lease read: the leader serves reads locally while its leader lease (a quorum acknowledgement
    /// younger than the maximum election timeout) is valid. Saves the round trip; relies on clocks
    /// advancing at about the same rate on every member.
    #[serde(rename = "lease")]
    LeaseRead,
}

impl ReadPolicy {
    /// The name used in config files and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadPolicy::ReadIndex => "read-index",
            ReadPolicy::LeaseRead => "lease",
        }
    }
}

impl std::str::FromStr for ReadPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read-index" => Ok(ReadPolicy::ReadIndex),
            "lease" => Ok(ReadPolicy::LeaseRead),
            other => Err(format!("unknown read policy {other:?}; expected read-index or lease")),
        }
    }
}

impl From<ReadPolicy> for openraft::ReadPolicy {
    fn from(p: ReadPolicy) -> Self {
        match p {
            ReadPolicy::ReadIndex => openraft::ReadPolicy::ReadIndex,
            ReadPolicy::LeaseRead => openraft::ReadPolicy::LeaseRead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [ReadPolicy::ReadIndex, ReadPolicy::LeaseRead] {
            assert_eq!(p.as_str().parse::<ReadPolicy>(), Ok(p));
        }
        assert!("linearizable".parse::<ReadPolicy>().unwrap_err().contains("read-index or lease"));
        assert_eq!(ReadPolicy::default(), ReadPolicy::ReadIndex);
    }
}
