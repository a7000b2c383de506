//! Security associations as the data plane holds them: keys, mode, path, counters.
//!
//! An [`OutboundSa`] or [`InboundSa`] is shared (`&` / `Arc`) by every worker that handles it:
//! everything that changes per packet is atomic (the sequence counter, the replay window, the
//! lifetime meters, the path MTU). The AES key schedule is expanded once, when the SA is made;
//! nothing is allocated per packet.
//!
//! # The cipher
//!
//! AES-GCM with a 16-byte ICV ([RFC 4106]), 128- or 256-bit keys. The key material from IKE is
//! the key followed by a 4-byte salt ([RFC 4106 § 8.1]: "the last four octets of the keying
//! material … the salt"). The nonce is `salt ‖ IV`, and the 8-byte IV is the 64-bit sequence
//! number ([RFC 4106 § 3.1] allows "a counter"), so an IV never repeats under one key.
//!
//! The implementation is `ring`'s, chosen by measurement on the target machines: see the
//! crate's README.md and BENCHMARKS.md (ring ≈ aws-lc-rs, both ~3.5× RustCrypto's `aes-gcm` at
//! 1400 B). The tests cross-check every packet against RustCrypto and aws-lc-rs.
//!
//! [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106
//! [RFC 4106 § 8.1]: https://www.rfc-editor.org/rfc/rfc4106#section-8.1
//! [RFC 4106 § 3.1]: https://www.rfc-editor.org/rfc/rfc4106#section-3.1

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::replay::ReplayWindow;
use super::seq::{Lifetime, LimitKind, Meter, SeqCounter};
use crate::wire::esp::ICV_LEN;

/// The salt length of AES-GCM in ESP.
pub const SALT_LEN: usize = 4;

/// The AES key size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySize {
    /// AES-128 (16-byte key, 20 bytes of key material).
    Aes128,
    /// AES-256 (32-byte key, 36 bytes of key material).
    Aes256,
}

impl KeySize {
    /// The length of the key material IKE derives for this size (key and salt).
    pub const fn keymat_len(self) -> usize {
        match self {
            KeySize::Aes128 => 16 + SALT_LEN,
            KeySize::Aes256 => 32 + SALT_LEN,
        }
    }
}

/// Why an SA could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaError {
    /// The key material is neither 20 nor 36 bytes.
    #[error("AES-GCM key material must be 20 or 36 bytes, not {0}")]
    KeyLength(usize),
    /// The SPI is in the reserved range 0–255.
    #[error("SPI {0:#x} is reserved")]
    ReservedSpi(u32),
    /// The outer addresses are of different families.
    #[error("outer source and destination are of different address families")]
    MixedFamilies,
}

/// An expanded AES-GCM-16 key with its salt. Its `Debug` shows neither.
pub struct GcmKey {
    key: LessSafeKey,
    salt: [u8; SALT_LEN],
    size: KeySize,
}

impl fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcmKey")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl GcmKey {
    /// Expands key material (key ‖ salt, 20 or 36 bytes).
    pub fn new(keymat: &[u8]) -> Result<GcmKey, SaError> {
        let (alg, size) = match keymat.len() {
            20 => (&AES_128_GCM, KeySize::Aes128),
            36 => (&AES_256_GCM, KeySize::Aes256),
            n => return Err(SaError::KeyLength(n)),
        };
        let (key, salt) = keymat.split_at(keymat.len() - SALT_LEN);
        let key = UnboundKey::new(alg, key).map_err(|_| SaError::KeyLength(keymat.len()))?;
        let mut s = [0u8; SALT_LEN];
        s.copy_from_slice(salt);
        Ok(GcmKey {
            key: LessSafeKey::new(key),
            salt: s,
            size,
        })
    }

    /// The key size.
    pub fn size(&self) -> KeySize {
        self.size
    }

    #[inline]
    fn nonce(&self, iv: [u8; 8]) -> Nonce {
        let mut n = [0u8; 12];
        n[..SALT_LEN].copy_from_slice(&self.salt);
        n[SALT_LEN..].copy_from_slice(&iv);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `in_out` in place and writes the ICV into `icv` (16 bytes). Fails only for
    /// inputs beyond what GCM allows, which no frame reaches.
    #[inline]
    pub(crate) fn seal(&self, iv: [u8; 8], aad: &[u8], in_out: &mut [u8], icv: &mut [u8]) -> bool {
        match self
            .key
            .seal_in_place_separate_tag(self.nonce(iv), Aad::from(aad), in_out)
        {
            Ok(tag) => {
                let tag: &[u8] = tag.as_ref();
                if tag.len() == ICV_LEN && icv.len() == ICV_LEN {
                    icv.copy_from_slice(tag);
                    true
                } else {
                    false
                }
            }
            Err(_) => false,
        }
    }

    /// Verifies and decrypts `in_out` (ciphertext ‖ ICV) in place; returns the plaintext length.
    #[inline]
    pub(crate) fn open(&self, iv: [u8; 8], aad: &[u8], in_out: &mut [u8]) -> Option<usize> {
        self.key
            .open_in_place(self.nonce(iv), Aad::from(aad), in_out)
            .ok()
            .map(|p| p.len())
    }
}

