//! Round trips for every mode × inner family × outer family × key size × encapsulation × ESN,
//! with random packets (proptest); every packet is also decrypted by two independent AES-GCM
//! implementations (RustCrypto and aws-lc-rs) and its plaintext checked byte for byte.

mod common;

use common::*;
use proptest::prelude::*;
use roamgate_gateway::esp::{Decapsulated, Padding, decapsulate};
use roamgate_gateway::wire::ip::{IpProtocol, Ipv4Packet, Ipv6Packet};
use roamgate_gateway::wire::{UdpPacket, checksum};

/// What the ESP plaintext should be for `inner` in `spec`'s mode (before the trailer), and the
/// next header.
fn expected_plaintext(spec: &PairSpec, inner: &InnerSpec, packet: &[u8]) -> (Vec<u8>, u8) {
    if !spec.beet {
        return (packet.to_vec(), if inner.v6 { 41 } else { 4 });
    }
    let hl = if inner.v6 {
        40
    } else {
        20 + inner.options.len()
    };
    let payload = &packet[hl..];
    if inner.options.is_empty() || inner.v6 {
        return (payload.to_vec(), 17);
    }
    let opt = inner.options.len();
    let padlen = 4 - (opt & 4);
    let mut v = vec![17, (opt / 8) as u8, padlen as u8, 0];
    v.extend(std::iter::repeat_n(1u8, padlen));
    v.extend_from_slice(&inner.options);
    v.extend_from_slice(payload);
    (v, 94)
}

