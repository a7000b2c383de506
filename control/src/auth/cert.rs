//! X.509 certificates: loading, identities they bind, chain validation against trust anchors,
//! and CERTREQ handling ([RFC 7296 § 3.6, § 3.7](https://www.rfc-editor.org/rfc/rfc7296#section-3.6)).
//!
//! Path validation is rustls-webpki's (with its aws-lc-rs backend): a small, audited,
//! maintained validator that builds a path from the end-entity certificate through the
//! intermediates the peer sent to one of our anchors, checks every signature, validity period,
//! basic constraints, path length and name constraints, and refuses unknown critical
//! extensions. As in strongSwan, no Extended Key Usage is demanded. Reading subject DNs and
//! SubjectAltNames uses x509-parser, which exposes every GeneralName form.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_parser::extensions::GeneralName;

use super::AuthError;
use super::dn::DistinguishedName;
use super::identity::Identity;
use super::key::PublicKey;
use crate::wire::CertEncoding;
use crate::wire::payload::{Certificate as CertPayload, CertificateRequest};

/// A SubjectAltName entry roamgate matches identities against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// `dNSName`.
    Dns(String),
    /// `rfc822Name`.
    Email(String),
    /// `iPAddress`.
    Ip(IpAddr),
}

/// A parsed X.509 certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    subject: DistinguishedName,
    issuer: DistinguishedName,
    sans: Vec<SubjectAltName>,
    public_key: PublicKey,
    /// SHA-1 of the BIT STRING contents of subjectPublicKey (strongSwan's key id).
    key_id: [u8; 20],
    not_after: i64,
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0; 20];
    out.copy_from_slice(d.as_ref());
    out
}

impl Certificate {
    /// Parses a DER certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Certificate, AuthError> {
        let bad = |why: String| AuthError::BadCertificate(why);
        let (rest, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate".into()));
        }
        let subject = DistinguishedName::from_der(cert.subject().as_raw())
            .map_err(|e| bad(format!("subject: {e}")))?;
        let issuer = DistinguishedName::from_der(cert.issuer().as_raw())
            .map_err(|e| bad(format!("issuer: {e}")))?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(n) => sans.push(SubjectAltName::Dns((*n).to_owned())),
                    GeneralName::RFC822Name(n) => sans.push(SubjectAltName::Email((*n).to_owned())),
                    GeneralName::IPAddress(b) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*b) {
                            sans.push(SubjectAltName::Ip(a.into()));
                        } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                            sans.push(SubjectAltName::Ip(a.into()));
                        }
                    }
                    _ => {}
                }
            }
        }
        let public_key = PublicKey::from_spki(cert.public_key().raw)?;
        let key_id = sha1(&cert.public_key().subject_public_key.data);
        let not_after = cert.validity().not_after.timestamp();
        drop(cert);
        Ok(Certificate {
            der,
            subject,
            issuer,
            sans,
            public_key,
            key_id,
            not_after,
        })
    }

    /// Parses every certificate in PEM (`-----BEGIN CERTIFICATE-----`, any number) or one DER
    /// certificate.
    pub fn parse_pem_or_der(bytes: &[u8]) -> Result<Vec<Certificate>, AuthError> {
        if bytes.starts_with(b"-----") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
            let certs = CertificateDer::pem_slice_iter(bytes)
                .map(|c| {
                    c.map_err(|e| AuthError::BadCertificate(format!("PEM: {e}")))
                        .and_then(|c| Certificate::from_der(c.to_vec()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if certs.is_empty() {
                return Err(AuthError::BadCertificate("no CERTIFICATE in PEM".into()));
            }
            Ok(certs)
        } else {
            Ok(vec![Certificate::from_der(bytes.to_vec())?])
        }
    }

    /// Loads every certificate in a PEM or DER file (when the configuration is loaded, by
    /// the daemon; never by the engine).
    #[allow(clippy::disallowed_methods)]
    pub fn load(path: &Path) -> Result<Vec<Certificate>, AuthError> {
        let bytes = std::fs::read(path).map_err(|e| AuthError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Certificate::parse_pem_or_der(&bytes)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject DN.
    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    /// The issuer DN.
    pub fn issuer(&self) -> &DistinguishedName {
        &self.issuer
    }

    /// The dNSName, rfc822Name and iPAddress SubjectAltNames.
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.sans
    }

    /// The subject public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The end of the validity period, in seconds since the Unix epoch.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after
    }

    /// "the SHA-1 hash of the Subject Public Key Info element" — how a CERTREQ names this
    /// certificate as a trusted CA ([RFC 7296 § 3.7](https://www.rfc-editor.org/rfc/rfc7296#section-3.7)).
    pub fn spki_sha1(&self) -> [u8; 20] {
        sha1(self.public_key.spki())
    }

    /// The CERT payload carrying this certificate (`X509_SIGNATURE`).
    pub fn to_payload(&self) -> CertPayload {
        CertPayload {
            encoding: CertEncoding::X509_SIGNATURE,
            data: self.der.clone(),
        }
    }

    /// Whether the certificate binds `id`, as strongSwan's `has_subject` decides: a DN equal
    /// to the subject, an FQDN equal to a dNSName, an email address equal to an rfc822Name, an
    /// IP address equal to an iPAddress (case-insensitive for names), a key id equal to the
    /// SHA-1 of the public key. `%any` and patterns bind nothing.
    pub fn binds(&self, id: &Identity) -> bool {
        if id.has_wildcard() {
            return false;
        }
        match id {
            Identity::Dn(dn) => *dn == self.subject,
            Identity::Fqdn(n) => self
                .sans
                .iter()
                .any(|s| matches!(s, SubjectAltName::Dns(d) if d.eq_ignore_ascii_case(n))),
            Identity::Rfc822(n) => self
                .sans
                .iter()
                .any(|s| matches!(s, SubjectAltName::Email(d) if d.eq_ignore_ascii_case(n))),
            Identity::Ipv4(a) => self.sans.contains(&SubjectAltName::Ip(IpAddr::V4(*a))),
            Identity::Ipv6(a) => self.sans.contains(&SubjectAltName::Ip(IpAddr::V6(*a))),
            Identity::KeyId(k) => k[..] == self.key_id,
            Identity::Any => false,
        }
    }
}

/// Accepts every Extended Key Usage (strongSwan checks none by default), still rejecting a
/// malformed extension.
struct AnyExtendedKeyUsage;

impl ExtendedKeyUsageValidator for AnyExtendedKeyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

fn chain_error(e: webpki::Error) -> AuthError {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } => AuthError::Expired,
        E::CertNotValidYet { .. } => AuthError::NotYetValid,
        E::UnknownIssuer => {
            AuthError::UntrustedChain("no path to a trusted CA (unknown issuer)".into())
        }
        E::InvalidSignatureForPublicKey => {
            AuthError::UntrustedChain("a certificate signature does not verify".into())
        }
        other => AuthError::UntrustedChain(format!("{other:?}")),
    }
}

