//! The openraft type configuration of Meridian and the application types it names: the replicated
//! command (`Command`), the member description (`MemberRecord`) and the apply outcome (`ApplyResponse`).
//!
//! openraft's `serde` feature is on because every openraft type we persist or send (entries,
//! votes, log ids, membership, RPC messages) then has one encoding, bincode, in one place
//! (`codec`). Our own types implement serde by hand where their natural encoding is protobuf.

use std::fmt;
use std::sync::Arc;

use meridian_kv::CommandResponse;
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::response_codec::{decode_apply_result, encode_apply_result};

openraft::declare_raft_types!(
    /// openraft type configuration for Meridian.
    pub TypeConfig:
        D = Command,
        R = ApplyResponse,
        NodeId = u64,
        Node = MemberRecord,
        AsyncRuntime = crate::runtime::MeridianRuntime,
);

/// A log entry of Meridian's Raft log.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A log id (leader id + index).
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A persisted vote.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// Membership as stored with the log id that introduced it.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// Metadata of a snapshot.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;

/// Where and what a member is. Carried in Raft membership entries so every member learns the
/// addresses of the others from the log itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Human name, unique in the cluster.
    pub name: String,
    /// Datacenter.
    pub dc: String,
    /// Zone inside the datacenter.
    pub zone: String,
    /// URL peers use to reach this member.
    pub peer_url: String,
    /// URL clients use to reach this member.
    pub client_url: String,
}

/// The replicated command: a protobuf `RaftCommand`. Serialized as its protobuf bytes, so the log
/// format is the same schema the rest of the system already versions. Shared behind an `Arc`
/// because openraft clones entries freely (log cache reads, replication, retries), and a deep
/// copy of every key and value each time showed up in profiles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Command(pub Arc<RaftCommand>);

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.0.cmd {
            Some(Cmd::Put(_)) => "put",
            Some(Cmd::DeleteRange(_)) => "delete_range",
            Some(Cmd::Txn(_)) => "txn",
            Some(Cmd::Compaction(_)) => "compaction",
            Some(Cmd::LeaseGrant(_)) => "lease_grant",
            Some(Cmd::LeaseRevoke(_)) => "lease_revoke",
            Some(Cmd::LeaseCheckpoint(_)) => "lease_checkpoint",
            Some(Cmd::Alarm(_)) => "alarm",
            Some(Cmd::AuthChange(_)) => "auth_change",
            None => "empty",
        };
        f.write_str(kind)
    }
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.encode_to_vec())
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(CommandVisitor).map(|c| Command(Arc::new(c)))
    }
}

/// Decodes the protobuf bytes straight from the input when the format lends them, instead of
/// copying them into a buffer first.
struct CommandVisitor;

impl<'de> serde::de::Visitor<'de> for CommandVisitor {
    type Value = RaftCommand;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a protobuf-encoded RaftCommand")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<RaftCommand, E> {
        RaftCommand::decode(v).map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RaftCommand, A::Error> {
        let bytes = BytesVisitor.visit_seq(seq)?;
        RaftCommand::decode(bytes.as_slice()).map_err(serde::de::Error::custom)
    }
}

/// What the state machine answers for one applied entry.
pub enum ApplyResponse {
    /// Blank and membership entries produce no command outcome.
    Empty,
    /// The outcome of applying a `Command`; `Err(Etcd)` is a deterministic rejection.
    Command(meridian_kv::Result<CommandResponse>),
}

impl fmt::Debug for ApplyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyResponse::Empty => f.write_str("Empty"),
            ApplyResponse::Command(Ok(_)) => f.write_str("Command(Ok)"),
            ApplyResponse::Command(Err(e)) => write!(f, "Command(Err({e}))"),
        }
    }
}

impl Serialize for ApplyResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ApplyResponse::Empty => s.serialize_bytes(&[]),
            ApplyResponse::Command(r) => s.serialize_bytes(&encode_apply_result(r)),
        }
    }
}

impl<'de> Deserialize<'de> for ApplyResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = d.deserialize_byte_buf(BytesVisitor)?;
        if bytes.is_empty() {
            return Ok(ApplyResponse::Empty);
        }
        decode_apply_result(&bytes).map(ApplyResponse::Command).map_err(serde::de::Error::custom)
    }
}

/// Accepts a byte string however the format presents it.
struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// Which members the connection a peer message came on may speak for (peer identity: the members whose peer-URL
/// host its certificate names). Plain links (and the simulation) allow every member.
pub type SenderCheck = Arc<dyn Fn(meridian_types::NodeId) -> bool + Send + Sync>;

/// A check that lets every member speak (plain links, in-process transports).
pub fn any_sender() -> SenderCheck {
    Arc::new(|_| true)
}
