//! Faults, mixed by the seed: the nemesis schedule and how each fault is applied to and healed in
//! the simulated world.
//!
//! Network and crash faults come one window at a time (a window's fault is healed before the next
//! starts), so healing never undoes another fault by accident. Leader transfers and membership
//! changes ([`crate::membership`]) run from a separate nemesis client on their own schedules,
//! concurrently with the windows. Clock skew is fixed per member for the whole run.
//!
//! Windows that pick members (crashes, lossy and one-way links, bridges, rings) pick founders only:
//! their shapes are defined over the five voters, and a crash of the joiner would restart it
//! outside the nemesis's control. Faults that act on a whole datacenter (delays, isolation) take
//! every host in it, the joiner included.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use meridian_proto::etcdserverpb::MoveLeaderRequest;
use meridian_proto::etcdserverpb::StatusRequest;
use meridian_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use meridian_server::net::{Network, lazy_channel};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tonic::transport::Endpoint;
use turmoil::Sim;

use crate::auth_channel::{Credentials, SimChannel};
use crate::cluster::{SimCluster, base_latency};
use crate::recorder::now_ns;
use crate::rng::SimRng;
use crate::sim_disk::Fullness;
use crate::sim_net::{self, TurmoilNetwork};

/// The kinds of fault, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FaultKind {
    /// Extra latency between two datacenters.
    Delay,
    /// Randomly failing links between two members (lost messages).
    LinkLoss,
    /// One datacenter (members and its clients) cut off from the rest.
    IsolateDc,
    /// One member cannot send to another, but hears from it.
    OneWay,
    /// Two halves that only one member sees both of.
    Bridge,
    /// Each member sees only its two ring neighbours.
    MajorityRing,
    /// A member's machine crashes (silence: nothing answers at its address), losing unsynced writes, and
    /// restarts later.
    CrashRestart,
    /// A member's process is killed (its machine's kernel still refuses connections to its ports), losing
    /// unsynced writes, and restarts later.
    KillRestart,
    /// A follower's process is killed and restarted, and the leader's process is killed as soon as the restarted
    /// follower follows it again, usually before the leader has reopened its append stream to it.
    KillLeaderAfterRestart,
    /// The leader and two other voters (a majority) crash together and all restart at once.
    CrashLeaderMajority,
    /// The leader was asked (etcd's MoveLeader) to hand leadership to another member under load; it took effect
    /// when MoveLeader answered that the target leads.
    LeaderTransfer,
    /// A member's clock runs fast or slow for the whole run.
    ClockSkew,
    /// The joiner was added as a learner, promoted to voter, or removed (one per step that took effect).
    Membership,
    /// A member's disk falls below its free-space reserve (other tenants filled it): it must refuse writes,
    /// raise NOSPACE and hand leadership over, keep serving reads, and take writes again once space is back.
    DiskLow,
    /// A member's disk has no space left at all ([`crate::sim_disk::Fullness`]): as a full file system (no free
    /// space reported; writes that need new blocks fail with ENOSPC), or as a volume that fills without saying so
    /// (every write fails). A failed write stops its Raft node; it must keep serving reads, raise NOSPACE, and start
    /// again in place, losing nothing acknowledged, once space is back.
    DiskFull,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that widths in format strings apply.
        f.pad(&format!("{self:?}"))
    }
}

