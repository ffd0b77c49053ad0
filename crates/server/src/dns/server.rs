//! The sockets: hickory-server's UDP and TCP listeners on one address, a [`RequestHandler`] that applies the
//! rate limit and hands the request's bytes to [`respond`], and the binding rules of the member's start (a
//! taken default port only disables DNS; an explicit address that cannot be bound fails the start).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use meridian_registry::Locality;
use parking_lot::Mutex;
use tokio::net::{TcpListener, UdpSocket};

use super::DnsSettings;
use super::cache::Answers;
use super::limit::RateLimiter;
use super::respond::{Transport, respond};
use crate::discovery::Discovery;

/// How long an idle TCP connection stays open.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses buffered per TCP connection.
const TCP_BUFFER: usize = 32;

/// The UDP socket and TCP listener, bound to the same address.
pub struct BoundDns {
    /// The address both listen on.
    pub addr: SocketAddr,
    udp: UdpSocket,
    tcp: TcpListener,
}

/// Binds UDP and TCP on `addr`. With port 0, the port UDP got is taken for TCP too (tried a few times, as
/// another process may hold it for TCP).
pub async fn bind(addr: SocketAddr) -> io::Result<BoundDns> {
    let mut last = None;
    for _ in 0..8 {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok(BoundDns { addr: bound, udp, tcp }),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

/// Binds DNS as the configuration asks: `None` when disabled, or when the default address is taken (after one
/// warning); an explicit address that cannot be bound is an error.
pub async fn bind_configured(config: &crate::config::ServerConfig) -> crate::error::Result<Option<BoundDns>> {
    let Some((addr, explicit)) = config.dns_addr()? else { return Ok(None) };
    match bind(addr).await {
        Ok(bound) => Ok(Some(bound)),
        Err(e) if !explicit => {
            tracing::warn!(%addr, error = %e, "the default DNS address is not free: running without DNS \
                (give --listen-dns an address, or none)");
            Ok(None)
        }
        Err(e) => Err(crate::error::Error::Listener(format!("dns {addr}: {e}"))),
    }
}

/// A serving DNS server; dropping it stops it.
pub struct DnsServer {
    /// The address it listens on (UDP and TCP).
    pub addr: SocketAddr,
    server: Server<Handler>,
}

impl DnsServer {
    /// Serves `bound` from `discovery`'s catalog with `settings`.
    pub fn serve(bound: BoundDns, discovery: Arc<Discovery>, mut settings: DnsSettings) -> DnsServer {
        let BoundDns { addr, udp, tcp } = bound;
        if settings.ns_addr.is_none() && !addr.ip().is_unspecified() {
            settings.ns_addr = Some(addr.ip());
        }
        let limiter = Mutex::new(RateLimiter::new(settings.rate_limit));
        let answers = Answers::new(discovery, settings);
        let own = answers.own_locality();
        let handler = Handler { answers, own, limiter, started: Instant::now() };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, TCP_BUFFER);
        tracing::info!(%addr, "serving discovery DNS (UDP and TCP)");
        DnsServer { addr, server }
    }

    /// Serves until the listeners fail; run as a task (aborting it stops the server).
    pub async fn run(mut self) {
        if let Err(e) = self.server.block_until_done().await {
            tracing::error!(error = %e, "the DNS server stopped");
        }
    }
}

struct Handler {
    answers: Answers,
    own: Locality,
    limiter: Mutex<RateLimiter>,
    started: Instant,
}

impl Handler {
    fn allowed(&self, src: IpAddr) -> bool {
        let now_ms = self.started.elapsed().as_millis() as u64;
        self.limiter.lock().allow(src, now_ms)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let unsent = Header {
            metadata: Metadata::new(request.metadata.id, MessageType::Response, request.metadata.op_code),
            counts: HeaderCounts::default(),
        };
        let src = request.src();
        if !self.allowed(src.ip()) {
            return unsent.into();
        }
        let transport = if request.protocol() == Protocol::Udp { Transport::Udp } else { Transport::Tcp };
        let settings = self.answers.settings();
        let Some(message) =
            respond(request.as_slice(), src.ip(), transport, settings, &self.own, |q| self.answers.answer(q))
        else {
            return unsent.into();
        };
        let response = MessageResponseBuilder::new(&request.queries, message.edns.as_ref()).build(
            message.metadata,
            message.answers.iter(),
            message.authorities.iter(),
            std::iter::empty(),
            message.additionals.iter(),
        );
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(%src, error = %e, "a DNS response could not be sent");
                unsent.into()
            }
        }
    }
}
