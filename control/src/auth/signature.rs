//! Digital signature authentication: RFC 7427's method 14 with its ASN.1 AlgorithmIdentifier
//! prefix, the SIGNATURE_HASH_ALGORITHMS negotiation, and verification of the classic methods
//! 1 (RSA with SHA-1) and 9/10/11 (ECDSA, [RFC 4754](https://www.rfc-editor.org/rfc/rfc4754)).
//!
//! [RFC 7427 § 3](https://www.rfc-editor.org/rfc/rfc7427#section-3) lays out the AUTH data:
//!
//! ```text
//! | ASN.1 Length | AlgorithmIdentifier ASN.1 object | Signature Value |
//! ```
//!
//! "ASN.1 Length (1 octet): The length of the ASN.1-encoded AlgorithmIdentifier object."

use std::fmt;

use super::AuthError;
use super::der::{self, DerReader, tag};
use crate::wire::{AuthMethod, HashAlgorithm};

/// A signature algorithm usable for IKEv2 authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// `sha256WithRSAEncryption` (RSASSA-PKCS1-v1_5).
    RsaPkcs1Sha256,
    /// `sha384WithRSAEncryption`.
    RsaPkcs1Sha384,
    /// `sha512WithRSAEncryption`.
    RsaPkcs1Sha512,
    /// `id-RSASSA-PSS` with SHA-256, MGF1-SHA-256, a 32-octet salt.
    RsaPssSha256,
    /// `id-RSASSA-PSS` with SHA-384, MGF1-SHA-384, a 48-octet salt.
    RsaPssSha384,
    /// `id-RSASSA-PSS` with SHA-512, MGF1-SHA-512, a 64-octet salt.
    RsaPssSha512,
    /// `ecdsa-with-SHA256` (DER-encoded signature).
    EcdsaSha256,
    /// `ecdsa-with-SHA384`.
    EcdsaSha384,
    /// `ecdsa-with-SHA512`.
    EcdsaSha512,
    /// `id-Ed25519` ([RFC 8420](https://www.rfc-editor.org/rfc/rfc8420)): pure EdDSA over the
    /// signed octets, announced with the `Identity` hash.
    Ed25519,
}

/// The hash algorithms roamgate announces in SIGNATURE_HASH_ALGORITHMS
/// ([RFC 7427 § 4](https://www.rfc-editor.org/rfc/rfc7427#section-4)), in preference order.
pub const SUPPORTED_HASHES: &[HashAlgorithm] = &[
    HashAlgorithm::SHA2_256,
    HashAlgorithm::SHA2_384,
    HashAlgorithm::SHA2_512,
    HashAlgorithm::IDENTITY,
];

/// How RSA keys sign with RFC 7427. strongSwan signs with PKCS#1 v1.5 unless `rsa/pss` is
/// configured; roamgate follows that default and verifies both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RsaPadding {
    /// RSASSA-PKCS1-v1_5.
    #[default]
    Pkcs1,
    /// RSASSA-PSS, salt length = hash length.
    Pss,
}

// Dotted OIDs of the algorithms (RFC 8017, RFC 5758, RFC 8410).
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";

impl SignatureScheme {
    /// Every scheme.
    pub const ALL: [SignatureScheme; 10] = [
        SignatureScheme::RsaPkcs1Sha256,
        SignatureScheme::RsaPkcs1Sha384,
        SignatureScheme::RsaPkcs1Sha512,
        SignatureScheme::RsaPssSha256,
        SignatureScheme::RsaPssSha384,
        SignatureScheme::RsaPssSha512,
        SignatureScheme::EcdsaSha256,
        SignatureScheme::EcdsaSha384,
        SignatureScheme::EcdsaSha512,
        SignatureScheme::Ed25519,
    ];

    /// The SIGNATURE_HASH_ALGORITHMS value this scheme needs the peer to have announced.
    pub fn hash(self) -> HashAlgorithm {
        use SignatureScheme as S;
        match self {
            S::RsaPkcs1Sha256 | S::RsaPssSha256 | S::EcdsaSha256 => HashAlgorithm::SHA2_256,
            S::RsaPkcs1Sha384 | S::RsaPssSha384 | S::EcdsaSha384 => HashAlgorithm::SHA2_384,
            S::RsaPkcs1Sha512 | S::RsaPssSha512 | S::EcdsaSha512 => HashAlgorithm::SHA2_512,
            S::Ed25519 => HashAlgorithm::IDENTITY,
        }
    }

