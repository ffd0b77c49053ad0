//! The sockets of one member life. A process that exits closes every socket it had; a member started again in the
//! same process (`restart_in_place`) must do the same, or the connections its previous life accepted would go on
//! being served by that life's leftover connection tasks (answering for a stopped Raft node, and keeping its files
//! open). Every connection a life accepts or dials goes through its [`LifeNetwork`]; [`LifeEnd::end`] breaks
//! them all at once: their reads and writes fail, and the tasks serving them end.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::net::{ByteStream, Conn, Incoming, Network};

/// A network whose connections all break when the life that owns it ends.
pub struct LifeNetwork {
    inner: Arc<dyn Network>,
    ended: CancellationToken,
}

impl LifeNetwork {
    /// Connections over `inner`, for one life.
    pub fn new(inner: Arc<dyn Network>) -> Self {
        LifeNetwork { inner, ended: CancellationToken::new() }
    }

    /// The handle that ends this life's connections.
    pub fn ender(&self) -> LifeEnd {
        LifeEnd(self.ended.clone())
    }
}

/// Ends a life's connections ([`LifeNetwork::end`]), kept by the running server.
#[derive(Clone, Debug)]
pub struct LifeEnd(CancellationToken);

impl LifeEnd {
    /// Breaks every connection of the life.
    pub fn end(&self) {
        self.0.cancel();
    }
}

impl Network for LifeNetwork {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<(SocketAddr, Incoming)>> {
        let (bind, ended) = (self.inner.bind(addr), self.ended.clone());
        Box::pin(async move {
            let (bound, incoming) = bind.await?;
            let incoming = incoming.map(move |conn| conn.map(|c| breakable(c, &ended))).boxed();
            Ok((bound, incoming))
        })
    }

    fn connect(&self, authority: String) -> BoxFuture<'static, io::Result<Conn>> {
        let (connect, ended) = (self.inner.connect(authority), self.ended.clone());
        Box::pin(async move { connect.await.map(|c| breakable(c, &ended)) })
    }
}

fn breakable(conn: Conn, ended: &CancellationToken) -> Conn {
    conn.map_stream(|stream| Breakable { stream, ended: Box::pin(ended.clone().cancelled_owned()) })
}

/// A byte stream that fails once its life has ended.
struct Breakable {
    stream: Box<dyn ByteStream>,
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Breakable {
    /// `Some(error)` once the life has ended; otherwise registers to be woken when it does.
    fn broken(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.ended
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| io::Error::new(io::ErrorKind::ConnectionAborted, "the member life that owned it ended"))
    }
}

impl AsyncRead for Breakable {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.broken(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut *self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Breakable {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.broken(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.broken(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.broken(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn ending_the_life_breaks_a_read_that_waits_and_every_later_write() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let ended = CancellationToken::new();
        let mut conn = breakable(Conn::new(ours), &ended);
        theirs.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi", "a live connection carries bytes");
        let waiting = tokio::spawn(async move {
            let mut more = [0u8; 1];
            let read = conn.read(&mut more).await;
            (read.map_err(|e| e.kind()), conn)
        });
        tokio::task::yield_now().await;
        ended.cancel();
        let (read, mut conn) = waiting.await.unwrap();
        assert_eq!(read, Err(io::ErrorKind::ConnectionAborted), "the waiting read is woken and fails");
        assert_eq!(conn.write(b"x").await.map_err(|e| e.kind()), Err(io::ErrorKind::ConnectionAborted));
    }
}
