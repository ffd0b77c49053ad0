//! A test double for the peer transport: members of one process reach each other by calling
//! `RaftNode::handle_peer_message` directly, so the real encoding is exercised without sockets.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use meridian_types::NodeId;
use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::node::{NodeInner, RaftNode};
use crate::transport::{Transport, until_first_error};
use crate::types::MemberRecord;

/// An in-process "network" for tests and simulation: a registry of nodes, each message delivered
/// by calling the target's [`RaftNode::handle_peer_message`], so the real encoding is exercised.
/// Nodes are held weakly, so the registry never keeps a shut-down node's storage open.
#[derive(Clone, Default)]
pub struct InProcessTransport {
    inner: Arc<Registry>,
    /// The sending member, when this handle belongs to one (see [`InProcessTransport::for_node`]).
    from: Option<NodeId>,
}

#[derive(Default)]
struct Registry {
    nodes: RwLock<HashMap<NodeId, Weak<NodeInner>>>,
    isolated: RwLock<HashSet<NodeId>>,
}

impl InProcessTransport {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle for member `from`: messages it sends fail while `from` is isolated.
    pub fn for_node(&self, from: NodeId) -> Arc<dyn Transport> {
        Arc::new(InProcessTransport { inner: self.inner.clone(), from: Some(from) })
    }

    /// Make `node` reachable under its id.
    pub fn register(&self, node: &RaftNode) {
        self.inner.nodes.write().insert(node.id(), Arc::downgrade(&node.inner));
    }

    /// Forget member `id`.
    pub fn unregister(&self, id: NodeId) {
        self.inner.nodes.write().remove(&id);
    }

    /// Cut member `id` off (both directions) or reconnect it.
    pub fn set_isolated(&self, id: NodeId, isolated: bool) {
        let mut set = self.inner.isolated.write();
        if isolated {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }
}

impl InProcessTransport {
    /// `Err` while `target` or this handle's member is isolated.
    fn reachable(&self, target: NodeId) -> Result<()> {
        let isolated = self.inner.isolated.read();
        if isolated.contains(&target) || self.from.is_some_and(|f| isolated.contains(&f)) {
            return Err(Error::Transport(format!("{target} is unreachable (isolated)")));
        }
        Ok(())
    }

    fn node(&self, target: NodeId) -> Result<RaftNode> {
        self.reachable(target)?;
        let node = self.inner.nodes.read().get(&target).and_then(Weak::upgrade);
        match node {
            Some(inner) => Ok(RaftNode { inner }),
            None => Err(Error::Transport(format!("{target} is not registered"))),
        }
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn send(&self, target: NodeId, _member: &MemberRecord, payload: Vec<u8>) -> Result<Vec<u8>> {
        self.node(target)?.handle_peer_message(payload).await
    }

    fn streams_appends(&self) -> bool {
        true
    }

    fn append_stream(
        &self,
        target: NodeId,
        _member: &MemberRecord,
        requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Vec<u8>>>>> {
        let opened = self.node(target).and_then(|node| node.serve_append_stream(requests));
        let link = self.clone();
        Box::pin(async move {
            // Isolating either end breaks the stream at the next reply, as a cut connection would.
            let replies = opened?.map(move |reply| link.reachable(target).map(|()| reply));
            Ok(until_first_error(replies.boxed()))
        })
    }
}
