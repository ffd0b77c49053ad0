//! Human-readable rendering of keys, values and operations, for violation messages.

use std::fmt;

use crate::history::{Call, Operation, Outcome};

/// Renders bytes as a quoted string, escaping anything that is not printable ASCII.
#[derive(Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `bytes` rendered by [`Bytes`], as an owned string.
pub fn show(bytes: &[u8]) -> String {
    Bytes(bytes).to_string()
}

fn show_opt(value: &Option<Vec<u8>>) -> String {
    value.as_deref().map_or_else(|| "absent".to_owned(), show)
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Put { key, value, lease: None } => write!(f, "put({}, {})", Bytes(key), Bytes(value)),
            Call::Put { key, value, lease: Some(l) } => {
                write!(f, "put({}, {}, lease {l})", Bytes(key), Bytes(value))
            }
            Call::Get { key } => write!(f, "get({})", Bytes(key)),
            Call::LocalGet { key, member } => write!(f, "serializable_get({}) at {member}", Bytes(key)),
            Call::Delete { key } => write!(f, "delete({})", Bytes(key)),
            Call::Cas { key, expected, value } => {
                write!(f, "cas({}, {} -> {})", Bytes(key), show_opt(expected), Bytes(value))
            }
            Call::LeaseGrant { ttl_secs } => write!(f, "lease_grant(ttl {ttl_secs}s)"),
            Call::LeaseKeepAlive { lease } => write!(f, "lease_keepalive({lease})"),
            Call::LeaseRevoke { lease } => write!(f, "lease_revoke({lease})"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Unknown => write!(f, "unknown"),
            Outcome::Failed { reason } => write!(f, "failed ({reason})"),
            Outcome::Put { revision } => write!(f, "ok @{revision}"),
            Outcome::Get { value, mod_revision, revision } => {
                write!(f, "{} mod@{mod_revision} @{revision}", show_opt(value))
            }
            Outcome::Delete { deleted, revision } => write!(f, "deleted {deleted} @{revision}"),
            Outcome::Cas { succeeded, revision } => {
                write!(f, "{} @{revision}", if *succeeded { "succeeded" } else { "failed compare" })
            }
            Outcome::LeaseGrant { lease, ttl_secs } => write!(f, "lease {lease} ttl {ttl_secs}s"),
            Outcome::LeaseKeepAlive { ttl_secs } => write!(f, "ttl {ttl_secs}s"),
            Outcome::LeaseRevoke { found } => write!(f, "{}", if *found { "revoked" } else { "not found" }),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let complete = self.complete.map_or_else(|| "?".to_owned(), |c| c.to_string());
        write!(
            f,
            "#{} client {} [{}..{}] {} -> {}",
            self.id, self.client, self.invoke, complete, self.call, self.outcome
        )
    }
}
