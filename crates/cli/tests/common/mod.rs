//! Real-process harness shared by the integration tests.
//!
//! A [`Server`] is either a real etcd (`/usr/bin/etcd`, the reference) or a `meridian server`
//! (the subject).  Every helper here works identically for both kinds, so that a differential test
//! can run the same script against each and compare.
//!
//! The kind used as the *subject* defaults to Meridian; set `MERIDIAN_TEST_SUBJECT=etcd` to run the
//! whole suite etcd-against-etcd (useful to validate the harness itself).
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub mod cluster;
pub mod http;
pub mod leader_trace;
pub mod load;
pub mod tls;
pub mod transcript;
pub mod webhook;

/// Path of the etcd server binary used as the reference implementation.
pub const ETCD_BIN: &str = "/usr/bin/etcd";
/// Path of the real etcdctl (v3.4) used as a client.
pub const ETCDCTL_BIN: &str = "/usr/bin/etcdctl";
/// How long a server may take to become ready.
pub const READY_DEADLINE: Duration = Duration::from_secs(20);
/// Upper bound for any single etcdctl invocation.
pub const ETCDCTL_DEADLINE: Duration = Duration::from_secs(30);
/// Member name used for both kinds, so that member-list output is comparable byte for byte.
pub const MEMBER_NAME: &str = "default";

/// Which server implementation a [`Server`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Real etcd 3.4 (the reference).
    Etcd,
    /// `meridian server` (the subject under test).
    Meridian,
}

impl Kind {
    /// The implementation under test: Meridian unless `MERIDIAN_TEST_SUBJECT=etcd`.
    pub fn subject() -> Kind {
        match std::env::var("MERIDIAN_TEST_SUBJECT").as_deref() {
            Ok("etcd") => Kind::Etcd,
            _ => Kind::Meridian,
        }
    }

    /// Short label used in diffs and logs.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Etcd => "etcd",
            Kind::Meridian => "meridian",
        }
    }
}

/// Ports handed out by this process, so that two servers of the same test binary never race for
/// the same port between "bind :0, drop" and the server's own bind.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A free loopback port (bind 127.0.0.1:0, take the port, drop the listener).
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        if handed_out().lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("could not find a free loopback port");
}

/// Run `f` on a fresh thread with its own current-thread tokio runtime and wait for it.  Works
/// both from plain `#[test]`s and from inside `#[tokio::test]`s (where nesting `block_on` would
/// panic).
pub fn block_on_fresh<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + 'static,
) -> T {
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        rt.block_on(f())
    })
    .join()
    .expect("helper thread panicked")
}

/// One server process (etcd or meridian) with its own data dir and loopback ports.
pub struct Server {
    kind: Kind,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    starts: u32,
    /// More flags for the server process (etcd and Meridian share the names of those tests use).
    extra_args: Vec<String>,
}

impl Server {
    /// Start a fresh single-node server of `kind` and wait until it serves linearizable reads.
    pub fn start(kind: Kind) -> Server {
        Server::start_with_args(kind, &[])
    }

    /// As [`Server::start`], with more flags for the server process.
    pub fn start_with_args(kind: Kind, args: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix(&format!("{}-it-", kind.label())).tempdir().expect("tempdir");
        Server::start_in(kind, dir, args)
    }

    /// As [`Server::start_with_args`], with the server's directory (data dir and log) in `dir`.
    pub fn start_in(kind: Kind, dir: tempfile::TempDir, args: &[&str]) -> Server {
        let mut server = Server {
            kind,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
            starts: 0,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
        };
        server.spawn();
        server.wait_ready();
        server
    }

    /// Start a real etcd on a data dir that `etcdctl snapshot restore` made of `snapshot` (restored under the
    /// member name and peer URL it then starts with), and wait until it serves. Panics with etcdctl's output
    /// if the restore fails.
    pub fn start_etcd_restored(snapshot: &Path) -> Server {
        let dir = tempfile::Builder::new().prefix("etcd-restored-it-").tempdir().expect("tempdir");
        let mut server = Server {
            kind: Kind::Etcd,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
            starts: 0,
            extra_args: Vec::new(),
        };
        let peer = format!("http://127.0.0.1:{}", server.peer_port);
        let data = server.data_dir();
        let restore = etcdctl(
            &server.endpoint(),
            &[
                "snapshot",
                "restore",
                &snapshot.to_string_lossy(),
                "--data-dir",
                &data.to_string_lossy(),
                "--name",
                MEMBER_NAME,
                "--initial-cluster",
                &format!("{MEMBER_NAME}={peer}"),
                "--initial-advertise-peer-urls",
                &peer,
            ],
            None,
        );
        assert!(restore.ok(), "etcdctl snapshot restore {}: {restore:?}", snapshot.display());
        server.spawn();
        server.wait_ready();
        server
    }

