//! The IKE header ([RFC 7296 § 3.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.1)).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Initiator's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Responder's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Message ID                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            Length                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`Packet`] is a view over a buffer: [`Packet::new_checked`] checks the lengths once, after
//! which every getter is infallible and cannot panic. [`Repr`] is the parsed header, with
//! [`Repr::parse`], [`Repr::buffer_len`] and [`Repr::emit`].

use super::codes::{ExchangeType, PayloadType};
use super::error::{DecodeError, Structure};

/// Byte ranges of the header's fields.
pub mod field {
    use core::ops::Range;

    /// IKE SA Initiator's SPI.
    pub const SPI_I: Range<usize> = 0..8;
    /// IKE SA Responder's SPI.
    pub const SPI_R: Range<usize> = 8..16;
    /// Next Payload.
    pub const NEXT_PAYLOAD: usize = 16;
    /// Major version (high nibble) and minor version (low nibble).
    pub const VERSION: usize = 17;
    /// Exchange Type.
    pub const EXCHANGE_TYPE: usize = 18;
    /// Flags.
    pub const FLAGS: usize = 19;
    /// Message ID.
    pub const MESSAGE_ID: Range<usize> = 20..24;
    /// Length of the whole message.
    pub const LENGTH: Range<usize> = 24..28;
}

/// The length of the IKE header in octets.
pub const HEADER_LEN: usize = field::LENGTH.end;

/// "Major Version (4 bits) - Indicates the major version of the IKE protocol in use.
/// Implementations based on this version of IKE MUST set the major version to 2."
pub const MAJOR_VERSION: u8 = 2;

/// The header flags octet. Bits other than I, V and R "MUST be cleared when sending and MUST
/// be ignored on receipt"; they are kept as received so a message re-encodes unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// "I (Initiator) - This bit MUST be set in messages sent by the original initiator of the
    /// IKE SA and MUST be cleared in messages sent by the original responder."
    pub const INITIATOR: u8 = 0x08;
    /// "V (Version) - This bit indicates that the transmitter is capable of speaking a higher
    /// major version number of the protocol than the one indicated in the major version number
    /// field. Thus, implementations of IKEv2 MUST clear this bit when sending".
    pub const VERSION: u8 = 0x10;
    /// "R (Response) - This bit indicates that this message is a response to a message
    /// containing the same Message ID."
    pub const RESPONSE: u8 = 0x20;

    /// Flags with I and R as given, V clear.
    pub const fn new(initiator: bool, response: bool) -> Flags {
        let mut v = 0;
        if initiator {
            v |= Self::INITIATOR;
        }
        if response {
            v |= Self::RESPONSE;
        }
        Flags(v)
    }

    /// The I bit: sent by the original initiator.
    pub const fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    /// The R bit: a response.
    pub const fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// The V bit: the sender speaks a higher major version.
    pub const fn version(self) -> bool {
        self.0 & Self::VERSION != 0
    }
}

/// A read/write view of an IKE header over a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; getters may panic on a short buffer. Use
    /// [`Packet::new_checked`] for untrusted input.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DecodeError> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds a whole header and that the Length field is at least the
    /// header and at most the buffer. After this, no getter can panic.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated(Structure::Header));
        }
        let claimed = self.length() as usize;
        if claimed < HEADER_LEN || claimed > len {
            return Err(DecodeError::BadLength(Structure::Header));
        }
        Ok(())
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u32_at(&self, range: core::ops::Range<usize>) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.buffer.as_ref()[range]);
        u32::from_be_bytes(b)
    }

    fn u64_at(&self, range: core::ops::Range<usize>) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.buffer.as_ref()[range]);
        u64::from_be_bytes(b)
    }

    /// IKE SA Initiator's SPI.
    pub fn spi_i(&self) -> u64 {
        self.u64_at(field::SPI_I)
    }

    /// IKE SA Responder's SPI.
    pub fn spi_r(&self) -> u64 {
        self.u64_at(field::SPI_R)
    }

    /// Next Payload: the type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.buffer.as_ref()[field::NEXT_PAYLOAD])
    }

    /// Major version.
    pub fn major_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] >> 4
    }

    /// Minor version.
    pub fn minor_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] & 0x0f
    }

    /// Exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType(self.buffer.as_ref()[field::EXCHANGE_TYPE])
    }

    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Message ID.
    pub fn message_id(&self) -> u32 {
        self.u32_at(field::MESSAGE_ID)
    }

    /// Length of the whole message, header included.
    pub fn length(&self) -> u32 {
        self.u32_at(field::LENGTH)
    }

    /// The payload chain: the bytes after the header up to Length.
    ///
    /// # Panics
    ///
    /// On a buffer that did not pass [`Packet::check_len`].
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_bytes(&mut self, range: core::ops::Range<usize>, v: &[u8]) {
        self.buffer.as_mut()[range].copy_from_slice(v);
    }

    /// Sets the initiator's SPI.
    pub fn set_spi_i(&mut self, v: u64) {
        self.set_bytes(field::SPI_I, &v.to_be_bytes());
    }

    /// Sets the responder's SPI.
    pub fn set_spi_r(&mut self, v: u64) {
        self.set_bytes(field::SPI_R, &v.to_be_bytes());
    }

    /// Sets Next Payload.
    pub fn set_next_payload(&mut self, v: PayloadType) {
        self.buffer.as_mut()[field::NEXT_PAYLOAD] = v.0;
    }

    /// Sets the major and minor version (4 bits each; higher bits are dropped).
    pub fn set_version(&mut self, major: u8, minor: u8) {
        self.buffer.as_mut()[field::VERSION] = (major << 4) | (minor & 0x0f);
    }

    /// Sets the exchange type.
    pub fn set_exchange_type(&mut self, v: ExchangeType) {
        self.buffer.as_mut()[field::EXCHANGE_TYPE] = v.0;
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, v: Flags) {
        self.buffer.as_mut()[field::FLAGS] = v.0;
    }

    /// Sets the message ID.
    pub fn set_message_id(&mut self, v: u32) {
        self.set_bytes(field::MESSAGE_ID, &v.to_be_bytes());
    }

    /// Sets the length of the whole message.
    pub fn set_length(&mut self, v: u32) {
        self.set_bytes(field::LENGTH, &v.to_be_bytes());
    }
}

