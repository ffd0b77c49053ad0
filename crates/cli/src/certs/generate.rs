//! Pure generation: from a topology and [`CertOptions`] to a [`CertBundle`] of PEM texts. No file is read or
//! written here (an existing CA arrives as text in the options), so the playground and tests can make a whole
//! PKI in memory.
//!
//! Two CAs, on purpose: the client CA signs every member's server certificate and every client certificate; the
//! peer CA signs peer certificates only. Peer listeners trust only the peer CA, so no client certificate can ever
//! be accepted as a member. A peer certificate carries exactly the host of its member's peer URL, because that
//! SAN is the member's identity on the peer link.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::SystemTime;

use meridian_types::topology::{MemberSpec, Topology};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};

use super::CertError;
use super::ca::{self, Authority};
use super::names::{check_file_name, san_for_host, url_host};
use super::pem::{ExistingCa, PemPair};

/// Default validity of member and client certificates, in days.
pub const DEFAULT_DAYS: u32 = 365;
/// Longest validity `--days` accepts (a hundred years).
pub const MAX_DAYS: u32 = 36_500;
/// A new CA is valid this many days, or `--days` if that is longer.
pub const CA_DAYS: u32 = 3650;
/// Certificates start this long before `now`, so a member whose clock is a little behind accepts them at once.
pub const CLOCK_SKEW_SLACK: Duration = Duration::hours(1);
/// Common name of the client CA.
pub const CLIENT_CA_NAME: &str = "Meridian client CA";
/// Common name of the peer CA.
pub const PEER_CA_NAME: &str = "Meridian peer CA";

/// What to generate, beyond the topology.
#[derive(Clone, Debug)]
pub struct CertOptions {
    /// A client certificate for each name (its common name, the etcd user under `--client-cert-auth`).
    pub clients: Vec<String>,
    /// Validity of member and client certificates, in days.
    pub days: u32,
    /// The current time (passed in, so generation is a function of its inputs).
    pub now: SystemTime,
    /// The client CA of an earlier run, to sign with instead of making a new one.
    pub client_ca: Option<ExistingCa>,
    /// The peer CA of an earlier run.
    pub peer_ca: Option<ExistingCa>,
}

impl CertOptions {
    /// Options for a fresh PKI: one client `root`, [`DEFAULT_DAYS`], now, new CAs.
    pub fn new(now: SystemTime) -> CertOptions {
        CertOptions { clients: vec!["root".to_owned()], days: DEFAULT_DAYS, now, client_ca: None, peer_ca: None }
    }
}

/// A CA as generated or reused.
#[derive(Clone, Debug)]
pub struct CaPems {
    /// Its certificate and key.
    pub pems: PemPair,
    /// Whether it came from [`CertOptions`] rather than being made now.
    pub reused: bool,
}

/// One member's certificates.
#[derive(Clone, Debug)]
pub struct MemberCerts {
    /// The member name (common name of both certificates, and its directory).
    pub name: String,
    /// For the client and admin listeners; signed by the client CA.
    pub server: PemPair,
    /// For the peer listener and outgoing peer connections; signed by the peer CA.
    pub peer: PemPair,
}

/// One client's certificate, signed by the client CA.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// The client name (common name).
    pub name: String,
    /// Certificate and key.
    pub pems: PemPair,
}

/// Everything one run produces.
#[derive(Clone, Debug)]
pub struct CertBundle {
    /// Signs server and client certificates.
    pub client_ca: CaPems,
    /// Signs peer certificates only.
    pub peer_ca: CaPems,
    /// Per member, in topology order.
    pub members: Vec<MemberCerts>,
    /// Per client, in the order given.
    pub clients: Vec<ClientCert>,
    /// Things the operator should know (e.g. a reused CA expiring before the new certificates).
    pub notes: Vec<String>,
}

