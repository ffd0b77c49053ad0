//! `meridian playground`: the README's main command. It starts the canonical 3-DC topology (or `--topology`) as
//! separate `meridian server` processes, each on its own loopback address with etcd's ports, the emulated WAN
//! on and fault injection enabled, prints the etcdctl endpoints, and shows a live status view from every
//! member's admin `/status` until Ctrl-C or SIGTERM. Then it kills every process it started and removes their
//! temporary data. `--once` waits for an agreed leader, prints the table once and stops (used by tests).

mod demo;
mod layout;
mod procs;
mod secure;
mod view;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use meridian_types::topology::Topology;
use tokio::signal::unix::{SignalKind, signal};

use procs::Fleet;

use crate::admin_http;
use crate::tls_client::{self, ClientTlsFiles};
use view::Row;

/// The canonical topology: 3 DCs with voters 2+2+1 plus a far learner, and the WAN matrix.
pub const CANONICAL_TOPOLOGY: &str = include_str!("../../../../config/topology.example.toml");
/// How often the status view is redrawn.
const REFRESH: Duration = Duration::from_millis(500);
/// How long one `/status` request may take.
const STATUS_TIMEOUT: Duration = Duration::from_millis(400);

/// Flags of `meridian playground`.
#[derive(Args, Debug)]
pub struct PlaygroundArgs {
    /// Topology file to run (default: the canonical 3-DC example, config/topology.example.toml).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Loopback address of the first member; member i gets this address + i, with ports 2379/2380/2381.
    #[arg(long, default_value = "127.0.0.10")]
    base_ip: Ipv4Addr,
    /// Do not emulate WAN round-trip times between datacenters.
    #[arg(long)]
    no_wan: bool,
    /// Start, wait until every member agrees on a leader, print the status once, stop everything and exit.
    #[arg(long)]
    once: bool,
    /// With --once: how long to wait for the leader, in seconds.
    #[arg(long, default_value_t = 60)]
    leader_timeout_secs: u64,
    /// CA of the members' certificates, to poll `https://` admin URLs of the topology.
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// TLS on every link (certificates made for the run), client certificates required, the admin API behind a
    /// token, and auth on with a root user; prints the etcdctl flags to use.
    #[arg(long, conflicts_with = "cacert")]
    secure: bool,
}

/// A member's place in the playground.
struct Placed {
    name: String,
    dc: String,
    client_url: String,
    admin: SocketAddr,
    /// The admin URL is `https://`.
    admin_https: bool,
    /// Member id (etcd's, hex in etcdctl's output), derived from the peer URL.
    id: u64,
    voter: bool,
}

