//! Discovery clients (issue 26's simulation): they register instances of two services in every datacenter, each
//! with one TTL check, report pass, warn and fail on those checks at random, sometimes deregister and register
//! again, and ask members for the ranked, nearest-healthy answer (passing only, or with warning too).
//!
//! There is no discovery HTTP API to speak to yet, so a client talks to a member's **agent**: a task on the
//! member's own host ([`serve_agent`], started next to the server by `cluster`) that takes calls over an
//! in-memory channel and runs them on the member's `Discovery`, as a service would talk to its local Consul agent.
//! The work happens on the member's runtime, so a write the member forwards to the leader leaves from the
//! member's address and meets the faults between members; a crashed member's agent is gone with it (the call
//! fails at once, or stays unanswered if it was under way). A query reads the member's catalog and computes
//! `meridian_registry::rank` for the member's own locality, with the member's round-trip times and verdicts;
//! the answer is recorded with every one of those inputs, so the checker can rank again from the committed
//! registry at the catalog's index.
//!
//! Every choice comes from the client's seeded generator and every wait is tokio time, so a seed replays.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_registry::check::TtlCheck;
use meridian_registry::{
    CheckDef, CheckId, CheckKind, CheckRef, Instance, InstanceId, InstanceRef, NodeName, Outcome, Query, Registration,
    ServiceName, ServicePolicy, Status, Weights, rank,
};
use meridian_server::discovery::answer::{candidates, own_locality, surroundings};
use meridian_server::discovery::{Discovery, DiscoveryError};
use meridian_types::{DcName, ZoneName};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::discovery_record::{DiscoveryAnswer, RegistryCall, RegistryWrite, WriteOutcome};
use crate::recorder::{Recorder, now_ns};
use crate::rng::SimRng;

/// The services registered.
pub const SERVICES: [&str; 2] = ["web", "api"];
/// Client ids of the discovery clients start here.
pub const FIRST_DISCOVERY_CLIENT_ID: u32 = 500;
/// How many discovery clients run.
pub const CLIENTS: usize = 2;
/// The id of every instance's one check.
const CHECK: &str = "ttl";
/// The TTL of that check: far beyond a run, so only reports change it (there is no check runner yet).
const TTL: Duration = Duration::from_secs(3600);
/// How long a client waits for an agent's answer before calling the outcome unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A call to a member's agent, with where to send the answer.
pub enum AgentCall {
    /// Register an instance.
    Register(Registration, oneshot::Sender<Result<i64, DiscoveryError>>),
    /// Deregister an instance.
    Deregister(InstanceRef, oneshot::Sender<Result<(), DiscoveryError>>),
    /// Report a TTL check's outcome with a note.
    Report(CheckRef, Outcome, String, oneshot::Sender<Result<(), DiscoveryError>>),
    /// Rank a service's instances for the member's locality.
    Query(Ask, oneshot::Sender<Answered>),
}

/// A query's parameters.
#[derive(Clone, Debug)]
pub struct Ask {
    /// The service.
    pub service: ServiceName,
    /// Count warning instances as healthy.
    pub include_warning: bool,
    /// The failover threshold.
    pub threshold: usize,
    /// The shuffle seed.
    pub seed: Option<u64>,
}

/// What the agent computed for a query (the client adds who asked and when).
#[derive(Clone, Debug)]
pub struct Answered {
    dc: String,
    zone: Option<String>,
    rtt_ms: Vec<(String, u64)>,
    down: Vec<String>,
    index: i64,
    instances: Vec<(InstanceRef, Status)>,
}

/// Every member's agent, by member name; a restarted member puts in its new one.
pub type Agents = Arc<Mutex<BTreeMap<String, mpsc::UnboundedSender<AgentCall>>>>;

/// Serves agent calls on the member's runtime until the member stops (each call in a task of its own).
pub async fn serve_agent(discovery: Arc<Discovery>, mut calls: mpsc::UnboundedReceiver<AgentCall>) {
    while let Some(call) = calls.recv().await {
        let discovery = discovery.clone();
        tokio::spawn(async move {
            match call {
                AgentCall::Register(reg, tx) => {
                    let _ = tx.send(discovery.register(&reg).await);
                }
                AgentCall::Deregister(r, tx) => {
                    let _ = tx.send(discovery.deregister(&r).await);
                }
                AgentCall::Report(check, outcome, output, tx) => {
                    let _ = tx.send(discovery.report_ttl(&check, outcome, output).await);
                }
                AgentCall::Query(ask, tx) => {
                    let _ = tx.send(answer(&discovery, &ask));
                }
            }
        });
    }
}

