//! Encapsulation in place: inner packet in, ESP packet out, in the caller's frame.
//!
//! The caller owns a frame with the inner packet at `frame[start..start + len]` and leaves
//! headroom in front of it (outer IP, UDP, ESP header and IV: at most 40 + 8 + 16 bytes) and
//! tailroom behind it (padding, trailer, ICV: at most 3 + 2 + 16 bytes); see [`HEADROOM`] and
//! [`TAILROOM`]. [`OutboundSa::encapsulate`] writes the outer packet around the inner one,
//! encrypts in place, and returns where the outer packet now lies. It allocates nothing and does
//! a bounded amount of work; a short frame or a malformed inner packet is an error, never a
//! panic.
//!
//! Header construction follows [RFC 4301 § 5.1.2] with ECN in the normal mode of [RFC 6040
//! § 4.1] ("the ECN field is copied unaltered from inner to outer"): tunnel mode takes TTL /
//! hop limit from the SA's [`OuterPolicy`](super::OuterPolicy), DSCP copied or set, DF copied,
//! set or cleared. BEET mode ([draft-nikander-esp-beet-mode-09 § 5]) leaves the inner header
//! out (an IPv4 header with options becomes the pseudo-header of protocol 94, as Linux does) and
//! carries the inner TTL in the outer header.
//!
//! The inner TTL is not touched here: decrementing it (and answering TTL expiry) belongs to the
//! forwarding step before encapsulation.
//!
//! [RFC 4301 § 5.1.2]: https://www.rfc-editor.org/rfc/rfc4301#section-5.1.2
//! [RFC 6040 § 4.1]: https://www.rfc-editor.org/rfc/rfc6040#section-4.1
//! [draft-nikander-esp-beet-mode-09 § 5]: https://datatracker.ietf.org/doc/html/draft-nikander-esp-beet-mode-09#section-5

use crate::drop::DropReason;
use crate::wire::esp::{self, EspPacket, EspRepr, ICV_LEN, IV_LEN, TRAILER_LEN};
use crate::wire::ip::{
    self, IPV4_DF, IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpProtocol, Ipv4Packet, Ipv6Packet,
};
use crate::wire::udp::{self, UdpPacket};
use crate::wire::{checksum_add, checksum_finish};

use super::sa::{DfPolicy, Mode, OutboundSa, OuterAddrs, SaPath, aad};
use super::seq::SaEvent;

/// The most headroom an encapsulation needs in front of the inner packet.
pub const HEADROOM: usize = IPV6_HEADER_LEN + udp::HEADER_LEN + esp::HEADER_LEN + IV_LEN;
/// The most tailroom an encapsulation needs behind the inner packet.
pub const TAILROOM: usize = 16 - 1 + TRAILER_LEN + ICV_LEN;

/// An encapsulated packet: where it lies in the frame, and what happened to the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encapsulated {
    /// The offset of the outer IP header in the frame.
    pub start: usize,
    /// The outer packet's length.
    pub len: usize,
    /// The sequence number (and IV) used.
    pub seq: u64,
    /// A limit this packet crossed: tell control (rekey or delete).
    pub event: Option<SaEvent>,
    /// The outer IPv4 packet exceeds the path MTU but may be fragmented (the inner IPv4 packet
    /// had DF clear, so the outer DF is clear): send it as the fragments
    /// [`fragment_ipv4`](super::fragment_ipv4) makes.
    pub fragment: bool,
}

/// Why a packet was not encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncapError {
    /// Dropped for `0`.
    #[error("dropped: {0}")]
    Drop(DropReason),
    /// The packet does not fit the path and may not be fragmented: answer its sender with an
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" carrying `mtu`
    /// ([`crate::esp::pmtu::icmp_too_big`]).
    #[error("too big for the path: inner MTU {mtu}")]
    TooBig {
        /// The largest inner packet the path takes.
        mtu: u32,
    },
}

impl EncapError {
    /// The drop reason to count.
    pub fn reason(&self) -> DropReason {
        match self {
            EncapError::Drop(r) => *r,
            EncapError::TooBig { .. } => DropReason::TooBig,
        }
    }
}

impl From<DropReason> for EncapError {
    fn from(r: DropReason) -> Self {
        EncapError::Drop(r)
    }
}

/// The fields of the inner header encapsulation needs.
#[derive(Debug, Clone, Copy)]
struct Inner {
    v6: bool,
    tos: u8,
    ttl: u8,
    /// DF for IPv4; always true for IPv6.
    df: bool,
    header_len: usize,
    total_len: usize,
    protocol: IpProtocol,
}

