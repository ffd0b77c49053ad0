//! The calling side of member-to-member traffic over gRPC (`meridianpb.Peer`): one reused channel per peer URL
//! ([`channels`]), the consensus transport over it ([`grpc_transport`]) and the calls a non-leader makes to the leader
//! ([`client`]: forwarded writes, ReadIndex, lease keep-alives), and whether a failed call may have reached the
//! leader ([`call_error`]). Forwarded writes travel batched over one long-lived stream per leader
//! ([`forward_pipe`]; the leader's half is `peer_service::forward_serve`). Concurrent ReadIndex calls to one
//! leader share one call per round ([`read_index_batch`]). Reachability probes and reports go through
//! [`reach_client`]; TTL reports forwarded to their check's runner through [`check_client`]. The answering side is `crate::peer_service`.

pub mod call_error;
pub mod channels;
pub mod check_client;
pub mod client;
pub mod forward_pipe;
pub mod grpc_transport;
pub mod reach_client;
pub mod read_index_batch;

/// Largest peer message accepted or sent: snapshots and append batches are far bigger than client requests.
pub const MAX_PEER_MESSAGE_BYTES: usize = 1 << 30;
