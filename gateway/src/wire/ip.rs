//! IPv4 and IPv6 header views, protocol numbers, and the ECN field.
//!
//! Only what the ESP transforms need: the fixed headers, lengths, TTL / hop limit, the DS field
//! (DSCP and ECN), DF and fragment fields, addresses and the IPv4 header checksum.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Error, Result, be16, checksum};

/// An IP protocol number / IPv6 next-header value; unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// ICMP.
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// IPv4 in IP (the next header of a tunnel-mode ESP payload that is IPv4).
    pub const IPV4: IpProtocol = IpProtocol(4);
    /// TCP.
    pub const TCP: IpProtocol = IpProtocol(6);
    /// UDP.
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 in IP.
    pub const IPV6: IpProtocol = IpProtocol(41);
    /// The IPv6 fragment header.
    pub const IPV6_FRAGMENT: IpProtocol = IpProtocol(44);
    /// ESP ([RFC 4303](https://www.rfc-editor.org/rfc/rfc4303)).
    pub const ESP: IpProtocol = IpProtocol(50);
    /// ICMPv6.
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// "No Next Header": in ESP, a TFC dummy packet ([RFC 4303 § 2.6]: "a 'dummy' packet …
    /// the Next Header field … value 59").
    ///
    /// [RFC 4303 § 2.6]: https://www.rfc-editor.org/rfc/rfc4303#section-2.6
    pub const NO_NEXT_HEADER: IpProtocol = IpProtocol(59);
    /// The BEET pseudo-header that carries IPv4 options (IANA protocol 94, as Linux uses it).
    pub const BEET_PH: IpProtocol = IpProtocol(94);
}

/// The ECN field (the low two bits of the IPv4 TOS / IPv6 traffic class), [RFC 3168 § 5].
///
/// [RFC 3168 § 5]: https://www.rfc-editor.org/rfc/rfc3168#section-5
pub mod ecn {
    /// Not ECN-capable transport.
    pub const NOT_ECT: u8 = 0b00;
    /// ECN-capable transport, ECT(1).
    pub const ECT1: u8 = 0b01;
    /// ECN-capable transport, ECT(0).
    pub const ECT0: u8 = 0b10;
    /// Congestion experienced.
    pub const CE: u8 = 0b11;
    /// The mask of the ECN bits in the DS byte.
    pub const MASK: u8 = 0b11;
}

/// The IPv4 "don't fragment" flag within the flags/fragment-offset word.
pub const IPV4_DF: u16 = 0x4000;
/// The IPv4 "more fragments" flag.
pub const IPV4_MF: u16 = 0x2000;
/// The IPv4 fragment offset mask.
pub const IPV4_OFFSET: u16 = 0x1fff;
/// The IPv4 header length without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// The IPv6 fixed header length.
pub const IPV6_HEADER_LEN: usize = 40;

mod v4 {
    use std::ops::Range;
    pub(super) const VER_IHL: usize = 0;
    pub(super) const TOS: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const IDENT: Range<usize> = 4..6;
    pub(super) const FLAGS_FRAG: Range<usize> = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Range<usize> = 10..12;
    pub(super) const SRC: Range<usize> = 12..16;
    pub(super) const DST: Range<usize> = 16..20;
}

