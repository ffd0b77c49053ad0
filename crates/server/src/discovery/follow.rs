//! Keeps the member's [`LiveCatalog`] equal to the registry in its own store: a range read of
//! `/meridian/health/` through `/meridian/services/` at one revision, then a watch from the next revision
//! through the member's watch hub (the same path a client's watch takes, so catch-up after a slow moment and
//! ordering come for free). A watch cancelled by compaction, or a hub that goes away, starts it over with a
//! fresh load.

use std::sync::Arc;

use meridian_proto::etcdserverpb::{RangeRequest, WatchCreateRequest};
use meridian_proto::mvccpb::KeyValue;
use meridian_registry::keys::{HEALTH_PREFIX, SERVICES_PREFIX};
use meridian_types::reserved::prefix_end;
use tokio::sync::mpsc;

use super::catalog::Catalog;
use super::live::LiveCatalog;
use crate::member::Member;

/// Responses buffered between the hub and the follower; a fuller buffer makes the hub catch the follower up
/// from history instead.
const BUFFER: usize = 256;

/// How a record is seen on its way from the store into the catalog: as it is, in production (the planted-bug seam
/// of `crate::planted::discovery_lens`, which `run` picks once).
pub type Lens = fn(&mut KeyValue);

/// Sees a record as it is.
pub fn as_stored(_: &mut KeyValue) {}

/// Follows the store until the task is aborted.
pub async fn follow(member: Arc<Member>, live: Arc<LiveCatalog>) {
    follow_through(member, live, as_stored).await
}

/// Follows the store until the task is aborted, every record seen through `lens`.
pub async fn follow_through(member: Arc<Member>, live: Arc<LiveCatalog>, lens: Lens) {
    loop {
        let Some(revision) = load(&member, &live, lens) else {
            // The store could not be read (it is being replaced by a snapshot): try again after a beat.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        watch_from(&member, &live, revision + 1, lens).await;
    }
}

/// Loads the catalog from the store; returns the revision it reflects.
fn load(member: &Member, live: &LiveCatalog, lens: Lens) -> Option<i64> {
    let req = RangeRequest {
        key: HEALTH_PREFIX.as_bytes().to_vec(),
        range_end: prefix_end(SERVICES_PREFIX),
        ..Default::default()
    };
    let (mut kvs, revision) = {
        let kv = member.kv().read();
        match kv.range(&req) {
            Ok(resp) => (resp.kvs, kv.current_revision().0),
            Err(e) => {
                tracing::warn!(error = %e, "loading the service catalog failed");
                return None;
            }
        }
    };
    kvs.iter_mut().for_each(lens);
    live.replace(Catalog::load(&kvs, revision));
    Some(revision)
}

/// Applies the registry's events from `start` on until the watch ends.
async fn watch_from(member: &Member, live: &LiveCatalog, start: i64, lens: Lens) {
    let hub = member.hub();
    let stream = hub.open_stream();
    let (tx, mut rx) = mpsc::channel(BUFFER);
    let req = WatchCreateRequest {
        key: HEALTH_PREFIX.as_bytes().to_vec(),
        range_end: prefix_end(SERVICES_PREFIX),
        start_revision: start,
        ..Default::default()
    };
    let id = match hub.create(stream, &req, tx) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "watching the service catalog failed");
            return;
        }
    };
    hub.announce(stream, id);
    while let Some(Ok(mut resp)) = rx.recv().await {
        if resp.canceled || resp.compact_revision != 0 {
            tracing::info!(compacted = resp.compact_revision, "the catalog's watch was cancelled; reloading");
            break;
        }
        let Some(last) = resp.events.iter().filter_map(|e| e.kv.as_ref()).map(|kv| kv.mod_revision).max() else {
            continue;
        };
        resp.events.iter_mut().filter_map(|e| e.kv.as_mut()).for_each(lens);
        live.update(|catalog| catalog.apply(&resp.events, last));
    }
    hub.close_stream(stream);
}
