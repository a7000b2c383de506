//! Path MTU: packets too big for the path are refused with the inner MTU, answered with ICMP /
//! ICMPv6 toward their sender; ICMP about our outer packets lowers the SA's path MTU.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use roamgate_gateway::esp::pmtu::{MIN_PMTU_V4, MIN_PMTU_V6};
use roamgate_gateway::esp::{
    Decapsulated, EncapError, decapsulate, fragment_ipv4, icmp_too_big, parse_packet_too_big,
};
use roamgate_gateway::wire::ip::{IpProtocol, Ipv4Packet, Ipv6Packet, ipv6_pseudo_sum};
use roamgate_gateway::wire::{checksum, checksum_add, checksum_finish};

const GW4: Ipv4Addr = Ipv4Addr::new(10, 101, 0, 1);
const GW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x65, 0, 0, 0, 0, 0, 1);

fn encap_len(sa: &SaPair, spec: &InnerSpec) -> Result<(usize, bool), EncapError> {
    let inner = spec.build();
    let mut f = Frame::new(&inner);
    sa.out
        .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
        .map(|e| (e.len, e.fragment))
}

#[test]
fn the_reported_mtu_is_exactly_the_largest_that_fits() {
    for (i, mut spec) in PairSpec::all().into_iter().filter(|s| !s.esn).enumerate() {
        if i % 2 == 1 {
            spec.padding = roamgate_gateway::esp::Padding::Minimal;
        }
        let sa = spec.pair();
        let mtu = if spec.outer_v6 { 1400 } else { 1000 };
        sa.out.set_path_mtu(mtu);
        let mut inner = InnerSpec::udp(spec.inner_v6, vec![0; 1400]);
        if !spec.inner_v6 && spec.beet {
            inner.options = vec![1, 1, 1, 0];
        }
        let err = encap_len(&sa, &inner).unwrap_err();
        let EncapError::TooBig { mtu: inner_mtu } = err else {
            panic!("{spec:?}: {err:?}")
        };
        let floor = if spec.inner_v6 { 1280 } else { 68 };
        if inner_mtu as usize == floor {
            continue; // the path is below what the inner family allows
        }
        let hl = if spec.inner_v6 {
            40
        } else {
            20 + inner.options.len()
        };
        inner.payload = vec![0; inner_mtu as usize - hl - 8];
        let (len, _) = encap_len(&sa, &inner).unwrap_or_else(|e| panic!("{spec:?}: {e:?}"));
        assert!(len <= mtu as usize, "{spec:?}: {len} > {mtu}");
        inner.payload.push(0);
        assert!(
            matches!(encap_len(&sa, &inner), Err(EncapError::TooBig { .. })),
            "{spec:?}: one more byte still fits"
        );
    }
}

#[test]
fn ipv4_without_df_is_sent_for_fragmentation() {
    let sa = PairSpec::default().pair();
    sa.out.set_path_mtu(600);
    let mut inner = InnerSpec::udp(false, vec![0; 1000]);
    inner.df = false;
    let pkt = inner.build();
    let mut f = Frame::new(&pkt);
    let e = sa
        .out
        .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
        .unwrap();
    assert!(e.fragment);
    let outer = Ipv4Packet::new_checked(&f.buf[e.start..e.start + e.len]).unwrap();
    assert!(!outer.dont_frag());
}

