//! TLS for the CLI's own connections (rustls with `ring`, as the server): `meridian bench`'s gRPC channels to
//! `https://` endpoints with etcdctl's `--cacert --cert --key`, and the playground's HTTPS `/status` polls. TLS
//! runs below tonic, which is handed an `http://` URI, so tonic's own TLS feature plays no part.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// ALPN of gRPC.
pub const H2: &[u8] = b"h2";
/// ALPN of HTTP/1.1.
pub const HTTP11: &[u8] = b"http/1.1";

/// The files of a TLS client, as etcdctl names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// CA bundle the server's certificate is verified against.
    pub cacert: PathBuf,
    /// Client certificate and key, when the server wants one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTlsFiles {
    /// From the three flags; `--cert` and `--key` go together, and both need `--cacert`.
    pub fn from_flags(
        cacert: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> anyhow::Result<Option<ClientTlsFiles>> {
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c.to_owned(), k.to_owned())),
            (None, None) => None,
            _ => bail!("--cert and --key go together"),
        };
        match cacert {
            Some(ca) => Ok(Some(ClientTlsFiles { cacert: ca.to_owned(), identity })),
            None if identity.is_some() => bail!("--cert/--key need --cacert (the CA of the server's certificate)"),
            None => Ok(None),
        }
    }

    /// The rustls configuration offering `alpn`.
    pub fn config(&self, alpn: &[&[u8]]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs(&self.cacert)? {
            roots.add(cert).with_context(|| format!("{}: unusable CA certificate", self.cacert.display()))?;
        }
        #[allow(deprecated)] // ring, as the server (aws-lc-rs needs cmake and nasm to build)
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((cert, key)) => {
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| anyhow::anyhow!("{}: no usable private key: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(certs(cert)?, key)
                    .with_context(|| format!("{}: certificate and key do not match", cert.display()))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate", path.display());
    }
    Ok(certs)
}

/// `https://host:port/...` → (`host:port`, `host`).
fn authority_and_host(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default().to_owned();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority.as_str(), |(h, _)| h),
    };
    if host.is_empty() {
        bail!("{url}: no host");
    }
    Ok((authority.clone(), host.to_owned()))
}

/// A TLS connection to `authority`, checking the certificate against `host`.
pub async fn connect(
    authority: &str,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(authority).await.with_context(|| format!("connecting to {authority}"))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host.to_owned()).with_context(|| format!("{host}: not a server name"))?;
    TlsConnector::from(config).connect(name, tcp).await.with_context(|| format!("TLS handshake with {authority}"))
}

/// A connected gRPC channel to `endpoint`: plain for `http://`, TLS with `tls` for `https://`.
pub async fn grpc_channel(
    endpoint: &str,
    tls: Option<&ClientTlsFiles>,
    timeout: Option<Duration>,
) -> anyhow::Result<Channel> {
    let https = endpoint.starts_with("https://");
    let plain = match endpoint.strip_prefix("https://") {
        Some(rest) => format!("http://{rest}"),
        None => endpoint.to_owned(),
    };
    let mut ep = Endpoint::from_shared(plain)?.tcp_nodelay(true).connect_timeout(Duration::from_secs(5));
    if let Some(t) = timeout {
        ep = ep.timeout(t);
    }
    if !https {
        return ep.connect().await.with_context(|| format!("connecting to {endpoint}"));
    }
    let files = tls.with_context(|| format!("{endpoint} is https://: give --cacert (and --cert/--key if needed)"))?;
    let config = files.config(&[H2])?;
    let (_, host) = authority_and_host(endpoint)?;
    let connector = tower::service_fn(move |uri: Uri| {
        let (config, host) = (config.clone(), host.clone());
        async move {
            let authority = uri.authority().map(|a| a.as_str().to_owned()).context("no host:port")?;
            let stream = connect(&authority, &host, config).await?;
            Ok::<_, anyhow::Error>(TokioIo::new(stream))
        }
    });
    ep.connect_with_connector(connector).await.with_context(|| format!("connecting to {endpoint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_go_together() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(ClientTlsFiles::from_flags(None, None, None).unwrap(), None);
        let f = ClientTlsFiles::from_flags(Some(&p("ca")), Some(&p("c")), Some(&p("k"))).unwrap().unwrap();
        assert_eq!(f.identity, Some((p("c"), p("k"))));
        assert!(ClientTlsFiles::from_flags(Some(&p("ca")), Some(&p("c")), None).is_err());
        assert!(ClientTlsFiles::from_flags(None, Some(&p("c")), Some(&p("k"))).is_err());
        assert_eq!(
            authority_and_host("https://127.0.0.2:2379").unwrap(),
            ("127.0.0.2:2379".into(), "127.0.0.2".into())
        );
    }
}
