//! Reading PEM files (certificate chains, private keys, CA bundles) and the few facts about a certificate the
//! server needs: its subject for logs, its Common Name (the etcd user of a client certificate), its subject
//! alternative names (a peer's identity) and its expiry. Key material is never formatted into errors or logs.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::TlsError;

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// The certificates of a PEM file (a chain, leaf first, or a CA bundle); at least one.
pub fn certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { path: path.to_owned(), what: format!("bad PEM certificate: {e}") })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.to_owned(), what: "no CERTIFICATE block found".into() });
    }
    for cert in &certs {
        CertInfo::parse(path, cert)?;
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    // The pem error names the section kind at most, never the key bytes.
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| TlsError::Pem { path: path.to_owned(), what: format!("no usable private key: {e}") })
}

/// The trust anchors of a CA bundle.
pub fn roots(path: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs(path, pem)? {
        store.add(cert).map_err(|source| TlsError::Rustls {
            what: format!("{}: unusable CA certificate", path.display()),
            source,
        })?;
    }
    Ok(store)
}

/// What the server reads out of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject distinguished name, as text (for logs).
    pub subject: String,
    /// The subject's Common Name, when it has one.
    pub common_name: Option<String>,
    /// DNS names and IP addresses among the subject alternative names, as text (IPs in their usual form).
    pub sans: Vec<String>,
    /// End of validity, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl CertInfo {
    /// Parses a DER certificate; `path` only names it in the error.
    pub fn parse(path: &Path, der: &[u8]) -> Result<CertInfo, TlsError> {
        Self::from_der(der).map_err(|reason| TlsError::X509 { path: path.to_owned(), reason })
    }

    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let common_name = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => sans.push(dns.to_ascii_lowercase()),
                    GeneralName::IPAddress(ip) => sans.extend(ip_text(ip)),
                    _ => {}
                }
            }
        }
        Ok(CertInfo {
            subject: cert.subject().to_string(),
            common_name,
            sans,
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// An IP address SAN (4 or 16 bytes) as text.
fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// The host of a URL (`https://127.0.0.2:2380` → `127.0.0.2`, `https://[::1]:2380` → `::1`), lowercased, as a
/// certificate's SAN names it.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(host, _)| host)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://127.0.0.2:2380").as_deref(), Some("127.0.0.2"));
        assert_eq!(url_host("https://Node-A.example:2380/").as_deref(), Some("node-a.example"));
        assert_eq!(url_host("https://[::1]:2380").as_deref(), Some("::1"));
        assert_eq!(url_host("127.0.0.1:2380").as_deref(), Some("127.0.0.1"));
        assert_eq!(url_host("https://:2380"), None);
    }

    #[test]
    fn cert_facts_are_read() {
        let pair = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.2".into(), "node-a".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        let cert = params.self_signed(&pair).unwrap();
        let info = CertInfo::from_der(cert.der()).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("alice"));
        assert_eq!(info.sans, vec!["127.0.0.2".to_owned(), "node-a".to_owned()]);
        assert!(info.subject.contains("alice"), "{}", info.subject);
        let path = Path::new("x.pem");
        assert_eq!(certs(path, cert.pem().as_bytes()).unwrap().len(), 1);
        assert!(key(path, pair.serialize_pem().as_bytes()).is_ok());
        let err = key(path, cert.pem().as_bytes()).unwrap_err().to_string();
        assert!(err.contains("x.pem"), "{err}");
        assert!(certs(path, b"garbage").is_err());
    }
}
