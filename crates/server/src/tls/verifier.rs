//! Client-certificate verification with the member's own rules on top of webpki's chain check: every refusal is
//! logged once, with the reason and the certificate's subject; on the peer listener a valid certificate must
//! also name (as a SAN) the host of a peer URL of the current membership.

use std::fmt;
use std::sync::{Arc, OnceLock};

use meridian_consensus::RaftNode;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::identity::{CertInfo, url_host};

/// Which hosts' peer certificates the peer listener accepts right now.
pub trait PeerHosts: Send + Sync + 'static {
    /// The allowed hosts (lowercase), or `None` when nothing restricts them beyond the peer CA.
    fn allowed(&self) -> Option<Vec<String>>;
}

/// The hosts of the peer URLs of the current Raft membership. Before this member knows any membership (a fresh
/// member waiting for the founder, a member started with `--join`), the topology's members; with neither, any
/// certificate the peer CA signed.
#[derive(Default)]
pub struct MembershipHosts {
    raft: OnceLock<RaftNode>,
    topology: Vec<String>,
}

impl MembershipHosts {
    /// Allows the hosts of `topology_peer_urls` until the Raft node is known and has a membership.
    pub fn new(topology_peer_urls: impl IntoIterator<Item = String>) -> Self {
        MembershipHosts {
            raft: OnceLock::new(),
            topology: topology_peer_urls.into_iter().filter_map(|u| url_host(&u)).collect(),
        }
    }

    /// From now on, the membership of `raft` decides.
    pub fn set_raft(&self, raft: RaftNode) {
        let _ = self.raft.set(raft);
    }
}

impl PeerHosts for MembershipHosts {
    fn allowed(&self) -> Option<Vec<String>> {
        let members = self.raft.get().map(|raft| raft.status().members).unwrap_or_default();
        if !members.is_empty() {
            return Some(members.values().filter_map(|m| url_host(&m.peer_url)).collect());
        }
        (!self.topology.is_empty()).then(|| self.topology.clone())
    }
}

/// webpki's verifier, logging refusals, and on the peer listener checking the SAN against [`PeerHosts`].
pub struct CheckedClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    listener: &'static str,
    hosts: Option<Arc<dyn PeerHosts>>,
}

impl CheckedClientVerifier {
    /// Wraps `inner` for the `listener` named in logs; `hosts` restricts peer certificates.
    pub fn new(inner: Arc<dyn ClientCertVerifier>, listener: &'static str, hosts: Option<Arc<dyn PeerHosts>>) -> Self {
        CheckedClientVerifier { inner, listener, hosts }
    }
}

impl fmt::Debug for CheckedClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedClientVerifier").field("listener", &self.listener).finish_non_exhaustive()
    }
}

/// Whether a certificate with `sans` may speak for a member, given the `allowed` hosts.
pub fn peer_san_allowed(sans: &[String], allowed: Option<&[String]>) -> bool {
    allowed.is_none_or(|hosts| sans.iter().any(|san| hosts.contains(san)))
}

impl ClientCertVerifier for CheckedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let info = CertInfo::from_der(end_entity);
        let subject = info.as_ref().map_or_else(|e| format!("(unparsable: {e})"), |i| i.subject.clone());
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now).inspect_err(|e| {
            tracing::warn!(listener = self.listener, %subject, reason = %e, "refused a client certificate");
        })?;
        let Some(hosts) = &self.hosts else { return Ok(verified) };
        let sans = info.map(|i| i.sans).unwrap_or_default();
        let allowed = hosts.allowed();
        if peer_san_allowed(&sans, allowed.as_deref()) {
            return Ok(verified);
        }
        tracing::warn!(
            listener = self.listener,
            %subject,
            sans = ?sans,
            reason = "no SAN is the host of a current member's peer URL",
            "refused a peer certificate"
        );
        Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_certificate_must_name_a_current_member_host() {
        let hosts = vec!["127.0.0.1".to_owned(), "127.0.0.2".to_owned()];
        assert!(peer_san_allowed(&["127.0.0.2".into()], Some(&hosts)));
        assert!(!peer_san_allowed(&["127.0.0.3".into()], Some(&hosts)), "a removed or unknown member");
        assert!(!peer_san_allowed(&[], Some(&hosts)), "a certificate without SANs");
        assert!(peer_san_allowed(&["anything".into()], None), "no membership and no topology: the CA decides");
    }

    #[test]
    fn before_a_membership_the_topology_decides() {
        let hosts = MembershipHosts::new(["https://127.0.0.1:2380".to_owned(), "https://Node-B:2380".to_owned()]);
        assert_eq!(hosts.allowed(), Some(vec!["127.0.0.1".to_owned(), "node-b".to_owned()]));
        assert_eq!(MembershipHosts::new([]).allowed(), None);
    }
}
