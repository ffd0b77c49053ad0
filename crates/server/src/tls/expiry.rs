//! Certificate expiry: the rows admin `/status` and `/metrics` show, and the warning the server logs from
//! [`WARN_DAYS`] days before a certificate expires (at start, then daily). Wall-clock time: never runs in the
//! simulation, which sets no TLS.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::reload::TlsReloader;

/// Warn this many days ahead of expiry.
pub const WARN_DAYS: i64 = 30;
const DAY: Duration = Duration::from_secs(86_400);

/// One certificate in admin `/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// The file it was read from.
    pub file: String,
    /// `client` (client and admin listeners) or `peer`.
    pub role: String,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Whole days until then (negative once expired).
    pub days_left: i64,
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The certificates of `tls` at `now`.
pub fn report(tls: &TlsReloader, now: i64) -> Vec<CertificateStatus> {
    tls.current()
        .certificates
        .iter()
        .map(|c| CertificateStatus {
            file: c.file.clone(),
            role: c.role.to_owned(),
            not_after: c.not_after,
            days_left: (c.not_after - now).div_euclid(86_400),
        })
        .collect()
}

/// Logs a warning for every certificate within [`WARN_DAYS`] of expiry (or past it); returns how many.
pub fn warn_soon_expiring(tls: &TlsReloader, now: i64) -> usize {
    let soon: Vec<_> = report(tls, now).into_iter().filter(|c| c.days_left < WARN_DAYS).collect();
    for c in &soon {
        tracing::warn!(file = %c.file, role = %c.role, days_left = c.days_left, not_after = c.not_after,
            "TLS certificate expires soon; replace the file (it is reloaded without a restart)");
    }
    soon.len()
}

/// Warns at start and then daily.
pub async fn warn_daily(tls: Arc<TlsReloader>) {
    let mut tick = tokio::time::interval(DAY);
    loop {
        tick.tick().await;
        warn_soon_expiring(&tls, unix_now());
    }
}
