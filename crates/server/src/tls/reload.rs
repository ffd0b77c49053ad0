//! Rotation without restart: the member's certificate, key and CA files are re-read when their contents change
//! (a poll every few seconds, and on demand, e.g. on SIGHUP). New connections use the new configuration;
//! established ones keep the one they were made with. A bad new file keeps the old configuration and logs an
//! error once per distinct bad content.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use super::config::TlsSettings;
use super::error::TlsError;
use super::material::{FileContents, TlsMaterial, read_files};
use super::verifier::PeerHosts;
use crate::error_chain::chain;

/// How often the files are checked for changes.
pub const POLL_EVERY: Duration = Duration::from_secs(3);

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The files are as last loaded (or as last refused).
    Unchanged,
    /// New files are in use.
    Changed,
    /// The new files were refused; the old configuration stays.
    Refused(String),
}

/// The current TLS configuration of a member and the files it came from.
pub struct TlsReloader {
    settings: TlsSettings,
    hosts: Arc<dyn PeerHosts>,
    current: RwLock<Arc<TlsMaterial>>,
    /// Digest of the files last loaded or last refused, so an unchanged file is neither rebuilt nor re-reported.
    seen: Mutex<[u8; 32]>,
}

fn digest(files: &FileContents) -> [u8; 32] {
    let mut hash = Sha256::new();
    for (path, bytes) in files {
        hash.update(path.as_os_str().as_encoded_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hash.finalize().into()
}

impl TlsReloader {
    /// Loads the files of `settings`; any problem is a startup error.
    pub fn load(settings: TlsSettings, hosts: Arc<dyn PeerHosts>) -> Result<Self, TlsError> {
        let files = read_files(&settings)?;
        let material = TlsMaterial::build(&settings, &files, hosts.clone())?;
        Ok(TlsReloader { settings, hosts, current: RwLock::new(Arc::new(material)), seen: Mutex::new(digest(&files)) })
    }

    /// The settings the files come from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<TlsMaterial> {
        self.current.read().clone()
    }

    /// Re-reads the files and switches to them if they changed and are good.
    pub fn reload(&self) -> Reloaded {
        let mut seen = self.seen.lock();
        let outcome = read_files(&self.settings).and_then(|files| {
            let d = digest(&files);
            if d == *seen {
                return Ok(None);
            }
            *seen = d;
            TlsMaterial::build(&self.settings, &files, self.hosts.clone()).map(Some)
        });
        match outcome {
            Ok(None) => Reloaded::Unchanged,
            Ok(Some(material)) => {
                *self.current.write() = Arc::new(material);
                tracing::info!("TLS certificate files changed: new connections use them");
                Reloaded::Changed
            }
            Err(e) => {
                let why = chain(&e);
                // A missing or unreadable file is reported at every poll until fixed: it has no digest to remember.
                tracing::error!(error = %why, "TLS files not reloaded; the previous certificates stay in use");
                Reloaded::Refused(why)
            }
        }
    }

    /// Polls the files every `every` until the task is dropped.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.reload();
        }
    }
}