/// The associated data of ESP with AES-GCM ([RFC 4106 § 5]): SPI ‖ sequence number, with ESN
/// SPI ‖ high ‖ low. Returns the buffer and the length used.
///
/// [RFC 4106 § 5]: https://www.rfc-editor.org/rfc/rfc4106#section-5
#[inline]
pub(crate) fn aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        a[4..12].copy_from_slice(&seq.to_be_bytes());
        (a, 12)
    } else {
        a[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        (a, 8)
    }
}

/// The inner addresses a BEET SA is bound to ([draft-nikander-esp-beet-mode § 2]): on
/// encapsulation the inner IP header is left out; on decapsulation it is rebuilt with these.
///
/// [draft-nikander-esp-beet-mode § 2]: https://datatracker.ietf.org/doc/html/draft-nikander-esp-beet-mode-09#section-2
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeetAddrs {
    /// The inner source address (for an inbound SA: the peer's inner address).
    pub src: IpAddr,
    /// The inner destination address.
    pub dst: IpAddr,
}

/// The ESP mode of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tunnel mode: the whole inner packet is the payload ([RFC 4301 § 4.1]).
    ///
    /// [RFC 4301 § 4.1]: https://www.rfc-editor.org/rfc/rfc4301#section-4.1
    Tunnel,
    /// Bound End-to-End Tunnel: only the transport payload travels; the inner addresses are
    /// the SA's.
    Beet(BeetAddrs),
}

/// How the outer IPv4 DF bit is set ([RFC 4301 § 8.1]: "copy the DF bit from the inner
/// header, clear it, or set it").
///
/// [RFC 4301 § 8.1]: https://www.rfc-editor.org/rfc/rfc4301#section-8.1
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DfPolicy {
    /// Copy it from an inner IPv4 header; set it for an inner IPv6 packet (which may not be
    /// fragmented on the way).
    #[default]
    Copy,
    /// Always set.
    Set,
    /// Always clear.
    Clear,
}

/// How far an outbound SA pads the ESP payload.
///
/// [RFC 4303 § 2.4] asks for 4-byte alignment and allows up to 255 bytes of padding. AES-GCM
/// implementations encrypt whole 16-byte blocks fastest: measured with ring on the target
/// machines, sealing 68 bytes takes ~115 ns and 80 bytes ~96 ns; 1404 bytes ~259 ns and 1408
/// bytes ~222 ns (see BENCHMARKS.md). Padding to the cipher block costs at most 12 bytes more
/// on the wire than the minimum.
///
/// [RFC 4303 § 2.4]: https://www.rfc-editor.org/rfc/rfc4303#section-2.4
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Pad the ciphertext to a multiple of 16 bytes (the AES block): fastest.
    #[default]
    CipherBlock,
    /// Pad to a multiple of 4 bytes, the least the RFC allows: fewest bytes.
    Minimal,
}

impl Padding {
    /// The alignment of the ciphertext in bytes.
    #[inline]
    pub const fn align(self) -> usize {
        match self {
            Padding::CipherBlock => 16,
            Padding::Minimal => crate::wire::esp::ALIGN,
        }
    }
}

/// The outer header's (and the ESP trailer's) settings for an outbound SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterPolicy {
    /// The outer TTL / hop limit in tunnel mode ([RFC 4301 § 5.1.2.1]: "constructed"). BEET
    /// carries the inner TTL instead, since the outer header stands for the inner one.
    ///
    /// [RFC 4301 § 5.1.2.1]: https://www.rfc-editor.org/rfc/rfc4301#section-5.1.2.1
    pub ttl: u8,
    /// The DF bit of an IPv4 outer header.
    pub df: DfPolicy,
    /// `None`: copy the DSCP from the inner header ([RFC 4301 § 5.1.2.1], the default);
    /// `Some(d)`: set DSCP `d` (the low six bits).
    pub dscp: Option<u8>,
    /// The padding of the ESP payload.
    pub padding: Padding,
}

