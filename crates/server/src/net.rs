//! The network seam: how a member listens and how it dials its peers.
//!
//! A real server uses [`TcpNetwork`] (tokio's TCP). The deterministic simulation supplies its own
//! [`Network`] over a simulated fabric, so the very same gRPC services, peer transport and request
//! handling run there. Connections cross the seam as [`Conn`], a boxed byte stream.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

/// A byte stream both ways.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// The verified client certificate's Common Name of a TLS connection (`None` on a plain connection, or when
/// the client presented no certificate). With `--client-cert-auth` the auth layer takes it as the etcd user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCertName(pub Option<String>);

/// What the request handlers may know of the connection a request came on; tonic puts it into every request's
/// extensions (read it with [`client_cert_name`] and [`remote_addr`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnInfo {
    /// The remote end, when the network knows it (TCP does; the simulation does not say).
    pub remote_addr: Option<SocketAddr>,
    /// The verified client certificate's Common Name.
    pub client_cert_name: ClientCertName,
    /// The DNS and IP subject alternative names of the verified client certificate (`None` on a plain
    /// connection or without a certificate): on the peer link, the hosts its sender may speak for.
    pub cert_sans: Option<Vec<String>>,
}

/// The verified client certificate's Common Name of the connection `req` came on.
pub fn client_cert_name<T>(req: &tonic::Request<T>) -> Option<String> {
    req.extensions().get::<ConnInfo>().and_then(|info| info.client_cert_name.0.clone())
}

/// The subject alternative names of the client certificate of the connection `req` came on, if it had one.
pub fn cert_sans<T>(req: &tonic::Request<T>) -> Option<Vec<String>> {
    req.extensions().get::<ConnInfo>().and_then(|info| info.cert_sans.clone())
}

/// The remote address of the connection `req` came on, when known.
pub fn remote_addr<T>(req: &tonic::Request<T>) -> Option<SocketAddr> {
    req.extensions().get::<ConnInfo>().and_then(|info| info.remote_addr)
}

/// One accepted or dialled connection.
pub struct Conn(Box<dyn ByteStream>, ConnInfo);

impl Conn {
    /// Wraps any byte stream.
    pub fn new(stream: impl ByteStream) -> Self {
        Conn(Box::new(stream), ConnInfo::default())
    }

    /// Wraps a byte stream whose remote end is known.
    pub fn with_info(stream: impl ByteStream, info: ConnInfo) -> Self {
        Conn(Box::new(stream), info)
    }

    /// What is known of the connection.
    pub fn info(&self) -> &ConnInfo {
        &self.1
    }

    /// The same connection, its byte stream wrapped by `wrap`.
    pub fn map_stream<S: ByteStream>(self, wrap: impl FnOnce(Box<dyn ByteStream>) -> S) -> Conn {
        Conn(Box::new(wrap(self.0)), self.1)
    }
}

/// Accepted connections of one listener.
pub type Incoming = BoxStream<'static, io::Result<Conn>>;

/// How a member listens and dials.
pub trait Network: Send + Sync + 'static {
    /// Starts listening on `addr`; returns the bound address and the accepted connections.
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<(SocketAddr, Incoming)>>;

    /// Dials `host:port`.
    fn connect(&self, authority: String) -> BoxFuture<'static, io::Result<Conn>>;
}

/// A lazily connected gRPC channel to `endpoint` over `net`.
pub fn lazy_channel(net: &Arc<dyn Network>, endpoint: Endpoint) -> Channel {
    let net = net.clone();
    endpoint.connect_with_connector_lazy(tower::service_fn(move |uri: Uri| {
        let net = net.clone();
        async move {
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host:port in {uri}")))?;
            net.connect(authority).await.map(TokioIo::new)
        }
    }))
}

/// tokio's TCP with Nagle off (Raft and gRPC send small, latency-bound messages).
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpNetwork;

impl Network for TcpNetwork {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<(SocketAddr, Incoming)>> {
        Box::pin(async move {
            let listener = TcpListener::bind(addr).await?;
            let bound = listener.local_addr()?;
            let incoming = TcpListenerStream::new(listener)
                .map(|accepted| {
                    accepted.map(|stream| {
                        let _ = stream.set_nodelay(true);
                        let info = ConnInfo { remote_addr: stream.peer_addr().ok(), ..ConnInfo::default() };
                        Conn::with_info(stream, info)
                    })
                })
                .boxed();
            Ok((bound, incoming))
        })
    }

    fn connect(&self, authority: String) -> BoxFuture<'static, io::Result<Conn>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(authority).await?;
            let _ = stream.set_nodelay(true);
            Ok(Conn::new(stream))
        })
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// Handlers find the remote address and the client certificate's name in the request extensions.
impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.1.clone()
    }
}
