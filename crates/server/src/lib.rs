//! The Meridian server: every listener and socket of one member. It serves the etcd v3 gRPC API over the
//! Raft node from `meridian-consensus`, fans applied events out to watchers, and runs the leader's lease
//! expiry loop. This is the only crate (with the CLI) that touches sockets, disks and the wall clock.

pub mod access;
pub mod admin;
pub mod auth;
pub mod auto_compact;
pub mod check_runner;
pub mod clock;
pub mod concurrency;
pub mod config;
pub mod consul_http;
pub mod data_dir;
pub mod discovery;
pub mod dns;
pub mod dns_settings;
pub mod error;
pub mod error_chain;
pub mod failover_catalog;
pub mod failover_groups;
pub mod fault;
pub mod formation;
pub mod gateway;
pub mod grpc;
pub mod h2_authority;
pub mod identity;
pub mod leader_loss;
pub mod lease;
pub mod lessor;
pub mod life_sockets;
pub mod member;
pub mod net;
pub mod peer_client;
pub mod peer_service;
pub mod placement;
pub mod planted;
pub mod prober;
pub mod publish;
pub mod quota;
pub mod reach_state;
pub mod restart_in_place;
pub mod run;
mod running;
mod server_env;
pub mod space_watch;
pub mod stopped_member;
pub mod tls;
pub mod verdicts;
pub mod watch_hub;

pub use config::ServerConfig;
pub use error::{Error, Result};
pub use run::{RunningServer, ServerEnv, start, start_in};
