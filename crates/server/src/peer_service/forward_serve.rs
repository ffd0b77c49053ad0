//! The leader half of `Peer/ForwardStream`: one stream per forwarding member carries its writes in batches.
//!
//! Every item of an incoming batch is proposed at once, not one after another, so openraft gathers the
//! concurrent proposals into one log append. Answers are queued as proposals finish, and the response stream
//! sends everything queued when it is next polled as one message. A driver task owns the proposals, so those
//! in flight when the forwarding member goes away still run to their end; their answers are then dropped.

use std::future::Future;
use std::pin::Pin;

use futures::stream::{FuturesUnordered, Stream, StreamExt};
use meridian_proto::meridianpb::{ForwardBatch, ForwardReplies, ForwardReply, RaftCommand};
use tokio::sync::mpsc;
use tonic::Status;

/// A reply message stops taking more ready answers once it holds this many payload bytes, so a burst of large
/// answers (txn ranges) never approaches the peer message limit; the rest go in the next message.
pub const MAX_REPLIES_BYTES: usize = 4 << 20;

/// The response stream of one `ForwardStream` call.
pub type ReplyStream = Pin<Box<dyn Stream<Item = Result<ForwardReplies, Status>> + Send>>;

/// Serves one forward stream: proposes each item of `incoming` with `propose` (which answers with the encoded
/// apply result, or the status the leader would give its own client) and returns the stream of answers.
pub fn serve<S, P, F>(incoming: S, propose: P) -> ReplyStream
where
    S: Stream<Item = Result<ForwardBatch, Status>> + Send + Unpin + 'static,
    P: Fn(RaftCommand) -> F + Send + 'static,
    F: Future<Output = Result<Vec<u8>, Status>> + Send + 'static,
{
    let (ready, answers) = mpsc::unbounded_channel();
    tokio::spawn(drive(incoming, propose, ready));
    Box::pin(futures::stream::unfold(answers, |mut answers| async move {
        let first = answers.recv().await?;
        let mut bytes = first.payload.len() + first.message.len();
        let mut replies = vec![first];
        while bytes < MAX_REPLIES_BYTES {
            let Ok(next) = answers.try_recv() else { break };
            bytes += next.payload.len() + next.message.len();
            replies.push(next);
        }
        Some((Ok(ForwardReplies { replies }), answers))
    }))
}

/// Proposes every incoming item and queues its answer, until the incoming stream has ended (or failed) and
/// every proposal made has finished.
async fn drive<S, P, F>(mut incoming: S, propose: P, ready: mpsc::UnboundedSender<ForwardReply>)
where
    S: Stream<Item = Result<ForwardBatch, Status>> + Unpin,
    P: Fn(RaftCommand) -> F,
    F: Future<Output = Result<Vec<u8>, Status>>,
{
    let mut running = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            Some(reply) = running.next(), if !running.is_empty() => {
                // The response stream may be gone; the proposal has finished either way.
                let _ = ready.send(reply);
            }
            batch = incoming.next(), if open => match batch {
                Some(Ok(batch)) => {
                    for item in batch.items {
                        let id = item.id;
                        let proposal = item.command.map(&propose);
                        running.push(async move {
                            match proposal {
                                Some(proposal) => reply(id, proposal.await),
                                None => reply(id, Err(Status::invalid_argument("forward without a command"))),
                            }
                        });
                    }
                }
                Some(Err(status)) => {
                    tracing::debug!(%status, "forward stream broke");
                    open = false;
                }
                None => open = false,
            },
            else => break,
        }
    }
}

