//! The follower half of `Peer/ForwardStream`: one long-lived stream to one leader that carries every write
//! this member forwards there.
//!
//! A task owns the stream. Callers queue their command with an id and wait on a oneshot; the task sends every
//! command queued at that moment as one batch (a new batch goes out once the stream has taken the previous
//! one, so batches grow with the load) and completes each caller by the id of its reply. The task ends when
//! the stream fails or ends, or when the pipe is dropped. Callers still waiting then learn whether their write
//! may have reached the leader: one that was sent gets etcd's timeout (its outcome is unknown, as with a broken
//! unary call); one that was not (still queued, or the leader refused the connection) gets
//! [`CallError::NotSent`] and may go to the next leader. A closed pipe is not reopened; the owner opens a new
//! one ([`ForwardPipe::is_closed`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_proto::meridianpb::peer_client::PeerClient;
use meridian_proto::meridianpb::{ForwardBatch, ForwardItem, ForwardReplies, ForwardReply, RaftCommand};
use meridian_types::EtcdError;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::call_error::{CallError, never_connected};
use crate::error::status_to_etcd;

/// A batch stops taking more queued commands once it holds this many bytes, so a burst of large writes never
/// approaches the peer message limit; the rest go in the next batch.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// What a caller learns: the encoded apply result, or why there is none.
type Outcome = Result<Vec<u8>, CallError>;

/// A message from callers to the pipe task.
enum Msg {
    /// Forward `command` and answer on `reply`.
    Call { id: u64, command: RaftCommand, reply: oneshot::Sender<Outcome> },
    /// The caller of `id` stopped waiting: drop its entry (and its command, if not yet sent).
    Forget(u64),
}

/// One stream to one leader, opened when the pipe is created.
pub struct ForwardPipe {
    calls: mpsc::UnboundedSender<Msg>,
    next_id: AtomicU64,
}

impl ForwardPipe {
    /// Opens a pipe to the leader behind `client`; the stream is opened by the pipe's task (commands queued
    /// meanwhile go out with the first batch).
    pub fn open(client: PeerClient<Channel>) -> Self {
        let (calls, queued) = mpsc::unbounded_channel();
        tokio::spawn(run(client, queued));
        ForwardPipe { calls, next_id: AtomicU64::new(0) }
    }

    /// Whether the stream has failed or ended; a closed pipe answers every call with [`CallError::NotSent`].
    pub fn is_closed(&self) -> bool {
        self.calls.is_closed()
    }

    /// Forwards `command` and waits at most `wait` for the leader's answer: the encoded apply result, or the
    /// etcd error the leader answered with. No answer in time, or a stream that broke after the command went
    /// out, is etcd's timeout; a command that never went out is [`CallError::NotSent`].
    pub async fn call(&self, command: RaftCommand, wait: Duration) -> Outcome {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        if self.calls.send(Msg::Call { id, command, reply }).is_err() {
            return Err(CallError::NotSent);
        }
        // Whether the wait times out or the caller itself is dropped, the task must drop the entry.
        let mut forget = ForgetOnDrop { id, calls: Some(self.calls.downgrade()) };
        match tokio::time::timeout(wait, answer).await {
            Ok(answered) => {
                forget.calls = None;
                // Every caller the task took is answered; one dropped unanswered was still in the queue when
                // the task ended, so its command never went out.
                answered.unwrap_or(Err(CallError::NotSent))
            }
            Err(_) => Err(CallError::Etcd(EtcdError::Timeout)),
        }
    }
}

/// Tells the pipe task that a caller stopped waiting, unless disarmed (`calls` taken) because it was answered.
/// Holds the sender weakly so waiting callers never keep a dropped pipe's task alive.
struct ForgetOnDrop {
    id: u64,
    calls: Option<mpsc::WeakUnboundedSender<Msg>>,
}

impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        if let Some(calls) = self.calls.take().and_then(|c| c.upgrade()) {
            let _ = calls.send(Msg::Forget(self.id));
        }
    }
}

