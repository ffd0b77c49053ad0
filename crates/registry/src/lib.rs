//! Meridian's service registry, pure (WIP).

pub mod assign;
pub mod check;
pub mod consul;
mod error;
pub mod hash;
pub mod health;
pub mod instance;
pub mod keys;
pub mod machine;
pub mod name;
pub mod publish;
pub mod rank;
pub mod record;
pub mod status;
pub mod time;

pub use error::{Error, Result};
pub use record::{CheckRecord, Registration};
