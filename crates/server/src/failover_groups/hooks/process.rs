//! The real [`HookRunner`]: a webhook is one HTTP/1.1 POST of the call's JSON on a fresh connection (hyper's
//! client connection, no pool: hooks are rare), acknowledged by any 2xx answer; a command is the program run
//! with the call in its environment (`tokio::process`, killed if the call is dropped), acknowledged by exit
//! status 0. Neither blocks the runtime.

use std::process::Stdio;

use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use meridian_failover::HookCall;
use meridian_types::{Hook, HookTarget, WebhookUrl};
use tokio::net::TcpStream;

use super::{HookError, HookRunner};

/// How much of a failed command's stderr goes into the audit log.
const STDERR_TAIL_BYTES: usize = 512;

/// Posts to webhooks and runs commands.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessHooks;

#[async_trait::async_trait]
impl HookRunner for ProcessHooks {
    async fn call(&self, hook: &Hook, call: &HookCall) -> Result<(), HookError> {
        match &hook.target {
            HookTarget::Webhook(url) => post(url, call).await,
            HookTarget::Command(argv) => run(argv, call).await,
        }
    }
}

async fn post(url: &WebhookUrl, call: &HookCall) -> Result<(), HookError> {
    let to = url.connect_to();
    let tcp = TcpStream::connect(&to).await.map_err(|source| HookError::Connect { to: to.clone(), source })?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(HookError::Http)?;
    let body = String::from_utf8_lossy(&call.to_json()).into_owned();
    let request = hyper::Request::post(url.path())
        .header(HOST, url.authority())
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("meridian/", env!("CARGO_PKG_VERSION")))
        .body(body)
        .map_err(HookError::Request)?;
    // The connection is driven here rather than on a task of its own, so dropping the call drops it too.
    let mut conn = std::pin::pin!(conn);
    let mut send = std::pin::pin!(sender.send_request(request));
    let answer = tokio::select! {
        biased;
        answer = &mut send => answer,
        ended = &mut conn => {
            ended.map_err(HookError::Http)?;
            // The connection closed before the answer came: the request reports why.
            send.await
        }
    };
    let status = answer.map_err(HookError::Http)?.status();
    if status.is_success() { Ok(()) } else { Err(HookError::Status(status.as_u16())) }
}

async fn run(argv: &[String], call: &HookCall) -> Result<(), HookError> {
    let Some((program, args)) = argv.split_first() else {
        // A parsed hook always names a program; this only keeps a bad value from panicking.
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "the command is empty");
        return Err(HookError::Spawn { program: String::new(), source });
    };
    let output = tokio::process::Command::new(program)
        .args(args)
        .envs(call.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| HookError::Spawn { program: program.clone(), source })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail = stderr.trim();
    let tail = &tail[tail.floor_char_boundary(tail.len().saturating_sub(STDERR_TAIL_BYTES))..];
    Err(HookError::Exit { status: output.status.to_string(), stderr: tail.to_owned() })
}
