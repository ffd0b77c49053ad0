//! The leader's automatic switches: the first record, failover on `down` verdicts, failback after the hold, each
//! with a token (the record's revision) that only grows and one webhook call per token.

use std::sync::Arc;

use meridian_failover::DcState;
use meridian_failover::audit::AuditEntry;
use meridian_server::failover_groups::ProcessHooks;
use meridian_types::reserved::dc_key;

use crate::harness::{Fixture, Webhook, now_ms};

const HOLD_MS: u64 = 400;

#[tokio::test]
async fn down_verdicts_fail_the_group_over_and_an_up_one_fails_it_back_with_growing_tokens() {
    let hook = Webhook::start(&[]).await;
    let groups = format!(
        "[[failover_groups]]\nname = \"db\"\ndatacenters = [\"dc-a\", \"dc-b\", \"dc-c\"]\n\
         [[failover_groups.hooks]]\nwebhook = \"{}\"\n",
        hook.url
    );
    let f = Fixture::start(HOLD_MS, &groups, Arc::new(ProcessHooks)).await;

    // No record yet: the first datacenter of the list.
    let (first, t1) = f.wait_active("db", "dc-a", None).await;
    assert_eq!((first.previous, first.manual), (None, false));
    assert!(first.reason.contains("no active datacenter yet"), "{}", first.reason);
    // Each switch waits for the hooks to acknowledge the one before, so no token is superseded unannounced.
    f.wait_acknowledged("db", t1).await;

    // dc-a is down: the next one.
    f.verdict("dc-a", DcState::Down, now_ms(&f)).await;
    let (second, t2) = f.wait_active("db", "dc-b", None).await;
    assert!(t2 > t1, "the token grows: {t1:?} then {t2:?}");
    assert_eq!(second.previous.as_ref().map(|d| d.0.as_str()), Some("dc-a"));
    assert!(second.reason.contains("dc-a is down"), "{}", second.reason);
    f.wait_acknowledged("db", t2).await;

    // dc-b goes down too, dc-a is still down: skip to dc-c.
    f.verdict("dc-b", DcState::Down, now_ms(&f)).await;
    let (_, t3) = f.wait_active("db", "dc-c", None).await;
    assert!(t3 > t2);
    f.wait_acknowledged("db", t3).await;

    // dc-a comes back: once up for the hold, the group fails back to it (not to dc-b, still down).
    let back_at = now_ms(&f);
    f.verdict("dc-a", DcState::Up, back_at).await;
    let (back, t4) = f.wait_active("db", "dc-a", Some(t1)).await;
    assert!(t4 > t3);
    assert!(back.reason.contains("failing back from dc-c"), "{}", back.reason);
    assert!(back.since_unix_ms >= back_at + HOLD_MS, "failback waited for the hold: {back:?}");

    // Each token reached the webhook once, in order, with what the record says.
    let t4_log = f.wait_acknowledged("db", t4).await;
    assert!(matches!(t4_log.last(), Some(AuditEntry::Ack(a)) if a.hooks == 1));
    assert_eq!(hook.tokens(), vec![t1.0, t2.0, t3.0, t4.0], "one call per token, never a smaller one after a larger");
    let last = hook.bodies().pop().unwrap();
    assert_eq!(
        (last["group"].as_str(), last["dc"].as_str(), last["previous"].as_str()),
        (Some("db"), Some("dc-a"), Some("dc-c"))
    );
    assert_eq!(last["term"].as_u64(), Some(back.term));
    f.stop().await;
}

#[tokio::test]
async fn an_unreadable_verdict_counts_as_none() {
    let f = Fixture::start(HOLD_MS, "", Arc::new(ProcessHooks)).await;
    f.put_raw(&dc_key("dc-a"), b"not json".to_vec()).await;
    f.verdict("dc-b", DcState::Down, now_ms(&f)).await;
    // A group defined now prefers dc-b, which is down; dc-a's verdict does not parse, so dc-a counts as up.
    let (code, body) = crate::harness::http(
        f.admin(),
        "PUT",
        "/failover/groups/cache",
        r#"{"datacenters": ["dc-b", "dc-a"], "failback": "manual"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (record, _) = f.wait_active("cache", "dc-a", None).await;
    assert!(record.reason.contains("no active datacenter yet: dc-a"), "{}", record.reason);
    f.stop().await;
}
