//! Decapsulation in place: outer packet in, inner packet out, in the caller's frame.
//!
//! [`decapsulate`] takes the outer IP packet at `frame[start..start + len]`, finds the SA by
//! SPI through the caller's lookup, checks the anti-replay window, verifies and decrypts in
//! place, records the sequence number, and rebuilds the inner packet — in tunnel mode it is the
//! payload; in BEET mode the inner header is written in front of the payload from the SA's
//! inner addresses, which may need up to 4 bytes of headroom before `start` (an IPv6 inner
//! header after an IPv4 outer one without UDP). Every failure is a [`DropReason`]; nothing the
//! packet says can make it panic or read outside `frame`.
//!
//! Checks follow [RFC 4303 § 3.4]: the replay check before the integrity check, the window
//! update after it ([RFC 4303 § 3.4.3]: "the receive window is updated only if the integrity
//! verification succeeds"). Padding bytes are checked ([RFC 4303 § 2.4]); a TFC dummy packet
//! (next header 59) is consumed silently. ECN decapsulation follows [RFC 6040 § 4.2]; the inner
//! DSCP and TTL are left as they are (forwarding decrements the TTL).
//!
//! [RFC 4303 § 3.4]: https://www.rfc-editor.org/rfc/rfc4303#section-3.4
//! [RFC 4303 § 3.4.3]: https://www.rfc-editor.org/rfc/rfc4303#section-3.4.3
//! [RFC 4303 § 2.4]: https://www.rfc-editor.org/rfc/rfc4303#section-2.4
//! [RFC 6040 § 4.2]: https://www.rfc-editor.org/rfc/rfc6040#section-4.2

use std::net::IpAddr;

use crate::drop::DropReason;
use crate::wire as w;
use crate::wire::esp::{self, EspPacket, ICV_LEN, IV_LEN};
use crate::wire::ip::{
    self, IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpProtocol, Ipv4Packet, Ipv6Packet, ecn,
};
use crate::wire::udp::{self, UdpEncap, UdpPacket};

use super::sa::{InboundSa, Mode, aad};
use super::seq::SaEvent;

/// The IPv6 extension headers skipped on the way to ESP (hop-by-hop, routing, destination
/// options), at most this many.
const MAX_EXTENSION_HEADERS: usize = 4;

/// Where a decapsulated packet came from: for NAT-mapping and MOBIKE checks *after* the packet
/// was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterSource {
    /// The outer source address.
    pub addr: IpAddr,
    /// The UDP source port, when UDP-encapsulated.
    pub udp_port: Option<u16>,
}

/// The outcome of a packet that was not dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decapsulated {
    /// An inner IP packet, now at `frame[start..start + len]`.
    Packet {
        /// The offset of the inner IP header.
        start: usize,
        /// The inner packet's length.
        len: usize,
        /// The SA's SPI.
        spi: u32,
        /// The full sequence number.
        seq: u64,
        /// A lifetime this packet crossed: tell control.
        event: Option<SaEvent>,
        /// The outer source.
        outer: OuterSource,
    },
    /// A TFC dummy packet (next header 59), authenticated and consumed.
    Dummy {
        /// The SA's SPI.
        spi: u32,
        /// The full sequence number.
        seq: u64,
    },
    /// A NAT-keepalive, consumed.
    Keepalive,
    /// IKE behind the non-ESP marker on the NAT-T port: for the control process. The IKE
    /// message is at `frame[start..start + len]`.
    Ike {
        /// The offset of the IKE header.
        start: usize,
        /// The IKE message's length.
        len: usize,
    },
}

#[inline]
fn outer_err(e: w::Error) -> DropReason {
    match e {
        w::Error::Truncated => DropReason::Truncated,
        w::Error::Malformed => DropReason::BadOuterHeader,
    }
}

/// The outer header's fields decapsulation needs.
#[derive(Debug, Clone, Copy)]
struct Outer {
    /// Offset and end of the IP payload, relative to `start`.
    payload: (usize, usize),
    protocol: IpProtocol,
    tos: u8,
    ttl: u8,
    df: bool,
    src: IpAddr,
}

