//! Records who leads a test cluster over time, by polling every member's admin `/status` from a background
//! thread. Each poll takes the leader reported with the highest term (a partitioned old leader still
//! believes in its stale term, and a candidate knows no leader yet, so neither hides the real one) and a
//! [`Change`] is recorded whenever that leader differs from the previous one. Tests assert on the sequence:
//! a flap shows up as an extra change.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use meridian_server::admin::StatusReport;

use super::cluster::Cluster;
use super::http::http;

/// How often the members are polled: well below a heartbeat, so no leadership is missed.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// A leader observed from some instant on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// When the poll first saw this leader.
    pub at: Instant,
    /// The leader's member name.
    pub name: String,
    /// The leader's datacenter.
    pub dc: String,
    /// The term it was first seen in.
    pub term: u64,
}

/// A running recorder; stops when dropped.
pub struct LeaderTrace {
    changes: Arc<Mutex<Vec<Change>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn poll(addrs: &[SocketAddr]) -> Option<(String, String, u64)> {
    addrs
        .iter()
        .filter_map(|a| {
            let (code, body) = http(*a, "GET", "/status", "").ok()?;
            if code != 200 {
                return None;
            }
            let r: StatusReport = serde_json::from_str(&body).ok()?;
            let l = r.leader?;
            (!l.name.is_empty()).then_some((l.name, l.dc, r.term))
        })
        .max_by_key(|(_, _, term)| *term)
}

impl LeaderTrace {
    /// Starts polling every member of `cluster` (stopped members simply do not answer).
    pub fn start(cluster: &Cluster) -> LeaderTrace {
        let addrs: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.admin_addr()).collect();
        let changes: Arc<Mutex<Vec<Change>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (changes, stop) = (changes.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some((name, dc, term)) = poll(&addrs) {
                        let mut c = changes.lock().unwrap();
                        if c.last().is_none_or(|l| l.name != name) {
                            c.push(Change { at: Instant::now(), name, dc, term });
                        }
                    }
                    std::thread::sleep(POLL_EVERY);
                }
            })
        };
        LeaderTrace { changes, stop, thread: Some(thread) }
    }

    /// Every change so far, oldest first.
    pub fn changes(&self) -> Vec<Change> {
        self.changes.lock().unwrap().clone()
    }

    /// The leader seen most recently.
    pub fn current(&self) -> Option<Change> {
        self.changes.lock().unwrap().last().cloned()
    }

    /// Waits until the current leader satisfies `pred`; returns it, or `None` after `deadline`.
    pub fn wait_for(&self, deadline: Duration, pred: impl Fn(&Change) -> bool) -> Option<Change> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(c) = self.current().filter(|c| pred(c)) {
                return Some(c);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Waits until the leader has not changed for `quiet`; returns it, or `None` after `deadline`.
    pub fn wait_stable(&self, quiet: Duration, deadline: Duration) -> Option<Change> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(c) = self.current().filter(|c| c.at.elapsed() >= quiet) {
                return Some(c);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for LeaderTrace {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}