/// The pipe task's bookkeeping: callers waiting for an answer, and commands not yet sent.
#[derive(Default)]
struct Calls {
    waiting: BTreeMap<u64, oneshot::Sender<Outcome>>,
    unsent: Vec<ForwardItem>,
}

impl Calls {
    fn take(&mut self, msg: Msg) {
        match msg {
            // A caller that already gave up needs no write.
            Msg::Call { reply, .. } if reply.is_closed() => {}
            Msg::Call { id, command, reply } => {
                self.waiting.insert(id, reply);
                self.unsent.push(ForwardItem { id, command: Some(command) });
            }
            Msg::Forget(id) => {
                if self.waiting.remove(&id).is_some() {
                    self.unsent.retain(|item| item.id != id);
                }
            }
        }
    }

    /// The next batch: every unsent command, up to [`MAX_BATCH_BYTES`] (at least one).
    fn next_batch(&mut self) -> ForwardBatch {
        let mut bytes = 0;
        let count = self
            .unsent
            .iter()
            .take_while(|item| {
                let fits = bytes < MAX_BATCH_BYTES;
                bytes += item.encoded_len();
                fits
            })
            .count();
        let items = if count == self.unsent.len() {
            std::mem::take(&mut self.unsent)
        } else {
            self.unsent.drain(..count).collect()
        };
        ForwardBatch { items }
    }

    fn answer(&mut self, reply: ForwardReply) {
        // No entry: its caller gave up.
        let Some(waiting) = self.waiting.remove(&reply.id) else { return };
        let outcome = if reply.code == 0 {
            Ok(reply.payload)
        } else {
            Err(CallError::Etcd(status_to_etcd(&tonic::Status::new(tonic::Code::from(reply.code), reply.message))))
        };
        let _ = waiting.send(outcome);
    }

    /// The stream is gone: whatever was sent may or may not have been applied; what was not sent (everything,
    /// if `connected` is false) was not.
    fn fail_all(&mut self, connected: bool) {
        let unsent: std::collections::BTreeSet<u64> = self.unsent.drain(..).map(|item| item.id).collect();
        for (id, waiting) in std::mem::take(&mut self.waiting) {
            let sent = connected && !unsent.contains(&id);
            let _ = waiting.send(Err(if sent { CallError::Etcd(EtcdError::Timeout) } else { CallError::NotSent }));
        }
    }
}

/// Owns one stream until it fails or ends or the pipe is dropped.
async fn run(mut client: PeerClient<Channel>, mut queued: mpsc::UnboundedReceiver<Msg>) {
    // Room for one batch: while the stream has not taken it, commands gather for the next.
    let (batches, outgoing) = mpsc::channel::<ForwardBatch>(1);
    let opening = client.forward_stream(ReceiverStream::new(outgoing));
    tokio::pin!(opening);
    let mut replies: Option<Streaming<ForwardReplies>> = None;
    let mut calls = Calls::default();
    // False once the leader's address refused the connection: then nothing was ever written to it.
    let mut connected = true;
    loop {
        tokio::select! {
            biased;
            received = next_replies(&mut replies) => match received {
                Ok(Some(msg)) => msg.replies.into_iter().for_each(|reply| calls.answer(reply)),
                Ok(None) => {
                    tracing::debug!("forward stream ended by the leader");
                    break;
                }
                Err(status) => {
                    tracing::debug!(%status, "forward stream broke");
                    break;
                }
            },
            room = batches.reserve(), if !calls.unsent.is_empty() => match room {
                Ok(room) => room.send(calls.next_batch()),
                Err(_) => break,
            },
            msg = queued.recv() => match msg {
                Some(msg) => {
                    calls.take(msg);
                    while let Ok(msg) = queued.try_recv() {
                        calls.take(msg);
                    }
                }
                // The pipe was dropped and no caller is left.
                None => break,
            },
            opened = &mut opening, if replies.is_none() => match opened {
                Ok(response) => replies = Some(response.into_inner()),
                Err(status) => {
                    tracing::debug!(%status, "forward stream not opened");
                    connected = !never_connected(&status);
                    break;
                }
            },
        }
    }
    // Refuse new calls first, so the owner sees the pipe closed and opens a new one; calls queued meanwhile
    // are dropped with their oneshot, which their callers read as not sent.
    queued.close();
    calls.fail_all(connected);
}

