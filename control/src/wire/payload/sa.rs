//! The Security Association payload: proposals, transforms and attributes
//! ([RFC 7296 § 3.3](https://www.rfc-editor.org/rfc/rfc7296#section-3.3)).
//!
//! ```text
//! SA payload body      = 1*Proposal
//! Proposal             = Last Substruc (0 last, 2 more) | RESERVED | Proposal Length (2)
//!                        Proposal Num | Protocol ID | SPI Size | Num Transforms | SPI | 1*Transform
//! Transform            = Last Substruc (0 last, 3 more) | RESERVED | Transform Length (2)
//!                        Transform Type | RESERVED | Transform ID (2) | *Attribute
//! Attribute            = AF=1: Attribute Type (15 bits) | Attribute Value (2)
//!                        AF=0: Attribute Type (15 bits) | Attribute Length (2) | Value
//! ```

use super::Body;
use crate::wire::codec::{MAX_ATTRIBUTES, MAX_PROPOSALS, MAX_TRANSFORMS, Reader, Writer, count};
use crate::wire::codes::{
    AttributeType, DhGroup, EncrId, EsnId, IntegId, PrfId, ProtocolId, TransformType,
};
use crate::wire::error::{DecodeError, EncodeError, Structure};

/// "Last Substruc (1 octet) - Specifies whether this is the last Proposal Substructure in the
/// SA. This field has a value of 0 if this was the last Proposal Substructure, and a value of 2
/// if there are more Proposal Substructures."
pub const LAST_PROPOSAL: u8 = 0;
/// See [`LAST_PROPOSAL`].
pub const MORE_PROPOSALS: u8 = 2;
/// "Last Substruc (1 octet) - Specifies whether this is the last Transform Substructure in the
/// Proposal. This field has a value of 0 if this was the last Transform Substructure, and a
/// value of 3 if there are more Transform Substructures."
pub const LAST_TRANSFORM: u8 = 0;
/// See [`LAST_TRANSFORM`].
pub const MORE_TRANSFORMS: u8 = 3;

/// Proposal header length: Last Substruc to Num Transforms.
const PROPOSAL_HEADER_LEN: usize = 8;
/// Transform header length: Last Substruc to Transform ID.
const TRANSFORM_HEADER_LEN: usize = 8;
/// "Attribute Format (AF) (1 bit) - Indicates whether the data attribute follows the
/// Type/Length/Value (TLV) format or a shortened Type/Value (TV) format. If the AF bit is zero
/// (0), then the attribute uses TLV format; if the AF bit is one (1), the TV format (with
/// two-byte value) is used."
const ATTRIBUTE_FORMAT_TV: u16 = 0x8000;

/// An SA payload: one or more proposals, in the sender's order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SecurityAssociation {
    /// The proposals; a valid payload has at least one.
    pub proposals: Vec<Proposal>,
}

/// One proposal: a protocol, an optional SPI, and the transforms offered for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// "the first proposal in an SA payload MUST be 1, and subsequent proposals MUST be one
    /// more than the previous proposal"; an accepted proposal keeps the number it was sent with.
    pub number: u8,
    /// IKE, AH or ESP.
    pub protocol: ProtocolId,
    /// The sender's SPI: empty in IKE_SA_INIT, eight octets when rekeying an IKE SA, four for
    /// AH and ESP.
    pub spi: Vec<u8>,
    /// The transforms, of all types, in order.
    pub transforms: Vec<Transform>,
}

/// One transform: a type, an ID of that type's registry, and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transform {
    /// The transform type.
    pub ty: TransformType,
    /// The transform ID, in the registry of [`Transform::ty`].
    pub id: u16,
    /// Attributes, in order (in practice, only a key length).
    pub attributes: Vec<Attribute>,
}

/// A transform attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The attribute type (without the AF bit).
    pub ty: AttributeType,
    /// The value, in the format it was sent in.
    pub value: AttributeValue,
}

