//! One lazily connected, reused `tonic` channel per peer URL. A channel reconnects by itself after the peer
//! restarts, so the pool never needs invalidating; a member that changes its URL is a new member.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::config::is_https;
use crate::net::{Network, TcpNetwork, lazy_channel};
use crate::tls::TlsReloader;
use crate::tls::connector::tls_lazy_channel;
use crate::tls::identity::url_host;

/// Timeouts of peer connections, derived from the Raft election timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerTimeouts {
    /// Bound on establishing a TCP + HTTP/2 connection.
    pub connect: Duration,
    /// Bound on one forwarded client request (write, ReadIndex, lease call) at the leader.
    pub request: Duration,
}

impl PeerTimeouts {
    /// A connection that takes longer than an election timeout is as good as down (openraft retries on
    /// its own schedule); a forwarded request may wait for a commit during a leader change, so it gets
    /// several election timeouts, but never less than etcd's 5 s request timeout.
    pub fn from_election_ms(election_ms: u64) -> Self {
        PeerTimeouts {
            connect: Duration::from_millis(election_ms.max(100)),
            request: Duration::from_millis(election_ms.saturating_mul(5).max(5000)),
        }
    }
}

/// The channel pool.
pub struct PeerChannels {
    timeouts: PeerTimeouts,
    net: Arc<dyn Network>,
    tls: Option<Arc<TlsReloader>>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl PeerChannels {
    /// An empty pool dialling over TCP.
    pub fn new(timeouts: PeerTimeouts) -> Self {
        Self::over(timeouts, Arc::new(TcpNetwork))
    }

    /// An empty pool dialling over `net`.
    pub fn over(timeouts: PeerTimeouts, net: Arc<dyn Network>) -> Self {
        PeerChannels { timeouts, net, tls: None, channels: Mutex::new(HashMap::new()) }
    }

    /// Dials `https://` peer URLs with the peer TLS configuration of `tls`.
    pub fn with_tls(mut self, tls: Option<Arc<TlsReloader>>) -> Self {
        self.tls = tls;
        self
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> PeerTimeouts {
        self.timeouts
    }

    /// The channel to `url`, created (without connecting) on first use.
    pub fn get(&self, url: &str) -> Result<Channel, String> {
        let key = url.trim_end_matches('/');
        let mut channels = self.channels.lock();
        if let Some(ch) = channels.get(key) {
            return Ok(ch.clone());
        }
        // TLS is below tonic (in the connector), so tonic always sees http://.
        let https = is_https(key);
        let plain = if https { format!("http://{}", &key[8..]) } else { key.to_owned() };
        let endpoint = Endpoint::from_shared(plain)
            .map_err(|e| format!("bad peer URL {key}: {e}"))?
            .connect_timeout(self.timeouts.connect)
            .tcp_nodelay(true)
            // Notice a silently vanished peer (no RST, e.g. a partition) instead of waiting on TCP.
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(self.timeouts.connect.max(Duration::from_secs(1)))
            .keep_alive_while_idle(true);
        let channel = match (https, &self.tls) {
            (false, _) => lazy_channel(&self.net, endpoint),
            (true, Some(tls)) if tls.settings().peer.is_some() => {
                let host = url_host(key).ok_or_else(|| format!("bad peer URL {key}: no host"))?;
                tls_lazy_channel(&self.net, endpoint, tls.clone(), host)
            }
            (true, _) => return Err(format!("peer URL {key} is https:// but this member has no peer TLS configured")),
        };
        channels.insert(key.to_owned(), channel.clone());
        Ok(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channels_are_reused_per_url_and_bad_urls_rejected() {
        let pool = PeerChannels::new(PeerTimeouts::from_election_ms(1000));
        pool.get("http://127.0.0.1:1").unwrap();
        pool.get("http://127.0.0.1:1/").unwrap();
        pool.get("http://127.0.0.1:2").unwrap();
        assert_eq!(pool.channels.lock().len(), 2, "one channel per distinct URL");
        assert!(pool.get("not a url").is_err());
    }

    #[test]
    fn timeouts_follow_the_election_timeout() {
        let lan = PeerTimeouts::from_election_ms(1000);
        assert_eq!((lan.connect, lan.request), (Duration::from_secs(1), Duration::from_secs(5)));
        let wan = PeerTimeouts::from_election_ms(2500);
        assert_eq!((wan.connect, wan.request), (Duration::from_millis(2500), Duration::from_millis(12_500)));
    }
}
