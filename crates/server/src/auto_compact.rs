//! Drives auto-compaction (`meridian_kv::AutoCompactor`, etcd's `--auto-compaction-*`) on the leader: the policy
//! starts afresh whenever this member becomes leader, and each compaction it asks for goes through the log as
//! an operator's would.

use std::sync::Arc;

use meridian_kv::{AutoCompaction, AutoCompactor};
use meridian_proto::etcdserverpb::CompactionRequest;
use meridian_proto::meridianpb::RaftCommand;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_types::EtcdError;
use tokio::time::Instant;

use crate::member::Member;

/// Runs `policy` while this member leads; returns at once when it is off.
pub async fn run(member: Arc<Member>, policy: AutoCompaction) {
    if policy == AutoCompaction::Off {
        return;
    }
    let origin = Instant::now();
    let mut leader_rx = member.raft().leader_changes();
    loop {
        while *leader_rx.borrow_and_update() != Some(member.id()) {
            if leader_rx.changed().await.is_err() {
                return;
            }
        }
        let mut compactor = AutoCompactor::new(policy, origin.elapsed());
        loop {
            let current = member.kv().read().current_revision();
            let tick = compactor.tick(origin.elapsed(), current);
            if let Some(revision) = tick.compact {
                let cmd = Cmd::Compaction(CompactionRequest { revision: revision.0, physical: false });
                match member.propose(RaftCommand { auth: None, cmd: Some(cmd), ..Default::default() }).await {
                    Ok(_) | Err(EtcdError::Compacted) => {
                        tracing::info!(revision = revision.0, policy = %policy, "auto-compaction compacted")
                    }
                    Err(e) => tracing::warn!(revision = revision.0, error = %e, "auto-compaction failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep_until(origin + tick.next) => {}
                changed = leader_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *leader_rx.borrow() != Some(member.id()) {
                        break;
                    }
                }
            }
        }
    }
}