/// One fault as applied.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Latency between every host of `a` and every host of `b`.
    Delay {
        /// Hosts on one side.
        a: Vec<String>,
        /// Hosts on the other side.
        b: Vec<String>,
        /// One-way latency while the fault lasts.
        latency: Duration,
    },
    /// A failure rate on the link between two members.
    LinkLoss {
        /// One end.
        a: String,
        /// The other end.
        b: String,
    },
    /// Symmetric cuts.
    Partition {
        /// Which shape of partition.
        kind: FaultKind,
        /// Host pairs that cannot talk.
        pairs: Vec<(String, String)>,
    },
    /// `from` cannot reach `to`.
    OneWay {
        /// The sender that is cut.
        from: String,
        /// The receiver it cannot reach.
        to: String,
    },
    /// A member is down.
    Crash {
        /// The member.
        member: String,
        /// Only its process died: connections to it are refused rather than unanswered.
        killed: bool,
    },
    /// A follower killed and restarted, then the leader killed once the follower follows it (see
    /// [`FaultKind::KillLeaderAfterRestart`]).
    KillAfterRestart {
        /// Founders in the seed's order: the first that is not the leader is the follower.
        order: Vec<String>,
        /// How long the follower stays down.
        down: Duration,
        /// How far it got.
        stage: RestartStage,
    },
    /// A member's disk reports this little free space.
    DiskLow {
        /// The member.
        member: String,
        /// The free bytes it reports.
        free: u64,
    },
    /// A member's disk has no space left.
    DiskFull {
        /// The member.
        member: String,
        /// Whether the file system says so (else it reports room and refuses every write).
        seen: bool,
    },
    /// The leader and others with it, chosen when the window starts: the leader as the live members
    /// see it (else the first of `order`), then the next of `order` until `count` members are down.
    CrashWithLeader {
        /// Founders in the seed's order of preference for the companions.
        order: Vec<String>,
        /// How many go down.
        count: usize,
        /// Who went down, once applied.
        crashed: Vec<String>,
    },
}

/// The stages of a [`Fault::KillAfterRestart`].
#[derive(Clone, Debug, Default)]
pub enum RestartStage {
    /// Not applied, or there was no leader to wait for.
    #[default]
    NotStarted,
    /// The follower is down.
    FollowerDown {
        /// The follower.
        follower: String,
    },
    /// The follower is back; waiting for it to follow the leader.
    FollowerBack,
    /// The leader is down.
    LeaderDown {
        /// The leader.
        leader: String,
    },
}

impl Fault {
    /// Its kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Delay { .. } => FaultKind::Delay,
            Fault::LinkLoss { .. } => FaultKind::LinkLoss,
            Fault::Partition { kind, .. } => *kind,
            Fault::OneWay { .. } => FaultKind::OneWay,
            Fault::Crash { killed: false, .. } => FaultKind::CrashRestart,
            Fault::Crash { killed: true, .. } => FaultKind::KillRestart,
            Fault::KillAfterRestart { .. } => FaultKind::KillLeaderAfterRestart,
            Fault::CrashWithLeader { .. } => FaultKind::CrashLeaderMajority,
            Fault::DiskLow { .. } => FaultKind::DiskLow,
            Fault::DiskFull { .. } => FaultKind::DiskFull,
        }
    }

    /// Whether a fault that takes effect in stages ([`advance`]) got as far as it was meant to.
    pub fn completed(&self) -> bool {
        matches!(self, Fault::KillAfterRestart { stage: RestartStage::LeaderDown { .. }, .. })
    }
}

/// A fault active from `start` to `end` (simulated time since the start).
#[derive(Clone, Debug)]
pub struct Window {
    /// When it begins.
    pub start: Duration,
    /// When it is healed.
    pub end: Duration,
    /// What it is.
    pub fault: Fault,
}

/// Hosts with their datacenter (members, the joiner, clients and the nemesis).
pub type Hosts = Vec<(String, String)>;

fn pick<'a, T>(rng: &mut SimRng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

fn shuffled(rng: &mut SimRng, mut items: Vec<String>) -> Vec<String> {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
    items
}

fn cross(a: &[String], b: &[String]) -> Vec<(String, String)> {
    a.iter().flat_map(|x| b.iter().map(move |y| (x.clone(), y.clone()))).collect()
}

/// The shortest window of a [`Fault::KillAfterRestart`].
const KILL_AFTER_RESTART_LEN: Duration = Duration::from_millis(3000);

