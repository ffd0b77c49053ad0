//! Maintenance.Alarm over gRPC: raising and clearing through the log, listing, what NOSPACE does to writes, and
//! requests etcd's clients never send (an unknown alarm type or action).

mod common;

use std::time::{Duration, Instant};

use meridian_proto::etcdserverpb::alarm_request::AlarmAction;
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use meridian_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmType, PutRequest, StatusRequest};

fn req(action: AlarmAction, member_id: u64, alarm: i32) -> AlarmRequest {
    AlarmRequest { action: action as i32, member_id, alarm }
}

#[tokio::test]
async fn alarms_are_raised_listed_and_cleared_and_bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = meridian_server::start(common::solo(dir.path())).await.unwrap();
    let endpoint = format!("http://{}", server.client_addr);
    let mut maintenance = MaintenanceClient::connect(endpoint.clone()).await.unwrap();
    let mut kv = KvClient::connect(endpoint).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while maintenance.status(StatusRequest {}).await.unwrap().get_ref().leader == 0 {
        assert!(Instant::now() < deadline, "no leader within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let nospace = AlarmType::Nospace as i32;
    let put = || PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() };
    kv.put(put()).await.unwrap();

    let raised = maintenance.alarm(req(AlarmAction::Activate, 42, nospace)).await.unwrap().into_inner();
    assert_eq!(raised.alarms, vec![AlarmMember { member_id: 42, alarm: nospace }]);
    let listed = maintenance.alarm(req(AlarmAction::Get, 0, 0)).await.unwrap().into_inner();
    assert_eq!(listed.alarms, raised.alarms);
    let refused = kv.put(put()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(refused.message(), "etcdserver: mvcc: database space exceeded");
    let status = maintenance.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.errors, vec!["memberID:42 alarm:NOSPACE ".to_owned()]);

    let bad_type = maintenance.alarm(req(AlarmAction::Activate, 42, 9)).await.unwrap_err();
    assert_eq!(bad_type.code(), tonic::Code::InvalidArgument);
    assert!(bad_type.message().contains("unknown alarm type 9"), "{bad_type:?}");
    let bad_action = maintenance.alarm(AlarmRequest { action: 7, member_id: 42, alarm: nospace }).await.unwrap();
    assert!(bad_action.get_ref().alarms.is_empty(), "etcd answers an unknown action with no alarms");

    let cleared = maintenance.alarm(req(AlarmAction::Deactivate, 42, nospace)).await.unwrap().into_inner();
    assert_eq!(cleared.alarms, raised.alarms);
    let again = maintenance.alarm(req(AlarmAction::Deactivate, 42, nospace)).await.unwrap().into_inner();
    assert!(again.alarms.is_empty(), "clearing an alarm that is not active answers nothing");
    assert!(maintenance.alarm(req(AlarmAction::Get, 0, 0)).await.unwrap().into_inner().alarms.is_empty());
    kv.put(put()).await.unwrap();
    server.stop().await.unwrap();
}
