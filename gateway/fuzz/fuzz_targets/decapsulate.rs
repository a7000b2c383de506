//! Decapsulation of arbitrary input never panics and never reads outside the frame.
//!
//! The first byte chooses the SA (tunnel or BEET, IPv4 or IPv6 inner addresses, ESN or not)
//! and how the rest is used:
//! - as an outer packet, verbatim (outer headers, UDP encapsulation, SPI and replay logic);
//! - as the *plaintext* of an ESP packet sealed with the SA's key and wrapped in an IPv4
//!   header (raw or UDP 4500), so it passes the integrity check and the fuzzer reaches the
//!   trailer, padding, next-header, inner-packet and BEET pseudo-header parsing.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use roamgate_gateway::esp::{BeetAddrs, InboundSa, Lifetime, Mode, SaConfig, decapsulate};
use roamgate_gateway::wire::checksum;

const SPI: u32 = 0x0102_0304;
const KEYMAT: [u8; 20] = [7; 20];

fn sas() -> &'static [InboundSa; 8] {
    static SAS: OnceLock<[InboundSa; 8]> = OnceLock::new();
    SAS.get_or_init(|| {
        std::array::from_fn(|i| {
            let (src, dst): (IpAddr, IpAddr) = if i & 2 == 0 {
                ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
            } else {
                ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
            };
            InboundSa::new(&SaConfig {
                spi: SPI,
                keymat: &KEYMAT,
                mode: if i & 1 == 0 {
                    Mode::Tunnel
                } else {
                    Mode::Beet(BeetAddrs { src, dst })
                },
                esn: i & 4 != 0,
                lifetime: Lifetime::UNLIMITED,
            })
            .unwrap()
        })
    })
}

static SEQ: AtomicU64 = AtomicU64::new(1);

fn sealed(plaintext: &[u8], esn: bool, udp: bool) -> Vec<u8> {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &KEYMAT[..16]).unwrap());
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&KEYMAT[16..]);
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    let mut aad = SPI.to_be_bytes().to_vec();
    if esn {
        aad.extend_from_slice(&((seq >> 32) as u32).to_be_bytes());
    }
    aad.extend_from_slice(&(seq as u32).to_be_bytes());
    let mut body = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad[..]),
            &mut body,
        )
        .unwrap();
    let mut esp = SPI.to_be_bytes().to_vec();
    esp.extend_from_slice(&(seq as u32).to_be_bytes());
    esp.extend_from_slice(&seq.to_be_bytes());
    esp.extend_from_slice(&body);
    esp.extend_from_slice(tag.as_ref());
    let mut payload = Vec::new();
    if udp {
        payload.extend_from_slice(&4500u16.to_be_bytes());
        payload.extend_from_slice(&4500u16.to_be_bytes());
        payload.extend_from_slice(&((8 + esp.len()) as u16).to_be_bytes());
        payload.extend_from_slice(&[0, 0]);
    }
    payload.extend_from_slice(&esp);
    let mut p = vec![
        0x45,
        0,
        0,
        0,
        0,
        0,
        0x40,
        0,
        64,
        if udp { 17 } else { 50 },
        0,
        0,
    ];
    p.extend_from_slice(&[198, 18, 1, 2, 198, 18, 1, 1]);
    let total = (20 + payload.len()).min(usize::from(u16::MAX)) as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&payload);
    p
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let sa = &sas()[usize::from(sel & 7)];
    let packet = if sel & 8 == 0 {
        rest.to_vec()
    } else {
        sealed(rest, sel & 4 != 0, sel & 16 != 0)
    };
    // Headroom in front (BEET may rebuild a header there) and none behind: reading past the
    // packet would hit the end of the frame and panic.
    let head = usize::from(sel >> 5) * 2;
    let mut frame = vec![0u8; head + packet.len()];
    frame[head..].copy_from_slice(&packet);
    let _ = decapsulate(&mut frame, head, packet.len(), |spi| {
        (spi == SPI).then_some(sa)
    });
});
