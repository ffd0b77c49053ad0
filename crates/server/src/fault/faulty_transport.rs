//! [`FaultyTransport`]: the consensus transport wrapper that applies the emulated network to every Raft
//! message. A peer message is a request with a reply, so the gate is crossed twice: on the way there (before
//! the inner transport sends) and on the way back (after the reply arrives), each with its own one-way delay.
//! A leader's append stream crosses it per message, in order, through a [`delay_line`] each way.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use meridian_consensus::{Error, MemberRecord, Result, Transport, until_first_error};
use meridian_types::{DcName, NodeId};
use tokio::sync::oneshot;

use super::delay_line::delay_line;
use super::gate::{FaultGate, Undelivered};

/// Wraps the real transport of one member and delays, drops or blocks its messages per the current faults.
pub struct FaultyTransport {
    inner: Arc<dyn Transport>,
    gate: Arc<FaultGate>,
}

impl FaultyTransport {
    /// Sends through `inner`, every message crossing `gate`.
    pub fn new(inner: Arc<dyn Transport>, gate: Arc<FaultGate>) -> Self {
        FaultyTransport { inner, gate }
    }
}

#[async_trait]
impl Transport for FaultyTransport {
    async fn send(&self, target: NodeId, member: &MemberRecord, payload: Vec<u8>) -> Result<Vec<u8>> {
        let target_dc = DcName(member.dc.clone());
        self.gate.outbound(target, &target_dc).await.map_err(|e| Error::Transport(e.to_string()))?;
        let reply = self.inner.send(target, member, payload).await?;
        self.gate.inbound(target, &target_dc).await.map_err(|e| Error::Transport(e.to_string()))?;
        Ok(reply)
    }

    fn streams_appends(&self) -> bool {
        self.inner.streams_appends()
    }

    /// Both directions of the stream go through a [`delay_line`]. A request the network loses ends the request
    /// stream and fails the reply stream at once, like a reset connection.
    fn append_stream(
        &self,
        target: NodeId,
        member: &MemberRecord,
        requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Vec<u8>>>>> {
        let target_dc = DcName(member.dc.clone());
        let (out_gate, out_dc) = (self.gate.clone(), target_dc.clone());
        let (cut_tx, cut_rx) = oneshot::channel::<Undelivered>();
        let mut cut_tx = Some(cut_tx);
        let requests = delay_line(requests, move || out_gate.judge_outbound(target, &out_dc))
            .map(move |crossed| {
                crossed.map_err(|lost| {
                    if let Some(tx) = cut_tx.take() {
                        let _ = tx.send(lost);
                    }
                })
            })
            .take_while(|crossed| std::future::ready(crossed.is_ok()))
            .filter_map(|crossed| std::future::ready(crossed.ok()))
            .boxed();
        let opening = self.inner.append_stream(target, member, requests);
        let gate = self.gate.clone();
        Box::pin(async move {
            // The stream's opening travels with its first request (HTTP/2 sends headers and data back to back),
            // so it costs no round trip of its own, but a cut link refuses it.
            gate.judge_outbound(target, &target_dc).map_err(|e| Error::Transport(e.to_string()))?;
            let replies = opening.await?;
            let replies = delay_line(replies, move || gate.judge_inbound(target, &target_dc))
                .map(|crossed| crossed.map_err(|lost| Error::Transport(lost.to_string())).and_then(|reply| reply));
            // A cut request stream fails the replies now; a request stream that simply ended adds nothing.
            let cut = futures::stream::once(cut_rx)
                .filter_map(|cut| std::future::ready(cut.ok().map(|lost| Err(Error::Transport(lost.to_string())))));
            Ok(until_first_error(futures::stream::select(replies, cut).boxed()))
        })
    }
}

#[cfg(test)]
mod tests;