/// Trust anchors (CA certificates) for peer authentication.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    certs: Vec<Certificate>,
    anchors: Vec<TrustAnchor<'static>>,
}

impl TrustStore {
    /// A store trusting `cas`.
    pub fn new(cas: Vec<Certificate>) -> Result<TrustStore, AuthError> {
        let mut anchors = Vec::with_capacity(cas.len());
        for ca in &cas {
            let der = CertificateDer::from(ca.der());
            anchors.push(
                webpki::anchor_from_trusted_cert(&der)
                    .map_err(|e| AuthError::BadCertificate(format!("trust anchor: {e:?}")))?
                    .to_owned(),
            );
        }
        Ok(TrustStore {
            certs: cas,
            anchors,
        })
    }

    /// The anchors.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// The CERTREQ payload naming every anchor, or `None` for an empty store.
    pub fn certificate_request(&self) -> Option<CertificateRequest> {
        (!self.certs.is_empty()).then(|| CertificateRequest {
            encoding: CertEncoding::X509_SIGNATURE,
            authorities: self.certs.iter().flat_map(|c| c.spki_sha1()).collect(),
        })
    }

    /// Validates `end_entity` with the peer's `intermediates` at time `now` and returns it
    /// parsed.
    pub fn verify_chain(
        &self,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        now: SystemTime,
    ) -> Result<Certificate, AuthError> {
        let ee_der = CertificateDer::from(end_entity);
        let ee = EndEntityCert::try_from(&ee_der)
            .map_err(|e| AuthError::BadCertificate(format!("{e:?}")))?;
        let inter: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(*c))
            .collect();
        let since = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &inter,
            UnixTime::since_unix_epoch(since),
            AnyExtendedKeyUsage,
            None,
            None,
        )
        .map_err(chain_error)?;
        Certificate::from_der(end_entity.to_vec())
    }
}

/// Picks the CERT payloads to send: the end-entity certificate, then the intermediates up to
/// the first one issued by a CA the peer names in its CERTREQs (by key hash), or all of them.
/// CERTREQs of other encodings are ignored.
pub fn select_chain(chain: &[Certificate], requests: &[CertificateRequest]) -> Vec<CertPayload> {
    let requested: Vec<&[u8]> = requests
        .iter()
        .filter(|r| r.encoding == CertEncoding::X509_SIGNATURE)
        .filter_map(|r| r.sha1_hashes())
        .flatten()
        .collect();
    let mut out = Vec::new();
    for (i, cert) in chain.iter().enumerate() {
        if i > 0 && requested.contains(&&cert.spki_sha1()[..]) {
            // The peer trusts this CA: what we sent so far reaches it.
            break;
        }
        out.push(cert.to_payload());
    }
    out
}