#[inline]
fn parse_inner(pkt: &[u8]) -> Result<Inner, DropReason> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => {
            let p = Ipv4Packet::new_checked(pkt).map_err(|_| DropReason::BadInnerPacket)?;
            Ok(Inner {
                v6: false,
                tos: p.tos(),
                ttl: p.ttl(),
                df: p.dont_frag(),
                header_len: p.header_len(),
                total_len: usize::from(p.total_len()),
                protocol: p.protocol(),
            })
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(pkt).map_err(|_| DropReason::BadInnerPacket)?;
            Ok(Inner {
                v6: true,
                tos: p.traffic_class(),
                ttl: p.hop_limit(),
                df: true,
                header_len: IPV6_HEADER_LEN,
                total_len: p.total_len(),
                protocol: p.next_header(),
            })
        }
        _ => Err(DropReason::BadInnerPacket),
    }
}

/// The severer of two events (a hard limit wins).
#[inline]
fn severest(a: Option<SaEvent>, b: Option<SaEvent>) -> Option<SaEvent> {
    match (a, b) {
        (Some(SaEvent::Hard(k)), _) | (_, Some(SaEvent::Hard(k))) => Some(SaEvent::Hard(k)),
        (a, b) => a.or(b),
    }
}

impl OutboundSa {
    /// The longest plaintext (in tunnel mode, the whole inner packet) whose ESP packet on
    /// `path` fits in `mtu` bytes.
    fn plaintext_room(&self, path: &SaPath, mtu: usize) -> usize {
        let fixed = path.header_len() + esp::HEADER_LEN + IV_LEN + ICV_LEN;
        let align = self.outer.padding.align();
        (mtu.saturating_sub(fixed) & !(align - 1)).saturating_sub(TRAILER_LEN)
    }

    /// For an IPv4 packet with DF clear whose ESP packet would exceed the path MTU in tunnel
    /// mode: the largest fragment of it (header included) that fits once encapsulated. The
    /// caller cuts the packet with [`fragment_ipv4`](super::fragment_ipv4) to that size and
    /// encapsulates each fragment ([RFC 4459 § 5.1]): the far end decapsulates ordinary ESP
    /// packets and the inner destination reassembles, where fragments of the outer packet
    /// would need the far gateway to reassemble. `None`: the packet fits, may not be
    /// fragmented (DF, IPv6), or the SA is in BEET mode.
    ///
    /// [RFC 4459 § 5.1]: https://www.rfc-editor.org/rfc/rfc4459#section-5.1
    pub fn inner_fragment_size(&self, path: &SaPath, packet: &[u8]) -> Option<usize> {
        let mtu = self.path_mtu() as usize;
        if mtu == 0 || !matches!(self.mode, Mode::Tunnel) {
            return None;
        }
        let p = Ipv4Packet::new_checked(packet).ok()?;
        if p.dont_frag() {
            return None;
        }
        let room = self.plaintext_room(path, mtu);
        // At least one 8-byte block of data besides the header.
        (usize::from(p.total_len()) > room && room >= p.header_len() + 8).then_some(room)
    }

