//! Every way a packet is refused, each with its counted reason, and the packets that are
//! consumed without being errors (TFC dummies, NAT-keepalives, IKE on port 4500).

mod common;

use common::*;
use roamgate_gateway::esp::replay::WINDOW;
use roamgate_gateway::esp::seq::SEQ_LIMIT_32;
use roamgate_gateway::esp::{
    Decapsulated, EncapError, Lifetime, LimitKind, SaEvent, decapsulate, emit_nat_keepalive,
};
use roamgate_gateway::wire::checksum;
use roamgate_gateway::{DropCounters, DropReason};

/// Encapsulates `n` packets of `payload` bytes and returns the outer packets.
fn packets(sa: &SaPair, n: usize, payload: usize) -> Vec<Vec<u8>> {
    let inner = InnerSpec::udp(false, vec![0x5a; payload]).build();
    (0..n)
        .map(|_| {
            let mut f = Frame::new(&inner);
            let e = sa
                .out
                .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
                .unwrap();
            f.buf[e.start..e.start + e.len].to_vec()
        })
        .collect()
}

/// Decapsulates `outer` against `sa` and counts a drop.
fn decap(
    sa: &SaPair,
    outer: &[u8],
    counters: &mut DropCounters,
) -> Result<Decapsulated, DropReason> {
    let mut f = Frame::new(outer);
    let r = decapsulate(&mut f.buf, f.start, f.len, |spi| {
        (spi == sa.spi).then_some(&sa.inb)
    });
    if let Err(reason) = r {
        counters.count(reason);
    }
    r
}

