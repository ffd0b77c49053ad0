//! The simulated network seam: Meridian's [`Network`] over turmoil's TCP, so the real gRPC
//! listeners, the peer transport and client channels all run across the simulated fabric, where
//! the runner can delay, partition and cut links between hosts.

use std::io;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use meridian_server::net::{Conn, Incoming, Network, lazy_channel};
use tonic::transport::{Channel, Endpoint};

/// Listens and dials through turmoil.
#[derive(Clone, Copy, Debug, Default)]
pub struct TurmoilNetwork;

impl Network for TurmoilNetwork {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<(SocketAddr, Incoming)>> {
        Box::pin(async move {
            let listener = turmoil::net::TcpListener::bind(addr).await?;
            let bound = listener.local_addr()?;
            let incoming = stream::unfold(listener, |listener| async move {
                let accepted = listener.accept().await.map(|(stream, _)| Conn::new(stream));
                Some((accepted, listener))
            })
            .boxed();
            Ok((bound, incoming))
        })
    }

    fn connect(&self, authority: String) -> BoxFuture<'static, io::Result<Conn>> {
        Box::pin(async move { turmoil::net::TcpStream::connect(authority).await.map(Conn::new) })
    }
}

/// Lazily connecting client channels to `urls` over the simulated network, each call bounded by `timeout`.
pub fn client_channels(urls: &[String], timeout: std::time::Duration) -> Vec<Channel> {
    let net: std::sync::Arc<dyn Network> = std::sync::Arc::new(TurmoilNetwork);
    urls.iter()
        .map(|u| {
            let ep = Endpoint::from_shared(u.clone())
                .expect("member URLs are valid")
                .connect_timeout(std::time::Duration::from_secs(1))
                .timeout(timeout);
            lazy_channel(&net, ep)
        })
        .collect()
}