/// The windows of one run, between `from` and `to`.
pub fn plan(rng: &mut SimRng, cluster: &SimCluster, hosts: &Hosts, from: Duration, to: Duration) -> Vec<Window> {
    let members: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
    let dcs: Vec<String> = crate::cluster::DCS.iter().map(|d| (*d).to_owned()).collect();
    let mut windows = Vec::new();
    let mut t = from;
    while t < to {
        let mut len = Duration::from_millis(rng.between(800, 4000));
        let fault = match rng.below(13) {
            0 => {
                let a = pick(rng, &dcs).clone();
                let b = pick(rng, &dcs).clone();
                let of = |dc: &str| hosts.iter().filter(|(_, d)| d == dc).map(|(h, _)| h.clone()).collect::<Vec<_>>();
                Fault::Delay { a: of(&a), b: of(&b), latency: Duration::from_millis(rng.between(100, 600)) }
            }
            1 => {
                let s = shuffled(rng, members.clone());
                Fault::LinkLoss { a: s[0].clone(), b: s[1].clone() }
            }
            2 => {
                let dc = pick(rng, &dcs).clone();
                let (inside, outside): (Vec<_>, Vec<_>) = hosts.iter().partition(|(_, d)| *d == dc);
                let names = |v: Vec<&(String, String)>| v.into_iter().map(|(h, _)| h.clone()).collect::<Vec<_>>();
                Fault::Partition { kind: FaultKind::IsolateDc, pairs: cross(&names(inside), &names(outside)) }
            }
            3 => {
                let s = shuffled(rng, members.clone());
                Fault::OneWay { from: s[0].clone(), to: s[1].clone() }
            }
            4 => {
                // s[2] sees both {s0, s1} and {s3, s4}.
                let s = shuffled(rng, members.clone());
                Fault::Partition { kind: FaultKind::Bridge, pairs: cross(&s[0..2], &s[3..5]) }
            }
            5 => {
                // Ring order s0..s4: everyone is cut from the two members two steps away.
                let s = shuffled(rng, members.clone());
                let n = s.len();
                let pairs = (0..n).map(|i| (s[i].clone(), s[(i + 2) % n].clone())).collect();
                Fault::Partition { kind: FaultKind::MajorityRing, pairs }
            }
            6 => {
                let order = shuffled(rng, members.clone());
                Fault::CrashWithLeader { count: members.len() / 2 + 1, order, crashed: Vec::new() }
            }
            9 => Fault::Crash { member: pick(rng, &members).clone(), killed: true },
            // Only where there is room for the follower's restart, the kill of the leader and the failover.
            10 if t + KILL_AFTER_RESTART_LEN <= to => {
                len = len.max(KILL_AFTER_RESTART_LEN);
                let down = Duration::from_millis(rng.between(300, 800));
                Fault::KillAfterRestart { order: shuffled(rng, members.clone()), down, stage: RestartStage::NotStarted }
            }
            10 => Fault::Crash { member: pick(rng, &members).clone(), killed: true },
            // Below the default 64 MiB reserve.
            11 => Fault::DiskLow { member: pick(rng, &members).clone(), free: rng.between(0, 32 << 20) },
            12 => Fault::DiskFull { member: pick(rng, &members).clone(), seen: rng.below(2) == 0 },
            _ => Fault::Crash { member: pick(rng, &members).clone(), killed: false },
        };
        let end = (t + len).min(to);
        windows.push(Window { start: t, end, fault });
        t = end + Duration::from_millis(rng.between(300, 1500));
    }
    windows
}

/// How long a crash of the leader may wait, past its window's start, for the leader's log sync to be under way.
const CRASH_ALIGN_LIMIT: Duration = Duration::from_millis(300);

/// How long a fault aimed at the leader may wait, past its window's start, for a leader to aim at (the last
/// fault may have left none yet).
const LEADER_WAIT_LIMIT: Duration = Duration::from_secs(3);

