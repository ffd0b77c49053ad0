//! TLS on the dialling side of peer links: a lazily connected tonic channel whose connector dials over the
//! [`Network`] and then runs a TLS handshake with the peer configuration current at that moment, checking the
//! server certificate against the host of the peer URL dialled (so a valid peer certificate presented for
//! another member's host is refused). tonic itself sees an `http://` URI: TLS is below it.

use std::io;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use super::reload::TlsReloader;
use crate::net::{Conn, Network};

/// A lazily connected gRPC channel to `endpoint` (an `http://` URI with the peer's authority) over `net`,
/// speaking TLS to `host`.
pub fn tls_lazy_channel(net: &Arc<dyn Network>, endpoint: Endpoint, tls: Arc<TlsReloader>, host: String) -> Channel {
    let net = net.clone();
    endpoint.connect_with_connector_lazy(tower::service_fn(move |uri: Uri| {
        let (net, tls, host) = (net.clone(), tls.clone(), host.clone());
        async move {
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host:port in {uri}")))?;
            let conn = net.connect(authority.clone()).await?;
            dial_tls(conn, &tls, &host, &authority).await.map(TokioIo::new)
        }
    }))
}

/// The client half of a peer handshake on `conn`.
async fn dial_tls(conn: Conn, tls: &TlsReloader, host: &str, authority: &str) -> io::Result<Conn> {
    let config = tls
        .current()
        .peer_client
        .clone()
        .ok_or_else(|| io::Error::other(format!("https peer URL {authority} but no peer TLS configured")))?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("peer host {host}: {e}")))?;
    let stream = TlsConnector::from(config).connect(name, conn).await.inspect_err(|e| {
        tracing::warn!(peer = %authority, error = %e, "TLS handshake with a peer failed");
    })?;
    Ok(Conn::new(stream))
}
