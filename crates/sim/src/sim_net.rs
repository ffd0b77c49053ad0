//! The simulated network seam: Meridian's [`Network`] over turmoil's TCP, so the real gRPC
//! listeners, the peer transport and client channels all run across the simulated fabric, where
//! the runner can delay, partition and cut links between hosts.

use std::io;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use meridian_server::net::{Conn, Incoming, Network};

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
