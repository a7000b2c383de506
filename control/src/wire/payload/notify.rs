//! The Notify and Delete payloads, with the MOBIKE notifications' data
//! ([RFC 7296 § 3.10](https://www.rfc-editor.org/rfc/rfc7296#section-3.10),
//! [§ 3.11](https://www.rfc-editor.org/rfc/rfc7296#section-3.11),
//! [RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Body;
use crate::wire::codec::{MAX_DELETE_SPIS, Reader, Writer, count};
use crate::wire::codes::{DhGroup, HashAlgorithm, NotifyType, PayloadType, ProtocolId};
use crate::wire::error::{DecodeError, EncodeError, Structure};

/// The Notify payload.
///
/// ```text
/// Protocol ID (1) | SPI Size (1) | Notify Message Type (2) | SPI | Notification Data
/// ```
///
/// Decoding checks the data of the notifications whose data has a fixed shape (the MOBIKE
/// addresses and COOKIE2, COOKIE, NAT detection hashes, the hash algorithm list,
/// UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_KE_PAYLOAD); a bad shape is
/// [`DecodeError::InvalidValue`] of [`Structure::Notify`]. The typed accessors below then
/// cannot fail on a decoded payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notify {
    /// The protocol of the SA the notification concerns, or `NONE`.
    pub protocol: ProtocolId,
    /// The SPI of that SA: "For a notification concerning the IKE SA, the SPI Size MUST be
    /// zero and the field must be empty."
    pub spi: Vec<u8>,
    /// The notification.
    pub ty: NotifyType,
    /// Its data.
    pub data: Vec<u8>,
}

/// "The data associated with this notification MUST be between 8 and 64 octets in length
/// (inclusive)" (COOKIE2, [RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
pub const COOKIE2_LEN: core::ops::RangeInclusive<usize> = 8..=64;

/// "The data associated with this notification MUST be between 1 and 64 octets in length
/// (inclusive)" (COOKIE, [RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1)).
pub const COOKIE_LEN: core::ops::RangeInclusive<usize> = 1..=64;

/// NAT detection data is a SHA-1 hash
/// ([RFC 7296 § 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23)).
pub const NAT_DETECTION_LEN: usize = 20;

impl Notify {
    /// A notification about no SA (Protocol ID and SPI Size zero), with data.
    pub fn new(ty: NotifyType, data: impl Into<Vec<u8>>) -> Notify {
        Notify {
            protocol: ProtocolId::NONE,
            spi: Vec::new(),
            ty,
            data: data.into(),
        }
    }

    /// `ADDITIONAL_IP4_ADDRESS` or `ADDITIONAL_IP6_ADDRESS` for `addr`: "The Notification
    /// Data field contains the IPv4 address or the IPv6 address".
    pub fn additional_address(addr: IpAddr) -> Notify {
        match addr {
            IpAddr::V4(a) => Notify::new(NotifyType::ADDITIONAL_IP4_ADDRESS, a.octets()),
            IpAddr::V6(a) => Notify::new(NotifyType::ADDITIONAL_IP6_ADDRESS, a.octets()),
        }
    }

    /// `COOKIE2` with `cookie`, which must be 8 to 64 octets ([`COOKIE2_LEN`]).
    pub fn cookie2(cookie: &[u8]) -> Result<Notify, EncodeError> {
        if !COOKIE2_LEN.contains(&cookie.len()) {
            return Err(EncodeError::InvalidValue(Structure::Notify));
        }
        Ok(Notify::new(NotifyType::COOKIE2, cookie))
    }

    /// `SIGNATURE_HASH_ALGORITHMS` listing `algorithms`.
    pub fn signature_hash_algorithms(algorithms: &[HashAlgorithm]) -> Notify {
        let data: Vec<u8> = algorithms.iter().flat_map(|a| a.0.to_be_bytes()).collect();
        Notify::new(NotifyType::SIGNATURE_HASH_ALGORITHMS, data)
    }

    /// `UNSUPPORTED_CRITICAL_PAYLOAD`: "the Notification Data contains the one-octet payload
    /// type" ([RFC 7296 § 2.5](https://www.rfc-editor.org/rfc/rfc7296#section-2.5)).
    pub fn unsupported_critical_payload(ty: PayloadType) -> Notify {
        Notify::new(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, [ty.0])
    }

    /// `INVALID_KE_PAYLOAD` naming the group we want: "There are two octets of data
    /// associated with this notification: the accepted Diffie-Hellman group number in big
    /// endian order" ([RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1)).
    pub fn invalid_ke_payload(group: DhGroup) -> Notify {
        Notify::new(NotifyType::INVALID_KE_PAYLOAD, group.0.to_be_bytes())
    }

