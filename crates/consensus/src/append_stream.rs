//! Pipelined replication: openraft's `stream_append` over an ordered byte stream of the [`Transport`].
//!
//! openraft replicates to a follower through one stream of AppendEntries requests. Sent one at a time
//! (openraft's default), each request waits for the previous one's answer, which waits for the follower's
//! fsync: new entries and the leader's commit index queue behind that fsync, so a follower learns of a commit up
//! to one fsync late and every follower-side read or watch pays for it. Over an ordered stream the requests go
//! out as soon as openraft produces them; the follower feeds them to `Raft::stream_append`, which answers in
//! request order. This module owns both ends of that mapping and its wire format (bincode, private to this
//! crate); the transport only moves bytes in order.
//!
//! [`Transport`]: crate::Transport

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use openraft::error::{Fatal, NetworkError, RPCError, Unreachable};
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::types::TypeConfig;

/// One answer on the stream, in the order of the requests.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
enum StreamReply {
    /// openraft's answer to one request: how far the follower's log now matches, or why it stopped.
    Appended(StreamAppendResult<TypeConfig>),
    /// The follower's Raft stopped; the stream ends here.
    Fatal(String),
}

type Rpc<T> = Result<T, RPCError<TypeConfig>>;

/// Leader side: encode openraft's requests for the transport, counting them so the replies can be watched.
pub(crate) fn encode_requests<S>(input: S, sent: Arc<AtomicU64>) -> BoxStream<'static, Vec<u8>>
where
    S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
{
    input
        .map(|req| encode(&req))
        // A request that cannot be encoded ends the stream; openraft opens a new one and retries.
        .take_while(|encoded| std::future::ready(encoded.is_ok()))
        .filter_map(move |encoded| {
            sent.fetch_add(1, Ordering::Release);
            std::future::ready(encoded.ok())
        })
        .boxed()
}

/// Leader side: decode the follower's replies.
///
/// openraft leaves progress checking of a long-lived stream to the network: while any request is unanswered,
/// a reply must come within `ttl` or the stream fails (openraft then backs off and opens a new one). An idle
/// stream, with every request answered, may stay silent for as long as the leader has nothing to send.
pub(crate) fn decode_replies(
    replies: BoxStream<'static, crate::Result<Vec<u8>>>,
    sent: Arc<AtomicU64>,
    ttl: Duration,
    target: u64,
) -> BoxStream<'static, Rpc<StreamAppendResult<TypeConfig>>> {
    let state = Some((replies, 0u64));
    stream::unfold(state, move |state| {
        let sent = sent.clone();
        async move {
            let (mut replies, answered) = state?;
            let next = loop {
                let outstanding = sent.load(Ordering::Acquire) > answered;
                match tokio::time::timeout(ttl, replies.next()).await {
                    Ok(next) => break next,
                    Err(_) if outstanding => {
                        let e = format!("append stream to {target:x}: no answer within {ttl:?}");
                        return Some((Err(RPCError::Unreachable(Unreachable::from_string(e))), None));
                    }
                    // Idle, nothing owed: look again.
                    Err(_) => continue,
                }
            };
            let item = match next? {
                Err(e) => Err(RPCError::Unreachable(Unreachable::from_string(e))),
                Ok(bytes) => match decode::<StreamReply>(&bytes) {
                    Ok(StreamReply::Appended(result)) => Ok(result),
                    Ok(StreamReply::Fatal(msg)) => {
                        Err(RPCError::Unreachable(Unreachable::from_string(format!("peer {target:x}: {msg}"))))
                    }
                    Err(e) => Err(RPCError::Network(NetworkError::from_string(format!(
                        "bad append reply from {target:x}: {e}"
                    )))),
                },
            };
            // openraft ends its own stream after a rejection (conflict, higher vote), so nothing follows it.
            let go_on = matches!(item, Ok(Ok(_)));
            Some((item, go_on.then_some((replies, answered + 1))))
        }
    })
    .boxed()
}

/// Follower side: decode the leader's requests, hand them to openraft's pipelined `stream_append`, encode its
/// answers. A request that does not decode ends the stream. Each append from an established leader is recorded in
/// `contact` as it arrives.
pub(crate) fn serve(
    raft: &crate::raft::Raft,
    requests: BoxStream<'static, Vec<u8>>,
    may_send: crate::types::SenderCheck,
    contact: std::sync::Arc<crate::leader_contact::LeaderContact>,
) -> BoxStream<'static, Vec<u8>> {
    use openraft::vote::RaftLeaderId;
    let requests = requests
        .map(|bytes| decode::<AppendEntriesRequest<TypeConfig>>(&bytes))
        .take_while(move |decoded| {
            let ok = match decoded {
                Err(e) => {
                    tracing::warn!("ending append stream: bad request: {e}");
                    false
                }
                Ok(rpc) => {
                    let leader = meridian_types::NodeId(*rpc.vote.leader_id().node_id());
                    let allowed = may_send(leader);
                    if !allowed {
                        tracing::warn!(member = %format!("{:x}", leader.0), "ending append stream: the peer certificate does not name that member's peer host");
                    } else if rpc.vote.committed {
                        contact.heard(leader);
                    }
                    allowed
                }
            };
            std::future::ready(ok)
        })
        .filter_map(|decoded| std::future::ready(decoded.ok()));
    raft.stream_append(requests)
        .map(|answer: Result<StreamAppendResult<TypeConfig>, Fatal<TypeConfig>>| {
            let reply = match answer {
                Ok(result) => StreamReply::Appended(result),
                Err(fatal) => StreamReply::Fatal(fatal.to_string()),
            };
            encode(&reply)
        })
        .take_while(|encoded| std::future::ready(encoded.is_ok()))
        .filter_map(|encoded| std::future::ready(encoded.ok()))
        .boxed()
}

#[cfg(test)]
mod tests;
