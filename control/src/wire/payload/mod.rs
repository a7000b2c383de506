//! Payloads: the generic header, one typed struct per payload, and the payload chain
//! ([RFC 7296 § 3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.2) to
//! [§ 3.16](https://www.rfc-editor.org/rfc/rfc7296#section-3.16)).
//!
//! A chain is decoded by [`decode_chain`] from the type of its first payload (the IKE
//! header's Next Payload, or an SK payload's first inner type): each generic header names the
//! next payload's type and bounds its own body, and every body must be consumed exactly.
//!
//! "If the critical bit is set and the payload type is unrecognized, the message MUST be
//! rejected and the response to the IKE request containing that payload MUST include a Notify
//! payload UNSUPPORTED_CRITICAL_PAYLOAD, indicating an unsupported critical payload was
//! included" ([RFC 7296 § 2.5](https://www.rfc-editor.org/rfc/rfc7296#section-2.5)): such a
//! payload is [`DecodeError::UnsupportedCriticalPayload`]. A payload type we do not decode
//! without the critical bit is kept as [`Payload::Unknown`] and re-encoded unchanged.

pub mod generic;
pub mod notify;
pub mod sa;
pub mod simple;
pub mod tunnel;

pub use notify::{Delete, Notify};
pub use sa::{Attribute, AttributeValue, Proposal, SecurityAssociation, Transform};
pub use simple::{
    Authentication, Certificate, CertificateRequest, Eap, Encrypted, EncryptedFragment,
    Identification, KeyExchange, Nonce, VendorId,
};
pub use tunnel::{AddressRange, ConfigAttribute, Configuration, TrafficSelector, TrafficSelectors};

use super::codec::{MAX_PAYLOADS, Reader, Writer};
use super::codes::PayloadType;
use super::error::{DecodeError, EncodeError, Structure};

/// A payload body: decoded from a reader over exactly its bytes, encoded by appending them.
pub(crate) trait Body: Sized {
    /// Decodes the body; bytes it leaves unread are an error of the caller's
    /// [`Reader::finish`].
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Appends the body.
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;
}

/// One payload of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// SA.
    SecurityAssociation(SecurityAssociation),
    /// KE.
    KeyExchange(KeyExchange),
    /// IDi.
    IdInitiator(Identification),
    /// IDr.
    IdResponder(Identification),
    /// CERT.
    Certificate(Certificate),
    /// CERTREQ.
    CertificateRequest(CertificateRequest),
    /// AUTH.
    Authentication(Authentication),
    /// Ni or Nr.
    Nonce(Nonce),
    /// N.
    Notify(Notify),
    /// D.
    Delete(Delete),
    /// V.
    VendorId(VendorId),
    /// TSi.
    TsInitiator(TrafficSelectors),
    /// TSr.
    TsResponder(TrafficSelectors),
    /// SK; always the last payload of its chain.
    Encrypted(Encrypted),
    /// SKF; always the last payload of its chain.
    EncryptedFragment(EncryptedFragment),
    /// CP.
    Configuration(Configuration),
    /// EAP.
    Eap(Eap),
    /// A payload type we do not decode, sent without the critical bit.
    Unknown {
        /// Its type.
        ty: PayloadType,
        /// Its body, after the generic header.
        body: Vec<u8>,
    },
}

