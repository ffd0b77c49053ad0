//! What the server's integration tests share.

use std::path::Path;

use meridian_server::ServerConfig;

/// A single member called "solo" on `dir`, listening on loopback ports the OS picks.
pub fn solo(dir: &Path) -> ServerConfig {
    ServerConfig {
        name: "solo".into(),
        data_dir: dir.to_path_buf(),
        listen_client: "http://127.0.0.1:0".into(),
        listen_peer: "http://127.0.0.1:0".into(),
        ..Default::default()
    }
}
