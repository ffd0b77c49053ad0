//! The running member: its identity, its Raft node, watch hub and lessor, shared by every gRPC service.
//! Writes enter through [`Member::propose`], linearizable reads through [`Member::read_barrier`].

use std::sync::Arc;

use meridian_consensus::{RaftNode, RedbBackend};
use meridian_kv::{CommandResponse, KvStore};
use meridian_proto::etcdserverpb::ResponseHeader;
use meridian_proto::meridianpb::RaftCommand;
use meridian_types::{EtcdError, NodeId};
use parking_lot::RwLock;
use prost::Message;

use crate::config::ServerConfig;
use crate::lessor::Lessor;
use crate::placement::PlacementHandle;
use crate::watch_hub::{HeaderSource, WatchHub};

/// The store type every service reads.
pub type Store = KvStore<RedbBackend>;

/// Identity fields that go into every response header.
pub struct HeaderInfo {
    /// This member's id.
    pub member_id: NodeId,
    /// The cluster's id.
    pub cluster_id: u64,
    /// Reads the current Raft term.
    pub raft: RaftNode,
}

impl HeaderSource for HeaderInfo {
    fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id.0,
            revision,
            raft_term: self.raft.status().term,
        }
    }
}

/// Everything a request handler needs.
pub struct Member {
    /// The configuration this member runs with.
    pub config: ServerConfig,
    /// Header fields.
    pub headers: Arc<HeaderInfo>,
    /// The Raft node (and through it, the local state machine).
    pub raft: RaftNode,
    /// Watchers on this member.
    pub hub: Arc<WatchHub<RedbBackend>>,
    /// Lease expiry timer (active on the leader).
    pub lessor: Arc<Lessor>,
    /// Why the leader is where it is (leader placement driver), for status.
    pub placement: PlacementHandle,
}

impl Member {
    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.headers.member_id
    }

    /// A response header at `revision`.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        self.headers.header(revision)
    }

    /// A response header at the current revision.
    pub fn current_header(&self) -> ResponseHeader {
        let rev = self.kv().read().current_revision().0;
        self.header(rev)
    }

    /// The local state machine.
    pub fn kv(&self) -> &Arc<RwLock<Store>> {
        self.raft.kv()
    }

    /// Rejects requests whose encoding exceeds the configured limit, with etcd's error.
    pub fn check_size(&self, req: &impl Message) -> Result<(), EtcdError> {
        if req.encoded_len() > self.config.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        Ok(())
    }

    /// Replicates a command through Raft and returns what applying it produced.
    pub async fn propose(&self, cmd: RaftCommand) -> Result<CommandResponse, EtcdError> {
        match self.raft.propose(cmd).await.map_err(EtcdError::from)? {
            Ok(resp) => Ok(resp),
            Err(meridian_kv::Error::Etcd(e)) => Err(e),
            Err(other) => Err(EtcdError::Internal(other.to_string())),
        }
    }

    /// Waits until the local state machine reflects every write acknowledged before this call (ReadIndex).
    pub async fn read_barrier(&self) -> Result<(), EtcdError> {
        self.raft.read_barrier().await.map_err(EtcdError::from)
    }
}
