//! The leader-side lease timer. Lease state is replicated through the log, but *when* a lease expires is
//! decided only by the leader, from its own clock: it renews leases on keep-alive and proposes a revoke for
//! each lease that runs out, so every replica deletes the same keys at the same revision. Every member hears of
//! applied grants and revokes; only the leader's clock runs deadlines. The pure expiry
//! bookkeeping lives in `meridian_kv::LeaseClock`; this module feeds it the member's [`Clock`].

use std::time::Duration;

use meridian_kv::LeaseClock;
use meridian_types::LeaseId;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::clock::Clock;

/// Clock adapter around the pure lease clock.
pub struct Lessor {
    clock: Mutex<LeaseClock>,
    time: Clock,
    min_ttl: i64,
    /// Whether this member runs lease expiry; a watch, so callers can wait for it to start.
    leader: watch::Sender<bool>,
}

impl Lessor {
    /// A lessor that raises every TTL to at least `min_ttl` seconds, as etcd does.
    pub fn new(min_ttl: i64, time: Clock) -> Self {
        Lessor { clock: Mutex::new(LeaseClock::default()), time, min_ttl, leader: watch::Sender::new(false) }
    }

    fn now_ms(&self) -> u64 {
        self.time.now_ms()
    }

    /// The TTL actually granted for a requested one.
    pub fn effective_ttl(&self, requested: i64) -> i64 {
        requested.max(self.min_ttl)
    }

    /// Whether this member currently runs lease expiry.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Waits until this member runs lease expiry (at once if it already does). A new leader's clock starts only
    /// after its read barrier, so nothing else announces it.
    pub async fn wait_leader(&self) {
        // The sender lives in `self`, so the wait cannot fail for want of one.
        let _ = self.leader.subscribe().wait_for(|leader| *leader).await;
    }

    /// Called when this member becomes leader: every known lease gets its full TTL from now.
    pub fn promote(&self, leases: impl IntoIterator<Item = (LeaseId, i64)>) {
        let now = self.now_ms();
        self.clock.lock().promote(leases, now);
        self.leader.send_replace(true);
    }

    /// Called when this member stops being leader.
    pub fn demote(&self) {
        self.clock.lock().demote();
        self.leader.send_replace(false);
    }

    /// Records a lease granted through the log.
    pub fn granted(&self, id: LeaseId, ttl: i64) {
        let now = self.now_ms();
        self.clock.lock().granted(id, ttl, now);
    }

    /// Restarts a lease's TTL. Returns the TTL, or `None` for an unknown lease.
    pub fn renew(&self, id: LeaseId) -> Option<i64> {
        let now = self.now_ms();
        self.clock.lock().renew(id, now)
    }

    /// Forgets a revoked lease.
    pub fn revoked(&self, id: LeaseId) {
        self.clock.lock().revoked(id);
    }

    /// Seconds left on a lease, as the leader sees it; `None` on a member that does not lead (it knows the
    /// lease's TTL, but not its deadline), so the caller falls back to the last checkpoint.
    pub fn remaining(&self, id: LeaseId) -> Option<i64> {
        let now = self.now_ms();
        let clock = self.clock.lock();
        if clock.is_primary() { clock.remaining_secs(id, now) } else { None }
    }

    /// Leases whose time is up.
    pub fn expired(&self) -> Vec<LeaseId> {
        let now = self.now_ms();
        self.clock.lock().expired(now)
    }

    /// How often the expiry loop looks for expired leases.
    pub const TICK: Duration = Duration::from_millis(250);
}
