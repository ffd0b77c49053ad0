//! The two certificate authorities: made fresh (ECDSA P-256, valid ten years or longer) or rebuilt from the PEM
//! files of an earlier run, after checking that the certificate is a CA, is still valid, and belongs to the key.
//! Reusing the CA is what lets a member added later join without every other member being reissued.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::CertError;
use super::pem::{ExistingCa, PemPair};

/// A CA able to sign: the rcgen certificate and key it signs with, and the PEM texts to write.
pub struct Authority {
    /// Signs leaves: rcgen takes the issuer's name and key identifier from it.
    pub cert: Certificate,
    /// The CA's private key.
    pub key: KeyPair,
    /// The PEM files (for a reused CA, exactly the texts read).
    pub pems: PemPair,
    /// Whether it came from an earlier run.
    pub reused: bool,
    /// When it expires.
    pub not_after: OffsetDateTime,
}

/// Makes a new self-signed CA called `common_name`, valid from `not_before` to `not_after`. Path length 0: it
/// signs leaves only, never another CA.
pub fn create(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Authority, CertError> {
    let generate = |source| CertError::Generate { what: common_name.to_owned(), source };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Meridian");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.self_signed(&key).map_err(generate)?;
    let pems = PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
    Ok(Authority { cert, key, pems, reused: false, not_after })
}

/// Rebuilds a CA from an earlier run's files, refusing a certificate that is not a CA, has expired (at `now`),
/// or does not belong to the key.
pub fn load(existing: &ExistingCa, now: OffsetDateTime) -> Result<Authority, CertError> {
    let bad = |why: String| CertError::BadCa { origin: existing.origin.clone(), why };
    let der = pem_der(&existing.pems.cert_pem).map_err(|why| bad(why.to_owned()))?;
    let (_, parsed) = X509Certificate::from_der(&der).map_err(|e| bad(format!("not an X.509 certificate ({e})")))?;
    if !parsed.is_ca() {
        return Err(bad("the certificate is not a CA (basicConstraints CA:FALSE or absent)".to_owned()));
    }
    // rcgen rebuilds the subject one attribute per RDN (and panics on an empty one): check before handing it over.
    if parsed.subject().iter().any(|rdn| rdn.iter().count() != 1) {
        return Err(bad("the subject has a multi-valued or empty RDN, which cannot be reused".to_owned()));
    }
    let not_after = OffsetDateTime::from_unix_timestamp(parsed.validity().not_after.timestamp())
        .map_err(|_| bad("the expiry date is out of range".to_owned()))?;
    if not_after <= now {
        return Err(bad(format!(
            "the CA expired on {}; remove it and its key to make a new CA (and reissue every certificate)",
            parsed.validity().not_after
        )));
    }
    let key = KeyPair::from_pem(&existing.pems.key_pem)
        .map_err(|e| bad(format!("its key file is not a PKCS#8 PEM private key ({e})")))?;
    if key.public_key_der() != parsed.public_key().raw {
        return Err(bad("the key file does not belong to this certificate".to_owned()));
    }
    let params = CertificateParams::from_ca_cert_der(&der.clone().into())
        .map_err(|e| bad(format!("rcgen cannot sign with it ({e})")))?;
    // Self-signing again only gives rcgen an issuer object (subject and key identifier); the original
    // certificate text is what stays on disk and in every trust store.
    let cert = params.self_signed(&key).map_err(|e| bad(format!("rcgen cannot sign with it ({e})")))?;
    Ok(Authority { cert, key, pems: existing.pems.clone(), reused: true, not_after })
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
fn pem_der(text: &str) -> Result<Vec<u8>, &'static str> {
    let (_, block) = x509_parser::pem::parse_x509_pem(text.as_bytes()).map_err(|_| "not a PEM certificate")?;
    if block.label != "CERTIFICATE" {
        return Err("the first PEM block is not a CERTIFICATE");
    }
    Ok(block.contents)
}
