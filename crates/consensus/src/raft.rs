//! The openraft instance every driver of this crate talks to, named once.

use crate::state_machine::StateMachine;
use crate::types::TypeConfig;

/// openraft over this crate's types and state machine.
pub(crate) type Raft = openraft::Raft<TypeConfig, StateMachine>;
