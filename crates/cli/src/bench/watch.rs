//! The `watch-latency` workload: one watcher on a prefix, on its own connection; the clients put fresh keys
//! under the prefix. Each put's send time goes into the [`SendLog`] just before the request leaves; the
//! watcher takes it out when the event for that key arrives, so the latency runs from the put being *sent* to
//! its event being *received* (not from the put's acknowledgement, which the clients record separately).
//!
//! Every put writes a new key `PREFIX` + zero-padded operation number, and the prefix holds a per-run nonce,
//! so events map to sends one to one even when other runs share the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use meridian_proto::etcdserverpb::watch_client::WatchClient;
use meridian_proto::etcdserverpb::watch_request::RequestUnion;
use meridian_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use meridian_proto::mvccpb::event::EventType;
use tokio::sync::watch;
use tokio_stream::StreamExt as _;
use tonic::Streaming;

use super::credentials::Conn;
use super::stats::{OpClass, Stats, error_kind};

/// Error kind of a put that was acknowledged (or still unresolved) but whose event never arrived.
pub const MISSING_EVENT: &str = "watch: no event for a sent put before the drain timeout";

/// Send times of puts whose events have not arrived yet, by operation number.
#[derive(Debug, Default)]
pub struct SendLog(Mutex<HashMap<u64, Instant>>);

impl SendLog {
    /// Notes that the put of operation `op` leaves now-ish, at `at`.
    pub fn sent(&self, op: u64, at: Instant) {
        self.lock().insert(op, at);
    }

    /// Takes the send time of operation `op`, if it is still waiting for its event.
    pub fn take(&self, op: u64) -> Option<Instant> {
        self.lock().remove(&op)
    }

    /// Puts still waiting for their event.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        // A panicking client cannot leave the map half-updated; keep going with what is there.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The key prefix of one run: `__meridian_bench/watch/NONCE/`.
pub fn run_prefix(nonce: u64) -> Vec<u8> {
    format!("__meridian_bench/watch/{nonce:016x}/").into_bytes()
}

/// The key operation `op` writes under `prefix`.
pub fn watch_key(prefix: &[u8], op: u64, size: usize) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&super::keys::key_bytes(op, size));
    key
}

/// The operation number of `key`, if it is one of this run's keys.
pub fn parse_op(prefix: &[u8], key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.strip_prefix(prefix)?).ok()?.parse().ok()
}

/// The end of the range that holds every key starting with `prefix` (etcd's prefix convention).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A running watcher; [`Watcher::finish`] waits for the remaining events and returns what it measured.
pub struct Watcher {
    done: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<Stats>,
}

impl Watcher {
    /// Opens the watch on `channel` and waits until the server confirms it (so no put can precede it).
    pub async fn start(channel: Conn, prefix: Vec<u8>, log: Arc<SendLog>, timeout: Duration) -> anyhow::Result<Self> {
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: prefix.clone(),
                range_end: prefix_end(&prefix),
                ..Default::default()
            })),
        };
        // The request side stays open (pending) for as long as the watch lives.
        let requests = tokio_stream::iter([create]).chain(tokio_stream::pending());
        let mut client = WatchClient::new(channel).max_decoding_message_size(64 << 20);
        let mut inbound = tokio::time::timeout(timeout, client.watch(requests))
            .await
            .context("opening the watch timed out")?
            .context("opening the watch")?
            .into_inner();
        let first = tokio::time::timeout(timeout, inbound.message())
            .await
            .context("no watch confirmation in time")?
            .context("watch stream")?;
        match first {
            Some(r) if r.created && !r.canceled => {}
            Some(r) => bail!("the watch was not created: {}", r.cancel_reason),
            None => bail!("the watch stream ended before it was created"),
        }
        let (done, done_rx) = watch::channel(None);
        let task = tokio::spawn(collect(inbound, prefix, log, done_rx));
        Ok(Watcher { done, task })
    }

    /// Tells the watcher every put has been sent, waits until every sent put's event arrived or `drain` has
    /// passed, and returns the event latencies (missing events count as errors).
    pub async fn finish(self, drain: Duration) -> anyhow::Result<Stats> {
        self.done.send_replace(Some(Instant::now() + drain));
        let stats = self.task.await.context("the watcher task failed")?;
        drop(self.done);
        Ok(stats)
    }
}

async fn collect(
    mut inbound: Streaming<WatchResponse>,
    prefix: Vec<u8>,
    log: Arc<SendLog>,
    mut done: watch::Receiver<Option<Instant>>,
) -> Stats {
    let mut stats = Stats::default();
    loop {
        let deadline = *done.borrow_and_update();
        if let Some(deadline) = deadline
            && (log.pending() == 0 || Instant::now() >= deadline)
        {
            break;
        }
        // Before the clients finish there is no deadline; wake up on news from them or the stream.
        let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(resp)) => {
                    let arrived = Instant::now();
                    if resp.canceled {
                        stats.error(&format!("watch canceled: {}", resp.cancel_reason));
                        break;
                    }
                    for ev in resp.events {
                        let Some(kv) = ev.kv.filter(|_| ev.r#type == EventType::Put as i32) else { continue };
                        if let Some(sent) = parse_op(&prefix, &kv.key).and_then(|op| log.take(op)) {
                            let micros = arrived.saturating_duration_since(sent).as_micros();
                            stats.record(OpClass::WatchEvent, u64::try_from(micros).unwrap_or(u64::MAX));
                        }
                    }
                }
                Ok(None) => {
                    stats.error("watch: the stream ended");
                    break;
                }
                Err(status) => {
                    stats.error(&error_kind(&status));
                    break;
                }
            },
            _ = done.changed() => {}
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    stats.errors.add(MISSING_EVENT, log.pending() as u64);
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_prefix() {
        let prefix = run_prefix(0xabc);
        assert_eq!(prefix, b"__meridian_bench/watch/0000000000000abc/".to_vec());
        let key = watch_key(&prefix, 42, 8);
        assert_eq!(&key[prefix.len()..], b"00000042");
        assert_eq!(parse_op(&prefix, &key), Some(42));
        assert_eq!(parse_op(&run_prefix(1), &key), None);
        assert_eq!(parse_op(&prefix, b"unrelated"), None);
    }

    #[test]
    fn prefix_end_is_the_next_key_after_every_prefixed_key() {
        assert_eq!(prefix_end(b"a/"), b"a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        let prefix = run_prefix(7);
        let end = prefix_end(&prefix);
        assert!(watch_key(&prefix, u64::MAX, 8) < end && prefix < end);
    }

    #[test]
    fn the_send_log_hands_each_send_out_once() {
        let log = SendLog::default();
        let t = Instant::now();
        log.sent(1, t);
        log.sent(2, t);
        assert_eq!(log.pending(), 2);
        assert_eq!(log.take(1), Some(t));
        assert_eq!(log.take(1), None);
        assert_eq!(log.pending(), 1);
    }
}
