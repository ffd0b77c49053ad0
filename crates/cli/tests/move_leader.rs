//! `etcdctl move-leader` against real `meridian server` processes: the leader hands over to the member named,
//! etcdctl reports it in etcd's words, and bad targets get etcd's errors.

mod common;

use common::cluster::{Cluster, LEADER_DEADLINE, voter};
use common::etcdctl;

#[test]
fn etcdctl_move_leader_moves_the_leader_and_reports_it_as_etcd_does() {
    let specs = [voter("v1", "dc-a"), voter("v2", "dc-b"), voter("v3", "dc-c")];
    let cluster = Cluster::start(&specs, "lan");
    let endpoints = cluster.live_endpoints().join(",");
    let id = |i: usize| cluster.status(i).expect("status").0;

    for round in 0..2 {
        let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
        let target = (leader + 1 + round) % specs.len();
        let (from, to) = (id(leader), id(target));
        let out = etcdctl(&endpoints, &["move-leader", &format!("{to:x}")], None);
        assert!(out.ok(), "move-leader failed: {out:?}");
        assert_eq!(out.stdout.trim(), format!("Leadership transferred from {from:x} to {to:x}"), "{out:?}");
        // The target leads as soon as MoveLeader answers; every member agrees within an election or so.
        assert_eq!(cluster.wait_agreed_leader(LEADER_DEADLINE), target, "round {round}: the target leads");
    }

    // A target that is no member: etcd's error, and the leader stays.
    let leader = cluster.wait_agreed_leader(LEADER_DEADLINE);
    let out = etcdctl(&endpoints, &["move-leader", "1234abcd"], None);
    assert!(!out.ok(), "{out:?}");
    assert!(out.stderr.contains("etcdserver: bad leader transferee"), "{out:?}");
    assert_eq!(cluster.wait_agreed_leader(LEADER_DEADLINE), leader);

    // Asked of a member that does not lead (one endpoint only, so etcdctl cannot find the leader): etcd's
    // answer is that it is not the leader.
    let follower = (leader + 1) % specs.len();
    let out = etcdctl(&cluster.nodes[follower].endpoint(), &["move-leader", &format!("{:x}", id(leader))], None);
    assert!(!out.ok(), "{out:?}");
    assert!(out.stderr.contains("no leader endpoint given"), "{out:?}");
}
