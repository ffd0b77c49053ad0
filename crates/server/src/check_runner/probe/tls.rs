//! The TLS side of `https://` probes: a client configuration that trusts the system's certificate authorities
//! (Debian's bundle, read once per process), or, for a check with `TLSSkipVerify`, any certificate. Skipping
//! verification skips the chain and the name only: the handshake's signatures are still checked, so the server
//! must hold the key of the certificate it shows.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::tls::{identity, material};

/// Where Debian keeps the certificate authorities the system trusts.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The two configurations a probe may use.
struct Configs {
    verifying: Arc<ClientConfig>,
    not_verifying: Arc<ClientConfig>,
}

/// The configurations, made once.
static CONFIGS: OnceLock<Result<Configs, String>> = OnceLock::new();

/// The client configuration for a probe: verifying against the system's CAs, or not at all.
pub fn client_config(skip_verify: bool) -> Result<Arc<ClientConfig>, String> {
    let made = CONFIGS.get_or_init(|| Ok(Configs { verifying: verifying()?, not_verifying: not_verifying()? }));
    match made {
        Ok(c) => Ok(if skip_verify { c.not_verifying.clone() } else { c.verifying.clone() }),
        Err(e) => Err(e.clone()),
    }
}

/// The name the server is asked for (SNI) and checked against: the check's `TLSServerName`, else the URL's host.
pub fn server_name(host: &str, configured: Option<&str>) -> Result<ServerName<'static>, String> {
    let name = configured.unwrap_or(host).trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_owned()).map_err(|e| format!("TLS server name {name:?}: {e}"))
}

fn verifying() -> Result<Arc<ClientConfig>, String> {
    // A missing or unreadable bundle leaves an empty store: every verified probe then fails saying why.
    let mut roots = RootCertStore::empty();
    if let Ok(pem) = std::fs::read(SYSTEM_CA_BUNDLE)
        && let Ok(certs) = identity::certs(Path::new(SYSTEM_CA_BUNDLE), &pem)
    {
        // A system bundle may hold certificates rustls cannot use; the rest still serve.
        roots.add_parsable_certificates(certs);
    }
    let config = ClientConfig::builder_with_provider(material::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(with_http1(config)))
}

fn not_verifying() -> Result<Arc<ClientConfig>, String> {
    let provider = material::provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(with_http1(config)))
}

fn with_http1(mut config: ClientConfig) -> ClientConfig {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// Takes any certificate chain and name (`TLSSkipVerify`), checking only the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
