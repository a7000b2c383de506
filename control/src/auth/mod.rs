//! Peer authentication for IKE_AUTH: pre-shared keys and digital signatures with X.509
//! certificates ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15),
//! [RFC 7427](https://www.rfc-editor.org/rfc/rfc7427)), identities and their matching.
//!
//! The engine builds the signed octets (RealMessage | Nonce | prf(SK_p, ID')) and calls:
//!
//! - PSK: [`psk_authentication`] to make its AUTH payload, [`verify_psk_auth`] to check the
//!   peer's.
//! - Signatures: [`Credential::sign`] with the hashes the peer announced in
//!   SIGNATURE_HASH_ALGORITHMS (or `None`), [`Credential::cert_payloads`] for the CERT
//!   payloads; [`TrustStore::certificate_request`] for the CERTREQ it sends;
//!   [`authenticate_peer`] to validate the peer's chain, identity and signature at once.
//!
//! Nothing here reads a clock: the time for certificate validity comes in as an argument.
//! Signing uses aws-lc's internal DRBG for ECDSA nonces and PSS salts (RSA PKCS#1 v1.5 and
//! Ed25519 are deterministic). Key material never appears in `Debug` output or in errors.
//!
//! Crates: aws-lc-rs does every signature and verification (RSA PKCS#1 v1.5 and PSS, ECDSA,
//! Ed25519; never the `rsa` crate, RUSTSEC-2023-0071). rustls-webpki (aws-lc-rs backend)
//! validates certificate paths; x509-parser reads subject DNs and SubjectAltNames;
//! rustls-pki-types decodes PEM. See `docs/config.md` for the reasons.

// Deterministic and sans-IO: no clock, OS randomness, socket or file (control/clippy.toml).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod cert;
mod der;
mod dn;
mod identity;
mod key;
mod psk;
mod signature;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use cert::{Certificate, SubjectAltName, TrustStore, select_chain};
pub use dn::{Attribute, DistinguishedName, DnError};
pub use identity::{IdMatch, Identity, IdentityError};
pub use key::{KeyKind, PrivateKey, PublicKey};
pub use psk::{
    KEY_PAD, SharedSecret, SharedSecrets, psk_auth_data, psk_authentication, verify_psk_auth,
};
pub use signature::{
    AuthScheme, RsaPadding, SUPPORTED_HASHES, SignatureScheme, rfc7427_auth_data, split_auth_data,
};

use crate::wire::payload::{
    Authentication, Certificate as CertPayload, CertificateRequest, Identification,
};
use crate::wire::{AuthMethod, CertEncoding, HashAlgorithm};

