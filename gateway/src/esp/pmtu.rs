//! Path MTU: the outer path's MTU learnt from ICMP, and "too big" answers to inner senders.
//!
//! - The outer path: an ICMP "fragmentation needed" ([RFC 1191]) or ICMPv6 "packet too big"
//!   ([RFC 8201]) that quotes one of our ESP packets names the SPI; [`parse_packet_too_big`]
//!   extracts it, and [`OutboundSa::note_path_mtu`] lowers the SA's path MTU, never below
//!   [`MIN_PMTU_V4`] / [`MIN_PMTU_V6`] (ICMP is unauthenticated: a forged message can only shrink
//!   packets to these floors, it cannot move anything).
//! - The inner sender: when an inner packet with DF (or any IPv6 packet) does not fit,
//!   encapsulation returns [`EncapError::TooBig`](super::EncapError::TooBig) and the worker
//!   answers with [`icmp_too_big`] ([RFC 4301 § 8.2]: "the IPsec implementation … SHOULD send
//!   an ICMP PMTU message to the originating host"). Rate limiting belongs to the worker.
//!
//! [RFC 1191]: https://www.rfc-editor.org/rfc/rfc1191
//! [RFC 8201]: https://www.rfc-editor.org/rfc/rfc8201
//! [RFC 4301 § 8.2]: https://www.rfc-editor.org/rfc/rfc4301#section-8.2

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use crate::drop::DropReason;
use crate::wire::esp;
use crate::wire::ip::{self, IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpProtocol, Ipv4Packet, Ipv6Packet};
use crate::wire::udp::{self, UdpPacket};
use crate::wire::{be16, be32, checksum, checksum_add, checksum_finish};

use super::sa::OutboundSa;

/// The smallest path MTU taken from an ICMP message over IPv4 (Linux's `min_pmtu`, 552).
pub const MIN_PMTU_V4: u32 = 552;
/// The IPv6 minimum link MTU ([RFC 8200 § 5]: "1280 octets").
///
/// [RFC 8200 § 5]: https://www.rfc-editor.org/rfc/rfc8200#section-5
pub const MIN_PMTU_V6: u32 = 1280;
/// The longest ICMPv4 error we send ([RFC 1812 § 4.3.2.3]: "SHOULD NOT … exceed 576 bytes").
///
/// [RFC 1812 § 4.3.2.3]: https://www.rfc-editor.org/rfc/rfc1812#section-4.3.2.3
pub const ICMPV4_ERROR_MAX: usize = 576;
/// The longest ICMPv6 error we send ([RFC 4443 § 2.4 (c)]: "as much of invoking packet as
/// possible without the ICMPv6 packet exceeding the minimum IPv6 MTU").
///
/// [RFC 4443 § 2.4 (c)]: https://www.rfc-editor.org/rfc/rfc4443#section-2.4
pub const ICMPV6_ERROR_MAX: usize = 1280;

impl OutboundSa {
    /// Lowers the SA's path MTU to `mtu` (from an ICMP message about its outer path); takes
    /// effect for the next packet. A value below the floor of the outer family counts as the
    /// floor; a larger value than the current one is ignored (it expires with the SA's path).
    pub fn note_path_mtu(&self, mtu: u32, outer_v6: bool) {
        let floor = if outer_v6 { MIN_PMTU_V6 } else { MIN_PMTU_V4 };
        let mtu = mtu.max(floor);
        let _ = self
            .path_mtu
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur == 0 || mtu < cur).then_some(mtu)
            });
    }

    /// Sets the path MTU outright (0: unknown, no limit): when control moves the SA to a new
    /// path or knows the link MTU.
    pub fn set_path_mtu(&self, mtu: u32) {
        self.path_mtu.store(mtu, Ordering::Relaxed);
    }
}

/// An ICMP message about one of our outer ESP packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketTooBig {
    /// The SPI of the quoted ESP packet.
    pub spi: u32,
    /// The MTU the router reported.
    pub mtu: u32,
    /// The destination of the quoted packet (the SA's peer).
    pub peer: IpAddr,
    /// Whether the outer path is IPv6.
    pub v6: bool,
}

