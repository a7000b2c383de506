//! The ESP header and trailer ([RFC 4303 § 2]) with the 8-byte IV of AES-GCM ([RFC 4106 § 3]).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Security Parameters Index (SPI)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Sequence Number                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Initialization Vector (8 bytes)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~       Payload, Padding (0-255), Pad Length, Next Header        ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Integrity Check Value (16 bytes for GCM-16)       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [RFC 4303 § 2]: https://www.rfc-editor.org/rfc/rfc4303#section-2
//! [RFC 4106 § 3]: https://www.rfc-editor.org/rfc/rfc4106#section-3

use super::{Error, IpProtocol, Result, be32};

mod field {
    use std::ops::Range;
    pub(super) const SPI: Range<usize> = 0..4;
    pub(super) const SEQ: Range<usize> = 4..8;
    pub(super) const IV: Range<usize> = 8..16;
}

/// SPI and sequence number.
pub const HEADER_LEN: usize = 8;
/// The AES-GCM IV carried in every packet ([RFC 4106 § 3.1]: "The IV field MUST be eight
/// octets").
///
/// [RFC 4106 § 3.1]: https://www.rfc-editor.org/rfc/rfc4106#section-3.1
pub const IV_LEN: usize = 8;
/// The ICV of AES-GCM-16.
pub const ICV_LEN: usize = 16;
/// Pad Length and Next Header.
pub const TRAILER_LEN: usize = 2;
/// The payload is padded so the ciphertext ends on a 4-byte boundary ([RFC 4303 § 2.4]).
///
/// [RFC 4303 § 2.4]: https://www.rfc-editor.org/rfc/rfc4303#section-2.4
pub const ALIGN: usize = 4;
/// The smallest ESP packet of AES-GCM-16: header, IV, trailer, ICV.
pub const MIN_LEN: usize = HEADER_LEN + IV_LEN + TRAILER_LEN + ICV_LEN;

/// SPI values 1–255 are reserved by IANA; 0 is for local use and never on the wire
/// ([RFC 4303 § 2.1]).
///
/// [RFC 4303 § 2.1]: https://www.rfc-editor.org/rfc/rfc4303#section-2.1
pub const MIN_SPI: u32 = 256;

/// A view of an ESP packet (header, IV, and what follows).
#[derive(Debug, Clone, Copy)]
pub struct EspPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EspPacket<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        EspPacket { buffer }
    }

    /// Wraps `buffer` after checking that it holds at least [`MIN_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < MIN_LEN {
            return Err(Error::Truncated);
        }
        Ok(EspPacket { buffer })
    }

    /// The SPI.
    #[inline]
    pub fn spi(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SPI.start)
    }
    /// The low 32 bits of the sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ.start)
    }
    /// The IV.
    #[inline]
    pub fn iv(&self) -> [u8; IV_LEN] {
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&self.buffer.as_ref()[field::IV]);
        iv
    }
    /// The ciphertext and ICV (everything after the IV).
    #[inline]
    pub fn ciphertext_and_icv(&self) -> &[u8] {
        &self.buffer.as_ref()[field::IV.end..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EspPacket<T> {
    /// Sets the SPI.
    #[inline]
    pub fn set_spi(&mut self, spi: u32) {
        self.buffer.as_mut()[field::SPI].copy_from_slice(&spi.to_be_bytes());
    }
    /// Sets the low 32 bits of the sequence number.
    #[inline]
    pub fn set_seq(&mut self, seq: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&seq.to_be_bytes());
    }
    /// Sets the IV.
    #[inline]
    pub fn set_iv(&mut self, iv: [u8; IV_LEN]) {
        self.buffer.as_mut()[field::IV].copy_from_slice(&iv);
    }
}

/// The ESP header fields in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspRepr {
    /// The SPI.
    pub spi: u32,
    /// The low 32 bits of the sequence number.
    pub seq: u32,
    /// The IV.
    pub iv: [u8; IV_LEN],
}

