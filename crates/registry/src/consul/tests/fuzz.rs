//! A bounded, seeded fuzz of the request decoders the HTTP API feeds with whatever a client sends: valid bodies
//! mutated byte by byte, cut short, spliced with JSON fragments and deeply nested. Every input must come back as
//! a model or as an error with a message (the 400 body), never a panic, and whatever is accepted must be valid.

use meridian_types::SplitMix64;

use super::ctx;
use crate::consul::{parse_check_register, parse_check_update, parse_register};

const SEEDS: [&str; 4] = [
    r#"{"Name":"web","ID":"web-1","Address":"10.0.0.2","Port":8080,"Tags":["a","b"],"Meta":{"v":"1"},
        "Check":{"HTTP":"http://10.0.0.2:8080/health","Interval":"5s","Timeout":"1s","DeregisterCriticalServiceAfter":"1m"}}"#,
    r#"{"name":"db","port":5432,"checks":[{"ttl":"30s"},{"tcp":"10.0.0.3:5432","interval":"10s"}],"weights":{"passing":3,"warning":1}}"#,
    r#"{"Name":"grpc","Port":9000,"Check":{"GRPC":"10.0.0.4:9000/svc","GRPCUseTLS":false,"Interval":"2s","SuccessBeforePassing":2}}"#,
    r#"{"Status":"passing","Output":"fine"}"#,
];

const FRAGMENTS: [&str; 12] = [
    "null",
    "{}",
    "[]",
    "\"\"",
    "-1",
    "1e400",
    "\"\\u0000\"",
    "{\"Args\":[\"sh\"]}",
    "\"10s\"",
    "true",
    "65536",
    "\"\u{1F600}\"",
];

fn mutate(rng: &mut SplitMix64, seed: &str) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..rng.between(1, 6) {
        let len = bytes.len() as u64;
        match rng.below(5) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                bytes[i] = rng.below(256) as u8;
            }
            1 if len > 0 => bytes.truncate(rng.below(len) as usize),
            2 => {
                let i = rng.below(len + 1) as usize;
                let f = FRAGMENTS[rng.below(FRAGMENTS.len() as u64) as usize].as_bytes();
                bytes.splice(i..i, f.iter().copied());
            }
            3 if len > 1 => {
                let a = rng.below(len) as usize;
                let b = rng.between(a as u64, len) as usize;
                bytes.drain(a..b);
            }
            _ => {
                let depth = rng.between(1, 300) as usize;
                bytes = format!("{}{}{}", "[".repeat(depth), String::from_utf8_lossy(&bytes), "]".repeat(depth)).into();
            }
        }
    }
    bytes
}

#[test]
fn mutated_bodies_are_models_or_errors_never_panics() {
    let mut rng = SplitMix64::new(26);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let seed = SEEDS[rng.below(SEEDS.len() as u64) as usize];
        let body = mutate(&mut rng, seed);
        match parse_register(&body, &ctx()) {
            Ok(reg) => {
                reg.validate().expect("an accepted registration is valid");
                accepted += 1;
            }
            Err(e) => {
                assert!(!e.message().is_empty(), "an empty message for {:?}", String::from_utf8_lossy(&body));
                refused += 1;
            }
        }
        if let Err(e) = parse_check_register(&body) {
            assert!(!e.message().is_empty());
        }
        if let Err(e) = parse_check_update(&body) {
            assert!(!e.message().is_empty());
        }
    }
    // Both sides were exercised: the mutations are neither all harmless nor all fatal.
    assert!(accepted > 100 && refused > 100, "accepted {accepted}, refused {refused}");
}
