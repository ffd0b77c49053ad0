//! The replicated auth store (etcd's users, roles and permissions) and the permission rules every request is
//! judged by. Changes arrive through the log as `Cmd::AuthChange` and are applied deterministically, passwords
//! already hashed by the member that took the request; the state is persisted under `kv/auth` and carried in
//! snapshots. Checks are pure functions of this state and the caller a command names ([`RequestAuth`]), so
//! every member, and the apply path, decide alike.
//!
//! [`RequestAuth`]: meridian_proto::meridianpb::RequestAuth

mod apply;
mod command;
mod permission;
mod state;

#[cfg(test)]
mod tests;

pub(crate) use command::check_command;
pub use command::needs_admin;
pub use permission::PermKind;
pub use state::{AuthStore, ROOT};
