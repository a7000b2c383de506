//! Shared test helpers: packet builders, SA pairs, and an independent ESP implementation
//! (RustCrypto `aes-gcm` and `aws-lc-rs`) to check ours against.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use roamgate_gateway::esp::{
    BeetAddrs, HEADROOM, InboundSa, Lifetime, Mode, OutboundSa, OuterPolicy, Padding, SaConfig,
    SaPath, TAILROOM, UdpPorts,
};
use roamgate_gateway::wire::{checksum, checksum_add, checksum_finish, ip};

/// Extra headroom the frames in tests carry beyond what encapsulation needs (BEET decap may
/// use a little in front of the packet).
pub const SLACK: usize = 8;

pub const INNER4_SRC: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const INNER4_DST: Ipv4Addr = Ipv4Addr::new(10, 101, 0, 2);
pub const INNER6_SRC: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xc8, 0, 0, 0, 0, 0, 1);
pub const INNER6_DST: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x65, 0, 0, 0, 0, 0, 2);
pub const OUTER4_SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
pub const OUTER4_DST: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
pub const OUTER6_SRC: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x18, 1, 0, 0, 0, 0, 1);
pub const OUTER6_DST: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x18, 1, 0, 0, 0, 0, 2);

/// Inner packet parameters.
#[derive(Debug, Clone)]
pub struct InnerSpec {
    pub v6: bool,
    pub tos: u8,
    pub ttl: u8,
    pub df: bool,
    pub ident: u16,
    /// IPv4 options (a multiple of 4 bytes, at most 40).
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl InnerSpec {
    pub fn udp(v6: bool, payload: Vec<u8>) -> InnerSpec {
        InnerSpec {
            v6,
            tos: 0,
            ttl: 64,
            df: true,
            ident: 0,
            options: Vec::new(),
            payload,
        }
    }

    pub fn src(&self) -> IpAddr {
        if self.v6 {
            INNER6_SRC.into()
        } else {
            INNER4_SRC.into()
        }
    }

    pub fn dst(&self) -> IpAddr {
        if self.v6 {
            INNER6_DST.into()
        } else {
            INNER4_DST.into()
        }
    }

    /// An IP packet carrying a UDP datagram (port 5000 → 9000) with the payload.
    pub fn build(&self) -> Vec<u8> {
        let udp_len = 8 + self.payload.len();
        let mut udp = Vec::with_capacity(udp_len);
        udp.extend_from_slice(&5000u16.to_be_bytes());
        udp.extend_from_slice(&9000u16.to_be_bytes());
        udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&self.payload);
        if self.v6 {
            let sum = ip::ipv6_pseudo_sum(
                &INNER6_SRC,
                &INNER6_DST,
                udp_len as u32,
                ip::IpProtocol::UDP,
            );
            let c = match checksum_finish(checksum_add(sum, &udp)) {
                0 => 0xffff,
                c => c,
            };
            udp[6..8].copy_from_slice(&c.to_be_bytes());
            let mut p = vec![0u8; 40];
            let w = (6u32 << 28) | (u32::from(self.tos) << 20);
            p[0..4].copy_from_slice(&w.to_be_bytes());
            p[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            p[6] = 17;
            p[7] = self.ttl;
            p[8..24].copy_from_slice(&INNER6_SRC.octets());
            p[24..40].copy_from_slice(&INNER6_DST.octets());
            p.extend_from_slice(&udp);
            p
        } else {
            let sum = ip::ipv4_pseudo_sum(
                &INNER4_SRC,
                &INNER4_DST,
                udp_len as u16,
                ip::IpProtocol::UDP,
            );
            let c = match checksum_finish(checksum_add(sum, &udp)) {
                0 => 0xffff,
                c => c,
            };
            udp[6..8].copy_from_slice(&c.to_be_bytes());
            assert!(self.options.len().is_multiple_of(4) && self.options.len() <= 40);
            let hl = 20 + self.options.len();
            let mut p = vec![0u8; hl];
            p[0] = 0x40 | (hl / 4) as u8;
            p[1] = self.tos;
            p[2..4].copy_from_slice(&((hl + udp_len) as u16).to_be_bytes());
            p[4..6].copy_from_slice(&self.ident.to_be_bytes());
            p[6..8].copy_from_slice(&(if self.df { 0x4000u16 } else { 0 }).to_be_bytes());
            p[8] = self.ttl;
            p[9] = 17;
            p[12..16].copy_from_slice(&INNER4_SRC.octets());
            p[16..20].copy_from_slice(&INNER4_DST.octets());
            p[20..hl].copy_from_slice(&self.options);
            let c = checksum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p.extend_from_slice(&udp);
            p
        }
    }
}

/// A frame holding `packet` with room around it.
pub struct Frame {
    pub buf: Vec<u8>,
    pub start: usize,
    pub len: usize,
}

impl Frame {
    pub fn new(packet: &[u8]) -> Frame {
        let start = HEADROOM + SLACK;
        let mut buf = vec![0u8; start + packet.len() + TAILROOM + SLACK];
        buf[start..start + packet.len()].copy_from_slice(packet);
        Frame {
            buf,
            start,
            len: packet.len(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// One direction's SA as both ends hold it.
pub struct SaPair {
    pub keymat: Vec<u8>,
    pub spi: u32,
    pub esn: bool,
    pub out: OutboundSa,
    pub inb: InboundSa,
    pub path: SaPath,
}

pub fn keymat(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub fn path(v6: bool, udp: bool) -> SaPath {
    let ports = udp.then_some(UdpPorts {
        src: 4500,
        dst: 4500,
    });
    if v6 {
        SaPath::new(OUTER6_SRC.into(), OUTER6_DST.into(), ports).unwrap()
    } else {
        SaPath::new(OUTER4_SRC.into(), OUTER4_DST.into(), ports).unwrap()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PairSpec {
    pub beet: bool,
    pub inner_v6: bool,
    pub outer_v6: bool,
    pub aes256: bool,
    pub udp: bool,
    pub esn: bool,
    pub next_seq: u64,
    pub lifetime: Lifetime,
    pub padding: Padding,
}

impl Default for PairSpec {
    fn default() -> Self {
        PairSpec {
            beet: false,
            inner_v6: false,
            outer_v6: false,
            aes256: false,
            udp: false,
            esn: false,
            next_seq: 1,
            lifetime: Lifetime::UNLIMITED,
            padding: Padding::CipherBlock,
        }
    }
}

impl PairSpec {
    /// Every mode × inner family × outer family × key size × encapsulation × ESN.
    pub fn all() -> Vec<PairSpec> {
        let mut v = Vec::new();
        for bits in 0..64u32 {
            let b = |i: u32| bits & (1 << i) != 0;
            v.push(PairSpec {
                beet: b(0),
                inner_v6: b(1),
                outer_v6: b(2),
                aes256: b(3),
                udp: b(4),
                esn: b(5),
                ..PairSpec::default()
            });
        }
        v
    }

    pub fn mode(&self) -> Mode {
        if self.beet {
            let (src, dst): (IpAddr, IpAddr) = if self.inner_v6 {
                (INNER6_SRC.into(), INNER6_DST.into())
            } else {
                (INNER4_SRC.into(), INNER4_DST.into())
            };
            Mode::Beet(BeetAddrs { src, dst })
        } else {
            Mode::Tunnel
        }
    }

    pub fn pair(&self) -> SaPair {
        let keymat = keymat(if self.aes256 { 36 } else { 20 }, 7);
        let spi = 0xc4f2_a1b0;
        let cfg = SaConfig {
            spi,
            keymat: &keymat,
            mode: self.mode(),
            esn: self.esn,
            lifetime: self.lifetime,
        };
        SaPair {
            out: OutboundSa::with_next_seq(
                &cfg,
                OuterPolicy {
                    padding: self.padding,
                    ..OuterPolicy::default()
                },
                self.next_seq,
            )
            .unwrap(),
            inb: InboundSa::new(&cfg).unwrap(),
            keymat: keymat.clone(),
            spi,
            esn: self.esn,
            path: path(self.outer_v6, self.udp),
        }
    }
}

/// Decrypts an ESP packet (SPI onwards, ICV included) with RustCrypto and with aws-lc-rs;
/// checks that both agree and returns the plaintext (payload, padding, trailer).
pub fn independent_open(keymat: &[u8], esp: &[u8], seq: u64, esn: bool) -> Vec<u8> {
    let (key, salt) = keymat.split_at(keymat.len() - 4);
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(salt);
    nonce[4..].copy_from_slice(&esp[8..16]);
    let mut aad = esp[..4].to_vec();
    if esn {
        aad.extend_from_slice(&((seq >> 32) as u32).to_be_bytes());
    }
    aad.extend_from_slice(&esp[4..8]);
    let body = &esp[16..esp.len() - 16];
    let tag = &esp[esp.len() - 16..];

    let mut rc = body.to_vec();
    let ok = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .unwrap()
            .decrypt_in_place_detached((&nonce).into(), &aad, &mut rc, tag.into()),
        32 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .decrypt_in_place_detached((&nonce).into(), &aad, &mut rc, tag.into()),
        n => panic!("key length {n}"),
    };
    ok.expect("RustCrypto aes-gcm rejects the packet");

    use aws_lc_rs::aead as aws;
    let alg = if key.len() == 16 {
        &aws::AES_128_GCM
    } else {
        &aws::AES_256_GCM
    };
    let k = aws::LessSafeKey::new(aws::UnboundKey::new(alg, key).unwrap());
    let mut al = esp[16..].to_vec();
    let plain = k
        .open_in_place(
            aws::Nonce::assume_unique_for_key(nonce),
            aws::Aad::from(&aad[..]),
            &mut al,
        )
        .expect("aws-lc-rs rejects the packet")
        .to_vec();
    assert_eq!(rc, plain, "RustCrypto and aws-lc-rs disagree");
    plain
}

/// Encrypts `plaintext` (payload, padding, trailer — anything) as ESP with RustCrypto: returns
/// SPI ‖ seq ‖ IV ‖ ciphertext ‖ ICV. Used to make packets with valid ICVs and bad contents.
pub fn independent_seal(keymat: &[u8], spi: u32, seq: u64, esn: bool, plaintext: &[u8]) -> Vec<u8> {
    let (key, salt) = keymat.split_at(keymat.len() - 4);
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(salt);
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    let mut aad = spi.to_be_bytes().to_vec();
    if esn {
        aad.extend_from_slice(&((seq >> 32) as u32).to_be_bytes());
    }
    aad.extend_from_slice(&(seq as u32).to_be_bytes());
    let mut body = plaintext.to_vec();
    let tag = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_in_place_detached((&nonce).into(), &aad, &mut body),
        _ => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_in_place_detached((&nonce).into(), &aad, &mut body),
    }
    .unwrap();
    let mut out = spi.to_be_bytes().to_vec();
    out.extend_from_slice(&(seq as u32).to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    out
}

/// Wraps an ESP packet in an outer IPv4 header (ESP or UDP 4500).
pub fn outer_v4(esp: &[u8], udp: bool, tos: u8) -> Vec<u8> {
    let mut payload = Vec::new();
    if udp {
        payload.extend_from_slice(&4500u16.to_be_bytes());
        payload.extend_from_slice(&4500u16.to_be_bytes());
        payload.extend_from_slice(&((8 + esp.len()) as u16).to_be_bytes());
        payload.extend_from_slice(&[0, 0]);
    }
    payload.extend_from_slice(esp);
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[1] = tos;
    p[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = if udp { 17 } else { 50 };
    p[12..16].copy_from_slice(&OUTER4_DST.octets());
    p[16..20].copy_from_slice(&OUTER4_SRC.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&payload);
    p
}

/// Makes an ESP plaintext: payload, RFC padding to 4 bytes, pad length, next header.
pub fn esp_plaintext(payload: &[u8], next_header: u8) -> Vec<u8> {
    let mut v = payload.to_vec();
    let pad = (4 - (payload.len() + 2) % 4) % 4;
    v.extend((1..=pad).map(|i| i as u8));
    v.push(pad as u8);
    v.push(next_header);
    v
}
