//! The member's authenticator: turns a request's credentials into the caller it names, logs users in (with
//! throttling), issues and checks tokens, and hashes passwords off the async threads (inline in the
//! simulation, whose salts and tokens come from its seed so that a run replays).

use std::net::{IpAddr, SocketAddr};

use meridian_kv::AuthStore;
use meridian_proto::meridianpb::RequestAuth;
use meridian_types::EtcdError;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::jwt::Jwt;
use super::password;
use super::settings::{AuthSettings, TokenKind};
use super::simple_tokens::SimpleTokens;
use super::throttle::Throttle;
use crate::clock::Clock;

/// etcd's metadata key for the token, and grpc-gateway's.
const TOKEN_KEYS: [&str; 2] = ["token", "authorization"];

/// The credentials one request arrived with.
#[derive(Clone, Debug, Default)]
pub struct CallerSource {
    /// The token from the request metadata.
    pub token: Option<String>,
    /// The verified client certificate's common name, when the connection presented one.
    pub cert_name: Option<String>,
    /// Where the request came from.
    pub remote: Option<SocketAddr>,
}

impl CallerSource {
    /// The credentials of a gRPC request.
    pub fn of<T>(req: &tonic::Request<T>) -> CallerSource {
        let token = TOKEN_KEYS
            .iter()
            .find_map(|k| req.metadata().get(*k))
            .and_then(|v| v.to_str().ok())
            .map(|t| t.strip_prefix("Bearer ").unwrap_or(t).to_owned());
        CallerSource { token, cert_name: crate::net::client_cert_name(req), remote: crate::net::remote_addr(req) }
    }
}

struct State {
    tokens: SimpleTokens,
    throttle: Throttle,
    rng: StdRng,
    issued: u64,
}

/// See the module comment.
pub struct Authenticator {
    settings: AuthSettings,
    jwt: Option<Jwt>,
    client_cert_auth: bool,
    /// The client listener is beyond loopback with neither client certificates nor the explicit insecure flag:
    /// while auth is off, only loopback clients are served.
    remote_needs_auth: bool,
    clock: Clock,
    /// Hash on the calling task (the simulation) rather than on a blocking thread.
    inline: bool,
    state: Mutex<State>,
}