impl Payload {
    /// The payload's type code.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::SecurityAssociation(_) => PayloadType::SA,
            Payload::KeyExchange(_) => PayloadType::KE,
            Payload::IdInitiator(_) => PayloadType::IDI,
            Payload::IdResponder(_) => PayloadType::IDR,
            Payload::Certificate(_) => PayloadType::CERT,
            Payload::CertificateRequest(_) => PayloadType::CERTREQ,
            Payload::Authentication(_) => PayloadType::AUTH,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::VendorId(_) => PayloadType::VENDOR_ID,
            Payload::TsInitiator(_) => PayloadType::TSI,
            Payload::TsResponder(_) => PayloadType::TSR,
            Payload::Encrypted(_) => PayloadType::SK,
            Payload::EncryptedFragment(_) => PayloadType::SKF,
            Payload::Configuration(_) => PayloadType::CP,
            Payload::Eap(_) => PayloadType::EAP,
            Payload::Unknown { ty, .. } => *ty,
        }
    }

    /// Whether this payload type is one [`decode_chain`] decodes into a typed variant.
    pub fn is_decoded(ty: PayloadType) -> bool {
        matches!(
            ty,
            PayloadType::SA
                | PayloadType::KE
                | PayloadType::IDI
                | PayloadType::IDR
                | PayloadType::CERT
                | PayloadType::CERTREQ
                | PayloadType::AUTH
                | PayloadType::NONCE
                | PayloadType::NOTIFY
                | PayloadType::DELETE
                | PayloadType::VENDOR_ID
                | PayloadType::TSI
                | PayloadType::TSR
                | PayloadType::SK
                | PayloadType::CP
                | PayloadType::EAP
                | PayloadType::SKF
        )
    }

    /// The structure name used in errors about this payload's body.
    fn structure(ty: PayloadType) -> Structure {
        match ty {
            PayloadType::SA => Structure::SecurityAssociation,
            PayloadType::KE => Structure::KeyExchange,
            PayloadType::IDI | PayloadType::IDR => Structure::Identification,
            PayloadType::CERT => Structure::Certificate,
            PayloadType::CERTREQ => Structure::CertificateRequest,
            PayloadType::AUTH => Structure::Authentication,
            PayloadType::NONCE => Structure::Nonce,
            PayloadType::NOTIFY => Structure::Notify,
            PayloadType::DELETE => Structure::Delete,
            PayloadType::VENDOR_ID => Structure::VendorId,
            PayloadType::TSI | PayloadType::TSR => Structure::TrafficSelectors,
            PayloadType::SK => Structure::Encrypted,
            PayloadType::SKF => Structure::EncryptedFragment,
            PayloadType::CP => Structure::Configuration,
            PayloadType::EAP => Structure::Eap,
            _ => Structure::Unknown,
        }
    }

    /// Whether the chain ends after this payload (SK and SKF: their Next Payload names the
    /// first inner payload instead).
    fn ends_chain(&self) -> bool {
        matches!(self, Payload::Encrypted(_) | Payload::EncryptedFragment(_))
    }

    /// The Next Payload value this payload's header carries when `next` follows it.
    fn next_field(&self, next: PayloadType) -> PayloadType {
        match self {
            Payload::Encrypted(sk) => sk.first_inner,
            Payload::EncryptedFragment(skf) => skf.first_inner,
            _ => next,
        }
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Payload::SecurityAssociation(p) => p.encode(w),
            Payload::KeyExchange(p) => p.encode(w),
            Payload::IdInitiator(p) | Payload::IdResponder(p) => p.encode(w),
            Payload::Certificate(p) => p.encode(w),
            Payload::CertificateRequest(p) => p.encode(w),
            Payload::Authentication(p) => p.encode(w),
            Payload::Nonce(p) => p.encode(w),
            Payload::Notify(p) => p.encode(w),
            Payload::Delete(p) => p.encode(w),
            Payload::VendorId(p) => p.encode(w),
            Payload::TsInitiator(p) | Payload::TsResponder(p) => p.encode(w),
            Payload::Encrypted(p) => {
                p.encode(w);
                Ok(())
            }
            Payload::EncryptedFragment(p) => p.encode(w),
            Payload::Configuration(p) => p.encode(w),
            Payload::Eap(p) => p.encode(w),
            Payload::Unknown { ty, body } => {
                if Payload::is_decoded(*ty) || *ty == PayloadType::NO_NEXT_PAYLOAD {
                    // Would decode as a typed payload, or end the chain.
                    return Err(EncodeError::InvalidValue(Structure::Unknown));
                }
                w.bytes(body);
                Ok(())
            }
        }
    }
}