/// Runs the playground until a signal (or, with `--once`, until a leader is agreed).
pub fn run(args: PlaygroundArgs) -> anyhow::Result<()> {
    let text = match &args.topology {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => CANONICAL_TOPOLOGY.to_owned(),
    };
    let topology = Topology::from_toml(&text)?;
    let (topology, warnings) =
        layout::plan(topology, args.base_ip, args.no_wan, args.secure).map_err(|e| anyhow!(e))?;
    for w in warnings {
        println!("note: {w}");
    }
    let placed = placements(&topology)?;

    // Declared before the fleet so that on any early return the processes are killed before their data goes.
    let dir = tempfile::Builder::new().prefix("meridian-playground-").tempdir().context("creating a temp dir")?;
    let topology_file = dir.path().join("topology.toml");
    std::fs::write(&topology_file, toml::to_string(&topology)?).context("writing the topology")?;
    let secure = if args.secure { Some(secure::Secure::prepare(&topology, dir.path())?) } else { None };
    let exe = std::env::current_exe().context("locating the meridian binary")?;
    let mut fleet = Fleet::default();
    for m in &topology.members {
        let mut cmd = Command::new(&exe);
        cmd.arg("server")
            .arg("--topology")
            .arg(&topology_file)
            .arg("--name")
            .arg(&m.name.0)
            .arg("--data-dir")
            .arg(dir.path().join(&m.name.0))
            .arg("--listen-client")
            .arg(&m.client_url)
            .arg("--listen-peer")
            .arg(&m.peer_url)
            .arg("--listen-admin")
            .arg(m.admin_url.as_deref().unwrap_or_default())
            .arg("--dc")
            .arg(&m.dc.0)
            .arg("--zone")
            .arg(&m.zone.0)
            .arg("--listen-http")
            .arg(format!(
                "{}://{}:{}",
                if secure.is_some() { "https" } else { "http" },
                url_ip(&m.client_url)?,
                demo::HTTP_PORT
            ))
            .arg("--listen-dns")
            .arg(format!("{}:{}", url_ip(&m.client_url)?, demo::DNS_PORT))
            .arg("--enable-fault-injection")
            // The output goes to a log file: no terminal colour codes in it.
            .env("NO_COLOR", "1");
        if let Some(s) = &secure {
            cmd.args(s.server_args(&m.name.0)).env("MERIDIAN_ADMIN_TOKEN", &s.admin_token);
        }
        let log = dir.path().join(format!("{}.log", m.name.0));
        let pid = fleet.spawn(&m.name.0, cmd, &log)?;
        println!(
            "started {} (pid {pid}) {} {}: client {} admin {}",
            m.name.0,
            m.dc.0,
            format!("{:?}", m.role).to_lowercase(),
            m.client_url,
            m.admin_url.as_deref().unwrap_or("-")
        );
    }
    println!("data and logs: {}", dir.path().display());
    let mut banner = banner(&placed, args.no_wan);
    if let Some(s) = &secure {
        banner = banner.replace("etcdctl --endpoints", &format!("etcdctl {} --endpoints", s.etcdctl_flags()));
        banner.push_str("TLS on every link; auth is enabled (user root) once a leader is elected\n");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The discovery demo needs plain HTTP to register; with --secure the API is TLS and behind auth.
    let webs = if secure.is_none() { runtime.block_on(demo_instances(&topology))? } else { Vec::new() };
    if let Some(first) = placed.first().filter(|_| !webs.is_empty()) {
        let dcs: Vec<String> = webs.iter().map(|w| w.dc.clone()).collect();
        banner.push_str(&demo::banner(url_ip(&first.client_url)?, &dcs));
    }
    println!("{banner}");

    let outcome = runtime.block_on(watch(&placed, &mut fleet, &args, &banner, secure.as_ref(), &webs));

    for (name, pid) in fleet.stop_all() {
        println!("stopped {name} (pid {pid})");
    }
    let path = dir.path().to_path_buf();
    dir.close().with_context(|| format!("removing {}", path.display()))?;
    println!("removed {}", path.display());
    outcome
}

/// The IP address of a `scheme://IP:PORT` URL.
fn url_ip(url: &str) -> anyhow::Result<IpAddr> {
    let (addr, _) = admin_http::parse_url("client URL", url)?;
    Ok(addr.ip())
}

/// One demo `web` instance per datacenter, on the address of the datacenter's first member.
async fn demo_instances(topology: &Topology) -> anyhow::Result<Vec<demo::WebInstance>> {
    let mut webs: Vec<demo::WebInstance> = Vec::new();
    for m in &topology.members {
        if webs.iter().any(|w| w.dc == m.dc.0) {
            continue;
        }
        let ip = url_ip(&m.client_url)?;
        let web = demo::WebInstance::serve(
            SocketAddr::new(ip, demo::WEB_PORT),
            SocketAddr::new(ip, demo::HTTP_PORT),
            &m.dc.0,
        )
        .await?;
        println!("demo web of {} on http://{}", web.dc, web.addr);
        webs.push(web);
    }
    Ok(webs)
}

fn placements(topology: &Topology) -> anyhow::Result<Vec<Placed>> {
    topology
        .members
        .iter()
        .map(|m| {
            let admin = m.admin_url.as_deref().unwrap_or_default();
            let admin_https = admin.starts_with("https://");
            let addr = admin
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .parse()
                .with_context(|| format!("admin URL {admin}"))?;
            Ok(Placed {
                name: m.name.0.clone(),
                dc: m.dc.0.clone(),
                client_url: m.client_url.clone(),
                admin: addr,
                admin_https,
                id: meridian_server::identity::member_id(&m.peer_url).0,
                voter: m.role == meridian_types::topology::Role::Voter,
            })
        })
        .collect()
}

fn banner(placed: &[Placed], no_wan: bool) -> String {
    let endpoints: Vec<&str> = placed.iter().map(|p| p.client_url.as_str()).collect();
    let wan = if no_wan { "WAN emulation off" } else { "WAN emulated from the topology's [wan] links" };
    let voters: Vec<String> =
        placed.iter().filter(|p| p.voter).map(|p| format!("{} {:x} ({})", p.name, p.id, p.dc)).collect();
    let eps = endpoints.join(",");
    let first = endpoints.first().copied().unwrap_or_default();
    format!(
        "etcd endpoints ({wan}; fault injection on at each member's admin /faults):\n  \
         ETCDCTL_API=3 etcdctl --endpoints={eps} put foo bar\n\
         etcd's JSON gateway on the same ports (what Patroni speaks; with --secure add curl's --cacert/--cert/--key):\n  \
         curl -s {first}/v3/kv/range -d '{{\"key\":\"Zm9v\"}}'\n\
         hand leadership to another voter; leader placement brings it back to the preferred DC after the failback \
         hold:\n  \
         ETCDCTL_API=3 etcdctl --endpoints={eps} move-leader <id>\n  \
         voters: {}\n\
         kill -9 the leader's pid (above): the survivors see its process gone and elect a successor at once\n",
        voters.join(", ")
    )
}

/// Polls every member's `/status` and shows the table until a signal, or in `--once` mode until a leader is
/// agreed (Ok) or the deadline passes (Err). A member exiting on its own is an error with its log's tail.
async fn watch(
    placed: &[Placed],
    fleet: &mut Fleet,
    args: &PlaygroundArgs,
    banner: &str,
    secure: Option<&secure::Secure>,
    webs: &[demo::WebInstance],
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let deadline = Instant::now() + Duration::from_secs(args.leader_timeout_secs);
    let tty = std::io::stdout().is_terminal();
    let mut last = String::new();
    // The members inherit MERIDIAN_ADMIN_TOKEN from the playground's environment, so it is theirs too.
    let client = admin_http::AdminClient {
        tls: match (&args.cacert, secure) {
            (Some(ca), _) => Some(ClientTlsFiles { cacert: ca.clone(), identity: None }.config(&[tls_client::HTTP11])?),
            (None, Some(s)) => {
                Some(ClientTlsFiles { cacert: s.client_files().cacert, identity: None }.config(&[tls_client::HTTP11])?)
            }
            (None, None) => None,
        },
        token: match secure {
            Some(s) => Some(s.admin_token.clone()),
            None => std::env::var("MERIDIAN_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
        },
    };
    let mut auth_pending = secure;
    let mut unregistered: Vec<&demo::WebInstance> = webs.iter().collect();
    let first_http = webs.first().map(|_| SocketAddr::new(placed[0].admin.ip(), demo::HTTP_PORT));
    loop {
        if let Some((name, log, status)) = fleet.first_exit() {
            bail!(
                "member {name} exited on its own ({status}); last lines of {}:\n{}",
                log.display(),
                procs::tail(&log, 30)
            );
        }
        let reports = fetch_all(&client, placed).await;
        let rows: Vec<Row<'_>> =
            placed.iter().zip(&reports).map(|(p, r)| Row { name: &p.name, dc: &p.dc, status: r.as_ref() }).collect();
        let table = view::render(&rows);
        if let (Some(s), Some(_)) = (auth_pending, view::settled_leader(&rows)) {
            s.enable_auth(&placed[0].client_url).await.context("enabling auth in the secure playground")?;
            println!("auth enabled: user root (etcdctl {} --endpoints=...)", s.etcdctl_flags());
            auth_pending = None;
        }
        if view::settled_leader(&rows).is_some() && !unregistered.is_empty() {
            let plain = admin_http::AdminClient::default();
            let mut still = Vec::new();
            for web in unregistered {
                match web.register(&plain).await {
                    Ok(()) => println!("registered web-{} (http check of http://{}/health)", web.dc, web.addr),
                    Err(e) => {
                        tracing::debug!(error = %e, "demo registration not taken yet; retried");
                        still.push(web);
                    }
                }
            }
            unregistered = still;
        }
        if args.once {
            if let Some(leader) = view::settled_leader(&rows) {
                let discovered = match first_http {
                    Some(http) if unregistered.is_empty() => {
                        demo::passing_dcs(&admin_http::AdminClient::default(), http)
                            .await
                            .ok()
                            .filter(|dcs| dcs.len() == webs.len())
                    }
                    Some(_) => None,
                    None => Some(Vec::new()),
                };
                if let Some(dcs) = discovered {
                    print!("{table}");
                    println!("leader elected: {leader}");
                    if let Some(http) = first_http {
                        println!("discovery: web passing in {} (nearest first from {http})", dcs.join(", "));
                    }
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                print!("{table}");
                let logs: Vec<String> =
                    fleet.procs().iter().map(|p| format!("--- {}:\n{}", p.name, procs::tail(&p.log, 8))).collect();
                bail!(
                    "no leader agreed by every member, or the demo web not passing everywhere, within {}s\n{}",
                    args.leader_timeout_secs,
                    logs.join("\n")
                );
            }
        } else if tty {
            // Redraw in place: clear the screen, home the cursor.
            print!("\x1b[2J\x1b[H{banner}\n{table}\nCtrl-C stops every member and removes their data.\n");
        } else if table != last {
            println!("{table}");
        }
        last = table;
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {
                println!("interrupted; stopping every member");
                return Ok(());
            }
            _ = term.recv() => {
                println!("terminated; stopping every member");
                return Ok(());
            }
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
}

/// Every member's `/status`, concurrently; `None` for those that did not answer.
async fn fetch_all(
    client: &admin_http::AdminClient,
    placed: &[Placed],
) -> Vec<Option<meridian_server::admin::StatusReport>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in placed.iter().enumerate() {
        let (addr, https, client) = (p.admin, p.admin_https, client.clone());
        tasks.spawn(async move { (i, admin_http::status(&client, https, addr, STATUS_TIMEOUT).await.ok()) });
    }
    let mut out = vec![None; placed.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, report)) = joined {
            out[i] = report;
        }
    }
    out
}
