//! Switching authentication on at the start of a run, as an operator would: root (with the root role), the
//! limited user whose role may read and write only its prefix, the sentinel key root owns, then AuthEnable.
//! Each step is retried (on another member) until it is answered, since the cluster may still be electing or
//! already under faults; answers saying the step was done before (a retry of one whose reply was lost) count as
//! done. The clients wait for [`Ready`] before their first operation.

use std::time::Duration;

use meridian_proto::authpb::{Permission, permission::Type};
use meridian_proto::etcdserverpb::auth_client::AuthClient;
use meridian_proto::etcdserverpb::kv_client::KvClient;
use meridian_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest, AuthUserAddRequest,
    AuthUserGrantRoleRequest, PutRequest,
};
use tokio::sync::watch;

use crate::auth_channel::{ROOT, ROOT_PASSWORD, SimChannel};
use crate::auth_ops::{APP_PASSWORD, APP_PREFIX, APP_PREFIX_END, APP_ROLE, APP_USER, SENTINEL_KEY, SENTINEL_VALUE};
use crate::recorder::{Recorder, now_ns};
use crate::sim_net::client_channels;

/// How long one step may take before it is tried again.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between tries, so an election can finish.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Whether authentication is on; the clients wait for `true`.
pub type Ready = watch::Receiver<bool>;

/// One setup step.
#[derive(Clone, Copy, Debug)]
enum Step {
    AddRoot,
    GrantRootRole,
    AddRole,
    GrantPrefix,
    AddUser,
    GrantUserRole,
    PutSentinel,
    Enable,
}

const STEPS: [Step; 8] = [
    Step::AddRoot,
    Step::GrantRootRole,
    Step::AddRole,
    Step::GrantPrefix,
    Step::AddUser,
    Step::GrantUserRole,
    Step::PutSentinel,
    Step::Enable,
];

/// Runs the setup against the members at `urls` until done or `until_ns`, then tells `ready` and records when
/// authentication went on.
pub async fn run(urls: Vec<String>, rec: Recorder, ready: watch::Sender<bool>, until_ns: u64) -> turmoil::Result {
    let channels = client_channels(&urls, STEP_TIMEOUT);
    let mut at = 0;
    for step in STEPS {
        loop {
            if now_ns() >= until_ns {
                return Ok(());
            }
            if perform(step, channels[at].clone()).await {
                break;
            }
            at = (at + 1) % channels.len();
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
    rec.with_auth(|a| a.enabled_at = Some(now_ns()));
    let _ = ready.send(true);
    Ok(())
}

/// Whether `step` is done (now, or by an earlier try).
async fn perform(step: Step, channel: SimChannel) -> bool {
    let mut auth = AuthClient::new(channel.clone());
    let answer = match step {
        Step::AddRoot => auth.user_add(user_add(ROOT, ROOT_PASSWORD)).await.map(drop),
        Step::GrantRootRole => auth.user_grant_role(grant(ROOT, ROOT)).await.map(drop),
        Step::AddRole => auth.role_add(AuthRoleAddRequest { name: APP_ROLE.to_owned() }).await.map(drop),
        Step::GrantPrefix => {
            let perm = Permission {
                perm_type: Type::Readwrite as i32,
                key: APP_PREFIX.to_vec(),
                range_end: APP_PREFIX_END.to_vec(),
            };
            let req = AuthRoleGrantPermissionRequest { name: APP_ROLE.to_owned(), perm: Some(perm) };
            auth.role_grant_permission(req).await.map(drop)
        }
        Step::AddUser => auth.user_add(user_add(APP_USER, APP_PASSWORD)).await.map(drop),
        Step::GrantUserRole => auth.user_grant_role(grant(APP_USER, APP_ROLE)).await.map(drop),
        Step::PutSentinel => {
            let req = PutRequest { key: SENTINEL_KEY.to_vec(), value: SENTINEL_VALUE.to_vec(), ..Default::default() };
            KvClient::new(channel).put(req).await.map(drop)
        }
        Step::Enable => auth.auth_enable(AuthEnableRequest {}).await.map(drop),
    };
    match answer {
        Ok(()) => true,
        // A retry of a step whose reply was lost.
        Err(s) => s.message().contains("already"),
    }
}

fn user_add(name: &str, password: &str) -> AuthUserAddRequest {
    AuthUserAddRequest { name: name.to_owned(), password: password.to_owned(), ..Default::default() }
}

fn grant(user: &str, role: &str) -> AuthUserGrantRoleRequest {
    AuthUserGrantRoleRequest { user: user.to_owned(), role: role.to_owned() }
}

/// Waits until authentication is on; `false` if it was not by `until_ns`.
pub async fn wait(ready: &mut Ready, until_ns: u64) -> bool {
    let left = Duration::from_nanos(until_ns.saturating_sub(now_ns()));
    matches!(tokio::time::timeout(left, ready.wait_for(|on| *on)).await, Ok(Ok(_)))
}
