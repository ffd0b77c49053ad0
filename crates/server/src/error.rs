//! Errors of the server crate, and the one place where etcd errors become gRPC statuses.

use meridian_types::{EtcdError, StatusCode};

/// Failures while starting or running a member.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A listener could not be bound or served.
    #[error("listener: {0}")]
    Listener(String),
    /// The TLS files could not be loaded.
    #[error("TLS")]
    Tls(#[source] Box<crate::tls::TlsError>),
    /// The consensus layer failed to start or stopped.
    #[error("consensus")]
    Consensus(#[source] meridian_consensus::Error),
}

/// Result alias of the server crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Converts an etcd error into the gRPC status etcd itself would send.
pub fn to_status(err: EtcdError) -> tonic::Status {
    let code = match err.code() {
        StatusCode::InvalidArgument => tonic::Code::InvalidArgument,
        StatusCode::OutOfRange => tonic::Code::OutOfRange,
        StatusCode::NotFound => tonic::Code::NotFound,
        StatusCode::FailedPrecondition => tonic::Code::FailedPrecondition,
        StatusCode::ResourceExhausted => tonic::Code::ResourceExhausted,
        StatusCode::Unavailable => tonic::Code::Unavailable,
        StatusCode::Cancelled => tonic::Code::Cancelled,
        StatusCode::Internal => tonic::Code::Internal,
        StatusCode::DataLoss => tonic::Code::DataLoss,
        StatusCode::PermissionDenied => tonic::Code::PermissionDenied,
        StatusCode::Unauthenticated => tonic::Code::Unauthenticated,
        StatusCode::Unknown => tonic::Code::Unknown,
    };
    tonic::Status::new(code, err.to_string())
}

/// The status etcd's Lock and Election services answer an error with. etcd serves them by calling itself
/// through its Go client, which turns every error it knows into a plain error value, and gRPC sends a plain
/// error as `Unknown` with its text (`etcdserver: requested lease not found`, `election: not leader`). Errors
/// that client does not know keep their code: Meridian's own, and internal failures.
pub fn relayed_status(err: EtcdError) -> tonic::Status {
    match err {
        EtcdError::ReservedKey | EtcdError::RemoteNeedsAuth | EtcdError::Internal(_) => to_status(err),
        known => tonic::Status::unknown(known.to_string()),
    }
}

/// Turns a failed peer call back into the etcd error it carries. The leader answers with etcd's own status codes
/// and texts (see `crate::peer_service::service`), so those pass through; anything else means the leader could not
/// be reached or did not answer, and the outcome of a write is then unknown, as with etcd's timeout.
pub fn status_to_etcd(status: &tonic::Status) -> EtcdError {
    let msg = status.message();
    for known in [
        EtcdError::NotLeader,
        EtcdError::NoLeader,
        EtcdError::LeaderChanged,
        EtcdError::Timeout,
        EtcdError::TimeoutDueToLeaderFail,
        EtcdError::Stopped,
        EtcdError::LeaseNotFound,
        EtcdError::NoSpace,
    ] {
        if msg == known.to_string() {
            return known;
        }
    }
    tracing::debug!(code = ?status.code(), %msg, "peer call failed");
    EtcdError::Timeout
}

/// Converts a state-machine read error into a gRPC status.
pub fn kv_status(err: meridian_kv::Error) -> tonic::Status {
    match err {
        meridian_kv::Error::Etcd(e) => to_status(e),
        other => tonic::Status::internal(format!("etcdserver: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_maps_to_out_of_range_with_etcd_message() {
        let s = to_status(EtcdError::Compacted);
        assert_eq!(s.code(), tonic::Code::OutOfRange);
        assert_eq!(s.message(), "etcdserver: mvcc: required revision has been compacted");
    }

    #[test]
    fn relayed_errors_lose_their_code_as_through_etcds_own_client() {
        let s = relayed_status(EtcdError::LeaseNotFound);
        assert_eq!((s.code(), s.message()), (tonic::Code::Unknown, "etcdserver: requested lease not found"));
        let s = relayed_status(EtcdError::ElectionNotLeader);
        assert_eq!((s.code(), s.message()), (tonic::Code::Unknown, "election: not leader"));
        assert_eq!(relayed_status(EtcdError::ReservedKey).code(), tonic::Code::PermissionDenied);
        assert_eq!(relayed_status(EtcdError::Internal("x".into())).code(), tonic::Code::Internal);
    }

    #[test]
    fn leader_errors_pass_through_and_transport_failures_are_timeouts() {
        for e in [
            EtcdError::NotLeader,
            EtcdError::NoLeader,
            EtcdError::LeaderChanged,
            EtcdError::TimeoutDueToLeaderFail,
            EtcdError::LeaseNotFound,
        ] {
            assert_eq!(status_to_etcd(&to_status(e.clone())), e);
        }
        assert_eq!(status_to_etcd(&tonic::Status::unavailable("tcp connect error")), EtcdError::Timeout);
    }
}