/// A parsed IKE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// IKE SA Initiator's SPI.
    pub spi_i: u64,
    /// IKE SA Responder's SPI; zero in the first message of IKE_SA_INIT.
    pub spi_r: u64,
    /// The type of the first payload.
    pub next_payload: PayloadType,
    /// Minor version: "MUST set the minor version to zero. They MUST ignore the minor version
    /// number of received messages." Kept as received.
    pub minor_version: u8,
    /// Exchange type.
    pub exchange_type: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
    /// Length of the whole message, header included.
    pub length: u32,
}

impl Repr {
    /// Parses a checked header. Fails on a major version other than
    /// [`MAJOR_VERSION`]: "If an endpoint receives a message with a higher major version
    /// number, it MUST drop the message and SHOULD send an unauthenticated Notify message of
    /// type INVALID_MAJOR_VERSION containing the highest (closest) version number it supports"
    /// ([RFC 7296 § 2.5](https://www.rfc-editor.org/rfc/rfc7296#section-2.5)).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, DecodeError> {
        packet.check_len()?;
        let major = packet.major_version();
        if major != MAJOR_VERSION {
            return Err(DecodeError::InvalidMajorVersion(major));
        }
        Ok(Repr {
            spi_i: packet.spi_i(),
            spi_r: packet.spi_r(),
            next_payload: packet.next_payload(),
            minor_version: packet.minor_version(),
            exchange_type: packet.exchange_type(),
            flags: packet.flags(),
            message_id: packet.message_id(),
            length: packet.length(),
        })
    }

    /// The header's length on the wire.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a packet view.
    ///
    /// # Panics
    ///
    /// If the packet's buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_spi_i(self.spi_i);
        packet.set_spi_r(self.spi_r);
        packet.set_next_payload(self.next_payload);
        packet.set_version(MAJOR_VERSION, self.minor_version);
        packet.set_exchange_type(self.exchange_type);
        packet.set_flags(self.flags);
        packet.set_message_id(self.message_id);
        packet.set_length(self.length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: [u8; 28] = [
        0x95, 0xe1, 0x9f, 0x47, 0xe0, 0x5d, 0x65, 0xbf, // SPIi
        0, 0, 0, 0, 0, 0, 0, 0, // SPIr
        0x21, 0x20, 0x22, 0x08, // SA, 2.0, IKE_SA_INIT, I
        0, 0, 0, 0, // message ID
        0, 0, 0, 28, // length
    ];

    #[test]
    fn parse_emit_round_trip() {
        let packet = Packet::new_checked(&HEADER[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.spi_i, 0x95e1_9f47_e05d_65bf);
        assert_eq!(repr.next_payload, PayloadType::SA);
        assert_eq!(repr.exchange_type, ExchangeType::IKE_SA_INIT);
        assert!(repr.flags.initiator() && !repr.flags.response() && !repr.flags.version());
        let mut out = [0u8; HEADER_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, HEADER);
        assert_eq!(repr.buffer_len(), HEADER_LEN);
    }

    #[test]
    fn lengths_that_lie_are_rejected() {
        for claimed in [0u32, 27, 29, u32::MAX] {
            let mut h = HEADER;
            h[field::LENGTH].copy_from_slice(&claimed.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&h[..]).unwrap_err(),
                DecodeError::BadLength(Structure::Header),
                "{claimed}"
            );
        }
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&HEADER[..len]).unwrap_err(),
                DecodeError::Truncated(Structure::Header)
            );
        }
    }

    #[test]
    fn other_major_versions_are_rejected() {
        for (version, notify) in [(0x10, false), (0x30, true), (0xf0, true)] {
            let mut h = HEADER;
            h[field::VERSION] = version;
            let err = Repr::parse(&Packet::new_unchecked(&h[..])).unwrap_err();
            assert_eq!(err, DecodeError::InvalidMajorVersion(version >> 4));
            assert_eq!(err.notify().is_some(), notify);
        }
    }
}
