//! Maintenance.Status carries the leader's datacenter and the placement reason as response metadata, since
//! etcd's StatusResponse has no field for them.

mod common;

use std::time::{Duration, Instant};

use meridian_proto::etcdserverpb::StatusRequest;
use meridian_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use meridian_server::ServerConfig;
use meridian_server::grpc::maintenance::{LEADER_DC_METADATA, PLACEMENT_METADATA};
use meridian_types::DcName;

#[tokio::test]
async fn status_names_the_leader_dc_and_why_it_leads() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig { dc: DcName::from("dc-x"), ..common::solo(dir.path()) };
    let server = meridian_server::start(config).await.unwrap();
    let mut client = MaintenanceClient::connect(format!("http://{}", server.client_addr)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        let response = client.status(StatusRequest {}).await.unwrap();
        if response.get_ref().leader != 0 {
            break response;
        }
        assert!(Instant::now() < deadline, "no leader within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let meta = response.metadata();
    assert_eq!(meta.get(LEADER_DC_METADATA).and_then(|v| v.to_str().ok()), Some("dc-x"));
    let reason = meta.get(PLACEMENT_METADATA).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(!reason.is_empty(), "a placement reason is reported");
    server.stop().await.unwrap();
}
