//! A watch on this member's watch hub for the lock and election services: the same watchers the Watch
//! service serves, fed by the apply loop, so a waiter hears of a deletion as soon as this member applies it,
//! without polling. Dropping a [`KeyWatch`] removes its watcher.

use std::sync::Arc;

use meridian_consensus::RedbBackend;
use meridian_proto::etcdserverpb::watch_create_request::FilterType;
use meridian_proto::etcdserverpb::{WatchCreateRequest, WatchResponse};
use meridian_types::{EtcdError, Revision};
use tokio::sync::mpsc;

use crate::member::Member;
use crate::watch_hub::{StreamId, WatchHub};

/// Responses buffered before the hub falls back to catching the watcher up from history.
const BUFFER: usize = 16;

/// What a watch reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Events {
    /// Puts and deletes.
    All,
    /// Deletes only.
    Deletes,
}

/// One watcher on the member's hub, on a stream of its own.
pub struct KeyWatch {
    hub: Arc<WatchHub<RedbBackend>>,
    stream: StreamId,
    rx: mpsc::Receiver<Result<WatchResponse, tonic::Status>>,
}

impl KeyWatch {
    /// Watches the keys of (`key`, `range_end`) from revision `from` on.
    pub fn start(
        member: &Member,
        key: &[u8],
        range_end: &[u8],
        from: Revision,
        events: Events,
    ) -> Result<KeyWatch, EtcdError> {
        let hub = member.hub().clone();
        let stream = hub.open_stream();
        let (tx, rx) = mpsc::channel(BUFFER);
        let filters = match events {
            Events::All => Vec::new(),
            Events::Deletes => vec![FilterType::Noput as i32],
        };
        let req = WatchCreateRequest {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            start_revision: from.0,
            filters,
            ..Default::default()
        };
        // From here the stream is closed on drop, whatever happens next.
        let watch = KeyWatch { hub, stream, rx };
        let id = watch.hub.create(stream, &req, tx)?;
        watch.hub.announce(stream, id);
        Ok(watch)
    }

    /// The next response that carries events. A watcher cancelled because `from` was compacted is etcd's
    /// compaction error; a hub that went away (the member is stopping) is etcd's "server stopped".
    pub async fn next(&mut self) -> Result<WatchResponse, EtcdError> {
        loop {
            match self.rx.recv().await {
                Some(Ok(resp)) if resp.canceled => {
                    return Err(if resp.compact_revision > 0 { EtcdError::Compacted } else { EtcdError::Stopped });
                }
                Some(Ok(resp)) if resp.events.is_empty() => continue,
                Some(Ok(resp)) => return Ok(resp),
                Some(Err(_)) | None => return Err(EtcdError::Stopped),
            }
        }
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        self.hub.close_stream(self.stream);
    }
}
