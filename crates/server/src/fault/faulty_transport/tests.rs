//! The wrapper against a fake inner transport that records calls. Tokio's paused clock measures the emulated
//! delays exactly without waiting for them.

use std::time::Duration;

use meridian_types::wan::{LinkSpec, WanConfig};
use tokio::time::Instant;

use super::*;
use crate::fault::{FaultGate, FaultState, Faults};
use parking_lot::Mutex;

/// A message the fake peer received: from whom, what, when.
type Call = (NodeId, Vec<u8>, Instant);

/// Records every call and answers with the payload reversed, after `service_time`.
#[derive(Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    service_time: Duration,
}

#[async_trait]
impl Transport for Recorder {
    async fn send(&self, target: NodeId, _member: &MemberRecord, payload: Vec<u8>) -> Result<Vec<u8>> {
        self.calls.lock().push((target, payload.clone(), Instant::now()));
        tokio::time::sleep(self.service_time).await;
        Ok(payload.into_iter().rev().collect())
    }

    fn streams_appends(&self) -> bool {
        true
    }

    /// Echoes every message reversed, at once, recording when it arrived.
    fn append_stream(
        &self,
        target: NodeId,
        _member: &MemberRecord,
        requests: BoxStream<'static, Vec<u8>>,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Vec<u8>>>>> {
        let calls = self.calls.clone();
        let replies = requests.map(move |payload| {
            calls.lock().push((target, payload.clone(), Instant::now()));
            Ok(payload.into_iter().rev().collect())
        });
        Box::pin(async move { Ok(replies.boxed()) })
    }
}

const ME: NodeId = NodeId(1);
const PEER_B: NodeId = NodeId(2);
const PEER_C: NodeId = NodeId(3);

fn member(dc: &str) -> MemberRecord {
    MemberRecord { name: format!("in-{dc}"), dc: dc.to_owned(), ..Default::default() }
}

fn link(from: &str, to: &str, rtt_ms: u64) -> LinkSpec {
    LinkSpec { from: DcName::from(from), to: DcName::from(to), rtt_ms, loss: 0.0, blocked: false, symmetric: true }
}

fn transport(inner: Arc<dyn Transport>, state: Arc<FaultState>, seed: u64) -> FaultyTransport {
    let gate = FaultGate::new(ME, DcName::from("dc-a"), state, meridian_types::SplitMix64::new(seed));
    FaultyTransport::new(inner, Arc::new(gate))
}

fn setup(faults: Faults, service_time: Duration) -> (Arc<Recorder>, Arc<FaultState>, FaultyTransport) {
    let inner = Arc::new(Recorder { service_time, ..Default::default() });
    let state = Arc::new(FaultState::new(faults).unwrap());
    let t = transport(inner.clone(), state.clone(), 7);
    (inner, state, t)
}

fn canonical() -> Faults {
    Faults::from_wan(WanConfig { links: vec![link("dc-a", "dc-b", 10), link("dc-a", "dc-c", 30)] })
}

#[tokio::test(start_paused = true)]
async fn request_and_reply_each_take_half_the_rtt() {
    let (inner, _state, t) = setup(canonical(), Duration::from_millis(2));
    let start = Instant::now();
    let reply = t.send(PEER_C, &member("dc-c"), vec![1, 2, 3]).await.unwrap();
    assert_eq!(reply, vec![3, 2, 1], "the inner reply is passed through");
    let calls = inner.calls.lock().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].0, calls[0].1.clone()), (PEER_C, vec![1, 2, 3]));
    assert_eq!(calls[0].2 - start, Duration::from_millis(15), "forwarded after the one-way delay");
    assert_eq!(start.elapsed(), Duration::from_millis(32), "15 there + 2 service + 15 back");

    let start = Instant::now();
    t.send(PEER_B, &member("dc-b"), vec![9]).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(12), "dc-b is 10 ms away");
}

