//! The generic payload header that starts every payload
//! ([RFC 7296 § 3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.2)).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::wire::codes::PayloadType;
use crate::wire::error::{DecodeError, Structure};

/// Byte ranges of the generic payload header's fields.
pub mod field {
    use core::ops::Range;

    /// Next Payload.
    pub const NEXT_PAYLOAD: usize = 0;
    /// The critical bit (high bit) and seven reserved bits.
    pub const FLAGS: usize = 1;
    /// Payload Length, header included.
    pub const LENGTH: Range<usize> = 2..4;
}

/// The length of the generic payload header.
pub const HEADER_LEN: usize = field::LENGTH.end;

/// "Critical (1 bit) - MUST be set to zero if the sender wants the recipient to skip this
/// payload if it does not understand the payload type code in the Next Payload field of the
/// previous payload. MUST be set to one if the sender wants the recipient to reject this entire
/// message if it does not understand the payload type."
pub const CRITICAL: u8 = 0x80;

/// A view of a generic payload header over a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DecodeError> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the header and that Payload Length covers at least the
    /// header and at most the buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated(Structure::PayloadHeader));
        }
        let claimed = usize::from(self.length());
        if claimed < HEADER_LEN || claimed > len {
            return Err(DecodeError::BadLength(Structure::PayloadHeader));
        }
        Ok(())
    }

    /// The type of the payload after this one.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.buffer.as_ref()[field::NEXT_PAYLOAD])
    }

    /// The critical bit.
    pub fn critical(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & CRITICAL != 0
    }

    /// Payload Length, header included.
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The payload's body, after the header, up to Payload Length.
    ///
    /// # Panics
    ///
    /// On a buffer that did not pass [`Packet::check_len`].
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Next Payload.
    pub fn set_next_payload(&mut self, v: PayloadType) {
        self.buffer.as_mut()[field::NEXT_PAYLOAD] = v.0;
    }

    /// Sets the critical bit; the reserved bits are cleared.
    pub fn set_critical(&mut self, v: bool) {
        self.buffer.as_mut()[field::FLAGS] = if v { CRITICAL } else { 0 };
    }

    /// Sets Payload Length.
    pub fn set_length(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
}

/// A parsed generic payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The type of the payload after this one (for SK and SKF: the first inner payload).
    pub next_payload: PayloadType,
    /// The critical bit.
    pub critical: bool,
    /// Payload Length, header included.
    pub length: u16,
}

impl Repr {
    /// Parses a header view, checking its lengths.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, DecodeError> {
        packet.check_len()?;
        Ok(Repr {
            next_payload: packet.next_payload(),
            critical: packet.critical(),
            length: packet.length(),
        })
    }

    /// The header's length on the wire.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_next_payload(self.next_payload);
        packet.set_critical(self.critical);
        packet.set_length(self.length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        let bytes = [0x29, 0x80, 0x00, 0x06, 0xaa, 0xbb, 0xcc];
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(
            repr,
            Repr {
                next_payload: PayloadType::NOTIFY,
                critical: true,
                length: 6
            }
        );
        assert_eq!(p.body(), [0xaa, 0xbb]);
        let mut out = [0u8; 4];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes[..4]);
    }

    #[test]
    fn lengths_that_lie() {
        for len in [0u16, 3, 8, u16::MAX] {
            let mut bytes = [0u8; 7];
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&bytes[..]).unwrap_err(),
                DecodeError::BadLength(Structure::PayloadHeader)
            );
        }
        assert_eq!(
            Packet::new_checked(&[0u8; 3][..]).unwrap_err(),
            DecodeError::Truncated(Structure::PayloadHeader)
        );
    }
}