fn fix_v4_checksum(p: &mut [u8]) {
    p[10..12].fill(0);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn replay_and_reorder_beyond_the_window() {
    let sa = PairSpec::default().pair();
    let mut c = DropCounters::new();
    let pkts = packets(&sa, WINDOW as usize + 10, 16);
    // Deliver the last one first, then everything else backwards.
    let last = pkts.len() - 1;
    assert!(decap(&sa, &pkts[last], &mut c).is_ok());
    assert_eq!(decap(&sa, &pkts[last], &mut c), Err(DropReason::Replay));
    let mut accepted = 0;
    for p in pkts[..last].iter().rev() {
        if decap(&sa, p, &mut c).is_ok() {
            accepted += 1;
        }
    }
    // Sequence numbers 1..=last+1; the top is last+1; the window takes WINDOW − 1 below it.
    assert_eq!(accepted, WINDOW as usize - 1);
    assert_eq!(c.get(DropReason::Replay), 1);
    assert_eq!(
        c.get(DropReason::ReplayTooOld),
        (last - (WINDOW as usize - 1)) as u64
    );
    assert_eq!(sa.inb.packets(), WINDOW);
}

#[test]
fn wrong_icv_ciphertext_spi_and_truncation() {
    let sa = PairSpec::default().pair();
    let mut c = DropCounters::new();
    let good = packets(&sa, 1, 40).pop().unwrap();
    // Flip each byte after the ESP header: ICV, ciphertext, IV all fail integrity.
    for i in 20 + 8..good.len() {
        let mut p = good.clone();
        p[i] ^= 0x01;
        assert_eq!(
            decap(&sa, &p, &mut c),
            Err(DropReason::IntegrityFailed),
            "byte {i}"
        );
    }
    // The sequence number is authenticated too (but a changed one must still pass replay).
    let mut p = good.clone();
    p[20 + 7] ^= 0x02;
    assert_eq!(decap(&sa, &p, &mut c), Err(DropReason::IntegrityFailed));
    // A failed packet does not move the window: the genuine one still goes through.
    assert!(decap(&sa, &good, &mut c).is_ok());
    // Wrong SPI: no SA.
    let sa2 = PairSpec::default().pair();
    let good2 = packets(&sa2, 1, 40).pop().unwrap();
    let mut p = good2.clone();
    p[20] ^= 0x80;
    assert_eq!(decap(&sa2, &p, &mut c), Err(DropReason::UnknownSpi));
    // A lookup that returns the wrong SA is caught as well.
    let mut f = Frame::new(&good2);
    let other = PairSpec::default().pair();
    let wrong = roamgate_gateway::esp::InboundSa::new(&roamgate_gateway::esp::SaConfig {
        spi: 0x1000,
        keymat: &other.keymat,
        mode: roamgate_gateway::esp::Mode::Tunnel,
        esn: false,
        lifetime: Lifetime::UNLIMITED,
    })
    .unwrap();
    assert_eq!(
        decapsulate(&mut f.buf, f.start, f.len, |_| Some(&wrong)),
        Err(DropReason::UnknownSpi)
    );
    // Every truncation: as cut (IP length now wrong) and with the IP length patched.
    let sa3 = PairSpec::default().pair();
    let good3 = packets(&sa3, 1, 40).pop().unwrap();
    for n in 0..good3.len() {
        let cut = &good3[..n];
        let r = decap(&sa3, cut, &mut c);
        assert!(r.is_err(), "cut at {n}: {r:?}");
        if n >= 20 {
            let mut p = cut.to_vec();
            p[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            fix_v4_checksum(&mut p);
            let r = decap(&sa3, &p, &mut c);
            let want = if n < 20 + 8 + 8 + 2 + 16 {
                DropReason::Truncated
            } else {
                DropReason::IntegrityFailed
            };
            assert_eq!(r, Err(want), "patched cut at {n}");
        }
    }
    assert!(decap(&sa3, &good3, &mut c).is_ok());
    assert!(c.get(DropReason::Truncated) > 0);
    assert!(c.get(DropReason::BadOuterHeader) + c.get(DropReason::Truncated) >= good3.len() as u64);
}

#[test]
fn bad_padding_bad_next_header_and_tfc() {
    let sa = PairSpec::default().pair();
    let mut c = DropCounters::new();
    let inner = InnerSpec::udp(false, vec![1, 2, 3, 4, 5]).build();
    let mut seq = 1;
    let mut send = |plain: &[u8], c: &mut DropCounters| {
        let esp = independent_seal(&sa.keymat, sa.spi, seq, false, plain);
        seq += 1;
        decap(&sa, &outer_v4(&esp, false, 0), c)
    };
    // The reference plaintext is accepted.
    let ok = send(&esp_plaintext(&inner, 4), &mut c).unwrap();
    assert!(matches!(ok, Decapsulated::Packet { len, .. } if len == inner.len()));
    // Padding bytes not 1, 2, 3.
    let mut p = inner.clone();
    p.extend_from_slice(&[1, 3, 2, 4]);
    assert_eq!(send(&p, &mut c), Err(DropReason::BadPadding));
    // Pad length beyond the payload.
    let p = [0u8, 0, 0, 200, 4];
    assert_eq!(send(&p, &mut c), Err(DropReason::BadPadding));
    // Too short for a trailer: refused before decryption.
    assert_eq!(send(&[], &mut c), Err(DropReason::Truncated));
    assert_eq!(send(&[4], &mut c), Err(DropReason::Truncated));
    // The shortest trailer, with a pad length that overruns it.
    assert_eq!(send(&[1, 4], &mut c), Err(DropReason::BadPadding));
    // Next header TCP in tunnel mode, and a version mismatch.
    assert_eq!(
        send(&esp_plaintext(&inner, 6), &mut c),
        Err(DropReason::BadNextHeader)
    );
    assert_eq!(
        send(&esp_plaintext(&inner, 41), &mut c),
        Err(DropReason::BadInnerPacket)
    );
    // An inner packet longer than the payload.
    assert_eq!(
        send(&esp_plaintext(&inner[..inner.len() - 1], 4), &mut c),
        Err(DropReason::BadInnerPacket)
    );
    // A TFC dummy packet (next header 59) is consumed, not dropped.
    assert!(matches!(
        send(&esp_plaintext(&[0xaa; 33], 59), &mut c),
        Ok(Decapsulated::Dummy { .. })
    ));
    // TFC padding after the inner packet is cut off.
    let mut padded = inner.clone();
    padded.extend_from_slice(&[0; 23]);
    let r = send(&esp_plaintext(&padded, 4), &mut c).unwrap();
    assert!(matches!(r, Decapsulated::Packet { len, .. } if len == inner.len()));
    assert_eq!(c.get(DropReason::BadPadding), 3);
    assert_eq!(c.get(DropReason::Truncated), 2);
    assert_eq!(c.get(DropReason::BadNextHeader), 1);
    assert_eq!(c.get(DropReason::BadInnerPacket), 2);
    assert_eq!(c.total(), 8);
}

#[test]
fn beet_pseudo_header_is_checked() {
    let spec = PairSpec {
        beet: true,
        ..PairSpec::default()
    };
    let sa = spec.pair();
    let mut c = DropCounters::new();
    let mut seq = 1;
    let mut send = |plain: &[u8], c: &mut DropCounters| {
        let esp = independent_seal(&sa.keymat, sa.spi, seq, false, plain);
        seq += 1;
        decap(&sa, &outer_v4(&esp, false, 0), c)
    };
    // A valid pseudo-header with 4 bytes of options: [nh 17, hdrlen 0, padlen 0, 0] + options.
    let ph = [17u8, 0, 0, 0, 1, 1, 1, 0];
    let mut p = ph.to_vec();
    p.extend_from_slice(&[0x13, 0x88, 0x23, 0x28, 0, 8, 0, 0]);
    let r = send(&esp_plaintext(&p, 94), &mut c).unwrap();
    let Decapsulated::Packet { len, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(len, 24 + 8);
    // Options length not a multiple of 4 (padlen 1).
    let bad = [17u8, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0];
    assert_eq!(
        send(&esp_plaintext(&bad, 94), &mut c),
        Err(DropReason::BadInnerPacket)
    );
    // Pseudo-header longer than the payload.
    let bad = [17u8, 5, 0, 0];
    assert_eq!(
        send(&esp_plaintext(&bad, 94), &mut c),
        Err(DropReason::BadInnerPacket)
    );
    // A pseudo-header inside a pseudo-header.
    let bad = [94u8, 0, 0, 0, 1, 1, 1, 0];
    assert_eq!(
        send(&esp_plaintext(&bad, 94), &mut c),
        Err(DropReason::BadNextHeader)
    );
    // Next header 59 is a dummy in BEET as well.
    assert!(matches!(
        send(&esp_plaintext(&[], 59), &mut c),
        Ok(Decapsulated::Dummy { .. })
    ));
    assert_eq!(c.total(), 3);
}

#[test]
fn sequence_wrap_and_lifetimes_raise_events_then_refuse() {
    let spec = PairSpec {
        next_seq: SEQ_LIMIT_32 - 1,
        ..PairSpec::default()
    };
    let sa = spec.pair();
    let inner = InnerSpec::udp(false, vec![0; 10]).build();
    let mut events = Vec::new();
    let mut c = DropCounters::new();
    for _ in 0..4 {
        let mut f = Frame::new(&inner);
        match sa.out.encapsulate(&sa.path, &mut f.buf, f.start, f.len) {
            Ok(e) => events.push(e.event),
            Err(e) => c.count(e.reason()),
        }
    }
    assert_eq!(events, vec![None, Some(SaEvent::Hard(LimitKind::Sequence))]);
    assert_eq!(c.get(DropReason::SequenceExhausted), 2);

    let spec = PairSpec {
        lifetime: Lifetime {
            soft_bytes: 100,
            hard_bytes: 200,
            soft_packets: 4,
            hard_packets: 10,
        },
        ..PairSpec::default()
    };
    let sa = spec.pair();
    let inner = InnerSpec::udp(false, vec![0; 22]).build(); // 50 bytes
    let mut seen = Vec::new();
    let mut c = DropCounters::new();
    let mut outers = Vec::new();
    for _ in 0..6 {
        let mut f = Frame::new(&inner);
        match sa.out.encapsulate(&sa.path, &mut f.buf, f.start, f.len) {
            Ok(e) => {
                seen.push(e.event);
                outers.push(f.buf[e.start..e.start + e.len].to_vec());
            }
            Err(e) => c.count(e.reason()),
        }
    }
    assert_eq!(
        seen,
        vec![
            None,
            Some(SaEvent::Soft(LimitKind::Bytes)),
            None,
            Some(SaEvent::Hard(LimitKind::Bytes)),
        ]
    );
    assert_eq!(c.get(DropReason::HardLifetime), 2);
    // Inbound lifetimes count the same way: soft at 4 packets (and 100 bytes earlier).
    let mut inbound_events = Vec::new();
    for o in &outers {
        if let Ok(Decapsulated::Packet { event, .. }) = decap(&sa, o, &mut c) {
            inbound_events.push(event);
        }
    }
    assert_eq!(
        inbound_events,
        vec![
            None,
            Some(SaEvent::Soft(LimitKind::Bytes)),
            None,
            Some(SaEvent::Hard(LimitKind::Bytes)),
        ]
    );
}

#[test]
fn udp_encapsulation_marker_rules() {
    let spec = PairSpec {
        udp: true,
        ..PairSpec::default()
    };
    let sa = spec.pair();
    let mut c = DropCounters::new();
    // A keepalive we emit is one we consume.
    let mut buf = [0u8; 64];
    let n = emit_nat_keepalive(&sa.path, &mut buf).unwrap();
    assert_eq!(n, 29);
    assert_eq!(buf[28], 0xff);
    assert_eq!(decap(&sa, &buf[..n], &mut c), Ok(Decapsulated::Keepalive));
    // IKE behind the non-ESP marker goes to control, untouched.
    let mut ike = vec![0u8, 0, 0, 0];
    ike.extend_from_slice(&[0x11; 28]);
    let p = outer_v4(&ike, true, 0);
    let mut f = Frame::new(&p);
    let r = decapsulate(&mut f.buf, f.start, f.len, |_| None).unwrap();
    assert_eq!(
        r,
        Decapsulated::Ike {
            start: f.start + 32,
            len: 28
        }
    );
    // Real ESP in UDP.
    let good = packets(&sa, 1, 10).pop().unwrap();
    assert!(
        matches!(decap(&sa, &good, &mut c), Ok(Decapsulated::Packet { outer, .. }) if outer.udp_port == Some(4500))
    );
    // Not port 4500; shorter than an SPI; UDP length beyond the packet.
    let mut p = good.clone();
    p[22..24].copy_from_slice(&4501u16.to_be_bytes());
    assert_eq!(decap(&sa, &p, &mut c), Err(DropReason::NotEsp));
    let short = outer_v4(&[1, 2], true, 0);
    assert_eq!(decap(&sa, &short, &mut c), Err(DropReason::Truncated));
    let mut p = good.clone();
    p[24..26].copy_from_slice(&2000u16.to_be_bytes());
    assert_eq!(decap(&sa, &p, &mut c), Err(DropReason::Truncated));
    // Keepalives exist only with UDP encapsulation.
    let plain = PairSpec::default().pair();
    assert_eq!(
        emit_nat_keepalive(&plain.path, &mut buf),
        Err(DropReason::NotEsp)
    );
}

#[test]
fn outer_header_errors() {
    let sa = PairSpec::default().pair();
    let mut c = DropCounters::new();
    let good = packets(&sa, 1, 10).pop().unwrap();
    let mut p = good.clone();
    p[10] ^= 1;
    assert_eq!(decap(&sa, &p, &mut c), Err(DropReason::BadOuterChecksum));
    let mut p = good.clone();
    p[6] = 0x20; // MF
    fix_v4_checksum(&mut p);
    assert_eq!(decap(&sa, &p, &mut c), Err(DropReason::OuterFragment));
    let mut p = good.clone();
    p[9] = 6;
    fix_v4_checksum(&mut p);
    assert_eq!(decap(&sa, &p, &mut c), Err(DropReason::NotEsp));
    let mut p = good.clone();
    p[0] = 0x55;
    assert_eq!(decap(&sa, &p, &mut c), Err(DropReason::BadOuterHeader));
    assert_eq!(decap(&sa, &[], &mut c), Err(DropReason::Truncated));
    // Encapsulation without room.
    let inner = InnerSpec::udp(false, vec![0; 10]).build();
    let mut buf = inner.clone();
    assert_eq!(
        sa.out
            .encapsulate(&sa.path, &mut buf, 0, inner.len())
            .unwrap_err(),
        EncapError::Drop(DropReason::NoRoom)
    );
    let mut f = Frame::new(&inner);
    let end = f.start + f.len;
    assert_eq!(
        sa.out
            .encapsulate(&sa.path, &mut f.buf[..end + 3], f.start, f.len)
            .unwrap_err(),
        EncapError::Drop(DropReason::NoRoom)
    );
    assert_eq!(
        sa.out
            .encapsulate(&sa.path, &mut f.buf, f.start, usize::MAX)
            .unwrap_err(),
        EncapError::Drop(DropReason::NoRoom)
    );
    let mut junk = Frame::new(&[0x45, 0, 0]);
    assert_eq!(
        sa.out
            .encapsulate(&sa.path, &mut junk.buf, junk.start, junk.len)
            .unwrap_err(),
        EncapError::Drop(DropReason::BadInnerPacket)
    );
}

#[test]
fn ecn_decapsulation_per_rfc6040() {
    let sa = PairSpec::default().pair();
    let mut c = DropCounters::new();
    let send = |inner_ecn: u8, outer_ecn: u8, c: &mut DropCounters| {
        let mut spec = InnerSpec::udp(false, vec![9; 20]);
        spec.tos = 0xb8 | inner_ecn;
        let inner = spec.build();
        let mut f = Frame::new(&inner);
        let e = sa
            .out
            .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
            .unwrap();
        let mut outer = f.buf[e.start..e.start + e.len].to_vec();
        assert_eq!(outer[1], 0xb8 | inner_ecn, "DSCP and ECN copied out");
        outer[1] = (outer[1] & !3) | outer_ecn;
        fix_v4_checksum(&mut outer);
        let mut f = Frame::new(&outer);
        let r = decapsulate(&mut f.buf, f.start, f.len, |_| Some(&sa.inb));
        match r {
            Ok(Decapsulated::Packet { start, .. }) => {
                let h = &f.buf[start..start + 20];
                assert_eq!(checksum(h), 0, "inner checksum patched");
                Ok(h[1])
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                c.count(e);
                Err(e)
            }
        }
    };
    assert_eq!(send(0b10, 0b11, &mut c), Ok(0xb8 | 0b11));
    assert_eq!(send(0b01, 0b11, &mut c), Ok(0xb8 | 0b11));
    assert_eq!(send(0b10, 0b01, &mut c), Ok(0xb8 | 0b01));
    assert_eq!(send(0b00, 0b10, &mut c), Ok(0xb8));
    assert_eq!(send(0b00, 0b11, &mut c), Err(DropReason::EcnCeOnNotEct));
    assert_eq!(c.get(DropReason::EcnCeOnNotEct), 1);
}
