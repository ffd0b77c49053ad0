//! The data directory's permissions: created private (0700) if missing; an existing one that group or others
//! may read is a startup warning, not an error (the operator may have reasons). Files the server creates there
//! are 0600 (see `meridian_consensus::OsDisk`).

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` with mode 0700 (parents included) when missing, or warns when it is open to group or others.
pub fn prepare(dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(dir = %dir.display(), mode = %format!("{mode:o}"),
                    "the data dir is accessible to group or others; chmod 700 it");
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_data_dir_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/data");
        prepare(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        prepare(&dir).unwrap();
    }
}
