//! Writing answers as Consul does: JSON bodies, plain-text errors with Consul's status codes and texts, and the
//! headers of the blocking-capable endpoints (`X-Consul-Index`, `X-Consul-KnownLeader`, `X-Consul-LastContact`),
//! which every answer of those endpoints carries, errors included, as python3-consul requires.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use meridian_types::EtcdError;
use serde::Serialize;

use crate::discovery::DiscoveryError;
use crate::member::Member;

/// An error answer that ends a handler early (boxed: a `Response` is large, and most calls succeed).
pub type Refusal = Box<Response>;

/// A handler's outcome: the answer, or the error answer that ended it early.
pub type Answer = Result<Response, Refusal>;

/// Either side of an [`Answer`].
pub fn done(answer: Answer) -> Response {
    answer.unwrap_or_else(|e| *e)
}

/// `200` with `value` as JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding the answer: {e}")),
    }
}

/// `200` with an empty body: what Consul's agent answers to a write that worked.
pub fn empty() -> Response {
    StatusCode::OK.into_response()
}

/// `status` with a plain-text `message`.
pub fn text(status: StatusCode, message: &str) -> Response {
    let mut body = message.to_owned();
    if !body.is_empty() && !body.ends_with('\n') {
        body.push('\n');
    }
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], body).into_response()
}

/// `400` with `message`.
pub fn bad_request(message: &str) -> Response {
    text(StatusCode::BAD_REQUEST, message)
}

/// `404` with `message`.
pub fn not_found(message: &str) -> Response {
    text(StatusCode::NOT_FOUND, message)
}

/// Consul's answer to a request without valid credentials while auth is on.
pub fn acl_not_found() -> Response {
    text(StatusCode::FORBIDDEN, "ACL not found")
}

/// Consul's answer to a request whose credentials lack the permission.
pub fn permission_denied() -> Response {
    text(StatusCode::FORBIDDEN, "Permission denied")
}

/// A store error: auth failures as Consul's 403s, anything else `500` with etcd's message text.
pub fn etcd(e: &EtcdError) -> Response {
    match e {
        EtcdError::InvalidAuthToken | EtcdError::UserEmpty | EtcdError::AuthFailed => acl_not_found(),
        EtcdError::PermissionDenied | EtcdError::AuthOldRevision | EtcdError::ReservedKey => permission_denied(),
        EtcdError::RemoteNeedsAuth | EtcdError::TooManyRequests => text(StatusCode::FORBIDDEN, &e.to_string()),
        other => text(StatusCode::INTERNAL_SERVER_ERROR, &other.to_string()),
    }
}

/// A discovery operation's failure, in Consul's codes: bad input 400, unknown ids 404, the rest 500.
pub fn discovery(e: &DiscoveryError) -> Response {
    match e {
        DiscoveryError::BadRequest(m) => bad_request(m),
        DiscoveryError::UnknownInstance(r) => not_found(&unknown_service(r.id.as_str())),
        DiscoveryError::UnknownCheck(id) => not_found(&unknown_check(id)),
        DiscoveryError::NotTtl(c) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("CheckID {:?} does not have associated TTL", c.check.as_str()),
        ),
        DiscoveryError::Store(e) => etcd(e),
    }
}

/// Consul's text for an unknown service id.
pub fn unknown_service(id: &str) -> String {
    format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name.")
}

/// Consul's text for an unknown check id.
pub fn unknown_check(id: &str) -> String {
    format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name.")
}

/// The blocking-query headers' values: the index (never 0), whether a leader is known, and the milliseconds
/// since the leader was last heard from.
pub fn index_headers(index: u64, known_leader: bool, last_contact_ms: u64) -> [(HeaderName, HeaderValue); 3] {
    [
        (HeaderName::from_static("x-consul-index"), HeaderValue::from(index.max(1))),
        (
            HeaderName::from_static("x-consul-knownleader"),
            HeaderValue::from_static(if known_leader { "true" } else { "false" }),
        ),
        (HeaderName::from_static("x-consul-lastcontact"), HeaderValue::from(last_contact_ms)),
    ]
}

/// `res` with the blocking-query headers for `index` as `member` sees its leader now. The last contact is 0 on
/// the leader and without one; on a follower, the milliseconds since the leader last answered its probes (sent
/// every heartbeat), as a stale read's client judges how far behind it may be.
pub fn indexed(mut res: Response, index: u64, member: &Member) -> Response {
    let leader = member.raft().current_leader();
    let last_contact = match leader {
        Some(leader) if leader != member.id() => member.reach().silence_ms(leader).unwrap_or(0),
        _ => 0,
    };
    for (name, value) in index_headers(index, leader.is_some(), last_contact) {
        res.headers_mut().insert(name, value);
    }
    res
}

/// Both sides of `answer` with the blocking-query headers.
pub fn indexed_answer(answer: Answer, index: u64, member: &Member) -> Response {
    indexed(done(answer), index, member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_headers_never_say_zero() {
        let [(n1, v1), (n2, v2), (n3, v3)] = index_headers(0, false, 12);
        assert_eq!((n1.as_str(), v1.to_str().unwrap()), ("x-consul-index", "1"));
        assert_eq!((n2.as_str(), v2.to_str().unwrap()), ("x-consul-knownleader", "false"));
        assert_eq!((n3.as_str(), v3.to_str().unwrap()), ("x-consul-lastcontact", "12"));
        assert_eq!(index_headers(77, true, 0)[0].1.to_str().unwrap(), "77");
        assert_eq!(index_headers(77, true, 0)[1].1.to_str().unwrap(), "true");
    }

    #[test]
    fn store_errors_keep_etcds_text_and_auth_errors_become_consuls_403s() {
        let res = etcd(&EtcdError::NoSpace);
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(etcd(&EtcdError::PermissionDenied).status(), StatusCode::FORBIDDEN);
        assert_eq!(etcd(&EtcdError::InvalidAuthToken).status(), StatusCode::FORBIDDEN);
        assert!(unknown_check("c1").starts_with("Unknown check ID \"c1\""));
        assert!(unknown_service("web-1").starts_with("Unknown service ID \"web-1\""));
    }
}
