//! IKE_AUTH authentication data ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15)).
//!
//! Both authentication methods sign (or MAC) the same octets; [`signed_octets`] computes them,
//! [`psk_auth`] turns them into the AUTH data of method 2 (Shared Key Message Integrity Code).
//! Signature methods ([RFC 7427](https://www.rfc-editor.org/rfc/rfc7427)) plug in at
//! [`super::config::LocalAuth::Signature`] with the same octets.

use crate::crypto::Secret;
use crate::crypto::prf::Prf;
use crate::wire::payload::Identification;

/// "The pad string is chosen so that it is not likely to be used for any other purpose."
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The body of an ID payload as it is MACed: "RestOfInitIDPayload" / "RestOfRespIDPayload" —
/// ID Type, three reserved octets, then the identification data.
pub fn id_payload_body(id: &Identification) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + id.data.len());
    out.push(id.ty.0);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&id.data);
    out
}

/// The octets a peer signs ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15)):
///
/// ```text
/// InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
/// MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
/// ```
///
/// and symmetrically for the responder (RealMessage2, the initiator's nonce, SK_pr).
/// `real_message` is the sender's own IKE_SA_INIT message as sent (without a non-ESP marker),
/// `peer_nonce` the other side's nonce data, `sk_p` the sender's SK_pi or SK_pr.
pub fn signed_octets(
    real_message: &[u8],
    peer_nonce: &[u8],
    prf: Prf,
    sk_p: &Secret,
    id_payload_body: &[u8],
) -> Vec<u8> {
    let maced_id = prf.prf(sk_p.expose(), &[id_payload_body]);
    let mut out = Vec::with_capacity(real_message.len() + peer_nonce.len() + maced_id.len());
    out.extend_from_slice(real_message);
    out.extend_from_slice(peer_nonce);
    out.extend_from_slice(maced_id.expose());
    out
}

/// AUTH data of method 2: `prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)`.
pub fn psk_auth(prf: Prf, psk: &Secret, signed_octets: &[u8]) -> Secret {
    let key = prf.prf(psk.expose(), &[KEY_PAD]);
    prf.prf(key.expose(), &[signed_octets])
}

/// Checks received AUTH data of method 2, in constant time.
pub fn psk_verify(prf: Prf, psk: &Secret, signed_octets: &[u8], received: &[u8]) -> bool {
    psk_auth(prf, psk, signed_octets) == Secret::from_slice(received)
}
