//! The leader half against a fake far end that records each request the moment it arrives and answers only
//! when the test says so. Tokio's paused clock runs the timeouts without waiting for them.

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use async_trait::async_trait;
use futures::future::BoxFuture;
use meridian_types::NodeId;
use openraft::network::{RPCOption, RaftNetworkV2};
use openraft::raft::{AppendEntriesResponse, StreamAppendError};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::*;
use crate::error::{Error, Result};
use crate::transport::Transport;
use crate::transport::network::PeerNetwork;
use crate::transport::wire::PeerReply;
use crate::types::{MemberRecord, Vote};

const TTL: Duration = Duration::from_secs(1);

/// The far end of the stream: requests land in `arrived`, answers come from `answers`.
struct FarEnd {
    arrived: mpsc::UnboundedSender<AppendEntriesRequest<TypeConfig>>,
    answers: Mutex<Option<mpsc::UnboundedReceiver<Result<Vec<u8>>>>>,
    unary_calls: AtomicUsize,
}

#[async_trait]
impl Transport for FarEnd {
    async fn send(&self, _target: NodeId, _member: &MemberRecord, _payload: Vec<u8>) -> Result<Vec<u8>> {
        self.unary_calls.fetch_add(1, AtomicOrdering::SeqCst);
        Ok(encode(&PeerReply::Append(AppendEntriesResponse::Success)).unwrap())
    }

    fn streams_appends(&self) -> bool {
        true
    }