/// Whether `fault`, due since `waited`, should be applied at simulated time `now`. Faults aimed at the leader
/// wait (at most [`LEADER_WAIT_LIMIT`]) for there to be one among the founders (they never crash the joiner); a crash of the leader then waits (until
/// [`CRASH_ALIGN_LIMIT`] has passed) for the leader's Raft log sync to be under way, the moment that costs it
/// entries its followers may already have acknowledged. Every other fault starts on time.
pub fn ready(cluster: &SimCluster, fault: &Fault, waited: Duration, now: Duration) -> bool {
    match fault {
        Fault::CrashWithLeader { order, .. } => match cluster.leader().filter(|l| order.contains(l)) {
            Some(l) => waited >= CRASH_ALIGN_LIMIT || cluster.member(&l).disk.log_sync_in_flight(now),
            None => waited >= LEADER_WAIT_LIMIT,
        },
        Fault::KillAfterRestart { order, .. } => {
            cluster.leader().is_some_and(|l| order.contains(&l)) || waited >= LEADER_WAIT_LIMIT
        }
        _ => true,
    }
}

/// Applies `fault` to the world, recording in it what it resolved when it began (who crashed with the
/// leader). Returns whether it took effect: it changed at least one link, crashed a member that was up, or
/// (for a crash of the leader) crashed a leader a majority followed.
pub fn apply(sim: &mut Sim<'_>, cluster: &SimCluster, fault: &mut Fault) -> bool {
    match fault {
        Fault::Delay { a, b, latency } => {
            let mut changed = false;
            for (x, y) in cross(a, b) {
                if x != y {
                    sim.set_link_latency(x.as_str(), y.as_str(), *latency);
                    changed = true;
                }
            }
            changed
        }
        Fault::LinkLoss { a, b } => {
            sim.set_link_fail_rate(a.as_str(), b.as_str(), 0.05);
            a != b
        }
        Fault::Partition { pairs, .. } => {
            for (x, y) in pairs.iter() {
                sim.partition(x.as_str(), y.as_str());
            }
            !pairs.is_empty()
        }
        Fault::OneWay { from, to } => {
            sim.partition_oneway(from.as_str(), to.as_str());
            from != to
        }
        Fault::Crash { member, killed } => {
            let was_up = cluster.registry.lock().contains_key(member.as_str());
            if *killed {
                sim_net::set_refusing(cluster.member(member).ip, true);
            }
            crash(sim, cluster, member);
            was_up
        }
        Fault::KillAfterRestart { order, stage, .. } => {
            let leader = cluster.leader().filter(|l| order.contains(l));
            let follower = leader.and_then(|l| order.iter().find(|m| **m != l).cloned());
            if let Some(follower) = follower {
                kill(sim, cluster, &follower);
                *stage = RestartStage::FollowerDown { follower };
            }
            // It takes effect only when the leader is killed (see `advance`).
            false
        }
        Fault::DiskLow { member, free } => {
            cluster.member(member).disk.set_free_bytes(Some(*free));
            cluster.registry.lock().contains_key(member.as_str())
        }
        Fault::DiskFull { member, seen } => {
            let fullness = if *seen { Fullness::Full } else { Fullness::FullUnseen };
            cluster.member(member).disk.set_fullness(fullness);
            cluster.registry.lock().contains_key(member.as_str())
        }
        Fault::CrashWithLeader { order, count, crashed } => {
            let leading = cluster.leader().filter(|l| order.contains(l));
            let leader = leading.clone().unwrap_or_else(|| order[0].clone());
            crashed.clear();
            crashed.push(leader.clone());
            crashed.extend(order.iter().filter(|m| **m != leader).take(*count - 1).cloned());
            for member in crashed.iter() {
                crash(sim, cluster, member);
            }
            leading.is_some()
        }
    }
}