    fn hash_oid(self) -> &'static str {
        match self.hash() {
            HashAlgorithm::SHA2_384 => "2.16.840.1.101.3.4.2.2",
            HashAlgorithm::SHA2_512 => "2.16.840.1.101.3.4.2.3",
            _ => "2.16.840.1.101.3.4.2.1",
        }
    }

    fn hash_len(self) -> usize {
        match self.hash() {
            HashAlgorithm::SHA2_384 => 48,
            HashAlgorithm::SHA2_512 => 64,
            _ => 32,
        }
    }

    /// The OID of a scheme without parameters of its own (all but PSS).
    fn plain_oid(self) -> Option<&'static str> {
        use SignatureScheme as S;
        Some(match self {
            S::RsaPkcs1Sha256 => "1.2.840.113549.1.1.11",
            S::RsaPkcs1Sha384 => "1.2.840.113549.1.1.12",
            S::RsaPkcs1Sha512 => "1.2.840.113549.1.1.13",
            S::EcdsaSha256 => "1.2.840.10045.4.3.2",
            S::EcdsaSha384 => "1.2.840.10045.4.3.3",
            S::EcdsaSha512 => "1.2.840.10045.4.3.4",
            S::Ed25519 => "1.3.101.112",
            S::RsaPssSha256 | S::RsaPssSha384 | S::RsaPssSha512 => return None,
        })
    }

    /// The DER AlgorithmIdentifier that prefixes the signature in the AUTH data
    /// ([RFC 7427 Appendix A](https://www.rfc-editor.org/rfc/rfc7427#appendix-A)). RSA
    /// PKCS#1 v1.5 carries NULL parameters, ECDSA and Ed25519 none (RFC 5758, RFC 8410).
    pub fn algorithm_identifier(self) -> Vec<u8> {
        let oid = |dotted: &str| {
            der::element(tag::OID, &der::oid_from_dotted(dotted).unwrap_or_default())
        };
        let mut body = Vec::new();
        match self {
            SignatureScheme::RsaPkcs1Sha256
            | SignatureScheme::RsaPkcs1Sha384
            | SignatureScheme::RsaPkcs1Sha512 => {
                body.extend(oid(self.plain_oid().unwrap_or_default()));
                body.extend(der::element(tag::NULL, &[]));
            }
            SignatureScheme::RsaPssSha256
            | SignatureScheme::RsaPssSha384
            | SignatureScheme::RsaPssSha512 => {
                let mut hash_alg = oid(self.hash_oid());
                hash_alg.extend(der::element(tag::NULL, &[]));
                let hash_alg = der::element(tag::SEQUENCE, &hash_alg);
                let mut mgf = oid(OID_MGF1);
                mgf.extend(&hash_alg);
                let mgf = der::element(tag::SEQUENCE, &mgf);
                let salt = der::element(tag::INTEGER, &[self.hash_len() as u8]);
                let mut params = der::element(tag::context(0), &hash_alg);
                params.extend(der::element(tag::context(1), &mgf));
                params.extend(der::element(tag::context(2), &salt));
                body.extend(oid(OID_RSA_PSS));
                body.extend(der::element(tag::SEQUENCE, &params));
            }
            _ => body.extend(oid(self.plain_oid().unwrap_or_default())),
        }
        der::element(tag::SEQUENCE, &body)
    }

    /// Recognises a DER AlgorithmIdentifier received in an AUTH payload.
    pub fn from_algorithm_identifier(bytes: &[u8]) -> Result<SignatureScheme, AuthError> {
        let malformed = || AuthError::MalformedAuth("AlgorithmIdentifier is not valid DER");
        let mut outer = DerReader::new(bytes);
        let mut seq = DerReader::new(outer.read(tag::SEQUENCE).map_err(|_| malformed())?);
        outer.finish().map_err(|_| malformed())?;
        let oid = seq.read(tag::OID).map_err(|_| malformed())?;
        let dotted = der::oid_to_dotted(oid).ok_or_else(malformed)?;
        if dotted == OID_RSA_PSS {
            let params = seq.read(tag::SEQUENCE).map_err(|_| malformed())?;
            seq.finish().map_err(|_| malformed())?;
            return parse_pss_params(params);
        }
        // NULL parameters are tolerated where none are expected, as many implementations
        // send them.
        if seq
            .read_optional(tag::NULL)
            .map_err(|_| malformed())?
            .is_some_and(|n| !n.is_empty())
        {
            return Err(malformed());
        }
        seq.finish().map_err(|_| malformed())?;
        SignatureScheme::ALL
            .into_iter()
            .find(|s| s.plain_oid() == Some(dotted.as_str()))
            .ok_or_else(|| AuthError::UnsupportedAlgorithm(format!("signature algorithm {dotted}")))
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SignatureScheme as S;
        f.write_str(match self {
            S::RsaPkcs1Sha256 => "sha256WithRSAEncryption",
            S::RsaPkcs1Sha384 => "sha384WithRSAEncryption",
            S::RsaPkcs1Sha512 => "sha512WithRSAEncryption",
            S::RsaPssSha256 => "RSASSA-PSS/SHA-256",
            S::RsaPssSha384 => "RSASSA-PSS/SHA-384",
            S::RsaPssSha512 => "RSASSA-PSS/SHA-512",
            S::EcdsaSha256 => "ecdsa-with-SHA256",
            S::EcdsaSha384 => "ecdsa-with-SHA384",
            S::EcdsaSha512 => "ecdsa-with-SHA512",
            S::Ed25519 => "Ed25519",
        })
    }
}

