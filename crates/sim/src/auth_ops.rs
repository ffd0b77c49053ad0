//! The authentication part of a history: who each client speaks as, when authentication was switched on, every
//! operation of the limited user (what it touched, where it was sent, what the server answered), and what the
//! store held at the end that the limited user wrote outside its prefix.

use serde::{Deserialize, Serialize};

/// The limited user of the simulation.
pub const APP_USER: &str = "app";
/// Its password.
pub const APP_PASSWORD: &str = "app-pw";
/// Its role.
pub const APP_ROLE: &str = "app-rw";
/// The keys its role may read and write: `[APP_PREFIX, APP_PREFIX_END)`.
pub const APP_PREFIX: &[u8] = b"app/";
/// The end of its prefix.
pub const APP_PREFIX_END: &[u8] = b"app0";
/// Every value the limited user writes starts with this, so a value it wrote is recognised wherever it shows.
pub const APP_VALUE_MARK: &[u8] = b"app-user:";
/// A key root writes before authentication is on and nobody else may touch: it must survive the run.
pub const SENTINEL_KEY: &[u8] = b"secret/keep";
/// The sentinel's value.
pub const SENTINEL_VALUE: &[u8] = b"sentinel";

/// Who one client speaks as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCaller {
    /// The client.
    pub client: u32,
    /// The user its requests carry a token of.
    pub user: String,
}

/// A key or a range of keys, etcd style: empty `range_end` = the key alone, `"\0"` = every key from `key` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The key, or the start of the range.
    pub key: Vec<u8>,
    /// The end of the range (exclusive).
    pub range_end: Vec<u8>,
}

impl Span {
    /// One key.
    pub fn key(key: &[u8]) -> Self {
        Span { key: key.to_vec(), range_end: Vec::new() }
    }

    /// `[key, range_end)`.
    pub fn range(key: &[u8], range_end: &[u8]) -> Self {
        Span { key: key.to_vec(), range_end: range_end.to_vec() }
    }

    /// Whether every key of the span is inside the limited user's prefix.
    pub fn inside_app_prefix(&self) -> bool {
        let starts_inside = self.key.as_slice() >= APP_PREFIX && self.key.as_slice() < APP_PREFIX_END;
        match self.range_end.as_slice() {
            [] => starts_inside,
            [0] => false,
            end => starts_inside && end <= APP_PREFIX_END,
        }
    }
}

/// Which path of the API an operation of the limited user took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthPath {
    /// KV.Put.
    Put,
    /// KV.Put with a lease the user granted.
    PutWithLease,
    /// KV.DeleteRange.
    Delete,
    /// KV.Txn; its spans are every compare and every op of both branches, nested txns included.
    Txn,
    /// KV.Range through a ReadIndex barrier.
    LinearizableRange,
    /// KV.Range answered from the member's own store.
    SerializableRange,
    /// Watch create.
    WatchCreate,
    /// Lease.LeaseGrant (touches no key).
    LeaseGrant,
    /// Lease.LeaseRevoke; its spans are the keys attached to the lease.
    LeaseRevoke,
    /// Lease.LeaseTimeToLive listing the attached keys; its spans are those keys.
    LeaseTimeToLiveKeys,
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthOutcome {
    /// No answer (timeout, lost connection): a write may or may not have applied.
    Unknown,
    /// The server served the request.
    Succeeded {
        /// The keys of the data it returned (range results, attached keys), for the failure message.
        returned: Vec<Vec<u8>>,
    },
    /// The server refused it.
    Refused {
        /// The gRPC code, as a number.
        code: i32,
        /// The message (a watch's cancel reason).
        message: String,
    },
}

/// One operation of a limited user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthOp {
    /// Unique among the authentication operations.
    pub id: u64,
    /// The client that issued it.
    pub client: u32,
    /// The user it spoke as.
    pub user: String,
    /// The client URL of the member asked.
    pub member: String,
    /// The API path.
    pub path: AuthPath,
    /// Every key and range the request names.
    pub spans: Vec<Span>,
    /// The values it writes (or would, in either branch of a txn), by key.
    pub writes: Vec<KeyValue>,
    /// When it was sent.
    pub invoke: u64,
    /// When the answer came; `None` when unknown.
    pub complete: Option<u64>,
    /// The answer.
    pub outcome: AuthOutcome,
}

impl AuthOp {
    /// Whether the user's permissions cover every span.
    pub fn permitted(&self) -> bool {
        self.spans.iter().all(Span::inside_app_prefix)
    }
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

/// What the store held at the end of the run, read directly from a member once everything settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalScan {
    /// When it was read.
    pub at: u64,
    /// The member read.
    pub member: String,
    /// Every key outside the limited user's prefix holding a value it wrote.
    pub leaked: Vec<KeyValue>,
    /// The sentinel's value then (`None`: deleted).
    pub sentinel: Option<Vec<u8>>,
}

/// The authentication facts of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRecord {
    /// Who each client speaks as (clients not listed speak as root).
    pub callers: Vec<ClientCaller>,
    /// When authentication was enabled, as the setup client learned it; `None`: never.
    pub enabled_at: Option<u64>,
    /// Every operation of a limited user.
    pub ops: Vec<AuthOp>,
    /// The store at the end, when the runner could read it.
    pub final_scan: Option<FinalScan>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_inside_the_prefix() {
        assert!(Span::key(b"app/x").inside_app_prefix());
        assert!(Span::range(b"app/", b"app0").inside_app_prefix());
        assert!(Span::range(b"app/a", b"app/b").inside_app_prefix());
        assert!(!Span::key(b"k1").inside_app_prefix());
        assert!(!Span::key(b"app").inside_app_prefix());
        assert!(!Span::range(b"app/", b"b").inside_app_prefix());
        assert!(!Span::range(b"a", b"app0").inside_app_prefix());
        assert!(!Span::range(b"app/", b"\0").inside_app_prefix());
    }
}
