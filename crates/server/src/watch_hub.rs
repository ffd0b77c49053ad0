//! The watch hub: every watcher of every stream on this member, fed by the apply loop.
//!
//! A watcher is either *synced* (it has every event up to the last applied revision and receives new ones
//! directly from [`WatchHub::on_events`]) or *lagging* (it needs older events, because it asked for a
//! historical start revision or because its stream's buffer was full). Lagging watchers are caught up from the
//! MVCC history by [`WatchHub::run`]. A slow client therefore never blocks the apply loop or other watchers:
//! sends never wait, and a full buffer just demotes that one watcher to lagging. Each watcher remembers the next
//! revision it needs, so catch-up and live delivery can overlap without gaps or duplicates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_kv::{Backend, KvStore};
use meridian_proto::etcdserverpb::{
    ResponseHeader, WatchCreateRequest, WatchResponse, watch_create_request::FilterType,
};
use meridian_proto::mvccpb::{Event, event::EventType};
use meridian_types::{EtcdError, Revision};
use parking_lot::{Mutex, RwLock};
use prost::Message;
use tokio::sync::{Notify, mpsc};

/// Sender half of one watch stream's outgoing responses.
pub type ResponseSender = mpsc::Sender<Result<WatchResponse, tonic::Status>>;

/// Events read from history per lagging watcher per pass, bounding how long the hub lock is held.
const CATCH_UP_BATCH: usize = 1000;
/// How often lagging watchers whose buffers were full are retried.
const RETRY_INTERVAL: Duration = Duration::from_millis(20);

/// Identifies one gRPC watch stream on this member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(u64);

/// Fills the member-level fields of response headers.
pub trait HeaderSource: Send + Sync + 'static {
    /// A header carrying `revision`.
    fn header(&self, revision: i64) -> ResponseHeader;
}

struct Watcher {
    key: Vec<u8>,
    range_end: Vec<u8>,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    fragment: bool,
    /// The next revision this watcher still needs.
    next_rev: i64,
    /// Whether it must be caught up from history before receiving live events.
    lagging: bool,
    /// Set once the "created" response went out, so no event can overtake it.
    announced: bool,
    /// Whether an event or progress notification went out since the last progress tick.
    active_since_tick: bool,
    tx: ResponseSender,
}

#[derive(Default)]
struct Streams {
    watchers: BTreeMap<(StreamId, i64), Watcher>,
    next_auto_id: BTreeMap<StreamId, i64>,
}

/// All watchers of one member.
pub struct WatchHub<B: Backend> {
    kv: Arc<RwLock<KvStore<B>>>,
    headers: Arc<dyn HeaderSource>,
    inner: Mutex<Streams>,
    wake: Notify,
    next_stream: AtomicU64,
    max_response_bytes: usize,
}

impl<B: Backend> WatchHub<B> {
    /// A hub reading history from `kv`. Responses larger than `max_response_bytes` are split when the watcher
    /// asked for fragmentation.
    pub fn new(kv: Arc<RwLock<KvStore<B>>>, headers: Arc<dyn HeaderSource>, max_response_bytes: usize) -> Self {
        WatchHub {
            kv,
            headers,
            inner: Mutex::new(Streams::default()),
            wake: Notify::new(),
            next_stream: AtomicU64::new(1),
            max_response_bytes,
        }
    }