impl Authenticator {
    /// An authenticator with `settings` (`client_cert_auth`: a verified certificate names its user;
    /// `remote_needs_auth`: remote clients wait for auth to be on). `seed` makes salts and tokens reproducible and
    /// hashing inline (the simulation); `None` draws them from the operating system.
    pub fn new(
        settings: AuthSettings,
        client_cert_auth: bool,
        remote_needs_auth: bool,
        clock: Clock,
        seed: Option<u64>,
    ) -> Result<Self, String> {
        let jwt = match &settings.token {
            TokenKind::Simple => None,
            TokenKind::Jwt { public_key, private_key, sign_method, ttl } => {
                let read =
                    |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("auth-token: {}: {e}", p.display()));
                let public = read(public_key)?;
                let private = private_key.as_deref().map(read).transpose()?;
                Some(Jwt::new(sign_method, &public, private.as_deref(), *ttl)?)
            }
        };
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => rand::make_rng(),
        };
        let state = State { tokens: SimpleTokens::default(), throttle: Throttle::default(), rng, issued: 0 };
        let inline = seed.is_some();
        Ok(Authenticator {
            settings,
            jwt,
            client_cert_auth,
            remote_needs_auth,
            clock,
            inline,
            state: Mutex::new(state),
        })
    }

    /// The caller a request with `src` speaks for, judged against `store`: its token's user, else (with
    /// client-certificate auth) its certificate's common name, else nobody (auth revision 0, which every check
    /// refuses while auth is on). An unknown, expired or forged token is an error, as in etcd.
    pub fn caller(&self, src: &CallerSource, store: &AuthStore) -> Result<RequestAuth, EtcdError> {
        if !store.enabled() && self.remote_needs_auth && src.remote.is_some_and(|a| !a.ip().is_loopback()) {
            return Err(EtcdError::RemoteNeedsAuth);
        }
        // A token is judged even while this member's store says auth is off: a member that restarted may not
        // have replayed `auth enable` yet (and forgot the tokens it issued); taking the caller as nobody then would
        // have the request refused where it applies, with auth on. An unknown token makes the client log in again,
        // which reads after a barrier.
        if let Some(token) = &src.token {
            return self.token_user(token, store).ok_or(EtcdError::InvalidAuthToken);
        }
        if !store.enabled() {
            return Ok(RequestAuth { username: String::new(), auth_revision: store.revision() });
        }
        match &src.cert_name {
            Some(cn) if self.client_cert_auth => {
                Ok(RequestAuth { username: cn.clone(), auth_revision: store.revision() })
            }
            _ => Ok(RequestAuth { username: String::new(), auth_revision: 0 }),
        }
    }

    fn token_user(&self, token: &str, store: &AuthStore) -> Option<RequestAuth> {
        if let Some(jwt) = &self.jwt {
            let (username, auth_revision) = jwt.verify(token)?;
            return store.user(&username).map(|_| RequestAuth { username, auth_revision });
        }
        let now = self.clock.now_ms();
        let ttl = self.settings.token_ttl.as_millis() as u64;
        let hash_of = |u: &str| store.user(u).map(|u| u.password.clone());
        let username = self.state.lock().tokens.user(token, now, ttl, hash_of)?;
        Some(RequestAuth { username, auth_revision: store.revision() })
    }

    /// The base64 bcrypt hash of a new password, computed off the async threads.
    pub async fn hash_password(&self, password: String) -> Result<String, EtcdError> {
        let salt: [u8; 16] = self.state.lock().rng.random();
        let cost = self.settings.bcrypt_cost;
        self.blocking(move || password::hash(&password, cost, salt)).await
    }

    /// Refuses a login attempt while `user` or the source address is locked out.
    pub fn admit_login(&self, user: &str, remote: Option<SocketAddr>) -> Result<(), EtcdError> {
        let ip = remote.map(|a| a.ip());
        match self.state.lock().throttle.check(self.clock.now_ms(), user, ip) {
            Ok(()) => Ok(()),
            Err(retry_ms) => {
                tracing::warn!(user, addr = ?ip, retry_ms, "login refused: too many failed attempts");
                Err(EtcdError::TooManyRequests)
            }
        }
    }

    /// Checks `password` for `user` in `store` (a view at least as new as a read barrier) and issues a token.
    /// Failures are counted for throttling and logged without the password.
    pub async fn login(
        &self,
        user: &str,
        password: String,
        remote: Option<SocketAddr>,
        store: &AuthStore,
    ) -> Result<String, EtcdError> {
        if !store.enabled() {
            return Err(EtcdError::AuthNotEnabled);
        }
        let revision = store.revision();
        let stored =
            store.user(user).filter(|u| !u.options.as_ref().is_some_and(|o| o.no_password)).map(|u| u.password.clone());
        let ok = match stored.clone() {
            Some(hash) => self.blocking(move || Ok(password::verify(&password, &hash))).await?,
            None => false,
        };
        let ip: Option<IpAddr> = remote.map(|a| a.ip());
        let mut state = self.state.lock();
        if !ok {
            state.throttle.failed(self.clock.now_ms(), user, ip);
            tracing::warn!(user, addr = ?ip, "authentication failed");
            return Err(EtcdError::AuthFailed);
        }
        state.throttle.succeeded(user);
        if let Some(jwt) = &self.jwt {
            return jwt.sign(user, revision).map_err(|e| EtcdError::Internal(format!("auth: {e}")));
        }
        state.issued += 1;
        let letters: String = (0..16).map(|_| char::from(b'a' + state.rng.random_range(0..26u8))).collect();
        let token = format!("{letters}.{}", state.issued);
        let ttl = self.settings.token_ttl.as_millis() as u64;
        state.tokens.insert(token.clone(), user, &stored.unwrap_or_default(), self.clock.now_ms(), ttl);
        Ok(token)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, EtcdError> + Send + 'static,
    ) -> Result<T, EtcdError> {
        if self.inline {
            return work();
        }
        tokio::task::spawn_blocking(work).await.map_err(|e| EtcdError::Internal(format!("auth: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(remote_needs_auth: bool) -> Authenticator {
        let settings = AuthSettings { bcrypt_cost: password::MIN_COST, ..AuthSettings::default() };
        Authenticator::new(settings, false, remote_needs_auth, Clock::new(), Some(7)).expect("authenticator")
    }

    fn from(addr: &str) -> CallerSource {
        CallerSource { remote: Some(addr.parse().expect("addr")), ..CallerSource::default() }
    }

    #[tokio::test]
    async fn a_remote_client_waits_for_auth_on_an_open_remote_listener() {
        let store = AuthStore::default();
        let guarded = authenticator(true);
        assert_eq!(guarded.caller(&from("10.0.0.7:5000"), &store), Err(EtcdError::RemoteNeedsAuth));
        assert!(guarded.caller(&from("127.0.0.1:5000"), &store).is_ok(), "loopback sets auth up");
        assert!(authenticator(false).caller(&from("10.0.0.7:5000"), &store).is_ok(), "client certificates gate it");
        let stale = CallerSource { token: Some("from.an-earlier-life".into()), ..from("127.0.0.1:5000") };
        assert_eq!(
            guarded.caller(&stale, &store),
            Err(EtcdError::InvalidAuthToken),
            "a token is judged even while this member's store has auth off (it may not have replayed the enable)"
        );
    }

    /// An auth store with root (root role) and auth on, applied through the log as members do.
    fn enabled_store() -> AuthStore {
        use meridian_proto::etcdserverpb::{AuthEnableRequest, AuthUserAddRequest, AuthUserGrantRoleRequest};
        use meridian_proto::meridianpb::auth_command::Op;
        use meridian_proto::meridianpb::raft_command::Cmd;
        use meridian_proto::meridianpb::{AuthCommand, RaftCommand};
        let mut kv = meridian_kv::KvStore::open(meridian_kv::MemBackend::new()).expect("store");
        let add = AuthUserAddRequest { name: "root".into(), hashed_password: "aA==".into(), ..Default::default() };
        let grant = AuthUserGrantRoleRequest { user: "root".into(), role: "root".into() };
        for op in [Op::UserAdd(add), Op::UserGrantRole(grant), Op::Enable(AuthEnableRequest {})] {
            let cmd = RaftCommand {
                auth: None,
                cmd: Some(Cmd::AuthChange(AuthCommand { op: Some(op) })),
                ..Default::default()
            };
            kv.apply(&cmd).expect("applied");
        }
        kv.auth().clone()
    }

    #[tokio::test]
    async fn a_certificate_names_its_user_only_with_client_cert_auth() {
        let store = enabled_store();
        let src = CallerSource { cert_name: Some("alice".into()), ..CallerSource::default() };
        let plain = authenticator(false);
        assert_eq!(plain.caller(&src, &store).unwrap().username, "", "without --client-cert-auth the CN is ignored");
        let settings = AuthSettings { bcrypt_cost: password::MIN_COST, ..AuthSettings::default() };
        let by_cert = Authenticator::new(settings, true, false, Clock::new(), Some(7)).unwrap();
        let who = by_cert.caller(&src, &store).unwrap();
        assert_eq!((who.username.as_str(), who.auth_revision), ("alice", store.revision()));
        let forged = CallerSource { token: Some("nope".into()), ..src };
        assert_eq!(by_cert.caller(&forged, &store), Err(EtcdError::InvalidAuthToken), "a bad token is not ignored");
    }
}
