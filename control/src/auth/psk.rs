//! Pre-shared key authentication ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15)):
//!
//! ```text
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <InitiatorSignedOctets>)
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <ResponderSignedOctets>)
//! ```

use super::AuthError;
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
