//! The UDP header and UDP encapsulation of ESP ([RFC 3948]).
//!
//! On port 4500 three kinds of datagram share the port ([RFC 3948 § 2]):
//! - ESP: the payload starts with a non-zero SPI;
//! - IKE: the payload starts with the 4-byte *non-ESP marker* (zero), then an IKE header;
//! - NAT-keepalive: one byte, 0xFF ([RFC 3948 § 2.3]).
//!
//! [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948
//! [RFC 3948 § 2]: https://www.rfc-editor.org/rfc/rfc3948#section-2
//! [RFC 3948 § 2.3]: https://www.rfc-editor.org/rfc/rfc3948#section-2.3

use super::{Error, Result, be16};

/// The UDP header length.
pub const HEADER_LEN: usize = 8;
/// The NAT traversal port ([RFC 3948 § 2]: "the UDP port 4500").
pub const NAT_T_PORT: u16 = 4500;
/// The payload of a NAT-keepalive packet ([RFC 3948 § 2.3]: "a single octet … 0xFF").
///
/// [RFC 3948 § 2.3]: https://www.rfc-editor.org/rfc/rfc3948#section-2.3
pub const KEEPALIVE: u8 = 0xff;
/// The length of the non-ESP marker ([RFC 3948 § 2.2]: "4 bytes … zero").
///
/// [RFC 3948 § 2.2]: https://www.rfc-editor.org/rfc/rfc3948#section-2.2
pub const NON_ESP_MARKER_LEN: usize = 4;

mod field {
    use std::ops::Range;
    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const LENGTH: Range<usize> = 4..6;
    pub(super) const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after checking that the header fits and the length field lies between
    /// the header length and the buffer length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(be16(b, field::LENGTH.start));
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(UdpPacket { buffer })
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }
    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }
    /// The length field (header and payload).
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }
    /// Whether the datagram has no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == HEADER_LEN
    }
    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// The payload, as long as the length field says.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
}

/// What a UDP datagram on the NAT-T port carries ([RFC 3948 § 2]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpEncap {
    /// ESP: the payload starts with a non-zero SPI.
    Esp,
    /// IKE behind the non-ESP marker: for the control process.
    NonEsp,
    /// A NAT-keepalive: consumed silently.
    Keepalive,
}

impl UdpEncap {
    /// Classifies the payload of a UDP datagram on the NAT-T port.
    ///
    /// "The SPI value of zero indicates the non-ESP marker" ([RFC 3948 § 2.2]); a single
    /// 0xFF byte is a keepalive; anything else shorter than an SPI is truncated.
    ///
    /// [RFC 3948 § 2.2]: https://www.rfc-editor.org/rfc/rfc3948#section-2.2
    pub fn classify(payload: &[u8]) -> Result<UdpEncap> {
        match payload {
            [KEEPALIVE] => Ok(UdpEncap::Keepalive),
            [0, 0, 0, 0, ..] => Ok(UdpEncap::NonEsp),
            [_, _, _, _, ..] => Ok(UdpEncap::Esp),
            _ => Err(Error::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_the_three_kinds() {
        assert_eq!(UdpEncap::classify(&[0xff]), Ok(UdpEncap::Keepalive));
        assert_eq!(
            UdpEncap::classify(&[0, 0, 0, 0, 1, 2]),
            Ok(UdpEncap::NonEsp)
        );
        assert_eq!(
            UdpEncap::classify(&[0, 0, 1, 0, 0, 0, 0, 1]),
            Ok(UdpEncap::Esp)
        );
        assert_eq!(UdpEncap::classify(&[]), Err(Error::Truncated));
        assert_eq!(UdpEncap::classify(&[0, 0]), Err(Error::Truncated));
        assert_eq!(UdpEncap::classify(&[0xfe]), Err(Error::Truncated));
    }

    #[test]
    fn udp_header_checks() {
        let mut b = [0u8; 12];
        {
            let mut p = UdpPacket::new_unchecked(&mut b[..]);
            p.set_src_port(4500);
            p.set_dst_port(4500);
            p.set_len(9);
            p.set_checksum(0);
        }
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 1);
        assert_eq!(p.src_port(), NAT_T_PORT);
        for n in 0..HEADER_LEN {
            assert_eq!(
                UdpPacket::new_checked(&b[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        b[5] = 13;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Truncated
        );
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }
}
