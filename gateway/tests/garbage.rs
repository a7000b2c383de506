//! Bad input from the network, at line rate into a running gateway: ESP with a known SPI and a
//! forged body, unknown SPIs, truncated headers, replays of authentic packets, authentic
//! packets whose inner addresses lie outside the SA's traffic selectors, random bytes. Every
//! one is a counted drop (in XDP or in a worker), nothing panics, and the established SA keeps
//! carrying traffic afterwards.
//!
//! (Frames with a broken outer IPv4 checksum cannot cross the lab's bridges — the kernel's
//! bridge netfilter drops them — so that drop is covered by the decapsulation tests.)
//!
//! Needs root and bpffs; fails (never skips) with the reason otherwise.

mod lab;

use std::time::Duration;

use lab::*;
use roamgate_ebpf::abi::Counter;
use roamgate_gateway::DropReason;
use roamgate_gateway::esp::{Lifetime, Mode, OutboundSa, OuterPolicy, SaConfig, SaPath};
use roamgate_lab::traffic;

const N: u32 = 2000;
/// Authentic packets with inner addresses outside the selectors (sequence numbers from 100:
/// ahead of the real traffic, close enough to keep it inside the replay window).
const FOREIGN: u32 = 50;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// An authentic ESP packet of the A→B SA with sequence number `seq`, carrying a UDP datagram
/// from `inner_src` to 10.102.0.2, as an Ethernet frame.
fn authentic(to: [u8; 6], from: [u8; 6], seq: u64, inner_src: [u8; 4]) -> Vec<u8> {
    let key = unhex(KEY_AB);
    let sa = OutboundSa::with_next_seq(
        &SaConfig {
            spi: SPI_AB,
            keymat: &key,
            mode: Mode::Tunnel,
            esn: false,
            lifetime: Lifetime::UNLIMITED,
        },
        OuterPolicy::default(),
        seq,
    )
    .unwrap();
    let path = SaPath::new(
        "198.18.1.1".parse().unwrap(),
        "198.18.1.2".parse().unwrap(),
        None,
    )
    .unwrap();
    let mut inner = ipv4_frame(
        [0; 6],
        [0; 6],
        inner_src,
        [10, 102, 0, 2],
        17,
        &[0x13, 0x88, 0x13, 0x89, 0, 12, 0, 0, 1, 2, 3, 4],
    );
    inner.drain(..14);
    let mut buf = vec![0u8; 256 + inner.len() + 64];
    buf[128..128 + inner.len()].copy_from_slice(&inner);
    let e = sa.encapsulate(&path, &mut buf, 128, inner.len()).unwrap();
    let mut f = to.to_vec();
    f.extend_from_slice(&from);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&buf[e.start..e.start + e.len]);
    f
}

#[test]
fn garbage_is_counted_and_the_sa_survives() {
    let s = sites("junk", Encap::Esp);
    let (lana, lanb) = (&s.lab.lana.ns, &s.lab.lanb.ns);
    let _ = traffic::ping(lana, "10.102.0.2", 3, Duration::from_millis(20));

    // The attacker sits on ISP 1 with gateway A's address and sends to B's wan1.
    let link = RawLink::open(&s.lab.gwa.ns, "wan1");
    let (to, from) = (mac_of(&s.lab.gwb.ns, "wan1"), mac_of(&s.lab.gwa.ns, "wan1"));
    let (src, dst) = ([198, 18, 1, 1], [198, 18, 1, 2]);
    let xdp_before = s.b.classifier().unwrap().counters().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let esp = |spi: u32, seq: u32, body: &[u8]| {
        let mut p = spi.to_be_bytes().to_vec();
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(body);
        p
    };
    for i in 0..N {
        // A forged body under the real SPI: the ICV cannot verify.
        let body = rng.bytes(8 + 64 + 16);
        link.send(&ipv4_frame(
            to,
            from,
            src,
            dst,
            50,
            &esp(SPI_AB, 1_000_000 + i, &body),
        ));
        // An SPI nobody installed: XDP drops it.
        link.send(&ipv4_frame(
            to,
            from,
            src,
            dst,
            50,
            &esp(0x0bad_0000 + i, 1, &body),
        ));
        // The real SPI with no room for an IV and ICV.
        link.send(&ipv4_frame(to, from, src, dst, 50, &esp(SPI_AB, 1, &[])));
        // A replay of an authentic packet the gateway has already accepted.
        link.send(&authentic(to, from, 1 + u64::from(i % 2), [10, 101, 0, 2]));
        // Random bytes after an Ethernet header.
        let mut junk = to.to_vec();
        junk.extend_from_slice(&from);
        let n = 20 + (rng.next_u64() % 200) as usize;
        junk.extend(rng.bytes(n));
        link.send(&junk);
    }
    for i in 0..FOREIGN {
        link.send(&authentic(to, from, 100 + u64::from(i), [192, 0, 2, 1]));
    }
    // Let the workers drain what was steered.
    std::thread::sleep(Duration::from_millis(300));
    let xdp =
        s.b.classifier()
            .unwrap()
            .counters()
            .unwrap()
            .since(&xdp_before);
    let pins = &s.pins_b.0;
    println!("B: XDP {:?}\nB: workers {}", xdp, show(pins));
    assert!(xdp.get(Counter::EspUnknownSpi) >= u64::from(N), "{xdp:?}");
    let integrity = drops(pins, DropReason::IntegrityFailed);
    let truncated = drops(pins, DropReason::Truncated);
    let replays = drops(pins, DropReason::Replay);
    let foreign = drops(pins, DropReason::TrafficSelector);
    // What reached the workers (the rings may overflow under the flood: the kernel counts
    // that) was dropped for exactly its reason.
    assert!(
        integrity > N as u64 / 2 && truncated > N as u64 / 2 && replays > N as u64 / 2,
        "{}",
        show(pins)
    );
    assert_eq!(foreign, u64::from(FOREIGN), "{}", show(pins));
    let steered = xdp.get(Counter::EspRedirected);
    assert!(
        integrity + truncated + replays + foreign <= steered,
        "steered {steered}: {}",
        show(pins)
    );

    // The SA is still there and still carries traffic both ways.
    for (from, to) in [(lana, "10.102.0.2"), (lanb, "10.101.0.2")] {
        let r = traffic::ping(from, to, 20, Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.received,
            20,
            "ping {to} after the flood: {r:?}\n{}",
            show(pins)
        );
    }
    assert_eq!(drops(pins, DropReason::ReplayTooOld), 0, "{}", show(pins));
}
