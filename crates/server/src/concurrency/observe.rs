//! Observe (etcd's `Election.Observe`): the leader of an election now, then every change of it. It reads the
//! first-created key (waiting for the first put under the prefix when there is none), reports it, then follows
//! that key with a watch and reports every new value, until the key is deleted; then it reads the leader
//! again. Like etcd's, the stream ends quietly, without an error, when a read or a watch fails (a caller
//! without read permission on the prefix gets an empty stream), and when the client goes away.

use meridian_proto::etcdserverpb::ResponseHeader;
use meridian_proto::mvccpb::KeyValue;
use meridian_proto::mvccpb::event::EventType;
use meridian_proto::v3electionpb::LeaderResponse;
use meridian_types::{EtcdError, Revision};
use tokio::sync::mpsc;

use super::client::Caller;
use super::key_watch::{Events, KeyWatch};
use super::keys;

/// Sends election `name`'s leaders to `out` until the stream ends (see the module comment).
pub async fn observe(caller: Caller, name: Vec<u8>, out: mpsc::Sender<LeaderResponse>) {
    let prefix = keys::prefix(&name);
    tokio::select! {
        _ = follow(&caller, &prefix, &out) => {}
        () = out.closed() => {}
    }
}

/// The observe loop; returns when a read or watch fails or `out` is closed.
async fn follow(caller: &Caller, prefix: &[u8], out: &mpsc::Sender<LeaderResponse>) -> Result<(), EtcdError> {
    loop {
        let (header, leader) = current_or_next(caller, prefix).await?;
        let from = Revision(header.revision + 1);
        send(out, header, leader.clone()).await?;
        let mut watch = KeyWatch::start(caller.member(), &leader.key, &[], from, Events::All)?;
        'leader: loop {
            let resp = watch.next().await?;
            for event in resp.events {
                if event.r#type == EventType::Delete as i32 {
                    break 'leader;
                }
                send(out, resp.header.unwrap_or_default(), event.kv.unwrap_or_default()).await?;
            }
        }
    }
}

/// The leader now, or, when there is none, the first key put under the prefix after the read (with a header at
/// that put's revision).
async fn current_or_next(caller: &Caller, prefix: &[u8]) -> Result<(ResponseHeader, KeyValue), EtcdError> {
    let resp = caller.range(keys::first_created(prefix)).await?;
    let header = resp.header.unwrap_or_default();
    if let Some(kv) = resp.kvs.into_iter().next() {
        return Ok((header, kv));
    }
    let end = keys::prefix_end(prefix);
    let mut watch = KeyWatch::start(caller.member(), prefix, &end, Revision(header.revision), Events::All)?;
    loop {
        let resp = watch.next().await?;
        let put = resp.events.into_iter().find(|e| e.r#type == EventType::Put as i32).and_then(|e| e.kv);
        if let Some(kv) = put {
            let header = ResponseHeader { revision: kv.mod_revision, ..resp.header.unwrap_or_default() };
            return Ok((header, kv));
        }
    }
}

async fn send(out: &mpsc::Sender<LeaderResponse>, header: ResponseHeader, kv: KeyValue) -> Result<(), EtcdError> {
    let resp = LeaderResponse { header: Some(header), kv: Some(kv) };
    // The client went away: nothing more to observe for.
    out.send(resp).await.map_err(|_| EtcdError::Stopped)
}