#[inline]
fn parse_outer(pkt: &[u8]) -> Result<Outer, DropReason> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => {
            let p = Ipv4Packet::new_checked(pkt).map_err(outer_err)?;
            if !p.verify_checksum() {
                return Err(DropReason::BadOuterChecksum);
            }
            if p.is_fragment() {
                return Err(DropReason::OuterFragment);
            }
            Ok(Outer {
                payload: (p.header_len(), usize::from(p.total_len())),
                protocol: p.protocol(),
                tos: p.tos(),
                ttl: p.ttl(),
                df: p.dont_frag(),
                src: IpAddr::V4(p.src()),
            })
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(pkt).map_err(outer_err)?;
            let end = p.total_len();
            let mut at = IPV6_HEADER_LEN;
            let mut nh = p.next_header();
            for _ in 0..MAX_EXTENSION_HEADERS {
                match nh.0 {
                    // Hop-by-hop, routing, destination options: (next, len in 8-byte units − 1).
                    0 | 43 | 60 => {
                        let h = pkt.get(at..at + 2).ok_or(DropReason::Truncated)?;
                        nh = IpProtocol(h[0]);
                        at += (usize::from(h[1]) + 1) * 8;
                        if at > end {
                            return Err(DropReason::Truncated);
                        }
                    }
                    44 => return Err(DropReason::OuterFragment),
                    _ => break,
                }
            }
            Ok(Outer {
                payload: (at, end),
                protocol: nh,
                tos: p.traffic_class(),
                ttl: p.hop_limit(),
                // An IPv6 outer header says nothing of an inner IPv4 DF bit: BEET rebuilds
                // such a header with DF clear.
                df: false,
                src: IpAddr::V6(p.src()),
            })
        }
        Some(_) => Err(DropReason::BadOuterHeader),
        None => Err(DropReason::Truncated),
    }
}

/// The inner ECN field after decapsulation ([RFC 6040 § 4.2], figure 4), or `None` to drop
/// (an inner Not-ECT packet that met congestion).
#[inline]
pub fn ecn_decapsulate(inner: u8, outer: u8) -> Option<u8> {
    let (inner, outer) = (inner & ecn::MASK, outer & ecn::MASK);
    match (inner, outer) {
        (ecn::NOT_ECT, ecn::CE) => None,
        (ecn::NOT_ECT, _) => Some(ecn::NOT_ECT),
        (_, ecn::CE) => Some(ecn::CE),
        (ecn::ECT0, ecn::ECT1) => Some(ecn::ECT1),
        (i, _) => Some(i),
    }
}

/// Decapsulates the outer IP packet at `frame[start..start + len]` in place.
///
/// `lookup` maps an SPI to its inbound SA. See the module docs.
pub fn decapsulate<'sa>(
    frame: &mut [u8],
    start: usize,
    len: usize,
    lookup: impl FnOnce(u32) -> Option<&'sa InboundSa>,
) -> Result<Decapsulated, DropReason> {
    let end = start.checked_add(len).ok_or(DropReason::Truncated)?;
    let pkt = frame.get(start..end).ok_or(DropReason::Truncated)?;
    let outer = parse_outer(pkt)?;
    let (mut esp_start, esp_end) = (start + outer.payload.0, start + outer.payload.1);
    let mut udp_port = None;
    match outer.protocol {
        IpProtocol::ESP => {}
        IpProtocol::UDP => {
            let u = UdpPacket::new_checked(&frame[esp_start..esp_end]).map_err(outer_err)?;
            if u.dst_port() != udp::NAT_T_PORT {
                return Err(DropReason::NotEsp);
            }
            udp_port = Some(u.src_port());
            let payload_len = u.payload().len();
            esp_start += udp::HEADER_LEN;
            match UdpEncap::classify(u.payload()).map_err(|_| DropReason::Truncated)? {
                UdpEncap::Keepalive => return Ok(Decapsulated::Keepalive),
                UdpEncap::NonEsp => {
                    return Ok(Decapsulated::Ike {
                        start: esp_start + udp::NON_ESP_MARKER_LEN,
                        len: payload_len - udp::NON_ESP_MARKER_LEN,
                    });
                }
                UdpEncap::Esp => {}
            }
            // A datagram may be shorter than its IP payload only by our own check above.
            let esp_end = esp_start + payload_len;
            return decrypt(frame, esp_start, esp_end, &outer, udp_port, lookup);
        }
        _ => return Err(DropReason::NotEsp),
    }
    decrypt(frame, esp_start, esp_end, &outer, udp_port, lookup)
}

