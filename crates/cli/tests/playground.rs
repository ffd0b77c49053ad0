//! `meridian playground` as a real process: it starts the canonical 3-DC topology as separate server processes,
//! reports a leader agreed by every member, and leaves no process and no data behind — after `--once`, and
//! after SIGTERM in live mode.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

const MEMBERS: [&str; 6] = ["a1", "a2", "b1", "b2", "c1", "sg1"];
const VOTERS: [&str; 5] = ["a1", "a2", "b1", "b2", "c1"];
const DEADLINE: Duration = Duration::from_secs(120);

/// A loopback /24 of its own per test, so parallel runs (and other suites on 127.0.0.1) never collide on the
/// fixed ports 2379-2381.
fn base_ip(salt: u32) -> String {
    format!("127.{}.{}.10", 100 + salt, 10 + std::process::id() % 200)
}

/// A running playground whose stdout lines arrive on a channel (stderr is collected for failure messages).
struct Playground {
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: thread::JoinHandle<String>,
}

impl Playground {
    fn start(args: &[&str]) -> Playground {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("playground")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start meridian playground");
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        Playground { child, lines, stdout: Vec::new(), stderr }
    }

    /// Reads stdout until a line satisfies `pred`, within the deadline.
    fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("expected line never came; stdout so far:\n{}", self.stdout.join("\n"));
                }
            }
        }
    }

    /// Waits for exit within the deadline (killing it past that) and collects the rest of the output.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("playground did not exit in time; stdout:\n{}", self.stdout.join("\n"));
            }
            thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends at EOF, which follows the exit.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.stdout.push(line);
        }
        (status, self.stdout, self.stderr.join().unwrap())
    }
}

/// The (name, pid) of every member the playground said it started.
fn started(stdout: &[String]) -> Vec<(String, u32)> {
    let re = regex::Regex::new(r"^started (\S+) \(pid (\d+)\)").unwrap();
    stdout.iter().filter_map(|l| re.captures(l).map(|c| (c[1].to_owned(), c[2].parse().unwrap()))).collect()
}

fn data_dir(stdout: &[String]) -> PathBuf {
    let line = stdout.iter().find_map(|l| l.strip_prefix("data and logs: ")).expect("data dir printed");
    PathBuf::from(line)
}

/// Every started member was reported stopped and no longer exists; the data dir is gone.
fn assert_nothing_left(stdout: &[String]) {
    let pids = started(stdout);
    let names: BTreeSet<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, MEMBERS.into_iter().collect(), "one process per member:\n{}", stdout.join("\n"));
    for (name, pid) in &pids {
        assert!(stdout.contains(&format!("stopped {name} (pid {pid})")), "{name} not reported stopped");
        // The playground reaped it, so the PID is gone (reuse within the test is vanishingly unlikely).
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{name} (pid {pid}) survived the playground");
    }
    let dir = data_dir(stdout);
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// The member rows of the last status table printed.
fn table_rows(stdout: &[String]) -> Vec<&str> {
    let start = stdout.iter().rposition(|l| l.starts_with("MEMBER ")).expect("a status table");
    stdout[start + 1..].iter().take(MEMBERS.len()).map(String::as_str).collect()
}

