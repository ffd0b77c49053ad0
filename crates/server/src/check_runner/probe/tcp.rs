//! The TCP probe: connecting is passing.

use std::sync::Arc;

use meridian_registry::Outcome;
use meridian_registry::check::TcpCheck;

use crate::net::Network;

/// Connects to the check's target and closes the connection at once.
pub async fn probe(net: &Arc<dyn Network>, check: &TcpCheck) -> (Outcome, String) {
    match net.connect(check.target.clone()).await {
        Ok(conn) => {
            drop(conn);
            check.judge(Ok(()))
        }
        Err(e) => check.judge(Err(&e.to_string())),
    }
}
