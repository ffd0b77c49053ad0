//! Serving the HTTP API's router on its listener (plain TCP, or connections after their TLS handshake), with
//! each connection's details (remote address, client certificate name) available to the handlers, and
//! stopped together with the member. Blocking queries may hold requests for minutes, so stopping does not
//! wait for them long.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::router;
use crate::admin::IncomingListener;
use crate::discovery::Discovery;
use crate::net::ConnInfo;

/// How long stopping lets in-flight requests finish before it drops them.
const STOP_GRACE: Duration = Duration::from_secs(1);

impl Connected<IncomingStream<'_, IncomingListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, IncomingListener>) -> Self {
        stream.io().info().clone()
    }
}

/// A running HTTP API server.
pub struct HttpServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Serves the API of `discovery` on `listener` until [`HttpServer::stop`].
    pub fn spawn(listener: IncomingListener, discovery: Arc<Discovery>) -> std::io::Result<HttpServer> {
        let addr = axum::serve::Listener::local_addr(&listener)?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(discovery).into_make_service_with_connect_info::<ConnInfo>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        tracing::info!(%addr, "serving the Consul-compatible HTTP API");
        Ok(HttpServer { addr, shutdown: Some(tx), task })
    }

    /// Stops accepting and gives in-flight requests [`STOP_GRACE`] to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(STOP_GRACE, &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP API server failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP API server task failed"),
            Err(_) => self.task.abort(),
        }
    }
}