/// Makes the CAs (or takes the existing ones) and every member and client certificate of `topology`.
pub fn generate_for_topology(topology: &Topology, opts: &CertOptions) -> Result<CertBundle, CertError> {
    if opts.days == 0 || opts.days > MAX_DAYS {
        return Err(CertError::BadDays { days: opts.days, max: MAX_DAYS });
    }
    check_names(topology, &opts.clients)?;
    let now = OffsetDateTime::from(opts.now);
    let not_before = now - CLOCK_SKEW_SLACK;
    let leaf_not_after = now + Duration::days(i64::from(opts.days));
    let ca_not_after = now + Duration::days(i64::from(opts.days.max(CA_DAYS)));

    let authority = |existing: &Option<ExistingCa>, name| match existing {
        Some(existing) => ca::load(existing, now),
        None => ca::create(name, not_before, ca_not_after),
    };
    let client_ca = authority(&opts.client_ca, CLIENT_CA_NAME)?;
    let peer_ca = authority(&opts.peer_ca, PEER_CA_NAME)?;
    let mut notes = Vec::new();
    for (file, ca) in [("ca.crt", &client_ca), ("peer-ca.crt", &peer_ca)] {
        if ca.not_after < leaf_not_after {
            notes.push(format!(
                "{file} expires on {}, before the new certificates: they stop being trusted then",
                ca.not_after.date()
            ));
        }
    }

    let leaf = Leaf { not_before, not_after: leaf_not_after };
    let mut members = Vec::with_capacity(topology.members.len());
    for m in &topology.members {
        let name = &m.name.0;
        let server = leaf.issue(name, server_sans(m)?, &[ExtendedKeyUsagePurpose::ServerAuth], &client_ca)?;
        let peer_san = host_san(m, "peer_url", &m.peer_url)?;
        let peer_ekus = [ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let peer = leaf.issue(name, vec![peer_san], &peer_ekus, &peer_ca)?;
        members.push(MemberCerts { name: name.clone(), server, peer });
    }
    notes.extend(shared_peer_hosts(topology));
    let mut clients = Vec::with_capacity(opts.clients.len());
    for name in &opts.clients {
        let pems = leaf.issue(name, Vec::new(), &[ExtendedKeyUsagePurpose::ClientAuth], &client_ca)?;
        clients.push(ClientCert { name: name.clone(), pems });
    }
    Ok(CertBundle {
        client_ca: CaPems { pems: client_ca.pems, reused: client_ca.reused },
        peer_ca: CaPems { pems: peer_ca.pems, reused: peer_ca.reused },
        members,
        clients,
        notes,
    })
}

/// Member and client names become paths, and a name given twice would overwrite another's files.
fn check_names(topology: &Topology, clients: &[String]) -> Result<(), CertError> {
    if topology.members.is_empty() {
        return Err(CertError::NoMembers);
    }
    let members = topology.members.iter().map(|m| ("member", &m.name.0));
    let clients = clients.iter().map(|c| ("client", c));
    let mut seen = BTreeSet::new();
    for (what, name) in members.chain(clients) {
        check_file_name(what, name)?;
        if !seen.insert((what, name)) {
            return Err(CertError::DuplicateName { what, name: name.clone() });
        }
    }
    Ok(())
}

/// Members whose peer URLs share a host get peer certificates with the same SAN, so on the peer link each can
/// pass for the others: worth a note (the URLs were already checked when this runs, so unreadable ones are
/// skipped here).
fn shared_peer_hosts(topology: &Topology) -> Vec<String> {
    let mut by_host: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &topology.members {
        if let Ok(host) = url_host(&m.peer_url) {
            by_host.entry(host).or_default().push(&m.name.0);
        }
    }
    by_host
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(host, members)| {
            format!(
                "{} share the peer host {host}: their peer certificates are interchangeable on the peer link; \
                 give each member a host of its own (e.g. 127.0.0.x) for distinct peer identities",
                members.join(", ")
            )
        })
        .collect()
}

/// The SANs of a member's server certificate: the hosts of its client and admin URLs, `localhost` and
/// 127.0.0.1 (so a local `etcdctl` or health check verifies too), without duplicates.
fn server_sans(m: &MemberSpec) -> Result<Vec<SanType>, CertError> {
    let mut sans = vec![host_san(m, "client_url", &m.client_url)?];
    if let Some(admin) = &m.admin_url {
        sans.push(host_san(m, "admin_url", admin)?);
    }
    sans.push(san_for_host("localhost").expect("a valid DNS name"));
    sans.push(SanType::IpAddress([127, 0, 0, 1].into()));
    let mut seen = HashSet::new();
    sans.retain(|san| seen.insert(san.clone()));
    Ok(sans)
}

/// The SAN for the host of one of `m`'s URLs.
fn host_san(m: &MemberSpec, field: &'static str, url: &str) -> Result<SanType, CertError> {
    let bad = |why| CertError::BadUrl { member: m.name.0.clone(), field, url: url.to_owned(), why };
    san_for_host(url_host(url).map_err(bad)?).map_err(bad)
}

/// The validity shared by every leaf of one run.
struct Leaf {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Leaf {
    /// A fresh key and a certificate for it: common name `cn`, the given SANs and extended key usages, signed
    /// by `ca`.
    fn issue(
        &self,
        cn: &str,
        sans: Vec<SanType>,
        ekus: &[ExtendedKeyUsagePurpose],
        ca: &Authority,
    ) -> Result<PemPair, CertError> {
        let generate = |source| CertError::Generate { what: format!("the certificate of {cn}"), source };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus.to_vec();
        // The authority key identifier lets verifiers pick the right CA when several share a trust store.
        params.use_authority_key_identifier_extension = true;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        let cert = params.signed_by(&key, &ca.cert, &ca.key).map_err(generate)?;
        Ok(PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}
