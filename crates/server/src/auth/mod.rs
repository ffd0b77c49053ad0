//! Who is calling: the server's side of etcd authentication. Credentials (a token in the `token` metadata, or
//! with `--client-cert-auth` the verified client certificate's common name) become the [`RequestAuth`] a
//! request carries: reads are judged on the member that serves them, writes on every member when they apply
//! (the caller travels inside the replicated command, so forwarding cannot lose it). Passwords are hashed
//! here, on the member that takes the request, never inside apply; failed logins are throttled per user and
//! per source address.
//!
//! [`RequestAuth`]: meridian_proto::meridianpb::RequestAuth

mod authenticator;
mod jwt;
mod password;
mod settings;
mod simple_tokens;
mod throttle;

pub use authenticator::{Authenticator, CallerSource};
pub use password::{MAX_COST as MAX_BCRYPT_COST, MIN_COST as MIN_BCRYPT_COST};
pub use settings::{AuthSettings, DEFAULT_BCRYPT_COST, DEFAULT_TOKEN_TTL_SECS, TokenKind};
