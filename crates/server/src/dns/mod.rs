//! Discovery over DNS (issue 26 part 5), as Consul serves it on port 8600: `<service>.service[.<dc>].<domain>`
//! (A, AAAA, SRV), `<tag>.<service>.service…`, RFC 2782 `_<service>._tcp.service…` (and `_<service>._<tag>`),
//! `<node>.node[.<dc>].<domain>`, and the `<hex>.addr…` names SRV targets use. Only healthy instances answer
//! (passing, and warning unless `dns_only_passing`), nearest first for where the client is, failing over to the
//! next tier when the nearest has none ([`meridian_registry::rank`]).
//!
//! DNS has no TLS and no authentication here: anyone who reaches the port can read every service's addresses.
//! It listens on loopback by default; beyond loopback it needs `insecure_allow_remote`, like every plain
//! listener.
//!
//! Modules, bottom up, all pure but the last two: [`name`] (query name → [`name::Lookup`]), [`locality`] (which
//! datacenter and zone a client is in: zone map, EDNS Client Subnet), [`records`] (a lookup → the records of an
//! [`records::Answer`]), [`respond`] (request bytes → response message: flags, NXDOMAIN/NODATA, EDNS,
//! truncation), [`limit`] (per-source token buckets), [`cache`] (answers per name, type and locality, dropped
//! when the catalog moves), [`server`] (hickory-server's UDP and TCP listeners around them).

pub mod cache;
pub mod limit;
pub mod locality;
pub mod name;
pub mod records;
pub mod respond;
pub mod server;

pub use crate::dns_settings::{DEFAULT_LISTEN, DEFAULT_RATE_LIMIT, DnsSettings, ZoneMap};
pub use server::{DnsServer, bind};