/// Parses an IP packet carrying an ICMP "fragmentation needed" (type 3 code 4) or ICMPv6
/// "packet too big" (type 2) that quotes an ESP packet (raw or UDP-encapsulated on port 4500).
pub fn parse_packet_too_big(packet: &[u8]) -> Option<PacketTooBig> {
    let (v6, icmp) = match packet.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(packet).ok()?;
            (p.protocol() == IpProtocol::ICMP && !p.is_fragment()).then_some(())?;
            (false, &packet[p.header_len()..usize::from(p.total_len())])
        }
        6 => {
            let p = Ipv6Packet::new_checked(packet).ok()?;
            (p.next_header() == IpProtocol::ICMPV6).then_some(())?;
            (true, &packet[IPV6_HEADER_LEN..p.total_len()])
        }
        _ => return None,
    };
    let head = icmp.get(..8)?;
    let mtu = match (v6, head[0], head[1]) {
        (false, 3, 4) => u32::from(be16(head, 6)),
        (true, 2, 0) => be32(head, 4),
        _ => return None,
    };
    let quoted = &icmp[8..];
    // The quote may be cut short: read the header fields only, with lengths unchecked.
    let (peer, protocol, rest) = match quoted.first()? >> 4 {
        4 => {
            let hl = usize::from(quoted.first()? & 0x0f) * 4;
            let q = quoted.get(..IPV4_HEADER_LEN)?;
            let p = Ipv4Packet::new_unchecked(q);
            (IpAddr::V4(p.dst()), p.protocol(), quoted.get(hl..)?)
        }
        6 => {
            let q = quoted.get(..IPV6_HEADER_LEN)?;
            let p = Ipv6Packet::new_unchecked(q);
            (
                IpAddr::V6(p.dst()),
                p.next_header(),
                &quoted[IPV6_HEADER_LEN..],
            )
        }
        _ => return None,
    };
    let esp_hdr = match protocol {
        IpProtocol::ESP => rest,
        IpProtocol::UDP => {
            let u = UdpPacket::new_unchecked(rest.get(..udp::HEADER_LEN)?);
            (u.dst_port() == udp::NAT_T_PORT || u.src_port() == udp::NAT_T_PORT).then_some(())?;
            &rest[udp::HEADER_LEN..]
        }
        _ => return None,
    };
    let spi = be32(esp_hdr.get(..esp::HEADER_LEN)?, 0);
    (spi >= esp::MIN_SPI).then_some(PacketTooBig { spi, mtu, peer, v6 })
}