#[test]
fn ipv4_without_df_is_fragmented_before_encapsulation_and_reassembles() {
    for padding in [
        roamgate_gateway::esp::Padding::default(),
        roamgate_gateway::esp::Padding::Minimal,
    ] {
        let sa = PairSpec {
            padding,
            ..PairSpec::default()
        }
        .pair();
        let mtu = 600;
        sa.out.set_path_mtu(mtu);
        let mut spec = InnerSpec::udp(false, (0..1000).map(|i| i as u8).collect());
        spec.df = false;
        let pkt = spec.build();
        let fit = sa
            .out
            .inner_fragment_size(&sa.path, &pkt)
            .expect("too big, DF clear: fragment first");
        // Every fragment's ESP packet fits the path exactly as reported, and the largest
        // fragment one byte bigger would not.
        let mut offset = Some(0);
        let mut data = Vec::new();
        let mut fragments = 0;
        while let Some(o) = offset {
            let mut out = vec![0u8; mtu as usize];
            let (n, next) = fragment_ipv4(&pkt, fit, o, &mut out).unwrap();
            offset = next;
            fragments += 1;
            let mut f = Frame::new(&out[..n]);
            let e = sa
                .out
                .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
                .unwrap();
            assert!(!e.fragment && e.len <= mtu as usize, "{} > {mtu}", e.len);
            let got = decapsulate(&mut f.buf, e.start, e.len, |_| Some(&sa.inb)).unwrap();
            let Decapsulated::Packet { start, len, .. } = got else {
                panic!("not a packet: {got:?}");
            };
            let inner = &f.buf[start..start + len];
            let frag = Ipv4Packet::new_checked(inner).unwrap();
            let at = usize::from(frag.flags_frag() & 0x1fff) * 8;
            assert_eq!(at, data.len(), "fragments in order, none missing");
            data.extend_from_slice(&inner[frag.header_len()..usize::from(frag.total_len())]);
        }
        assert!(fragments >= 2);
        assert_eq!(data, pkt[20..], "the fragments carry the whole datagram");
        let mut bigger = out_of(&pkt, fit + 8);
        let e = sa
            .out
            .encapsulate(&sa.path, &mut bigger.buf, bigger.start, bigger.len)
            .unwrap();
        assert!(e.fragment, "a fragment 8 bytes longer would not fit");
    }
    // Nothing to do: it fits, DF is set, or it is IPv6.
    let sa = PairSpec::default().pair();
    sa.out.set_path_mtu(600);
    let small = InnerSpec::udp(false, vec![0; 100]);
    let df = InnerSpec::udp(false, vec![0; 1000]);
    let v6 = InnerSpec::udp(true, vec![0; 1000]);
    for spec in [small, df, v6] {
        let mut spec = spec;
        spec.df = spec.payload.len() == 1000 && !spec.v6;
        assert_eq!(sa.out.inner_fragment_size(&sa.path, &spec.build()), None);
    }
}

/// The first `len` bytes of `pkt` as a packet of its own (header length fields fixed up).
fn out_of(pkt: &[u8], len: usize) -> Frame {
    let mut p = pkt[..len].to_vec();
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    Frame::new(&p)
}

#[test]
fn icmp_fragmentation_needed_goes_back_to_the_sender() {
    let inner = InnerSpec::udp(false, vec![0x77; 1200]).build();
    let mut out = [0u8; 1500];
    let n = icmp_too_big(&inner, 1100, IpAddr::V4(GW4), &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(n, 576);
    let p = Ipv4Packet::new_checked(&out[..n]).unwrap();
    assert!(p.verify_checksum());
    assert_eq!(p.protocol(), IpProtocol::ICMP);
    assert_eq!(p.src(), GW4);
    assert_eq!(p.dst(), INNER4_SRC);
    let icmp = p.payload();
    assert_eq!(&icmp[..2], &[3, 4]);
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1100);
    assert_eq!(checksum(icmp), 0);
    assert_eq!(&icmp[8..], &inner[..548]);
    // Never about an ICMP error, nor a non-first fragment.
    let mut err_pkt = inner.clone();
    err_pkt[9] = 1;
    err_pkt[20] = 3;
    assert_eq!(
        icmp_too_big(&err_pkt, 1100, IpAddr::V4(GW4), &mut out),
        Ok(None)
    );
    let mut frag = inner.clone();
    frag[7] = 10;
    assert_eq!(
        icmp_too_big(&frag, 1100, IpAddr::V4(GW4), &mut out),
        Ok(None)
    );
    // No room: an error, not a panic.
    assert!(icmp_too_big(&inner, 1100, IpAddr::V4(GW4), &mut out[..100]).is_err());
}

#[test]
fn icmpv6_packet_too_big_goes_back_to_the_sender() {
    let inner = InnerSpec::udp(true, vec![0x66; 1400]).build();
    let mut out = [0u8; 1500];
    let n = icmp_too_big(&inner, 1300, IpAddr::V6(GW6), &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(n, 1280);
    let p = Ipv6Packet::new_checked(&out[..n]).unwrap();
    assert_eq!(p.next_header(), IpProtocol::ICMPV6);
    assert_eq!(p.dst(), INNER6_SRC);
    let icmp = p.payload();
    assert_eq!(&icmp[..2], &[2, 0]);
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        1300
    );
    let sum = ipv6_pseudo_sum(&GW6, &INNER6_SRC, icmp.len() as u32, IpProtocol::ICMPV6);
    assert_eq!(checksum_finish(checksum_add(sum, icmp)), 0);
    // Not about an ICMPv6 error.
    let mut e = inner.clone();
    e[6] = 58;
    e[40] = 1;
    assert_eq!(icmp_too_big(&e, 1300, IpAddr::V6(GW6), &mut out), Ok(None));
    // A family mismatch is the caller's error.
    assert!(icmp_too_big(&inner, 1300, IpAddr::V4(GW4), &mut out).is_err());
}