#[tokio::test(start_paused = true)]
async fn same_dc_traffic_is_not_delayed() {
    let (inner, _state, t) = setup(canonical(), Duration::ZERO);
    let start = Instant::now();
    t.send(NodeId(5), &member("dc-a"), vec![1]).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(inner.calls.lock().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn blocked_link_fails_without_reaching_the_peer_and_heals_at_runtime() {
    let (inner, state, t) = setup(canonical(), Duration::ZERO);
    let mut cut = canonical();
    cut.isolated_dcs.insert(DcName::from("dc-b"));
    state.set(cut).unwrap();
    let err = t.send(PEER_B, &member("dc-b"), vec![1]).await.unwrap_err();
    assert!(matches!(&err, Error::Transport(m) if m.contains("emulated partition")), "{err}");
    assert!(inner.calls.lock().is_empty(), "a blocked request never reaches the peer");
    // dc-c is untouched by dc-b's isolation.
    t.send(PEER_C, &member("dc-c"), vec![1]).await.unwrap();
    state.set(canonical()).unwrap();
    t.send(PEER_B, &member("dc-b"), vec![1]).await.unwrap();
    assert_eq!(inner.calls.lock().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn one_way_cut_on_the_way_back_loses_the_reply_after_the_peer_acted() {
    // dc-b can no longer send to dc-a: the request arrives but the reply is lost.
    let faults = Faults::from_wan(WanConfig {
        links: vec![LinkSpec { blocked: true, symmetric: false, ..link("dc-b", "dc-a", 10) }],
    });
    let (inner, _state, t) = setup(faults, Duration::ZERO);
    let err = t.send(PEER_B, &member("dc-b"), vec![1]).await.unwrap_err();
    assert!(matches!(&err, Error::Transport(m) if m.contains("reply")), "{err}");
    assert_eq!(inner.calls.lock().len(), 1, "the request itself was delivered");
}

#[tokio::test(start_paused = true)]
async fn isolated_target_member_is_unreachable() {
    let mut faults = canonical();
    faults.isolated_members.insert(PEER_C);
    let (inner, _state, t) = setup(faults, Duration::ZERO);
    assert!(t.send(PEER_C, &member("dc-c"), vec![1]).await.is_err());
    t.send(PEER_B, &member("dc-b"), vec![1]).await.unwrap();
    assert_eq!(inner.calls.lock().iter().map(|c| c.0).collect::<Vec<_>>(), vec![PEER_B]);
}

async fn losses(seed: u64, n: usize) -> Vec<bool> {
    let faults = Faults::from_wan(WanConfig { links: vec![LinkSpec { loss: 0.3, ..link("dc-a", "dc-b", 0) }] });
    let inner = Arc::new(Recorder::default());
    let state = Arc::new(FaultState::new(faults).unwrap());
    let t = transport(inner, state, seed);
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(t.send(PEER_B, &member("dc-b"), vec![1]).await.is_err());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn loss_is_reproducible_from_the_seed_and_near_the_configured_rate() {
    let a = losses(99, 2000).await;
    assert_eq!(a, losses(99, 2000).await, "same seed, same losses");
    assert_ne!(a, losses(100, 2000).await, "another seed, other losses");
    // A round trip survives with probability 0.7 * 0.7 = 0.49, so about 51% fail.
    let failed = a.iter().filter(|&&x| x).count() as f64 / a.len() as f64;
    assert!((0.45..0.57).contains(&failed), "failure rate {failed}");
}

#[tokio::test(start_paused = true)]
async fn an_append_stream_keeps_many_messages_in_flight_in_order() {
    let (inner, _state, t) = setup(canonical(), Duration::ZERO);
    let start = Instant::now();
    let requests = futures::stream::iter((1..=5u8).map(|i| vec![i, 0])).boxed();
    let replies: Vec<_> = t.append_stream(PEER_C, &member("dc-c"), requests).await.unwrap().collect().await;
    let replies: Vec<_> = replies.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(replies, (1..=5u8).map(|i| vec![0, i]).collect::<Vec<_>>(), "every reply, in order");
    // All five cross together: 15 ms there, 15 ms back.
    assert_eq!(start.elapsed(), Duration::from_millis(30), "not one round trip per message");
    let arrivals: Vec<_> = inner.calls.lock().iter().map(|c| c.2 - start).collect();
    assert_eq!(arrivals, vec![Duration::from_millis(15); 5]);
}

#[tokio::test(start_paused = true)]
async fn a_partition_breaks_an_open_append_stream() {
    let (inner, state, t) = setup(canonical(), Duration::ZERO);
    let (send, requests) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let requests = tokio_stream::wrappers::UnboundedReceiverStream::new(requests).boxed();
    let mut replies = t.append_stream(PEER_B, &member("dc-b"), requests).await.unwrap();
    send.send(vec![1, 2]).unwrap();
    assert_eq!(replies.next().await.unwrap().unwrap(), vec![2, 1]);
    let mut cut = canonical();
    cut.isolated_dcs.insert(DcName::from("dc-b"));
    state.set(cut).unwrap();
    send.send(vec![3, 4]).unwrap();
    let err = replies.next().await.unwrap().unwrap_err();
    assert!(matches!(&err, Error::Transport(m) if m.contains("emulated partition")), "{err}");
    assert!(replies.next().await.is_none(), "nothing after the break");
    assert_eq!(inner.calls.lock().len(), 1, "the message sent into the partition never arrived");
}