    /// Which implementation this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `http://127.0.0.1:PORT` of the client (gRPC) listener.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Client port.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// Peer port.
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// The test's private directory (holds `data/` and `server.log`); scratch files may go here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's combined stdout/stderr log (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// PID of the running server process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let data = self.data_dir();
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = match self.kind {
            Kind::Etcd => {
                let mut c = Command::new(ETCD_BIN);
                c.arg("--name")
                    .arg(MEMBER_NAME)
                    .arg("--data-dir")
                    .arg(&data)
                    .arg("--listen-client-urls")
                    .arg(&client)
                    .arg("--advertise-client-urls")
                    .arg(&client)
                    .arg("--listen-peer-urls")
                    .arg(&peer)
                    .arg("--initial-advertise-peer-urls")
                    .arg(&peer)
                    .arg("--initial-cluster")
                    .arg(format!("{MEMBER_NAME}={peer}"));
                c
            }
            Kind::Meridian => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_meridian"));
                c.arg("server")
                    .arg("--name")
                    .arg(MEMBER_NAME)
                    .arg("--data-dir")
                    .arg(&data)
                    .arg("--listen-client")
                    .arg(&client)
                    .arg("--listen-peer")
                    .arg(&peer);
                c
            }
        };
        cmd.args(&self.extra_args);
        self.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open server log");
        writeln!(log, "===== harness: start #{} of {} ({:?}) =====", self.starts, self.kind.label(), cmd).ok();
        let log_err = log.try_clone().expect("clone log handle");
        // The server must see only the flags above, never a MERIDIAN_* setting of the caller.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MERIDIAN_") {
                cmd.env_remove(&k);
            }
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(log_err));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {} failed: {e}", self.kind.label()));
        self.child = Some(child);
    }

    /// Poll until the server accepts TCP on its client port and answers `Status` (with a leader)
    /// and a linearizable `Range` via the etcd-client crate.  Panics (printing the log) after
    /// [`READY_DEADLINE`] or if the process exits.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_DEADLINE;
        let mut last_err = String::from("never attempted");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited during startup with {status}\n{}", self.kind.label(), self.log_tail(200));
            }
            let addr = format!("127.0.0.1:{}", self.client_port);
            match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)) {
                Err(e) => {
                    last_err = format!("tcp connect: {e}");
                    // Not listening yet: wait a little before the next poll of the condition.
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Ok(s) => drop(s),
            }
            let ep = self.endpoint();
            let probe = block_on_fresh(move || Box::pin(async move { probe_ready(&ep).await }));
            match probe {
                Ok(()) => return,
                Err(e) => {
                    last_err = e;
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        panic!("{} not ready after {READY_DEADLINE:?}: {last_err}\n{}", self.kind.label(), self.log_tail(200));
    }

    /// SIGKILL the process (by PID, via `Child::kill`) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Start again on the same data dir and ports (killing first if still running) and wait until it serves
    /// (`Ok`) or exits (`Err` with its exit status), for up to [`READY_DEADLINE`].
    pub fn restart_or_exit(&mut self) -> Result<(), std::process::ExitStatus> {
        self.kill9();
        self.spawn();
        let deadline = Instant::now() + READY_DEADLINE;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(status);
            }
            if block_on_fresh({
                let ep = self.endpoint();
                move || Box::pin(async move { probe_ready(&ep).await })
            })
            .is_ok()
            {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("{} neither served nor exited\n{}", self.kind.label(), self.log_tail(80));
    }

    /// Start again on the same data dir and ports (killing first if still running), wait ready.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready();
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let start = len.saturating_sub(256 * 1024);
            f.seek(SeekFrom::Start(start)).ok();
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).ok();
            text = String::from_utf8_lossy(&buf).into_owned();
        }
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "----- last {} lines of {} log ({}) -----\n{}\n-----",
            all.len() - from,
            self.kind.label(),
            self.log_path().display(),
            all[from..].join("\n")
        )
    }

    /// A connected etcd-client (async).
    pub async fn client(&self) -> etcd_client::Client {
        connect(&self.endpoint()).await
    }

    /// Run etcdctl against this server.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        etcdctl(&self.endpoint(), args, None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.log_tail(80));
        }
        self.kill9();
    }
}

