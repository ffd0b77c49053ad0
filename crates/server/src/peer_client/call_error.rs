//! How a call to the leader failed, as far as its caller needs to know: whether the request may have reached
//! the leader at all. One that certainly did not (the leader's address refused the connection, the emulated
//! link dropped it on the way out, or the forwarding stream closed before it was sent) can be sent again to
//! whoever leads next without any risk of applying it twice; that is how forwarding follows a new leader
//! without failing the requests queued behind a dead one.

use std::error::Error as _;
use std::io;

use meridian_types::EtcdError;

/// A failed call to the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The request never left this member.
    NotSent,
    /// The leader answered with this etcd error, or (as etcd's timeout) the outcome is unknown.
    Etcd(EtcdError),
}

impl From<EtcdError> for CallError {
    fn from(e: EtcdError) -> Self {
        CallError::Etcd(e)
    }
}

impl CallError {
    /// The error a client sees if nothing better comes of it: an unsent request is etcd's timeout, as a call
    /// that could not reach the leader has always been.
    pub fn into_etcd(self) -> EtcdError {
        match self {
            CallError::NotSent => EtcdError::Timeout,
            CallError::Etcd(e) => e,
        }
    }
}

/// Whether a failed gRPC call certainly never reached the server: its connection could not be made at all
/// (refused); the connection closed while the request still waited in the client's queue (hyper cancels such
/// requests and hands them back unsent); or the server refused the HTTP/2 stream before processing it.
pub fn never_connected(status: &tonic::Status) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = status.source();
    while let Some(e) = cause {
        let refused = e.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::ConnectionRefused);
        let canceled = e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled);
        let stream_refused =
            e.downcast_ref::<h2::Error>().and_then(h2::Error::reason) == Some(h2::Reason::REFUSED_STREAM);
        if refused || canceled || stream_refused {
            return true;
        }
        cause = e.source();
    }
    false
}