#[test]
fn once_elects_a_leader_shows_every_member_and_cleans_up() {
    let p = Playground::start(&["--once", "--base-ip", &base_ip(0)]);
    let (status, stdout, stderr) = p.finish();
    assert!(status.success(), "exit {status}\nstdout:\n{}\nstderr:\n{stderr}", stdout.join("\n"));
    let leader = stdout
        .iter()
        .find_map(|l| l.strip_prefix("leader elected: "))
        .unwrap_or_else(|| panic!("no leader line:\n{}", stdout.join("\n")));
    assert!(VOTERS.contains(&leader), "leader {leader} must be a voter");
    let rows = table_rows(&stdout);
    for (row, name) in rows.iter().zip(MEMBERS) {
        assert!(row.starts_with(name) && !row.contains("down"), "row for {name}: {row}");
    }
    let marked: Vec<&&str> = rows.iter().filter(|r| r.ends_with('*')).collect();
    assert_eq!(marked.len(), 1, "exactly one leader marked:\n{}", rows.join("\n"));
    assert!(marked[0].starts_with(leader));
    let learner = rows.iter().find(|r| r.starts_with("sg1")).unwrap();
    assert!(learner.contains("learner"), "sg1 is a learner: {learner}");
    assert!(stdout.iter().any(|l| l.contains("etcdctl --endpoints=http://")), "endpoints printed");
    assert!(stdout.iter().any(|l| l == "alarms: none"), "the alarm line shows a healthy cluster");
    // The discovery demo: a `web` in every datacenter, registered with an HTTP check that the members run, and
    // listed as passing by a1's HTTP API with a1's own datacenter first.
    let discovery = stdout
        .iter()
        .find_map(|l| l.strip_prefix("discovery: web passing in "))
        .unwrap_or_else(|| panic!("no discovery line:\n{}", stdout.join("\n")));
    assert!(discovery.starts_with("dc-a, "), "a1's own datacenter first: {discovery}");
    for dc in ["dc-b", "dc-c", "dc-d"] {
        assert!(discovery.contains(dc), "{dc} missing: {discovery}");
    }
    assert!(stdout.iter().any(|l| l.contains("web.service.meridian SRV")), "the dig command is printed");
    assert_nothing_left(&stdout);
}

#[test]
fn sigterm_stops_every_member_and_removes_the_data() {
    let mut p = Playground::start(&["--base-ip", &base_ip(1)]);
    // Live mode without a terminal prints the table whenever it changes: wait for a leader in it.
    p.wait_for_line(|l| l.starts_with("leader: ") && !l.contains("none yet"));
    let pid = p.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(killed.success());
    let (status, stdout, stderr) = p.finish();
    assert!(status.success(), "exit {status}\nstderr:\n{stderr}");
    assert!(stdout.iter().any(|l| l.contains("terminated; stopping every member")));
    assert_nothing_left(&stdout);
}

