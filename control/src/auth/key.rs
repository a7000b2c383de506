//! Private keys (signing) and public keys (verification), all through aws-lc-rs.
//!
//! Private keys load from PEM or DER in the formats strongSwan's `pki --gen` and OpenSSL write:
//! PKCS#8 (`PRIVATE KEY`; Ed25519 always), PKCS#1 (`RSA PRIVATE KEY`) and SEC1
//! (`EC PRIVATE KEY`). Encrypted keys are refused with a clear error. RSA never comes from the
//! `rsa` crate (RUSTSEC-2023-0071): aws-lc-rs does all of it.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use zeroize::Zeroizing;

use super::AuthError;
use super::der::{self, DerReader, tag};
use super::signature::{AuthScheme, RsaPadding, SignatureScheme};
use crate::wire::{AuthMethod, HashAlgorithm};

/// The kind of an asymmetric key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA.
    Rsa,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// ECDSA on NIST P-521.
    EcdsaP521,
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "RSA",
            KeyKind::EcdsaP256 => "ECDSA P-256",
            KeyKind::EcdsaP384 => "ECDSA P-384",
            KeyKind::EcdsaP521 => "ECDSA P-521",
            KeyKind::Ed25519 => "Ed25519",
        })
    }
}

impl KeyKind {
    /// The RFC 7427 scheme this key signs with, given the hashes the peer announced in
    /// SIGNATURE_HASH_ALGORITHMS ([RFC 7427 § 4](https://www.rfc-editor.org/rfc/rfc7427#section-4)).
    /// ECDSA uses the hash that matches its curve (as strongSwan does), RSA the first of
    /// SHA-256, SHA-384, SHA-512 the peer supports, Ed25519 needs `Identity`
    /// ([RFC 8420](https://www.rfc-editor.org/rfc/rfc8420)). `None` if nothing fits.
    pub fn choose_scheme(
        self,
        peer_hashes: &[HashAlgorithm],
        rsa: RsaPadding,
    ) -> Option<SignatureScheme> {
        use SignatureScheme as S;
        let candidates: &[SignatureScheme] = match (self, rsa) {
            (KeyKind::Rsa, RsaPadding::Pkcs1) => {
                &[S::RsaPkcs1Sha256, S::RsaPkcs1Sha384, S::RsaPkcs1Sha512]
            }
            (KeyKind::Rsa, RsaPadding::Pss) => &[S::RsaPssSha256, S::RsaPssSha384, S::RsaPssSha512],
            (KeyKind::EcdsaP256, _) => &[S::EcdsaSha256],
            (KeyKind::EcdsaP384, _) => &[S::EcdsaSha384],
            (KeyKind::EcdsaP521, _) => &[S::EcdsaSha512],
            (KeyKind::Ed25519, _) => &[S::Ed25519],
        };
        candidates
            .iter()
            .copied()
            .find(|s| peer_hashes.contains(&s.hash()))
    }

    /// The pre-RFC 7427 AUTH method this key can sign with, if any (ECDSA only: aws-lc-rs
    /// offers no RSA/SHA-1 signing, and Ed25519 exists only with RFC 7427).
    pub fn classic_method(self) -> Option<AuthMethod> {
        match self {
            KeyKind::EcdsaP256 => Some(AuthMethod::ECDSA_SHA256_P256),
            KeyKind::EcdsaP384 => Some(AuthMethod::ECDSA_SHA384_P384),
            KeyKind::EcdsaP521 => Some(AuthMethod::ECDSA_SHA512_P521),
            KeyKind::Rsa | KeyKind::Ed25519 => None,
        }
    }
}

enum Inner {
    Rsa(RsaKeyPair),
    Ecdsa {
        asn1: EcdsaKeyPair,
        fixed: EcdsaKeyPair,
    },
    Ed25519(Ed25519KeyPair),
}

/// A private key able to sign. `Debug` shows the key kind only.
pub struct PrivateKey {
    inner: Inner,
    kind: KeyKind,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, redacted)", self.kind)
    }
}

type EcAlgs = (
    KeyKind,
    &'static sig::EcdsaSigningAlgorithm,
    &'static sig::EcdsaSigningAlgorithm,
);

const EC_ALGS: [EcAlgs; 3] = [
    (
        KeyKind::EcdsaP256,
        &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
    ),
    (
        KeyKind::EcdsaP384,
        &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
        &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
    ),
    (
        KeyKind::EcdsaP521,
        &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
        &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
    ),
];

