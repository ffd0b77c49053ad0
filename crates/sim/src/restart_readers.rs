//! Readers that storm the members right after a restart: for a short burst after the runner heals a fault
//! that restarted members (a crash, or a [`crate::faults::FaultKind::CrashLeaderMajority`] window), one reader
//! per founder asks its member
//! for linearizable gets of every register key, as fast as the member answers, over fresh connections
//! (a restarted member's old connections are gone). A member that has just come back as leader, or a
//! follower asking it for a read index, answers in exactly the moments where a leader that resumed its
//! term without committing an entry of its own would hand out a read index below writes acknowledged
//! before the crash. Every other read is serializable: a restarted member that answered from the state it had
//! before it stopped would show less than was acknowledged before it came back. The outcomes go into the
//! history like any client's, each reader its own client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::recorder::{Recorder, now_ns};
use crate::sim_net::client_channels;
use crate::workload::{self, REGISTER_PREFIX};

/// How long a burst lasts after the restart.
pub const BURST: Duration = Duration::from_millis(1500);
/// Pause between one reader's reads, so a member that is not up yet is not dialled in a tight loop.
const PAUSE: Duration = Duration::from_millis(2);
/// How long a reader waits for a burst to begin before looking again.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// One read's bound: long enough for a read index round trip, short enough to try again in the burst.
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// Client numbers of the readers start here, clear of the workload's clients.
pub const FIRST_READER_ID: u32 = 100;

/// When the current burst ends, in simulated nanoseconds (0: none yet); the runner moves it on each heal.
pub type BurstUntil = Arc<AtomicU64>;

/// Runs one reader per member URL until `until_ns`.
pub async fn run(
    urls: Vec<String>,
    keys: u64,
    burst_until: BurstUntil,
    rec: Recorder,
    until_ns: u64,
) -> turmoil::Result {
    let readers = urls.into_iter().enumerate().map(|(i, url)| {
        let (burst_until, rec) = (burst_until.clone(), rec.clone());
        reader(FIRST_READER_ID + i as u32, url, keys, burst_until, rec, until_ns)
    });
    futures::future::join_all(readers).await;
    Ok(())
}

async fn reader(id: u32, url: String, keys: u64, burst_until: BurstUntil, rec: Recorder, until_ns: u64) {
    let mut k = 0;
    let mut serializable = false;
    while now_ns() < until_ns {
        let end = burst_until.load(Ordering::Acquire);
        if now_ns() >= end {
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        let Some(channel) = client_channels(std::slice::from_ref(&url), READ_TIMEOUT).pop() else { return };
        while now_ns() < end.min(until_ns) {
            let key = format!("{REGISTER_PREFIX}{k}").into_bytes();
            k = (k + 1) % keys;
            if serializable {
                workload::local_get(channel.clone(), &url, &rec, id, key).await;
            } else {
                workload::get(channel.clone(), &rec, id, key).await;
            }
            serializable = !serializable;
            tokio::time::sleep(PAUSE).await;
        }
    }
}
