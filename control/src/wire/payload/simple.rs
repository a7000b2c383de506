//! Payloads with a small fixed head and an opaque body: KE, IDi/IDr, CERT, CERTREQ, AUTH,
//! Nonce, Vendor ID, EAP, and the encrypted payloads SK and SKF.
//!
//! SK ([RFC 7296 § 3.14](https://www.rfc-editor.org/rfc/rfc7296#section-3.14)) and SKF
//! ([RFC 7383 § 2.5](https://www.rfc-editor.org/rfc/rfc7383#section-2.5)) carry the protected
//! bytes (IV, ciphertext with padding, ICV) opaque; the engine decrypts them and decodes the
//! plaintext with [`decode_chain`](super::decode_chain), starting from the first inner payload
//! type kept here. "the Encrypted payload, if present in a message, MUST be the last payload in
//! the message"; the chain decoder stops after it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Body;
use crate::wire::codec::{Reader, Writer};
use crate::wire::codes::{AuthMethod, CertEncoding, DhGroup, IdType, PayloadType};
use crate::wire::error::{DecodeError, EncodeError, Structure};

/// The Key Exchange payload ([RFC 7296 § 3.4](https://www.rfc-editor.org/rfc/rfc7296#section-3.4)).
///
/// ```text
/// Diffie-Hellman Group Num (2) | RESERVED (2) | Key Exchange Data
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyExchange {
    /// "Diffie-Hellman Group Num (2 octets) - Identifies the Diffie-Hellman group in which the
    /// Key Exchange Data was computed".
    pub group: DhGroup,
    /// The sender's public value.
    pub data: Vec<u8>,
}

impl Body for KeyExchange {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let group = DhGroup(r.u16()?);
        r.skip_reserved(2)?;
        Ok(KeyExchange {
            group,
            data: r.rest().to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u16(self.group.0);
        w.zeros(2);
        w.bytes(&self.data);
        Ok(())
    }
}

/// The Identification payloads IDi and IDr
/// ([RFC 7296 § 3.5](https://www.rfc-editor.org/rfc/rfc7296#section-3.5)).
///
/// ```text
/// ID Type (1) | RESERVED (3) | Identification Data
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identification {
    /// The identity's type.
    pub ty: IdType,
    /// The identity, as the type encodes it.
    pub data: Vec<u8>,
}

impl Identification {
    /// An `ID_FQDN` identity: "A fully-qualified domain name string [...] MUST NOT contain any
    /// terminators (e.g., NULL, CR, etc.)".
    pub fn fqdn(name: &str) -> Identification {
        Identification {
            ty: IdType::FQDN,
            data: name.as_bytes().to_vec(),
        }
    }

    /// An `ID_RFC822_ADDR` identity (an email address).
    pub fn rfc822(addr: &str) -> Identification {
        Identification {
            ty: IdType::RFC822_ADDR,
            data: addr.as_bytes().to_vec(),
        }
    }

    /// An `ID_IPV4_ADDR` identity.
    pub fn ipv4(addr: Ipv4Addr) -> Identification {
        Identification {
            ty: IdType::IPV4_ADDR,
            data: addr.octets().to_vec(),
        }
    }

    /// An `ID_IPV6_ADDR` identity.
    pub fn ipv6(addr: Ipv6Addr) -> Identification {
        Identification {
            ty: IdType::IPV6_ADDR,
            data: addr.octets().to_vec(),
        }
    }
}

impl Body for Identification {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = IdType(r.u8()?);
        r.skip_reserved(3)?;
        Ok(Identification {
            ty,
            data: r.rest().to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.ty.0);
        w.zeros(3);
        w.bytes(&self.data);
        Ok(())
    }
}

/// The Certificate payload ([RFC 7296 § 3.6](https://www.rfc-editor.org/rfc/rfc7296#section-3.6)).
///
/// ```text
/// Cert Encoding (1) | Certificate Data
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Certificate {
    /// How the data encodes the certificate.
    pub encoding: CertEncoding,
    /// The certificate (for `X509_SIGNATURE`, its DER encoding).
    pub data: Vec<u8>,
}

impl Body for Certificate {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Certificate {
            encoding: CertEncoding(r.u8()?),
            data: r.rest().to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.encoding.0);
        w.bytes(&self.data);
        Ok(())
    }
}

/// The Certificate Request payload
/// ([RFC 7296 § 3.7](https://www.rfc-editor.org/rfc/rfc7296#section-3.7)).
///
/// ```text
/// Cert Encoding (1) | Certification Authority
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateRequest {
    /// The certificate encoding asked for.
    pub encoding: CertEncoding,
    /// For X.509: "a concatenated list of SHA-1 hashes of the public keys of trusted
    /// Certification Authorities (CAs)".
    pub authorities: Vec<u8>,
}

impl CertificateRequest {
    /// The length of one CA key hash for X.509 encodings (SHA-1).
    pub const SHA1_LEN: usize = 20;

    /// The 20-octet CA key hashes, for an X.509 request whose list is a whole number of them.
    pub fn sha1_hashes(&self) -> Option<impl Iterator<Item = &[u8]>> {
        self.authorities
            .len()
            .is_multiple_of(Self::SHA1_LEN)
            .then(|| self.authorities.chunks_exact(Self::SHA1_LEN))
    }
}

impl Body for CertificateRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CertificateRequest {
            encoding: CertEncoding(r.u8()?),
            authorities: r.rest().to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.encoding.0);
        w.bytes(&self.authorities);
        Ok(())
    }
}

