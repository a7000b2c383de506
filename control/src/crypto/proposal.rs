//! Proposal strings with strongSwan's keywords (`aes128gcm16-prfsha256-x25519`,
//! `aes256-sha256-modp2048`, ESP's `aes128gcm16` or `aes256gcm16-x25519` with PFS) turned into
//! typed transforms and into a wire [`Proposal`]
//! ([RFC 7296 § 3.3](https://www.rfc-editor.org/rfc/rfc7296#section-3.3)).
//!
//! Keywords follow strongSwan's `proposal_keywords_static.txt` for what roamgate implements.
//! As in strongSwan, an IKE proposal without a `prf…` keyword takes its PRFs from its
//! integrity algorithms (`sha256` → PRF_HMAC_SHA2_256); an AEAD IKE proposal needs an explicit
//! PRF. An ESP proposal has no PRF; a DH group in it asks for PFS.

use super::prf::Prf;
use super::sk::{Encr, Integ};
use crate::wire::payload::{Proposal, Transform};
use crate::wire::{DhGroup, EsnId, ProtocolId, TransformType};

/// Which SA a proposal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The IKE SA.
    Ike,
    /// An ESP CHILD_SA.
    Esp,
}

/// A parsed proposal: every transform it offers, by type, in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProposalSpec {
    /// For which SA.
    pub protocol: Protocol,
    /// Encryption algorithms.
    pub encr: Vec<Encr>,
    /// Integrity algorithms (empty for AEAD).
    pub integ: Vec<Integ>,
    /// PRFs (IKE only).
    pub prf: Vec<Prf>,
    /// DH groups (for ESP: PFS groups; may be empty).
    pub dh: Vec<DhGroup>,
    /// ESN choices (ESP only; `noesn` when none is written).
    pub esn: Vec<EsnId>,
}

/// Why a proposal string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// A keyword we do not know (or do not implement).
    #[error("unknown proposal keyword `{0}`")]
    Unknown(String),
    /// A keyword that does not belong in this kind of proposal (e.g. `prfsha256` for ESP).
    #[error("keyword `{0}` is not allowed in an {1:?} proposal")]
    NotAllowed(String, Protocol),
    /// No encryption algorithm.
    #[error("proposal `{0}` has no encryption algorithm")]
    NoEncryption(String),
    /// AEAD and non-AEAD encryption mixed, or integrity given with an AEAD, or missing without.
    #[error("proposal `{0}` mixes AEAD and non-AEAD algorithms or lacks integrity")]
    Integrity(String),
    /// An IKE proposal with no PRF and nothing to take one from.
    #[error("IKE proposal `{0}` has no PRF")]
    NoPrf(String),
    /// An IKE proposal without a DH group.
    #[error("IKE proposal `{0}` has no DH group")]
    NoDh(String),
}

enum Keyword {
    Encr(Encr),
    Integ(Integ),
    Prf(Prf),
    Dh(DhGroup),
    Esn(EsnId),
}

fn keyword(k: &str) -> Option<Keyword> {
    use Keyword as K;
    Some(match k {
        "aes128" => K::Encr(Encr::AesCbc(16)),
        "aes256" => K::Encr(Encr::AesCbc(32)),
        "aes128gcm16" | "aes128gcm128" => K::Encr(Encr::AesGcm16(16)),
        "aes256gcm16" | "aes256gcm128" => K::Encr(Encr::AesGcm16(32)),
        "sha256" | "sha2_256" => K::Integ(Integ::HmacSha256_128),
        "sha384" | "sha2_384" => K::Integ(Integ::HmacSha384_192),
        "sha512" | "sha2_512" => K::Integ(Integ::HmacSha512_256),
        "prfsha256" => K::Prf(Prf::HmacSha256),
        "prfsha384" => K::Prf(Prf::HmacSha384),
        "prfsha512" => K::Prf(Prf::HmacSha512),
        "x25519" | "curve25519" => K::Dh(DhGroup::CURVE25519),
        "ecp256" => K::Dh(DhGroup::ECP_256),
        "ecp384" => K::Dh(DhGroup::ECP_384),
        "modp2048" => K::Dh(DhGroup::MODP_2048),
        "esn" => K::Esn(EsnId::ESN),
        "noesn" => K::Esn(EsnId::NO_ESN),
        _ => return None,
    })
}

fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl ProposalSpec {
    /// Parses one proposal such as `aes128gcm16-prfsha256-x25519`.
    pub fn parse(protocol: Protocol, s: &str) -> Result<ProposalSpec, ProposalError> {
        let mut p = ProposalSpec {
            protocol,
            encr: Vec::new(),
            integ: Vec::new(),
            prf: Vec::new(),
            dh: Vec::new(),
            esn: Vec::new(),
        };
        for word in s.trim().split('-') {
            let lower = word.to_ascii_lowercase();
            match keyword(&lower) {
                Some(Keyword::Encr(e)) => push(&mut p.encr, e),
                Some(Keyword::Integ(i)) => push(&mut p.integ, i),
                Some(Keyword::Prf(f)) if protocol == Protocol::Ike => push(&mut p.prf, f),
                Some(Keyword::Esn(e)) if protocol == Protocol::Esp => push(&mut p.esn, e),
                Some(Keyword::Prf(_) | Keyword::Esn(_)) => {
                    return Err(ProposalError::NotAllowed(word.to_owned(), protocol));
                }
                Some(Keyword::Dh(g)) => push(&mut p.dh, g),
                None => return Err(ProposalError::Unknown(word.to_owned())),
            }
        }
        if p.encr.is_empty() {
            return Err(ProposalError::NoEncryption(s.to_owned()));
        }
        let aead = p.encr[0].is_aead();
        if p.encr.iter().any(|e| e.is_aead() != aead) || aead != p.integ.is_empty() {
            return Err(ProposalError::Integrity(s.to_owned()));
        }
        if protocol == Protocol::Ike {
            if p.prf.is_empty() {
                for i in &p.integ {
                    push(
                        &mut p.prf,
                        match i {
                            Integ::HmacSha256_128 => Prf::HmacSha256,
                            Integ::HmacSha384_192 => Prf::HmacSha384,
                            Integ::HmacSha512_256 => Prf::HmacSha512,
                        },
                    );
                }
            }
            if p.prf.is_empty() {
                return Err(ProposalError::NoPrf(s.to_owned()));
            }
            if p.dh.is_empty() {
                return Err(ProposalError::NoDh(s.to_owned()));
            }
        } else if p.esn.is_empty() {
            p.esn.push(EsnId::NO_ESN);
        }
        Ok(p)
    }

    /// The wire proposal, numbered `number`, with `spi` (empty for a first IKE_SA_INIT,
    /// 4 bytes for ESP). Transforms come in the order ENCR, PRF, INTEG, DH, ESN.
    pub fn to_wire(&self, number: u8, spi: Vec<u8>) -> Proposal {
        let mut transforms = Vec::new();
        for e in &self.encr {
            transforms.push(Transform::encr(e.id(), Some(e.key_bits())));
        }
        for f in &self.prf {
            transforms.push(Transform::prf(f.id()));
        }
        for i in &self.integ {
            transforms.push(Transform::integ(i.id()));
        }
        for g in &self.dh {
            transforms.push(Transform::dh(*g));
        }
        for e in &self.esn {
            transforms.push(Transform::new(TransformType::ESN, e.0));
        }
        Proposal {
            number,
            protocol: match self.protocol {
                Protocol::Ike => ProtocolId::IKE,
                Protocol::Esp => ProtocolId::ESP,
            },
            spi,
            transforms,
        }
    }
}
