//! A [`HookRunner`] that calls nothing: it records each call and acknowledges it, so the simulation (and tests
//! that are about something else) run failover groups without sockets or processes.

use std::sync::Arc;

use meridian_failover::HookCall;
use meridian_types::Hook;
use parking_lot::Mutex;

use super::{HookError, HookRunner};

/// One call a [`RecordingHooks`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedCall {
    /// The hook called.
    pub hook: Hook,
    /// What it was told.
    pub call: HookCall,
}

/// Records every call and acknowledges it.
#[derive(Clone, Default)]
pub struct RecordingHooks {
    calls: Arc<Mutex<Vec<RecordedCall>>>,
}

impl RecordingHooks {
    /// A runner with no calls yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().clone()
    }
}

#[async_trait::async_trait]
impl HookRunner for RecordingHooks {
    async fn call(&self, hook: &Hook, call: &HookCall) -> Result<(), HookError> {
        self.calls.lock().push(RecordedCall { hook: hook.clone(), call: call.clone() });
        Ok(())
    }
}
