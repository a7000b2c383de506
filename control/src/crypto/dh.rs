//! Diffie-Hellman key exchange for the groups roamgate offers: 31 (Curve25519,
//! [RFC 8031](https://www.rfc-editor.org/rfc/rfc8031)), 19 and 20 (ECP-256/384,
//! [RFC 5903](https://www.rfc-editor.org/rfc/rfc5903)) and 14 (2048-bit MODP,
//! [RFC 3526 § 3](https://www.rfc-editor.org/rfc/rfc3526#section-3)).
//!
//! x25519 and ECDH are aws-lc-rs's (it accepts a caller-made private key, so randomness comes
//! from the caller's [`Rng`]); MODP uses `crypto-bigint`'s constant-time Montgomery
//! exponentiation over a fixed 2048-bit `Uint` (not the `rsa` crate of RUSTSEC-2023-0071).
//!
//! Public values are encoded as IKEv2 wants them: ECP as `x | y` without the 0x04 prefix
//! ([RFC 5903 § 7](https://www.rfc-editor.org/rfc/rfc5903#section-7)); the ECP shared secret is
//! the x coordinate; the MODP values are big-endian, left-padded to 256 octets.

use aws_lc_rs::agreement;
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U2048};
use zeroize::Zeroizing;

use super::{Rng, Secret};
use crate::wire::DhGroup;

/// Why a key exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// We do not implement this group.
    #[error("unsupported DH group {0}")]
    Unsupported(u16),
    /// The peer's public value has the wrong length for the group.
    #[error("peer public value has the wrong length")]
    Length,
    /// The peer's public value is not valid (off the curve, out of range, low order).
    #[error("peer public value invalid")]
    Invalid,
}

/// RFC 3526 § 3 2048-bit MODP prime; "The generator is: 2."
const MODP2048_P: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// Private exponent length for MODP-2048, in bytes: 2 × the group's ~112-bit strength is the
/// minimum ([RFC 3526 § 8](https://www.rfc-editor.org/rfc/rfc3526#section-8)); we use 512 bits.
const MODP_EXP_BYTES: usize = 64;

enum Inner {
    Ec(agreement::PrivateKey, &'static agreement::Algorithm),
    Modp(Box<Zeroizing<U2048>>),
}

/// Our ephemeral private value for one exchange, with its public value.
pub struct DhPrivate {
    group: DhGroup,
    inner: Inner,
    public: Vec<u8>,
}

impl core::fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Whether we implement `group`.
pub fn is_supported(group: DhGroup) -> bool {
    matches!(
        group,
        DhGroup::CURVE25519 | DhGroup::ECP_256 | DhGroup::ECP_384 | DhGroup::MODP_2048
    )
}

fn ec_alg(group: DhGroup) -> Option<(&'static agreement::Algorithm, usize)> {
    match group {
        DhGroup::CURVE25519 => Some((&agreement::X25519, 32)),
        DhGroup::ECP_256 => Some((&agreement::ECDH_P256, 32)),
        DhGroup::ECP_384 => Some((&agreement::ECDH_P384, 48)),
        _ => None,
    }
}

fn modp_params() -> FixedMontyParams<{ U2048::LIMBS }> {
    FixedMontyParams::new_vartime(Odd::new(MODP2048_P).expect("the RFC 3526 prime is odd"))
}

impl DhPrivate {
    /// Makes a fresh private value from `rng`.
    pub fn generate(group: DhGroup, rng: &mut dyn Rng) -> Result<DhPrivate, DhError> {
        if let Some((_, len)) = ec_alg(group) {
            // A scalar out of range (0 or ≥ n, probability ~2^-32 at worst) is drawn again.
            for _ in 0..64 {
                let mut bytes = Zeroizing::new(vec![0u8; len]);
                rng.fill(&mut bytes);
                if let Ok(k) = DhPrivate::from_private_bytes(group, &bytes) {
                    return Ok(k);
                }
            }
            return Err(DhError::Invalid);
        }
        if group == DhGroup::MODP_2048 {
            let mut bytes = Zeroizing::new([0u8; MODP_EXP_BYTES]);
            rng.fill(&mut bytes[..]);
            return DhPrivate::from_private_bytes(group, &bytes[..]);
        }
        Err(DhError::Unsupported(group.0))
    }

    /// Makes a private value from given bytes (tests, known-answer vectors): the scalar for
    /// x25519 and ECP (big-endian for ECP), a big-endian exponent of at most 256 bytes for MODP.
    pub fn from_private_bytes(group: DhGroup, bytes: &[u8]) -> Result<DhPrivate, DhError> {
        if let Some((alg, len)) = ec_alg(group) {
            if bytes.len() != len {
                return Err(DhError::Length);
            }
            let key = agreement::PrivateKey::from_private_key(alg, bytes)
                .map_err(|_| DhError::Invalid)?;
            let public = key.compute_public_key().map_err(|_| DhError::Invalid)?;
            let p = public.as_ref();
            let public = if group == DhGroup::CURVE25519 {
                p.to_vec()
            } else {
                p.get(1..).ok_or(DhError::Invalid)?.to_vec()
            };
            return Ok(DhPrivate {
                group,
                inner: Inner::Ec(key, alg),
                public,
            });
        }
        if group == DhGroup::MODP_2048 {
            if bytes.len() > 256 {
                return Err(DhError::Length);
            }
            let mut padded = Zeroizing::new([0u8; 256]);
            padded[256 - bytes.len()..].copy_from_slice(bytes);
            let x = Zeroizing::new(U2048::from_be_slice(&padded[..]));
            let g = FixedMontyForm::new(&U2048::from_u8(2), &modp_params());
            let y = g.pow(&x).retrieve();
            return Ok(DhPrivate {
                group,
                inner: Inner::Modp(Box::new(x)),
                public: y.to_be_bytes().as_ref().to_vec(),
            });
        }
        Err(DhError::Unsupported(group.0))
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value, as it goes into the KE payload.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// Computes g^ir from the peer's KE data, after validating it.
    pub fn agree(&self, peer: &[u8]) -> Result<Secret, DhError> {
        match &self.inner {
            Inner::Ec(key, alg) => {
                let (_, len) = ec_alg(self.group).ok_or(DhError::Unsupported(self.group.0))?;
                let mut enc = Vec::with_capacity(2 * len + 1);
                if self.group == DhGroup::CURVE25519 {
                    if peer.len() != len {
                        return Err(DhError::Length);
                    }
                } else {
                    if peer.len() != 2 * len {
                        return Err(DhError::Length);
                    }
                    enc.push(0x04);
                }
                enc.extend_from_slice(peer);
                let peer = agreement::UnparsedPublicKey::new(alg, &enc);
                agreement::agree(key, peer, DhError::Invalid, |k| Ok(Secret::from_slice(k)))
            }
            Inner::Modp(x) => {
                if peer.len() != 256 {
                    return Err(DhError::Length);
                }
                let y = U2048::from_be_slice(peer);
                let p_minus_1 = MODP2048_P.wrapping_sub(&U2048::ONE);
                // "1 < y < p-1" (RFC 2631-style check; rejects the small subgroup {1, p-1}).
                if y.cmp_vartime(&U2048::ONE).is_le() || y.cmp_vartime(&p_minus_1).is_ge() {
                    return Err(DhError::Invalid);
                }
                let s = FixedMontyForm::new(&y, &modp_params())
                    .pow(&***x)
                    .retrieve();
                Ok(Secret::from_slice(s.to_be_bytes().as_ref()))
            }
        }
    }
}