/// A view of an IPv4 header ([RFC 791 § 3.1]).
///
/// [RFC 791 § 3.1]: https://www.rfc-editor.org/rfc/rfc791#section-3.1
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checks; use only on bytes this process wrote.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after checking: version 4, `IHL ≥ 5`, the header and the total length
    /// within the buffer, and the total length at least the header length. Trailing bytes
    /// beyond the total length (Ethernet padding) are allowed.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < IPV4_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[v4::VER_IHL] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let p = Ipv4Packet { buffer };
        let hl = p.header_len();
        let total = usize::from(p.total_len());
        if hl < IPV4_HEADER_LEN || total < hl {
            return Err(Error::Malformed);
        }
        if p.buffer.as_ref().len() < total {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// The header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[v4::VER_IHL] & 0x0f) * 4
    }
    /// The TOS / DS byte (DSCP and ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[v4::TOS]
    }
    /// The total length in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), v4::LENGTH.start)
    }
    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), v4::IDENT.start)
    }
    /// The flags and fragment offset word.
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), v4::FLAGS_FRAG.start)
    }
    /// Whether DF is set.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & IPV4_DF != 0
    }
    /// Whether this is a fragment (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (IPV4_MF | IPV4_OFFSET) != 0
    }
    /// The time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[v4::TTL]
    }
    /// The protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[v4::PROTOCOL])
    }
    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), v4::CHECKSUM.start)
    }
    /// The source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    /// The destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// Whether the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
    /// The options (the header beyond 20 bytes).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[IPV4_HEADER_LEN..self.header_len()]
    }
    /// The payload (from the end of the header to the total length).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[v4::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }
    /// Sets the TOS / DS byte.
    #[inline]
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[v4::TOS] = v;
    }
    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        self.buffer.as_mut()[v4::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[v4::IDENT].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the flags and fragment offset word.
    #[inline]
    pub fn set_flags_frag(&mut self, v: u16) {
        self.buffer.as_mut()[v4::FLAGS_FRAG].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[v4::TTL] = v;
    }
    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[v4::PROTOCOL] = v.0;
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[v4::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[v4::SRC].copy_from_slice(&a.octets());
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[v4::DST].copy_from_slice(&a.octets());
    }
    /// Computes and stores the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
    /// Rewrites the TOS byte and patches the checksum incrementally ([RFC 1624]).
    ///
    /// [RFC 1624]: https://www.rfc-editor.org/rfc/rfc1624
    #[inline]
    pub fn update_tos(&mut self, tos: u8) {
        let b = self.buffer.as_ref();
        let old = be16(b, 0);
        let new = u16::from_be_bytes([b[0], tos]);
        let c = super::checksum_update(self.checksum(), old, new);
        self.set_tos(tos);
        self.set_checksum(c);
    }
}

mod v6 {
    use std::ops::Range;
    pub(super) const VER_TC_FLOW: Range<usize> = 0..4;
    pub(super) const LENGTH: Range<usize> = 4..6;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC: Range<usize> = 8..24;
    pub(super) const DST: Range<usize> = 24..40;
}

/// A view of an IPv6 fixed header ([RFC 8200 § 3]).
///
/// [RFC 8200 § 3]: https://www.rfc-editor.org/rfc/rfc8200#section-3
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checks; use only on bytes this process wrote.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after checking version 6 and that the header and the payload length fit.
    /// A payload length of 0 (a jumbogram) is rejected.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < IPV6_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        let p = Ipv6Packet { buffer };
        if p.payload_len() == 0 && p.next_header() != IpProtocol::NO_NEXT_HEADER {
            return Err(Error::Malformed);
        }
        if p.buffer.as_ref().len() < p.total_len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// The traffic class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let w = super::be32(self.buffer.as_ref(), 0);
        (w >> 20) as u8
    }
    /// The flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        super::be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }
    /// The payload length.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), v6::LENGTH.start)
    }
    /// The header plus payload length.
    #[inline]
    pub fn total_len(&self) -> usize {
        IPV6_HEADER_LEN + usize::from(self.payload_len())
    }
    /// The next header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[v6::NEXT_HEADER])
    }
    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[v6::HOP_LIMIT]
    }
    /// The source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[v6::SRC]);
        Ipv6Addr::from(a)
    }
    /// The destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[v6::DST]);
        Ipv6Addr::from(a)
    }
    /// The payload (after the fixed header, to the payload length).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[IPV6_HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, the traffic class and the flow label.
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow: u32) {
        let w = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow & 0x000f_ffff);
        self.buffer.as_mut()[v6::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }
    /// Sets the traffic class, keeping version and flow label.
    #[inline]
    pub fn set_traffic_class(&mut self, traffic_class: u8) {
        let flow = self.flow_label();
        self.set_version_tc_flow(traffic_class, flow);
    }
    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        self.buffer.as_mut()[v6::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[v6::NEXT_HEADER] = v.0;
    }
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[v6::HOP_LIMIT] = v;
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[v6::SRC].copy_from_slice(&a.octets());
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[v6::DST].copy_from_slice(&a.octets());
    }
}