#[test]
fn icmp_about_our_esp_lowers_the_path_mtu_to_a_floor() {
    for (v6, udp) in [(false, false), (false, true), (true, false), (true, true)] {
        let spec = PairSpec {
            outer_v6: v6,
            udp,
            ..PairSpec::default()
        };
        let sa = spec.pair();
        let inner = InnerSpec::udp(false, vec![1; 100]).build();
        let mut f = Frame::new(&inner);
        let e = sa
            .out
            .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
            .unwrap();
        let ours = f.buf[e.start..e.start + e.len].to_vec();
        // A router answers with an ICMP error quoting our packet.
        let router: IpAddr = if v6 {
            "fd00:18:1::fe".parse().unwrap()
        } else {
            "198.18.1.254".parse().unwrap()
        };
        let own: IpAddr = if v6 {
            OUTER6_SRC.into()
        } else {
            OUTER4_SRC.into()
        };
        let mut icmp = vec![0u8; 2000];
        // Build it with our own generator (it quotes the packet it is given).
        let n = match (router, own) {
            (IpAddr::V4(r), _) => icmp_too_big(&ours, 1200, IpAddr::V4(r), &mut icmp),
            (IpAddr::V6(r), _) => icmp_too_big(&ours, 1300, IpAddr::V6(r), &mut icmp),
        }
        .unwrap()
        .unwrap();
        let ptb = parse_packet_too_big(&icmp[..n]).expect("a packet-too-big about our ESP");
        assert_eq!(ptb.spi, sa.spi);
        assert_eq!(ptb.v6, v6);
        assert_eq!(ptb.mtu, if v6 { 1300 } else { 1200 });
        sa.out.note_path_mtu(ptb.mtu, ptb.v6);
        assert_eq!(sa.out.path_mtu(), ptb.mtu);
        // A forged tiny MTU only reaches the floor; a larger one does not raise it.
        sa.out.note_path_mtu(100, v6);
        assert_eq!(
            sa.out.path_mtu(),
            if v6 { MIN_PMTU_V6 } else { MIN_PMTU_V4 }
        );
        sa.out.note_path_mtu(9000, v6);
        assert_eq!(
            sa.out.path_mtu(),
            if v6 { MIN_PMTU_V6 } else { MIN_PMTU_V4 }
        );
        // Truncated ICMP never panics.
        for cut in 0..n {
            let _ = parse_packet_too_big(&icmp[..cut]);
        }
    }
}

#[test]
fn outer_ipv4_fragments_reassemble_and_decapsulate() {
    use roamgate_gateway::esp::{Decapsulated, decapsulate, fragment_ipv4};
    let sa = PairSpec::default().pair();
    sa.out.set_path_mtu(600);
    let mut spec = InnerSpec::udp(false, vec![0x33; 1400]);
    spec.df = false;
    let inner = spec.build();
    let mut f = Frame::new(&inner);
    let e = sa
        .out
        .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
        .unwrap();
    assert!(e.fragment);
    let outer = f.buf[e.start..e.start + e.len].to_vec();
    // Fragment, then reassemble by offset.
    let mut offset = Some(0);
    let mut data = vec![0u8; outer.len() - 20];
    let mut seen = 0;
    let mut count = 0;
    while let Some(o) = offset {
        let mut out = [0u8; 600];
        let (len, next) = fragment_ipv4(&outer, 600, o, &mut out).unwrap();
        assert!(len <= 600);
        let p = Ipv4Packet::new_checked(&out[..len]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.is_fragment());
        let off = usize::from(p.flags_frag() & 0x1fff) * 8;
        assert_eq!(off, o);
        assert_eq!(
            p.flags_frag() & 0x2000 != 0,
            next.is_some(),
            "MF on all but the last"
        );
        data[off..off + p.payload().len()].copy_from_slice(p.payload());
        seen += p.payload().len();
        offset = next;
        count += 1;
    }
    assert_eq!(count, 3);
    assert_eq!(seen, data.len());
    let mut whole = outer[..20].to_vec();
    whole.extend_from_slice(&data);
    assert_eq!(whole, outer);
    let mut g = Frame::new(&whole);
    assert!(matches!(
        decapsulate(&mut g.buf, g.start, g.len, |_| Some(&sa.inb)),
        Ok(Decapsulated::Packet { len, .. }) if len == inner.len()
    ));
    // DF set, a bad offset, no room: errors, not panics.
    let mut out = [0u8; 600];
    let mut df = outer.clone();
    df[6] |= 0x40;
    assert!(fragment_ipv4(&df, 600, 0, &mut out).is_err());
    assert!(fragment_ipv4(&outer, 600, 3, &mut out).is_err());
    assert!(fragment_ipv4(&outer, 600, 0, &mut out[..100]).is_err());
    assert!(fragment_ipv4(&outer, 20, 0, &mut out).is_err());
}
