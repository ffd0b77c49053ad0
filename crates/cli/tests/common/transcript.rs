//! Differential etcdctl transcripts: run one scripted etcdctl session against etcd and against the
//! subject, normalise only the fields that legitimately differ between two clusters, and compare.
//!
//! What is normalised (and nothing else):
//! - cluster id, member id (mapped to `M1`, `M2`... in order of appearance, so `leader == member`
//!   stays visible), raft term, raft index / applied index, db size (in use), server version;
//! - lease ids (mapped to `L1`, `L2`... in order of appearance; hex and decimal forms), and the
//!   order of `lease list` (etcd lists leases in Go map order);
//! - the remaining TTL of `lease timetolive` (wall-clock dependent; scripts assert its range);
//! - the member id of an alarm (`memberID:<n>`, as `alarm list` and status errors print it);
//! - the lease ids in the keys of locks and elections (`NAME/<lease hex>`), for names a script registers with
//!   [`Session::lease_keys_under`];
//! - loopback ports, scratch paths, and timing/size fields of etcdctl's own client-side log lines
//!   (`ts`, `target`, `took`, `size`), and `took = ...` of `endpoint health`.
//!
//! Tables (`-w table`) are checked against etcd's table layout (tablewriter: centred headers,
//! right-aligned cells, column width = widest cell) and then re-rendered with normalised cells, so
//! a layout difference still shows up while differing ids don't shift the columns.

use super::{Kind, Output, Server, WatchProc, etcdctl, line_diff};
use regex::{Captures, Regex};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::thread;
use std::time::Duration;

/// Maps an id (by numeric value) to a stable label in order of first appearance.
#[derive(Default)]
struct IdMap {
    prefix: &'static str,
    map: HashMap<u64, String>,
}

impl IdMap {
    fn new(prefix: &'static str) -> IdMap {
        IdMap { prefix, map: HashMap::new() }
    }

    fn label(&mut self, id: u64) -> String {
        if id == 0 {
            return "0".into();
        }
        let next = self.map.len() + 1;
        self.map.entry(id).or_insert_with(|| format!("<{}{}>", self.prefix, next)).clone()
    }

    fn label_dec(&mut self, s: &str) -> String {
        match s.parse::<u64>() {
            Ok(v) => self.label(v),
            Err(_) => format!("<bad-id {s}>"),
        }
    }

    fn label_hex(&mut self, s: &str) -> String {
        match u64::from_str_radix(s, 16) {
            Ok(v) => self.label(v),
            Err(_) => format!("<bad-id {s}>"),
        }
    }

    fn id_of(&self, label: &str) -> Option<u64> {
        self.map.iter().find(|(_, l)| l.as_str() == label).map(|(id, _)| *id)
    }
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("regex")
}

