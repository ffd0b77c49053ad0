//! A full disk degrades a member, it does not kill it. The data dir lives on a small tmpfs the test mounts;
//! another "tenant" (a filler file) takes the free space below the member's reserve. The member must refuse
//! writes with etcd's NOSPACE error and raise the alarm, keep serving reads, take writes again by itself once
//! the filler is gone, and lose no acknowledged write. Restarted on a disk with no space at all, it either serves
//! reads with the alarm up or exits with one line saying what is full.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Kind, Server, poll_until};

/// The tmpfs's size and the member's reserve.
const DISK_BYTES: u64 = 96 << 20;
const RESERVE_BYTES: u64 = 32 << 20;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::Builder::new().prefix("meridian-tmpfs-").tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs (it needs CAP_SYS_ADMIN, as CI's root has): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free on it, as `df` reports them.
    fn free(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(self.path()).output().expect("df");
        String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df output")
    }

    /// Writes a filler file until at most `leave` bytes are free (or the disk is full); returns its path.
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("filler");
        let chunk = vec![0xa5u8; 1 << 20];
        // Bounded: one chunk per MiB the disk can hold, and a few more.
        for _ in 0..(DISK_BYTES >> 20) + 8 {
            if self.free() <= leave {
                break;
            }
            let want = (self.free() - leave).min(chunk.len() as u64) as usize;
            if file.write_all(&chunk[..want.max(4096)]).is_err() {
                break;
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn keys(server: &Server) -> Vec<String> {
    let out = server.etcdctl(&["get", "k", "--prefix", "--keys-only"]);
    assert!(out.ok(), "reads work: {out:?}");
    out.stdout.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn no_space(out: &common::Output) -> bool {
    !out.ok() && out.stderr.contains("etcdserver: mvcc: database space exceeded")
}

/// Puts `<prefix>-NNN` keys until one is refused with NOSPACE (up to 10 s). Until the member's next check of its
/// disk (once a second) a write may still be acknowledged: those join `acked`.
fn put_until_refused(server: &Server, prefix: &str, acked: &mut Vec<String>) -> bool {
    let mut attempt = 0;
    poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        attempt += 1;
        let key = format!("{prefix}-{attempt:03}");
        let out = server.etcdctl(&["put", &key, "x"]);
        if out.ok() {
            acked.push(key);
        }
        no_space(&out)
    })
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_resumes_by_itself() {
    let disk = Tmpfs::mount(DISK_BYTES);
    // The server's log stays off the small disk; only the data dir is on it.
    let dir = tempfile::Builder::new().prefix("meridian-full-disk-").tempdir().expect("tempdir");
    std::fs::create_dir(disk.path().join("data")).expect("data dir");
    std::os::unix::fs::symlink(disk.path().join("data"), dir.path().join("data")).expect("symlink");
    let mut server = Server::start_in(Kind::Meridian, dir, &["--disk-reserve-bytes", &RESERVE_BYTES.to_string()]);

    let value = "v".repeat(1024);
    let mut acked: Vec<String> = Vec::new();
    for i in 0..20 {
        let key = format!("k{i:02}");
        assert!(server.etcdctl(&["put", &key, &value]).ok());
        acked.push(key);
    }

    // Another tenant leaves less than the reserve free.
    let filler = disk.fill(RESERVE_BYTES / 2);
    let refused = put_until_refused(&server, "k-late", &mut acked);
    assert!(refused, "writes are refused with NOSPACE once the disk is below its reserve\n{}", server.log_tail(30));
    let alarms = server.etcdctl(&["alarm", "list"]);
    assert!(alarms.stdout.contains("alarm:NOSPACE"), "{alarms:?}");
    acked.sort();
    assert_eq!(keys(&server), acked, "linearizable reads go on and nothing acknowledged is lost");
    let serializable = server.etcdctl(&["get", "k00", "--consistency=s", "--print-value-only"]);
    assert_eq!(serializable.stdout.trim(), value);

    // The tenant goes away: the member takes writes again by itself.
    std::fs::remove_file(&filler).expect("remove filler");
    let resumed = poll_until(Duration::from_secs(15), Duration::from_millis(200), || {
        server.etcdctl(&["put", "k-after", "x"]).ok()
    });
    assert!(resumed, "writes resume once space is back\n{}", server.log_tail(30));
    acked.push("k-after".into());
    let alarms = server.etcdctl(&["alarm", "list"]);
    assert!(!alarms.stdout.contains("NOSPACE"), "the alarm raised for the disk is cleared: {alarms:?}");

    // No space at all, then a restart.
    server.kill9();
    let filler = disk.fill(0);
    match server.restart_or_exit() {
        Ok(()) => {
            let mut want = acked.clone();
            want.sort();
            assert_eq!(keys(&server), want, "restarted on a full disk, it serves what it has");
            let refused = put_until_refused(&server, "k-full", &mut acked);
            assert!(refused, "and refuses writes\n{}", server.log_tail(30));
            std::fs::remove_file(&filler).expect("remove filler");
        }
        Err(status) => {
            let log = server.log_tail(40);
            let start = log.rsplit("harness: start").next().unwrap_or("");
            let said: Vec<&str> = start.lines().filter(|l| l.starts_with("meridian: ")).collect();
            assert!(!status.success(), "{status}");
            assert!(
                said.len() == 1 && said[0].contains("is full") && said[0].contains("bytes free"),
                "one clear line says what is full and what is needed: {log}"
            );
            assert!(!start.contains("panicked") && !start.contains("backtrace"), "{start}");
            std::fs::remove_file(&filler).expect("remove filler");
            server.restart();
        }
    }
    let resumed =
        poll_until(Duration::from_secs(15), Duration::from_millis(200), || server.etcdctl(&["put", "k-end", "x"]).ok());
    assert!(resumed, "writes resume after the restart once space is back\n{}", server.log_tail(30));
    acked.push("k-end".into());
    let mut want = acked.clone();
    want.sort();
    assert_eq!(keys(&server), want, "every acknowledged write survived");
    drop(server);
}

#[test]
fn a_disk_that_fills_at_once_stops_the_raft_node_and_the_member_restarts_by_itself() {
    let disk = Tmpfs::mount(DISK_BYTES);
    let dir = tempfile::Builder::new().prefix("meridian-full-disk-").tempdir().expect("tempdir");
    std::fs::create_dir(disk.path().join("data")).expect("data dir");
    std::os::unix::fs::symlink(disk.path().join("data"), dir.path().join("data")).expect("symlink");
    // No reserve: nothing stops writes before the file system itself is full.
    let mut server = Server::start_in(Kind::Meridian, dir, &["--disk-reserve-bytes", "0"]);
    let value = vec![b'w'; 1 << 20];
    let mut acked: Vec<String> = Vec::new();
    assert!(common::etcdctl(&server.endpoint(), &["put", "k-before", "b"], None).ok(), "a write before the disk fills");
    acked.push("k-before".into());
    let filler = disk.fill(0);
    let mut failure = None;
    for i in 0..200 {
        let key = format!("k{i:03}");
        let out = common::etcdctl(&server.endpoint(), &["put", &key], Some(&value));
        if out.ok() {
            acked.push(key);
        } else {
            failure = Some(out);
            break;
        }
    }
    let failure = failure.expect("a full disk stops writes");
    assert!(!failure.stderr.contains("LogId {"), "no debug output reaches the client: {failure:?}");
    // While the disk stays full the member answers serializable reads from what it applied.
    let readable = poll_until(Duration::from_secs(10), Duration::from_millis(250), || {
        let out = server.etcdctl(&["get", "k-before", "--consistency=s", "--print-value-only"]);
        out.ok() && out.stdout.trim() == "b"
    });
    assert!(readable, "serializable reads go on while the disk is full\n{}", server.log_tail(40));
    // So do linearizable ones: as the only voter, what it applied is all that was ever acknowledged.
    let linearizable = server.etcdctl(&["get", "k-before", "--print-value-only"]);
    assert!(linearizable.ok() && linearizable.stdout.trim() == "b", "linearizable reads go on: {linearizable:?}");
    std::fs::remove_file(&filler).expect("remove filler");
    let resumed = poll_until(Duration::from_secs(30), Duration::from_millis(250), || {
        common::etcdctl(&server.endpoint(), &["put", "k-after", "x"], None).ok()
    });
    assert!(resumed, "the member restarts by itself once space is back\n{}", server.log_tail(40));
    acked.push("k-after".into());
    acked.sort();
    assert_eq!(keys(&server), acked, "no acknowledged write was lost");
    let log = server.log_tail(200);
    assert!(log.contains("the disk filled up and the Raft node stopped"), "it was the restart in place: {log}");
    assert!(!log.contains("harness: start #2"), "the same process, never started again by the test");
    server.kill9();
}

#[test]
fn a_start_on_a_full_disk_says_so_in_one_line() {
    let disk = Tmpfs::mount(8 << 20);
    disk.fill(0);
    let port = |_| common::free_port().to_string();
    let (client, peer) = (port(0), port(1));
    // Bounded: a server that started after all would be stopped after 20 s (exit 124).
    let out = Command::new("timeout")
        .args(["20", env!("CARGO_BIN_EXE_meridian"), "server", "--data-dir"])
        .arg(disk.path().join("data"))
        .args(["--listen-client", &format!("http://127.0.0.1:{client}"), "--listen-peer"])
        .arg(format!("http://127.0.0.1:{peer}"))
        .env("MERIDIAN_LOG", "off")
        .output()
        .expect("run meridian server");
    assert!(!out.status.success(), "it cannot start: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("meridian: cannot start: the file system holding")
            && lines[0].contains("is full (0 bytes free)")
            && lines[0].contains("67108864 bytes free"),
        "{stderr}"
    );
}

/// A follower whose disk fills up at once stops its Raft node. It raises NOSPACE through the leader, so the cluster
/// refuses writes that add data; its clients' linearizable reads are answered by another member (its own state is
/// frozen), so they see a delete the cluster acknowledged after it stopped; once space is back it starts again in
/// place, catches up, clears its alarm, and writes work again.
#[test]
fn a_follower_stopped_by_a_full_disk_raises_nospace_and_still_answers_linearizable_reads() {
    use common::cluster::{Cluster, Options, voter};

    let mut opts = Options::preset("lan");
    opts.leader_preference = vec!["dc-a".into()];
    // No reserve: nothing stops writes before the file system itself is full.
    opts.extra_args = vec!["--disk-reserve-bytes".into(), "0".into()];
    let mut cluster = Cluster::start_with(&[voter("a1", "dc-a"), voter("b1", "dc-b"), voter("c1", "dc-c")], &opts);
    let (a1, c1) = (cluster.index("a1"), cluster.index("c1"));
    cluster.wait_admin_leader_in("dc-a", Duration::from_secs(30));

    // c1's data dir moves onto a small tmpfs.
    let disk = Tmpfs::mount(DISK_BYTES);
    cluster.kill9(c1);
    let data = cluster.data_dir(c1);
    let moved = Command::new("cp").arg("-a").arg(&data).arg(disk.path().join("data")).status().expect("cp");
    assert!(moved.success());
    std::fs::remove_dir_all(&data).expect("remove old data dir");
    std::os::unix::fs::symlink(disk.path().join("data"), &data).expect("symlink");
    cluster.spawn(c1);
    let (a1_ep, c1_ep) = (cluster.nodes[a1].endpoint(), cluster.nodes[c1].endpoint());
    let back = poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
        common::etcdctl(&c1_ep, &["put", "k-before", "b"], None).ok()
    });
    assert!(back, "c1 is back\n{}", cluster.log_tails(30));
    let mut acked = vec!["k-before".to_owned()];

    // Another tenant takes all of c1's disk; writes through a1 go on (a1 and b1 are a majority) until c1's next log
    // append fails, its Raft node stops, and its alarm reaches the cluster.
    let filler = disk.fill(0);
    let value = vec![b'w'; 256 << 10];
    let refused = poll_until(Duration::from_secs(60), Duration::from_millis(10), || {
        let key = format!("k{:03}", acked.len());
        let out = common::etcdctl(&a1_ep, &["put", &key], Some(&value));
        if out.ok() {
            acked.push(key);
        }
        no_space(&out)
    });
    assert!(refused, "the cluster refuses writes once c1's disk is full\n{}", cluster.log_tails(30));
    assert!(cluster.log(c1).contains("the disk filled up and the Raft node stopped"), "{}", cluster.log_tails(30));
    let alarms = common::etcdctl(&a1_ep, &["alarm", "list"], None);
    assert!(alarms.stdout.contains("alarm:NOSPACE"), "{alarms:?}");
    let through_c1 = common::etcdctl(&c1_ep, &["put", "k-refused", "x"], None);
    assert!(no_space(&through_c1), "writes through c1 get etcd's error: {through_c1:?}");

    // Deletes go on under the alarm. Through c1, a linearizable read sees the delete acknowledged after c1
    // stopped; a serializable one answers from what c1 applied, which still has the key.
    assert!(common::etcdctl(&a1_ep, &["del", "k-before"], None).ok());
    acked.retain(|k| k != "k-before");
    let read = common::etcdctl(&c1_ep, &["get", "k-before", "--keys-only"], None);
    assert!(read.ok() && read.stdout.trim().is_empty(), "{read:?}\n{}", cluster.log_tails(30));
    let serializable = common::etcdctl(&c1_ep, &["get", "k-before", "--consistency=s", "--print-value-only"], None);
    assert!(serializable.ok() && serializable.stdout.trim() == "b", "{serializable:?}");

    // Space is back: c1 starts again in place, catches up with everything acknowledged and clears its alarm.
    std::fs::remove_file(&filler).expect("remove filler");
    let resumed = poll_until(Duration::from_secs(60), Duration::from_millis(250), || {
        common::etcdctl(&c1_ep, &["put", "k-after", "x"], None).ok()
    });
    assert!(resumed, "writes work again once c1 has room\n{}", cluster.log_tails(30));
    acked.push("k-after".into());
    acked.sort();
    let out = common::etcdctl(&c1_ep, &["get", "k", "--prefix", "--keys-only"], None);
    let keys: Vec<String> = out.stdout.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
    assert_eq!(keys, acked, "every acknowledged write is there");
    assert!(cluster.log(c1).contains("space is back; starting the member again"), "{}", cluster.log_tails(30));
    for i in 0..cluster.nodes.len() {
        cluster.kill9(i);
    }
}