/// The answer to item `id`: its encoded apply result, or the status as code and message.
fn reply(id: u64, outcome: Result<Vec<u8>, Status>) -> ForwardReply {
    match outcome {
        Ok(payload) => ForwardReply { id, payload, code: 0, message: String::new() },
        Err(status) => {
            // Code 0 means success on the wire; a failure must never read as one.
            let code = match status.code() {
                tonic::Code::Ok => tonic::Code::Unknown,
                code => code,
            };
            ForwardReply { id, payload: Vec::new(), code: code as i32, message: status.message().to_owned() }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use meridian_proto::etcdserverpb::PutRequest;
    use meridian_proto::meridianpb::ForwardItem;
    use meridian_proto::meridianpb::raft_command::Cmd;
    use tokio::sync::watch;

    use super::*;

    fn put(key: &str) -> RaftCommand {
        RaftCommand {
            auth: None,
            cmd: Some(Cmd::Put(PutRequest { key: key.into(), ..Default::default() })),
            ..Default::default()
        }
    }

    fn key_of(cmd: &RaftCommand) -> Vec<u8> {
        match &cmd.cmd {
            Some(Cmd::Put(p)) => p.key.clone(),
            _ => Vec::new(),
        }
    }

    fn batch(ids: impl IntoIterator<Item = u64>) -> ForwardBatch {
        ForwardBatch {
            items: ids.into_iter().map(|id| ForwardItem { id, command: Some(put(&format!("k{id}"))) }).collect(),
        }
    }

    /// Proposals that each wait for `release`, counting how many have started and finished.
    struct Gated {
        release: watch::Sender<bool>,
        started: Arc<AtomicUsize>,
        finished: Arc<AtomicUsize>,
    }

    impl Gated {
        fn new() -> Self {
            Gated { release: watch::channel(false).0, started: Arc::default(), finished: Arc::default() }
        }

        fn propose(
            &self,
        ) -> impl Fn(RaftCommand) -> futures::future::BoxFuture<'static, Result<Vec<u8>, Status>> + Send + use<>
        {
            let (release, started, finished) = (self.release.subscribe(), self.started.clone(), self.finished.clone());
            move |cmd| {
                let (mut release, started, finished) = (release.clone(), started.clone(), finished.clone());
                Box::pin(async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = release.wait_for(|r| *r).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(key_of(&cmd))
                })
            }
        }

        async fn wait_started(&self, n: usize) {
            tokio::time::timeout(Duration::from_secs(5), async {
                while self.started.load(Ordering::SeqCst) < n {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("every item of the batch is proposed without waiting for the others");
        }
    }

    #[tokio::test]
    async fn items_are_proposed_concurrently_and_ready_answers_travel_together() {
        let gated = Gated::new();
        let mut replies = serve(futures::stream::iter([Ok(batch(0..50))]), gated.propose());
        // All 50 are in flight at once: had they been proposed one by one, the first would block the rest.
        gated.wait_started(50).await;
        gated.release.send(true).unwrap();

        let first = replies.next().await.unwrap().unwrap();
        assert_eq!(first.replies.len(), 50, "answers ready together go out as one message");
        let mut ids: Vec<u64> = first.replies.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..50).collect::<Vec<_>>());
        for r in &first.replies {
            assert_eq!((r.code, r.payload.clone()), (0, format!("k{}", r.id).into_bytes()), "each gets its own answer");
        }
        assert!(replies.next().await.is_none(), "the stream ends once the incoming side has and all are answered");
    }

    #[tokio::test]
    async fn proposals_in_flight_finish_after_the_follower_went_away() {
        let gated = Gated::new();
        let replies =
            serve(futures::stream::iter([Ok(batch(0..3)), Err(Status::unavailable("reset"))]), gated.propose());
        gated.wait_started(3).await;
        drop(replies);
        gated.release.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while gated.finished.load(Ordering::SeqCst) < 3 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("proposals are not cancelled with the stream");
    }

    #[tokio::test]
    async fn failures_carry_the_status_code_and_message() {
        let propose = |cmd: RaftCommand| async move {
            match key_of(&cmd).as_slice() {
                b"k0" => Err(Status::unavailable("etcdserver: not leader")),
                b"k1" => Err(Status::new(tonic::Code::Ok, "odd")),
                _ => Ok(b"fine".to_vec()),
            }
        };
        let mut incoming = batch(0..3);
        incoming.items.push(ForwardItem { id: 3, command: None });
        let mut replies = serve(futures::stream::iter([Ok(incoming)]), propose);
        let mut all = Vec::new();
        while let Some(msg) = replies.next().await {
            all.extend(msg.unwrap().replies);
        }
        all.sort_by_key(|r| r.id);
        let got: Vec<_> = all.iter().map(|r| (r.id, r.code, r.message.as_str(), r.payload.as_slice())).collect();
        assert_eq!(
            got,
            [
                (0, tonic::Code::Unavailable as i32, "etcdserver: not leader", &b""[..]),
                (1, tonic::Code::Unknown as i32, "odd", &b""[..]),
                (2, 0, "", &b"fine"[..]),
                (3, tonic::Code::InvalidArgument as i32, "forward without a command", &b""[..]),
            ]
        );
    }
}