    /// The address of an `ADDITIONAL_IP4_ADDRESS` or `ADDITIONAL_IP6_ADDRESS`.
    pub fn as_additional_address(&self) -> Option<IpAddr> {
        match self.ty {
            NotifyType::ADDITIONAL_IP4_ADDRESS => {
                let b: [u8; 4] = self.data.as_slice().try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(b)))
            }
            NotifyType::ADDITIONAL_IP6_ADDRESS => {
                let b: [u8; 16] = self.data.as_slice().try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => None,
        }
    }

    /// The cookie of a `COOKIE2`, to be echoed byte for byte.
    pub fn as_cookie2(&self) -> Option<&[u8]> {
        (self.ty == NotifyType::COOKIE2 && COOKIE2_LEN.contains(&self.data.len()))
            .then_some(self.data.as_slice())
    }

    /// The algorithms of a `SIGNATURE_HASH_ALGORITHMS`.
    pub fn as_signature_hash_algorithms(&self) -> Option<Vec<HashAlgorithm>> {
        (self.ty == NotifyType::SIGNATURE_HASH_ALGORITHMS && self.data.len().is_multiple_of(2))
            .then(|| {
                self.data
                    .chunks_exact(2)
                    .map(|c| HashAlgorithm(u16::from_be_bytes([c[0], c[1]])))
                    .collect()
            })
    }

    /// The payload type named by an `UNSUPPORTED_CRITICAL_PAYLOAD`.
    pub fn as_unsupported_critical_payload(&self) -> Option<PayloadType> {
        match (self.ty, self.data.as_slice()) {
            (NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, [ty]) => Some(PayloadType(*ty)),
            _ => None,
        }
    }

    /// The group asked for by an `INVALID_KE_PAYLOAD`.
    pub fn as_invalid_ke_payload(&self) -> Option<DhGroup> {
        match (self.ty, self.data.as_slice()) {
            (NotifyType::INVALID_KE_PAYLOAD, [a, b]) => Some(DhGroup(u16::from_be_bytes([*a, *b]))),
            _ => None,
        }
    }

    /// Whether the data has the shape its type requires (for the types listed on [`Notify`]).
    pub fn data_is_well_formed(&self) -> bool {
        let len = self.data.len();
        match self.ty {
            NotifyType::ADDITIONAL_IP4_ADDRESS => len == 4,
            NotifyType::ADDITIONAL_IP6_ADDRESS => len == 16,
            NotifyType::COOKIE2 => COOKIE2_LEN.contains(&len),
            NotifyType::COOKIE => COOKIE_LEN.contains(&len),
            NotifyType::NAT_DETECTION_SOURCE_IP | NotifyType::NAT_DETECTION_DESTINATION_IP => {
                len == NAT_DETECTION_LEN
            }
            NotifyType::SIGNATURE_HASH_ALGORITHMS => len.is_multiple_of(2),
            NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD => len == 1,
            NotifyType::INVALID_KE_PAYLOAD => len == 2,
            _ => true,
        }
    }
}

impl Body for Notify {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let ty = NotifyType(r.u16()?);
        let spi = r.take(spi_size)?.to_vec();
        let n = Notify {
            protocol,
            spi,
            ty,
            data: r.rest().to_vec(),
        };
        if !n.data_is_well_formed() {
            return Err(DecodeError::InvalidValue(Structure::Notify));
        }
        Ok(n)
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if !self.data_is_well_formed() {
            return Err(EncodeError::InvalidValue(Structure::Notify));
        }
        w.u8(self.protocol.0);
        w.u8(count(self.spi.len(), Structure::Notify)?);
        w.u16(self.ty.0);
        w.bytes(&self.spi);
        w.bytes(&self.data);
        Ok(())
    }
}

/// The Delete payload.
///
/// ```text
/// Protocol ID (1) | SPI Size (1) | Num of SPIs (2) | SPIs
/// ```
///
/// "SPI Size (1 octet) - Length in octets of the SPI as defined by the protocol ID. It MUST be
/// zero for IKE (SPI is in message header) or four for AH and ESP." So the SPIs are `u32`s,
/// and a Delete for the IKE SA has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delete {
    /// IKE (the SA the message belongs to) or AH/ESP.
    pub protocol: ProtocolId,
    /// The SPIs of the Child SAs to delete (the sender's inbound SPIs); empty for IKE.
    pub spis: Vec<u32>,
}

impl Delete {
    /// A Delete of the IKE SA the message belongs to.
    pub fn ike() -> Delete {
        Delete {
            protocol: ProtocolId::IKE,
            spis: Vec::new(),
        }
    }

    /// A Delete of ESP SAs.
    pub fn esp(spis: &[u32]) -> Delete {
        Delete {
            protocol: ProtocolId::ESP,
            spis: spis.to_vec(),
        }
    }

    fn spi_size(protocol: ProtocolId) -> usize {
        if protocol == ProtocolId::IKE { 0 } else { 4 }
    }
}

impl Body for Delete {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let n = usize::from(r.u16()?);
        if spi_size != Delete::spi_size(protocol) || (spi_size == 0 && n != 0) {
            return Err(DecodeError::InvalidValue(Structure::Delete));
        }
        if n > MAX_DELETE_SPIS {
            return Err(DecodeError::TooMany(Structure::Delete));
        }
        if n * spi_size != r.left() {
            return Err(DecodeError::BadLength(Structure::Delete));
        }
        let mut spis = Vec::with_capacity(n);
        for _ in 0..n {
            spis.push(r.u32()?);
        }
        Ok(Delete { protocol, spis })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let spi_size = Delete::spi_size(self.protocol);
        if spi_size == 0 && !self.spis.is_empty() {
            return Err(EncodeError::InvalidValue(Structure::Delete));
        }
        if self.spis.len() > MAX_DELETE_SPIS {
            return Err(EncodeError::TooLong(Structure::Delete));
        }
        w.u8(self.protocol.0);
        w.u8(spi_size as u8);
        w.u16(count(self.spis.len(), Structure::Delete)?);
        for spi in &self.spis {
            w.u32(*spi);
        }
        Ok(())
    }
}