/// Writes the ICMP "fragmentation needed" / ICMPv6 "packet too big" answer to `inner` (the
/// packet that did not fit) from `from` (our address of `inner`'s family) into `out`; returns
/// its length, or `None` where no answer is allowed: the packet is itself an ICMP error, a
/// non-first fragment, or from an address that cannot be answered ([RFC 1122 § 3.2.2],
/// [RFC 4443 § 2.4 (e)]).
///
/// [RFC 1122 § 3.2.2]: https://www.rfc-editor.org/rfc/rfc1122#section-3.2.2
/// [RFC 4443 § 2.4 (e)]: https://www.rfc-editor.org/rfc/rfc4443#section-2.4
pub fn icmp_too_big(
    inner: &[u8],
    mtu: u32,
    from: IpAddr,
    out: &mut [u8],
) -> Result<Option<usize>, DropReason> {
    match (inner.first().map(|b| b >> 4), from) {
        (Some(4), IpAddr::V4(from)) => {
            let p = Ipv4Packet::new_checked(inner).map_err(|_| DropReason::BadInnerPacket)?;
            let src = p.src();
            if p.flags_frag() & ip::IPV4_OFFSET != 0
                || src.is_unspecified()
                || src.is_multicast()
                || src.is_broadcast()
            {
                return Ok(None);
            }
            if p.protocol() == IpProtocol::ICMP
                && let Some(&t) = p.payload().first()
                && !matches!(t, 0 | 8 | 13 | 14)
            {
                return Ok(None);
            }
            let quote = &inner[..usize::from(p.total_len())];
            let quote = &quote[..quote.len().min(ICMPV4_ERROR_MAX - IPV4_HEADER_LEN - 8)];
            let len = IPV4_HEADER_LEN + 8 + quote.len();
            let out = out.get_mut(..len).ok_or(DropReason::NoRoom)?;
            {
                let mut h = Ipv4Packet::new_unchecked(&mut out[..IPV4_HEADER_LEN]);
                h.set_version_header_len(IPV4_HEADER_LEN);
                h.set_tos(0xc0); // CS6, network control
                h.set_total_len(len as u16);
                h.set_ident(0);
                h.set_flags_frag(0);
                h.set_ttl(64);
                h.set_protocol(IpProtocol::ICMP);
                h.set_src(from);
                h.set_dst(src);
                h.fill_checksum();
            }
            let icmp = &mut out[IPV4_HEADER_LEN..];
            icmp[..8].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
            let mtu16 = u16::try_from(mtu).unwrap_or(u16::MAX);
            icmp[6..8].copy_from_slice(&mtu16.to_be_bytes());
            icmp[8..].copy_from_slice(quote);
            let c = checksum(icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            Ok(Some(len))
        }
        (Some(6), IpAddr::V6(from)) => {
            let p = Ipv6Packet::new_checked(inner).map_err(|_| DropReason::BadInnerPacket)?;
            let src = p.src();
            if src.is_unspecified() || src.is_multicast() {
                return Ok(None);
            }
            if p.next_header() == IpProtocol::ICMPV6
                && let Some(&t) = p.payload().first()
                && t < 128
            {
                return Ok(None);
            }
            let quote = &inner[..p.total_len()];
            let quote = &quote[..quote.len().min(ICMPV6_ERROR_MAX - IPV6_HEADER_LEN - 8)];
            let icmp_len = 8 + quote.len();
            let len = IPV6_HEADER_LEN + icmp_len;
            let out = out.get_mut(..len).ok_or(DropReason::NoRoom)?;
            {
                let mut h = Ipv6Packet::new_unchecked(&mut out[..IPV6_HEADER_LEN]);
                h.set_version_tc_flow(0xc0, 0);
                h.set_payload_len(icmp_len as u16);
                h.set_next_header(IpProtocol::ICMPV6);
                h.set_hop_limit(64);
                h.set_src(from);
                h.set_dst(src);
            }
            let icmp = &mut out[IPV6_HEADER_LEN..];
            icmp[..4].copy_from_slice(&[2, 0, 0, 0]);
            icmp[4..8].copy_from_slice(&mtu.to_be_bytes());
            icmp[8..].copy_from_slice(quote);
            let sum = ip::ipv6_pseudo_sum(&from, &src, icmp_len as u32, IpProtocol::ICMPV6);
            let c = checksum_finish(checksum_add(sum, icmp));
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            Ok(Some(len))
        }
        _ => Err(DropReason::BadInnerPacket),
    }
}

/// Writes the IPv4 fragment of `packet` whose data starts at `offset` (0 for the first) into
/// `out`, each fragment at most `mtu` bytes ([RFC 791 § 3.2]); returns the fragment's length and
/// the offset of the next one (`None` after the last). For an outer packet that
/// [`Encapsulated::fragment`](super::Encapsulated::fragment) marks: call until `None`, sending
/// each fragment. The first fragment carries the options that must be copied; later ones carry
/// only those with the copy flag set. Bounded work, no allocation.
///
/// [RFC 791 § 3.2]: https://www.rfc-editor.org/rfc/rfc791#section-3.2
pub fn fragment_ipv4(
    packet: &[u8],
    mtu: usize,
    offset: usize,
    out: &mut [u8],
) -> Result<(usize, Option<usize>), DropReason> {
    let p = Ipv4Packet::new_checked(packet).map_err(|_| DropReason::BadOuterHeader)?;
    if p.dont_frag() {
        return Err(DropReason::TooBig);
    }
    let hl = p.header_len();
    let data = &packet[hl..usize::from(p.total_len())];
    // Options after the first fragment: only those with the copy flag (RFC 791 § 3.1).
    let mut opts = [0u8; 40];
    let opts_len = if offset == 0 {
        let o = p.options();
        opts[..o.len()].copy_from_slice(o);
        o.len()
    } else {
        copied_options(p.options(), &mut opts)
    };
    let frag_hl = IPV4_HEADER_LEN + opts_len;
    let room = mtu.checked_sub(frag_hl).ok_or(DropReason::TooBig)? & !7;
    if room == 0 || !offset.is_multiple_of(8) || offset > data.len() {
        return Err(DropReason::TooBig);
    }
    let chunk = room.min(data.len() - offset);
    let last = offset + chunk == data.len();
    let len = frag_hl + chunk;
    let out = out.get_mut(..len).ok_or(DropReason::NoRoom)?;
    out[..IPV4_HEADER_LEN].copy_from_slice(&packet[..IPV4_HEADER_LEN]);
    out[IPV4_HEADER_LEN..frag_hl].copy_from_slice(&opts[..opts_len]);
    out[frag_hl..].copy_from_slice(&data[offset..offset + chunk]);
    // A fragment of a fragment keeps the original offset and MF.
    let base = usize::from(p.flags_frag() & ip::IPV4_OFFSET) * 8;
    let more = !last || p.flags_frag() & ip::IPV4_MF != 0;
    let field = u16::try_from((base + offset) / 8).map_err(|_| DropReason::TooBig)?;
    let mut h = Ipv4Packet::new_unchecked(&mut out[..frag_hl]);
    h.set_version_header_len(frag_hl);
    h.set_total_len(len as u16);
    h.set_flags_frag(field | if more { ip::IPV4_MF } else { 0 });
    h.fill_checksum();
    Ok((len, (!last).then_some(offset + chunk)))
}

/// Copies the options with the copy flag set (option type bit 7) into `out`, padded with
/// end-of-options to a multiple of 4; returns the length.
fn copied_options(options: &[u8], out: &mut [u8; 40]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at < options.len() {
        let t = options[at];
        let len = match t {
            0 => break,
            1 => 1,
            _ => usize::from(*options.get(at + 1).unwrap_or(&0)).max(2),
        };
        let end = (at + len).min(options.len());
        if t & 0x80 != 0 {
            let o = &options[at..end];
            out[n..n + o.len()].copy_from_slice(o);
            n += o.len();
        }
        at = end;
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_copied_options_follow_the_first_fragment() {
        // NOP, record route (not copied, len 7), security (copied, 0x82, len 3), EOL.
        let opts = [1u8, 7, 7, 4, 0, 0, 0, 0, 0x82, 3, 9, 0];
        let mut out = [0u8; 40];
        let n = copied_options(&opts, &mut out);
        assert_eq!(n, 4);
        assert_eq!(&out[..4], &[0x82, 3, 9, 0]);
        // A length running past the end is cut, never read beyond.
        let mut out = [0u8; 40];
        assert_eq!(copied_options(&[0x83, 200, 1], &mut out), 4);
    }
}
