//! Password hashes as etcd stores them: bcrypt, handed to the log as standard base64 (`hashedPassword`). The
//! salt is drawn by the caller, so the simulation can replay a seed byte for byte.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use meridian_types::EtcdError;

/// bcrypt's cost bounds.
pub const MIN_COST: u32 = 4;
/// See [`MIN_COST`].
pub const MAX_COST: u32 = 31;

/// The base64 bcrypt hash of `password` with `salt`.
pub fn hash(password: &str, cost: u32, salt: [u8; 16]) -> Result<String, EtcdError> {
    let parts = bcrypt::hash_with_salt(password, cost, salt)
        .map_err(|e| EtcdError::Internal(format!("auth: hashing a password failed: {e}")))?;
    Ok(STANDARD.encode(parts.to_string()))
}

/// Whether `password` matches the stored hash (raw bcrypt text, as the store keeps it). A malformed hash
/// matches nothing.
pub fn verify(password: &str, stored: &[u8]) -> bool {
    std::str::from_utf8(stored).ok().is_some_and(|h| bcrypt::verify(password, h).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = STANDARD.decode(hash("s3cret", MIN_COST, [7; 16]).unwrap()).unwrap();
        assert!(verify("s3cret", &stored));
        assert!(!verify("s3cret ", &stored));
        assert!(!verify("", &stored));
        assert!(!verify("s3cret", b"not a hash"));
        assert_eq!(hash("x", MIN_COST, [1; 16]).unwrap(), hash("x", MIN_COST, [1; 16]).unwrap(), "salt decides");
    }
}
