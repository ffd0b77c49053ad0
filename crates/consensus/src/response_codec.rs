//! Byte encoding of the outcome of one applied command (`meridian_kv::Result<CommandResponse>`).
//!
//! openraft requires the response type to be serde-able, and the server's `Peer/ForwardStream` RPC must
//! carry the same outcome back from the leader, so both use this one compact format:
//! a tag byte, then either the response kind and its protobuf bytes, or the error kind and text.
//! etcd errors travel as a stable numeric code so the follower can rebuild the exact variant.

use meridian_kv::CommandResponse;
use meridian_proto::etcdserverpb::{
    AlarmResponse, CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse,
    TxnResponse,
};
use meridian_types::EtcdError;
use prost::Message;

use crate::error::{Error, Result};

const TAG_OK: u8 = 0;
const TAG_ERR: u8 = 1;

const ERR_ETCD: u8 = 1;
const ERR_BACKEND: u8 = 2;
const ERR_CORRUPT: u8 = 3;

/// Encode the outcome of applying one command.
pub fn encode_apply_result(result: &meridian_kv::Result<CommandResponse>) -> Vec<u8> {
    match result {
        Ok(resp) => {
            let (kind, body) = match resp {
                CommandResponse::Put(r) => (1u8, r.encode_to_vec()),
                CommandResponse::DeleteRange(r) => (2, r.encode_to_vec()),
                CommandResponse::Txn(r) => (3, r.encode_to_vec()),
                CommandResponse::Compaction(r) => (4, r.encode_to_vec()),
                CommandResponse::LeaseGrant(r) => (5, r.encode_to_vec()),
                CommandResponse::LeaseRevoke(r) => (6, r.encode_to_vec()),
                CommandResponse::LeaseCheckpoint => (7, Vec::new()),
                CommandResponse::Alarm(r) => (8, r.encode_to_vec()),
                CommandResponse::Auth => (9, Vec::new()),
            };
            let mut out = Vec::with_capacity(body.len() + 2);
            out.extend([TAG_OK, kind]);
            out.extend(body);
            out
        }
        Err(err) => {
            let (kind, code, text) = match err {
                meridian_kv::Error::Etcd(e) => {
                    let text = match e {
                        EtcdError::Internal(m) => m.clone(),
                        _ => String::new(),
                    };
                    (ERR_ETCD, etcd_code(e), text)
                }
                meridian_kv::Error::Backend(m) => (ERR_BACKEND, 0, m.clone()),
                meridian_kv::Error::Corrupt(m) => (ERR_CORRUPT, 0, m.clone()),
            };
            let mut out = Vec::with_capacity(text.len() + 3);
            out.extend([TAG_ERR, kind, code]);
            out.extend(text.into_bytes());
            out
        }
    }
}