/// `RSASSA-PSS-params` ([RFC 8017 Appendix A.2.3](https://www.rfc-editor.org/rfc/rfc8017#appendix-A.2.3)):
/// accepted when hash and MGF1 hash agree, the salt is as long as the hash (strongSwan's
/// default) and the trailer field is the default.
fn parse_pss_params(params: &[u8]) -> Result<SignatureScheme, AuthError> {
    let malformed = || AuthError::MalformedAuth("RSASSA-PSS parameters are not valid DER");
    let unsupported =
        |why: &str| AuthError::UnsupportedAlgorithm(format!("RSASSA-PSS parameters: {why}"));
    let hash_of = |alg: &[u8]| -> Result<String, AuthError> {
        let mut r = DerReader::new(alg);
        let mut seq = DerReader::new(r.read(tag::SEQUENCE).map_err(|_| malformed())?);
        r.finish().map_err(|_| malformed())?;
        let oid = seq.read(tag::OID).map_err(|_| malformed())?;
        seq.read_optional(tag::NULL).map_err(|_| malformed())?;
        seq.finish().map_err(|_| malformed())?;
        der::oid_to_dotted(oid).ok_or_else(malformed)
    };
    let mut r = DerReader::new(params);
    let hash = match r.read_optional(tag::context(0)).map_err(|_| malformed())? {
        Some(h) => hash_of(h)?,
        None => return Err(unsupported("SHA-1 (the default hash)")),
    };
    let mgf = r
        .read_optional(tag::context(1))
        .map_err(|_| malformed())?
        .ok_or_else(|| unsupported("MGF1 with SHA-1 (the default)"))?;
    let mut mgf_outer = DerReader::new(mgf);
    let mut mgf_seq = DerReader::new(mgf_outer.read(tag::SEQUENCE).map_err(|_| malformed())?);
    let mgf_oid = mgf_seq.read(tag::OID).map_err(|_| malformed())?;
    if der::oid_to_dotted(mgf_oid).as_deref() != Some(OID_MGF1) {
        return Err(unsupported("mask generation function other than MGF1"));
    }
    let mut mgf_hash = Vec::new();
    der::write(
        &mut mgf_hash,
        tag::SEQUENCE,
        mgf_seq.read(tag::SEQUENCE).map_err(|_| malformed())?,
    );
    let mgf_hash = hash_of(&mgf_hash)?;
    let salt = match r.read_optional(tag::context(2)).map_err(|_| malformed())? {
        Some(s) => {
            let mut sr = DerReader::new(s);
            let v = sr.read(tag::INTEGER).map_err(|_| malformed())?;
            sr.finish().map_err(|_| malformed())?;
            if v.len() > 2 {
                return Err(unsupported("salt length"));
            }
            v.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        None => 20,
    };
    if let Some(t) = r.read_optional(tag::context(3)).map_err(|_| malformed())?
        && t != [tag::INTEGER, 1, 1]
    {
        return Err(unsupported("trailer field"));
    }
    r.finish().map_err(|_| malformed())?;
    if mgf_hash != hash {
        return Err(unsupported("MGF1 hash differs from the signature hash"));
    }
    let scheme = [
        SignatureScheme::RsaPssSha256,
        SignatureScheme::RsaPssSha384,
        SignatureScheme::RsaPssSha512,
    ]
    .into_iter()
    .find(|s| s.hash_oid() == hash)
    .ok_or_else(|| unsupported(&format!("hash {hash}")))?;
    if salt != scheme.hash_len() {
        return Err(unsupported(&format!(
            "salt length {salt} (only the hash length is supported)"
        )));
    }
    Ok(scheme)
}

/// The signature scheme of a received AUTH payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// Method 14 with the scheme its AlgorithmIdentifier names.
    Rfc7427(SignatureScheme),
    /// Method 1: RSASSA-PKCS1-v1_5 with SHA-1.
    RsaSha1,
    /// Method 9: ECDSA P-256 with SHA-256, `r | s`.
    EcdsaP256Sha256,
    /// Method 10: ECDSA P-384 with SHA-384, `r | s`.
    EcdsaP384Sha384,
    /// Method 11: ECDSA P-521 with SHA-512, `r | s`.
    EcdsaP521Sha512,
}

