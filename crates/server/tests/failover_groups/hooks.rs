//! Hooks that fail or hang are retried until they acknowledge, and every attempt is in the audit log.

use std::sync::Arc;

use meridian_failover::audit::{AuditEntry, Outcome};
use meridian_server::failover_groups::ProcessHooks;

use crate::harness::{Fixture, Reply, Webhook};

fn attempts(log: &[AuditEntry]) -> Vec<(usize, u32, Outcome, String)> {
    log.iter()
        .filter_map(|e| match e {
            AuditEntry::Attempt(a) => Some((a.hook, a.attempt, a.outcome, a.error.clone().unwrap_or_default())),
            AuditEntry::Ack(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn a_failing_then_hanging_webhook_is_retried_until_it_acknowledges() {
    let hook = Webhook::start(&[Reply::Fail, Reply::Hang, Reply::Ok]).await;
    let groups = format!(
        "[[failover_groups]]\nname = \"db\"\ndatacenters = [\"dc-a\", \"dc-b\"]\n\
         [[failover_groups.hooks]]\nwebhook = \"{}\"\ntimeout_ms = 300\n",
        hook.url
    );
    let f = Fixture::start(5_000, &groups, Arc::new(ProcessHooks)).await;
    let (_, token) = f.wait_active("db", "dc-a", None).await;
    let log = f.wait_acknowledged("db", token).await;
    let got = attempts(&log);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].0, got[0].1, got[0].2), (0, 0, Outcome::Failed));
    assert!(got[0].3.contains("answered HTTP 500"), "{}", got[0].3);
    assert_eq!((got[1].1, got[1].2), (1, Outcome::TimedOut));
    assert!(got[1].3.contains("no answer within 300 ms"), "{}", got[1].3);
    assert_eq!((got[2].1, got[2].2, got[2].3.as_str()), (2, Outcome::Ok, ""));
    assert_eq!(hook.tokens(), vec![token.0; 3], "every attempt carried the same token");
    f.stop().await;
}

#[tokio::test]
async fn a_command_hook_gets_the_switch_in_its_environment_and_is_retried_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calls");
    // Fails the first time (no file yet), succeeds the second; each call appends what it was told.
    let script = format!(
        "test -e {out} && ok=0 || ok=1; \
         echo \"$MERIDIAN_GROUP $MERIDIAN_DC [$MERIDIAN_PREVIOUS_DC] $MERIDIAN_TOKEN\" >> {out}; \
         [ $ok = 0 ] || {{ echo first call refused >&2; exit 3; }}",
        out = out.display()
    );
    let groups = format!(
        "[[failover_groups]]\nname = \"jobs\"\ndatacenters = [\"dc-a\", \"dc-c\"]\n\
         [[failover_groups.hooks]]\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\n"
    );
    let f = Fixture::start(5_000, &groups, Arc::new(ProcessHooks)).await;
    let (_, token) = f.wait_active("jobs", "dc-a", None).await;
    let got = attempts(&f.wait_acknowledged("jobs", token).await);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].2, Outcome::Failed);
    assert!(got[0].3.contains("exit status: 3") && got[0].3.contains("first call refused"), "{}", got[0].3);
    assert_eq!(got[1].2, Outcome::Ok);
    let calls = std::fs::read_to_string(&out).unwrap();
    let line = format!("jobs dc-a [] {}", token.0);
    assert_eq!(calls.lines().collect::<Vec<_>>(), [line.as_str(), line.as_str()]);
    f.stop().await;
}

#[tokio::test]
async fn an_https_webhook_is_called_over_tls_and_an_untrusted_receiver_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, ca) = Webhook::start_tls(&[], dir.path()).await;
    // The same receiver, trusted through another CA: its certificate does not chain there.
    let (other_ca_pem, _, _) = crate::harness::tls_identity("localhost");
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, other_ca_pem).unwrap();
    let groups = format!(
        "[[failover_groups]]\nname = \"db\"\ndatacenters = [\"dc-a\", \"dc-b\"]\n\
         [[failover_groups.hooks]]\nwebhook = \"{url}\"\nca_file = {ca:?}\ntimeout_ms = 2000\n\
         [[failover_groups]]\nname = \"mistrusted\"\ndatacenters = [\"dc-a\", \"dc-b\"]\n\
         [[failover_groups.hooks]]\nwebhook = \"{url}\"\nca_file = {other:?}\ntimeout_ms = 2000\n",
        url = hook.url,
        ca = ca.display().to_string(),
        other = other_ca.display().to_string(),
    );
    let f = Fixture::start(5_000, &groups, Arc::new(ProcessHooks)).await;
    let (_, token) = f.wait_active("db", "dc-a", None).await;
    let got = attempts(&f.wait_acknowledged("db", token).await);
    assert_eq!((got.len(), got[0].2), (1, Outcome::Ok), "{got:?}");
    let (_, other_token) = f.wait_active("mistrusted", "dc-a", None).await;
    let refused = f
        .wait("a refused attempt", || {
            let got = attempts(&f.audit("mistrusted", other_token));
            async move { got.into_iter().find(|a| a.2 == Outcome::Failed) }
        })
        .await;
    assert!(refused.3.contains("TLS handshake with localhost:"), "{refused:?}");
    assert_eq!(hook.tokens(), vec![token.0], "only the trusted call got through");
    f.stop().await;
}
