//! The auth settings of a member, parsed from etcd's option syntax: `--auth-token simple` (the default) or
//! `--auth-token jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256,ttl=10m`, `--auth-token-ttl` (seconds, for
//! simple tokens) and `--bcrypt-cost`.

use std::path::PathBuf;
use std::time::Duration;

/// etcd's default lifetime of a simple token, renewed by each use.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 300;
/// etcd's default bcrypt cost.
pub const DEFAULT_BCRYPT_COST: u32 = 10;
/// etcd's default lifetime of a JWT.
const DEFAULT_JWT_TTL: Duration = Duration::from_secs(300);

/// Which tokens Authenticate hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Random strings remembered by the member that issued them.
    Simple,
    /// Signed JSON web tokens any member holding the public key can verify, so they survive a leader change.
    Jwt {
        /// PEM public key (verifies).
        public_key: PathBuf,
        /// PEM private key (signs); without it the member only verifies.
        private_key: Option<PathBuf>,
        /// etcd's `sign-method`: RS256/384/512, PS256/384/512, ES256/384.
        sign_method: String,
        /// How long a token is valid.
        ttl: Duration,
    },
}

/// Everything the authenticator is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// The token kind.
    pub token: TokenKind,
    /// Lifetime of a simple token.
    pub token_ttl: Duration,
    /// bcrypt cost of new password hashes.
    pub bcrypt_cost: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            token: TokenKind::Simple,
            token_ttl: Duration::from_secs(DEFAULT_TOKEN_TTL_SECS),
            bcrypt_cost: DEFAULT_BCRYPT_COST,
        }
    }
}

impl TokenKind {
    /// Parses etcd's `--auth-token` value.
    pub fn parse(spec: &str) -> Result<TokenKind, String> {
        let mut parts = spec.split(',');
        match parts.next().unwrap_or_default() {
            "simple" | "" => match parts.next() {
                None => Ok(TokenKind::Simple),
                Some(extra) => Err(format!("auth-token: simple tokens take no options (got {extra:?})")),
            },
            "jwt" => {
                let (mut public_key, mut private_key, mut sign_method, mut ttl) = (None, None, None, DEFAULT_JWT_TTL);
                for opt in parts {
                    let (k, v) = opt.split_once('=').ok_or_else(|| format!("auth-token: {opt:?} is not key=value"))?;
                    match k {
                        "pub-key" => public_key = Some(PathBuf::from(v)),
                        "priv-key" => private_key = Some(PathBuf::from(v)),
                        "sign-method" => sign_method = Some(v.to_owned()),
                        "ttl" => ttl = parse_duration(v)?,
                        other => return Err(format!("auth-token: unknown jwt option {other:?}")),
                    }
                }
                Ok(TokenKind::Jwt {
                    public_key: public_key.ok_or("auth-token: jwt needs pub-key=FILE")?,
                    private_key,
                    sign_method: sign_method.ok_or("auth-token: jwt needs sign-method=…")?,
                    ttl,
                })
            }
            other => Err(format!("auth-token: unknown token type {other:?} (simple or jwt)")),
        }
    }
}

/// `300s`, `5m`, `1h` (Go's duration syntax for the units etcd's examples use).
fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("auth-token: ttl {v:?} is not a duration such as 5m");
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad()),
    };
    if secs == 0 { Err(bad()) } else { Ok(Duration::from_secs(secs)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_token_options_parse() {
        assert_eq!(TokenKind::parse("simple"), Ok(TokenKind::Simple));
        assert_eq!(
            TokenKind::parse("jwt,pub-key=a.pub,priv-key=a.key,sign-method=RS256,ttl=10m"),
            Ok(TokenKind::Jwt {
                public_key: "a.pub".into(),
                private_key: Some("a.key".into()),
                sign_method: "RS256".into(),
                ttl: Duration::from_secs(600),
            })
        );
        for bad in
            ["jwt", "jwt,pub-key=a", "jwt,pub-key=a,sign-method=RS256,ttl=x", "oauth", "simple,x=1", "jwt,pub-key"]
        {
            assert!(TokenKind::parse(bad).is_err(), "{bad}");
        }
    }
}