/// The next reply message, once the stream is open (never, before).
async fn next_replies(
    replies: &mut Option<Streaming<ForwardReplies>>,
) -> Result<Option<ForwardReplies>, tonic::Status> {
    match replies {
        Some(stream) => stream.message().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Poll;

    use futures::future::BoxFuture;
    use futures::stream::{self, StreamExt};
    use meridian_consensus::{MemberRecord, encode_apply_result};
    use meridian_kv::CommandResponse;
    use meridian_proto::etcdserverpb::{PutRequest, PutResponse};
    use meridian_proto::meridianpb::peer_server::{Peer, PeerServer};
    use meridian_proto::meridianpb::raft_command::Cmd;
    use parking_lot::Mutex;
    use tokio::sync::Notify;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::{Request, Response, Status};

    use super::*;
    use crate::error::to_status;
    use crate::peer_client::channels::{PeerChannels, PeerTimeouts};
    use crate::peer_client::client::LeaderClient;
    use crate::peer_service::forward_serve::{self, ReplyStream};

    type Propose = Arc<dyn Fn(RaftCommand) -> BoxFuture<'static, Result<Vec<u8>, Status>> + Send + Sync>;

    fn put(key: &str) -> RaftCommand {
        RaftCommand {
            auth: None,
            cmd: Some(Cmd::Put(PutRequest { key: key.into(), ..Default::default() })),
            ..Default::default()
        }
    }

    fn key_of(cmd: &RaftCommand) -> String {
        match &cmd.cmd {
            Some(Cmd::Put(p)) => String::from_utf8_lossy(&p.key).into_owned(),
            _ => String::new(),
        }
    }

    /// A leader whose proposals are scripted, served over the real leader half of the stream.
    #[derive(Clone)]
    struct FakeLeader {
        propose: Propose,
        /// Items of every batch received, over all streams.
        batches: Arc<Mutex<Vec<usize>>>,
        /// Answers in every reply message sent.
        reply_messages: Arc<Mutex<Vec<usize>>>,
        opened: Arc<AtomicUsize>,
        /// Streams whose incoming side has ended.
        ended: Arc<AtomicUsize>,
        /// Breaks the current stream: its replies end with an error.
        break_stream: Arc<Notify>,
    }

    impl FakeLeader {
        fn new(propose: impl Fn(RaftCommand) -> Result<Vec<u8>, Status> + Send + Sync + 'static) -> Self {
            let propose = Arc::new(propose);
            Self::new_async(move |cmd| {
                let out = propose(cmd);
                Box::pin(async move { out })
            })
        }

        fn new_async(
            propose: impl Fn(RaftCommand) -> BoxFuture<'static, Result<Vec<u8>, Status>> + Send + Sync + 'static,
        ) -> Self {
            FakeLeader {
                propose: Arc::new(propose),
                batches: Arc::default(),
                reply_messages: Arc::default(),
                opened: Arc::default(),
                ended: Arc::default(),
                break_stream: Arc::default(),
            }
        }

        /// Serves on a fresh local port; returns its URL.
        async fn start(&self) -> String {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let server = tonic::transport::Server::builder().add_service(PeerServer::new(self.clone()));
            tokio::spawn(server.serve_with_incoming(TcpListenerStream::new(listener)));
            url
        }

        fn received(&self) -> usize {
            self.batches.lock().iter().sum()
        }
    }

    #[tonic::async_trait]
    impl Peer for FakeLeader {
        async fn forward_stream(
            &self,
            request: Request<tonic::Streaming<ForwardBatch>>,
        ) -> Result<Response<ReplyStream>, Status> {
            self.opened.fetch_add(1, Ordering::SeqCst);
            let (batches, ended) = (self.batches.clone(), self.ended.clone());
            let incoming = request
                .into_inner()
                .inspect(move |b| {
                    if let Ok(b) = b {
                        batches.lock().push(b.items.len());
                    }
                })
                .chain(stream::poll_fn(move |_| {
                    ended.fetch_add(1, Ordering::SeqCst);
                    Poll::Ready(None)
                }));
            let propose = self.propose.clone();
            let (counted, broken) = (self.reply_messages.clone(), self.break_stream.clone());
            let replies = forward_serve::serve(incoming, move |cmd| propose(cmd))
                .inspect(move |m| {
                    if let Ok(m) = m {
                        counted.lock().push(m.replies.len());
                    }
                })
                .take_until(async move { broken.notified().await })
                .chain(stream::once(async { Err(Status::unavailable("leader went away")) }));
            Ok(Response::new(Box::pin(replies)))
        }
    }

    fn peer_client(url: &str, timeouts: PeerTimeouts) -> PeerClient<Channel> {
        PeerClient::new(PeerChannels::new(timeouts).get(url).unwrap())
    }

    fn leader_at(url: &str) -> MemberRecord {
        MemberRecord { peer_url: url.to_owned(), ..Default::default() }
    }

    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !cond() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }

    #[tokio::test]
    async fn concurrent_forwards_travel_as_one_batch_and_each_gets_its_own_answer() {
        let leader = FakeLeader::new(|cmd| Ok(format!("applied {}", key_of(&cmd)).into_bytes()));
        let url = leader.start().await;
        let pipe = ForwardPipe::open(peer_client(&url, PeerTimeouts::from_election_ms(1000)));

        let calls = (0..200).map(|i| pipe.call(put(&format!("k{i}")), Duration::from_secs(10)));
        let answers = futures::future::join_all(calls).await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), format!("applied k{i}").into_bytes(), "answer {i} went to its own caller");
        }
        assert_eq!(*leader.batches.lock(), [200], "everything queued at once travels as one batch");
        let messages = leader.reply_messages.lock().clone();
        assert_eq!(messages.iter().sum::<usize>(), 200);
        assert!(messages.len() < 20, "ready answers share reply messages: {messages:?}");
        assert_eq!(leader.opened.load(Ordering::SeqCst), 1, "one stream for all of them");
    }

    #[tokio::test]
    async fn leader_errors_arrive_as_the_same_etcd_error() {
        let put_ok = encode_apply_result(&Ok(CommandResponse::Put(PutResponse::default())));
        let lease_gone = encode_apply_result(&Err(meridian_kv::Error::Etcd(EtcdError::LeaseNotFound)));
        let leader = FakeLeader::new(move |cmd| match key_of(&cmd).as_str() {
            "not-leader" => Err(to_status(EtcdError::NotLeader)),
            "no-leader" => Err(to_status(EtcdError::NoLeader)),
            "leader-changed" => Err(to_status(EtcdError::LeaderChanged)),
            "stopped" => Err(to_status(EtcdError::Stopped)),
            "unknown-failure" => Err(Status::internal("something else")),
            "lease-gone" => Ok(lease_gone.clone()),
            _ => Ok(put_ok.clone()),
        });
        let url = leader.start().await;
        let client = LeaderClient::new(Arc::new(PeerChannels::new(PeerTimeouts::from_election_ms(1000))));
        let target = leader_at(&url);

        for (key, expected) in [
            ("not-leader", EtcdError::NotLeader),
            ("no-leader", EtcdError::NoLeader),
            ("leader-changed", EtcdError::LeaderChanged),
            ("stopped", EtcdError::Stopped),
            ("unknown-failure", EtcdError::Timeout),
        ] {
            assert_eq!(client.forward(&target, put(key)).await.unwrap_err(), CallError::Etcd(expected), "{key}");
        }
        let applied = client.forward(&target, put("lease-gone")).await.unwrap();
        assert!(matches!(applied, Err(meridian_kv::Error::Etcd(EtcdError::LeaseNotFound))), "{applied:?}");
        assert!(matches!(client.forward(&target, put("k")).await.unwrap(), Ok(CommandResponse::Put(_))));
        assert_eq!(leader.opened.load(Ordering::SeqCst), 1, "errors answer single writes, the stream stays up");
    }

    #[tokio::test]
    async fn a_broken_stream_fails_waiting_callers_with_timeout_and_the_next_forward_reconnects() {
        let put_ok = encode_apply_result(&Ok(CommandResponse::Put(PutResponse::default())));
        let leader = FakeLeader::new_async(move |cmd| {
            let out = put_ok.clone();
            Box::pin(async move {
                if key_of(&cmd) == "hang" {
                    std::future::pending::<()>().await;
                }
                Ok(out)
            })
        });
        let url = leader.start().await;
        // A request timeout far beyond the test: the waiting caller must be failed by the break, not by it.
        let client = Arc::new(LeaderClient::new(Arc::new(PeerChannels::new(PeerTimeouts::from_election_ms(60_000)))));
        let target = leader_at(&url);

        let waiting = tokio::spawn({
            let (client, target) = (client.clone(), target.clone());
            async move { client.forward(&target, put("hang")).await }
        });
        eventually("the leader to receive the write", || leader.received() == 1).await;
        leader.break_stream.notify_one();
        let outcome = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("failed at the break, not after the request timeout")
            .unwrap();
        assert_eq!(outcome.unwrap_err(), CallError::Etcd(EtcdError::Timeout), "outcome unknown");

        assert!(matches!(client.forward(&target, put("k")).await.unwrap(), Ok(CommandResponse::Put(_))));
        assert_eq!(leader.opened.load(Ordering::SeqCst), 2, "the next forward opened a new stream");
    }

    #[tokio::test]
    async fn a_leader_that_refuses_the_connection_was_sent_nothing_and_the_pipe_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let pipe = ForwardPipe::open(peer_client(&url, PeerTimeouts::from_election_ms(1000)));
        assert_eq!(pipe.call(put("k"), Duration::from_secs(60)).await.unwrap_err(), CallError::NotSent);
        eventually("the pipe to close", || pipe.is_closed()).await;
        assert_eq!(pipe.call(put("k"), Duration::from_secs(60)).await.unwrap_err(), CallError::NotSent);
    }

    #[test]
    fn a_broken_stream_fails_what_went_out_as_unknown_and_what_did_not_as_not_sent() {
        let mut calls = Calls::default();
        let mut answers = Vec::new();
        for id in 0..3 {
            let (reply, answer) = oneshot::channel();
            calls.take(Msg::Call { id, command: put("k"), reply });
            answers.push(answer);
        }
        calls.unsent.retain(|item| item.id == 2);
        calls.fail_all(true);
        let outcomes: Vec<Outcome> = answers.into_iter().map(|mut a| a.try_recv().unwrap()).collect();
        let unknown = Err(CallError::Etcd(EtcdError::Timeout));
        assert_eq!(outcomes, vec![unknown.clone(), unknown, Err(CallError::NotSent)]);

        // A connection that was never made sent nothing, whatever had been handed to the stream.
        let (reply, mut answer) = oneshot::channel();
        calls.take(Msg::Call { id: 9, command: put("k"), reply });
        calls.unsent.clear();
        calls.fail_all(false);
        assert_eq!(answer.try_recv().unwrap(), Err(CallError::NotSent));
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_gets_timeout_and_the_pipe_serves_on() {
        let leader = FakeLeader::new_async(|cmd| {
            Box::pin(async move {
                if key_of(&cmd) == "hang" {
                    std::future::pending::<()>().await;
                }
                Ok(key_of(&cmd).into_bytes())
            })
        });
        let url = leader.start().await;
        let pipe = ForwardPipe::open(peer_client(&url, PeerTimeouts::from_election_ms(1000)));
        assert_eq!(
            pipe.call(put("hang"), Duration::from_millis(100)).await.unwrap_err(),
            CallError::Etcd(EtcdError::Timeout)
        );
        assert_eq!(pipe.call(put("next"), Duration::from_secs(10)).await.unwrap(), b"next");
        assert!(!pipe.is_closed());
    }

    #[tokio::test]
    async fn dropping_the_pipe_ends_its_task_and_stream() {
        let leader = FakeLeader::new(|cmd| Ok(key_of(&cmd).into_bytes()));
        let url = leader.start().await;
        let pipe = ForwardPipe::open(peer_client(&url, PeerTimeouts::from_election_ms(1000)));
        assert_eq!(pipe.call(put("k"), Duration::from_secs(10)).await.unwrap(), b"k");
        drop(pipe);
        eventually("the leader to see the stream end", || leader.ended.load(Ordering::SeqCst) == 1).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_stops_waiting_tells_the_task_to_forget_it() {
        let (calls, mut queued) = mpsc::unbounded_channel();
        let pipe = ForwardPipe { calls, next_id: AtomicU64::new(7) };
        assert_eq!(pipe.call(put("k"), Duration::from_secs(1)).await.unwrap_err(), CallError::Etcd(EtcdError::Timeout));
        // A caller dropped while it waits (its client went away) does the same.
        let dropped = tokio::time::timeout(Duration::from_millis(10), pipe.call(put("k"), Duration::from_secs(1)));
        assert!(dropped.await.is_err());

        let mut seen = Vec::new();
        while let Ok(msg) = queued.try_recv() {
            seen.push(match msg {
                Msg::Call { id, .. } => format!("call {id}"),
                Msg::Forget(id) => format!("forget {id}"),
            });
        }
        assert_eq!(seen, ["call 7", "forget 7", "call 8", "forget 8"]);
    }

    #[test]
    fn forgotten_calls_leave_no_entry_whether_sent_or_not() {
        let mut calls = Calls::default();
        let mut answers = Vec::new();
        for id in 0..3 {
            let (reply, answer) = oneshot::channel();
            answers.push(answer);
            calls.take(Msg::Call { id, command: put("k"), reply });
        }
        calls.take(Msg::Forget(0));
        assert_eq!(calls.next_batch().items.iter().map(|i| i.id).collect::<Vec<_>>(), [1, 2], "0 is never sent");
        calls.take(Msg::Forget(1));
        assert_eq!(calls.waiting.keys().copied().collect::<Vec<_>>(), [2]);
        calls.answer(ForwardReply { id: 1, payload: b"late".to_vec(), code: 0, message: String::new() });
        calls.answer(ForwardReply { id: 2, payload: b"two".to_vec(), code: 0, message: String::new() });
        assert!(calls.waiting.is_empty() && calls.unsent.is_empty());
        assert_eq!(answers[2].try_recv().unwrap().unwrap(), b"two");

        // A caller gone before its command was taken costs nothing at all.
        let (reply, answer) = oneshot::channel();
        drop(answer);
        calls.take(Msg::Call { id: 9, command: put("k"), reply });
        assert!(calls.waiting.is_empty() && calls.unsent.is_empty());
    }

    #[test]
    fn batches_stop_growing_at_the_byte_limit() {
        let mut calls = Calls::default();
        let big = "x".repeat(MAX_BATCH_BYTES / 2 + 1);
        let mut answers = Vec::new();
        for id in 0..3 {
            let (reply, answer) = oneshot::channel();
            answers.push(answer);
            calls.take(Msg::Call { id, command: put(&big), reply });
        }
        assert_eq!(calls.next_batch().items.len(), 2, "the item that crosses the limit still goes");
        assert_eq!(calls.next_batch().items.len(), 1);
        assert!(calls.unsent.is_empty());
    }
}
