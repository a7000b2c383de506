//! Pre-shared key authentication ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15)):
//!
//! ```text
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <InitiatorSignedOctets>)
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <ResponderSignedOctets>)
//! ```

use super::{AuthError, IdMatch, Identity};
use crate::crypto::Secret;
use crate::crypto::prf::Prf;
use crate::wire::AuthMethod;
use crate::wire::payload::Authentication;

/// "the string 'Key Pad for IKEv2' is 17 ASCII characters without null termination".
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The AUTH data for `SHARED_KEY_MIC`: `prf(prf(psk, "Key Pad for IKEv2"), signed_octets)`.
/// `signed_octets` are the InitiatorSignedOctets or ResponderSignedOctets the engine built.
pub fn psk_auth_data(prf: Prf, psk: &Secret, signed_octets: &[u8]) -> Vec<u8> {
    let key = prf.prf(psk.expose(), &[KEY_PAD]);
    prf.prf(key.expose(), &[signed_octets]).expose().to_vec()
}

/// The AUTH payload (method `SHARED_KEY_MIC`) for `signed_octets`.
pub fn psk_authentication(prf: Prf, psk: &Secret, signed_octets: &[u8]) -> Authentication {
    Authentication {
        method: AuthMethod::SHARED_KEY_MIC,
        data: psk_auth_data(prf, psk, signed_octets),
    }
}

/// Checks a received `SHARED_KEY_MIC` AUTH value in constant time.
pub fn verify_psk_auth(
    prf: Prf,
    psk: &Secret,
    signed_octets: &[u8],
    received: &Authentication,
) -> Result<(), AuthError> {
    if received.method != AuthMethod::SHARED_KEY_MIC {
        return Err(AuthError::UnexpectedMethod(received.method.0));
    }
    let expected = Secret::new(psk_auth_data(prf, psk, signed_octets));
    if expected == Secret::from_slice(&received.data) {
        Ok(())
    } else {
        Err(AuthError::BadSharedKeyMic)
    }
}

/// One pre-shared key and the identities it is for (swanctl.conf's `secrets.ike<suffix>`).
#[derive(Debug, Clone)]
pub struct SharedSecret {
    /// The name it was configured under.
    pub name: String,
    /// Identities (or patterns) the key belongs to; empty = any.
    pub ids: Vec<Identity>,
    /// The key (redacted in `Debug`).
    pub secret: Secret,
}

/// The configured pre-shared keys, looked up by the identities of an IKE SA
/// ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15) leaves the choice
/// to the implementation; this one follows strongSwan).
#[derive(Debug, Clone, Default)]
pub struct SharedSecrets {
    secrets: Vec<SharedSecret>,
}

impl SharedSecrets {
    /// The keys, in configuration order (ties go to the first).
    pub fn new(secrets: Vec<SharedSecret>) -> SharedSecrets {
        SharedSecrets { secrets }
    }

    /// One key for every identity.
    pub fn single(secret: Secret) -> SharedSecrets {
        SharedSecrets::new(vec![SharedSecret {
            name: "ike".into(),
            ids: Vec::new(),
            secret,
        }])
    }

    /// Adds a key.
    pub fn push(&mut self, secret: SharedSecret) {
        self.secrets.push(secret);
    }

    /// The keys.
    pub fn iter(&self) -> impl Iterator<Item = &SharedSecret> {
        self.secrets.iter()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// The pre-shared key for an IKE SA between `local` (our identity, if known) and `remote`,
    /// chosen as strongSwan does: a secret listing both identities beats one listing only the
    /// peer's, which beats one listing only ours, which beats one listing none; among equals
    /// the first wins. `%any` in a secret's ids matches nothing in particular.
    pub fn lookup(&self, local: Option<&Identity>, remote: &Identity) -> Option<&Secret> {
        let mut best: Option<(u8, &Secret)> = None;
        for s in &self.secrets {
            let score = if s.ids.is_empty() {
                1
            } else {
                let m = |id: &Identity| s.ids.iter().filter_map(|p| p.matches(id)).max();
                let r = m(remote).filter(|&m| m > IdMatch::Any);
                let l = local.and_then(m).filter(|&m| m > IdMatch::Any);
                match (r, l) {
                    (Some(_), Some(_)) => 4,
                    (Some(_), None) => 3,
                    (None, Some(_)) => 2,
                    (None, None) => continue,
                }
            };
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, &s.secret));
            }
        }
        best.map(|(_, s)| s)
    }
}