/// A transform attribute's value and format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// Type/Value: a two-octet value (AF = 1).
    Tv(u16),
    /// Type/Length/Value: a variable value (AF = 0).
    Tlv(Vec<u8>),
}

impl Transform {
    /// A transform of type `ty` with ID `id` and no attributes.
    pub fn new(ty: TransformType, id: u16) -> Transform {
        Transform {
            ty,
            id,
            attributes: Vec::new(),
        }
    }

    /// An encryption transform, with a key length attribute if given.
    pub fn encr(id: EncrId, key_bits: Option<u16>) -> Transform {
        let mut t = Transform::new(TransformType::ENCR, id.0);
        if let Some(bits) = key_bits {
            t.attributes.push(Attribute {
                ty: AttributeType::KEY_LENGTH,
                value: AttributeValue::Tv(bits),
            });
        }
        t
    }

    /// A PRF transform.
    pub fn prf(id: PrfId) -> Transform {
        Transform::new(TransformType::PRF, id.0)
    }

    /// An integrity transform.
    pub fn integ(id: IntegId) -> Transform {
        Transform::new(TransformType::INTEG, id.0)
    }

    /// A Diffie-Hellman group transform.
    pub fn dh(id: DhGroup) -> Transform {
        Transform::new(TransformType::DH, id.0)
    }

    /// An ESN transform.
    pub fn esn(id: EsnId) -> Transform {
        Transform::new(TransformType::ESN, id.0)
    }

    /// The encryption algorithm, if this is an ENCR transform.
    pub fn as_encr(&self) -> Option<EncrId> {
        (self.ty == TransformType::ENCR).then_some(EncrId(self.id))
    }

    /// The PRF, if this is a PRF transform.
    pub fn as_prf(&self) -> Option<PrfId> {
        (self.ty == TransformType::PRF).then_some(PrfId(self.id))
    }

    /// The integrity algorithm, if this is an INTEG transform.
    pub fn as_integ(&self) -> Option<IntegId> {
        (self.ty == TransformType::INTEG).then_some(IntegId(self.id))
    }

    /// The group, if this is a D-H transform.
    pub fn as_dh(&self) -> Option<DhGroup> {
        (self.ty == TransformType::DH).then_some(DhGroup(self.id))
    }

    /// The ESN choice, if this is an ESN transform.
    pub fn as_esn(&self) -> Option<EsnId> {
        (self.ty == TransformType::ESN).then_some(EsnId(self.id))
    }

    /// The Key Length attribute in bits, if present in TV format.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a.value {
            AttributeValue::Tv(v) if a.ty == AttributeType::KEY_LENGTH => Some(v),
            _ => None,
        })
    }
}

impl Body for SecurityAssociation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut proposals = Vec::new();
        let mut last = MORE_PROPOSALS;
        while last == MORE_PROPOSALS {
            if proposals.len() == MAX_PROPOSALS {
                return Err(DecodeError::TooMany(Structure::SecurityAssociation));
            }
            last = r.u8()?;
            if last != LAST_PROPOSAL && last != MORE_PROPOSALS {
                return Err(DecodeError::InvalidValue(Structure::Proposal));
            }
            r.skip_reserved(1)?;
            let len = usize::from(r.u16()?);
            if len < PROPOSAL_HEADER_LEN {
                return Err(DecodeError::BadLength(Structure::Proposal));
            }
            let mut p = r.sub(len - 4, Structure::Proposal)?;
            proposals.push(Proposal::decode(&mut p)?);
            p.finish()?;
        }
        // The last proposal said it was the last: nothing may follow.
        Ok(SecurityAssociation { proposals })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.proposals.is_empty() {
            return Err(EncodeError::InvalidValue(Structure::SecurityAssociation));
        }
        if self.proposals.len() > MAX_PROPOSALS {
            return Err(EncodeError::TooLong(Structure::SecurityAssociation));
        }
        for (i, p) in self.proposals.iter().enumerate() {
            let start = w.len();
            let last = i + 1 == self.proposals.len();
            w.u8(if last { LAST_PROPOSAL } else { MORE_PROPOSALS });
            w.zeros(1);
            let mark = w.len_placeholder(start, Structure::Proposal);
            p.encode(w)?;
            w.patch_len(mark)?;
        }
        Ok(())
    }
}

