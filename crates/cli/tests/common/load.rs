//! A background write load for multi-process tests: writers that each write fresh keys
//! `load/TAG/WW/IIIIII` through one endpoint and move to the next endpoint on any error, as a client with
//! several endpoints does. Only writes that returned success are recorded, with the time of the
//! acknowledgement; [`verify_acks`] reads them back linearizably.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::GetOptions;

use super::cluster::Cluster;
use super::{block_on_fresh, connect, poll_until, try_connect};

/// Bound on any single client request of the load.
pub const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on waiting for the load to make progress.
pub const PROGRESS_DEADLINE: Duration = Duration::from_secs(60);
/// Upper bound on the writes of one writer, so a load can never run unbounded.
const MAX_WRITES_PER_WRITER: usize = 200_000;

/// Acknowledged writes of a background load, key → value (each key is written once).
pub type Acks = Arc<Mutex<BTreeMap<String, String>>>;

/// A running load; [`Load::finish`] stops it.
pub struct Load {
    acked: Acks,
    acked_at: Arc<Mutex<Vec<Instant>>>,
    failed: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `writers` writers as fast as the cluster answers.
    pub fn start(rt: &tokio::runtime::Runtime, endpoints: Vec<String>, writers: usize, tag: &str) -> Load {
        Load::start_paced(rt, endpoints, writers, tag, Duration::ZERO)
    }

    /// `writers` writers that each pause `pace` after every acknowledged write, to bound the load on a small
    /// machine.
    pub fn start_paced(
        rt: &tokio::runtime::Runtime,
        endpoints: Vec<String>,
        writers: usize,
        tag: &str,
        pace: Duration,
    ) -> Load {
        let acked: Acks = Arc::default();
        let acked_at = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..writers)
            .map(|w| {
                let (endpoints, acked, acked_at, failed, stop) =
                    (endpoints.clone(), acked.clone(), acked_at.clone(), failed.clone(), stop.clone());
                let tag = tag.to_owned();
                rt.spawn(async move {
                    let mut at = w % endpoints.len();
                    let mut client = None;
                    for i in 0..MAX_WRITES_PER_WRITER {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let (key, value) = (format!("load/{tag}/{w:02}/{i:06}"), format!("{tag}-{w}-{i}"));
                        if client.is_none() {
                            client = try_connect(&endpoints[at], OP_TIMEOUT).await.ok();
                        }
                        let ok = match client.as_mut() {
                            Some(c) => {
                                matches!(
                                    tokio::time::timeout(OP_TIMEOUT, c.put(key.clone(), value.clone(), None)).await,
                                    Ok(Ok(_))
                                )
                            }
                            None => false,
                        };
                        if ok {
                            acked.lock().unwrap().insert(key, value);
                            acked_at.lock().unwrap().push(Instant::now());
                            if !pace.is_zero() {
                                tokio::time::sleep(pace).await;
                            }
                        } else {
                            *failed.lock().unwrap() += 1;
                            client = None;
                            at = (at + 1) % endpoints.len();
                            // Retry backoff, so a writer facing a dead endpoint does not spin.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                })
            })
            .collect();
        Load { acked, acked_at, failed, stop, tasks }
    }

    /// How many writes were acknowledged so far.
    pub fn acks(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// The first acknowledgement at or after `t`, if any.
    pub fn first_ack_after(&self, t: Instant) -> Option<Instant> {
        self.acked_at.lock().unwrap().iter().copied().filter(|a| *a >= t).min()
    }

    /// Wait until `more` further writes are acknowledged; panics after [`PROGRESS_DEADLINE`].
    pub fn wait_more(&self, more: usize, cluster: &Cluster, what: &str) {
        let target = self.acks() + more;
        let ok = poll_until(PROGRESS_DEADLINE, Duration::from_millis(20), || self.acks() >= target);
        assert!(ok, "{what}: load stalled at {} acks (wanted {target})\n{}", self.acks(), cluster.log_tails(40));
    }

    /// Stop the writers and wait for them; returns the acknowledged writes and the number of failed attempts.
    pub fn finish(self, rt: &tokio::runtime::Runtime) -> (BTreeMap<String, String>, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            rt.block_on(t).expect("writer task");
        }
        let failed = *self.failed.lock().unwrap();
        (Arc::try_unwrap(self.acked).expect("writers done").into_inner().unwrap(), failed)
    }
}

/// Everything under `load/TAG/` read linearizably through `endpoint`: key → (value, mod revision), and the
/// store revision of the read.
pub fn read_load(endpoint: &str, tag: &str) -> (BTreeMap<String, (String, i64)>, i64) {
    let ep = endpoint.to_owned();
    let prefix = format!("load/{tag}/");
    block_on_fresh(move || {
        Box::pin(async move {
            let mut c = connect(&ep).await;
            let r = c.get(prefix, Some(GetOptions::new().with_prefix())).await.expect("read back the load");
            let found = r
                .kvs()
                .iter()
                .map(|kv| {
                    let key = kv.key_str().expect("utf-8 key").to_owned();
                    (key, (kv.value_str().expect("utf-8 value").to_owned(), kv.mod_revision()))
                })
                .collect();
            (found, r.header().map_or(0, |h| h.revision()))
        })
    })
}

/// Every acknowledged write is present with its value (linearizable read through `endpoint`); returns the
/// store revision of that read.
pub fn verify_acks(endpoint: &str, acked: &BTreeMap<String, String>, tag: &str) -> i64 {
    let (found, rev) = read_load(endpoint, tag);
    let lost: Vec<&String> =
        acked.iter().filter(|(k, v)| found.get(*k).map(|(fv, _)| fv) != Some(*v)).map(|(k, _)| k).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    // Unacknowledged writes may have landed (unknown outcome), but nothing that was never attempted.
    assert!(found.values().all(|(v, _)| v.starts_with(tag)), "foreign values under the load prefix");
    rev
}
