//! The etcd error catalogue. Each variant carries the gRPC status code and the exact message text etcd sends,
//! because `etcdctl` and client libraries match on those strings.

use thiserror::Error;

/// The gRPC status codes that etcd errors use; the server maps these onto `tonic::Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    /// The request is malformed.
    InvalidArgument,
    /// A revision is compacted or in the future, or a TTL is out of range.
    OutOfRange,
    /// The named object does not exist.
    NotFound,
    /// The request conflicts with the current state.
    FailedPrecondition,
    /// A quota is exhausted.
    ResourceExhausted,
    /// The service cannot answer now; the client should retry elsewhere.
    Unavailable,
    /// The request was cancelled.
    Cancelled,
    /// An internal invariant failed.
    Internal,
    /// The caller lacks the permission the request needs.
    PermissionDenied,
    /// The caller's credentials are missing or invalid.
    Unauthenticated,
    /// Data was lost or corrupted.
    DataLoss,
    /// No code: etcd's lock and election services answer their own errors this way (gRPC's default for an
    /// error that carries no status).
    Unknown,
}

/// An error that crosses the wire with etcd's code and message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EtcdError {
    /// A key was empty.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// A txn contained more operations than allowed.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A txn wrote the same key twice.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// `ignore_value` or `ignore_lease` was set on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// `ignore_value` was set together with a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` was set together with a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// The requested revision was compacted away.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// The requested revision has not happened yet.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// The lease does not exist.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A lease with the requested id already exists.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// The lease TTL exceeds the maximum.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// The encoded request exceeds the request size limit.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// No leader is known.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// This member is not the leader.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// The leader changed while the request was in flight.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    /// MoveLeader named a member that cannot lead.
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// MoveLeader did not see the target lead in time.
    #[error("etcdserver: request timed out, leader transfer took too long")]
    TimeoutLeaderTransfer,
    /// The request did not finish in time.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// The proposal's entry was dropped when leadership changed; it may or may not have committed.
    #[error("etcdserver: request timed out, possibly due to previous leader failure")]
    TimeoutDueToLeaderFail,
    /// The server is shutting down.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// The NOSPACE alarm is active (the backend quota was exceeded, or a member's disk is full): writes that
    /// add data are refused until an operator frees space and disarms it.
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// The member does not exist.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// A member with that id already exists.
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    /// A member with those peer URLs already exists.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// Only learners can be promoted.
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    /// The learner has not caught up with the leader.
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// The peer URLs are malformed.
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    /// The RPC is not served by learners.
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    /// A watch id is already in use on the stream.
    #[error("etcdserver: duplicate watch id")]
    DuplicateWatchId,
    /// A watch whose range ends where it starts or before.
    #[error("mvcc: watcher range is empty")]
    WatcherRangeEmpty,
    /// AuthEnable without a `root` user.
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    /// AuthEnable while the `root` user lacks the `root` role.
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    /// UserAdd of a name that exists.
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    /// A user name was empty, or a request carried no credentials while auth is enabled.
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    /// The named user does not exist.
    #[error("etcdserver: user name not found")]
    UserNotFound,
    /// RoleAdd of a name that exists.
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    /// The named role does not exist.
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    /// A role name was empty.
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    /// Authenticate with an unknown user or a wrong password.
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// The caller's roles do not cover the request.
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    /// UserRevokeRole of a role the user does not have.
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    /// RoleRevokePermission of a permission the role does not have.
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    /// RoleGrantPermission without a permission.
    #[error("etcdserver: permission not given")]
    PermissionNotGiven,
    /// Authenticate while auth is disabled.
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    /// The token is unknown, expired, from another cluster or badly signed.
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    /// Deleting the root user or role, or revoking root from root, while auth is enabled.
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    /// The auth store changed between authentication and apply; the client re-authenticates and retries.
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// UserAdd or UserChangePassword with an empty password, without the no-password option.
    #[error("etcdserver: password is empty")]
    PasswordEmpty,
    /// A client from beyond loopback while auth is off on a member listening beyond loopback without client
    /// certificates: such a member serves remote clients only once auth is enabled.
    #[error(
        "etcdserver: authentication is not enabled: this member serves remote clients only with auth on or --client-cert-auth"
    )]
    RemoteNeedsAuth,
    /// Too many failed attempts (Authenticate throttling).
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    /// A client write under the reserved `/meridian/` keyspace, which only the server writes.
    #[error("meridian: keys under /meridian/ are reserved for the server; clients may read and watch them only")]
    ReservedKey,
    /// Proclaim or Resign named a leader key that is gone or was created at another revision (etcd's
    /// `concurrency.ErrElectionNotLeader`).
    #[error("election: not leader")]
    ElectionNotLeader,
    /// Leader found no key under the election's prefix (etcd's `concurrency.ErrElectionNoLeader`).
    #[error("election: no leader")]
    ElectionNoLeader,
    /// Proclaim or Resign without a `leader` (etcd's `v3election.ErrMissingLeaderKey`).
    #[error("\"leader\" field must be provided")]
    MissingLeaderKey,
    /// Any other internal failure, with its description.
    #[error("etcdserver: {0}")]
    Internal(String),
}

