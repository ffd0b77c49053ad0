//! Typed identifiers, so that a revision can never be passed where a lease or node id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identity of a cluster member in Raft and in the etcd `member_id` fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

/// An MVCC main revision. Revision 1 is the empty store, the first write gets revision 2, as in etcd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Revision(pub i64);

/// A lease identifier. Zero means "no lease" on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaseId(pub i64);

/// The name of a datacenter, such as `dc-a`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DcName(pub String);

/// The name of a zone inside a datacenter.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ZoneName(pub String);

/// The name of a failover group of the user's services, unique in a cluster (a key component under
/// `/meridian/active/` and `/meridian/groups/`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupName(pub String);

/// The human name of a member, unique in a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberName(pub String);

impl LeaseId {
    /// The wire value that means "no lease attached".
    pub const NONE: LeaseId = LeaseId(0);

    /// Whether this id names a real lease.
    pub fn is_some(self) -> bool {
        self.0 != 0
    }
}

impl Revision {
    /// The next main revision.
    pub fn next(self) -> Revision {
        Revision(self.0 + 1)
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(NodeId, Revision, LeaseId, DcName, ZoneName, MemberName, GroupName);

impl From<&str> for DcName {
    fn from(s: &str) -> Self {
        DcName(s.to_owned())
    }
}

impl From<&str> for ZoneName {
    fn from(s: &str) -> Self {
        ZoneName(s.to_owned())
    }
}

impl From<&str> for GroupName {
    fn from(s: &str) -> Self {
        GroupName(s.to_owned())
    }
}

impl From<&str> for MemberName {
    fn from(s: &str) -> Self {
        MemberName(s.to_owned())
    }
}
