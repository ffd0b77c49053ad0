//! `--user`: the benchmark as an etcd user. Each connection logs in once (simple tokens belong to the member that
//! issued them, so a connection to another endpoint needs its own) and every request on it carries the token in
//! the `token` metadata, as etcd's clients send it.

use std::time::Duration;

use anyhow::{Context, bail};
use meridian_proto::etcdserverpb::AuthenticateRequest;
use meridian_proto::etcdserverpb::auth_client::AuthClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub name: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Credentials").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Credentials {
    /// etcdctl's forms: `--user NAME:PASSWORD`, or `--user NAME --password PASSWORD`.
    pub fn from_flags(user: Option<&str>, password: Option<&str>) -> anyhow::Result<Option<Credentials>> {
        let Some(user) = user else {
            if password.is_some() {
                bail!("--password needs --user");
            }
            return Ok(None);
        };
        let (name, password) = match (user.split_once(':'), password) {
            (Some(_), Some(_)) => bail!("give the password in --user NAME:PASSWORD or in --password, not both"),
            (Some((n, p)), None) => (n, p),
            (None, Some(p)) => (user, p),
            (None, None) => bail!("--user {user}: give the password as --user {user}:PASSWORD or --password"),
        };
        if name.is_empty() {
            bail!("--user: the user name is empty");
        }
        Ok(Some(Credentials { name: name.to_owned(), password: password.to_owned() }))
    }
}

/// Adds a connection's token (if it logged in) to every request.
#[derive(Clone, Debug, Default)]
pub struct Token(Option<MetadataValue<Ascii>>);

impl Interceptor for Token {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("token", t.clone());
        }
        Ok(req)
    }
}

/// A connection and the token its requests carry.
pub type Conn = InterceptedService<Channel, Token>;

/// `channel` with the token of `creds` (logged in over it), or with none.
pub async fn authorize(channel: Channel, creds: Option<&Credentials>, timeout: Duration) -> anyhow::Result<Conn> {
    let token = match creds {
        None => Token::default(),
        Some(c) => {
            let token = login(channel.clone(), c, timeout).await?;
            Token(Some(token.parse().context("the server's token is not ASCII")?))
        }
    };
    Ok(InterceptedService::new(channel, token))
}

/// One Authenticate call: the token.
pub async fn login(channel: Channel, creds: &Credentials, timeout: Duration) -> anyhow::Result<String> {
    let req = AuthenticateRequest { name: creds.name.clone(), password: creds.password.clone() };
    let resp = tokio::time::timeout(timeout, AuthClient::new(channel).authenticate(req))
        .await
        .context("logging in timed out")?
        .with_context(|| format!("logging in as {}", creds.name))?;
    Ok(resp.into_inner().token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcdctl_forms_of_user_and_password() {
        let c = |u: Option<&str>, p: Option<&str>| Credentials::from_flags(u, p);
        assert_eq!(c(None, None).unwrap(), None);
        let alice = Credentials { name: "alice".into(), password: "pw:with:colons".into() };
        assert_eq!(c(Some("alice:pw:with:colons"), None).unwrap(), Some(alice.clone()));
        assert_eq!(c(Some("alice"), Some("pw:with:colons")).unwrap(), Some(alice.clone()));
        assert!(c(Some("alice"), None).is_err());
        assert!(c(None, Some("pw")).is_err());
        assert!(c(Some("alice:x"), Some("y")).is_err());
        assert!(c(Some(":pw"), None).is_err());
        assert!(!format!("{alice:?}").contains("colons"), "Debug hides the password");
    }
}