/// Decodes a payload chain that starts with a payload of type `first` and fills `bytes`
/// exactly.
///
/// The chain ends at a Next Payload of `NO_NEXT_PAYLOAD`, or after an SK or SKF payload;
/// bytes after the end are [`DecodeError::TrailingBytes`] of [`Structure::PayloadChain`].
pub fn decode_chain(first: PayloadType, bytes: &[u8]) -> Result<Vec<Payload>, DecodeError> {
    let mut r = Reader::new(bytes, Structure::PayloadChain);
    let mut payloads = Vec::new();
    let mut ty = first;
    while ty != PayloadType::NO_NEXT_PAYLOAD {
        if payloads.len() == MAX_PAYLOADS {
            return Err(DecodeError::TooMany(Structure::PayloadChain));
        }
        let header = generic::Repr::parse(&generic::Packet::new_unchecked(r.peek_rest()))?;
        // The header check above guarantees both steps succeed.
        r.skip(generic::HEADER_LEN)?;
        let mut body = r.sub(
            usize::from(header.length) - generic::HEADER_LEN,
            Payload::structure(ty),
        )?;
        let payload = match ty {
            PayloadType::SA => Payload::SecurityAssociation(Body::decode(&mut body)?),
            PayloadType::KE => Payload::KeyExchange(Body::decode(&mut body)?),
            PayloadType::IDI => Payload::IdInitiator(Body::decode(&mut body)?),
            PayloadType::IDR => Payload::IdResponder(Body::decode(&mut body)?),
            PayloadType::CERT => Payload::Certificate(Body::decode(&mut body)?),
            PayloadType::CERTREQ => Payload::CertificateRequest(Body::decode(&mut body)?),
            PayloadType::AUTH => Payload::Authentication(Body::decode(&mut body)?),
            PayloadType::NONCE => Payload::Nonce(Body::decode(&mut body)?),
            PayloadType::NOTIFY => Payload::Notify(Body::decode(&mut body)?),
            PayloadType::DELETE => Payload::Delete(Body::decode(&mut body)?),
            PayloadType::VENDOR_ID => Payload::VendorId(Body::decode(&mut body)?),
            PayloadType::TSI => Payload::TsInitiator(Body::decode(&mut body)?),
            PayloadType::TSR => Payload::TsResponder(Body::decode(&mut body)?),
            PayloadType::CP => Payload::Configuration(Body::decode(&mut body)?),
            PayloadType::EAP => Payload::Eap(Body::decode(&mut body)?),
            PayloadType::SK => {
                Payload::Encrypted(Encrypted::decode_with(header.next_payload, &mut body))
            }
            PayloadType::SKF => Payload::EncryptedFragment(EncryptedFragment::decode_with(
                header.next_payload,
                &mut body,
            )?),
            _ if header.critical => return Err(DecodeError::UnsupportedCriticalPayload(ty)),
            _ => Payload::Unknown {
                ty,
                body: body.rest().to_vec(),
            },
        };
        body.finish()?;
        let ends = payload.ends_chain();
        payloads.push(payload);
        if ends {
            break;
        }
        ty = header.next_payload;
    }
    r.finish()?;
    Ok(payloads)
}

/// Appends `payloads` as a chain and returns the type of its first payload (for the Next
/// Payload field before it), `NO_NEXT_PAYLOAD` for an empty chain.
///
/// An SK or SKF payload must be the last one; an [`Payload::Unknown`] must not use a type we
/// decode (it would come back typed).
pub fn encode_chain(payloads: &[Payload], w: &mut Writer<'_>) -> Result<PayloadType, EncodeError> {
    if payloads.len() > MAX_PAYLOADS {
        return Err(EncodeError::TooLong(Structure::PayloadChain));
    }
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i + 1)
            .map_or(PayloadType::NO_NEXT_PAYLOAD, Payload::payload_type);
        if p.ends_chain() && i + 1 != payloads.len() {
            return Err(EncodeError::InvalidValue(Structure::PayloadChain));
        }
        let start = w.len();
        w.u8(p.next_field(next).0);
        w.u8(0);
        let mark = w.len_placeholder(start, Payload::structure(p.payload_type()));
        p.encode_body(w)?;
        w.patch_len(mark)?;
    }
    Ok(payloads
        .first()
        .map_or(PayloadType::NO_NEXT_PAYLOAD, Payload::payload_type))
}

/// Encodes `payloads` as a chain into a new buffer: the plaintext of an SK payload before
/// encryption, whose first type is returned alongside.
pub fn encode_chain_to_vec(payloads: &[Payload]) -> Result<(PayloadType, Vec<u8>), EncodeError> {
    let mut buf = Vec::new();
    let first = encode_chain(payloads, &mut Writer::new(&mut buf))?;
    Ok((first, buf))
}