impl Default for OuterPolicy {
    fn default() -> Self {
        OuterPolicy {
            ttl: 64,
            df: DfPolicy::Copy,
            dscp: None,
            padding: Padding::CipherBlock,
        }
    }
}

/// UDP encapsulation ports ([RFC 3948]): ours and the peer's (which a NAT may have changed).
///
/// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPorts {
    /// The source port (ours; 4500).
    pub src: u16,
    /// The destination port (the peer's, as seen through its NAT).
    pub dst: u16,
}

/// The outer addresses of an SA: both of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterAddrs {
    /// IPv4 outer header.
    V4 {
        /// Source.
        src: Ipv4Addr,
        /// Destination.
        dst: Ipv4Addr,
    },
    /// IPv6 outer header.
    V6 {
        /// Source.
        src: Ipv6Addr,
        /// Destination.
        dst: Ipv6Addr,
    },
}

/// Where an SA's packets go now: outer addresses and UDP encapsulation. MOBIKE changes this
/// without touching the SA; workers read it from the shared map each batch and pass it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaPath {
    /// The outer addresses.
    pub addrs: OuterAddrs,
    /// UDP encapsulation, when NAT traversal is on.
    pub udp: Option<UdpPorts>,
}

impl SaPath {
    /// A path from `src` to `dst` (of one family), UDP-encapsulated with `udp`.
    pub fn new(src: IpAddr, dst: IpAddr, udp: Option<UdpPorts>) -> Result<SaPath, SaError> {
        let addrs = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => OuterAddrs::V4 { src, dst },
            (IpAddr::V6(src), IpAddr::V6(dst)) => OuterAddrs::V6 { src, dst },
            _ => return Err(SaError::MixedFamilies),
        };
        Ok(SaPath { addrs, udp })
    }

    /// The outer IP and UDP header length.
    #[inline]
    pub fn header_len(&self) -> usize {
        let ip = match self.addrs {
            OuterAddrs::V4 { .. } => crate::wire::ip::IPV4_HEADER_LEN,
            OuterAddrs::V6 { .. } => crate::wire::ip::IPV6_HEADER_LEN,
        };
        ip + if self.udp.is_some() {
            crate::wire::udp::HEADER_LEN
        } else {
            0
        }
    }
}

/// What both directions of an SA are made from.
#[derive(Clone, PartialEq, Eq)]
pub struct SaConfig<'k> {
    /// The SPI (the receiver's choice).
    pub spi: u32,
    /// Key ‖ salt: 20 or 36 bytes.
    pub keymat: &'k [u8],
    /// Tunnel or BEET.
    pub mode: Mode,
    /// Extended sequence numbers ([RFC 4304]).
    ///
    /// [RFC 4304]: https://www.rfc-editor.org/rfc/rfc4304
    pub esn: bool,
    /// Soft and hard lifetimes.
    pub lifetime: Lifetime,
}

impl fmt::Debug for SaConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaConfig")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("mode", &self.mode)
            .field("esn", &self.esn)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn check_spi(spi: u32) -> Result<(), SaError> {
    if spi < crate::wire::esp::MIN_SPI {
        return Err(SaError::ReservedSpi(spi));
    }
    Ok(())
}

/// An outbound SA: what encapsulation needs, shared by every worker.
#[derive(Debug)]
pub struct OutboundSa {
    pub(crate) spi: u32,
    pub(crate) key: GcmKey,
    pub(crate) mode: Mode,
    pub(crate) esn: bool,
    pub(crate) seq: SeqCounter,
    pub(crate) bytes: Meter,
    pub(crate) outer: OuterPolicy,
    /// The path MTU for the outer packets; 0 while unknown.
    pub(crate) path_mtu: AtomicU32,
}

impl OutboundSa {
    /// Makes an outbound SA with the outer header settings `outer`.
    pub fn new(config: &SaConfig<'_>, outer: OuterPolicy) -> Result<OutboundSa, SaError> {
        OutboundSa::with_next_seq(config, outer, 1)
    }