/// Ranks `ask.service` on this member: its catalog, its locality, its RTTs and verdicts.
fn answer(discovery: &Discovery, ask: &Ask) -> Answered {
    let member = discovery.member();
    let from = own_locality(member);
    let around = surroundings(member);
    let catalog = discovery.live().read();
    let found = candidates(&catalog, &ask.service);
    let query = Query {
        from: &from,
        rtt_ms: &around.rtt_ms,
        down: &around.excluded,
        policy: ServicePolicy { failover_threshold: ask.threshold },
        include_warning: ask.include_warning,
        tags: &[],
        seed: ask.seed,
    };
    let ranked = rank(&found, &query);
    Answered {
        dc: from.dc.0.clone(),
        zone: from.zone.as_ref().map(|z| z.0.clone()),
        rtt_ms: around.rtt_ms.iter().map(|(dc, ms)| (dc.0.clone(), *ms)).collect(),
        down: around.excluded.iter().map(|dc| dc.0.clone()).collect(),
        index: catalog.index(),
        instances: ranked.answer().iter().map(|e| (e.instance.reference(), e.health)).collect(),
    }
}

/// Where an instance runs: a founder's node, datacenter and zone.
#[derive(Clone, Debug)]
pub struct Site {
    /// The member's name (the instance's node).
    pub node: String,
    /// Its datacenter.
    pub dc: String,
    /// Its zone.
    pub zone: String,
}

/// What one discovery client does.
#[derive(Clone, Debug)]
pub struct DiscoveryPlan {
    /// Client number.
    pub id: u32,
    /// The instances this client owns (no other client writes them).
    pub instances: Vec<Instance>,
    /// The members whose agents it may ask.
    pub members: Vec<String>,
    /// Seed of its choices.
    pub seed: u64,
    /// Stop at this simulated time (ns).
    pub until_ns: u64,
}

/// Every instance of the run, one per service per site, dealt out to [`CLIENTS`] clients in turn.
pub fn instances(sites: &[Site]) -> Vec<Vec<Instance>> {
    let mut dealt = vec![Vec::new(); CLIENTS];
    let mut n = 0usize;
    for (i, site) in sites.iter().enumerate() {
        for service in SERVICES {
            let instance = Instance {
                service: ServiceName::new(service).expect("a valid service name"),
                id: InstanceId::new(format!("{service}-{}", site.node)).expect("a valid id"),
                node: NodeName::new(site.node.clone()).expect("a valid node name"),
                node_address: String::new(),
                address: format!("10.26.{}.{}", i + 1, n % 250 + 1),
                port: 8080,
                tags: Vec::new(),
                meta: BTreeMap::new(),
                dc: DcName(site.dc.clone()),
                zone: Some(ZoneName(site.zone.clone())),
                weights: Weights::default(),
                lease: None,
            };
            dealt[n % CLIENTS].push(instance);
            n += 1;
        }
    }
    dealt
}

pub(crate) fn registration(instance: &Instance, initial: Status) -> Registration {
    Registration {
        instance: instance.clone(),
        checks: vec![CheckDef {
            id: CheckId::new(CHECK).expect("a valid check id"),
            name: format!("TTL of {}", instance.id),
            notes: String::new(),
            kind: CheckKind::Ttl(TtlCheck { ttl: TTL }),
            initial,
            thresholds: Default::default(),
            deregister_critical_after: None,
        }],
    }
}

/// Runs one discovery client until its plan's end time: a loop of writes and, beside it, a loop of queries.
pub async fn run(plan: DiscoveryPlan, agents: Agents, rec: Recorder) -> turmoil::Result {
    let mut rng = SimRng::new(plan.seed);
    let mut asking = SimRng::new(rng.next_u64());
    let client = Client { id: plan.id, agents, rec, reports: AtomicU64::new(0) };
    // Everything registered first, some starting critical (Consul's default) and some passing.
    for instance in &plan.instances {
        let member = pick(&mut rng, &plan.members);
        let initial = if rng.chance(0.5) { Status::Critical } else { Status::Passing };
        client.register(&member, instance, initial).await;
    }
    let writes = async {
        while now_ns() < plan.until_ns {
            tokio::time::sleep(Duration::from_millis(rng.between(20, 90))).await;
            let member = pick(&mut rng, &plan.members);
            let instance = &plan.instances[rng.below(plan.instances.len() as u64) as usize];
            match rng.below(100) {
                0..=79 => {
                    let outcome = match rng.below(10) {
                        0..=4 => Outcome::Pass,
                        5..=8 => Outcome::Fail,
                        _ => Outcome::Warn,
                    };
                    client.report(&member, instance, outcome).await;
                }
                80..=91 => {
                    let initial = if rng.chance(0.5) { Status::Critical } else { Status::Passing };
                    client.register(&member, instance, initial).await;
                }
                _ => client.deregister(&member, instance).await,
            }
        }
    };
    let queries = async {
        while now_ns() < plan.until_ns {
            tokio::time::sleep(Duration::from_millis(asking.between(10, 50))).await;
            let member = pick(&mut asking, &plan.members);
            let ask = Ask {
                service: ServiceName::new(SERVICES[asking.below(SERVICES.len() as u64) as usize])
                    .expect("a valid service name"),
                include_warning: asking.chance(0.5),
                threshold: asking.between(1, 3) as usize,
                seed: asking.chance(0.3).then(|| asking.next_u64()),
            };
            client.query(&member, ask).await;
        }
    };
    tokio::join!(writes, queries);
    Ok(())
}

