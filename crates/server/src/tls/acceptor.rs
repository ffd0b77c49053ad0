//! TLS on a listener: every accepted connection is handshaken on a task of its own (a slow or silent client
//! cannot hold up the others), with the configuration current at that moment, and handed on as a [`Conn`]
//! carrying the verified client certificate's Common Name. A failed handshake (plain text on a TLS port, an
//! unknown CA, an expired or refused certificate) closes that connection, is logged once, and the listener
//! goes on.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rustls::ServerConfig;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use super::identity::CertInfo;
use super::material::TlsMaterial;
use super::reload::TlsReloader;
use crate::net::{ClientCertName, Conn, ConnInfo, Incoming};

/// A handshake that takes longer is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// Which listener, hence which configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The etcd v3 gRPC API.
    Client,
    /// Member-to-member traffic.
    Peer,
    /// The admin HTTP API.
    Admin,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Client => "client",
            Listener::Peer => "peer",
            Listener::Admin => "admin",
        }
    }

    fn config(self, material: &TlsMaterial) -> Option<Arc<ServerConfig>> {
        match self {
            Listener::Client => material.client_server.clone(),
            Listener::Peer => material.peer_server.clone(),
            Listener::Admin => material.admin_server.clone(),
        }
    }
}

/// The connections of `incoming` after a TLS handshake with the current configuration of `listener`.
pub fn tls_incoming(mut incoming: Incoming, tls: Arc<TlsReloader>, listener: Listener) -> Incoming {
    let (ready_tx, ready_rx) = mpsc::channel(READY_QUEUE);
    tokio::spawn(async move {
        while let Some(accepted) = incoming.next().await {
            let conn = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(listener = listener.name(), error = %e, "accept failed");
                    continue;
                }
            };
            if ready_tx.is_closed() {
                return;
            }
            let Some(config) = listener.config(&tls.current()) else {
                tracing::error!(listener = listener.name(), "no TLS configuration for this listener");
                continue;
            };
            let ready_tx = ready_tx.clone();
            tokio::spawn(async move {
                if let Some(conn) = handshake(conn, config, listener).await {
                    let _ = ready_tx.send(Ok(conn)).await;
                }
            });
        }
    });
    ReceiverStream::new(ready_rx).boxed()
}

/// One server-side handshake; `None` (logged) when it fails.
async fn handshake(conn: Conn, config: Arc<ServerConfig>, listener: Listener) -> Option<Conn> {
    let remote_addr = conn.info().remote_addr;
    let remote = remote_addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(conn)).await {
        Ok(Ok(stream)) => {
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|leaf| CertInfo::from_der(leaf).ok());
            let (cert_name, cert_sans) = match leaf {
                Some(info) => (info.common_name, Some(info.sans)),
                None => (None, None),
            };
            let info = ConnInfo { remote_addr, client_cert_name: ClientCertName(cert_name), cert_sans };
            Some(Conn::with_info(stream, info))
        }
        Ok(Err(e)) => {
            // A refused certificate was already logged with its subject by the verifier.
            let certificate_refused = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
            if !certificate_refused {
                tracing::warn!(listener = listener.name(), %remote, error = %e, "TLS handshake failed");
            }
            None
        }
        Err(_) => {
            tracing::warn!(listener = listener.name(), %remote, "TLS handshake timed out");
            None
        }
    }
}
