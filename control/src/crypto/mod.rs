//! The IKEv2 crypto layer the sans-IO engine uses: key derivation, key exchange, SK payload
//! protection and strongSwan-style proposal strings.
//!
//! - [`prf`]: `prf` and `prf+` ([RFC 7296 § 2.13](https://www.rfc-editor.org/rfc/rfc7296#section-2.13)).
//! - [`keys`]: SKEYSEED and the SK_* keys ([§ 2.14](https://www.rfc-editor.org/rfc/rfc7296#section-2.14)),
//!   rekeyed SKEYSEED ([§ 2.18](https://www.rfc-editor.org/rfc/rfc7296#section-2.18)) and CHILD_SA
//!   KEYMAT ([§ 2.17](https://www.rfc-editor.org/rfc/rfc7296#section-2.17)).
//! - [`dh`]: Diffie-Hellman groups 14, 19, 20 and 31.
//! - [`sk`]: the Encrypted payload ([§ 3.14](https://www.rfc-editor.org/rfc/rfc7296#section-3.14),
//!   [RFC 5282](https://www.rfc-editor.org/rfc/rfc5282)).
//! - [`proposal`]: `aes128gcm16-prfsha256-x25519` and friends.
//!
//! Nothing in here reads a clock or a global RNG: randomness comes from the caller through
//! [`Rng`], so a test with a seeded source replays exactly. Key material lives in [`Secret`],
//! which never prints its bytes and is zeroed on drop.

// Deterministic and sans-IO: no clock, OS randomness, socket or file (control/clippy.toml).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod dh;
pub mod keys;
pub mod prf;
pub mod proposal;
pub mod sk;

use zeroize::Zeroizing;

/// A source of random bytes supplied by the caller (the engine's seeded or OS-backed RNG).
pub trait Rng {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> Rng for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// Secret bytes (keys, shared secrets, SKEYSEED): zeroed on drop, redacted in `Debug`,
/// compared in constant time (for equal lengths).
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// Copies `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Secret {
        Secret::new(bytes.to_vec())
    }

    /// The secret bytes; the caller must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty (e.g. SK_ai with an AEAD).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for Secret {}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.0.len())
    }
}
