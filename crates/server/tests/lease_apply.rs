//! The leader's lease clock learns of a lease when its grant is applied, not from the call that proposed it:
//! a grant whose proposer never reported back (a client that went away, a failed forward) still expires.

mod common;

use std::time::Duration;

use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::watch_client::WatchClient;
use meridian_proto::etcdserverpb::watch_request::RequestUnion;
use meridian_proto::etcdserverpb::{LeaseGrantRequest, PutRequest, WatchCreateRequest, WatchRequest};
use meridian_proto::meridianpb::{RaftCommand, raft_command::Cmd};
use meridian_proto::mvccpb::event::EventType;
use meridian_types::LeaseId;

const LEASE: i64 = 4242;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_granted_without_the_lease_service_still_expires() {
    let dir = tempfile::tempdir().unwrap();
    let server = meridian_server::start(common::solo(dir.path())).await.unwrap();
    let member = server.member.clone();
    tokio::time::timeout(Duration::from_secs(10), member.lessor().wait_leader())
        .await
        .expect("the lease clock never started");

    // Straight into the log, as a grant whose proposer never reported back would be.
    let grant = RaftCommand {
        auth: None,
        cmd: Some(Cmd::LeaseGrant(LeaseGrantRequest { ttl: 1, id: LEASE })),
        ..Default::default()
    };
    member.raft().propose(grant).await.expect("proposed").expect("granted");
    assert!(member.lessor().remaining(LeaseId(LEASE)).is_some(), "the applied grant did not reach the lease clock");

    let endpoint = format!("http://{}", server.client_addr);
    let mut watch = WatchClient::connect(endpoint.clone()).await.unwrap();
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: b"leased".to_vec(),
            ..Default::default()
        })),
    };
    let (requests, requests_rx) = tokio::sync::mpsc::channel(1);
    requests.send(create).await.unwrap();
    let mut events = watch.watch(tokio_stream::wrappers::ReceiverStream::new(requests_rx)).await.unwrap().into_inner();
    let created = events.message().await.unwrap().expect("watch created");
    assert!(created.created);
    let put = PutRequest { key: b"leased".to_vec(), value: b"v".to_vec(), lease: LEASE, ..Default::default() };
    KvClient::connect(endpoint).await.unwrap().put(put).await.expect("put with the lease");

    // The put, then the delete the expiry makes; without the clock knowing the lease it would never come.
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(15), events.message())
            .await
            .expect("the lease did not expire within 15 s")
            .unwrap()
            .expect("watch stream open");
        kinds.extend(message.events.iter().map(|e| e.r#type));
    }
    assert_eq!(kinds, vec![EventType::Put as i32, EventType::Delete as i32]);
    // A graceful stop waits for open streams.
    drop((requests, events, watch));
    server.stop().await.unwrap();
}