    /// Encapsulates the inner packet at `frame[start..start + len]` in place for `path`.
    ///
    /// Trailing bytes beyond the inner packet's own length (Ethernet padding) are dropped.
    /// Returns where the outer packet lies in `frame`.
    pub fn encapsulate(
        &self,
        path: &SaPath,
        frame: &mut [u8],
        start: usize,
        len: usize,
    ) -> Result<Encapsulated, EncapError> {
        let end = start.checked_add(len).ok_or(DropReason::NoRoom)?;
        let inner = parse_inner(frame.get(start..end).ok_or(DropReason::NoRoom)?)?;
        let inner_end = start + inner.total_len;

        // The plaintext: the whole packet (tunnel) or its payload, with the BEET pseudo-header
        // for IPv4 options in front.
        let (p_start, next_header, ph_len) = match self.mode {
            Mode::Tunnel => (
                start,
                if inner.v6 {
                    IpProtocol::IPV6
                } else {
                    IpProtocol::IPV4
                },
                0,
            ),
            Mode::Beet(_) => {
                let options = if inner.v6 {
                    0
                } else {
                    inner.header_len - IPV4_HEADER_LEN
                };
                if options == 0 {
                    (start + inner.header_len, inner.protocol, 0)
                } else {
                    // Linux's layout: 4-byte header, NOP padding to 8-byte alignment, options.
                    let ph = if options & 4 != 0 {
                        4 + options
                    } else {
                        8 + options
                    };
                    (start + inner.header_len - ph, IpProtocol::BEET_PH, ph)
                }
            }
        };
        let plen = inner_end - p_start;
        let align = self.outer.padding.align();
        let pad = esp::pad_len(plen, align);
        let ct_end = inner_end + pad + TRAILER_LEN;
        let icv_end = ct_end + ICV_LEN;
        if icv_end > frame.len() {
            return Err(DropReason::NoRoom.into());
        }
        let ip_len = path.header_len() - path.udp.map_or(0, |_| udp::HEADER_LEN);
        let esp_start = p_start
            .checked_sub(esp::HEADER_LEN + IV_LEN)
            .ok_or(DropReason::NoRoom)?;
        let out_start = esp_start
            .checked_sub(path.header_len())
            .ok_or(DropReason::NoRoom)?;
        let out_len = icv_end - out_start;
        let outer_v4 = matches!(path.addrs, OuterAddrs::V4 { .. });

        // Path MTU ([RFC 4301 § 8]).
        let mtu = self.path_mtu() as usize;
        let mut fragment = false;
        if mtu != 0 && out_len > mtu {
            if inner.v6 || inner.df || !outer_v4 {
                // The largest plaintext that fits, then the inner packet it stands for
                // (BEET leaves the inner header out).
                let fit = self.plaintext_room(path, mtu) + (inner.total_len - plen);
                let floor = if inner.v6 { 1280 } else { 68 };
                return Err(EncapError::TooBig {
                    mtu: fit.max(floor) as u32,
                });
            }
            fragment = true;
        }
        if (outer_v4 && out_len > usize::from(u16::MAX)) || out_len - ip_len > usize::from(u16::MAX)
        {
            return Err(DropReason::TooBig.into());
        }

        let (seq, seq_event) = self.seq.next()?;
        let byte_event = self.bytes.add(inner.total_len as u64)?;

        if ph_len != 0 {
            let options = inner.header_len - IPV4_HEADER_LEN;
            // The options already sit right before the payload; write the pseudo-header and
            // the NOP padding in front of them.
            let ph = &mut frame[p_start..p_start + ph_len - options];
            let padlen = ph.len() - 4;
            ph[0] = inner.protocol.0;
            ph[1] = (options / 8) as u8;
            ph[2] = padlen as u8;
            ph[3] = 0;
            ph[4..].fill(1); // IPOPT_NOP
        }
        esp::write_trailer(&mut frame[inner_end..ct_end], next_header);
        EspRepr {
            spi: self.spi,
            seq: seq as u32,
            iv: seq.to_be_bytes(),
        }
        .emit(&mut EspPacket::new_unchecked(
            &mut frame[esp_start..p_start],
        ));
        let (aad_buf, aad_len) = aad(self.spi, seq, self.esn);
        let (body, icv) = frame[p_start..icv_end].split_at_mut(ct_end - p_start);
        if !self
            .key
            .seal(seq.to_be_bytes(), &aad_buf[..aad_len], body, icv)
        {
            return Err(DropReason::NoRoom.into());
        }

        // The outer header.
        let ecn = inner.tos & ip::ecn::MASK;
        let dscp = match self.outer.dscp {
            Some(d) => (d << 2) & !ip::ecn::MASK,
            None => inner.tos & !ip::ecn::MASK,
        };
        let tos = dscp | ecn;
        let ttl = match self.mode {
            Mode::Tunnel => self.outer.ttl,
            Mode::Beet(_) => inner.ttl,
        };
        let protocol = if path.udp.is_some() {
            IpProtocol::UDP
        } else {
            IpProtocol::ESP
        };
        let outer = &mut frame[out_start..icv_end];
        match path.addrs {
            OuterAddrs::V4 { src, dst } => {
                let df = !fragment
                    && match self.outer.df {
                        DfPolicy::Copy => inner.df,
                        DfPolicy::Set => true,
                        DfPolicy::Clear => false,
                    };
                let flags = if df { IPV4_DF } else { 0 };
                // The checksum from the values, not from the bytes just stored (reading them
                // back stalls on store forwarding).
                let (s, d) = (u32::from(src), u32::from(dst));
                let sum = 0x4500
                    + u32::from(tos)
                    + out_len as u32
                    + u32::from(seq as u16)
                    + u32::from(flags)
                    + (u32::from(ttl) << 8)
                    + u32::from(protocol.0)
                    + (s >> 16)
                    + (s & 0xffff)
                    + (d >> 16)
                    + (d & 0xffff);
                let mut p = Ipv4Packet::new_unchecked(&mut outer[..IPV4_HEADER_LEN]);
                p.set_version_header_len(IPV4_HEADER_LEN);
                p.set_tos(tos);
                p.set_total_len(out_len as u16);
                p.set_ident(seq as u16);
                p.set_flags_frag(flags);
                p.set_ttl(ttl);
                p.set_protocol(protocol);
                p.set_src(src);
                p.set_dst(dst);
                p.set_checksum(checksum_finish(sum));
            }
            OuterAddrs::V6 { src, dst } => {
                let mut p = Ipv6Packet::new_unchecked(&mut outer[..IPV6_HEADER_LEN]);
                p.set_version_tc_flow(tos, 0);
                p.set_payload_len((out_len - IPV6_HEADER_LEN) as u16);
                p.set_next_header(protocol);
                p.set_hop_limit(ttl);
                p.set_src(src);
                p.set_dst(dst);
            }
        }
        if let Some(ports) = path.udp {
            let udp_len = out_len - ip_len;
            let rest = &mut outer[ip_len..];
            let mut u = UdpPacket::new_unchecked(&mut rest[..udp::HEADER_LEN]);
            u.set_src_port(ports.src);
            u.set_dst_port(ports.dst);
            u.set_len(udp_len as u16);
            u.set_checksum(0);
            // RFC 3948 § 2.1: over IPv4 the checksum SHOULD be zero. Over IPv6 a zero checksum
            // is not allowed (RFC 8200 § 8.1), so it is computed over the ESP packet.
            if let OuterAddrs::V6 { src, dst } = path.addrs {
                let sum = ip::ipv6_pseudo_sum(&src, &dst, udp_len as u32, IpProtocol::UDP);
                let c = match checksum_finish(checksum_add(sum, rest)) {
                    0 => 0xffff,
                    c => c,
                };
                UdpPacket::new_unchecked(&mut rest[..udp::HEADER_LEN]).set_checksum(c);
            }
        }
        Ok(Encapsulated {
            start: out_start,
            len: out_len,
            seq,
            event: severest(seq_event, byte_event),
            fragment,
        })
    }
}