static ZAP_TS: LazyLock<Regex> = LazyLock::new(|| re(r#""ts":("[^"]*"|[0-9.eE+-]+),"#));
static ZAP_TARGET: LazyLock<Regex> = LazyLock::new(|| re(r#""target":"[^"]*","#));
static ZAP_TOOK: LazyLock<Regex> = LazyLock::new(|| re(r#""took":("[^"]*"|[0-9.eE+-]+)"#));
static ZAP_SIZE: LazyLock<Regex> = LazyLock::new(|| re(r#""size":"[^"]*""#));
static HEALTH_TOOK: LazyLock<Regex> = LazyLock::new(|| re(r"took = [0-9.]+[a-zµ]+"));
static JSON_NUM: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#""(cluster_id|member_id|raft_term|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse|leader|ID|id|lease|ttl)":(-?\d+)"#,
    )
});
static JSON_VERSION: LazyLock<Regex> = LazyLock::new(|| re(r#""version":"[^"]*""#));
static FIELDS_NUM: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?m)^"(ClusterID|MemberID|RaftTerm|Leader|DBSize|DBSizeInUse|RaftIndex|RaftAppliedIndex|ID|Lease|PrevLease|TTL)" : (-?\d+)$"#,
    )
});
static FIELDS_VERSION: LazyLock<Regex> = LazyLock::new(|| re(r#"(?m)^"Version" : "[^"]*"$"#));
static SIMPLE_LEASE: LazyLock<Regex> =
    LazyLock::new(|| re(r"lease ([0-9a-f]+) (granted|keepalived|revoked|already expired)"));
static ALARM_MEMBER: LazyLock<Regex> = LazyLock::new(|| re(r"memberID:(\d+)"));
static REMAINING: LazyLock<Regex> = LazyLock::new(|| re(r"remaining\((-?\d+)s\)"));

/// Normalisation state for one server's transcript.
pub struct Normaliser {
    client_port: u16,
    peer_port: u16,
    paths: Vec<(String, &'static str)>,
    leases: IdMap,
    members: IdMap,
    clusters: IdMap,
    /// Lock and election names whose keys end in a lease id (`NAME/<hex>`).
    lease_key_names: Vec<(String, Regex)>,
}

/// The command's subcommand words (e.g. `["lease", "grant"]`) and output format.
fn command_shape(args: &[String]) -> (Vec<String>, String) {
    let mut words = Vec::new();
    let mut fmt = "simple".to_string();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "-w" || a == "--write-out" {
            if let Some(f) = args.get(i + 1) {
                fmt = f.clone();
            }
            i += 2;
            continue;
        }
        if let Some(f) = a.strip_prefix("--write-out=").or(a.strip_prefix("-w=")) {
            fmt = f.to_string();
        } else if !a.starts_with('-') && words.len() < 2 {
            words.push(a.clone());
        }
        i += 1;
    }
    (words, fmt)
}

impl Normaliser {
    fn new(server: &Server, scratch: &str) -> Normaliser {
        let mut n = Normaliser::detached(server.client_port(), server.peer_port());
        n.paths = vec![(scratch.to_string(), "{DIR}"), (server.dir().display().to_string(), "<SERVERDIR>")];
        n
    }

    /// A normaliser for a server on the given ports (used by the normaliser's own tests).
    pub fn detached(client_port: u16, peer_port: u16) -> Normaliser {
        Normaliser {
            client_port,
            peer_port,
            paths: Vec::new(),
            leases: IdMap::new("L"),
            members: IdMap::new("M"),
            clusters: IdMap::new("C"),
            lease_key_names: Vec::new(),
        }
    }

    /// Normalise one piece of etcdctl output produced by `args`.
    pub fn normalise(&mut self, args: &[String], text: &str) -> String {
        let (words, fmt) = command_shape(args);
        let w0 = words.first().map(String::as_str).unwrap_or("");
        let w1 = words.get(1).map(String::as_str).unwrap_or("");
        let is_member_cmd = w0 == "member" || (w0 == "endpoint" && w1 == "status");
        let is_ttl_cmd = w0 == "lease" && w1 == "timetolive";

        let mut t = text.to_string();
        if fmt == "table" {
            // Tables are checked against etcd's layout on the raw text, before any cell changes.
            t = self.tables(&t);
        }
        t = self.replace_common(&t);

        // etcdctl's own client-side zap log lines: drop wall-clock fields.
        t = t
            .lines()
            .map(|l| {
                if l.starts_with("{\"level\":") {
                    let l = ZAP_TS.replace_all(l, "");
                    let l = ZAP_TARGET.replace_all(&l, "");
                    let l = ZAP_TOOK.replace_all(&l, "\"took\":\"<T>\"");
                    ZAP_SIZE.replace_all(&l, "\"size\":\"<SIZE>\"").into_owned()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + if text.ends_with('\n') { "\n" } else { "" };
        t = HEALTH_TOOK.replace_all(&t, "took = <T>").into_owned();
        for (name, pattern) in &self.lease_key_names {
            let leases = &mut self.leases;
            t = pattern.replace_all(&t, |c: &Captures| format!("{name}/{}", leases.label_hex(&c[1]))).into_owned();
        }
        t = ALARM_MEMBER
            .replace_all(&t, |c: &Captures| format!("memberID:{}", self.members.label_dec(&c[1])))
            .into_owned();
        t = ZAP_TOOK.replace_all(&t, "\"took\":\"<T>\"").into_owned();

        // JSON output.
        t = JSON_NUM
            .replace_all(&t, |c: &Captures| {
                let (k, v) = (&c[1], &c[2]);
                let rep = match k {
                    "cluster_id" => self.clusters.label_dec(v),
                    "member_id" | "leader" => self.members.label_dec(v),
                    "ID" if is_member_cmd => self.members.label_dec(v),
                    "ID" | "id" | "lease" => self.leases.label_dec(v),
                    "ttl" if is_ttl_cmd => "<REMAINING>".into(),
                    "ttl" => v.to_string(),
                    _ => "<N>".into(),
                };
                format!("\"{k}\":{rep}")
            })
            .into_owned();
        t = JSON_VERSION.replace_all(&t, "\"version\":\"<VERSION>\"").into_owned();

        // -w fields output.
        t = FIELDS_NUM
            .replace_all(&t, |c: &Captures| {
                let (k, v) = (&c[1], &c[2]);
                let rep = match k {
                    "ClusterID" => self.clusters.label_dec(v),
                    "MemberID" | "Leader" => self.members.label_dec(v),
                    "ID" if is_member_cmd => self.members.label_dec(v),
                    "ID" | "Lease" | "PrevLease" => self.leases.label_dec(v),
                    "TTL" if is_ttl_cmd => "<REMAINING>".into(),
                    "TTL" => v.to_string(),
                    _ => "<N>".into(),
                };
                format!("\"{k}\" : {rep}")
            })
            .into_owned();
        if is_member_cmd {
            t = FIELDS_VERSION.replace_all(&t, "\"Version\" : \"<VERSION>\"").into_owned();
        }

        // Simple output.
        t = SIMPLE_LEASE
            .replace_all(&t, |c: &Captures| format!("lease {} {}", self.leases.label_hex(&c[1]), &c[2]))
            .into_owned();
        if is_ttl_cmd {
            t = REMAINING.replace_all(&t, "remaining(<R>s)").into_owned();
        }
        if fmt == "simple" && is_member_cmd {
            t = self.simple_columns(&t, w0);
        }
        if is_ttl_cmd {
            t = sort_attached_keys(&t);
        }
        if w0 == "lease" && w1 == "list" {
            t = self.lease_list(&t, &fmt);
        }
        t
    }

    /// Ports and scratch paths.
    fn replace_common(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (p, rep) in &self.paths {
            t = t.replace(p.as_str(), rep);
        }
        t.replace(&format!("127.0.0.1:{}", self.client_port), "127.0.0.1:<CLIENT>")
            .replace(&format!("127.0.0.1:{}", self.peer_port), "127.0.0.1:<PEER>")
            .replace(&format!("localhost:{}", self.client_port), "localhost:<CLIENT>")
            .replace(&format!("localhost:{}", self.peer_port), "localhost:<PEER>")
    }

    /// `endpoint status` / `member list` simple output: comma separated columns.
    fn simple_columns(&mut self, t: &str, w0: &str) -> String {
        let mut out = Vec::new();
        for line in t.lines() {
            let is_row = line.starts_with("http://") || (w0 == "member" && line.contains(", "));
            if !is_row {
                out.push(line.to_string());
                continue;
            }
            let mut cols: Vec<String> = line.split(", ").map(str::to_string).collect();
            if w0 == "member" {
                if let Some(c) = cols.get_mut(0) {
                    *c = self.members.label_hex(c);
                }
            } else {
                // ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, TERM, INDEX, APPLIED, ERR
                for (i, c) in cols.iter_mut().enumerate() {
                    match i {
                        1 => *c = self.members.label_hex(c),
                        2 => *c = "<VERSION>".into(),
                        3 => *c = "<SIZE>".into(),
                        6..=8 => *c = "<N>".into(),
                        _ => {}
                    }
                }
            }
            out.push(cols.join(", "));
        }
        out.join("\n") + if t.ends_with('\n') { "\n" } else { "" }
    }

    /// Validate and normalise every table block in `t`.
    fn tables(&mut self, t: &str) -> String {
        let lines: Vec<&str> = t.lines().collect();
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            if !lines[i].starts_with('+') {
                out.push(lines[i].to_string());
                i += 1;
                continue;
            }
            let start = i;
            while i < lines.len() && (lines[i].starts_with('+') || lines[i].starts_with('|')) {
                i += 1;
            }
            let block = &lines[start..i];
            out.push(self.table_block(block));
        }
        out.join("\n") + if t.ends_with('\n') { "\n" } else { "" }
    }

    fn table_block(&mut self, block: &[&str]) -> String {
        let raw = block.join("\n");
        let rows: Vec<Vec<String>> = block
            .iter()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.trim_start_matches('|').trim_end_matches('|').split('|').map(|c| c.trim().to_string()).collect())
            .collect();
        if rows.is_empty() || render_table(&rows) != raw {
            return format!("{raw}\n<table layout differs from etcd's tablewriter layout>");
        }
        let header = rows[0].clone();
        let mut norm = vec![header.clone()];
        for row in &rows[1..] {
            let mut r = row.clone();
            for (c, h) in r.iter_mut().zip(header.iter()) {
                *c = self.replace_common(c);
                match h.as_str() {
                    "ID" => *c = self.members.label_hex(c),
                    "VERSION" => *c = "<VERSION>".into(),
                    "DB SIZE" => *c = "<SIZE>".into(),
                    "TOOK" => *c = "<T>".into(),
                    "RAFT TERM" | "RAFT INDEX" | "RAFT APPLIED INDEX" => *c = "<N>".into(),
                    _ => {}
                }
            }
            norm.push(r);
        }
        render_table(&norm)
    }

    /// `lease list`: etcd returns leases in map order; sort the (already labelled) ids.
    fn lease_list(&self, t: &str, fmt: &str) -> String {
        match fmt {
            "simple" => {
                let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
                if lines.len() > 1 {
                    // First line is "found N leases"; the rest are hex ids.
                    let mut ids: Vec<String> = lines[1..]
                        .iter()
                        .map(|l| {
                            u64::from_str_radix(l, 16)
                                .ok()
                                .and_then(|v| self.leases.map.get(&v).cloned())
                                .unwrap_or_else(|| format!("<unknown lease {l}>"))
                        })
                        .collect();
                    ids.sort();
                    lines.truncate(1);
                    lines.extend(ids);
                }
                lines.join("\n") + if t.ends_with('\n') { "\n" } else { "" }
            }
            "fields" => {
                let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
                let idx: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].starts_with("\"ID\" : ")).collect();
                let mut vals: Vec<String> = idx.iter().map(|&k| lines[k].clone()).collect();
                vals.sort();
                for (k, v) in idx.into_iter().zip(vals) {
                    lines[k] = v;
                }
                lines.join("\n") + if t.ends_with('\n') { "\n" } else { "" }
            }
            "json" => {
                static LEASES: LazyLock<Regex> = LazyLock::new(|| re(r#""leases":\[((?:\{"id":[^}]*\},?)*)\]"#));
                LEASES
                    .replace_all(t, |c: &Captures| {
                        let inner = &c[1];
                        let mut items: Vec<String> = inner
                            .split("},")
                            .map(|s| s.trim_end_matches('}').to_string() + "}")
                            .filter(|s| s != "}")
                            .collect();
                        items.sort();
                        format!("\"leases\":[{}]", items.join(","))
                    })
                    .into_owned()
            }
            _ => t.to_string(),
        }
    }
}

/// `lease timetolive --keys`: etcd lists attached keys in Go map order; sort them.
fn sort_attached_keys(t: &str) -> String {
    static SIMPLE: LazyLock<Regex> = LazyLock::new(|| re(r"attached keys\(\[([^\]]*)\]\)"));
    static JSON: LazyLock<Regex> = LazyLock::new(|| re(r#""keys":\[([^\]]*)\]"#));
    let t = SIMPLE.replace_all(t, |c: &Captures| {
        let mut keys: Vec<&str> = c[1].split(' ').collect();
        keys.sort();
        format!("attached keys([{}])", keys.join(" "))
    });
    let t = JSON.replace_all(&t, |c: &Captures| {
        let mut keys: Vec<&str> = c[1].split(',').collect();
        keys.sort();
        format!("\"keys\":[{}]", keys.join(","))
    });
    // -w fields: consecutive "Key" : "..." lines.
    let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
    let idx: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].starts_with("\"Key\" : ")).collect();
    let mut vals: Vec<String> = idx.iter().map(|&k| lines[k].clone()).collect();
    vals.sort();
    for (k, v) in idx.into_iter().zip(vals) {
        lines[k] = v;
    }
    lines.join("\n") + if t.ends_with('\n') { "\n" } else { "" }
}

/// Shell-like rendering of a command line (quotes empty args and args with spaces).
fn display_args(args: &[&str]) -> String {
    args.iter()
        .map(|a| if a.is_empty() || a.contains(' ') { format!("'{a}'") } else { a.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Render a table the way etcdctl 3.4's tablewriter does (centred header, right-aligned cells).
pub fn render_table(rows: &[Vec<String>]) -> String {
    let ncol = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncol];
    for r in rows {
        for (k, c) in r.iter().enumerate() {
            widths[k] = widths[k].max(c.chars().count());
        }
    }
    let border = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    };
    let mut out = vec![border.clone()];
    for (ri, r) in rows.iter().enumerate() {
        let mut s = String::from("|");
        for (k, w) in widths.iter().enumerate() {
            let c = r.get(k).map(String::as_str).unwrap_or("");
            let pad = w - c.chars().count();
            let (l, rt) = if ri == 0 { (pad / 2, pad - pad / 2) } else { (pad, 0) };
            s.push(' ');
            s.push_str(&" ".repeat(l));
            s.push_str(c);
            s.push_str(&" ".repeat(rt));
            s.push_str(" |");
        }
        out.push(s);
        if ri == 0 {
            out.push(border.clone());
        }
    }
    out.push(border);
    out.join("\n")
}

/// One server's scripted etcdctl session.
pub struct Session<'a> {
    /// The server under the session.
    pub server: &'a Server,
    /// A scratch directory (`{DIR}` in command templates).
    pub scratch: PathBuf,
    norm: Normaliser,
    transcript: String,
    failures: Vec<String>,
}

/// Collected result of one session.
pub struct SessionResult {
    /// The normalised transcript.
    pub transcript: String,
    /// Failed absolute expectations (`Session::expect`).
    pub failures: Vec<String>,
}

impl<'a> Session<'a> {
    /// A new session against `server`.
    pub fn new(server: &'a Server) -> Session<'a> {
        let scratch = server.dir().join("scratch");
        std::fs::create_dir_all(&scratch).expect("scratch dir");
        let norm = Normaliser::new(server, &scratch.display().to_string());
        Session { server, scratch, norm, transcript: String::new(), failures: Vec::new() }
    }

    /// The server kind.
    pub fn kind(&self) -> Kind {
        self.server.kind()
    }

    /// Substitute `{DIR}` and lease labels (`<L1>`...) in a template argument.
    pub fn expand(&self, arg: &str) -> String {
        let mut a = arg.replace("{DIR}", &self.scratch.display().to_string());
        while let Some(start) = a.find("<L") {
            let Some(len) = a[start..].find('>') else {
                break;
            };
            let label = &a[start..start + len + 1];
            let Some(id) = self.norm.leases.id_of(label) else {
                break;
            };
            // etcdctl prints lease ids as %016x.
            a = a.replacen(label, &format!("{id:016x}"), 1);
        }
        a
    }

    fn exec(&mut self, args: &[&str], stdin: Option<&[u8]>, record: bool) -> Output {
        let expanded: Vec<String> = args.iter().map(|a| self.expand(a)).collect();
        let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
        let out = etcdctl(&self.server.endpoint(), &refs, stdin);
        if record {
            let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let mut entry = format!("$ etcdctl {}\n", display_args(args));
            if let Some(input) = stdin {
                if input.len() <= 512 {
                    for l in String::from_utf8_lossy(input).lines() {
                        entry.push_str(&format!("< {l}\n"));
                    }
                } else {
                    entry.push_str(&format!("< ({} bytes of input)\n", input.len()));
                }
            }
            entry.push_str(&self.norm.normalise(&owned, &out.stdout));
            if !out.stdout.is_empty() && !out.stdout.ends_with('\n') {
                entry.push_str("⏎(no newline at end of stdout)\n");
            }
            if !out.stderr.is_empty() {
                entry.push_str("[stderr]\n");
                entry.push_str(&self.norm.normalise(&owned, &out.stderr));
                if !out.stderr.ends_with('\n') {
                    entry.push('\n');
                }
            }
            entry.push_str(&format!("[exit {}]\n", out.code));
            self.transcript.push_str(&entry);
        }
        out
    }

    /// Run `etcdctl <args>` and record it (args may use `{DIR}` and lease labels like `<L1>`).
    pub fn run(&mut self, args: &[&str]) -> Output {
        self.exec(args, None, true)
    }

    /// Run with `stdin` and record it.
    pub fn run_stdin(&mut self, args: &[&str], stdin: &[u8]) -> Output {
        self.exec(args, Some(stdin), true)
    }

    /// Run without recording (for polling loops whose iteration count is timing dependent).
    pub fn run_quiet(&mut self, args: &[&str]) -> Output {
        self.exec(args, None, false)
    }

    /// `lease grant <ttl>` (recorded); returns the lease's label (`<L1>`, ...), usable in args.
    pub fn grant(&mut self, ttl: u32) -> String {
        let out = self.run(&["lease", "grant", &ttl.to_string()]);
        let hex = out.stdout.split_whitespace().nth(1).unwrap_or("").to_string();
        match u64::from_str_radix(&hex, 16) {
            Ok(id) if out.ok() => self.norm.leases.label(id),
            _ => {
                self.expect(false, format!("lease grant {ttl} failed: {out:?}"));
                "<L?>".into()
            }
        }
    }

    /// Keys `name/<lease id in hex>` (lock waiters, election candidates) show the lease's label instead of its id.
    pub fn lease_keys_under(&mut self, name: &str) {
        let pattern = re(&format!(r"{}/([0-9a-f]{{1,16}})\b", regex::escape(name)));
        self.norm.lease_key_names.push((name.to_string(), pattern));
    }

    /// The actual (hex) id behind a lease label.
    pub fn lease_hex(&self, label: &str) -> String {
        self.expand(label)
    }

    /// Add a free-form line to the transcript.
    pub fn note(&mut self, text: &str) {
        self.transcript.push_str(&format!("# {text}\n"));
    }

    /// Record an absolute expectation (checked against etcd's known behaviour on both servers).
    pub fn expect(&mut self, cond: bool, what: impl Into<String>) {
        if !cond {
            self.failures.push(format!("[{}] {}", self.server.kind().label(), what.into()));
        }
    }

    /// Start `etcdctl <args>` (e.g. a watch) in the background.
    pub fn spawn(&mut self, args: &[&str]) -> WatchProc {
        let expanded: Vec<String> = args.iter().map(|a| self.expand(a)).collect();
        let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
        WatchProc::spawn(&self.server.endpoint(), &refs)
    }

    /// Collect `n` lines from a background etcdctl (deadline 15 s), kill it and record the lines
    /// (under the command template `args`).  Returns the raw lines.
    pub fn collect(&mut self, mut w: WatchProc, args: &[&str], n: usize) -> Vec<String> {
        let mut lines = w.wait_lines(n, Duration::from_secs(15));
        let got = lines.len();
        let (rest, stderr, code) = w.kill();
        lines.extend(rest);
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut entry = format!("$ etcdctl {} &  (background; {n} lines expected)\n", display_args(args));
        let body = lines.join("\n") + if lines.is_empty() { "" } else { "\n" };
        entry.push_str(&self.norm.normalise(&owned, &body));
        if got < n {
            entry.push_str(&format!("<only {got} of {n} lines before the deadline>\n"));
        }
        if !stderr.is_empty() {
            entry.push_str("[stderr]\n");
            entry.push_str(&self.norm.normalise(&owned, &stderr));
            if !stderr.ends_with('\n') {
                entry.push('\n');
            }
        }
        if code != -1 {
            entry.push_str(&format!("[exited by itself: {code}]\n"));
        }
        self.transcript.push_str(&entry);
        lines
    }

    /// Wait (at most `deadline`) for a background etcdctl to exit by itself, and record everything it printed
    /// and its exit code (under the command template `args`). Returns its stdout lines.
    pub fn finish_background(&mut self, w: WatchProc, args: &[&str], deadline: Duration) -> Vec<String> {
        self.finish_background_after(w, args, Vec::new(), deadline)
    }

    /// As [`Session::finish_background`], for a background etcdctl whose first lines, `printed`, the caller has
    /// already read (to know it got that far before signalling it); they head the record.
    pub fn finish_background_after(
        &mut self,
        mut w: WatchProc,
        args: &[&str],
        printed: Vec<String>,
        deadline: Duration,
    ) -> Vec<String> {
        let code = w.wait_exit(deadline);
        // Once etcdctl exited its stdout is closed; the reader hands over the rest and stops.
        let lines = w.wait_lines(usize::MAX, Duration::from_secs(5));
        let (rest, stderr, _) = w.kill();
        let lines: Vec<String> = printed.into_iter().chain(lines).chain(rest).collect();
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut entry = format!("$ etcdctl {} &  (background, until it exits)\n", display_args(args));
        let body = lines.join("\n") + if lines.is_empty() { "" } else { "\n" };
        entry.push_str(&self.norm.normalise(&owned, &body));
        if !stderr.is_empty() {
            entry.push_str("[stderr]\n");
            entry.push_str(&self.norm.normalise(&owned, &stderr));
            if !stderr.ends_with('\n') {
                entry.push('\n');
            }
        }
        match code {
            Some(code) => entry.push_str(&format!("[exit {code}]\n")),
            None => entry.push_str(&format!("<still running after {deadline:?}; killed>\n")),
        }
        self.transcript.push_str(&entry);
        lines
    }

    /// Finish the session.
    pub fn finish(self) -> SessionResult {
        SessionResult { transcript: self.transcript, failures: self.failures }
    }
}

/// Run `script` against a fresh etcd and a fresh subject (in parallel) and assert that the
/// normalised transcripts are identical and that every absolute expectation held on both.
pub fn differential(test: &str, script: impl Fn(&mut Session) + Sync) {
    differential_with_args(test, &[], script)
}

/// As [`differential`], with both servers started with `args` (flags etcd and Meridian name alike).
pub fn differential_with_args(test: &str, args: &[&str], script: impl Fn(&mut Session) + Sync) {
    let subject_kind = Kind::subject();
    let run_one = |kind: Kind| {
        let server = Server::start_with_args(kind, args);
        let mut s = Session::new(&server);
        script(&mut s);
        let result = s.finish();
        (server, result)
    };
    let (reference, subject) = thread::scope(|sc| {
        let a = sc.spawn(|| run_one(Kind::Etcd));
        let b = sc.spawn(|| run_one(subject_kind));
        (a.join(), b.join())
    });
    let (ref_server, ref_result) = match reference {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e),
    };
    let (sub_server, sub_result) = match subject {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e),
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat-transcripts");
    std::fs::create_dir_all(&dir).ok();
    let ref_path = dir.join(format!("{test}.etcd.txt"));
    let sub_path = dir.join(format!("{test}.{}.txt", subject_kind.label()));
    std::fs::write(&ref_path, &ref_result.transcript).ok();
    std::fs::write(&sub_path, &sub_result.transcript).ok();

    let mut problems = String::new();
    if !ref_result.failures.is_empty() || !sub_result.failures.is_empty() {
        problems.push_str("absolute expectations failed:\n");
        for f in ref_result.failures.iter().chain(sub_result.failures.iter()) {
            problems.push_str(&format!("  {f}\n"));
        }
    }
    if ref_result.transcript != sub_result.transcript {
        problems.push_str(&format!(
            "etcdctl transcripts differ (full transcripts: {} and {}):\n{}",
            ref_path.display(),
            sub_path.display(),
            line_diff(&ref_result.transcript, &sub_result.transcript, "etcd 3.4 (reference)", subject_kind.label())
        ));
    }
    if !problems.is_empty() {
        // Keep both servers alive until here so their logs are printed by Drop during the panic.
        let _keep = (&ref_server, &sub_server);
        panic!("{test}: {problems}");
    }
}
