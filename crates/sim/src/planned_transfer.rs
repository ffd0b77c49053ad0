//! The planned leadership move, made once the faults are over and leadership has settled: writers on every
//! founder put register keys as fast as their members answer while the nemesis asks the leader (etcd's
//! MoveLeader) to hand over to a voter in another datacenter; the placement driver then moves leadership
//! back to the preferred datacenter after its failback hold, a second planned move, inside the same window.
//! Every write must succeed: a planned move may not cost a client anything (the checker's liveness check),
//! and the writes go into the history like any client's, so the linearizability check covers them too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use meridian_proto::etcdserverpb::{MoveLeaderRequest, StatusRequest};
use parking_lot::Mutex;

use crate::cluster::FAILBACK_HOLD_MS;
use crate::history::PlannedTransfer;
use crate::recorder::{Recorder, now_ns};
use crate::sim_net::client_channels;
use crate::workload::{self, REGISTER_PREFIX};

/// Client numbers of the writers start here, clear of the workload's clients and the restart readers.
pub const FIRST_WRITER_ID: u32 = 200;
/// How long the writers write: the move, the failback hold, the failback, and room for both to finish.
pub const WINDOW: Duration = Duration::from_millis(FAILBACK_HOLD_MS + 2500);
/// When, after the writers start, MoveLeader is asked.
const ASK_AFTER: Duration = Duration::from_millis(300);
/// One write's bound (the workload's): far beyond a handover.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the host looks whether its time has come.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// When the move begins, in simulated nanoseconds (0: not yet); the runner sets it once leadership settled.
pub type StartAt = Arc<AtomicU64>;
/// Where the host leaves what happened, once the window is over.
pub type Done = Arc<Mutex<Option<PlannedTransfer>>>;

/// A founder: its id, client URL and datacenter.
#[derive(Clone, Debug)]
pub struct Founder {
    /// Member id.
    pub id: u64,
    /// Client URL.
    pub url: String,
    /// Datacenter.
    pub dc: String,
}

/// Waits for the start, then writes and moves leadership; records the outcome in `done`.
pub async fn run(founders: Vec<Founder>, keys: u64, start: StartAt, rec: Recorder, done: Done) -> turmoil::Result {
    loop {
        let at = start.load(Ordering::Acquire);
        if at != 0 && now_ns() >= at {
            break;
        }
        tokio::time::sleep(IDLE_POLL).await;
    }
    let until = now_ns() + nanos(WINDOW);
    let writers: Vec<u32> = (0..founders.len() as u32).map(|i| FIRST_WRITER_ID + i).collect();
    let writing = founders.iter().zip(&writers).map(|(f, id)| write(*id, f.url.clone(), keys, until, rec.clone()));
    let moving = async {
        tokio::time::sleep(ASK_AFTER).await;
        let asked_at = now_ns();
        (asked_at, move_leader(&founders).await)
    };
    let (_, (asked_at, moved)) = futures::join!(futures::future::join_all(writing), moving);
    *done.lock() = Some(PlannedTransfer { asked_at, moved, writers });
    Ok(())
}

async fn write(id: u32, url: String, keys: u64, until: u64, rec: Recorder) {
    let Some(channel) = client_channels(std::slice::from_ref(&url), WRITE_TIMEOUT).pop() else { return };
    let mut seq = 0u64;
    while now_ns() < until {
        let key = format!("{REGISTER_PREFIX}{}", seq % keys).into_bytes();
        let value = format!("c{id}-{seq}").into_bytes();
        workload::put(channel.clone(), &rec, id, key, value, None).await;
        seq += 1;
    }
}

/// Asks the leader to hand over to the lowest-id founder outside its datacenter; whether it answered that the
/// target leads.
async fn move_leader(founders: &[Founder]) -> bool {
    let channels = client_channels(&founders.iter().map(|f| f.url.clone()).collect::<Vec<_>>(), WRITE_TIMEOUT);
    let mut leader = 0;
    for ch in &channels {
        if let Ok(r) = MaintenanceClient::new(ch.clone()).status(StatusRequest {}).await {
            leader = r.into_inner().leader;
            break;
        }
    }
    let Some(at) = founders.iter().position(|f| f.id == leader) else { return false };
    let Some(target) = founders.iter().filter(|f| f.dc != founders[at].dc).map(|f| f.id).min() else { return false };
    MaintenanceClient::new(channels[at].clone()).move_leader(MoveLeaderRequest { target_id: target }).await.is_ok()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
