//! etcd's simple tokens: random strings the member that issued them remembers, each naming a user, valid for
//! a time-to-live that every use renews. A token also remembers the password hash it was issued under, so
//! changing the password or deleting the user invalidates it. Tokens are not replicated: a client that moves
//! to another member is told its token is invalid and authenticates again. etcd differs here: it proposes each
//! simple token through Raft, so every member knows it. JWT tokens (`--auth-token jwt,...`) are the portable
//! kind, and the ones etcd advises for production.

use std::collections::HashMap;

/// Tokens remembered at most; issuing more forgets the ones closest to expiry.
const MAX_TOKENS: usize = 100_000;

#[derive(Clone, Debug)]
struct Issued {
    user: String,
    password_hash: Vec<u8>,
    expires_ms: u64,
}

/// The tokens this member issued.
#[derive(Debug, Default)]
pub struct SimpleTokens {
    tokens: HashMap<String, Issued>,
}

impl SimpleTokens {
    /// Remembers `token` for `user` until `now_ms + ttl_ms`.
    pub fn insert(&mut self, token: String, user: &str, password_hash: &[u8], now_ms: u64, ttl_ms: u64) {
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.retain(|_, t| t.expires_ms > now_ms);
            if self.tokens.len() >= MAX_TOKENS
                && let Some(first) = self.tokens.iter().min_by_key(|(_, t)| t.expires_ms).map(|(k, _)| k.clone())
            {
                self.tokens.remove(&first);
            }
        }
        let issued =
            Issued { user: user.to_owned(), password_hash: password_hash.to_vec(), expires_ms: now_ms + ttl_ms };
        self.tokens.insert(token, issued);
    }

    /// The user `token` names, if it is live and the user's password is still the one it was issued under
    /// (`current_hash` looks it up); renews the token.
    pub fn user(
        &mut self,
        token: &str,
        now_ms: u64,
        ttl_ms: u64,
        current_hash: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Option<String> {
        let issued = self.tokens.get_mut(token)?;
        if issued.expires_ms <= now_ms || current_hash(&issued.user).as_deref() != Some(&issued.password_hash[..]) {
            self.tokens.remove(token);
            return None;
        }
        issued.expires_ms = now_ms + ttl_ms;
        Some(issued.user.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_renew_on_use_and_die_with_the_password() {
        let mut t = SimpleTokens::default();
        let hash = |pw: &'static [u8]| move |_: &str| Some(pw.to_vec());
        t.insert("tok".into(), "alice", b"h1", 0, 1_000);
        assert_eq!(t.user("tok", 999, 1_000, hash(b"h1")).as_deref(), Some("alice"));
        assert_eq!(t.user("tok", 1_998, 1_000, hash(b"h1")).as_deref(), Some("alice"), "renewed at 999");
        assert_eq!(t.user("tok", 3_000, 1_000, hash(b"h1")), None, "expired");
        t.insert("tok2".into(), "alice", b"h1", 0, 1_000);
        assert_eq!(t.user("tok2", 1, 1_000, hash(b"h2")), None, "password changed");
        assert_eq!(t.user("tok2", 1, 1_000, hash(b"h1")), None, "and stays invalid");
        assert_eq!(t.user("nope", 1, 1_000, hash(b"h1")), None);
    }
}
