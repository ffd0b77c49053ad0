//! `meridian playground --secure`: the playground with TLS on every link and auth on. It writes a CA pair and
//! every member's certificates (as `meridian certs` does) into the playground's temporary directory, starts
//! the members on `https://` URLs with client certificates required and mutual peer TLS, puts the admin API
//! behind a random token, and once a leader is agreed creates the root user (random password) and enables
//! auth. It prints the etcdctl flags to use.
//!
//! Authenticate hands out JWTs (ES256, with a key pair made for the run and shared by every member), as etcd's
//! documentation advises for production: any member verifies them. Meridian's simple tokens are known only to
//! the member that issued them, so a client spreading its calls over several endpoints (etcdctl does) would be
//! told now and then to log in again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use meridian_proto::etcdserverpb::auth_client::AuthClient;
use meridian_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest, AuthUserGrantRoleRequest,
};
use meridian_types::topology::Topology;
use rand::RngExt;

use crate::certs::{CertOptions, Paths, generate_for_topology, write_bundle};
use crate::tls_client::{ClientTlsFiles, grpc_channel};

/// The root user the playground creates.
const ROOT: &str = "root";
/// Bound on each setup call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The secure playground's files and secrets.
pub struct Secure {
    paths: Paths,
    /// The JWT signing key pair: (public key PEM file, private key PEM file).
    jwt: (PathBuf, PathBuf),
    /// The admin API's bearer token (every member's `--admin-token`).
    pub admin_token: String,
    root_password: String,
}

fn random_text(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    (0..len).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

impl Secure {
    /// Writes the certificates of `topology` (its URLs already `https://`) under `dir/certs`.
    pub fn prepare(topology: &Topology, dir: &Path) -> anyhow::Result<Secure> {
        let paths = Paths::new(&dir.join("certs"));
        let bundle = generate_for_topology(topology, &CertOptions::new(SystemTime::now()))?;
        write_bundle(&paths, &bundle, false)?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("making the JWT key")?;
        let jwt = (dir.join("certs").join("jwt-public.pem"), dir.join("certs").join("jwt-private.pem"));
        std::fs::write(&jwt.0, key.public_key_pem()).context("writing the JWT public key")?;
        std::fs::write(&jwt.1, key.serialize_pem()).context("writing the JWT private key")?;
        Ok(Secure { paths, jwt, admin_token: random_text(32), root_password: random_text(20) })
    }

    /// The TLS flags of member `name`.
    pub fn server_args(&self, name: &str) -> Vec<PathBuf> {
        let (cert, key) = self.paths.server(name);
        let (peer_cert, peer_key) = self.paths.peer(name);
        let flags = [
            ("--cert-file", cert),
            ("--key-file", key),
            ("--trusted-ca-file", self.paths.client_ca().0),
            ("--peer-cert-file", peer_cert),
            ("--peer-key-file", peer_key),
            ("--peer-trusted-ca-file", self.paths.peer_ca().0),
        ];
        let mut args: Vec<PathBuf> = flags.into_iter().flat_map(|(f, p)| [PathBuf::from(f), p]).collect();
        args.push("--client-cert-auth".into());
        args.push("--auth-token".into());
        let (public, private) = &self.jwt;
        args.push(format!("jwt,pub-key={},priv-key={},sign-method=ES256", public.display(), private.display()).into());
        args
    }

    /// What a client needs: the CA, and root's client certificate.
    pub fn client_files(&self) -> ClientTlsFiles {
        ClientTlsFiles { cacert: self.paths.client_ca().0, identity: Some(self.paths.client(ROOT)) }
    }

    /// The etcdctl flags of root.
    pub fn etcdctl_flags(&self) -> String {
        let (cert, key) = self.paths.client(ROOT);
        format!(
            "--cacert={} --cert={} --key={} --user={ROOT}:{}",
            self.paths.client_ca().0.display(),
            cert.display(),
            key.display(),
            self.root_password
        )
    }

    /// Creates root (with the root role) and enables auth, through `endpoint` with root's certificate.
    pub async fn enable_auth(&self, endpoint: &str) -> anyhow::Result<()> {
        let channel = grpc_channel(endpoint, Some(&self.client_files()), Some(CALL_TIMEOUT)).await?;
        let mut auth = AuthClient::new(channel);
        let user = AuthUserAddRequest { name: ROOT.into(), password: self.root_password.clone(), ..Default::default() };
        auth.user_add(user).await.context("adding the root user")?;
        auth.role_add(AuthRoleAddRequest { name: ROOT.into() }).await.context("adding the root role")?;
        let grant = AuthUserGrantRoleRequest { user: ROOT.into(), role: ROOT.into() };
        auth.user_grant_role(grant).await.context("granting root the root role")?;
        auth.auth_enable(AuthEnableRequest {}).await.context("enabling auth")?;
        Ok(())
    }
}