/// Writes a NAT-keepalive ([RFC 3948 § 2.3]) for `path` into `out`; returns its length.
/// A path without UDP encapsulation has none.
///
/// [RFC 3948 § 2.3]: https://www.rfc-editor.org/rfc/rfc3948#section-2.3
pub fn emit_nat_keepalive(path: &SaPath, out: &mut [u8]) -> Result<usize, DropReason> {
    let ports = path.udp.ok_or(DropReason::NotEsp)?;
    let len = path.header_len() + 1;
    let out = out.get_mut(..len).ok_or(DropReason::NoRoom)?;
    let ip_len = len - udp::HEADER_LEN - 1;
    match path.addrs {
        OuterAddrs::V4 { src, dst } => {
            let mut p = Ipv4Packet::new_unchecked(&mut out[..IPV4_HEADER_LEN]);
            p.set_version_header_len(IPV4_HEADER_LEN);
            p.set_tos(0);
            p.set_total_len(len as u16);
            p.set_ident(0);
            p.set_flags_frag(IPV4_DF);
            p.set_ttl(64);
            p.set_protocol(IpProtocol::UDP);
            p.set_src(src);
            p.set_dst(dst);
            p.fill_checksum();
        }
        OuterAddrs::V6 { src, dst } => {
            let mut p = Ipv6Packet::new_unchecked(&mut out[..IPV6_HEADER_LEN]);
            p.set_version_tc_flow(0, 0);
            p.set_payload_len((len - IPV6_HEADER_LEN) as u16);
            p.set_next_header(IpProtocol::UDP);
            p.set_hop_limit(64);
            p.set_src(src);
            p.set_dst(dst);
        }
    }
    let rest = &mut out[ip_len..];
    rest[udp::HEADER_LEN] = udp::KEEPALIVE;
    let mut u = UdpPacket::new_unchecked(&mut rest[..udp::HEADER_LEN]);
    u.set_src_port(ports.src);
    u.set_dst_port(ports.dst);
    u.set_len((udp::HEADER_LEN + 1) as u16);
    u.set_checksum(0);
    let sum = match path.addrs {
        OuterAddrs::V4 { src, dst } => {
            ip::ipv4_pseudo_sum(&src, &dst, (udp::HEADER_LEN + 1) as u16, IpProtocol::UDP)
        }
        OuterAddrs::V6 { src, dst } => {
            ip::ipv6_pseudo_sum(&src, &dst, (udp::HEADER_LEN + 1) as u32, IpProtocol::UDP)
        }
    };
    let c = match checksum_finish(checksum_add(sum, rest)) {
        0 => 0xffff,
        c => c,
    };
    UdpPacket::new_unchecked(&mut rest[..udp::HEADER_LEN]).set_checksum(c);
    Ok(len)
}
