//! The files of a run: reading an earlier run's CAs back, and writing a [`CertBundle`] with private modes —
//! directories 0700, keys 0600, certificates 0644. Nothing is written if any file to be written exists and
//! `force` is off, so a refused run leaves the directory as it was; each file is written to a temporary file and
//! renamed over, so a server re-reading its files never sees half of one.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CertError;
use super::generate::{CaPems, CertBundle};
use super::paths::Paths;
use super::pem::{ExistingCa, PemPair};

/// Mode of every directory the writer creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every private key.
pub const KEY_MODE: u32 = 0o600;
/// Mode of every certificate.
pub const CERT_MODE: u32 = 0o644;

/// What happened to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Written where nothing was.
    Created,
    /// Written over an earlier file (`force`).
    Replaced,
    /// An existing CA file, used as it is.
    Kept,
}

/// One file of the run and what happened to it.
#[derive(Clone, Debug)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// What was done.
    pub action: Action,
}

/// The client CA and the peer CA of an earlier run in the output directory, if there are any. A CA with only
/// one of its two files is an error: making a new one silently would break trust with every certificate the
/// old one signed.
pub fn read_existing_cas(paths: &Paths) -> Result<(Option<ExistingCa>, Option<ExistingCa>), CertError> {
    Ok((read_ca(paths.client_ca())?, read_ca(paths.peer_ca())?))
}

fn read_ca((cert, key): (PathBuf, PathBuf)) -> Result<Option<ExistingCa>, CertError> {
    match (cert.exists(), key.exists()) {
        (false, false) => Ok(None),
        (true, false) => Err(CertError::HalfCa { present: cert, missing: key }),
        (false, true) => Err(CertError::HalfCa { present: key, missing: cert }),
        (true, true) => {
            let read = |path: &Path| {
                fs::read_to_string(path).map_err(|source| CertError::Io {
                    action: "reading",
                    path: path.into(),
                    source,
                })
            };
            let pems = PemPair { cert_pem: read(&cert)?, key_pem: read(&key)? };
            Ok(Some(ExistingCa { origin: cert.display().to_string(), pems }))
        }
    }
}

/// Writes `bundle` under `paths`, keeping reused CAs as they are. Refuses, naming the file and before writing
/// anything, to put a new CA over an existing one, and without `force` to write over any existing file.
pub fn write_bundle(paths: &Paths, bundle: &CertBundle, force: bool) -> Result<Vec<Written>, CertError> {
    let mut kept = Vec::new();
    let mut files: Vec<(PathBuf, &PemPair)> = Vec::new();
    for (ca, (cert, key)) in [(&bundle.client_ca, paths.client_ca()), (&bundle.peer_ca, paths.peer_ca())] {
        let CaPems { pems, reused } = ca;
        if *reused {
            kept.extend([cert, key].map(|path| Written { path, action: Action::Kept }));
        } else {
            files.push((cert, pems));
            files.push((key, pems));
        }
    }
    let first_leaf = files.len();
    for m in &bundle.members {
        for ((cert, key), pems) in [(paths.server(&m.name), &m.server), (paths.peer(&m.name), &m.peer)] {
            files.push((cert, pems));
            files.push((key, pems));
        }
    }
    for c in &bundle.clients {
        let (cert, key) = paths.client(&c.name);
        files.push((cert, &c.pems));
        files.push((key, &c.pems));
    }
    // A CA is never replaced, not even with `force`: everything it signed would stop being trusted.
    if let Some((path, _)) = files[..first_leaf].iter().find(|(path, _)| path.exists()) {
        return Err(CertError::CaExists(path.clone()));
    }
    if !force && let Some((path, _)) = files.iter().find(|(path, _)| path.exists()) {
        return Err(CertError::Exists(path.clone()));
    }

    create_dir(paths.dir())?;
    for m in &bundle.members {
        create_dir(&paths.member_dir(&m.name))?;
    }
    if !bundle.clients.is_empty() {
        create_dir(&paths.clients_dir())?;
    }
    let mut written = kept;
    // Pairs were listed certificate first; write each key before its certificate, so a reader that sees the new
    // certificate finds the new key already in place.
    for pair in files.chunks(2) {
        for (path, pems) in pair.iter().rev() {
            let is_key = path.extension().is_some_and(|e| e == "key");
            let (text, mode) = if is_key { (&pems.key_pem, KEY_MODE) } else { (&pems.cert_pem, CERT_MODE) };
            let action = if path.exists() { Action::Replaced } else { Action::Created };
            write_file(path, text, mode)?;
            written.push(Written { path: path.clone(), action });
        }
    }
    Ok(written)
}

/// Creates `dir` (and missing parents) with mode 0700; an existing directory keeps its mode.
fn create_dir(dir: &Path) -> Result<(), CertError> {
    if dir.is_dir() {
        return Ok(());
    }
    let io = |source| CertError::Io { action: "creating directory", path: dir.to_owned(), source };
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(io)?;
    // The umask may have taken bits away; it can never add any, but set the mode exactly anyway.
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(io)
}

/// Writes `text` to `path` with `mode`, through a temporary file in the same directory renamed over `path`.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), CertError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let io = |action, source| CertError::Io { action, path: path.to_owned(), source };
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(io("removing a stale temporary file for", e)),
        _ => {}
    }
    let result = (|| {
        // Created with the final mode: a key is never readable by others, not even for a moment.
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing", e));
    }
    Ok(())
}