/// The sum of the IPv6 pseudo-header ([RFC 8200 § 8.1]) for an upper-layer checksum.
///
/// [RFC 8200 § 8.1]: https://www.rfc-editor.org/rfc/rfc8200#section-8.1
#[inline]
pub fn ipv6_pseudo_sum(src: &Ipv6Addr, dst: &Ipv6Addr, len: u32, proto: IpProtocol) -> u32 {
    let mut sum = super::checksum_add(0, &src.octets());
    sum = super::checksum_add(sum, &dst.octets());
    sum = sum.wrapping_add(len >> 16).wrapping_add(len & 0xffff);
    sum.wrapping_add(u32::from(proto.0))
}

/// The sum of the IPv4 pseudo-header ([RFC 768]) for an upper-layer checksum.
///
/// [RFC 768]: https://www.rfc-editor.org/rfc/rfc768
#[inline]
pub fn ipv4_pseudo_sum(src: &Ipv4Addr, dst: &Ipv4Addr, len: u16, proto: IpProtocol) -> u32 {
    let mut sum = super::checksum_add(0, &src.octets());
    sum = super::checksum_add(sum, &dst.octets());
    sum.wrapping_add(u32::from(len))
        .wrapping_add(u32::from(proto.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_header() -> [u8; 20] {
        let mut h = [0u8; 20];
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.set_version_header_len(20);
        p.set_tos(0xb8 | ecn::ECT0);
        p.set_total_len(20);
        p.set_ident(0x1234);
        p.set_flags_frag(IPV4_DF);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::UDP);
        p.set_src(Ipv4Addr::new(192, 0, 2, 1));
        p.set_dst(Ipv4Addr::new(198, 51, 100, 7));
        p.fill_checksum();
        h
    }

    #[test]
    fn ipv4_round_trip() {
        let h = v4_header();
        let p = Ipv4Packet::new_checked(&h[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.tos(), 0xba);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.src(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 51, 100, 7));
        assert!(p.payload().is_empty());
    }

    #[test]
    fn ipv4_update_tos_keeps_checksum_valid() {
        let mut h = v4_header();
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.update_tos(0xb8 | ecn::CE);
        assert!(p.verify_checksum());
    }

    #[test]
    fn ipv4_every_truncation_is_rejected() {
        let h = v4_header();
        for n in 0..h.len() {
            assert_eq!(
                Ipv4Packet::new_checked(&h[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        let mut bad = h;
        bad[0] = 0x44; // IHL 4
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        let mut long = h;
        long[3] = 21; // total length beyond the buffer
        assert_eq!(
            Ipv4Packet::new_checked(&long[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn ipv6_round_trip_and_truncation() {
        let mut h = [0u8; 48];
        {
            let mut p = Ipv6Packet::new_unchecked(&mut h[..]);
            p.set_version_tc_flow(0x2e, 0xabcde);
            p.set_payload_len(8);
            p.set_next_header(IpProtocol::UDP);
            p.set_hop_limit(7);
            p.set_src("2001:db8::1".parse().unwrap());
            p.set_dst("2001:db8::2".parse().unwrap());
        }
        let p = Ipv6Packet::new_checked(&h[..]).unwrap();
        assert_eq!(p.traffic_class(), 0x2e);
        assert_eq!(p.flow_label(), 0xabcde);
        assert_eq!(p.total_len(), 48);
        assert_eq!(p.hop_limit(), 7);
        assert_eq!(p.payload().len(), 8);
        for n in 0..h.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&h[..n]).unwrap_err(),
                Error::Truncated
            );
        }
    }
}
