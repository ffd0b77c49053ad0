//! A [`HookRunner`] that calls nothing: it records each call and answers as it was told (acknowledge, fail, or
//! never finish), so the simulation and tests can run failover groups without sockets or processes.

use std::collections::VecDeque;
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

/// How a scripted call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The hook acknowledges.
    Ack,
    /// The hook answers with a failure (HTTP 503).
    Fail,
    /// The hook never answers (its timeout must abandon it).
    Hang,
}

/// Records every call; answers from a script, then acknowledges.
#[derive(Clone, Default)]
pub struct RecordingHooks {
    calls: Arc<Mutex<Vec<RecordedCall>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl RecordingHooks {
    /// A runner that acknowledges every call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers the next calls with `answers`, in order, then acknowledges.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().extend(answers);
    }

    /// Every call so far, in order (a call abandoned by its timeout included).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().clone()
    }
}

#[async_trait::async_trait]
impl HookRunner for RecordingHooks {
    async fn call(&self, hook: &Hook, call: &HookCall) -> Result<(), HookError> {
        self.calls.lock().push(RecordedCall { hook: hook.clone(), call: call.clone() });
        let answer = self.script.lock().pop_front().unwrap_or(Answer::Ack);
        match answer {
            Answer::Ack => Ok(()),
            Answer::Fail => Err(HookError::Status(503)),
            Answer::Hang => std::future::pending().await,
        }
    }
}