fn pick(rng: &mut SimRng, members: &[String]) -> String {
    members[rng.below(members.len() as u64) as usize].clone()
}

struct Client {
    id: u32,
    agents: Agents,
    rec: Recorder,
    reports: AtomicU64,
}

/// What became of a call to an agent.
enum Reply<T> {
    Answer(T),
    /// The agent was not there: the call was never taken.
    NotSent,
    /// The agent took it and never answered (it died, or the answer came too late).
    Lost,
}

impl Client {
    async fn call<T>(&self, member: &str, make: impl FnOnce(oneshot::Sender<T>) -> AgentCall) -> Reply<T> {
        let (tx, rx) = oneshot::channel();
        let sent = self.agents.lock().get(member).is_some_and(|agent| agent.send(make(tx)).is_ok());
        if !sent {
            return Reply::NotSent;
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(answer)) => Reply::Answer(answer),
            _ => Reply::Lost,
        }
    }

    async fn write<T>(
        &self,
        member: &str,
        call: RegistryCall,
        make: impl FnOnce(oneshot::Sender<Result<T, DiscoveryError>>) -> AgentCall,
        revision: impl FnOnce(&T) -> Option<i64>,
    ) {
        let index = self.rec.invoke_registry(RegistryWrite {
            id: 0,
            client: self.id,
            member: member.to_owned(),
            invoke: 0,
            complete: None,
            call,
            outcome: WriteOutcome::Unknown,
        });
        let outcome = match self.call(member, make).await {
            Reply::Answer(Ok(t)) => WriteOutcome::Ok { revision: revision(&t) },
            Reply::Answer(Err(DiscoveryError::Store(_))) | Reply::Lost => WriteOutcome::Unknown,
            Reply::Answer(Err(e)) => WriteOutcome::Failed { reason: e.to_string() },
            Reply::NotSent => WriteOutcome::Failed { reason: "the member's agent is down".to_owned() },
        };
        self.rec.complete_registry(index, outcome);
    }

    async fn register(&self, member: &str, instance: &Instance, initial: Status) {
        let reg = registration(instance, initial);
        let call = RegistryCall::Register { instance: instance.reference(), initial };
        self.write(member, call, |tx| AgentCall::Register(reg, tx), |rev| Some(*rev)).await;
    }

    async fn deregister(&self, member: &str, instance: &Instance) {
        let r = instance.reference();
        let call = RegistryCall::Deregister { instance: r.clone() };
        self.write(member, call, |tx| AgentCall::Deregister(r, tx), |()| None).await;
    }

    async fn report(&self, member: &str, instance: &Instance, outcome: Outcome) {
        let n = self.reports.fetch_add(1, Ordering::Relaxed) + 1;
        // Unique in the run, so the record it writes can be told from every other.
        let output = format!("c{}-r{n}", self.id);
        let status = match outcome {
            Outcome::Pass => Status::Passing,
            Outcome::Warn => Status::Warning,
            Outcome::Fail => Status::Critical,
        };
        let check = CheckRef { instance: instance.reference(), check: CheckId::new(CHECK).expect("a valid check id") };
        let call = RegistryCall::Report { check: check.clone(), status, output: output.clone() };
        self.write(member, call, |tx| AgentCall::Report(check, outcome, output, tx), |()| None).await;
    }

    async fn query(&self, member: &str, ask: Ask) {
        let (service, include_warning, threshold, seed) =
            (ask.service.to_string(), ask.include_warning, ask.threshold, ask.seed);
        if let Reply::Answer(a) = self.call(member, |tx| AgentCall::Query(ask, tx)).await {
            self.rec.with_discovery(|d| {
                d.answers.push(DiscoveryAnswer {
                    client: self.id,
                    member: member.to_owned(),
                    at: now_ns(),
                    service,
                    include_warning,
                    threshold,
                    seed,
                    dc: a.dc,
                    zone: a.zone,
                    rtt_ms: a.rtt_ms,
                    down: a.down,
                    index: a.index,
                    instances: a.instances,
                })
            });
        }
    }
}
