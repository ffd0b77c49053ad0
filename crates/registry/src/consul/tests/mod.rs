//! Consul shapes against JSON written the way real clients send and expect it: python3-consul's lower-case
//! keys, Go clients' PascalCase, hand-written snake_case.

mod fuzz;
mod input;
mod output;

use meridian_types::{DcName, ZoneName};

use super::AgentContext;
use crate::name::NodeName;

fn ctx() -> AgentContext {
    AgentContext {
        node: NodeName::new("a1").unwrap(),
        node_address: "10.0.0.1".into(),
        dc: DcName::from("dc-a"),
        zone: Some(ZoneName::from("z1")),
        lease: None,
    }
}
