//! A whole IKE message: the header and its payload chain
//! ([RFC 7296 § 3](https://www.rfc-editor.org/rfc/rfc7296#section-3)).
//!
//! [`Message::decode`] takes one UDP payload as received on port 500 (on port 4500 the caller
//! first strips the four-octet non-ESP marker,
//! [RFC 3948 § 2.2](https://www.rfc-editor.org/rfc/rfc3948#section-2.2)). The header's Length
//! must equal the datagram's length. To answer a message whose payloads do not decode (with
//! `INVALID_SYNTAX` or `UNSUPPORTED_CRITICAL_PAYLOAD`), the engine reads the SPIs and the
//! message ID with [`Message::decode_header`], which succeeds on every datagram whose header is
//! sound.

use std::net::IpAddr;

use super::codec::Writer;
use super::codes::{ExchangeType, NotifyType, PayloadType};
use super::error::{DecodeError, EncodeError, Structure};
use super::header::{self, Flags, HEADER_LEN};
use super::payload::{self, Payload};

/// A decoded IKE message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// IKE SA Initiator's SPI.
    pub spi_i: u64,
    /// IKE SA Responder's SPI.
    pub spi_r: u64,
    /// The exchange.
    pub exchange_type: ExchangeType,
    /// I, R and V, plus any reserved bits as received.
    pub flags: Flags,
    /// The message ID.
    pub message_id: u32,
    /// The minor version, as received (we send 0).
    pub minor_version: u8,
    /// The payloads, in order; an SK or SKF payload comes last.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Decodes one datagram.
    pub fn decode(datagram: &[u8]) -> Result<Message, DecodeError> {
        let repr = Message::decode_header(datagram)?;
        let payloads = payload::decode_chain(repr.next_payload, &datagram[HEADER_LEN..])?;
        Ok(Message {
            spi_i: repr.spi_i,
            spi_r: repr.spi_r,
            exchange_type: repr.exchange_type,
            flags: repr.flags,
            message_id: repr.message_id,
            minor_version: repr.minor_version,
            payloads,
        })
    }

    /// Decodes only the header of a datagram, with the same checks [`Message::decode`] makes
    /// (major version 2, Length equal to the datagram's length). When the payloads then fail
    /// to decode, this is what the engine answers to (SPIs, message ID, exchange).
    pub fn decode_header(datagram: &[u8]) -> Result<header::Repr, DecodeError> {
        let packet = header::Packet::new_checked(datagram)?;
        let repr = header::Repr::parse(&packet)?;
        if repr.length as usize != datagram.len() {
            return Err(DecodeError::BadLength(Structure::Header));
        }
        Ok(repr)
    }

    /// Encodes the message, computing Next Payload and Length.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        self.encode_into(&mut buf)?;
        Ok(buf)
    }

    /// Appends the encoded message to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = buf.len();
        buf.resize(start + HEADER_LEN, 0);
        let first = payload::encode_chain(&self.payloads, &mut Writer::new(buf))?;
        let length = u32::try_from(buf.len() - start)
            .map_err(|_| EncodeError::TooLong(Structure::Header))?;
        let repr = header::Repr {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: first,
            minor_version: self.minor_version & 0x0f,
            exchange_type: self.exchange_type,
            flags: self.flags,
            message_id: self.message_id,
            length,
        };
        repr.emit(&mut header::Packet::new_unchecked(&mut buf[start..]));
        Ok(())
    }

    /// The header this message encodes with, given its encoded length.
    pub fn header(&self, length: u32) -> header::Repr {
        header::Repr {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: self
                .payloads
                .first()
                .map_or(PayloadType::NO_NEXT_PAYLOAD, Payload::payload_type),
            minor_version: self.minor_version & 0x0f,
            exchange_type: self.exchange_type,
            flags: self.flags,
            message_id: self.message_id,
            length,
        }
    }

    /// The Notify payloads, in order.
    pub fn notifies(&self) -> impl Iterator<Item = &payload::Notify> {
        self.payloads.iter().filter_map(|p| match p {
            Payload::Notify(n) => Some(n),
            _ => None,
        })
    }

    /// The first Notify of type `ty`.
    pub fn notify(&self, ty: NotifyType) -> Option<&payload::Notify> {
        self.notifies().find(|n| n.ty == ty)
    }

    /// The MOBIKE address list this message announces, if it carries one
    /// ([`additional_addresses`]).
    pub fn additional_addresses(&self) -> Option<Vec<IpAddr>> {
        additional_addresses(&self.payloads)
    }

    /// The payload types, in order.
    pub fn payload_types(&self) -> Vec<PayloadType> {
        self.payloads.iter().map(Payload::payload_type).collect()
    }
}

/// "Non-ESP Marker: 4 zero-valued bytes aligning with the SPI field of an ESP packet"
/// ([RFC 3948 § 2.2](https://www.rfc-editor.org/rfc/rfc3948#section-2.2)): it starts an IKE
/// message on the NAT traversal port, 4500.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// The one octet of a NAT-keepalive packet
/// ([RFC 3948 § 2.3](https://www.rfc-editor.org/rfc/rfc3948#section-2.3)).
pub const NAT_KEEPALIVE: u8 = 0xff;

