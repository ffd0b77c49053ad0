//! Meridian's service registry, pure (WIP).

pub mod check;
mod error;
pub mod instance;
pub mod name;
pub mod status;
pub mod time;

pub use error::{Error, Result};