    /// Like [`OutboundSa::new`], but the first sequence number is `next` (after a restart
    /// that persisted the counter with a safe jump).
    pub fn with_next_seq(
        config: &SaConfig<'_>,
        outer: OuterPolicy,
        next: u64,
    ) -> Result<OutboundSa, SaError> {
        check_spi(config.spi)?;
        Ok(OutboundSa {
            spi: config.spi,
            key: GcmKey::new(config.keymat)?,
            mode: config.mode,
            esn: config.esn,
            seq: SeqCounter::starting_at(next, config.esn, &config.lifetime),
            bytes: Meter::new(
                config.lifetime.soft_bytes,
                config.lifetime.hard_bytes,
                LimitKind::Bytes,
            ),
            outer,
            path_mtu: AtomicU32::new(0),
        })
    }

    /// The SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }
    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The last sequence number used (0 before the first packet).
    pub fn last_seq(&self) -> u64 {
        self.seq.last()
    }
    /// The inner bytes encapsulated so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.total()
    }
    /// The key size.
    pub fn key_size(&self) -> KeySize {
        self.key.size()
    }
}

/// An inbound SA: what decapsulation needs, shared by every worker.
#[derive(Debug)]
pub struct InboundSa {
    pub(crate) spi: u32,
    pub(crate) key: GcmKey,
    pub(crate) mode: Mode,
    pub(crate) esn: bool,
    pub(crate) replay: ReplayWindow,
    pub(crate) packets: Meter,
    pub(crate) bytes: Meter,
}

impl InboundSa {
    /// Makes an inbound SA.
    pub fn new(config: &SaConfig<'_>) -> Result<InboundSa, SaError> {
        check_spi(config.spi)?;
        Ok(InboundSa {
            spi: config.spi,
            key: GcmKey::new(config.keymat)?,
            mode: config.mode,
            esn: config.esn,
            replay: ReplayWindow::new(),
            packets: Meter::new(
                config.lifetime.soft_packets,
                config.lifetime.hard_packets,
                LimitKind::Packets,
            ),
            bytes: Meter::new(
                config.lifetime.soft_bytes,
                config.lifetime.hard_bytes,
                LimitKind::Bytes,
            ),
        })
    }

    /// The SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }
    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The anti-replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }
    /// The packets accepted so far.
    pub fn packets(&self) -> u64 {
        self.packets.total()
    }
    /// The inner bytes accepted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.total()
    }
    /// The key size.
    pub fn key_size(&self) -> KeySize {
        self.key.size()
    }
}

impl OutboundSa {
    /// The path MTU in use for the outer packets (0: unknown, no limit applied).
    pub fn path_mtu(&self) -> u32 {
        self.path_mtu.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_need_20_or_36_bytes_and_debug_hides_them() {
        assert_eq!(GcmKey::new(&[0; 16]).unwrap_err(), SaError::KeyLength(16));
        assert_eq!(GcmKey::new(&[0; 32]).unwrap_err(), SaError::KeyLength(32));
        let k = GcmKey::new(&[0x42; 20]).unwrap();
        assert_eq!(k.size(), KeySize::Aes128);
        assert!(!format!("{k:?}").contains("42"));
        assert_eq!(GcmKey::new(&[1; 36]).unwrap().size(), KeySize::Aes256);
        let cfg = SaConfig {
            spi: 0x42,
            keymat: &[0x42; 20],
            mode: Mode::Tunnel,
            esn: false,
            lifetime: Lifetime::UNLIMITED,
        };
        assert_eq!(
            InboundSa::new(&cfg).unwrap_err(),
            SaError::ReservedSpi(0x42)
        );
        assert!(!format!("{cfg:?}").contains("66"));
    }

    #[test]
    fn aad_layout() {
        assert_eq!(aad(0x01020304, 0x0a0b0c0d_11121314, false).1, 8);
        assert_eq!(
            &aad(0x01020304, 0x0a0b0c0d_11121314, false).0[..8],
            &[1, 2, 3, 4, 0x11, 0x12, 0x13, 0x14]
        );
        assert_eq!(
            aad(0x01020304, 0x0a0b0c0d_11121314, true).0,
            [1, 2, 3, 4, 0xa, 0xb, 0xc, 0xd, 0x11, 0x12, 0x13, 0x14]
        );
    }

    #[test]
    fn mixed_families_are_refused() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(SaPath::new(a, b, None).unwrap_err(), SaError::MixedFamilies);
        assert_eq!(SaPath::new(a, a, None).unwrap().header_len(), 20);
        let p = SaPath::new(
            b,
            b,
            Some(UdpPorts {
                src: 4500,
                dst: 4500,
            }),
        )
        .unwrap();
        assert_eq!(p.header_len(), 48);
    }
}