/// What a datagram received on UDP port 4500 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatTraversalDatagram<'a> {
    /// An IKE message (the bytes after the non-ESP marker).
    Ike(&'a [u8]),
    /// An ESP packet (the whole datagram, starting with a non-zero SPI).
    Esp(&'a [u8]),
    /// A NAT keepalive.
    Keepalive,
}

impl<'a> NatTraversalDatagram<'a> {
    /// Classifies a datagram received on port 4500.
    pub fn classify(datagram: &'a [u8]) -> Result<NatTraversalDatagram<'a>, DecodeError> {
        match datagram {
            [NAT_KEEPALIVE] => Ok(NatTraversalDatagram::Keepalive),
            [0, 0, 0, 0, ike @ ..] => Ok(NatTraversalDatagram::Ike(ike)),
            [_, _, _, _, ..] => Ok(NatTraversalDatagram::Esp(datagram)),
            _ => Err(DecodeError::Truncated(Structure::Header)),
        }
    }
}

/// Encodes `message` for port 4500: the non-ESP marker, then the message.
pub fn encode_nat_traversal(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut buf = NON_ESP_MARKER.to_vec();
    message.encode_into(&mut buf)?;
    Ok(buf)
}

/// The MOBIKE address list of a message's `payloads`, if it carries one: the addresses of
/// its `ADDITIONAL_IP4_ADDRESS` and `ADDITIONAL_IP6_ADDRESS` notifications in the sender's
/// order, or an empty list for `NO_ADDITIONAL_ADDRESSES`
/// ([RFC 4555 § 3.4](https://www.rfc-editor.org/rfc/rfc4555#section-3.4)).
pub fn additional_addresses(payloads: &[Payload]) -> Option<Vec<IpAddr>> {
    let notifies = payloads.iter().filter_map(|p| match p {
        Payload::Notify(n) => Some(n),
        _ => None,
    });
    let mut addrs = Vec::new();
    let mut none = false;
    for n in notifies {
        if let Some(a) = n.as_additional_address() {
            addrs.push(a);
        }
        none |= n.ty == NotifyType::NO_ADDITIONAL_ADDRESSES;
    }
    (!addrs.is_empty() || none).then_some(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::payload::Notify;

    fn informational(payloads: Vec<Payload>) -> Message {
        Message {
            spi_i: 1,
            spi_r: 2,
            exchange_type: ExchangeType::INFORMATIONAL,
            flags: Flags::new(true, false),
            message_id: 9,
            minor_version: 0,
            payloads,
        }
    }

    #[test]
    fn empty_informational_is_a_bare_header() {
        let m = informational(vec![]);
        let b = m.encode().unwrap();
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(b[16], 0, "no next payload");
        assert_eq!(Message::decode(&b).unwrap(), m);
        let h = header::Repr::parse(&header::Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(h, m.header(HEADER_LEN as u32));
        assert_eq!(Message::decode_header(&b), Ok(h));
    }

    #[test]
    fn address_lists() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let m = informational(vec![
            Payload::Notify(Notify::new(NotifyType::UPDATE_SA_ADDRESSES, vec![])),
            Payload::Notify(Notify::additional_address(a)),
            Payload::Notify(Notify::additional_address(b)),
        ]);
        assert_eq!(m.additional_addresses(), Some(vec![a, b]));
        assert!(m.notify(NotifyType::UPDATE_SA_ADDRESSES).is_some());
        assert!(m.notify(NotifyType::COOKIE2).is_none());
        let none = informational(vec![Payload::Notify(Notify::new(
            NotifyType::NO_ADDITIONAL_ADDRESSES,
            vec![],
        ))]);
        assert_eq!(none.additional_addresses(), Some(vec![]));
        assert_eq!(informational(vec![]).additional_addresses(), None);
        assert_eq!(none.payload_types(), [PayloadType::NOTIFY]);
    }

    #[test]
    fn port_4500_framing() {
        let m = informational(vec![]);
        let framed = encode_nat_traversal(&m).unwrap();
        assert_eq!(framed[..4], NON_ESP_MARKER);
        let NatTraversalDatagram::Ike(ike) = NatTraversalDatagram::classify(&framed).unwrap()
        else {
            panic!("not IKE")
        };
        assert_eq!(Message::decode(ike).unwrap(), m);
        assert_eq!(
            NatTraversalDatagram::classify(&[0xff]),
            Ok(NatTraversalDatagram::Keepalive)
        );
        let esp = [0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            NatTraversalDatagram::classify(&esp),
            Ok(NatTraversalDatagram::Esp(&esp[..]))
        );
        for short in [&[][..], &[0], &[0, 0, 0], &[1, 2]] {
            assert!(NatTraversalDatagram::classify(short).is_err());
        }
    }

    #[test]
    fn encode_into_appends() {
        let m = informational(vec![]);
        let mut buf = vec![0xee];
        m.encode_into(&mut buf).unwrap();
        assert_eq!(buf[0], 0xee);
        assert_eq!(Message::decode(&buf[1..]).unwrap(), m);
    }
}
