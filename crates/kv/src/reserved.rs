//! The reserved keyspace rule: a client's command may not write under `/meridian/`, whatever its permissions.
//! A put of a reserved key, or a delete whose range starts inside the reserved keyspace, is refused (through
//! every branch and nested txn); a wider delete (`etcdctl del "" --from-key`) goes through but spares the
//! reserved keys (`KvStore::apply`). The server's own commands carry no caller and are never judged. Checked
//! at apply, so a forwarded write is judged the same on every member.

use meridian_proto::etcdserverpb::TxnRequest;
use meridian_proto::etcdserverpb::request_op::Request;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::EtcdError;
use meridian_types::reserved::RESERVED_PREFIX;

/// Refuses `cmd` if it writes into the reserved keyspace.
pub fn check_client_command(cmd: &Cmd) -> Result<(), EtcdError> {
    let writes_reserved = match cmd {
        Cmd::Put(p) => p.key.starts_with(RESERVED_PREFIX),
        Cmd::DeleteRange(d) => d.key.starts_with(RESERVED_PREFIX),
        Cmd::Txn(t) => txn_writes_reserved(t),
        _ => false,
    };
    if writes_reserved { Err(EtcdError::ReservedKey) } else { Ok(()) }
}

/// Whether every key `cmd` writes lies in the reserved keyspace (and it writes something): the server's own
/// records (verdicts, failover groups, hook audits), which keep going under the NOSPACE alarm so that a full
/// store cannot stop a datacenter failover. They are a few hundred bytes per change.
pub fn writes_only_reserved(cmd: &Cmd) -> bool {
    match cmd {
        Cmd::Put(p) => p.key.starts_with(RESERVED_PREFIX),
        Cmd::DeleteRange(d) => range_is_reserved(&d.key, &d.range_end),
        Cmd::Txn(t) => txn_writes_only_reserved(t),
        _ => false,
    }
}

/// Whether the range [`key`, `range_end`) lies inside the reserved keyspace.
fn range_is_reserved(key: &[u8], range_end: &[u8]) -> bool {
    // The prefix ends in '/': its range ends where '/' + 1 begins.
    let mut end = RESERVED_PREFIX.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    key.starts_with(RESERVED_PREFIX) && (range_end.is_empty() || (range_end != [0] && range_end <= end.as_slice()))
}

fn txn_writes_only_reserved(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).all(|op| match &op.request {
        Some(Request::RequestPut(p)) => p.key.starts_with(RESERVED_PREFIX),
        Some(Request::RequestDeleteRange(d)) => range_is_reserved(&d.key, &d.range_end),
        Some(Request::RequestTxn(n)) => txn_writes_only_reserved(n),
        Some(Request::RequestRange(_)) | None => true,
    })
}

fn txn_writes_reserved(t: &TxnRequest) -> bool {
    t.success.iter().chain(&t.failure).any(|op| match &op.request {
        Some(Request::RequestPut(p)) => p.key.starts_with(RESERVED_PREFIX),
        Some(Request::RequestDeleteRange(d)) => d.key.starts_with(RESERVED_PREFIX),
        Some(Request::RequestTxn(n)) => txn_writes_reserved(n),
        Some(Request::RequestRange(_)) | None => false,
    })
}

#[cfg(test)]
mod tests {
    use meridian_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest, RequestOp};

    use super::*;

    fn put(key: &str) -> RequestOp {
        RequestOp { request: Some(Request::RequestPut(PutRequest { key: key.into(), ..Default::default() })) }
    }

    #[test]
    fn client_writes_under_the_prefix_are_refused() {
        let refused = [
            Cmd::Put(PutRequest { key: "/meridian/dc/dc-a".into(), ..Default::default() }),
            Cmd::DeleteRange(DeleteRangeRequest {
                key: "/meridian/".into(),
                range_end: "/meridian0".into(),
                ..Default::default()
            }),
            Cmd::Txn(TxnRequest { failure: vec![put("/meridian/active/db")], ..Default::default() }),
            Cmd::Txn(TxnRequest {
                success: vec![RequestOp {
                    request: Some(Request::RequestTxn(TxnRequest {
                        success: vec![put("/meridian/x")],
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            }),
        ];
        for cmd in refused {
            assert_eq!(check_client_command(&cmd), Err(EtcdError::ReservedKey), "{cmd:?}");
        }
    }

    #[test]
    fn only_writes_inside_the_prefix_count_as_the_servers_records() {
        let reserved = [
            Cmd::Put(PutRequest { key: "/meridian/dc/dc-a".into(), ..Default::default() }),
            Cmd::DeleteRange(DeleteRangeRequest { key: "/meridian/dc/dc-z".into(), ..Default::default() }),
            Cmd::DeleteRange(DeleteRangeRequest {
                key: "/meridian/audit/".into(),
                range_end: "/meridian/audit0".into(),
                ..Default::default()
            }),
            Cmd::Txn(TxnRequest { success: vec![put("/meridian/active/db")], ..Default::default() }),
        ];
        for cmd in reserved {
            assert!(writes_only_reserved(&cmd), "{cmd:?}");
        }
        let not = [
            Cmd::Put(PutRequest { key: "app".into(), ..Default::default() }),
            Cmd::DeleteRange(DeleteRangeRequest { key: "/meridian/".into(), range_end: vec![0], ..Default::default() }),
            Cmd::DeleteRange(DeleteRangeRequest {
                key: "/meridian/".into(),
                range_end: "/n".into(),
                ..Default::default()
            }),
            Cmd::Txn(TxnRequest { success: vec![put("/meridian/active/db"), put("app")], ..Default::default() }),
        ];
        for cmd in not {
            assert!(!writes_only_reserved(&cmd), "{cmd:?}");
        }
    }

    #[test]
    fn reads_and_other_keys_pass() {
        let read = RequestOp {
            request: Some(Request::RequestRange(RangeRequest { key: "/meridian/dc/".into(), ..Default::default() })),
        };
        let allowed = [
            Cmd::Put(PutRequest { key: "/meridianx".into(), ..Default::default() }),
            Cmd::Put(PutRequest { key: "app/meridian/".into(), ..Default::default() }),
            // A wider delete is allowed; apply spares the reserved keys.
            Cmd::DeleteRange(DeleteRangeRequest { key: vec![0], range_end: vec![0], ..Default::default() }),
            Cmd::Txn(TxnRequest { success: vec![read, put("app/a")], ..Default::default() }),
        ];
        for cmd in allowed {
            assert_eq!(check_client_command(&cmd), Ok(()), "{cmd:?}");
        }
    }
}