/// The Authentication payload ([RFC 7296 § 3.8](https://www.rfc-editor.org/rfc/rfc7296#section-3.8)).
///
/// ```text
/// Auth Method (1) | RESERVED (3) | Authentication Data
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authentication {
    /// The method.
    pub method: AuthMethod,
    /// The signature or MAC.
    pub data: Vec<u8>,
}

impl Body for Authentication {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let method = AuthMethod(r.u8()?);
        r.skip_reserved(3)?;
        Ok(Authentication {
            method,
            data: r.rest().to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.method.0);
        w.zeros(3);
        w.bytes(&self.data);
        Ok(())
    }
}

/// The Nonce payload, Ni or Nr
/// ([RFC 7296 § 3.9](https://www.rfc-editor.org/rfc/rfc7296#section-3.9)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce {
    /// The nonce, [`Nonce::MIN_LEN`] to [`Nonce::MAX_LEN`] octets.
    pub data: Vec<u8>,
}

impl Nonce {
    /// "The size of the Nonce Data MUST be between 16 and 256 octets, inclusive."
    pub const MIN_LEN: usize = 16;
    /// See [`Nonce::MIN_LEN`].
    pub const MAX_LEN: usize = 256;

    fn valid_len(len: usize) -> bool {
        (Self::MIN_LEN..=Self::MAX_LEN).contains(&len)
    }
}

impl Body for Nonce {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let data = r.rest();
        if !Nonce::valid_len(data.len()) {
            return Err(DecodeError::InvalidValue(Structure::Nonce));
        }
        Ok(Nonce {
            data: data.to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if !Nonce::valid_len(self.data.len()) {
            return Err(EncodeError::InvalidValue(Structure::Nonce));
        }
        w.bytes(&self.data);
        Ok(())
    }
}

/// The Vendor ID payload ([RFC 7296 § 3.12](https://www.rfc-editor.org/rfc/rfc7296#section-3.12)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VendorId {
    /// The vendor-chosen identifier, opaque.
    pub data: Vec<u8>,
}

impl Body for VendorId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(VendorId {
            data: r.rest().to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.bytes(&self.data);
        Ok(())
    }
}

/// The EAP payload ([RFC 7296 § 3.16](https://www.rfc-editor.org/rfc/rfc7296#section-3.16)):
/// recognised, carried opaque. The body is one EAP message (RFC 3748: Code, Identifier,
/// Length, Type, Type Data).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Eap {
    /// The EAP message.
    pub message: Vec<u8>,
}

impl Body for Eap {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Eap {
            message: r.rest().to_vec(),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.bytes(&self.message);
        Ok(())
    }
}

/// An SK payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Encrypted {
    /// The type of the first payload inside: the SK payload's generic header names it in its
    /// Next Payload field. `NO_NEXT_PAYLOAD` when the plaintext is empty.
    pub first_inner: PayloadType,
    /// IV, encrypted payloads with padding and Pad Length, and the integrity checksum.
    pub data: Vec<u8>,
}

impl Encrypted {
    pub(super) fn decode_with(first_inner: PayloadType, r: &mut Reader<'_>) -> Encrypted {
        Encrypted {
            first_inner,
            data: r.rest().to_vec(),
        }
    }
}

impl Encrypted {
    pub(super) fn encode(&self, w: &mut Writer<'_>) {
        w.bytes(&self.data);
    }
}

/// An SKF payload: one fragment of an SK payload.
///
/// ```text
/// Fragment Number (2) | Total Fragments (2) | IV | Encrypted content | Padding | ICV
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedFragment {
    /// "in the very first fragment (with Fragment Number equal to 1), this field MUST be set to
    /// the payload type of the first inner payload [...]. In the rest of the Fragment messages
    /// (with Fragment Number greater than 1), this field MUST be set to zero."
    pub first_inner: PayloadType,
    /// "Fragment Number (2 octets, unsigned integer) - current Fragment message number,
    /// starting from 1."
    pub number: u16,
    /// "Total Fragments (2 octets, unsigned integer) - number of Fragment messages into which
    /// the original message was divided."
    pub total: u16,
    /// IV, encrypted content with padding, and the integrity checksum.
    pub data: Vec<u8>,
}

impl EncryptedFragment {
    /// Whether the numbering is possible: 1 ≤ number ≤ total. Fragments that fail are
    /// discarded without an answer ([RFC 7383 § 2.6](https://www.rfc-editor.org/rfc/rfc7383#section-2.6)).
    pub fn numbering_is_valid(&self) -> bool {
        self.number >= 1 && self.number <= self.total
    }

    pub(super) fn decode_with(
        first_inner: PayloadType,
        r: &mut Reader<'_>,
    ) -> Result<EncryptedFragment, DecodeError> {
        let f = EncryptedFragment {
            first_inner,
            number: r.u16()?,
            total: r.u16()?,
            data: r.rest().to_vec(),
        };
        if !f.numbering_is_valid() {
            return Err(DecodeError::InvalidValue(Structure::EncryptedFragment));
        }
        Ok(f)
    }
}

impl EncryptedFragment {
    pub(super) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if !self.numbering_is_valid() {
            return Err(EncodeError::InvalidValue(Structure::EncryptedFragment));
        }
        w.u16(self.number);
        w.u16(self.total);
        w.bytes(&self.data);
        Ok(())
    }
}
