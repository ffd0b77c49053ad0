//! JSON web tokens as etcd issues them: claims `username`, `revision` (the auth revision at login) and `exp`,
//! signed with the configured key. Any member with the public key verifies them, so a token survives a leader
//! change or a move to another member; a token signed with another key, expired, or from a cluster with other
//! keys is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    username: String,
    revision: u64,
    exp: u64,
}

/// A signer and verifier of tokens.
pub struct Jwt {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    ttl: Duration,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Jwt").field("algorithm", &self.algorithm).field("ttl", &self.ttl).finish()
    }
}

impl Jwt {
    /// Keys from PEM files for `sign_method` (etcd's names: RS*, PS*, ES256/384).
    pub fn new(sign_method: &str, public_pem: &[u8], private_pem: Option<&[u8]>, ttl: Duration) -> Result<Jwt, String> {
        let algorithm: Algorithm =
            sign_method.parse().map_err(|_| format!("auth-token: unknown sign-method {sign_method:?}"))?;
        let (decoding, encoding) = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => (
                DecodingKey::from_rsa_pem(public_pem).map_err(|e| format!("auth-token: pub-key: {e}"))?,
                private_pem
                    .map(EncodingKey::from_rsa_pem)
                    .transpose()
                    .map_err(|e| format!("auth-token: priv-key: {e}"))?,
            ),
            Algorithm::ES256 | Algorithm::ES384 => (
                DecodingKey::from_ec_pem(public_pem).map_err(|e| format!("auth-token: pub-key: {e}"))?,
                private_pem
                    .map(EncodingKey::from_ec_pem)
                    .transpose()
                    .map_err(|e| format!("auth-token: priv-key: {e}"))?,
            ),
            other => {
                return Err(format!("auth-token: sign-method {other:?} is not supported (RS*, PS*, ES256, ES384)"));
            }
        };
        Ok(Jwt { algorithm, decoding, encoding, ttl })
    }

    /// A token for `username` at auth `revision`, valid for the configured time from now.
    pub fn sign(&self, username: &str, revision: u64) -> Result<String, String> {
        let key = self.encoding.as_ref().ok_or("this member has no priv-key: it verifies tokens only")?;
        let exp = now_secs() + self.ttl.as_secs();
        let claims = Claims { username: username.to_owned(), revision, exp };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key).map_err(|e| e.to_string())
    }

    /// The user and auth revision of a valid token.
    pub fn verify(&self, token: &str) -> Option<(String, u64)> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.required_spec_claims = ["exp".to_owned()].into();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        Some((data.claims.username, data.claims.revision))
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
