//! Raising the NOSPACE alarm: a member whose database is past the quota, or that refused a write for it
//! (`quota`), raises its own NOSPACE alarm through the log, so every member agrees and refuses writes that add
//! data, as etcd's members do when an apply crosses the quota.

use std::sync::Arc;
use std::time::Duration;

use meridian_kv::Backend;
use meridian_proto::etcdserverpb::alarm_request::AlarmAction;
use meridian_proto::etcdserverpb::{AlarmRequest, AlarmType};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;

use crate::member::Member;

/// How often a member compares its database with the quota when nothing asked it to.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Raises this member's NOSPACE alarm through the log whenever its database is past the quota or a write was
/// refused, unless the alarm is already active. Retries on the next check if the proposal fails.
pub async fn watch(member: Arc<Member>) {
    let quota = member.quota().clone();
    loop {
        tokio::select! {
            _ = quota.refusal() => {}
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let (size, active) = {
            let kv = member.kv().read();
            (kv.backend().size_bytes(), kv.alarms().is_active(member.id(), AlarmType::Nospace))
        };
        let refused = quota.take_refused();
        if active || (size <= quota.limit() && !refused) {
            continue;
        }
        tracing::warn!(size, quota = quota.limit(), "database space exceeded; raising the NOSPACE alarm");
        let raise = AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: member.id().0,
            alarm: AlarmType::Nospace as i32,
        };
        if let Err(e) = member.propose(RaftCommand { cmd: Some(Cmd::Alarm(raise)) }).await {
            tracing::warn!(error = %e, "raising the NOSPACE alarm failed; will retry");
            quota.put_back_refused(refused);
        }
    }
}
