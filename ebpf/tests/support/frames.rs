//! Builders for the frames the tests feed the classifier: Ethernet (with an optional VLAN tag),
//! IPv4 (with options), IPv6 (with extension headers), UDP and ESP. Lengths and the IPv4
//! header checksum are filled in; everything else is what the caller asks for.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethertypes.
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

/// IP protocol numbers.
pub const IPPROTO_HOPOPTS: u8 = 0;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ROUTING: u8 = 43;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_ESP: u8 = 50;
pub const IPPROTO_DSTOPTS: u8 = 60;

pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An Ethernet frame.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    eth_to(DST_MAC, SRC_MAC, ethertype, payload)
}

/// An Ethernet frame between the given MAC addresses.
pub fn eth_to(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An Ethernet frame with one VLAN tag (`tpid` 0x8100 or 0x88a8).
pub fn eth_vlan(tpid: u16, vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(4 + payload.len());
    inner.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    inner.extend_from_slice(&ethertype.to_be_bytes());
    inner.extend_from_slice(payload);
    eth(tpid, &inner)
}

/// The Internet checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Fields of an IPv4 header that tests vary.
#[derive(Clone, Debug)]
pub struct V4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    /// Options (a multiple of 4 bytes), making IHL > 5.
    pub options: Vec<u8>,
    /// The raw flags + fragment offset field.
    pub frag_off: u16,
    /// Overrides the IHL field (for malformed headers).
    pub ihl: Option<u8>,
    /// Overrides the total length field.
    pub tot_len: Option<u16>,
}

impl V4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> V4 {
        V4 {
            src,
            dst,
            proto,
            options: Vec::new(),
            frag_off: 0x4000, // DF
            ihl: None,
            tot_len: None,
        }
    }

    /// The IPv4 packet carrying `payload`.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        assert_eq!(self.options.len() % 4, 0);
        let hlen = 20 + self.options.len();
        let ihl = self.ihl.unwrap_or((hlen / 4) as u8);
        let tot_len = self.tot_len.unwrap_or((hlen + payload.len()) as u16);
        let mut p = Vec::with_capacity(hlen + payload.len());
        p.push(0x40 | (ihl & 0x0f));
        p.push(0);
        p.extend_from_slice(&tot_len.to_be_bytes());
        p.extend_from_slice(&0x1234u16.to_be_bytes());
        p.extend_from_slice(&self.frag_off.to_be_bytes());
        p.push(64);
        p.push(self.proto);
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&self.options);
        let sum = checksum(&p[..hlen]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }
}

/// An IPv6 packet; `ext` are extension headers already encoded (see [`ext_opts`],
/// [`ext_frag`]) and `next` is the first next-header value.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let plen = (ext.len() + payload.len()) as u16;
    let mut p = Vec::with_capacity(40 + plen as usize);
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&plen.to_be_bytes());
    p.push(next);
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(ext);
    p.extend_from_slice(payload);
    p
}

/// A hop-by-hop, routing or destination options header of `8 * (units + 1)` bytes, filled
/// with PadN, followed by `next`.
pub fn ext_opts(next: u8, units: u8) -> Vec<u8> {
    let len = 8 * (usize::from(units) + 1);
    let mut h = vec![0u8; len];
    h[0] = next;
    h[1] = units;
    // One PadN option covering the rest.
    h[2] = 1;
    h[3] = (len - 4) as u8;
    h
}

/// A routing header (type 0-style layout, segments left 0) of `8 * (units + 1)` bytes.
pub fn ext_routing(next: u8, units: u8) -> Vec<u8> {
    let len = 8 * (usize::from(units) + 1);
    let mut h = vec![0u8; len];
    h[0] = next;
    h[1] = units;
    h[2] = 4; // routing type
    h[3] = 0; // segments left
    h
}

/// A fragment header: `offset` in 8-byte units, `more` the M flag.
pub fn ext_frag(next: u8, offset: u16, more: bool) -> Vec<u8> {
    let field = (offset << 3) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&field.to_be_bytes());
    h.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    h
}

/// A UDP datagram (checksum zero: the classifier does not check it).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

/// An ESP packet: SPI, sequence number and an opaque body.
pub fn esp(spi: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(8 + body.len());
    e.extend_from_slice(&spi.to_be_bytes());
    e.extend_from_slice(&seq.to_be_bytes());
    e.extend_from_slice(body);
    e
}

/// A plausible ESP body: IV, ciphertext, ICV (random-looking bytes).
pub fn esp_body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
        .collect()
}

/// The 4-byte non-ESP marker followed by an IKE header-sized body (RFC 3948 § 2.2).
pub fn ike_with_marker() -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0];
    p.extend_from_slice(&ike_message());
    p
}

/// An IKE_SA_INIT-looking header (28 bytes) with no payloads.
pub fn ike_message() -> Vec<u8> {
    let mut m = vec![0x11; 8]; // initiator SPI
    m.extend_from_slice(&[0; 8]); // responder SPI
    m.extend_from_slice(&[33, 0x20, 34, 0x08]); // next payload SA, version 2.0, IKE_SA_INIT, flags
    m.extend_from_slice(&0u32.to_be_bytes()); // message ID
    m.extend_from_slice(&28u32.to_be_bytes()); // length
    m
}

/// An ARP request (who-has).
pub fn arp_request() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&SRC_MAC);
    a.extend_from_slice(&[10, 0, 0, 2]);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&[10, 0, 0, 1]);
    eth_to([0xff; 6], SRC_MAC, ETH_P_ARP, &a)
}

/// A deterministic xorshift64* generator, so a failing random case can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
