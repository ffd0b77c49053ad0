//! The simulated network seam: Meridian's [`Network`] over turmoil's TCP, so the real gRPC
//! listeners, the peer transport and client channels all run across the simulated fabric, where
//! the runner can delay, partition and cut links between hosts.
//!
//! turmoil models a crashed host as a machine that lost power: what is sent to it goes unanswered until it
//! restarts. A killed process on a running machine is different, since the kernel refuses connections to its
//! closed ports at once; hosts marked [`set_refusing`] answer every dial that way until they are unmarked.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use meridian_server::net::{Conn, Incoming, Network, lazy_channel};
use tonic::transport::{Channel, Endpoint};

use crate::auth_channel::{Credentials, SimChannel};

thread_local! {
    /// Hosts whose process is dead but whose machine is up. A simulation runs on one thread.
    static REFUSING: RefCell<BTreeSet<IpAddr>> = const { RefCell::new(BTreeSet::new()) };
}

/// Marks the host at `ip` as refusing every connection (its process was killed), or no longer.
pub fn set_refusing(ip: IpAddr, refusing: bool) {
    REFUSING.with(|r| {
        let mut r = r.borrow_mut();
        if refusing {
            r.insert(ip);
        } else {
            r.remove(&ip);
        }
    });
}

/// Forgets every mark (a new run starts).
pub fn clear_refusing() {
    REFUSING.with(|r| r.borrow_mut().clear());
}

fn refuses(authority: &str) -> bool {
    authority.parse::<SocketAddr>().is_ok_and(|addr| REFUSING.with(|r| r.borrow().contains(&addr.ip())))
}

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
        Box::pin(async move {
            if refuses(&authority) {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{authority}: connection refused"),
                ));
            }
            turmoil::net::TcpStream::connect(authority).await.map(Conn::new)
        })
    }
}

/// Lazily connecting client channels to `urls` over the simulated network, each call bounded by `timeout`, that
/// speak as root once authentication is on.
pub fn client_channels(urls: &[String], timeout: std::time::Duration) -> Vec<SimChannel> {
    client_channels_as(urls, timeout, &Credentials::root())
}

/// Like [`client_channels`], speaking as the user of `creds`.
pub fn client_channels_as(urls: &[String], timeout: std::time::Duration, creds: &Credentials) -> Vec<SimChannel> {
    plain_channels(urls, timeout).into_iter().map(|c| SimChannel::new(c, creds.clone())).collect()
}

/// Lazily connecting channels that carry no credentials.
fn plain_channels(urls: &[String], timeout: std::time::Duration) -> Vec<Channel> {
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
