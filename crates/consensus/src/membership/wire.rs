//! The membership change requests a member forwards to the leader, and the leader's answers, as they cross the
//! peer transport (inside [`crate::transport::wire::PeerRequest`]).

use meridian_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, MembershipError, Result};
use crate::types::MemberRecord;

/// A membership change request; also the payload forwarded to the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MembershipRequest {
    AddLearner { id: u64, member: MemberRecord },
    AddVoter { id: u64, member: MemberRecord },
    Promote { id: u64 },
    Remove { id: u64 },
    Update { id: u64, peer_url: String },
    Publish { id: u64, member: MemberRecord },
}

/// The outcome of a forwarded request, as it crosses the wire.
#[derive(Serialize, Deserialize)]
pub(crate) enum MembershipReply {
    Ok,
    Refused(MembershipError),
    NotLeader(Option<u64>),
    NoLeader,
    LeaderChanged,
    Unavailable(String),
    Failed(String),
}

impl From<Result<()>> for MembershipReply {
    fn from(r: Result<()>) -> Self {
        match r {
            Ok(()) => MembershipReply::Ok,
            Err(Error::Membership(e)) => MembershipReply::Refused(e),
            Err(Error::NotLeader { leader }) => MembershipReply::NotLeader(leader.map(|l| l.0)),
            Err(Error::NoLeader) => MembershipReply::NoLeader,
            Err(Error::LeaderChanged) => MembershipReply::LeaderChanged,
            Err(Error::Unavailable(m)) => MembershipReply::Unavailable(m),
            Err(other) => MembershipReply::Failed(other.to_string()),
        }
    }
}

impl From<MembershipReply> for Result<()> {
    fn from(r: MembershipReply) -> Self {
        match r {
            MembershipReply::Ok => Ok(()),
            MembershipReply::Refused(e) => Err(Error::Membership(e)),
            MembershipReply::NotLeader(l) => Err(Error::NotLeader { leader: l.map(NodeId) }),
            MembershipReply::NoLeader => Err(Error::NoLeader),
            MembershipReply::LeaderChanged => Err(Error::LeaderChanged),
            MembershipReply::Unavailable(m) => Err(Error::Unavailable(m)),
            MembershipReply::Failed(m) => Err(Error::Transport(format!("leader failed the membership change: {m}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn replies_round_trip_through_the_wire() {
        let cases = [
            Ok(()),
            Err(Error::Membership(MembershipError::LearnerNotReady)),
            Err(Error::NotLeader { leader: Some(NodeId(3)) }),
            Err(Error::NoLeader),
            Err(Error::LeaderChanged),
            Err(Error::Unavailable("x".into())),
        ];
        for case in cases {
            let bytes = encode(&MembershipReply::from(case.clone())).unwrap();
            let back: MembershipReply = decode(&bytes).unwrap();
            assert_eq!(Result::<()>::from(back), case);
        }
    }
}