impl fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthScheme::Rfc7427(s) => write!(f, "{s} (RFC 7427)"),
            AuthScheme::RsaSha1 => f.write_str("RSA/SHA-1 (method 1)"),
            AuthScheme::EcdsaP256Sha256 => f.write_str("ECDSA P-256/SHA-256 (method 9)"),
            AuthScheme::EcdsaP384Sha384 => f.write_str("ECDSA P-384/SHA-384 (method 10)"),
            AuthScheme::EcdsaP521Sha512 => f.write_str("ECDSA P-521/SHA-512 (method 11)"),
        }
    }
}

/// Splits AUTH data into its scheme and the signature value.
pub fn split_auth_data(method: AuthMethod, data: &[u8]) -> Result<(AuthScheme, &[u8]), AuthError> {
    let scheme = match method {
        AuthMethod::DIGITAL_SIGNATURE => {
            let (&len, rest) = data
                .split_first()
                .ok_or(AuthError::MalformedAuth("empty AUTH data"))?;
            let len = usize::from(len);
            if len == 0 || rest.len() <= len {
                return Err(AuthError::MalformedAuth(
                    "AlgorithmIdentifier length exceeds the AUTH data",
                ));
            }
            let (alg, sig) = rest.split_at(len);
            return Ok((
                AuthScheme::Rfc7427(SignatureScheme::from_algorithm_identifier(alg)?),
                sig,
            ));
        }
        AuthMethod::RSA_DIGITAL_SIGNATURE => AuthScheme::RsaSha1,
        AuthMethod::ECDSA_SHA256_P256 => AuthScheme::EcdsaP256Sha256,
        AuthMethod::ECDSA_SHA384_P384 => AuthScheme::EcdsaP384Sha384,
        AuthMethod::ECDSA_SHA512_P521 => AuthScheme::EcdsaP521Sha512,
        other => return Err(AuthError::UnexpectedMethod(other.0)),
    };
    if data.is_empty() {
        return Err(AuthError::MalformedAuth("empty AUTH data"));
    }
    Ok((scheme, data))
}

/// Builds method-14 AUTH data: `len | AlgorithmIdentifier | signature`.
pub fn rfc7427_auth_data(scheme: SignatureScheme, signature: &[u8]) -> Vec<u8> {
    let alg = scheme.algorithm_identifier();
    let mut out = Vec::with_capacity(1 + alg.len() + signature.len());
    // Every AlgorithmIdentifier built here is shorter than 64 octets.
    out.push(alg.len() as u8);
    out.extend_from_slice(&alg);
    out.extend_from_slice(signature);
    out
}