#[inline]
fn decrypt<'sa>(
    frame: &mut [u8],
    esp_start: usize,
    esp_end: usize,
    outer: &Outer,
    udp_port: Option<u16>,
    lookup: impl FnOnce(u32) -> Option<&'sa InboundSa>,
) -> Result<Decapsulated, DropReason> {
    let (spi, low) = {
        let p = EspPacket::new_checked(&frame[esp_start..esp_end])
            .map_err(|_| DropReason::Truncated)?;
        (p.spi(), p.seq())
    };
    let sa = lookup(spi).ok_or(DropReason::UnknownSpi)?;
    if sa.spi != spi {
        return Err(DropReason::UnknownSpi);
    }
    let seq = if sa.esn {
        sa.replay.infer_esn(low)
    } else {
        u64::from(low)
    };
    sa.replay.check(seq)?;
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&frame[esp_start + esp::HEADER_LEN..esp_start + esp::HEADER_LEN + IV_LEN]);
    let p_start = esp_start + esp::HEADER_LEN + IV_LEN;
    let (aad_buf, aad_len) = aad(spi, seq, sa.esn);
    let plen = sa
        .key
        .open(iv, &aad_buf[..aad_len], &mut frame[p_start..esp_end])
        .ok_or(DropReason::IntegrityFailed)?;
    debug_assert_eq!(plen + ICV_LEN, esp_end - p_start);
    sa.replay.accept(seq)?;
    let (payload_len, next_header) =
        esp::read_trailer(&frame[p_start..p_start + plen]).map_err(|_| DropReason::BadPadding)?;
    let packet_event = sa.packets.add(1)?;
    if next_header == IpProtocol::NO_NEXT_HEADER {
        return Ok(Decapsulated::Dummy { spi, seq });
    }
    let byte_event = sa.bytes.add(payload_len as u64)?;
    let event = match (packet_event, byte_event) {
        (Some(SaEvent::Hard(k)), _) | (_, Some(SaEvent::Hard(k))) => Some(SaEvent::Hard(k)),
        (a, b) => a.or(b),
    };
    let outer_src = OuterSource {
        addr: outer.src,
        udp_port,
    };
    let payload = p_start..p_start + payload_len;
    let (inner_start, inner_len) = match sa.mode {
        Mode::Tunnel => tunnel_inner(&mut frame[payload.clone()], next_header, outer.tos)
            .map(|len| (payload.start, len))?,
        Mode::Beet(addrs) => beet_inner(frame, payload, next_header, outer, addrs.src, addrs.dst)?,
    };
    Ok(Decapsulated::Packet {
        start: inner_start,
        len: inner_len,
        spi,
        seq,
        event,
        outer: outer_src,
    })
}

/// Checks the inner packet of a tunnel-mode SA, applies ECN decapsulation, and returns its
/// length (TFC padding after it is cut off, [RFC 4303 § 2.7]).
///
/// [RFC 4303 § 2.7]: https://www.rfc-editor.org/rfc/rfc4303#section-2.7
#[inline]
fn tunnel_inner(
    payload: &mut [u8],
    next_header: IpProtocol,
    outer_tos: u8,
) -> Result<usize, DropReason> {
    match (next_header, payload.first().map(|b| b >> 4)) {
        (IpProtocol::IPV4, Some(4)) => {
            let mut p = Ipv4Packet::new_checked(payload).map_err(|_| DropReason::BadInnerPacket)?;
            let tos = p.tos();
            let e = ecn_decapsulate(tos, outer_tos).ok_or(DropReason::EcnCeOnNotEct)?;
            if e != tos & ecn::MASK {
                p.update_tos((tos & !ecn::MASK) | e);
            }
            Ok(usize::from(p.total_len()))
        }
        (IpProtocol::IPV6, Some(6)) => {
            let mut p = Ipv6Packet::new_checked(payload).map_err(|_| DropReason::BadInnerPacket)?;
            let tc = p.traffic_class();
            let e = ecn_decapsulate(tc, outer_tos).ok_or(DropReason::EcnCeOnNotEct)?;
            if e != tc & ecn::MASK {
                p.set_traffic_class((tc & !ecn::MASK) | e);
            }
            Ok(p.total_len())
        }
        (IpProtocol::IPV4 | IpProtocol::IPV6, _) => Err(DropReason::BadInnerPacket),
        _ => Err(DropReason::BadNextHeader),
    }
}