    fn append_stream(
        &self,
        _target: NodeId,
        _member: &MemberRecord,
        mut requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Vec<u8>>>>> {
        let arrived = self.arrived.clone();
        tokio::spawn(async move {
            while let Some(bytes) = requests.next().await {
                let _ = arrived.send(decode(&bytes).unwrap());
            }
        });
        let answers = self.answers.lock().take().expect("one stream per test");
        Box::pin(async move { Ok(UnboundedReceiverStream::new(answers).boxed()) })
    }
}

struct Harness {
    client: PeerNetwork,
    far: Arc<FarEnd>,
    arrived: mpsc::UnboundedReceiver<AppendEntriesRequest<TypeConfig>>,
    answer: mpsc::UnboundedSender<Result<Vec<u8>>>,
}

fn harness() -> Harness {
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let (answer, answers) = mpsc::unbounded_channel();
    let far =
        Arc::new(FarEnd { arrived: arrived_tx, answers: Mutex::new(Some(answers)), unary_calls: AtomicUsize::new(0) });
    let client = PeerNetwork::for_tests(NodeId(2), far.clone(), TTL);
    Harness { client, far, arrived, answer }
}

/// A request told apart from others by its vote's term.
fn request(term: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest { vote: Vote::new(term, 1), prev_log_id: None, leader_commit: None, entries: vec![] }
}

fn term(req: &AppendEntriesRequest<TypeConfig>) -> u64 {
    req.vote.leader_id().term
}

fn appended() -> Result<Vec<u8>> {
    Ok(encode(&StreamReply::Appended(Ok(None))).unwrap())
}

#[tokio::test(start_paused = true)]
async fn requests_go_out_without_waiting_for_answers() {
    let mut h = harness();
    let input = futures::stream::iter((1..=3).map(request));
    let mut replies = h.client.stream_append(input, RPCOption::new(TTL)).await.unwrap();
    for expected in 1..=3 {
        let arrived = tokio::time::timeout(TTL / 2, h.arrived.recv()).await;
        let arrived = arrived.expect("request held back until an answer came").unwrap();
        assert_eq!(term(&arrived), expected, "in order");
    }
    for _ in 0..3 {
        h.answer.send(appended()).unwrap();
    }
    for _ in 0..3 {
        assert!(matches!(replies.next().await, Some(Ok(Ok(None)))));
    }
    assert_eq!(h.far.unary_calls.load(AtomicOrdering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_request_fails_the_stream_within_two_ttls() {
    let mut h = harness();
    let mut replies =
        h.client.stream_append(futures::stream::iter([request(1), request(2)]), RPCOption::new(TTL)).await.unwrap();
    let start = Instant::now();
    assert!(matches!(replies.next().await, Some(Err(RPCError::Unreachable(_)))));
    assert!(start.elapsed() >= TTL && start.elapsed() <= 2 * TTL, "{:?}", start.elapsed());
    assert!(replies.next().await.is_none(), "a failed stream ends");
    drop(h.arrived.recv().await);
}

#[tokio::test(start_paused = true)]
async fn an_idle_stream_with_nothing_owed_stays_open() {
    let mut h = harness();
    let (more, input) = mpsc::unbounded_channel();
    more.send(request(1)).unwrap();
    let mut replies = h.client.stream_append(UnboundedReceiverStream::new(input), RPCOption::new(TTL)).await.unwrap();
    assert_eq!(term(&h.arrived.recv().await.unwrap()), 1);
    h.answer.send(appended()).unwrap();
    assert!(matches!(replies.next().await, Some(Ok(Ok(None)))));
    // Ten TTLs of silence with every request answered: no error.
    let idle = tokio::time::timeout(10 * TTL, replies.next()).await;
    assert!(idle.is_err(), "the stream ended or failed while idle: {:?}", idle.map(|r| r.map(|x| x.is_ok())));
    more.send(request(7)).unwrap();
    assert_eq!(term(&h.arrived.recv().await.unwrap()), 7);
    h.answer.send(appended()).unwrap();
    assert!(matches!(replies.next().await, Some(Ok(Ok(None)))));
}

#[tokio::test(start_paused = true)]
async fn nothing_is_opened_before_there_is_a_request() {
    let mut h = harness();
    let (more, input) = mpsc::unbounded_channel();
    let mut client = h.client;
    let opening = tokio::spawn(async move {
        let mut replies = client.stream_append(UnboundedReceiverStream::new(input), RPCOption::new(TTL)).await.unwrap();
        replies.next().await.map(|r| r.is_ok())
    });
    tokio::time::sleep(10 * TTL).await;
    assert!(h.far.answers.lock().is_some(), "a stream was opened with nothing to send");
    more.send(request(1)).unwrap();
    assert_eq!(term(&h.arrived.recv().await.unwrap()), 1);
    h.answer.send(appended()).unwrap();
    assert_eq!(opening.await.unwrap(), Some(true));
}

#[tokio::test(start_paused = true)]
async fn a_rejection_or_a_fatal_answer_ends_the_stream() {
    let mut h = harness();
    let mut replies =
        h.client.stream_append(futures::stream::iter([request(1), request(2)]), RPCOption::new(TTL)).await.unwrap();
    let higher = Vote::new(5, 3);
    h.answer.send(Ok(encode(&StreamReply::Appended(Err(StreamAppendError::HigherVote(higher)))).unwrap())).unwrap();
    h.answer.send(appended()).unwrap();
    assert!(matches!(replies.next().await, Some(Ok(Err(StreamAppendError::HigherVote(v)))) if v == higher));
    assert!(replies.next().await.is_none(), "nothing follows a rejection");

    let mut h = harness();
    let mut replies =
        h.client.stream_append(futures::stream::iter([request(1), request(2)]), RPCOption::new(TTL)).await.unwrap();
    h.answer.send(Ok(encode(&StreamReply::Fatal("stopped".into())).unwrap())).unwrap();
    assert!(matches!(replies.next().await, Some(Err(RPCError::Unreachable(e))) if e.to_string().contains("stopped")));
    assert!(replies.next().await.is_none());

    let mut h = harness();
    let mut replies =
        h.client.stream_append(futures::stream::iter([request(1), request(2)]), RPCOption::new(TTL)).await.unwrap();
    h.answer.send(Err(Error::Transport("connection reset".into()))).unwrap();
    h.answer.send(Ok(b"not a reply".to_vec())).unwrap();
    assert!(matches!(replies.next().await, Some(Err(RPCError::Unreachable(e))) if e.to_string().contains("reset")));
    assert!(replies.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_garbled_answer_is_a_network_error() {
    let mut h = harness();
    let mut replies =
        h.client.stream_append(futures::stream::iter([request(1), request(2)]), RPCOption::new(TTL)).await.unwrap();
    h.answer.send(Ok(b"not a reply".to_vec())).unwrap();
    assert!(matches!(replies.next().await, Some(Err(RPCError::Network(_)))));
    assert!(replies.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_single_request_stream_goes_as_one_call() {
    let mut h = harness();
    let heartbeat = futures::stream::once(std::future::ready(request(1)));
    let mut replies = h.client.stream_append(heartbeat, RPCOption::new(TTL)).await.unwrap();
    assert!(matches!(replies.next().await, Some(Ok(Ok(_)))));
    assert_eq!(h.far.unary_calls.load(AtomicOrdering::SeqCst), 1);
    assert!(h.far.answers.lock().is_some(), "no stream was opened");
}