impl EspRepr {
    /// Parses the clear header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &EspPacket<T>) -> EspRepr {
        EspRepr {
            spi: packet.spi(),
            seq: packet.seq(),
            iv: packet.iv(),
        }
    }

    /// The length of the clear header with its IV.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + IV_LEN
    }

    /// Writes the clear header into `packet` (at least [`EspRepr::buffer_len`] bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut EspPacket<T>) {
        packet.set_spi(self.spi);
        packet.set_seq(self.seq);
        packet.set_iv(self.iv);
    }
}

/// The padding for `payload_len` plaintext bytes so that the ciphertext (payload, padding, Pad
/// Length, Next Header) ends on a multiple of `align` (a power of two, at least [`ALIGN`]).
#[inline]
pub const fn pad_len(payload_len: usize, align: usize) -> usize {
    (align - (payload_len + TRAILER_LEN) % align) % align
}

/// Writes padding (1, 2, 3, … as [RFC 4303 § 2.4] prescribes by default), Pad Length and Next
/// Header into `tail`, which must be exactly `pad + 2` bytes.
///
/// [RFC 4303 § 2.4]: https://www.rfc-editor.org/rfc/rfc4303#section-2.4
#[inline]
pub fn write_trailer(tail: &mut [u8], next_header: IpProtocol) {
    let pad = tail.len().saturating_sub(TRAILER_LEN);
    for (i, b) in tail.iter_mut().take(pad).enumerate() {
        *b = (i + 1) as u8;
    }
    if let [.., pl, nh] = tail {
        *pl = pad as u8;
        *nh = next_header.0;
    }
}

/// Reads the trailer at the end of a decrypted payload: returns the payload length (without
/// padding and trailer) and the next header. Rejects a Pad Length beyond the payload and
/// padding bytes other than 1, 2, 3, …
#[inline]
pub fn read_trailer(plaintext: &[u8]) -> Result<(usize, IpProtocol)> {
    let [.., pl, nh] = plaintext else {
        return Err(Error::Truncated);
    };
    let pad = usize::from(*pl);
    let end = plaintext
        .len()
        .checked_sub(TRAILER_LEN + pad)
        .ok_or(Error::Malformed)?;
    let padding = &plaintext[end..end + pad];
    if padding
        .iter()
        .enumerate()
        .any(|(i, b)| usize::from(*b) != i + 1)
    {
        return Err(Error::Malformed);
    }
    Ok((end, IpProtocol(*nh)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut buf = [0u8; MIN_LEN];
        let repr = EspRepr {
            spi: 0xc4f2_a1b0,
            seq: 7,
            iv: [0, 0, 0, 0, 0, 0, 0, 7],
        };
        repr.emit(&mut EspPacket::new_unchecked(&mut buf[..]));
        let p = EspPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(EspRepr::parse(&p), repr);
        assert_eq!(p.ciphertext_and_icv().len(), TRAILER_LEN + ICV_LEN);
        for n in 0..MIN_LEN {
            assert_eq!(
                EspPacket::new_checked(&buf[..n]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn padding_aligns_to_four() {
        for align in [ALIGN, 16] {
            for len in 0..64 {
                assert_eq!((len + pad_len(len, align) + TRAILER_LEN) % align, 0);
                assert!(pad_len(len, align) < align);
            }
        }
    }

    #[test]
    fn trailer_round_trip_and_rejections() {
        let mut buf = [0xaau8; 10];
        let pad = 3;
        write_trailer(&mut buf[5..5 + pad + 2], IpProtocol::IPV4);
        assert_eq!(&buf[5..], &[1, 2, 3, 3, 4]);
        assert_eq!(read_trailer(&buf).unwrap(), (5, IpProtocol::IPV4));
        let mut bad = buf;
        bad[6] = 9;
        assert_eq!(read_trailer(&bad).unwrap_err(), Error::Malformed);
        let mut long = buf;
        long[8] = 200;
        assert_eq!(read_trailer(&long).unwrap_err(), Error::Malformed);
        assert_eq!(read_trailer(&[]).unwrap_err(), Error::Truncated);
        assert_eq!(read_trailer(&[0]).unwrap_err(), Error::Truncated);
        assert_eq!(
            read_trailer(&[0, 59]).unwrap(),
            (0, IpProtocol::NO_NEXT_HEADER)
        );
    }
}