/// Why a private key could not be loaded (never includes key bytes).
fn bad_key(why: &str) -> AuthError {
    AuthError::BadKey(why.to_owned())
}

impl PrivateKey {
    /// Loads a key from PEM or DER bytes (see the module doc for the formats).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<PrivateKey, AuthError> {
        let text = std::str::from_utf8(bytes).unwrap_or("");
        if text.contains("-----BEGIN") {
            if text.contains("ENCRYPTED") {
                return Err(bad_key(
                    "encrypted private keys are not supported; decrypt it first",
                ));
            }
            let der = PrivateKeyDer::from_pem_slice(bytes)
                .map_err(|e| AuthError::BadKey(format!("no private key in PEM: {e}")))?;
            return match der {
                PrivateKeyDer::Pkcs1(k) => PrivateKey::from_pkcs1(k.secret_pkcs1_der()),
                PrivateKeyDer::Sec1(k) => PrivateKey::from_sec1(k.secret_sec1_der()),
                PrivateKeyDer::Pkcs8(k) => PrivateKey::from_pkcs8(k.secret_pkcs8_der()),
                _ => Err(bad_key("unsupported PEM private key type")),
            };
        }
        PrivateKey::from_pkcs8(bytes)
            .or_else(|_| PrivateKey::from_pkcs1(bytes))
            .or_else(|_| PrivateKey::from_sec1(bytes))
            .map_err(|_| bad_key("not a PKCS#8, PKCS#1 RSA or SEC1 EC private key"))
    }

    /// Loads a PKCS#8 key (RSA, ECDSA P-256/P-384/P-521, Ed25519).
    pub fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, AuthError> {
        if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            return PrivateKey::rsa(k);
        }
        for (kind, asn1, fixed) in EC_ALGS {
            if let (Ok(a), Ok(f)) = (
                EcdsaKeyPair::from_pkcs8(asn1, der),
                EcdsaKeyPair::from_pkcs8(fixed, der),
            ) {
                return PrivateKey::ecdsa(kind, a, f);
            }
        }
        if let Ok(k) = Ed25519KeyPair::from_pkcs8(der) {
            let public = PublicKey::from_spki(spki_der(&k.public_key().as_der())?)?;
            return Ok(PrivateKey {
                inner: Inner::Ed25519(k),
                kind: KeyKind::Ed25519,
                public,
            });
        }
        Err(bad_key("unsupported or malformed PKCS#8 private key"))
    }

    /// Loads a PKCS#1 `RSAPrivateKey` (`pki --gen --type rsa`).
    pub fn from_pkcs1(der: &[u8]) -> Result<PrivateKey, AuthError> {
        PrivateKey::rsa(
            RsaKeyPair::from_der(der).map_err(|e| AuthError::BadKey(format!("RSA key: {e}")))?,
        )
    }

    /// Loads a SEC1 `ECPrivateKey` (`pki --gen --type ecdsa`).
    pub fn from_sec1(der: &[u8]) -> Result<PrivateKey, AuthError> {
        for (kind, asn1, fixed) in EC_ALGS {
            if let (Ok(a), Ok(f)) = (
                EcdsaKeyPair::from_private_key_der(asn1, der),
                EcdsaKeyPair::from_private_key_der(fixed, der),
            ) {
                return PrivateKey::ecdsa(kind, a, f);
            }
        }
        Err(bad_key("unsupported or malformed EC private key"))
    }

    fn rsa(k: RsaKeyPair) -> Result<PrivateKey, AuthError> {
        if k.public_modulus_len() < 256 {
            return Err(bad_key("RSA keys shorter than 2048 bits are not supported"));
        }
        let public = PublicKey::from_spki(spki_der(&k.public_key().as_der())?)?;
        Ok(PrivateKey {
            inner: Inner::Rsa(k),
            kind: KeyKind::Rsa,
            public,
        })
    }

    fn ecdsa(
        kind: KeyKind,
        asn1: EcdsaKeyPair,
        fixed: EcdsaKeyPair,
    ) -> Result<PrivateKey, AuthError> {
        let public = PublicKey::from_spki(spki_der(&asn1.public_key().as_der())?)?;
        Ok(PrivateKey {
            inner: Inner::Ecdsa { asn1, fixed },
            kind,
            public,
        })
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message` with an RFC 7427 scheme. Fails with
    /// [`AuthError::UnsupportedAlgorithm`] if the scheme does not fit the key (ECDSA signs
    /// only with the hash of its curve).
    pub fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        use SignatureScheme as S;
        let unsupported =
            || AuthError::UnsupportedAlgorithm(format!("{scheme} with a {} key", self.kind));
        let failed = |_| AuthError::SigningFailed;
        match (&self.inner, scheme) {
            (Inner::Rsa(k), _) => {
                let padding: &'static dyn sig::RsaEncoding = match scheme {
                    S::RsaPkcs1Sha256 => &sig::RSA_PKCS1_SHA256,
                    S::RsaPkcs1Sha384 => &sig::RSA_PKCS1_SHA384,
                    S::RsaPkcs1Sha512 => &sig::RSA_PKCS1_SHA512,
                    S::RsaPssSha256 => &sig::RSA_PSS_SHA256,
                    S::RsaPssSha384 => &sig::RSA_PSS_SHA384,
                    S::RsaPssSha512 => &sig::RSA_PSS_SHA512,
                    _ => return Err(unsupported()),
                };
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(padding, &signing_rng(), message, &mut out)
                    .map_err(failed)?;
                Ok(out)
            }
            (Inner::Ecdsa { asn1, .. }, _) => {
                let fits = matches!(
                    (self.kind, scheme),
                    (KeyKind::EcdsaP256, S::EcdsaSha256)
                        | (KeyKind::EcdsaP384, S::EcdsaSha384)
                        | (KeyKind::EcdsaP521, S::EcdsaSha512)
                );
                if !fits {
                    return Err(unsupported());
                }
                Ok(asn1
                    .sign(&signing_rng(), message)
                    .map_err(failed)?
                    .as_ref()
                    .to_vec())
            }
            (Inner::Ed25519(k), S::Ed25519) => Ok(k.sign(message).as_ref().to_vec()),
            (Inner::Ed25519(_), _) => Err(unsupported()),
        }
    }

    /// Signs `message` for a pre-RFC 7427 ECDSA method (9, 10 or 11: `r | s`,
    /// [RFC 4754 § 7](https://www.rfc-editor.org/rfc/rfc4754#section-7)).
    pub fn sign_classic(&self, message: &[u8]) -> Result<(AuthMethod, Vec<u8>), AuthError> {
        let method = self.kind.classic_method().ok_or_else(|| {
            AuthError::UnsupportedAlgorithm(format!(
                "a {} key needs RFC 7427 signature authentication, which the peer did not announce",
                self.kind
            ))
        })?;
        match &self.inner {
            Inner::Ecdsa { fixed, .. } => Ok((
                method,
                fixed
                    .sign(&signing_rng(), message)
                    .map_err(|_| AuthError::SigningFailed)?
                    .as_ref()
                    .to_vec(),
            )),
            _ => Err(AuthError::SigningFailed),
        }
    }
}

type SpkiResult =
    Result<aws_lc_rs::encoding::PublicKeyX509Der<'static>, aws_lc_rs::error::Unspecified>;

fn spki_der(d: &SpkiResult) -> Result<&[u8], AuthError> {
    d.as_ref()
        .map(|d| d.as_ref())
        .map_err(|_| bad_key("cannot encode the public key"))
}

/// A public key, from a certificate's SubjectPublicKeyInfo.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki: Vec<u8>,
    kind: KeyKind,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.kind)
    }
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

impl PublicKey {
    /// Reads a DER SubjectPublicKeyInfo ([RFC 5280 § 4.1.2.7](https://www.rfc-editor.org/rfc/rfc5280#section-4.1.2.7)).
    pub fn from_spki(spki: &[u8]) -> Result<PublicKey, AuthError> {
        let malformed = || AuthError::BadCertificate("malformed SubjectPublicKeyInfo".into());
        let mut outer = DerReader::new(spki);
        let mut seq = DerReader::new(outer.read(tag::SEQUENCE).map_err(|_| malformed())?);
        outer.finish().map_err(|_| malformed())?;
        let mut alg = DerReader::new(seq.read(tag::SEQUENCE).map_err(|_| malformed())?);
        let oid = der::oid_to_dotted(alg.read(tag::OID).map_err(|_| malformed())?)
            .ok_or_else(malformed)?;
        let kind = match oid.as_str() {
            OID_RSA => KeyKind::Rsa,
            OID_ED25519 => KeyKind::Ed25519,
            OID_EC => {
                let curve = der::oid_to_dotted(alg.read(tag::OID).map_err(|_| malformed())?)
                    .ok_or_else(malformed)?;
                match curve.as_str() {
                    OID_P256 => KeyKind::EcdsaP256,
                    OID_P384 => KeyKind::EcdsaP384,
                    OID_P521 => KeyKind::EcdsaP521,
                    other => {
                        return Err(AuthError::UnsupportedAlgorithm(format!("EC curve {other}")));
                    }
                }
            }
            other => {
                return Err(AuthError::UnsupportedAlgorithm(format!(
                    "public key type {other}"
                )));
            }
        };
        Ok(PublicKey {
            spki: spki.to_vec(),
            kind,
        })
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Verifies `signature` over `message` with `scheme`.
    pub fn verify(
        &self,
        scheme: AuthScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError> {
        use KeyKind as K;
        use SignatureScheme as S;
        let alg: &'static dyn sig::VerificationAlgorithm = match (self.kind, scheme) {
            (K::Rsa, AuthScheme::Rfc7427(s)) => match s {
                S::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                S::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                S::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                S::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
                S::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
                S::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
                _ => return Err(self.mismatch(scheme)),
            },
            (K::Rsa, AuthScheme::RsaSha1) => &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            (K::EcdsaP256, AuthScheme::Rfc7427(S::EcdsaSha256)) => &sig::ECDSA_P256_SHA256_ASN1,
            (K::EcdsaP256, AuthScheme::Rfc7427(S::EcdsaSha384)) => &sig::ECDSA_P256_SHA384_ASN1,
            (K::EcdsaP256, AuthScheme::Rfc7427(S::EcdsaSha512)) => &sig::ECDSA_P256_SHA512_ASN1,
            (K::EcdsaP384, AuthScheme::Rfc7427(S::EcdsaSha256)) => &sig::ECDSA_P384_SHA256_ASN1,
            (K::EcdsaP384, AuthScheme::Rfc7427(S::EcdsaSha384)) => &sig::ECDSA_P384_SHA384_ASN1,
            (K::EcdsaP384, AuthScheme::Rfc7427(S::EcdsaSha512)) => &sig::ECDSA_P384_SHA512_ASN1,
            (K::EcdsaP521, AuthScheme::Rfc7427(S::EcdsaSha256)) => &sig::ECDSA_P521_SHA256_ASN1,
            (K::EcdsaP521, AuthScheme::Rfc7427(S::EcdsaSha384)) => &sig::ECDSA_P521_SHA384_ASN1,
            (K::EcdsaP521, AuthScheme::Rfc7427(S::EcdsaSha512)) => &sig::ECDSA_P521_SHA512_ASN1,
            (K::EcdsaP256, AuthScheme::EcdsaP256Sha256) => &sig::ECDSA_P256_SHA256_FIXED,
            (K::EcdsaP384, AuthScheme::EcdsaP384Sha384) => &sig::ECDSA_P384_SHA384_FIXED,
            (K::EcdsaP521, AuthScheme::EcdsaP521Sha512) => &sig::ECDSA_P521_SHA512_FIXED,
            (K::Ed25519, AuthScheme::Rfc7427(S::Ed25519)) => &sig::ED25519,
            _ => return Err(self.mismatch(scheme)),
        };
        sig::UnparsedPublicKey::new(alg, &self.spki)
            .verify(message, signature)
            .map_err(|_| AuthError::BadSignature(scheme.to_string()))
    }

    fn mismatch(&self, scheme: AuthScheme) -> AuthError {
        AuthError::UnsupportedAlgorithm(format!("{scheme} with a {} key", self.kind))
    }
}

/// The `rng` argument of aws-lc-rs's RSA and ECDSA signing. aws-lc-rs (1.19) ignores it —
/// `sign(&self, _rng: &dyn SecureRandom, …)` — and draws RSA-PSS salts and ECDSA nonces from
/// AWS-LC's own DRBG, with no way to supply them: those two signature kinds are the one
/// output of the engine not drawn from its `Rng`. Ed25519 and RSA PKCS#1 v1.5 signatures
/// are deterministic, so an engine with those keys or PSK repeats itself byte for byte.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn signing_rng() -> aws_lc_rs::rand::SystemRandom {
    aws_lc_rs::rand::SystemRandom::new()
}

/// Reads a key file's bytes into memory that is zeroed when dropped (when the
/// configuration is loaded, by the daemon; never by the engine).
#[allow(clippy::disallowed_methods)]
pub(crate) fn read_secret_file(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| AuthError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}