/// Rebuilds the inner header of a BEET packet in front of its payload; returns where the inner
/// packet starts and its length.
#[inline]
fn beet_inner(
    frame: &mut [u8],
    payload: std::ops::Range<usize>,
    next_header: IpProtocol,
    outer: &Outer,
    src: IpAddr,
    dst: IpAddr,
) -> Result<(usize, usize), DropReason> {
    let mut protocol = next_header;
    let mut data_start = payload.start;
    let mut options = 0;
    if next_header == IpProtocol::BEET_PH {
        // Linux's pseudo-header: next header, header length (8-byte units beyond the first 8),
        // pad length, reserved; then padding, then the IPv4 options.
        if !src.is_ipv4() {
            return Err(DropReason::BadNextHeader);
        }
        let ph = frame
            .get(payload.start..payload.start + 4)
            .filter(|_| payload.len() >= 4)
            .ok_or(DropReason::BadInnerPacket)?;
        let (nh, hdrlen, padlen) = (ph[0], usize::from(ph[1]), usize::from(ph[2]));
        let phlen = 4 + padlen;
        options = (hdrlen * 8 + 8)
            .checked_sub(phlen)
            .ok_or(DropReason::BadInnerPacket)?;
        if options % 4 != 0 || options > 40 || phlen + options > payload.len() {
            return Err(DropReason::BadInnerPacket);
        }
        if matches!(
            IpProtocol(nh),
            IpProtocol::BEET_PH | IpProtocol::NO_NEXT_HEADER
        ) {
            return Err(DropReason::BadNextHeader);
        }
        protocol = IpProtocol(nh);
        data_start = payload.start + phlen + options;
    } else if next_header == IpProtocol::NO_NEXT_HEADER {
        return Err(DropReason::BadNextHeader);
    }
    let data_len = payload.end - data_start;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let hl = IPV4_HEADER_LEN + options;
            let total = hl + data_len;
            let start = (data_start - options)
                .checked_sub(IPV4_HEADER_LEN)
                .ok_or(DropReason::NoRoom)?;
            let total16 = u16::try_from(total).map_err(|_| DropReason::BadInnerPacket)?;
            let mut p = Ipv4Packet::new_unchecked(&mut frame[start..start + IPV4_HEADER_LEN]);
            p.set_version_header_len(hl);
            p.set_tos(outer.tos);
            p.set_total_len(total16);
            p.set_ident(0);
            p.set_flags_frag(if outer.df { ip::IPV4_DF } else { 0 });
            p.set_ttl(outer.ttl);
            p.set_protocol(protocol);
            p.set_src(s);
            p.set_dst(d);
            // The checksum covers the options, which sit right behind the fixed header.
            p.set_checksum(0);
            let c = w::checksum(&frame[start..start + hl]);
            frame[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
            Ok((start, total))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let start = data_start
                .checked_sub(IPV6_HEADER_LEN)
                .ok_or(DropReason::NoRoom)?;
            let plen16 = u16::try_from(data_len).map_err(|_| DropReason::BadInnerPacket)?;
            let mut p = Ipv6Packet::new_unchecked(&mut frame[start..start + IPV6_HEADER_LEN]);
            p.set_version_tc_flow(outer.tos, 0);
            p.set_payload_len(plen16);
            p.set_next_header(protocol);
            p.set_hop_limit(outer.ttl);
            p.set_src(s);
            p.set_dst(d);
            Ok((start, IPV6_HEADER_LEN + data_len))
        }
        // SaConfig cannot hold mixed inner families; treat it as a bad packet all the same.
        _ => Err(DropReason::BadNextHeader),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6040_decapsulation_table() {
        use ecn::*;
        let table = [
            // inner, [outer Not-ECT, ECT(0), ECT(1), CE]
            (NOT_ECT, [Some(NOT_ECT), Some(NOT_ECT), Some(NOT_ECT), None]),
            (ECT0, [Some(ECT0), Some(ECT0), Some(ECT1), Some(CE)]),
            (ECT1, [Some(ECT1), Some(ECT1), Some(ECT1), Some(CE)]),
            (CE, [Some(CE), Some(CE), Some(CE), Some(CE)]),
        ];
        for (inner, row) in table {
            for (outer, want) in [NOT_ECT, ECT0, ECT1, CE].into_iter().zip(row) {
                assert_eq!(
                    ecn_decapsulate(inner, outer),
                    want,
                    "inner {inner} outer {outer}"
                );
            }
        }
    }
}