/// Decode what [`encode_apply_result`] produced.
pub fn decode_apply_result(bytes: &[u8]) -> Result<meridian_kv::Result<CommandResponse>> {
    let bad = |what: &str| Error::Transport(format!("bad apply result encoding: {what}"));
    let (&tag, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    let (&kind, body) = rest.split_first().ok_or_else(|| bad("missing kind"))?;
    let dec = |e: prost::DecodeError| bad(&e.to_string());
    match tag {
        TAG_OK => {
            let resp = match kind {
                1 => CommandResponse::Put(PutResponse::decode(body).map_err(dec)?),
                2 => CommandResponse::DeleteRange(DeleteRangeResponse::decode(body).map_err(dec)?),
                3 => CommandResponse::Txn(TxnResponse::decode(body).map_err(dec)?),
                4 => CommandResponse::Compaction(CompactionResponse::decode(body).map_err(dec)?),
                5 => CommandResponse::LeaseGrant(LeaseGrantResponse::decode(body).map_err(dec)?),
                6 => CommandResponse::LeaseRevoke(LeaseRevokeResponse::decode(body).map_err(dec)?),
                7 => CommandResponse::LeaseCheckpoint,
                8 => CommandResponse::Alarm(AlarmResponse::decode(body).map_err(dec)?),
                9 => CommandResponse::Auth,
                _ => return Err(bad("unknown response kind")),
            };
            Ok(Ok(resp))
        }
        TAG_ERR => {
            let (&code, text) = body.split_first().ok_or_else(|| bad("missing error code"))?;
            let text = String::from_utf8_lossy(text).into_owned();
            let err = match kind {
                ERR_ETCD => {
                    meridian_kv::Error::Etcd(etcd_from_code(code, text).ok_or_else(|| bad("unknown etcd error code"))?)
                }
                ERR_BACKEND => meridian_kv::Error::Backend(text),
                ERR_CORRUPT => meridian_kv::Error::Corrupt(text),
                _ => return Err(bad("unknown error kind")),
            };
            Ok(Err(err))
        }
        _ => Err(bad("unknown tag")),
    }
}

/// Stable wire codes of the etcd errors; never renumber, only append.
fn etcd_code(e: &EtcdError) -> u8 {
    use EtcdError::*;
    match e {
        EmptyKey => 1,
        TooManyOps => 2,
        DuplicateKey => 3,
        KeyNotFound => 4,
        ValueProvided => 5,
        LeaseProvided => 6,
        Compacted => 7,
        FutureRevision => 8,
        LeaseNotFound => 9,
        LeaseExists => 10,
        LeaseTtlTooLarge => 11,
        RequestTooLarge => 12,
        NoLeader => 13,
        NotLeader => 14,
        LeaderChanged => 15,
        Timeout => 16,
        Stopped => 17,
        MemberNotFound => 18,
        MemberExists => 19,
        PeerUrlExists => 20,
        MemberNotLearner => 21,
        LearnerNotReady => 22,
        MemberBadUrls => 23,
        NotSupportedForLearner => 24,
        DuplicateWatchId => 25,
        Internal(_) => 26,
        BadLeaderTransferee => 27,
        TimeoutLeaderTransfer => 28,
        TimeoutDueToLeaderFail => 29,
        NoSpace => 30,
        RootUserNotExist => 31,
        RootRoleNotExist => 32,
        UserAlreadyExist => 33,
        UserEmpty => 34,
        UserNotFound => 35,
        RoleAlreadyExist => 36,
        RoleNotFound => 37,
        RoleEmpty => 38,
        AuthFailed => 39,
        PermissionDenied => 40,
        RoleNotGranted => 41,
        PermissionNotGranted => 42,
        PermissionNotGiven => 43,
        AuthNotEnabled => 44,
        InvalidAuthToken => 45,
        InvalidAuthMgmt => 46,
        AuthOldRevision => 47,
        PasswordEmpty => 48,
        TooManyRequests => 49,
        RemoteNeedsAuth => 50,
        ReservedKey => 51,
        ElectionNotLeader => 60,
        ElectionNoLeader => 61,
        MissingLeaderKey => 62,
        WatcherRangeEmpty => 63,
    }
}

fn etcd_from_code(code: u8, text: String) -> Option<EtcdError> {
    use EtcdError::*;
    Some(match code {
        1 => EmptyKey,
        2 => TooManyOps,
        3 => DuplicateKey,
        4 => KeyNotFound,
        5 => ValueProvided,
        6 => LeaseProvided,
        7 => Compacted,
        8 => FutureRevision,
        9 => LeaseNotFound,
        10 => LeaseExists,
        11 => LeaseTtlTooLarge,
        12 => RequestTooLarge,
        13 => NoLeader,
        14 => NotLeader,
        15 => LeaderChanged,
        16 => Timeout,
        17 => Stopped,
        18 => MemberNotFound,
        19 => MemberExists,
        20 => PeerUrlExists,
        21 => MemberNotLearner,
        22 => LearnerNotReady,
        23 => MemberBadUrls,
        24 => NotSupportedForLearner,
        25 => DuplicateWatchId,
        26 => Internal(text),
        27 => BadLeaderTransferee,
        28 => TimeoutLeaderTransfer,
        29 => TimeoutDueToLeaderFail,
        30 => NoSpace,
        31 => RootUserNotExist,
        32 => RootRoleNotExist,
        33 => UserAlreadyExist,
        34 => UserEmpty,
        35 => UserNotFound,
        36 => RoleAlreadyExist,
        37 => RoleNotFound,
        38 => RoleEmpty,
        39 => AuthFailed,
        40 => PermissionDenied,
        41 => RoleNotGranted,
        42 => PermissionNotGranted,
        43 => PermissionNotGiven,
        44 => AuthNotEnabled,
        45 => InvalidAuthToken,
        46 => InvalidAuthMgmt,
        47 => AuthOldRevision,
        48 => PasswordEmpty,
        49 => TooManyRequests,
        50 => RemoteNeedsAuth,
        51 => ReservedKey,
        60 => ElectionNotLeader,
        61 => ElectionNoLeader,
        62 => MissingLeaderKey,
        63 => WatcherRangeEmpty,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use meridian_proto::etcdserverpb::ResponseHeader;

    use super::*;

    #[test]
    fn round_trips_responses_and_errors() {
        let put = CommandResponse::Put(PutResponse {
            header: Some(ResponseHeader { revision: 7, ..Default::default() }),
            prev_kv: None,
        });
        let cases: Vec<meridian_kv::Result<CommandResponse>> = vec![
            Ok(put),
            Ok(CommandResponse::LeaseCheckpoint),
            Err(meridian_kv::Error::Etcd(EtcdError::Compacted)),
            Err(meridian_kv::Error::Etcd(EtcdError::Internal("boom".into()))),
            Err(meridian_kv::Error::Backend("disk".into())),
        ];
        for case in cases {
            let bytes = encode_apply_result(&case);
            let back = decode_apply_result(&bytes).unwrap();
            assert_eq!(format!("{back:?}"), format!("{case:?}"));
        }
    }

    #[test]
    fn every_etcd_code_round_trips() {
        for code in 1..=26u8 {
            let e = etcd_from_code(code, "t".into()).unwrap();
            assert_eq!(etcd_code(&e), code);
        }
        for code in 60..=62u8 {
            let e = etcd_from_code(code, String::new()).unwrap();
            assert_eq!(etcd_code(&e), code);
        }
        assert!(etcd_from_code(0, String::new()).is_none());
        assert!(decode_apply_result(&[9, 9]).is_err());
    }
}