fn round_trip(spec: &PairSpec, inner: &InnerSpec, packets: usize) -> Result<(), TestCaseError> {
    let sa = spec.pair();
    let packet = inner.build();
    for _ in 0..packets {
        let mut f = Frame::new(&packet);
        let enc = sa
            .out
            .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
            .map_err(|e| TestCaseError::fail(format!("encapsulate: {e}")))?;
        let outer = f.buf[enc.start..enc.start + enc.len].to_vec();

        // The outer header.
        let (esp_off, tos, ttl) = if spec.outer_v6 {
            let p = Ipv6Packet::new_checked(&outer[..]).unwrap();
            prop_assert_eq!(p.total_len(), outer.len());
            prop_assert_eq!(p.src(), OUTER6_SRC);
            prop_assert_eq!(p.dst(), OUTER6_DST);
            prop_assert_eq!(
                p.next_header(),
                if spec.udp {
                    IpProtocol::UDP
                } else {
                    IpProtocol::ESP
                }
            );
            (40, p.traffic_class(), p.hop_limit())
        } else {
            let p = Ipv4Packet::new_checked(&outer[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(usize::from(p.total_len()), outer.len());
            prop_assert_eq!(p.src(), OUTER4_SRC);
            prop_assert_eq!(p.dst(), OUTER4_DST);
            prop_assert_eq!(p.dont_frag(), inner.df || inner.v6);
            prop_assert_eq!(
                p.protocol(),
                if spec.udp {
                    IpProtocol::UDP
                } else {
                    IpProtocol::ESP
                }
            );
            (20, p.tos(), p.ttl())
        };
        // RFC 4301 DSCP copy, RFC 6040 normal-mode ECN copy.
        prop_assert_eq!(tos, inner.tos);
        prop_assert_eq!(ttl, if spec.beet { inner.ttl } else { 64 });
        let esp_off = if spec.udp {
            let u = UdpPacket::new_checked(&outer[esp_off..]).unwrap();
            prop_assert_eq!((u.src_port(), u.dst_port()), (4500, 4500));
            prop_assert_eq!(usize::from(u.len()), outer.len() - esp_off);
            if spec.outer_v6 {
                // A real checksum over IPv6: verify it.
                let sum = roamgate_gateway::wire::ip::ipv6_pseudo_sum(
                    &OUTER6_SRC,
                    &OUTER6_DST,
                    u32::from(u.len()),
                    IpProtocol::UDP,
                );
                let c = roamgate_gateway::wire::checksum_finish(
                    roamgate_gateway::wire::checksum_add(sum, &outer[esp_off..]),
                );
                prop_assert_eq!(c, 0);
            } else {
                prop_assert_eq!(u.checksum(), 0);
            }
            esp_off + 8
        } else {
            esp_off
        };
        let esp = &outer[esp_off..];
        prop_assert_eq!(&esp[..4], &sa.spi.to_be_bytes()[..]);
        prop_assert_eq!(&esp[4..8], &(enc.seq as u32).to_be_bytes()[..]);
        prop_assert_eq!(
            &esp[8..16],
            &enc.seq.to_be_bytes()[..],
            "IV = sequence number"
        );

        // Independent decryption.
        let plain = independent_open(&sa.keymat, esp, enc.seq, sa.esn);
        let (want, nh) = expected_plaintext(spec, inner, &packet);
        let align = spec.padding.align();
        prop_assert_eq!(plain.len() % align, 0);
        let (pl, got_nh) = (plain[plain.len() - 2] as usize, plain[plain.len() - 1]);
        prop_assert_eq!(got_nh, nh);
        prop_assert!(pl < align);
        prop_assert_eq!(&plain[..plain.len() - 2 - pl], &want[..]);
        prop_assert!(
            plain[want.len()..want.len() + pl]
                .iter()
                .enumerate()
                .all(|(i, b)| *b as usize == i + 1)
        );

        // Our decapsulation, in place, in the same frame.
        let got = decapsulate(&mut f.buf, enc.start, enc.len, |spi| {
            (spi == sa.spi).then_some(&sa.inb)
        })
        .map_err(|e| TestCaseError::fail(format!("decapsulate: {e}")))?;
        let Decapsulated::Packet {
            start,
            len,
            seq,
            spi,
            ..
        } = got
        else {
            return Err(TestCaseError::fail(format!("unexpected {got:?}")));
        };
        prop_assert_eq!(seq, enc.seq);
        prop_assert_eq!(spi, sa.spi);
        let back = &f.buf[start..start + len];
        if spec.beet && !inner.v6 {
            // BEET rebuilds the IPv4 header: identification 0, DF from the outer header (clear
            // over IPv6), the rest as sent.
            let p = Ipv4Packet::new_checked(back).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(checksum(&back[..p.header_len()]), 0);
            let mut a = back.to_vec();
            let mut b = packet.clone();
            for x in [&mut a, &mut b] {
                x[4..6].fill(0);
                x[10..12].fill(0);
                if spec.outer_v6 {
                    x[6] &= !0x40;
                }
            }
            prop_assert_eq!(a, b);
        } else {
            prop_assert_eq!(back, &packet[..]);
        }
    }
    Ok(())
}

fn inner_strategy() -> impl Strategy<Value = (bool, u8, u8, bool, u16, usize, Vec<u8>)> {
    (
        any::<bool>(),
        any::<u8>(),
        1u8..=255,
        any::<bool>(),
        any::<u16>(),
        0usize..=10,
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..200),
            1 => proptest::collection::vec(any::<u8>(), 1300..1400),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_combination_round_trips(
        (v6, tos, ttl, df, ident, opt_words, payload) in inner_strategy(),
        minimal_padding in any::<bool>(),
    ) {
        for mut spec in PairSpec::all() {
            spec.padding = if minimal_padding { Padding::Minimal } else { Padding::CipherBlock };
            spec.inner_v6 ^= v6;
            // Start ESN just below 2^32 so the three packets cross into the high half.
            spec.next_seq = if spec.esn { (1 << 32) - 2 } else { 1 };
            let inner = InnerSpec {
                v6: spec.inner_v6,
                tos,
                ttl,
                df: df || spec.inner_v6,
                ident: if spec.beet { 0 } else { ident },
                options: if spec.inner_v6 {
                    Vec::new()
                } else {
                    // Options: NOPs ending in EOL, as a router would not care about.
                    let mut o = vec![1u8; opt_words * 4];
                    if let Some(last) = o.last_mut() { *last = 0; }
                    o
                },
                payload: payload.clone(),
            };
            // TOS with CE on a Not-ECT... is a valid inner header; RFC 6040 copies it out and
            // back unchanged.
            round_trip(&spec, &inner, 3)?;
        }
    }
}

#[test]
fn esn_crosses_the_32_bit_boundary() {
    let spec = PairSpec {
        esn: true,
        next_seq: (1 << 32) - 3,
        ..PairSpec::default()
    };
    let sa = spec.pair();
    let packet = InnerSpec::udp(false, vec![7; 100]).build();
    let mut seqs = Vec::new();
    for _ in 0..6 {
        let mut f = Frame::new(&packet);
        let enc = sa
            .out
            .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
            .unwrap();
        let got = decapsulate(&mut f.buf, enc.start, enc.len, |_| Some(&sa.inb)).unwrap();
        let Decapsulated::Packet { seq, .. } = got else {
            panic!("{got:?}")
        };
        seqs.push(seq);
    }
    assert_eq!(seqs, ((1u64 << 32) - 3..(1 << 32) + 3).collect::<Vec<_>>());
    assert_eq!(sa.inb.replay_window().top(), (1 << 32) + 2);
}
