//! Keeping a member up through a full disk: runs one member life after another in the same process. redb refuses
//! every later operation on a file after a write to it failed, so when the file system fills up between two checks
//! of the space watcher (`space_watch`) and a write fails with ENOSPC, the member's Raft node stops. The member
//! then stays up as it is: its listeners answer, reads are served (`stopped_member`), it raises NOSPACE through
//! another member so the cluster refuses writes that add data. Once the disk has room again it is stopped and started again on the same files (nothing
//! acknowledged is lost: the Raft log is the durable record), without an operator. `meridian server` and the
//! simulation's hosts both run their member through here, so the simulation's full-disk fault exercises this path.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use meridian_consensus::disk::says_in_use;
use meridian_consensus::{Disk, OsDisk, RaftNode, says_disk_full};

use crate::config::ServerConfig;
use crate::error::Result;
use crate::error_chain::chain;
use crate::run::start_in;
use crate::running::RunningServer;
use crate::server_env::ServerEnv;
use crate::stopped_member;

/// Free space a member waits for before it starts again after its disk filled up, when its reserve is smaller.
pub const RESTART_SPACE_BYTES: u64 = 16 << 20;

/// How long a start after a stop may keep finding the files still held, and how often it tries again meanwhile.
const IN_USE_WAIT: Duration = Duration::from_secs(30);
const IN_USE_RETRY: Duration = Duration::from_millis(100);

/// How often a member whose Raft node stopped on a full disk looks at the free space again.
const SPACE_POLL: Duration = Duration::from_secs(1);

/// Runs the member `config` describes until `shutdown` completes, starting it again in place each time its Raft node
/// stopped because the disk filled up, once there is room (see the module docs). `env` gives each life its
/// environment; `each_life` is called with every started life and its result is dropped when that life ends (the
/// caller's per-life tasks and registrations). A first start that fails is returned as it is; a later one that
/// finds the disk full again waits for room and tries again.
pub async fn run<G>(
    config: ServerConfig,
    mut env: impl FnMut() -> ServerEnv,
    mut each_life: impl FnMut(&RunningServer) -> Result<G>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    let reserve = config.disk_reserve_bytes.max(RESTART_SPACE_BYTES);
    let mut restarting = false;
    let mut in_use_since: Option<Instant> = None;
    loop {
        let life_env = env();
        let disk = life_env.disk.clone();
        let server = match start_in(config.clone(), life_env).await {
            Ok(server) => server,
            Err(e) if restarting && says_disk_full(&chain(&e)) => {
                let free = || free_bytes(disk.as_deref(), &config);
                tracing::warn!(error = %chain(&e), "the disk is still full; waiting for {reserve} free bytes");
                // At least one poll: a file system that reports room yet refuses writes must not be retried in a
                // tight loop.
                tokio::time::sleep(SPACE_POLL).await;
                wait_for_space(free, reserve).await;
                continue;
            }
            // The previous life's last tasks may still hold its files for a moment after it stopped.
            Err(e)
                if restarting
                    && says_in_use(&chain(&e))
                    && in_use_since.get_or_insert_with(Instant::now).elapsed() < IN_USE_WAIT =>
            {
                tracing::info!(error = %chain(&e), "the previous life still holds its files; trying again");
                tokio::time::sleep(IN_USE_RETRY).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        in_use_since = None;
        let guard = match each_life(&server) {
            Ok(guard) => guard,
            Err(e) => {
                let _ = server.stop().await;
                return Err(e);
            }
        };
        let member = server.member.clone();
        let full_then_room = async {
            let why = stopped_by_full_disk(member.raft()).await;
            tracing::error!(%why, "the disk filled up and the Raft node stopped; serving reads, starting again once {reserve} bytes are free");
            // Raising the alarm is given up once there is room: the next life clears it anyway.
            tokio::select! {
                () = stopped_member::raise_nospace(&member) => wait_for_space(|| member.raft().free_disk_bytes(), reserve).await,
                () = wait_for_space(|| member.raft().free_disk_bytes(), reserve) => {}
            }
        };
        tokio::select! {
            () = &mut shutdown => {
                drop(guard);
                return server.stop().await;
            }
            () = full_then_room => {
                drop(guard);
                server.stop().await?;
                tracing::info!("space is back; starting the member again on its files");
                restarting = true;
            }
        }
    }
}

/// Completes only if the Raft node stops because the disk is full (other fatal errors leave the member up, as
/// they did, answering errors).
async fn stopped_by_full_disk(raft: &RaftNode) -> String {
    let why = raft.stopped().await;
    if says_disk_full(&why) {
        return why;
    }
    tracing::error!(%why, "the Raft node stopped");
    std::future::pending().await
}

/// Waits until `free` reports at least `needed` bytes (or cannot tell), looking every [`SPACE_POLL`].
async fn wait_for_space(free: impl Fn() -> Option<u64>, needed: u64) {
    while free().is_some_and(|f| f < needed) {
        tokio::time::sleep(SPACE_POLL).await;
    }
}

/// Free bytes on the member's disk: the one its environment gives, else the file system of its data dir.
fn free_bytes(disk: Option<&dyn Disk>, config: &ServerConfig) -> Option<u64> {
    match disk {
        Some(disk) => disk.free_bytes(),
        None => OsDisk::open(&config.data_dir).ok().and_then(|d| d.free_bytes()),
    }
}
