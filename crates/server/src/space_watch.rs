//! Raising and clearing NOSPACE, and stepping down on a full disk. Once a second (and at once after a refused
//! write) a member:
//! - raises its own NOSPACE alarm through the log when its database is past the quota or a write was refused
//!   (`quota`), so every member agrees and refuses writes that add data, as etcd's members do when an apply
//!   crosses the quota; only an operator clears that one (`etcdctl alarm disarm`), as in etcd;
//! - compares the free space of its data dir's file system with the reserve (`disk_reserve_bytes`). Below it,
//!   the disk counts as full before any write can fail there: the member refuses writes that add data, raises
//!   NOSPACE, and if it leads, hands leadership to the most caught-up voter (placement avoids members with
//!   NOSPACE). Reads go on from what it has applied. When the space is back (half the reserve again above it,
//!   so a disk at the edge does not flap) it clears its alarm and takes writes again — unless this process
//!   raised it for the quota. An alarm of its own found active from an earlier life (the process restarted while
//!   its disk was full; why it was raised is not recorded) is cleared the same way once the disk has room and the
//!   database is under the quota: a quota alarm from before a restart therefore lifts once the operator has
//!   compacted and defragmented, without the disarm etcd would want.

use std::sync::Arc;
use std::time::Duration;

use meridian_kv::Backend;
use meridian_proto::etcdserverpb::alarm_request::AlarmAction;
use meridian_proto::etcdserverpb::{AlarmRequest, AlarmType};
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;

use crate::member::Member;

/// How often a member checks its database and its disk when nothing asked it to.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Whether the disk counts as full, given whether it did and the free bytes now: below the reserve it does; it
/// stops only at half the reserve again above it. An unknown free space changes nothing.
pub fn disk_low(was_low: bool, free: Option<u64>, reserve: u64) -> bool {
    match free {
        None => was_low,
        Some(free) if was_low => free < reserve.saturating_add(reserve / 2),
        Some(free) => free < reserve,
    }
}

/// Runs the checks for `member` until the runtime stops.
pub async fn watch(member: Arc<Member>) {
    let quota = member.quota().clone();
    let reserve = member.config().disk_reserve_bytes;
    let mut low = false;
    // This process raised its alarm because of the quota: only an operator clears that one.
    let mut raised_for_quota = false;
    // Said once per episode that no other voter can lead.
    let mut told_alone = false;
    loop {
        tokio::select! {
            _ = quota.refusal() => {}
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let free = member.raft().free_disk_bytes();
        let now_low = disk_low(low, free, reserve);
        if now_low != low {
            let dir = member.config().data_dir.display().to_string();
            if now_low {
                tracing::error!(
                    %dir, free, reserve,
                    "the data dir's file system is below its reserve: refusing writes, raising NOSPACE, handing \
                     leadership over; free space on it to resume"
                );
            } else {
                tracing::warn!(%dir, free, reserve, "the data dir's file system has space again; taking writes");
            }
            quota.set_disk_low(now_low);
            low = now_low;
        }
        let (size, active) = {
            let kv = member.kv().read();
            (kv.backend().size_bytes(), kv.alarms().is_active(member.id(), AlarmType::Nospace))
        };
        let refused = quota.take_refused();
        let over_quota = size > quota.limit() || refused;
        if !active && (low || over_quota) {
            if !low {
                tracing::warn!(size, quota = quota.limit(), "database space exceeded; raising the NOSPACE alarm");
            }
            match set_alarm(&member, AlarmAction::Activate).await {
                Ok(()) => raised_for_quota = over_quota,
                Err(e) => {
                    tracing::warn!(error = %e, "raising the NOSPACE alarm failed; will retry");
                    quota.put_back_refused(refused);
                }
            }
        } else if active && !raised_for_quota && !low && !over_quota {
            match set_alarm(&member, AlarmAction::Deactivate).await {
                Ok(()) => tracing::info!("the disk has room again: cleared this member's NOSPACE alarm"),
                Err(e) => tracing::warn!(error = %e, "clearing the NOSPACE alarm failed; will retry"),
            }
        }
        if low && member.raft().current_leader() == Some(member.id()) {
            hand_over(&member, &mut told_alone).await;
        } else {
            told_alone = false;
        }
    }
}

async fn set_alarm(member: &Member, action: AlarmAction) -> Result<(), meridian_types::EtcdError> {
    let req = AlarmRequest { action: action as i32, member_id: member.id().0, alarm: AlarmType::Nospace as i32 };
    member.propose(RaftCommand { auth: None, cmd: Some(Cmd::Alarm(req)), ..Default::default() }).await.map(|_| ())
}

/// Asks openraft to hand leadership to the voter that holds the most of the log, among those without NOSPACE.
async fn hand_over(member: &Member, told_alone: &mut bool) {
    let status = member.raft().status();
    let progress = member.raft().replication_progress();
    let target = {
        let kv = member.kv().read();
        status
            .voters
            .iter()
            .filter(|v| **v != member.id() && !kv.alarms().is_active(**v, AlarmType::Nospace))
            .max_by_key(|v| progress.get(&v.0).copied().flatten())
            .copied()
    };
    let Some(target) = target else {
        if !std::mem::replace(told_alone, true) {
            tracing::warn!("the disk is full but no other voter can take over leadership; leading on, read-only");
        }
        return;
    };
    tracing::warn!(to = target.0, "the disk is full: handing leadership over");
    if let Err(e) = member.raft().request_transfer(target).await {
        tracing::warn!(error = %e, "handing leadership over failed; will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_counts_as_full_below_the_reserve_until_half_the_reserve_more_is_free() {
        let reserve = 100;
        assert!(!disk_low(false, Some(100), reserve));
        assert!(disk_low(false, Some(99), reserve));
        assert!(disk_low(true, Some(120), reserve), "not yet back: hysteresis");
        assert!(!disk_low(true, Some(150), reserve));
        assert!(disk_low(true, None, reserve), "unknown free space changes nothing");
        assert!(!disk_low(false, None, reserve));
    }
}