/// Connect an etcd-client to `endpoint` with short timeouts.
pub async fn connect(endpoint: &str) -> etcd_client::Client {
    try_connect(endpoint, Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("connect {endpoint}: {e}"))
}

/// Connect an etcd-client with the given per-request timeout.
pub async fn try_connect(endpoint: &str, timeout: Duration) -> Result<etcd_client::Client, etcd_client::Error> {
    let opts = etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(2)).with_timeout(timeout);
    etcd_client::Client::connect([endpoint], Some(opts)).await
}

async fn probe_ready(endpoint: &str) -> Result<(), String> {
    let mut client = try_connect(endpoint, Duration::from_secs(2)).await.map_err(|e| format!("connect: {e}"))?;
    let status = client.status().await.map_err(|e| format!("status: {e}"))?;
    if status.leader() == 0 {
        return Err("status: no leader yet".into());
    }
    client.get("meridian-harness-probe", None).await.map_err(|e| format!("get: {e}"))?;
    Ok(())
}

/// Result of one etcdctl invocation.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// Exit code (-1 if killed by a signal, e.g. on timeout).
    pub code: i32,
}

impl Output {
    /// True if the command exited 0.
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

fn etcdctl_command(endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(ETCDCTL_BIN);
    cmd.env("ETCDCTL_API", "3").env_remove("ETCDCTL_ENDPOINTS").arg(format!("--endpoints={endpoint}")).args(args);
    cmd
}

/// Run the real etcdctl (v3 API) against `endpoint` with `args`, optionally feeding `stdin`,
/// bounded by [`ETCDCTL_DEADLINE`].
pub fn etcdctl(endpoint: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = etcdctl_command(endpoint, args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn etcdctl");
    let writer = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take().expect("stdin pipe");
        thread::spawn(move || {
            pipe.write_all(&data).ok();
        })
    });
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_t = thread::spawn(move || {
        let mut b = Vec::new();
        out_pipe.read_to_end(&mut b).ok();
        b
    });
    let err_t = thread::spawn(move || {
        let mut b = Vec::new();
        err_pipe.read_to_end(&mut b).ok();
        b
    });
    let code = wait_child(&mut child, ETCDCTL_DEADLINE);
    if let Some(w) = writer {
        w.join().ok();
    }
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    Output { stdout, stderr, code }
}

/// Wait for `child` to exit, killing it (by PID) after `deadline`.  Returns the exit code, or -1.
fn wait_child(child: &mut Child, deadline: Duration) -> i32 {
    let end = Instant::now() + deadline;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.code().unwrap_or(-1),
            Ok(None) if Instant::now() >= end => {
                child.kill().ok();
                child.wait().ok();
                return -1;
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => return -1,
        }
    }
}

/// A long-running `etcdctl watch ...` child whose stdout lines are collected in the background.
pub struct WatchProc {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
}

impl WatchProc {
    /// Spawn `etcdctl --endpoints=EP <args>` (typically `watch ...`).
    pub fn spawn(endpoint: &str, args: &[&str]) -> WatchProc {
        WatchProc::spawn_with(etcdctl_command(endpoint, args))
    }

    /// As [`WatchProc::spawn`], in a process group of its own, so [`WatchProc::signal_group`] reaches the
    /// commands etcdctl runs (`etcdctl lock NAME -- CMD`) as well as etcdctl.
    pub fn spawn_in_group(endpoint: &str, args: &[&str]) -> WatchProc {
        let mut cmd = etcdctl_command(endpoint, args);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        WatchProc::spawn_with(cmd)
    }

