//! Key derivation: SKEYSEED and the IKE SA keys
//! ([RFC 7296 § 2.14](https://www.rfc-editor.org/rfc/rfc7296#section-2.14)), rekeyed SKEYSEED
//! ([§ 2.18](https://www.rfc-editor.org/rfc/rfc7296#section-2.18)) and CHILD_SA KEYMAT
//! ([§ 2.17](https://www.rfc-editor.org/rfc/rfc7296#section-2.17)).

use super::Secret;
use super::prf::{Prf, PrfPlusTooLong};
use super::sk::{Encr, Integ};

/// The keys of one IKE SA.
///
/// "{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)".
/// With an AEAD, SK_ai and SK_ar are empty and SK_ei/SK_er include the salt
/// ([RFC 5282 § 7.1](https://www.rfc-editor.org/rfc/rfc5282#section-7.1)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeKeys {
    /// SKEYSEED itself (kept for diagnostics in tests; the engine may drop it).
    pub skeyseed: Secret,
    /// "used for deriving new keys for the Child SAs".
    pub sk_d: Secret,
    /// Integrity key, initiator to responder.
    pub sk_ai: Secret,
    /// Integrity key, responder to initiator.
    pub sk_ar: Secret,
    /// Encryption key (with salt for AEAD), initiator to responder.
    pub sk_ei: Secret,
    /// Encryption key (with salt for AEAD), responder to initiator.
    pub sk_er: Secret,
    /// Used to generate the initiator's AUTH payload.
    pub sk_pi: Secret,
    /// Used to generate the responder's AUTH payload.
    pub sk_pr: Secret,
}

/// The algorithms that fix the key lengths of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    /// The PRF.
    pub prf: Prf,
    /// The encryption algorithm.
    pub encr: Encr,
    /// The integrity algorithm; `None` with an AEAD.
    pub integ: Option<Integ>,
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)`.
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], shared: &Secret) -> Secret {
    let mut key = Secret::new(Vec::with_capacity(ni.len() + nr.len()));
    key.0.extend_from_slice(ni);
    key.0.extend_from_slice(nr);
    prf.prf(key.expose(), &[shared.expose()])
}

/// Rekeyed SKEYSEED: `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)`.
pub fn skeyseed_rekey(
    prf: Prf,
    old_sk_d: &Secret,
    shared: &Secret,
    ni: &[u8],
    nr: &[u8],
) -> Secret {
    prf.prf(old_sk_d.expose(), &[shared.expose(), ni, nr])
}

impl IkeKeys {
    /// Derives every key from SKEYSEED, the nonces and the SPIs.
    pub fn derive(
        suite: IkeSuite,
        skeyseed: Secret,
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
    ) -> Result<IkeKeys, PrfPlusTooLong> {
        let p = suite.prf.output_len();
        let a = suite.integ.map_or(0, Integ::key_len);
        let e = suite.encr.key_material_len();
        let total = 3 * p + 2 * a + 2 * e;
        let km = suite.prf.prf_plus(
            skeyseed.expose(),
            &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()],
            total,
        )?;
        let mut at = 0;
        let mut take = |n: usize| {
            let s = Secret::from_slice(&km.expose()[at..at + n]);
            at += n;
            s
        };
        Ok(IkeKeys {
            sk_d: take(p),
            sk_ai: take(a),
            sk_ar: take(a),
            sk_ei: take(e),
            sk_er: take(e),
            sk_pi: take(p),
            sk_pr: take(p),
            skeyseed,
        })
    }
}

/// The keys of one CHILD_SA (both directions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildKeys {
    /// Encryption key (with salt for AEAD) for the SA carrying data initiator → responder.
    pub encr_i: Secret,
    /// Integrity key, initiator → responder (empty with an AEAD).
    pub integ_i: Secret,
    /// Encryption key (with salt for AEAD), responder → initiator.
    pub encr_r: Secret,
    /// Integrity key, responder → initiator.
    pub integ_r: Secret,
}

/// CHILD_SA KEYMAT: `prf+(SK_d, Ni | Nr)`, or with PFS `prf+(SK_d, g^ir (new) | Ni | Nr)`.
///
/// "All keys for SAs carrying data from the initiator to the responder are taken before SAs
/// going from the responder to the initiator"; within one SA, the encryption key comes first
/// ([RFC 7296 § 2.17](https://www.rfc-editor.org/rfc/rfc7296#section-2.17)).
pub fn child_keys(
    prf: Prf,
    sk_d: &Secret,
    pfs_shared: Option<&Secret>,
    ni: &[u8],
    nr: &[u8],
    encr: Encr,
    integ: Option<Integ>,
) -> Result<ChildKeys, PrfPlusTooLong> {
    let e = encr.key_material_len();
    let a = integ.map_or(0, Integ::key_len);
    let km = match pfs_shared {
        Some(g) => prf.prf_plus(sk_d.expose(), &[g.expose(), ni, nr], 2 * (e + a))?,
        None => prf.prf_plus(sk_d.expose(), &[ni, nr], 2 * (e + a))?,
    };
    let k = km.expose();
    Ok(ChildKeys {
        encr_i: Secret::from_slice(&k[..e]),
        integ_i: Secret::from_slice(&k[e..e + a]),
        encr_r: Secret::from_slice(&k[e + a..2 * e + a]),
        integ_r: Secret::from_slice(&k[2 * e + a..]),
    })
}

/// Splits AES-GCM key material into the key and the 4-byte salt: "the salt value is the last
/// four octets" of the keying material
/// ([RFC 5282 § 7.1](https://www.rfc-editor.org/rfc/rfc5282#section-7.1),
/// [RFC 4106 § 8.1](https://www.rfc-editor.org/rfc/rfc4106#section-8.1)).
/// Returns `None` when `material` is shorter than the salt.
pub fn split_salt(material: &Secret) -> Option<(Secret, [u8; 4])> {
    let m = material.expose();
    let cut = m.len().checked_sub(4)?;
    let mut salt = [0u8; 4];
    salt.copy_from_slice(&m[cut..]);
    Some((Secret::from_slice(&m[..cut]), salt))
}
