//! Planned leader transfers under load cost no client request.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::cluster::{Cluster, LEADER_DEADLINE, voter};
use common::etcdctl;

/// Writers through every member while etcdctl moves the leader three times: every write is acknowledged.
#[test]
fn planned_transfers_under_64_writers_fail_no_request() {
    const WRITERS: usize = 64;
    const MAX_WRITES_PER_WRITER: u64 = 100_000;
    let specs = [voter("v1", "dc-a"), voter("v2", "dc-b"), voter("v3", "dc-c")];
    let cluster = Cluster::start(&specs, "lan");
    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| n.endpoint()).collect();
    let all = endpoints.join(",");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let ep = endpoints[w % endpoints.len()].clone();
            let (stop, acked, failed, errors) = (stop.clone(), acked.clone(), failed.clone(), errors.clone());
            rt.spawn(async move {
                let mut c = common::connect(&ep).await;
                for n in 0..MAX_WRITES_PER_WRITER {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    match c.put(format!("t/{w}/{n}"), "v", None).await {
                        Ok(_) => acked.fetch_add(1, Ordering::Release),
                        Err(e) => {
                            errors.lock().expect("errors").push(format!("via {ep}: {e}"));
                            failed.fetch_add(1, Ordering::Release)
                        }
                    };
                }
            })
        })
        .collect();
    let id = |i: usize| cluster.status(i).expect("status").0;
    let progressed = |from: u64| {
        common::poll_until(LEADER_DEADLINE, Duration::from_millis(20), || acked.load(Ordering::Acquire) >= from + 500)
    };
    for round in 0..3 {
        assert!(progressed(acked.load(Ordering::Acquire)), "round {round}: writes stalled");
        let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
        let target = (leader + 1) % specs.len();
        let out = etcdctl(&all, &["move-leader", &format!("{:x}", id(target))], None);
        assert!(out.ok(), "move-leader failed: {out:?}");
    }
    assert!(progressed(acked.load(Ordering::Acquire)), "writes stalled after the last transfer");
    stop.store(true, Ordering::Release);
    for t in tasks {
        rt.block_on(t).expect("writer");
    }
    let (acked, failed) = (acked.load(Ordering::Acquire), failed.load(Ordering::Acquire));
    eprintln!("{acked} writes acknowledged, {failed} failed over three transfers");
    assert_eq!(failed, 0, "planned transfers failed requests: {:?}", &errors.lock().expect("errors")[..]);
}