    /// A fresh stream id for a new gRPC watch stream.
    pub fn open_stream(&self) -> StreamId {
        StreamId(self.next_stream.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers a watcher; it stays silent until [`WatchHub::announce`]. Returns the watch id.
    /// As etcd's, an empty key is the smallest key (`\0`), and a range that ends where it starts or before is
    /// refused.
    pub fn create(&self, stream: StreamId, req: &WatchCreateRequest, tx: ResponseSender) -> Result<i64, EtcdError> {
        let key = if req.key.is_empty() { vec![0] } else { req.key.clone() };
        let to_the_end = req.range_end == [0];
        if !req.range_end.is_empty() && !to_the_end && key >= req.range_end {
            return Err(EtcdError::WatcherRangeEmpty);
        }
        let mut inner = self.inner.lock();
        let id = if req.watch_id != 0 {
            if inner.watchers.contains_key(&(stream, req.watch_id)) {
                return Err(EtcdError::DuplicateWatchId);
            }
            req.watch_id
        } else {
            // etcd hands out the lowest unused id, starting at 0.
            let next = inner.next_auto_id.entry(stream).or_insert(0);
            let mut id = *next;
            while inner.watchers.contains_key(&(stream, id)) {
                id += 1;
            }
            inner.next_auto_id.insert(stream, id + 1);
            id
        };
        let current = self.kv.read().current_revision().0;
        let next_rev = if req.start_revision > 0 { req.start_revision } else { current + 1 };
        let filters: Vec<i32> = req.filters.clone();
        inner.watchers.insert(
            (stream, id),
            Watcher {
                key,
                range_end: req.range_end.clone(),
                prev_kv: req.prev_kv,
                no_put: filters.contains(&(FilterType::Noput as i32)),
                no_delete: filters.contains(&(FilterType::Nodelete as i32)),
                progress_notify: req.progress_notify,
                fragment: req.fragment,
                next_rev,
                lagging: true,
                announced: false,
                active_since_tick: false,
                tx,
            },
        );
        Ok(id)
    }

    /// Marks a watcher's "created" response as sent, letting events flow to it.
    pub fn announce(&self, stream: StreamId, id: i64) {
        if let Some(w) = self.inner.lock().watchers.get_mut(&(stream, id)) {
            w.announced = true;
        }
        self.wake.notify_one();
    }

    /// Removes a watcher. Returns whether it existed.
    pub fn cancel(&self, stream: StreamId, id: i64) -> bool {
        self.inner.lock().watchers.remove(&(stream, id)).is_some()
    }

    /// Removes every watcher of a closed stream.
    pub fn close_stream(&self, stream: StreamId) {
        let mut inner = self.inner.lock();
        inner.watchers.retain(|(s, _), _| *s != stream);
        inner.next_auto_id.remove(&stream);
    }

    /// The revision up to which every watcher of `stream` has received all events: the answer to a progress
    /// request.
    pub fn progress_revision(&self, stream: StreamId) -> i64 {
        let current = self.kv.read().current_revision().0;
        let inner = self.inner.lock();
        inner.watchers.iter().filter(|((s, _), _)| *s == stream).map(|(_, w)| w.next_rev - 1).fold(current, i64::min)
    }

    /// Number of watchers across all streams.
    pub fn watcher_count(&self) -> usize {
        self.inner.lock().watchers.len()
    }

    /// Delivers the events of one applied revision to synced watchers. Never blocks on a client.
    pub fn on_events(&self, revision: Revision, events: &[Event]) {
        let rev = revision.0;
        let mut demoted = false;
        let mut inner = self.inner.lock();
        let mut closed = Vec::new();
        for (key, w) in inner.watchers.iter_mut() {
            if w.lagging || !w.announced || w.next_rev > rev {
                continue;
            }
            if w.next_rev < rev {
                // Revisions reached the store without passing through here (a follower installed a snapshot):
                // sending this one would skip them. Catch up from the store's history instead.
                w.lagging = true;
                demoted = true;
                continue;
            }
            let matching = select_events(w, events);
            if matching.is_empty() {
                w.next_rev = rev + 1;
                continue;
            }
            match self.send_events(key.1, w, rev, matching) {
                SendOutcome::Sent => w.next_rev = rev + 1,
                SendOutcome::Full => {
                    w.lagging = true;
                    demoted = true;
                }
                SendOutcome::Closed => closed.push(*key),
            }
        }
        for key in closed {
            inner.watchers.remove(&key);
        }
        drop(inner);
        if demoted {
            self.wake.notify_one();
        }
    }

    /// Runs catch-up and progress notifications until the process stops.
    pub async fn run(self: Arc<Self>, progress_interval: Duration) {
        let mut last_progress = tokio::time::Instant::now();
        loop {
            let pending = self.catch_up_pass();
            if pending {
                let _ = tokio::time::timeout(RETRY_INTERVAL, self.wake.notified()).await;
            } else {
                let _ = tokio::time::timeout(progress_interval, self.wake.notified()).await;
            }
            if last_progress.elapsed() >= progress_interval {
                self.progress_pass();
                last_progress = tokio::time::Instant::now();
            }
        }
    }

    /// One pass over lagging watchers. Returns whether any is still lagging.
    pub fn catch_up_pass(&self) -> bool {
        let mut inner = self.inner.lock();
        if !inner.watchers.values().any(|w| w.lagging && w.announced) {
            return false;
        }
        // Lock order is always hub, then kv; the apply loop calls `on_events` without holding the kv lock.
        let kv = self.kv.read();
        let current = kv.current_revision().0;
        let compact = kv.compact_revision().0;
        let mut still_lagging = false;
        let mut finished = Vec::new();
        for (key, w) in inner.watchers.iter_mut() {
            if !w.lagging || !w.announced {
                continue;
            }
            if w.next_rev > current {
                w.lagging = false;
                continue;
            }
            let history = match kv.events_since(Revision(w.next_rev), &w.key, &w.range_end, CATCH_UP_BATCH) {
                Ok(events) => events,
                Err(meridian_kv::Error::Etcd(EtcdError::Compacted)) => {
                    // etcd stamps this cancellation with no revision.
                    let resp = WatchResponse {
                        header: Some(self.headers.header(0)),
                        watch_id: key.1,
                        canceled: true,
                        compact_revision: compact,
                        cancel_reason: EtcdError::Compacted.to_string(),
                        ..Default::default()
                    };
                    match w.tx.try_send(Ok(resp)) {
                        Err(mpsc::error::TrySendError::Full(_)) => still_lagging = true,
                        _ => finished.push(*key),
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "watch catch-up failed to read history");
                    still_lagging = true;
                    continue;
                }
            };
            let complete = history.len() < CATCH_UP_BATCH;
            let last_rev = history.last().map_or(w.next_rev - 1, event_revision);
            // Like etcd, a catch-up batch goes out as one response stamped with the store revision it caught
            // up to; revisions are never split, because `events_since` ends on a revision boundary.
            let upto = if complete { current } else { last_rev };
            let matching = select_events(w, &history);
            let outcome =
                if matching.is_empty() { SendOutcome::Sent } else { self.send_events(key.1, w, upto, matching) };
            match outcome {
                SendOutcome::Sent if complete => {
                    w.next_rev = current + 1;
                    w.lagging = false;
                }
                SendOutcome::Sent => {
                    w.next_rev = last_rev + 1;
                    still_lagging = true;
                }
                SendOutcome::Full => still_lagging = true,
                SendOutcome::Closed => finished.push(*key),
            }
        }
        drop(kv);
        for key in finished {
            inner.watchers.remove(&key);
        }
        still_lagging
    }

    /// Sends an empty response to synced `progress_notify` watchers that were idle for a whole interval.
    pub fn progress_pass(&self) {
        let current = self.kv.read().current_revision().0;
        let mut inner = self.inner.lock();
        for ((_, id), w) in inner.watchers.iter_mut() {
            if w.progress_notify && !w.lagging && w.announced && !w.active_since_tick {
                let resp = WatchResponse {
                    header: Some(self.headers.header(current.min(w.next_rev - 1))),
                    watch_id: *id,
                    ..Default::default()
                };
                let _ = w.tx.try_send(Ok(resp));
            }
            w.active_since_tick = false;
        }
    }

    fn send_events(&self, id: i64, w: &mut Watcher, rev: i64, events: Vec<Event>) -> SendOutcome {
        let resp = WatchResponse { header: Some(self.headers.header(rev)), watch_id: id, events, ..Default::default() };
        let parts = if w.fragment { fragment(resp, self.max_response_bytes) } else { vec![resp] };
        // All parts of one revision go out together or not at all, so a retry never duplicates events.
        if w.tx.capacity() < parts.len() {
            return if w.tx.is_closed() { SendOutcome::Closed } else { SendOutcome::Full };
        }
        for part in parts {
            match w.tx.try_send(Ok(part)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return SendOutcome::Full,
                Err(mpsc::error::TrySendError::Closed(_)) => return SendOutcome::Closed,
            }
        }
        w.active_since_tick = true;
        SendOutcome::Sent
    }
}

enum SendOutcome {
    Sent,
    Full,
    Closed,
}

fn event_revision(e: &Event) -> i64 {
    e.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

/// The events of one revision that this watcher wants, shaped as it asked (filters, prev_kv).
fn select_events(w: &Watcher, events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| {
            let is_put = e.r#type == EventType::Put as i32;
            if (is_put && w.no_put) || (!is_put && w.no_delete) {
                return false;
            }
            e.kv.as_ref().is_some_and(|kv| in_range(&kv.key, &w.key, &w.range_end))
        })
        .map(|e| {
            let mut e = e.clone();
            if !w.prev_kv {
                e.prev_kv = None;
            }
            e
        })
        .collect()
}

/// etcd's range rules: empty end is a single key, `"\0"` means "every key from `start` on".
pub fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        _ => key >= start && key < end,
    }
}

/// Splits a response whose encoding exceeds `limit` into several, all but the last marked `fragment`.
fn fragment(resp: WatchResponse, limit: usize) -> Vec<WatchResponse> {
    if resp.encoded_len() <= limit || resp.events.len() <= 1 {
        return vec![resp];
    }
    let base = WatchResponse { events: Vec::new(), ..resp.clone() };
    let mut parts = Vec::new();
    let mut current = base.clone();
    let mut size = base.encoded_len();
    for event in resp.events {
        let event_size = event.encoded_len() + 8;
        if !current.events.is_empty() && size + event_size > limit {
            current.fragment = true;
            parts.push(std::mem::replace(&mut current, base.clone()));
            size = base.encoded_len();
        }
        size += event_size;
        current.events.push(event);
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests;