/// Moves a fault that acts in stages on, `waited` after its window began; returns the leader it killed, if it
/// did so now.
pub fn advance(sim: &mut Sim<'_>, cluster: &SimCluster, fault: &mut Fault, waited: Duration) -> Option<String> {
    let Fault::KillAfterRestart { order, down, stage } = fault else { return None };
    match std::mem::take(stage) {
        RestartStage::FollowerDown { follower } if waited >= *down => {
            revive(sim, cluster, &follower);
            *stage = RestartStage::FollowerBack;
            None
        }
        RestartStage::FollowerBack => {
            // Every founder that runs names the leader: the restarted follower follows it again.
            let leader = cluster.leader().filter(|l| order.contains(l) && everyone_follows(cluster, l));
            match leader {
                Some(leader) => {
                    kill(sim, cluster, &leader);
                    *stage = RestartStage::LeaderDown { leader: leader.clone() };
                    Some(leader)
                }
                None => {
                    *stage = RestartStage::FollowerBack;
                    None
                }
            }
        }
        other => {
            *stage = other;
            None
        }
    }
}

fn everyone_follows(cluster: &SimCluster, leader: &str) -> bool {
    let id = cluster.member(leader).id;
    let nodes = cluster.registry.lock();
    cluster.members.iter().all(|m| nodes.get(&m.name).is_some_and(|node| node.status().leader == Some(id)))
}

/// Kills `member`'s process: its address refuses connections until [`revive`].
fn kill(sim: &mut Sim<'_>, cluster: &SimCluster, member: &str) {
    sim_net::set_refusing(cluster.member(member).ip, true);
    crash(sim, cluster, member);
}

/// Restarts a member [`kill`] stopped.
fn revive(sim: &mut Sim<'_>, cluster: &SimCluster, member: &str) {
    sim_net::set_refusing(cluster.member(member).ip, false);
    sim.bounce(member);
}

fn crash(sim: &mut Sim<'_>, cluster: &SimCluster, member: &str) {
    // The disk first: whatever the dying runtime still writes while it is torn down is lost.
    cluster.member(member).disk.crash();
    cluster.registry.lock().remove(member);
    sim.crash(member);
}

/// Heals `fault`.
pub fn heal(sim: &mut Sim<'_>, cluster: &SimCluster, hosts: &Hosts, fault: &Fault) {
    match fault {
        Fault::Delay { a, b, .. } => {
            let dc = |h: &String| hosts.iter().find(|(n, _)| n == h).map(|(_, d)| d.clone()).unwrap_or_default();
            for (x, y) in cross(a, b) {
                if x != y {
                    sim.set_link_latency(x.as_str(), y.as_str(), base_latency(&dc(&x), &dc(&y)));
                }
            }
        }
        Fault::LinkLoss { a, b } => sim.set_link_fail_rate(a.as_str(), b.as_str(), 0.0),
        Fault::Partition { pairs, .. } => {
            for (x, y) in pairs {
                sim.repair(x.as_str(), y.as_str());
            }
        }
        Fault::OneWay { from, to } => sim.repair_oneway(from.as_str(), to.as_str()),
        Fault::KillAfterRestart { stage, .. } => match stage {
            RestartStage::FollowerDown { follower: down } | RestartStage::LeaderDown { leader: down } => {
                revive(sim, cluster, down);
            }
            RestartStage::NotStarted | RestartStage::FollowerBack => {}
        },
        Fault::Crash { member, killed } => {
            if *killed {
                sim_net::set_refusing(cluster.member(member).ip, false);
            }
            sim.bounce(member.as_str())
        }
        Fault::DiskLow { member, .. } => cluster.member(member).disk.set_free_bytes(None),
        Fault::DiskFull { member, .. } => cluster.member(member).disk.set_fullness(Fullness::Room),
        // All at once, in one step: the restarted members race each other as they would after a power cut.
        Fault::CrashWithLeader { crashed, .. } => {
            for member in crashed {
                sim.bounce(member.as_str());
            }
        }
    }
}

