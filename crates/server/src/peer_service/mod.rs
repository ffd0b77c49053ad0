//! The answering side of member-to-member traffic: the `meridianpb.Peer` service on the peer listener
//! ([`service`]: Raft messages and append streams, forwarded writes, ReadIndex, lease calls) and the leader's half
//! of the forwarding stream ([`forward_serve`]). The calling side is `crate::peer_client`.

pub mod forward_serve;
pub mod service;
