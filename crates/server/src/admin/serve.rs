//! Serving the admin router on its own listener, stopped together with the member.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AdminState, IncomingListener, router};

/// A running admin HTTP server.
pub struct AdminServer {
    /// The address it listens on (useful when bound to port 0).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl AdminServer {
    /// Serves the admin API for `state` on `listener` until [`AdminServer::stop`].
    pub fn spawn(listener: IncomingListener, state: AdminState) -> std::io::Result<AdminServer> {
        let addr = axum::serve::Listener::local_addr(&listener)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        tracing::info!(%addr, "serving the admin HTTP API");
        Ok(AdminServer { addr, shutdown: Some(tx), task })
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "admin server failed"),
            Err(e) => tracing::warn!(error = %e, "admin server task failed"),
        }
    }
}
