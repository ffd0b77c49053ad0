//! Consul's blocking queries (`?index=N&wait=D`): a request is held until the index of its answer moves past
//! `N` or `D` ends, then answered with the current result. Catalog and health answers wait on the member's
//! [`LiveCatalog`] (scoped to one service where the answer is one service's); KV answers wait on an internal
//! watch of the key or prefix through the member's watch hub, the same path a client's watch takes. Also here:
//! [`answer`], the common frame of catalog-backed endpoints, and [`settle`], which lets a write through this
//! member be read back from its catalog at once.

use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use meridian_proto::etcdserverpb::WatchCreateRequest;
use meridian_proto::meridianpb::RequestAuth;
use tokio::sync::mpsc;

use super::params::Blocking;
use super::reply::{self, Answer, Refusal};
use super::{Api, Call, begin};
use crate::discovery::catalog::Catalog;
use crate::discovery::live::Watched;
use crate::member::Member;
use crate::watch_hub::StreamId;

/// How long an answer waits for the catalog's first load after the member starts.
const LOAD_WAIT: Duration = Duration::from_secs(5);
/// How long a write waits to show in this member's catalog before it is answered anyway.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// The index a catalog answer about `what` carries.
pub fn catalog_index(catalog: &Catalog, what: &Watched) -> u64 {
    Catalog::answer_index(match what {
        Watched::Everything => catalog.changed(),
        Watched::Service(s) => catalog.service_changed(s),
    })
}

/// A catalog-backed endpoint: judges the caller with `allowed`, holds a blocking query on `what`, then
/// answers with `render` over the catalog. Every answer, errors included, carries the `X-Consul-*` headers.
pub async fn answer(
    api: &Api,
    req: Request,
    what: Watched,
    allowed: impl FnOnce(&Member, &RequestAuth) -> Result<(), Refusal>,
    render: impl FnOnce(&Call, &Catalog) -> Answer,
) -> Response {
    let _ = tokio::time::timeout(LOAD_WAIT, api.live().wait_loaded()).await;
    let call = match begin(api, req).await {
        Ok(call) => call,
        Err(res) => return reply::indexed(*res, catalog_index(&api.live().read(), &what), api.member()),
    };
    let held = async {
        allowed(api.member(), &call.who)?;
        if let Some(Blocking { index, wait }) = call.params.blocking().map_err(|e| reply::bad_request(&e))? {
            api.live().wait_past(&what, i64::try_from(index).unwrap_or(i64::MAX), wait).await;
        }
        Ok::<(), Refusal>(())
    }
    .await;
    let catalog = api.live().read();
    let index = catalog_index(&catalog, &what);
    let answer = held.and_then(|()| render(&call, &catalog));
    drop(catalog);
    reply::indexed_answer(answer, index, api.member())
}

/// Waits (at most [`SETTLE_WAIT`]) until `shown` holds of this member's catalog: after a write through this
/// member, so that the client reads its own write back from any endpoint.
pub async fn settle(api: &Api, shown: impl Fn(&Catalog) -> bool) {
    let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
    loop {
        let changed = {
            let catalog = api.live().read();
            if shown(&catalog) {
                return;
            }
            catalog.changed()
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            tracing::debug!("a write through the HTTP API did not show in the catalog in time");
            return;
        }
        api.live().wait_past(&Watched::Everything, changed, left).await;
    }
}

/// Closes an internal watch stream however its waiter ends (answered, timed out, or dropped with its request).
struct OpenStream<'m> {
    member: &'m Member,
    stream: StreamId,
}

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.member.hub().close_stream(self.stream);
    }
}

/// Waits until a key of `[key, end)` changes after revision `index`, or `wait` ends. A revision that was
/// compacted away, or any failure to watch, answers at once (the client reads again and gets a newer index).
pub async fn kv(member: &Member, key: &[u8], end: &[u8], index: u64, wait: Duration) {
    let hub = member.hub();
    let open = OpenStream { member, stream: hub.open_stream() };
    let (tx, mut rx) = mpsc::channel(4);
    let req = WatchCreateRequest {
        key: key.to_vec(),
        range_end: end.to_vec(),
        start_revision: i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1),
        ..Default::default()
    };
    let Ok(id) = hub.create(open.stream, &req, tx) else { return };
    hub.announce(open.stream, id);
    let changed = async {
        while let Some(Ok(resp)) = rx.recv().await {
            if resp.canceled || resp.compact_revision != 0 || !resp.events.is_empty() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(wait, changed).await;
    drop(open);
}
