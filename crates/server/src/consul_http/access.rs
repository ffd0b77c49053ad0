//! Who is calling and what they may do. Credentials come as Consul's clients send them (`X-Consul-Token`,
//! `Authorization: Bearer`, `?token=`) carrying an etcd auth token, or as HTTP basic auth with an etcd user and
//! password (logged in through the member's `Authenticator`, throttled like any login); on a TLS listener
//! with client certificates the certificate's name counts as with gRPC. Permissions are etcd key permissions
//! on the records behind the answer: a service's keys under `/meridian/services/<svc>/`, the whole of
//! `/meridian/services/` for catalog-wide listings, a KV key's own range.

use axum::extract::ConnectInfo;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use meridian_kv::PermKind;
use meridian_proto::meridianpb::RequestAuth;
use meridian_registry::ServiceName;
use meridian_registry::keys::{SERVICES_PREFIX, service_prefix};
use meridian_types::reserved::prefix_end;

use super::params::Params;
use super::reply::{self, Refusal};
use crate::auth::CallerSource;
use crate::member::Member;
use crate::net::ConnInfo;

/// The credentials a request presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// None at all.
    None,
    /// An etcd auth token.
    Token(String),
    /// An etcd user and password (HTTP basic auth).
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

/// The credentials of a request with headers `parts` and query `params`: `X-Consul-Token`, then
/// `Authorization` (`Bearer` or `Basic`), then `?token=`. Empty values count as absent.
pub fn credentials(parts: &Parts, params: &Params) -> Credentials {
    let header_text = |name| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(t) = header_text(header::HeaderName::from_static("x-consul-token")).filter(|t| !t.is_empty()) {
        return Credentials::Token(t.to_owned());
    }
    if let Some(auth) = header_text(header::AUTHORIZATION) {
        if let Some(t) = strip_scheme(auth, "bearer").filter(|t| !t.is_empty()) {
            return Credentials::Token(t.to_owned());
        }
        if let Some(b) = strip_scheme(auth, "basic")
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b)
            && let Ok(text) = String::from_utf8(raw)
            && let Some((user, password)) = text.split_once(':')
        {
            return Credentials::Basic { user: user.to_owned(), password: password.to_owned() };
        }
    }
    match params.non_empty("token") {
        Some(t) => Credentials::Token(t.to_owned()),
        None => Credentials::None,
    }
}

/// `value` without its case-insensitive `scheme ` prefix.
fn strip_scheme<'v>(value: &'v str, scheme: &str) -> Option<&'v str> {
    let head = value.get(..scheme.len())?;
    let rest = value.get(scheme.len()..)?;
    (head.eq_ignore_ascii_case(scheme) && rest.starts_with(' ')).then(|| rest.trim())
}

/// The caller of a request: its credentials judged by the member's authenticator (nobody while auth is off).
pub async fn caller(member: &Member, parts: &Parts, params: &Params) -> Result<RequestAuth, Refusal> {
    let conn = parts.extensions.get::<ConnectInfo<ConnInfo>>().map(|c| c.0.clone()).unwrap_or_default();
    let token = match credentials(parts, params) {
        Credentials::None => None,
        Credentials::Token(t) => Some(t),
        Credentials::Basic { user, password } => {
            let auth = member.authenticator();
            auth.admit_login(&user, conn.remote_addr).map_err(|e| reply::etcd(&e))?;
            let store = member.kv().read().auth().clone();
            if store.enabled() {
                Some(auth.login(&user, password, conn.remote_addr, &store).await.map_err(|e| reply::etcd(&e))?)
            } else {
                None
            }
        }
    };
    let src = CallerSource { token, cert_name: conn.client_cert_name.0.clone(), remote: conn.remote_addr };
    Ok(member.caller(&src).map_err(|e| reply::etcd(&e))?)
}

/// Whether `who` may `kind` the keys of `[key, end)` (an empty `end`: the key alone).
pub fn allow(member: &Member, who: &RequestAuth, key: &[u8], end: &[u8], kind: PermKind) -> Result<(), Refusal> {
    member.kv().read().auth().check_range(who, key, end, kind).map_err(|e| reply::etcd(&e).into())
}

/// Whether `who` may `kind` the registrations of `service`.
pub fn service(member: &Member, who: &RequestAuth, service: &ServiceName, kind: PermKind) -> Result<(), Refusal> {
    let prefix = service_prefix(service);
    allow(member, who, prefix.as_bytes(), &prefix_end(&prefix), kind)
}

/// Whether `who` may read the whole catalog.
pub fn catalog(member: &Member, who: &RequestAuth) -> Result<(), Refusal> {
    allow(member, who, SERVICES_PREFIX.as_bytes(), &prefix_end(SERVICES_PREFIX), PermKind::Read)
}

/// Whether `who` is a known user (or auth is off): for answers that show no stored record.
pub fn user(member: &Member, who: &RequestAuth) -> Result<(), Refusal> {
    member.kv().read().auth().check_user(who).map_err(|e| reply::etcd(&e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn credentials_come_from_consuls_header_bearer_basic_or_the_query() {
        let none = Params::default();
        assert_eq!(credentials(&parts(&[]), &none), Credentials::None);
        assert_eq!(credentials(&parts(&[("X-Consul-Token", "t1")]), &none), Credentials::Token("t1".into()));
        assert_eq!(credentials(&parts(&[("X-Consul-Token", "")]), &none), Credentials::None, "empty is none");
        assert_eq!(credentials(&parts(&[("Authorization", "Bearer t2")]), &none), Credentials::Token("t2".into()));
        // "alice:s3cr:et" in base64: the password may hold colons.
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et"));
        assert_eq!(
            credentials(&parts(&[("Authorization", basic.as_str())]), &none),
            Credentials::Basic { user: "alice".into(), password: "s3cr:et".into() }
        );
        let query = Params::parse(Some("token=t3"));
        assert_eq!(credentials(&parts(&[]), &query), Credentials::Token("t3".into()));
        assert_eq!(
            credentials(&parts(&[("X-Consul-Token", "t1")]), &query),
            Credentials::Token("t1".into()),
            "the header wins"
        );
        assert_eq!(credentials(&parts(&[("Authorization", "Basic !!")]), &none), Credentials::None);
    }
}
