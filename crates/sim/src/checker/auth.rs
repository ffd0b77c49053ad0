//! Permissions: no operation of the limited user that names anything outside its prefix may succeed (an
//! acknowledged write, a range that answered, a watch that was created, a txn that answered, a lease revoked or
//! listed), no value it wrote outside the prefix may ever be seen (by a read, a watch or the final scan of the
//! store, which also catches a write whose outcome the client never learned), the sentinel root owns must
//! survive, refusals must carry etcd's texts, and nothing inside the prefix may be refused for permissions.

use std::collections::HashMap;

use crate::auth_ops::{APP_VALUE_MARK, AuthOp, AuthOutcome, AuthPath, SENTINEL_KEY, SENTINEL_VALUE, Span};
use crate::display::show;
use crate::history::{History, Outcome};

/// The refusal texts a permission check may answer with.
const REFUSALS: [&str; 3] =
    ["etcdserver: permission denied", "etcdserver: user name is empty", "etcdserver: revision of auth store is old"];

/// A broken permission invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthViolation {
    /// An operation naming keys outside the user's permissions was served.
    #[error("{user}'s {path:?} #{op} at {member} names {span}, outside its permissions, and succeeded{returned}")]
    Served {
        /// The operation.
        op: u64,
        /// Its user.
        user: String,
        /// Its path.
        path: AuthPath,
        /// The member asked.
        member: String,
        /// The first span outside the permissions.
        span: String,
        /// What it returned, if anything.
        returned: String,
    },
    /// An operation inside the user's permissions was refused as if it were not.
    #[error("{user}'s {path:?} #{op} at {member} stays inside its permissions but was refused: {message}")]
    RefusedInside {
        /// The operation.
        op: u64,
        /// Its user.
        user: String,
        /// Its path.
        path: AuthPath,
        /// The member asked.
        member: String,
        /// The refusal.
        message: String,
    },
    /// A permission refusal without etcd's text.
    #[error("{user}'s {path:?} #{op} at {member} was refused with {message:?}, not one of etcd's permission texts")]
    WrongText {
        /// The operation.
        op: u64,
        /// Its user.
        user: String,
        /// Its path.
        path: AuthPath,
        /// The member asked.
        member: String,
        /// The refusal.
        message: String,
    },
    /// A value the limited user wrote outside its prefix was seen.
    #[error("{value} at {key}, written by the limited user outside its prefix ({by_op}), was seen by {seen_by}")]
    Leaked {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The write, as far as the history says.
        by_op: String,
        /// Who saw it.
        seen_by: String,
    },
    /// The sentinel key root owns was changed or deleted.
    #[error("the sentinel {key} nobody may write holds {found} at the end of the run")]
    Sentinel {
        /// The key.
        key: String,
        /// What it held.
        found: String,
    },
}

/// Checks the authentication record of `history` (nothing when the run had none).
pub fn check(history: &History) -> Vec<AuthViolation> {
    let Some(auth) = &history.auth else { return Vec::new() };
    let mut out: Vec<AuthViolation> = auth.ops.iter().filter_map(judge).collect();
    let writers: HashMap<&[u8], &AuthOp> =
        auth.ops.iter().flat_map(|op| op.writes.iter().map(move |w| (w.value.as_slice(), op))).collect();
    let mut leaked = |key: &[u8], value: &[u8], seen_by: String| {
        if value.starts_with(APP_VALUE_MARK) && !Span::key(key).inside_app_prefix() {
            let by_op = writers
                .get(value)
                .map_or("no recorded write".to_owned(), |op| format!("#{} {:?} at {}", op.id, op.path, op.member));
            out.push(AuthViolation::Leaked { key: show(key), value: show(value), by_op, seen_by });
        }
    };
    for op in &history.ops {
        if let (Some(key), Outcome::Get { value: Some(value), .. }) = (op.call.key(), &op.outcome) {
            leaked(key, value, format!("read #{} of client {}", op.id, op.client));
        }
    }
    for (i, w) in history.watches.iter().enumerate() {
        for e in w.responses.iter().flat_map(|r| &r.events) {
            leaked(&e.key, &e.value, format!("watch {i} of client {} at revision {}", w.client, e.mod_revision));
        }
    }
    if let Some(scan) = &auth.final_scan {
        for kv in &scan.leaked {
            leaked(&kv.key, &kv.value, format!("the final scan of {}", scan.member));
        }
        if auth.enabled_at.is_some() && scan.sentinel.as_deref() != Some(SENTINEL_VALUE) {
            let found = scan.sentinel.as_deref().map_or("nothing (deleted)".to_owned(), show);
            out.push(AuthViolation::Sentinel { key: show(SENTINEL_KEY), found });
        }
    }
    out
}

/// What is wrong with one operation's answer, if anything.
fn judge(op: &AuthOp) -> Option<AuthViolation> {
    let (user, path, member) = (op.user.clone(), op.path, op.member.clone());
    match &op.outcome {
        AuthOutcome::Unknown => None,
        AuthOutcome::Succeeded { returned } => {
            let span = op.spans.iter().find(|s| !s.inside_app_prefix())?;
            let span = if span.range_end.is_empty() {
                show(&span.key)
            } else {
                format!("[{}, {})", show(&span.key), show(&span.range_end))
            };
            let returned = if returned.is_empty() {
                String::new()
            } else {
                let keys: Vec<String> = returned.iter().map(|k| show(k)).collect();
                format!(", returning {}", keys.join(", "))
            };
            Some(AuthViolation::Served { op: op.id, user, path, member, span, returned })
        }
        AuthOutcome::Refused { code, message } => {
            let permission = *code == tonic::Code::PermissionDenied as i32 || message.contains("permission");
            // A refused watch carries the refusal in its cancel reason as etcd writes it there: the whole gRPC
            // error text ("rpc error: code = PermissionDenied desc = etcdserver: permission denied").
            let text = message.strip_prefix("rpc error: code = PermissionDenied desc = ").unwrap_or(message);
            if permission && !REFUSALS.contains(&text) {
                return Some(AuthViolation::WrongText { op: op.id, user, path, member, message: message.clone() });
            }
            let for_permissions = permission && text != REFUSALS[2];
            (for_permissions && op.permitted()).then(|| AuthViolation::RefusedInside {
                op: op.id,
                user,
                path,
                member,
                message: message.clone(),
            })
        }
    }
}
