//! kill -9 of the leader, with real `meridian server` processes (three voters, LAN preset: 100 ms heartbeat,
//! 1 s election timeout). The survivors see the leader's process gone (its append streams end and its peer
//! address refuses connections), so a successor is elected well inside one election timeout instead of after
//! it; and a write sent to a survivor at the moment of the kill is held until the successor leads and then
//! acknowledged. Only a write the survivor had already passed to the dying leader can come back as etcd's
//! "request timed out" (it may or may not have been applied: the leader may have died after appending it), and
//! then only once per kill; the client's retry is acknowledged. Without the fast path no follower may even
//! campaign before a full election timeout of silence, so the bound below cannot be met by the timer alone.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, LEADER_DEADLINE, voter};
use common::try_connect;
use etcd_client::{Client, Error};

/// The LAN preset's election timeout.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(1);
const ROUNDS: usize = 3;

#[test]
fn a_killed_leader_is_replaced_within_an_election_timeout_and_the_write_sent_meanwhile_succeeds() {
    let specs = [voter("v1", "dc-a"), voter("v2", "dc-b"), voter("v3", "dc-c")];
    let mut cluster = Cluster::start(&specs, "lan");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut took = Vec::new();
    for round in 0..ROUNDS {
        let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
        let survivor = cluster.nodes[(leader + 1) % specs.len()].endpoint();
        let value = format!("round-{round}");
        let elapsed = rt.block_on(async {
            // Connected (and used once) before the kill, so the time measured is the server's.
            let mut client = try_connect(&survivor, Duration::from_secs(20)).await.expect("connect");
            client.put("warm", "up", None).await.expect("put before the kill");
            let start = Instant::now();
            cluster.kill9(leader);
            let unknown = put_retrying_unknown(&mut client, value.as_str()).await;
            assert!(unknown <= 1, "only the write in flight at the kill may have an unknown outcome: {unknown}");
            start.elapsed()
        });
        eprintln!("round {round}: write acknowledged {elapsed:?} after kill -9 of the leader");
        took.push(elapsed);
        cluster.spawn(leader);
    }
    assert!(
        took.iter().all(|t| *t < ELECTION_TIMEOUT),
        "every failover must finish inside one election timeout ({ELECTION_TIMEOUT:?}): {took:?}\n{}",
        cluster.log_tails(120)
    );

    // The last write is there, on a member that was down for part of the run too.
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let reader = cluster.nodes[(leader + 2) % specs.len()].endpoint();
    let value = rt.block_on(async {
        let mut client = try_connect(&reader, Duration::from_secs(20)).await.expect("connect");
        let resp = client.get("after-kill", None).await.expect("linearizable get");
        resp.kvs().first().map(|kv| kv.value_str().unwrap_or_default().to_owned())
    });
    assert_eq!(value.as_deref(), Some(format!("round-{}", ROUNDS - 1).as_str()));
}

/// Puts `value` at `after-kill`, sending it again after etcd's "request timed out" (outcome unknown), as a client
/// would; any other error fails the test. Returns how many attempts had an unknown outcome.
async fn put_retrying_unknown(client: &mut Client, value: &str) -> usize {
    let mut unknown = 0;
    loop {
        match client.put("after-kill", value, None).await {
            Ok(_) => return unknown,
            Err(Error::GRpcStatus(s)) if s.message() == "etcdserver: request timed out" && unknown < 3 => unknown += 1,
            Err(e) => panic!("the write held through the election failed: {e}"),
        }
    }
}
