//! The admin server's connections as axum wants them: an [`Incoming`] stream (plain TCP, or after TLS
//! handshakes) behind axum's `Listener` trait.

use std::net::SocketAddr;

use futures::StreamExt;

use crate::net::{Conn, Incoming};

/// Accepted (and, with TLS, handshaken) admin connections.
pub struct IncomingListener {
    incoming: Incoming,
    addr: SocketAddr,
}

impl IncomingListener {
    /// The connections of `incoming`, bound at `addr`.
    pub fn new(incoming: Incoming, addr: SocketAddr) -> Self {
        IncomingListener { incoming, addr }
    }
}

impl axum::serve::Listener for IncomingListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match self.incoming.next().await {
                Some(Ok(conn)) => {
                    let remote = conn.info().remote_addr.unwrap_or(self.addr);
                    return (conn, remote);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    // As axum's own TCP listener does: do not spin on a persistent error (e.g. out of files).
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                // The stream of connections ended (the listener is gone): accept nothing more.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
