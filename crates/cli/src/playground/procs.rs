//! The child processes the playground starts: spawned with their output in a log file, watched for early
//! exits, and always killed by PID and reaped, also when the playground unwinds on an error.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::Context;

/// One started member process.
pub struct Proc {
    /// Member name.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Child,
}

/// Every process started so far; dropping it stops them all.
#[derive(Default)]
pub struct Fleet {
    procs: Vec<Proc>,
}

impl Fleet {
    /// Starts `cmd` for member `name`, output appended to `log`. The child gets its own process group, so a
    /// Ctrl-C in the terminal reaches only the playground, which then stops the members itself.
    pub fn spawn(&mut self, name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<u32> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting member {name}"))?;
        let pid = child.id();
        self.procs.push(Proc { name: name.to_owned(), pid, log: log.to_path_buf(), child });
        Ok(pid)
    }

    /// The started processes.
    pub fn procs(&self) -> &[Proc] {
        &self.procs
    }

    /// The first member that has exited on its own, if any.
    pub fn first_exit(&mut self) -> Option<(String, PathBuf, ExitStatus)> {
        self.procs.iter_mut().find_map(|p| match p.child.try_wait() {
            Ok(Some(status)) => Some((p.name.clone(), p.log.clone(), status)),
            _ => None,
        })
    }

    /// Kills every process by its PID (SIGKILL: their data is thrown away anyway) and waits for each, so none
    /// is left running or as a zombie. Returns (name, pid) of each one stopped.
    pub fn stop_all(&mut self) -> Vec<(String, u32)> {
        let mut stopped = Vec::new();
        for mut p in self.procs.drain(..) {
            // An error means it already exited; waiting below reaps it either way.
            let _ = p.child.kill();
            if let Err(e) = p.child.wait() {
                eprintln!("playground: waiting for {} (pid {}): {e}", p.name, p.pid);
            }
            stopped.push((p.name, p.pid));
        }
        stopped
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The last `lines` lines of a log file, for error reports.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_all_kills_and_reaps_every_child() {
        let dir = tempfile::tempdir().unwrap();
        let mut fleet = Fleet::default();
        let mut sleeper = Command::new("sleep");
        sleeper.arg("300");
        let pid = fleet.spawn("s", sleeper, &dir.path().join("s.log")).unwrap();
        let mut quick = Command::new("sh");
        quick.args(["-c", "echo hello; exit 3"]);
        fleet.spawn("q", quick, &dir.path().join("q.log")).unwrap();
        // Poll (bounded) until the quick one is seen exiting.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let exited = loop {
            if let Some(e) = fleet.first_exit() {
                break e;
            }
            assert!(std::time::Instant::now() < deadline, "sh never exited");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!((exited.0.as_str(), exited.2.code()), ("q", Some(3)));
        assert_eq!(tail(&exited.1, 5), "hello");
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "sleep still running");
        let stopped = fleet.stop_all();
        assert_eq!(stopped.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["s", "q"]);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "sleep was killed and reaped");
    }
}