#[test]
fn the_move_leader_line_of_the_banner_moves_the_leader() {
    let mut p = Playground::start(&["--base-ip", &base_ip(2)]);
    let voters = p.wait_for_line(|l| l.trim_start().starts_with("voters: "));
    let endpoints = p
        .stdout
        .iter()
        .find_map(|l| l.split("--endpoints=").nth(1).and_then(|rest| rest.split_whitespace().next()))
        .expect("endpoints printed")
        .to_owned();
    p.wait_for_line(|l| l.starts_with("leader: ") && !l.contains("none yet"));
    // The banner's JSON gateway line reads `foo` after etcdctl put it.
    let put = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([&format!("--endpoints={endpoints}"), "put", "foo", "bar"])
        .output()
        .expect("run etcdctl");
    assert!(put.status.success(), "put failed: {}", String::from_utf8_lossy(&put.stderr));
    let curl = p.stdout.iter().find(|l| l.trim_start().starts_with("curl ")).expect("gateway line printed").clone();
    let got = Command::new("sh").args(["-c", &curl]).output().expect("run curl");
    let body = String::from_utf8_lossy(&got.stdout);
    assert!(body.contains(r#""key":"Zm9v""#) && body.contains(r#""value":"YmFy""#), "{curl}: {body}");
    // "voters: a1 3f4b... (dc-a), ...": hand leadership to b1, a voter outside the preferred datacenter.
    let b1 = voters
        .trim_start()
        .trim_start_matches("voters: ")
        .split(", ")
        .find_map(|v| v.strip_prefix("b1 ").and_then(|rest| rest.split_whitespace().next()))
        .expect("b1 and its id listed")
        .to_owned();
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([&format!("--endpoints={endpoints}"), "move-leader", &b1])
        .output()
        .expect("run etcdctl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "move-leader failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.trim_end().ends_with(&format!("to {b1}")), "{stdout}");
    // The status table shows b1 leading (placement brings leadership back to dc-a only after its hold).
    p.wait_for_line(|l| l.starts_with("b1 ") && l.ends_with('*'));
    let pid = p.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("run kill").success());
    let (status, stdout, stderr) = p.finish();
    assert!(status.success(), "exit {status}\nstderr:\n{stderr}");
    assert_nothing_left(&stdout);
}

#[test]
fn the_secure_playground_runs_tls_on_every_link_with_auth_on() {
    let mut p = Playground::start(&["--secure", "--base-ip", &base_ip(3)]);
    let line = p.wait_for_line(|l| l.starts_with("auth enabled: user root"));
    let flags: Vec<String> = line
        .split_whitespace()
        .filter(|w| {
            w.starts_with("--cacert=")
                || w.starts_with("--cert=")
                || w.starts_with("--key=")
                || w.starts_with("--user=")
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(flags.len(), 4, "the etcdctl flags are printed: {line}");
    let endpoints = p
        .stdout
        .iter()
        .find_map(|l| l.split("--endpoints=").nth(1).and_then(|rest| rest.split_whitespace().next()))
        .filter(|e| e.starts_with("https://"))
        .expect("https endpoints printed")
        .to_owned();
    let etcdctl = |extra: &[&str]| {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .args(extra)
            .output()
            .expect("run etcdctl")
    };
    let mut with_flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    with_flags.extend(["put", "secure", "yes"]);
    let out = etcdctl(&with_flags);
    assert!(out.status.success(), "the printed flags work: {}", String::from_utf8_lossy(&out.stderr));
    // Without the password, the certificate's common name (root) is the user; without a certificate, no entry.
    let cert_only: Vec<&str> = flags.iter().filter(|f| !f.starts_with("--user=")).map(String::as_str).collect();
    let mut get = cert_only.clone();
    get.extend(["get", "secure", "--print-value-only"]);
    let out = etcdctl(&get);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes", "{}", String::from_utf8_lossy(&out.stderr));
    // A token one member issued works on every other (JWT): clients spread their calls over the endpoints.
    let flag = |name: &str| flags.iter().find_map(|f| f.strip_prefix(name)).expect("flag printed").to_owned();
    let (cacert, cert, key) = (flag("--cacert="), flag("--cert="), flag("--key="));
    let password = flag("--user=root:");
    let curl = |url: &str, headers: &[String], body: &str| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", "--cacert", &cacert, "--cert", &cert, "--key", &key, "-X", "POST"]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        let out = cmd.args(["-d", body, url]).output().expect("run curl");
        assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON from the gateway")
    };
    let members: Vec<&str> = endpoints.split(',').collect();
    assert!(members.len() >= 2, "several endpoints: {endpoints}");
    let login = format!(r#"{{"name": "root", "password": "{password}"}}"#);
    let token = curl(&format!("{}/v3/auth/authenticate", members[0]), &[], &login)["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    for other in &members[1..] {
        let got = curl(&format!("{other}/v3/kv/range"), &[format!("Authorization: {token}")], r#"{"key": "c2VjdXJl"}"#);
        assert_eq!(got["kvs"][0]["value"], "eWVz", "{other} takes the token {} issued: {got}", members[0]);
    }
    let ca_only: Vec<&str> = flags.iter().filter(|f| f.starts_with("--cacert=")).map(String::as_str).collect();
    let mut refused = ca_only.clone();
    refused.extend(["--dial-timeout=2s", "--command-timeout=3s", "get", "secure"]);
    assert!(!etcdctl(&refused).status.success(), "no client certificate, no entry");
    p.wait_for_line(|l| l.starts_with("auth: on"));
    let pid = p.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("run kill").success());
    let (status, stdout, stderr) = p.finish();
    assert!(status.success(), "exit {status}\nstderr:\n{stderr}");
    assert_nothing_left(&stdout);
}
