//! The PEM texts a run produces or reuses. Their `Debug` shows the certificate and hides the key, so a bundle
//! can be logged or printed in a failed assertion without leaking a private key.

use std::fmt;

/// A certificate and its private key, both PEM (the key PKCS#8).
#[derive(Clone, PartialEq, Eq)]
pub struct PemPair {
    /// The certificate, `-----BEGIN CERTIFICATE-----`.
    pub cert_pem: String,
    /// The private key, `-----BEGIN PRIVATE KEY-----`. Never printed.
    pub key_pem: String,
}

impl fmt::Debug for PemPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemPair").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

/// A CA found in the output directory, to sign new certificates with instead of making a new CA.
#[derive(Clone)]
pub struct ExistingCa {
    /// Where it came from, for error messages (e.g. `certs/ca.crt`).
    pub origin: String,
    /// The CA's certificate and key.
    pub pems: PemPair,
}

impl fmt::Debug for ExistingCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExistingCa").field("origin", &self.origin).field("pems", &self.pems).finish()
    }
}