/// Why authentication (or loading credentials for it) failed. Messages name the reason, never
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The certificate chain does not lead to a trust anchor, or a link in it is invalid.
    #[error("untrusted certificate chain: {0}")]
    UntrustedChain(String),
    /// A certificate in the chain has expired.
    #[error("certificate expired")]
    Expired,
    /// A certificate in the chain is not valid yet.
    #[error("certificate not yet valid")]
    NotYetValid,
    /// The identity the peer sent does not match the configured remote identity.
    #[error("peer identity `{got}` does not match the configured `{expected}`")]
    IdMismatch {
        /// The configured identity (or pattern).
        expected: String,
        /// What the peer sent.
        got: String,
    },
    /// The identity the peer sent is not bound to its certificate (subject or SubjectAltName).
    #[error("peer identity `{0}` is not in its certificate's subject or subjectAltName")]
    IdNotInCertificate(String),
    /// The peer's identity payload cannot be decoded.
    #[error("peer identity: {0}")]
    BadIdentity(#[from] IdentityError),
    /// A signature does not verify.
    #[error("bad {0} signature")]
    BadSignature(String),
    /// No configured pre-shared key is for these identities.
    #[error("no pre-shared key for `{local}` and `{remote}`")]
    NoSharedKey {
        /// Our identity.
        local: String,
        /// The peer's.
        remote: String,
    },
    /// A `SHARED_KEY_MIC` AUTH value does not match the pre-shared key.
    #[error("AUTH value does not match the pre-shared key")]
    BadSharedKeyMic,
    /// An algorithm, key type or parameter we do not implement.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The AUTH method is not the one expected here.
    #[error("unexpected AUTH method {0}")]
    UnexpectedMethod(u8),
    /// AUTH data that cannot be parsed.
    #[error("malformed AUTH data: {0}")]
    MalformedAuth(&'static str),
    /// The peer sent no X.509 certificate.
    #[error("peer sent no X.509 certificate")]
    MissingCertificate,
    /// A certificate that cannot be parsed or used.
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// A private key that cannot be loaded (the message never contains key bytes).
    #[error("bad private key: {0}")]
    BadKey(String),
    /// A private key that does not belong to the certificate it is used with.
    #[error("private key does not match certificate `{0}`")]
    KeyMismatch(String),
    /// Signing failed inside the crypto library.
    #[error("signing failed")]
    SigningFailed,
    /// A file could not be read.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl AuthError {
    /// The Notify the peer should see: every failure here is AUTHENTICATION_FAILED (24)
    /// ([RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1)), which
    /// deliberately says no more.
    pub fn notify(&self) -> crate::wire::NotifyType {
        crate::wire::NotifyType::AUTHENTICATION_FAILED
    }
}

/// Our own signing credential: a private key and the certificate chain that goes with it
/// (end-entity first).
#[derive(Debug)]
pub struct Credential {
    key: PrivateKey,
    chain: Vec<Certificate>,
    rsa_padding: RsaPadding,
}

impl Credential {
    /// Pairs `key` with `chain` (end-entity first); fails if the key is not the end-entity
    /// certificate's.
    pub fn new(key: PrivateKey, chain: Vec<Certificate>) -> Result<Credential, AuthError> {
        let ee = chain
            .first()
            .ok_or_else(|| AuthError::BadCertificate("empty certificate chain".into()))?;
        if ee.public_key() != key.public_key() {
            return Err(AuthError::KeyMismatch(ee.subject().to_string()));
        }
        Ok(Credential {
            key,
            chain,
            rsa_padding: RsaPadding::default(),
        })
    }

    /// Loads a private key file and certificate files (PEM or DER; a PEM file may hold a
    /// chain).
    pub fn load(key: &Path, certs: &[&Path]) -> Result<Credential, AuthError> {
        let bytes = key::read_secret_file(key)?;
        let key = PrivateKey::from_pem_or_der(&bytes)?;
        let mut chain = Vec::new();
        for path in certs {
            chain.extend(Certificate::load(path)?);
        }
        Credential::new(key, chain)
    }

    /// Signs RSA with PSS instead of PKCS#1 v1.5 (strongSwan's `rsa/pss`).
    pub fn with_rsa_padding(mut self, padding: RsaPadding) -> Credential {
        self.rsa_padding = padding;
        self
    }

    /// The end-entity certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.chain[0]
    }

    /// The chain, end-entity first.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The private key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The identity to send by default: the certificate's subject DN (as strongSwan does).
    pub fn default_identity(&self) -> Identity {
        Identity::Dn(self.certificate().subject().clone())
    }

    /// The CERT payloads to send, given the peer's CERTREQs (see [`select_chain`]).
    pub fn cert_payloads(&self, requests: &[CertificateRequest]) -> Vec<CertPayload> {
        select_chain(&self.chain, requests)
    }

    /// Makes our AUTH payload over `signed_octets`. With `peer_hashes` (the peer's
    /// SIGNATURE_HASH_ALGORITHMS, [RFC 7427 § 4](https://www.rfc-editor.org/rfc/rfc7427#section-4))
    /// it uses method 14 with a hash the peer supports; without, or when no hash fits, the
    /// classic ECDSA methods 9/10/11 (RSA and Ed25519 keys then fail with
    /// [`AuthError::UnsupportedAlgorithm`]).
    pub fn sign(
        &self,
        peer_hashes: Option<&[HashAlgorithm]>,
        signed_octets: &[u8],
    ) -> Result<Authentication, AuthError> {
        if let Some(scheme) =
            peer_hashes.and_then(|h| self.key.kind().choose_scheme(h, self.rsa_padding))
        {
            let signature = self.key.sign(scheme, signed_octets)?;
            return Ok(Authentication {
                method: AuthMethod::DIGITAL_SIGNATURE,
                data: rfc7427_auth_data(scheme, &signature),
            });
        }
        if let Some(hashes) = peer_hashes
            && self.key.kind().classic_method().is_none()
        {
            return Err(AuthError::UnsupportedAlgorithm(format!(
                "the peer's SIGNATURE_HASH_ALGORITHMS {hashes:?} offer no hash for a {} key",
                self.key.kind()
            )));
        }
        let (method, data) = self.key.sign_classic(signed_octets)?;
        Ok(Authentication { method, data })
    }
}

/// Verifies a signature AUTH payload (method 1, 9, 10, 11 or 14) with `key`; returns the
/// scheme used.
pub fn verify_signature_auth(
    key: &PublicKey,
    auth: &Authentication,
    signed_octets: &[u8],
) -> Result<AuthScheme, AuthError> {
    let (scheme, signature) = split_auth_data(auth.method, &auth.data)?;
    key.verify(scheme, signed_octets, signature)?;
    Ok(scheme)
}

/// A peer that passed [`authenticate_peer`].
#[derive(Debug, Clone)]
pub struct AuthenticatedPeer {
    /// The identity it sent (and proved).
    pub identity: Identity,
    /// Its end-entity certificate.
    pub certificate: Certificate,
    /// The signature scheme it used.
    pub scheme: AuthScheme,
}

/// Authenticates a peer that signs: validates its certificate chain (first `X509_SIGNATURE`
/// CERT is the end entity, the others intermediates) against `trust` at `now`, checks that
/// the identity it sent matches `remote_id` (the configured identity, `%any` or a pattern)
/// and is bound to the certificate, and verifies its AUTH over `signed_octets`.
pub fn authenticate_peer(
    trust: &TrustStore,
    remote_id: &Identity,
    peer_id: &Identification,
    certs: &[CertPayload],
    auth: &Authentication,
    signed_octets: &[u8],
    now: SystemTime,
) -> Result<AuthenticatedPeer, AuthError> {
    let identity = Identity::from_wire(peer_id)?;
    if remote_id.matches(&identity).is_none() {
        return Err(AuthError::IdMismatch {
            expected: remote_id.to_string(),
            got: identity.to_string(),
        });
    }
    let mut x509 = certs
        .iter()
        .filter(|c| c.encoding == CertEncoding::X509_SIGNATURE)
        .map(|c| &c.data[..]);
    let ee = x509.next().ok_or(AuthError::MissingCertificate)?;
    let intermediates: Vec<&[u8]> = x509.collect();
    let certificate = trust.verify_chain(ee, &intermediates, now)?;
    if !certificate.binds(&identity) {
        return Err(AuthError::IdNotInCertificate(identity.to_string()));
    }
    let scheme = verify_signature_auth(certificate.public_key(), auth, signed_octets)?;
    Ok(AuthenticatedPeer {
        identity,
        certificate,
        scheme,
    })
}
