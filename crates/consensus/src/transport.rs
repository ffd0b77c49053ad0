//! The peer transport seam.
//!
//! openraft talks to peers through `RaftNetworkV2`. We implement it once ([`network`]), on top of a tiny
//! byte-oriented [`Transport`] trait: "deliver these bytes to member X and give me its reply". The server
//! implements `Transport` with its gRPC `meridianpb.Peer/Raft` service (opaque payload) and feeds incoming
//! payloads to `RaftNode::handle_peer_message` ([`crate::inbound`]); tests use
//! [`crate::in_process::InProcessTransport`]. The payload format ([`wire`]) is private to this crate, so both ends
//! always agree.

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use meridian_types::NodeId;

use crate::error::{Error, Result};
use crate::types::MemberRecord;

pub(crate) mod network;
pub(crate) mod wire;

/// Delivers opaque consensus messages between members.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Send `payload` to member `target` (described by `member`, from the Raft membership) and
    /// return its reply payload. Errors mean "not delivered or no reply"; openraft retries.
    async fn send(&self, target: NodeId, member: &MemberRecord, payload: Vec<u8>) -> Result<Vec<u8>>;

    /// Whether [`Transport::append_stream`] works. Without it openraft replicates one request at a time.
    fn streams_appends(&self) -> bool {
        false
    }

    /// Open an ordered stream to member `target`: deliver every payload of `requests`, in order, and return
    /// the target's reply payloads, in the same order. An error item (or the end of the replies) means the
    /// stream broke; openraft opens a new one. Only called when [`Transport::streams_appends`] is true.
    fn append_stream(
        &self,
        target: NodeId,
        member: &MemberRecord,
        requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Vec<u8>>>>> {
        let _ = (member, requests);
        Box::pin(std::future::ready(Err(Error::Transport(format!("no append stream to {target}")))))
    }
}

/// Ends `stream` right after its first error item, as a broken connection delivers nothing more: the shape
/// [`Transport::append_stream`] replies must have.
pub fn until_first_error<T: Send + 'static>(stream: BoxStream<'static, Result<T>>) -> BoxStream<'static, Result<T>> {
    stream
        .scan(true, |open, item| {
            let out = open.then_some(item);
            *open = out.as_ref().is_some_and(|r| r.is_ok());
            std::future::ready(out)
        })
        .boxed()
}