impl Proposal {
    /// Decodes the proposal from Proposal Num on; the reader ends with the proposal.
    fn decode(r: &mut Reader<'_>) -> Result<Proposal, DecodeError> {
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let n = usize::from(r.u8()?);
        let spi = r.take(spi_size)?.to_vec();
        let mut transforms = Vec::new();
        for i in 0..n {
            let last = r.u8()?;
            let expected = if i + 1 == n {
                LAST_TRANSFORM
            } else {
                MORE_TRANSFORMS
            };
            if last != expected {
                return Err(DecodeError::InvalidValue(Structure::Transform));
            }
            r.skip_reserved(1)?;
            let len = usize::from(r.u16()?);
            if len < TRANSFORM_HEADER_LEN {
                return Err(DecodeError::BadLength(Structure::Transform));
            }
            let mut t = r.sub(len - 4, Structure::Transform)?;
            transforms.push(Transform::decode(&mut t)?);
            t.finish()?;
        }
        Ok(Proposal {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.transforms.len() > MAX_TRANSFORMS {
            return Err(EncodeError::TooLong(Structure::Proposal));
        }
        w.u8(self.number);
        w.u8(self.protocol.0);
        w.u8(count(self.spi.len(), Structure::Proposal)?);
        w.u8(count(self.transforms.len(), Structure::Proposal)?);
        w.bytes(&self.spi);
        for (i, t) in self.transforms.iter().enumerate() {
            let start = w.len();
            let last = i + 1 == self.transforms.len();
            w.u8(if last {
                LAST_TRANSFORM
            } else {
                MORE_TRANSFORMS
            });
            w.zeros(1);
            let mark = w.len_placeholder(start, Structure::Transform);
            t.encode(w)?;
            w.patch_len(mark)?;
        }
        Ok(())
    }
}

impl Transform {
    /// Decodes the transform from Transform Type on; the reader ends with the transform.
    fn decode(r: &mut Reader<'_>) -> Result<Transform, DecodeError> {
        let ty = TransformType(r.u8()?);
        r.skip_reserved(1)?;
        let id = r.u16()?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            if attributes.len() == MAX_ATTRIBUTES {
                return Err(DecodeError::TooMany(Structure::Transform));
            }
            let first = r.u16()?;
            let attr_ty = AttributeType(first & !ATTRIBUTE_FORMAT_TV);
            let value = if first & ATTRIBUTE_FORMAT_TV != 0 {
                AttributeValue::Tv(r.u16()?)
            } else {
                let len = usize::from(r.u16()?);
                AttributeValue::Tlv(r.sub(len, Structure::Attribute)?.rest().to_vec())
            };
            attributes.push(Attribute { ty: attr_ty, value });
        }
        Ok(Transform { ty, id, attributes })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(EncodeError::TooLong(Structure::Transform));
        }
        w.u8(self.ty.0);
        w.zeros(1);
        w.u16(self.id);
        for a in &self.attributes {
            if a.ty.0 & ATTRIBUTE_FORMAT_TV != 0 {
                return Err(EncodeError::InvalidValue(Structure::Attribute));
            }
            match &a.value {
                AttributeValue::Tv(v) => {
                    w.u16(a.ty.0 | ATTRIBUTE_FORMAT_TV);
                    w.u16(*v);
                }
                AttributeValue::Tlv(v) => {
                    w.u16(a.ty.0);
                    w.u16(count(v.len(), Structure::Attribute)?);
                    w.bytes(v);
                }
            }
        }
        Ok(())
    }
}