    fn spawn_with(mut cmd: Command) -> WatchProc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn etcdctl");
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match out.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            let s = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                            if tx.send(s).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if !buf.is_empty() {
                tx.send(String::from_utf8_lossy(&buf).into_owned()).ok();
            }
        });
        let stderr = thread::spawn(move || {
            let mut b = Vec::new();
            err.read_to_end(&mut b).ok();
            b
        });
        WatchProc { child, lines: rx, stderr: Some(stderr) }
    }

    /// The process id of etcdctl (also its process group's id when spawned with
    /// [`WatchProc::spawn_in_group`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (a name such as `TERM`) to etcdctl, by PID.
    pub fn signal(&self, sig: &str) {
        signal_pid(&self.pid().to_string(), sig);
    }

    /// Sends `sig` to the process group etcdctl leads (only for [`WatchProc::spawn_in_group`]).
    pub fn signal_group(&self, sig: &str) {
        signal_pid(&format!("-{}", self.pid()), sig);
    }

    /// Waits at most `deadline` for etcdctl to exit by itself; its exit code (-1 when killed by a signal), or
    /// `None` if it still runs.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let end = Instant::now() + deadline;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status.code().unwrap_or(-1)),
                Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// Collect stdout lines until `n` arrived or `deadline` passed; returns what arrived.
    pub fn wait_lines(&mut self, n: usize, deadline: Duration) -> Vec<String> {
        let end = Instant::now() + deadline;
        let mut got = Vec::new();
        while got.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.lines.recv_timeout(left) {
                Ok(l) => got.push(l),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        got
    }

    /// Kill the watcher (by PID) and return (remaining stdout lines, stderr, exit code).
    pub fn kill(mut self) -> (Vec<String>, String, i32) {
        let code = match self.child.try_wait() {
            Ok(Some(s)) => s.code().unwrap_or(-1),
            _ => {
                self.child.kill().ok();
                self.child.wait().ok();
                -1
            }
        };
        let rest: Vec<String> = self.lines.try_iter().collect();
        let err = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        (rest, String::from_utf8_lossy(&err).into_owned(), code)
    }
}

impl Drop for WatchProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// `kill -s SIG -- TARGET`: a signal to a process (a PID) or a process group (a negated PGID) this test
/// started.
fn signal_pid(target: &str, sig: &str) {
    let status = Command::new("kill").args(["-s", sig, "--", target]).status().expect("run kill");
    assert!(status.success(), "kill -s {sig} -- {target} failed");
}

/// Poll `cond` every `every` until it returns true or `deadline` elapses; returns whether it held.
pub fn poll_until(deadline: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(every);
    }
}

/// A line-based diff (LCS) of `a` (etcd) against `b` (subject), with `-`/`+` markers and the
/// first `max` differing hunks' context.
pub fn line_diff(a: &str, b: &str, a_label: &str, b_label: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let keep: Vec<bool> = (0..ops.len())
        .map(|k| {
            let lo = k.saturating_sub(3);
            let hi = (k + 4).min(ops.len());
            ops[lo..hi].iter().any(|(c, _)| *c != ' ')
        })
        .collect();
    let mut out = format!("--- {a_label}\n+++ {b_label}\n");
    let mut skipped = false;
    for (k, (c, line)) in ops.iter().enumerate() {
        if keep[k] {
            if skipped {
                out.push_str("  ...\n");
                skipped = false;
            }
            out.push(*c);
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        } else {
            skipped = true;
        }
    }
    out
}

/// A scenario's future, as [`on_both`] runs it.
pub type BoxFut = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Run `scenario` against a fresh etcd and a fresh subject server, concurrently.  The scenario
/// receives the server kind (for messages), the endpoint and the peer URL.
pub async fn on_both(scenario: fn(Kind, String, String) -> BoxFut) {
    let run = |kind: Kind| async move {
        let server = tokio::task::spawn_blocking(move || Server::start(kind)).await.expect("start server");
        let peer = format!("http://127.0.0.1:{}", server.peer_port());
        let result = tokio::spawn(scenario(kind, server.endpoint(), peer)).await;
        (server, result)
    };
    let ((etcd, r1), (subject, r2)) = tokio::join!(run(Kind::Etcd), run(Kind::subject()));
    let mut failures = Vec::new();
    for (kind, r) in [(Kind::Etcd, r1), (Kind::subject(), r2)] {
        if let Err(e) = r {
            let msg = e
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_else(|| "task failed".into());
            failures.push(format!("[{}] {msg}", kind.label()));
        }
    }
    if !failures.is_empty() {
        let _keep = (&etcd, &subject);
        panic!("scenario failed:\n{}", failures.join("\n"));
    }
}

/// The gRPC status inside an etcd-client error.
pub fn status_of(e: &etcd_client::Error) -> Option<(tonic::Code, String)> {
    match e {
        etcd_client::Error::GRpcStatus(s) => Some((s.code(), s.message().to_string())),
        _ => None,
    }
}

/// Asserts that `r` failed with gRPC `code` and `message`.
pub fn assert_grpc<T: std::fmt::Debug>(
    kind: Kind,
    r: Result<T, etcd_client::Error>,
    code: tonic::Code,
    message: &str,
    what: &str,
) {
    match r {
        Ok(v) => panic!("[{}] {what}: expected {code:?} {message:?}, got Ok({v:?})", kind.label()),
        Err(e) => {
            let got = status_of(&e);
            assert_eq!(got, Some((code, message.to_string())), "[{}] {what}: wrong error {e}", kind.label());
        }
    }
}
