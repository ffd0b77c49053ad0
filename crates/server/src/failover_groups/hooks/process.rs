//! The real [`HookRunner`]: a webhook is one HTTP/1.1 POST of the call's JSON on a fresh connection (hyper's
//! client connection, no pool: hooks are rare; TLS for an `https://` receiver, whose certificate must chain to
//! the hook's `ca_file` or the system's CA bundle and name its host), acknowledged by any 2xx answer; a command is the program run
//! with the call in its environment (`tokio::process`, killed if the call is dropped), acknowledged by exit
//! status 0. Neither blocks the runtime.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use meridian_failover::HookCall;
use meridian_types::{Hook, HookTarget, WebhookUrl};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{HookError, HookRunner};
use crate::tls::error::TlsError;
use crate::tls::{identity, material};

/// Where Debian (and most Linux systems) keep the trusted CAs, for https webhooks without a `ca_file`.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How much of a failed command's stderr goes into the audit log.
const STDERR_TAIL_BYTES: usize = 512;

/// Posts to webhooks and runs commands.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessHooks;

#[async_trait::async_trait]
impl HookRunner for ProcessHooks {
    async fn call(&self, hook: &Hook, call: &HookCall) -> Result<(), HookError> {
        match &hook.target {
            HookTarget::Webhook { url, ca_file } => post(url, ca_file.as_deref(), call).await,
            HookTarget::Command(argv) => run(argv, call).await,
        }
    }
}

async fn post(url: &WebhookUrl, ca_file: Option<&str>, call: &HookCall) -> Result<(), HookError> {
    let to = url.connect_to();
    let tcp = TcpStream::connect(&to).await.map_err(|source| HookError::Connect { to: to.clone(), source })?;
    let _ = tcp.set_nodelay(true);
    if !url.is_tls() {
        return exchange(tcp, url, call).await;
    }
    let config = client_config(ca_file.unwrap_or(SYSTEM_CA_BUNDLE)).await?;
    let name = ServerName::try_from(url.host().to_owned()).map_err(|e| HookError::Tls {
        to: to.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })?;
    let tls = TlsConnector::from(config).connect(name, tcp).await.map_err(|source| HookError::Tls { to, source })?;
    exchange(tls, url, call).await
}

/// The TLS client configuration trusting the CAs of `path` (PEM), speaking HTTP/1.1.
async fn client_config(path: &str) -> Result<Arc<ClientConfig>, HookError> {
    let trust = |source| HookError::Trust { path: path.to_owned(), source };
    let pem = tokio::fs::read(path)
        .await
        .map_err(|e| trust(TlsError::Pem { path: path.into(), what: format!("cannot read it: {e}") }))?;
    let mut roots = RootCertStore::empty();
    // A system bundle may hold certificates rustls cannot use; the rest still serve.
    let (usable, _) = roots.add_parsable_certificates(identity::certs(Path::new(path), &pem).map_err(trust)?);
    if usable == 0 {
        return Err(trust(TlsError::Pem { path: path.into(), what: "no usable CA certificate".into() }));
    }
    let mut config = ClientConfig::builder_with_provider(material::provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| trust(TlsError::Rustls { what: "TLS versions".into(), source }))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One POST of `call` to `url` over `io`.
async fn exchange<T>(io: T, url: &WebhookUrl, call: &HookCall) -> Result<(), HookError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(HookError::Http)?;
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