/// The members [`heal`] of `fault` starts again.
pub fn restarted_at_heal(fault: &Fault) -> Vec<String> {
    match fault {
        Fault::Crash { member, .. } => vec![member.clone()],
        Fault::CrashWithLeader { crashed, .. } => crashed.clone(),
        Fault::KillAfterRestart { stage: RestartStage::FollowerDown { follower: down }, .. }
        | Fault::KillAfterRestart { stage: RestartStage::LeaderDown { leader: down }, .. } => vec![down.clone()],
        _ => Vec::new(),
    }
}

/// How often one kind of fault was scheduled, and how often it took effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Scheduled.
    pub scheduled: u64,
    /// Took effect.
    pub took_effect: u64,
}

impl Tally {
    /// Counts one scheduled fault.
    pub fn add(&mut self, took_effect: bool) {
        self.scheduled += 1;
        self.took_effect += u64::from(took_effect);
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: Tally) {
        self.scheduled += other.scheduled;
        self.took_effect += other.took_effect;
    }
}

/// Faults by kind.
pub type FaultCounts = BTreeMap<FaultKind, Tally>;

/// Pause between attempts of one scheduled transfer.
const TRANSFER_RETRY: Duration = Duration::from_millis(250);

/// The nemesis client: at each time in `at_ns`, asks the current leader to hand leadership to another
/// member (etcd's `MoveLeader`), again and again until one transfer completes or `give_up_ns` passes (a
/// transfer cannot complete while, say, a majority is down), and counts each scheduled transfer and whether
/// it took effect.
pub async fn leader_transfers(
    endpoints: Vec<(u64, String)>,
    at_ns: Vec<u64>,
    give_up_ns: u64,
    seed: u64,
    counts: Arc<parking_lot::Mutex<FaultCounts>>,
) -> turmoil::Result {
    let net: Arc<dyn Network> = Arc::new(TurmoilNetwork);
    let mut rng = SimRng::new(seed);
    // Fresh connections for every attempt: a simulated partition drops segments for good (there is no
    // retransmission), so a connection that lost one never answers again.
    let connect = || -> Vec<(u64, SimChannel)> {
        endpoints
            .iter()
            .map(|(id, url)| {
                let ep = Endpoint::from_shared(url.clone()).expect("valid URL").timeout(Duration::from_secs(2));
                (*id, SimChannel::new(lazy_channel(&net, ep), Credentials::root()))
            })
            .collect()
    };
    for at in at_ns {
        let now = now_ns();
        if at > now {
            tokio::time::sleep(Duration::from_nanos(at - now)).await;
        }
        let mut moved = false;
        while !moved && now_ns() < give_up_ns {
            moved = transfer_once(&connect(), &mut rng).await;
            if !moved {
                tokio::time::sleep(TRANSFER_RETRY).await;
            }
        }
        counts.lock().entry(FaultKind::LeaderTransfer).or_default().add(moved);
    }
    Ok(())
}

/// One MoveLeader from the current leader (found from any member that answers) to a random other member;
/// whether the target then led.
async fn transfer_once(channels: &[(u64, SimChannel)], rng: &mut SimRng) -> bool {
    let mut leader = None;
    for (_, ch) in channels {
        if let Ok(r) = MaintenanceClient::new(ch.clone()).status(StatusRequest {}).await {
            leader = Some(r.into_inner().leader);
            break;
        }
    }
    let Some(leader) = leader.filter(|l| *l != 0) else { return false };
    let Some((_, leader_ch)) = channels.iter().find(|(id, _)| *id == leader) else { return false };
    let others: Vec<u64> = channels.iter().map(|(id, _)| *id).filter(|id| *id != leader).collect();
    let target = *pick(rng, &others);
    MaintenanceClient::new(leader_ch.clone()).move_leader(MoveLeaderRequest { target_id: target }).await.is_ok()
}