impl EtcdError {
    /// The gRPC status code etcd uses for this error.
    pub fn code(&self) -> StatusCode {
        use EtcdError::*;
        match self {
            EmptyKey | TooManyOps | DuplicateKey | KeyNotFound | ValueProvided | LeaseProvided | RequestTooLarge
            | MemberBadUrls | UserEmpty | RoleEmpty | AuthFailed | PermissionNotGiven | InvalidAuthMgmt
            | AuthOldRevision | PasswordEmpty => StatusCode::InvalidArgument,
            PermissionDenied | ReservedKey => StatusCode::PermissionDenied,
            InvalidAuthToken => StatusCode::Unauthenticated,
            RootUserNotExist | RootRoleNotExist | UserAlreadyExist | UserNotFound | RoleAlreadyExist | RoleNotFound
            | RoleNotGranted | PermissionNotGranted | AuthNotEnabled | RemoteNeedsAuth => {
                StatusCode::FailedPrecondition
            }
            Compacted | FutureRevision | LeaseTtlTooLarge => StatusCode::OutOfRange,
            LeaseNotFound | MemberNotFound => StatusCode::NotFound,
            NoSpace | TooManyRequests => StatusCode::ResourceExhausted,
            LeaseExists | NotLeader | MemberExists | PeerUrlExists | MemberNotLearner | LearnerNotReady
            | DuplicateWatchId | WatcherRangeEmpty | BadLeaderTransferee => StatusCode::FailedPrecondition,
            NoLeader
            | LeaderChanged
            | Timeout
            | TimeoutDueToLeaderFail
            | Stopped
            | NotSupportedForLearner
            | TimeoutLeaderTransfer => StatusCode::Unavailable,
            Internal(_) => StatusCode::Internal,
            ElectionNotLeader | ElectionNoLeader | MissingLeaderKey => StatusCode::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_is_out_of_range_with_etcd_text() {
        let e = EtcdError::Compacted;
        assert_eq!(e.code(), StatusCode::OutOfRange);
        assert_eq!(e.to_string(), "etcdserver: mvcc: required revision has been compacted");
    }

    #[test]
    fn no_space_is_resource_exhausted_with_etcd_text() {
        assert_eq!(EtcdError::NoSpace.code(), StatusCode::ResourceExhausted);
        assert_eq!(EtcdError::NoSpace.to_string(), "etcdserver: mvcc: database space exceeded");
    }

    #[test]
    fn election_errors_have_no_code_and_etcd_texts() {
        assert_eq!(EtcdError::ElectionNotLeader.code(), StatusCode::Unknown);
        assert_eq!(EtcdError::ElectionNotLeader.to_string(), "election: not leader");
        assert_eq!(EtcdError::ElectionNoLeader.to_string(), "election: no leader");
        assert_eq!(EtcdError::MissingLeaderKey.to_string(), "\"leader\" field must be provided");
    }

    #[test]
    fn lease_not_found_is_not_found() {
        assert_eq!(EtcdError::LeaseNotFound.code(), StatusCode::NotFound);
        assert_eq!(EtcdError::LeaseNotFound.to_string(), "etcdserver: requested lease not found");
    }
}
