//! A started member: its addresses, and the handle that waits for it or stops it (the admin and HTTP APIs, the background
//! tasks, then the Raft node, in that order).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::AdminServer;
use crate::error::{Error, Result};
use crate::fault::FaultState;
use crate::life_sockets::LifeEnd;
use crate::member::Member;
use crate::tls::TlsReloader;
use crate::tls::reload::Reloaded;

/// A running member and the handle to stop it.
pub struct RunningServer {
    /// The member's shared state.
    pub member: Arc<Member>,
    /// The address the client API listens on.
    pub client_addr: SocketAddr,
    /// The address the peer service listens on.
    pub peer_addr: SocketAddr,
    /// The address the admin HTTP API listens on, when enabled.
    pub admin_addr: Option<SocketAddr>,
    /// The address discovery's DNS listens on (UDP and TCP), when it runs.
    pub dns_addr: Option<SocketAddr>,
    /// The address the Consul-compatible HTTP API listens on, when it is served.
    pub http_addr: Option<SocketAddr>,
    /// The emulated network applied to this member's outgoing peer messages.
    pub faults: Arc<FaultState>,
    /// The member's TLS configuration, when any link uses TLS ([`RunningServer::reload_tls`] re-reads it).
    pub tls: Option<Arc<TlsReloader>>,
    /// Service discovery on this member: its catalog, and the writes of registrations and check states.
    pub discovery: Arc<crate::discovery::Discovery>,
    /// What this member's check runner has done (checks run, probes, publishes).
    pub check_stats: Arc<crate::check_runner::Stats>,
    pub(crate) admin: Option<AdminServer>,
    pub(crate) http: Option<crate::consul_http::HttpServer>,
    pub(crate) shutdown: Option<oneshot::Sender<()>>,
    pub(crate) serve: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    pub(crate) background: Vec<JoinHandle<()>>,
    /// Breaks every connection of this life (`life_sockets`).
    pub(crate) life_end: LifeEnd,
}

impl RunningServer {
    /// Serves until the client listener fails or [`RunningServer::stop`] is called elsewhere.
    pub async fn wait(mut self) -> Result<()> {
        let served = (&mut self.serve).await;
        self.finish().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Listener(e.to_string())),
            Err(e) => Err(Error::Listener(e.to_string())),
        }
    }

    /// Re-reads the TLS files now (as on SIGHUP); `None` without TLS.
    pub fn reload_tls(&self) -> Option<Reloaded> {
        self.tls.as_ref().map(|tls| tls.reload())
    }

    /// Stops serving and shuts the Raft node down cleanly. Its connections break at once, as a process's do when it
    /// exits (a client's open watch would otherwise hold the graceful stop of the listener).
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.life_end.end();
        let _ = (&mut self.serve).await;
        self.finish().await;
        Ok(())
    }

    async fn finish(&mut self) {
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        if let Some(http) = self.http.take() {
            http.stop().await;
        }
        for task in &self.background {
            task.abort();
        }
        // Gone, not just told to go: the listeners they own are closed before a new life binds the same ports.
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        if let Err(e) = self.member.raft().shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
        self.life_end.end();
    }
}
