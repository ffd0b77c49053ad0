//! The rustls configurations of one member, built from its certificate files in one go: the client listener's,
//! the admin listener's, the peer listener's and the peer dialer's. TLS 1.3 preferred, 1.2 the minimum (rustls
//! has no renegotiation), `ring` as the only crypto provider.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::config::{PeerTlsFiles, ServerTlsFiles, TlsSettings};
use super::error::TlsError;
use super::identity::{self, CertInfo};
use super::verifier::{CheckedClientVerifier, PeerHosts};

/// ALPN of gRPC.
const H2: &[u8] = b"h2";
/// ALPN of plain HTTP/1.1 (the admin API serves both).
const HTTP11: &[u8] = b"http/1.1";

/// The crypto provider every configuration uses: `ring` (aws-lc-rs, which has the post-quantum key exchange
/// rustls now prefers, needs cmake and nasm to build); passed explicitly, so no process-wide default is needed.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.3 first, then 1.2.
pub const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// One certificate the member holds, and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertExpiry {
    /// The file it was read from.
    pub file: String,
    /// `client` (client and admin listeners) or `peer`.
    pub role: &'static str,
    /// The certificate's subject.
    pub subject: String,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

/// Every configuration built from the files, plus what they contain.
#[derive(Debug, Default)]
pub struct TlsMaterial {
    /// The client listener's configuration (h2).
    pub client_server: Option<Arc<ServerConfig>>,
    /// The admin listener's configuration (h2 and HTTP/1.1, no client certificates).
    pub admin_server: Option<Arc<ServerConfig>>,
    /// The peer listener's configuration (mutual, peer CA, membership SAN check).
    pub peer_server: Option<Arc<ServerConfig>>,
    /// How this member dials peers (peer CA, its peer certificate as client certificate).
    pub peer_client: Option<Arc<ClientConfig>>,
    /// Certificates and CAs loaded, with their expiry.
    pub certificates: Vec<CertExpiry>,
}

/// The files of `settings`, read: (path, contents).
pub type FileContents = Vec<(std::path::PathBuf, Vec<u8>)>;

/// Reads every file `settings` names.
pub fn read_files(settings: &TlsSettings) -> Result<FileContents, TlsError> {
    let mut paths = Vec::new();
    if let Some(s) = &settings.server {
        paths.extend([s.cert.clone(), s.key.clone()]);
        paths.extend(s.trusted_ca.clone());
    }
    if let Some(p) = &settings.peer {
        paths.extend([p.cert.clone(), p.key.clone(), p.trusted_ca.clone()]);
    }
    paths.into_iter().map(|p| identity::read(&p).map(|bytes| (p, bytes))).collect()
}

fn contents<'a>(files: &'a FileContents, path: &Path) -> &'a [u8] {
    files.iter().find(|(p, _)| p == path).map_or(&[], |(_, bytes)| bytes)
}

impl TlsMaterial {
    /// Builds every configuration `settings` asks for from `files` (as [`read_files`] returned them).
    pub fn build(settings: &TlsSettings, files: &FileContents, hosts: Arc<dyn PeerHosts>) -> Result<Self, TlsError> {
        let mut material = TlsMaterial::default();
        if let Some(s) = &settings.server {
            material.build_server(s, files)?;
        }
        if let Some(p) = &settings.peer {
            material.build_peer(p, files, hosts)?;
        }
        Ok(material)
    }

    fn note(&mut self, path: &Path, role: &'static str, certs: &[rustls::pki_types::CertificateDer<'static>]) {
        if let Some(info) = certs.first().and_then(|c| CertInfo::from_der(c).ok()) {
            self.certificates.push(CertExpiry {
                file: path.display().to_string(),
                role,
                subject: info.subject,
                not_after: info.not_after,
            });
        }
    }

    fn build_server(&mut self, s: &ServerTlsFiles, files: &FileContents) -> Result<(), TlsError> {
        let certs = identity::certs(&s.cert, contents(files, &s.cert))?;
        let key = identity::key(&s.key, contents(files, &s.key))?;
        self.note(&s.cert, "client", &certs);
        let verifier = match &s.trusted_ca {
            Some(ca) => {
                let pem = contents(files, ca);
                let roots = identity::roots(ca, pem)?;
                self.note(ca, "client", &identity::certs(ca, pem)?);
                let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                // Without --client-cert-auth a certificate is still verified when offered, so its name is known.
                let builder = if s.client_cert_auth { builder } else { builder.allow_unauthenticated() };
                let inner = builder
                    .build()
                    .map_err(|source| TlsError::Verifier { what: format!("{}: client CA", ca.display()), source })?;
                Arc::new(CheckedClientVerifier::new(inner, "client", None))
            }
            None => WebPkiClientVerifier::no_client_auth(),
        };
        let rustls_err = |source| TlsError::Rustls {
            what: format!(
                "{} / {}: certificate and key do not form a usable identity",
                s.cert.display(),
                s.key.display()
            ),
            source,
        };
        let mut client = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(rustls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(rustls_err)?;
        // gRPC over h2, and the JSON gateway over HTTP/1.1 for clients that do not speak h2 (Patroni's).
        client.alpn_protocols = vec![H2.to_vec(), HTTP11.to_vec()];
        let mut admin = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(rustls_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(rustls_err)?;
        admin.alpn_protocols = vec![H2.to_vec(), HTTP11.to_vec()];
        self.client_server = Some(Arc::new(client));
        self.admin_server = Some(Arc::new(admin));
        Ok(())
    }

    fn build_peer(
        &mut self,
        p: &PeerTlsFiles,
        files: &FileContents,
        hosts: Arc<dyn PeerHosts>,
    ) -> Result<(), TlsError> {
        let certs = identity::certs(&p.cert, contents(files, &p.cert))?;
        let key = identity::key(&p.key, contents(files, &p.key))?;
        self.note(&p.cert, "peer", &certs);
        let ca_pem = contents(files, &p.trusted_ca);
        let roots: RootCertStore = identity::roots(&p.trusted_ca, ca_pem)?;
        self.note(&p.trusted_ca, "peer", &identity::certs(&p.trusted_ca, ca_pem)?);
        let roots = Arc::new(roots);
        let inner = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|source| TlsError::Verifier { what: format!("{}: peer CA", p.trusted_ca.display()), source })?;
        let verifier = Arc::new(CheckedClientVerifier::new(inner, "peer", Some(hosts)));
        let rustls_err = |source| TlsError::Rustls {
            what: format!(
                "{} / {}: certificate and key do not form a usable identity",
                p.cert.display(),
                p.key.display()
            ),
            source,
        };
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(rustls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(rustls_err)?;
        server.alpn_protocols = vec![H2.to_vec()];
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(rustls_err)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(rustls_err)?;
        client.alpn_protocols = vec![H2.to_vec()];
        self.peer_server = Some(Arc::new(server));
        self.peer_client = Some(Arc::new(client));
        Ok(())
    }
}
