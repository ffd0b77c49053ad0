//! Waiting for one's turn in the queue of a lock or an election (etcd's `waitDeletes`): read the key created
//! last before one's own; if there is none, it is one's turn; otherwise wait for that key's deletion on the
//! watch hub and read again (the key ahead may have been deleted while a key further ahead remains).

use meridian_proto::etcdserverpb::ResponseHeader;
use meridian_proto::mvccpb::event::EventType;
use meridian_types::{EtcdError, Revision};

use super::client::Caller;
use super::key_watch::{Events, KeyWatch};
use super::keys;

/// Waits until no key under `prefix` was created at or before `max_create`, and returns the header of the read
/// that found none.
pub async fn wait_turn(caller: &Caller, prefix: &[u8], max_create: Revision) -> Result<ResponseHeader, EtcdError> {
    loop {
        let resp = caller.range(keys::last_created_up_to(prefix, max_create)).await?;
        let header = resp.header.unwrap_or_default();
        let Some(ahead) = resp.kvs.into_iter().next() else {
            return Ok(header);
        };
        wait_delete(caller, &ahead.key, Revision(header.revision)).await?;
    }
}

/// Waits for `key`, which existed at revision `seen`, to be deleted after it.
async fn wait_delete(caller: &Caller, key: &[u8], seen: Revision) -> Result<(), EtcdError> {
    let mut watch = KeyWatch::start(caller.member(), key, &[], Revision(seen.0 + 1), Events::Deletes)?;
    loop {
        let resp = watch.next().await?;
        if resp.events.iter().any(|e| e.r#type == EventType::Delete as i32) {
            return Ok(());
        }
    }
}
