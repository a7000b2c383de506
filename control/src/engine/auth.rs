//! IKE_AUTH authentication data ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15)).
//!
//! Both authentication methods sign (or MAC) the same octets; [`signed_octets`] computes them.
//! The AUTH payloads themselves come from [`crate::auth`]: the PSK MAC of method 2
//! ([`crate::auth::psk_authentication`]), RFC 7427 signatures
//! ([`crate::auth::Credential::sign`]) and their verification with a certificate chain
//! ([`crate::auth::authenticate_peer`]).

use std::net::IpAddr;

use super::config::{ConnectionConfig, LocalAuth};
use crate::auth::Identity;
use crate::crypto::Secret;
use crate::crypto::prf::Prf;
use crate::wire::payload::Identification;

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

/// The identity we send under connection `c` from address `local`: the configured one, else
/// the certificate's subject DN (signatures) or the IKE address (PSK), as strongSwan does.
pub fn local_identity(c: &ConnectionConfig, local: IpAddr) -> Identity {
    if let Some(id) = &c.local_id {
        return id.clone();
    }
    match &c.local_auth {
        LocalAuth::PubKey(cred) => cred.default_identity(),
        LocalAuth::Psk => match local {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        },
    }
}
