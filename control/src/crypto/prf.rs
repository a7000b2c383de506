//! `prf` and `prf+` ([RFC 7296 § 2.13](https://www.rfc-editor.org/rfc/rfc7296#section-2.13)).
//!
//! HMAC-SHA2 comes from aws-lc-rs ([RFC 4868](https://www.rfc-editor.org/rfc/rfc4868) defines
//! the PRF_HMAC_SHA2_* transforms: the PRF output is the full hash, the key any length).

use aws_lc_rs::hmac;

use super::Secret;
use crate::wire::PrfId;

/// A supported IKE PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    /// PRF_HMAC_SHA2_256 (5).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (6).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (7).
    HmacSha512,
}

/// `prf+` was asked for more than 255 blocks: "this construction ... is limited to 255
/// iterations" ([RFC 7296 § 2.13](https://www.rfc-editor.org/rfc/rfc7296#section-2.13)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("prf+ output longer than 255 blocks")]
pub struct PrfPlusTooLong;

impl Prf {
    /// The PRF for a wire transform ID, if supported.
    pub fn from_id(id: PrfId) -> Option<Prf> {
        match id {
            PrfId::HMAC_SHA2_256 => Some(Prf::HmacSha256),
            PrfId::HMAC_SHA2_384 => Some(Prf::HmacSha384),
            PrfId::HMAC_SHA2_512 => Some(Prf::HmacSha512),
            _ => None,
        }
    }

    /// The wire transform ID.
    pub fn id(self) -> PrfId {
        match self {
            Prf::HmacSha256 => PrfId::HMAC_SHA2_256,
            Prf::HmacSha384 => PrfId::HMAC_SHA2_384,
            Prf::HmacSha512 => PrfId::HMAC_SHA2_512,
        }
    }

    /// Output length in bytes; also the preferred key length (SK_d, SK_pi, SK_pr).
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// `prf(key, data[0] | data[1] | ...)`.
    pub fn prf(self, key: &[u8], data: &[&[u8]]) -> Secret {
        let mut ctx = hmac::Context::with_key(&hmac::Key::new(self.algorithm(), key));
        for d in data {
            ctx.update(d);
        }
        Secret::from_slice(ctx.sign().as_ref())
    }

    /// `prf+(key, seed)` truncated to `len` bytes:
    ///
    /// ```text
    /// prf+ (K,S) = T1 | T2 | T3 | T4 | ...
    /// T1 = prf (K, S | 0x01)
    /// T2 = prf (K, T1 | S | 0x02)
    /// ```
    pub fn prf_plus(
        self,
        key: &[u8],
        seed: &[&[u8]],
        len: usize,
    ) -> Result<Secret, PrfPlusTooLong> {
        if len > 255 * self.output_len() {
            return Err(PrfPlusTooLong);
        }
        let hkey = hmac::Key::new(self.algorithm(), key);
        let mut out = Secret::new(Vec::with_capacity(len + self.output_len()));
        let mut counter = 1u8;
        let mut prev: Option<hmac::Tag> = None;
        while out.len() < len {
            let mut ctx = hmac::Context::with_key(&hkey);
            if let Some(t) = &prev {
                ctx.update(t.as_ref());
            }
            for s in seed {
                ctx.update(s);
            }
            ctx.update(&[counter]);
            let tag = ctx.sign();
            out.0.extend_from_slice(tag.as_ref());
            prev = Some(tag);
            counter = counter.wrapping_add(1);
        }
        out.0.truncate(len);
        Ok(out)
    }
}
