//! The map ABI: Rust mirrors of the records and constants in `bpf/roamgate_abi.h`.
//!
//! Every record is `#[repr(C)]` with explicit padding fields and no implicit padding, so its
//! bytes are fully defined and it can be a hash map key. Sizes and offsets are checked at
//! compile time below; a test compares [`layout`] with what the C compiler reports for the
//! header (see `bpf/host/abi_dump.c`), so the two cannot drift apart.
//!
//! Addresses and SPIs are stored in network byte order, as on the wire.

use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::net::IpAddr;

use aya::maps::MapType;

/// Bumped on every incompatible change to a record, a constant or a map (`RG_ABI_VERSION`).
pub const ABI_VERSION: u32 = 4;

/// `max_entries` of `local_addrs` (`RG_LOCAL_ADDRS_MAX`).
pub const LOCAL_ADDRS_MAX: u32 = 1024;
/// `max_entries` of `spi_index` (`RG_SPI_INDEX_MAX`).
pub const SPI_INDEX_MAX: u32 = 131_072;
/// `max_entries` of `xsk_map`: one slot per RX queue of each interface, from the
/// interface's [`Iface::xsk_base`] (`RG_XSK_MAP_MAX`).
pub const XSK_MAP_MAX: u32 = 1024;
/// `max_entries` of `ifaces` (`RG_IFACES_MAX`).
pub const IFACES_MAX: u32 = 64;
/// SA slots: entries of `sa_table`, `endpoints` and `sa_seq` (`RG_SA_MAX`).
pub const SA_MAX: u32 = 65536;
/// Words of the SA table's change bitmap `sa_dirty`, one bit per slot (`RG_SA_DIRTY_WORDS`).
pub const SA_DIRTY_WORDS: u32 = SA_MAX / 64;
/// `max_entries` of `prefixes_v4` and of `prefixes_v6` (`RG_PREFIXES_MAX`).
pub const PREFIXES_MAX: u32 = 131_072;
/// Workers with counter slots in `gw_counters` (`RG_WORKERS_MAX`).
pub const WORKERS_MAX: u32 = 64;
/// Counter slots per worker in `gw_counters` (`RG_GW_CNT_STRIDE`).
pub const GW_CNT_STRIDE: u32 = 64;
/// `max_entries` of `gw_counters` (`RG_GW_COUNTERS_MAX`).
pub const GW_COUNTERS_MAX: u32 = WORKERS_MAX * GW_CNT_STRIDE;
/// `max_entries` of `counters` (`RG_COUNTERS_MAX`); more than [`Counter::COUNT`] so that new
/// counters keep pinned maps compatible.
pub const COUNTERS_MAX: u32 = 64;
/// `max_entries` of `gateway_ready`: the one readiness record (`RG_GATEWAY_READY_MAX`).
pub const GATEWAY_READY_MAX: u32 = 1;

/// IKE's port, [RFC 7296 § 2]: "IKE messages use UDP ports 500 and/or 4500" (`RG_IKE_PORT`).
///
/// [RFC 7296 § 2]: https://www.rfc-editor.org/rfc/rfc7296#section-2
pub const IKE_PORT: u16 = 500;
/// The port of UDP-encapsulated ESP and IKE, [RFC 3948 § 2] (`RG_NATT_PORT`).
///
/// [RFC 3948 § 2]: https://www.rfc-editor.org/rfc/rfc3948#section-2
pub const NATT_PORT: u16 = 4500;

/// [`AddrKey::family`] of an IPv4 address (`RG_FAMILY_IPV4`).
pub const FAMILY_IPV4: u8 = 4;
/// [`AddrKey::family`] of an IPv6 address (`RG_FAMILY_IPV6`).
pub const FAMILY_IPV6: u8 = 6;

/// [`SpiValue::flags`]: the SA is UDP-encapsulated ([RFC 3948]); for the gateway's workers, the
/// XDP program steers ESP and ESP-in-UDP alike (`RG_SPI_F_UDP_ENCAP`).
///
/// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948
pub const SPI_F_UDP_ENCAP: u16 = 0x0001;

/// IPv6 extension headers the program walks before it gives up (`RG_IPV6_EXT_MAX`).
pub const IPV6_EXT_MAX: u32 = 6;

/// [`Iface::role`]: a WAN interface, where ESP arrives (`RG_IFACE_ROLE_WAN`). An interface
/// with no entry in `ifaces` is a WAN interface with `xsk_base` 0.
pub const IFACE_ROLE_WAN: u32 = 1;
/// [`Iface::role`]: a LAN interface, where traffic to protected prefixes arrives
/// (`RG_IFACE_ROLE_LAN`).
pub const IFACE_ROLE_LAN: u32 = 2;

/// [`SaRecord::state`]: the slot is empty (`RG_SA_STATE_EMPTY`).
pub const SA_STATE_EMPTY: u8 = 0;
/// [`SaRecord::state`]: the SA is in use (`RG_SA_STATE_ACTIVE`).
pub const SA_STATE_ACTIVE: u8 = 1;
/// [`SaRecord::direction`]: inbound (`RG_SA_DIR_IN`).
pub const SA_DIR_IN: u8 = 1;
/// [`SaRecord::direction`]: outbound (`RG_SA_DIR_OUT`).
pub const SA_DIR_OUT: u8 = 2;
/// [`SaRecord::mode`]: tunnel mode, [RFC 4301 § 4.1] (`RG_SA_MODE_TUNNEL`).
///
/// [RFC 4301 § 4.1]: https://www.rfc-editor.org/rfc/rfc4301#section-4.1
pub const SA_MODE_TUNNEL: u8 = 1;
/// [`SaRecord::mode`]: BEET mode (`RG_SA_MODE_BEET`).
pub const SA_MODE_BEET: u8 = 2;
/// [`SaRecord::cipher`]: AES-128-GCM with a 16-byte ICV, [RFC 4106]
/// (`RG_SA_CIPHER_AES128GCM16`).
///
/// [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106
pub const SA_CIPHER_AES128GCM16: u8 = 1;
/// [`SaRecord::cipher`]: AES-256-GCM with a 16-byte ICV (`RG_SA_CIPHER_AES256GCM16`).
pub const SA_CIPHER_AES256GCM16: u8 = 2;
/// [`SaRecord::flags`]: extended sequence numbers, [RFC 4304] (`RG_SA_F_ESN`).
///
/// [RFC 4304]: https://www.rfc-editor.org/rfc/rfc4304
pub const SA_F_ESN: u8 = 0x01;
/// Bytes of key material (key ‖ salt) of the largest cipher (`RG_SA_KEY_MAX`).
pub const SA_KEY_MAX: usize = 36;
/// Traffic selector prefixes per side of an SA (`RG_SA_TS_MAX`).
pub const SA_TS_MAX: usize = 4;
/// [`EndpointRecord::flags`]: UDP-encapsulated ESP, [RFC 3948] (`RG_EP_F_UDP_ENCAP`).
///
/// [RFC 3948]: https://www.rfc-editor.org/rfc/rfc3948
pub const EP_F_UDP_ENCAP: u8 = 0x01;

/// Key of `local_addrs` (`struct rg_addr_key`): an IP address with a family tag.
///
/// IPv4 `a.b.c.d` is stored IPv4-mapped (`::ffff:a.b.c.d`, [RFC 4291 § 2.5.5.2]) with
/// [`FAMILY_IPV4`], so it never equals the IPv6 address `::ffff:a.b.c.d`.
///
/// [RFC 4291 § 2.5.5.2]: https://www.rfc-editor.org/rfc/rfc4291#section-2.5.5.2
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrKey {
    /// The address in network byte order; IPv4 as `::ffff:a.b.c.d`.
    pub addr: [u8; 16],
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// Zero.
    pub pad: [u8; 3],
}

impl AddrKey {
    /// The key of `addr`.
    pub fn new(addr: IpAddr) -> AddrKey {
        match addr {
            IpAddr::V4(v4) => AddrKey {
                addr: v4.to_ipv6_mapped().octets(),
                family: FAMILY_IPV4,
                pad: [0; 3],
            },
            IpAddr::V6(v6) => AddrKey {
                addr: v6.octets(),
                family: FAMILY_IPV6,
                pad: [0; 3],
            },
        }
    }
}

impl From<IpAddr> for AddrKey {
    fn from(addr: IpAddr) -> AddrKey {
        AddrKey::new(addr)
    }
}

/// Value of `local_addrs` (`struct rg_local_addr`): presence is what counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalAddr {
    /// Reserved; zero.
    pub flags: u32,
}

/// Key of `spi_index` (`struct rg_spi_key`): an inbound SPI in network byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpiKey {
    /// The SPI's four wire bytes, read as a native `u32` (that is, `spi.to_be()`).
    pub spi: u32,
}

impl SpiKey {
    /// The key of the SPI whose numeric value is `spi` (as IKE and logs show it).
    pub fn new(spi: u32) -> SpiKey {
        SpiKey { spi: spi.to_be() }
    }

    /// The numeric value of the SPI.
    pub fn spi(self) -> u32 {
        u32::from_be(self.spi)
    }
}

/// Value of `spi_index` (`struct rg_spi_value`): where the SA of an inbound SPI lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpiValue {
    /// Index into the gateway's SA table.
    pub sa_slot: u32,
    /// `SPI_F_*` flags.
    pub flags: u16,
    /// Zero.
    pub pad: u16,
}

impl SpiValue {
    /// The value for SA slot `sa_slot` with `flags`.
    pub fn new(sa_slot: u32, flags: u16) -> SpiValue {
        SpiValue {
            sa_slot,
            flags,
            pad: 0,
        }
    }
}

impl AddrKey {
    /// The address this key holds, or `None` for a family other than IPv4 or IPv6.
    pub fn addr(&self) -> Option<IpAddr> {
        let v6 = std::net::Ipv6Addr::from(self.addr);
        match self.family {
            FAMILY_IPV4 => v6.to_ipv4_mapped().map(IpAddr::V4),
            FAMILY_IPV6 => Some(IpAddr::V6(v6)),
            _ => None,
        }
    }
}

/// Value of `ifaces` (`struct rg_iface`), keyed by ifindex: the interface's role and where its
/// AF_XDP sockets start in `xsk_map`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Iface {
    /// [`IFACE_ROLE_WAN`] or [`IFACE_ROLE_LAN`].
    pub role: u32,
    /// The `xsk_map` slot of RX queue 0; queue `q` uses slot `xsk_base + q`.
    pub xsk_base: u32,
}

/// Value of `prefixes_v4` and `prefixes_v6` (`struct rg_prefix_value`): the outbound SA of a
/// protected prefix. The keys are `aya::maps::lpm_trie::Key<[u8; 4]>` (`struct rg_lpm_v4`)
/// and `Key<[u8; 16]>` (`struct rg_lpm_v6`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrefixValue {
    /// The outbound SA's slot.
    pub sa_slot: u32,
}

/// `struct rg_lpm_v4`, for the layout check (the map is written with aya's `Key<[u8; 4]>`,
/// which has this layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LpmV4 {
    /// Prefix length in bits.
    pub prefixlen: u32,
    /// The address, network byte order.
    pub addr: [u8; 4],
}

/// `struct rg_lpm_v6`, for the layout check.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LpmV6 {
    /// Prefix length in bits.
    pub prefixlen: u32,
    /// The address, network byte order.
    pub addr: [u8; 16],
}

/// A traffic selector prefix (`struct rg_prefix`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrefixRecord {
    /// The address, network byte order; IPv4 IPv4-mapped as in [`AddrKey`].
    pub addr: [u8; 16],
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// Prefix length in bits (of the IPv4 address for IPv4).
    pub prefixlen: u8,
    /// Zero.
    pub pad: [u8; 2],
}

/// One SA (`struct rg_sa`), a record of the mmapped `sa_table`, written under its sequence
/// lock (see `crate::tables`). Holds the key: the pinned map is readable by root only.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SaRecord {
    /// Sequence lock: odd while the record is being written.
    pub seq: u32,
    /// Grows with every write of the record.
    pub generation: u32,
    /// The SPI in network byte order.
    pub spi: u32,
    /// [`SA_STATE_EMPTY`] or [`SA_STATE_ACTIVE`].
    pub state: u8,
    /// [`SA_DIR_IN`] or [`SA_DIR_OUT`].
    pub direction: u8,
    /// [`SA_MODE_TUNNEL`] or [`SA_MODE_BEET`].
    pub mode: u8,
    /// [`SA_CIPHER_AES128GCM16`] or [`SA_CIPHER_AES256GCM16`].
    pub cipher: u8,
    /// `SA_F_*`.
    pub flags: u8,
    /// Bytes of `key` in use: 20 or 36.
    pub key_len: u8,
    /// Entries of `local_ts` in use.
    pub n_local_ts: u8,
    /// Entries of `remote_ts` in use.
    pub n_remote_ts: u8,
    /// Key ‖ salt ([RFC 4106 § 8.1]).
    ///
    /// [RFC 4106 § 8.1]: https://www.rfc-editor.org/rfc/rfc4106#section-8.1
    pub key: [u8; SA_KEY_MAX],
    /// Soft byte lifetime; 0: none.
    pub soft_bytes: u64,
    /// Hard byte lifetime; 0: none.
    pub hard_bytes: u64,
    /// Soft packet lifetime; 0: none.
    pub soft_packets: u64,
    /// Hard packet lifetime; 0: none.
    pub hard_packets: u64,
    /// BEET: the inner source address.
    pub beet_src: AddrKey,
    /// BEET: the inner destination address.
    pub beet_dst: AddrKey,
    /// Our side's protected prefixes.
    pub local_ts: [PrefixRecord; SA_TS_MAX],
    /// The peer's protected prefixes.
    pub remote_ts: [PrefixRecord; SA_TS_MAX],
}

impl Default for SaRecord {
    fn default() -> Self {
        SaRecord {
            seq: 0,
            generation: 0,
            spi: 0,
            state: SA_STATE_EMPTY,
            direction: 0,
            mode: 0,
            cipher: 0,
            flags: 0,
            key_len: 0,
            n_local_ts: 0,
            n_remote_ts: 0,
            key: [0; SA_KEY_MAX],
            soft_bytes: 0,
            hard_bytes: 0,
            soft_packets: 0,
            hard_packets: 0,
            beet_src: AddrKey::default(),
            beet_dst: AddrKey::default(),
            local_ts: [PrefixRecord::default(); SA_TS_MAX],
            remote_ts: [PrefixRecord::default(); SA_TS_MAX],
        }
    }
}

impl std::fmt::Debug for SaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("SaRecord")
            .field("generation", &self.generation)
            .field("spi", &format_args!("{:#010x}", u32::from_be(self.spi)))
            .field("state", &self.state)
            .field("direction", &self.direction)
            .field("mode", &self.mode)
            .field("cipher", &self.cipher)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// Where an SA's packets go now (`struct rg_endpoint`), a record of the mmapped `endpoints`
/// map, written under its sequence lock. MOBIKE moves an SA by rewriting this record alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointRecord {
    /// Sequence lock: odd while the record is being written.
    pub seq: u32,
    /// Grows with every write of the record.
    pub generation: u32,
    /// Outer source address, network byte order (IPv4 IPv4-mapped).
    pub local: [u8; 16],
    /// Outer destination address.
    pub remote: [u8; 16],
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`]; 0: no endpoint.
    pub family: u8,
    /// `EP_F_*`.
    pub flags: u8,
    /// UDP encapsulation: our port, network byte order.
    pub local_port: u16,
    /// UDP encapsulation: the peer's port, network byte order.
    pub remote_port: u16,
    /// Zero.
    pub pad: u16,
    /// The egress interface; 0: the gateway resolves it from the route table.
    pub egress_ifindex: u32,
    /// The next hop's MAC address (with `egress_ifindex`).
    pub next_hop_mac: [u8; 6],
    /// The egress interface's MAC address (with `egress_ifindex`).
    pub src_mac: [u8; 6],
}

/// The gateway's readiness marker (`struct rg_gateway_ready`), the one record of map
/// `gateway_ready`. The gateway pins that map itself, after every other map is pinned and its
/// workers run, and unpins it first when it stops; its presence in the pin directory is what
/// the control process waits for. See [`crate::ReadyMarker`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GatewayReady {
    /// [`ABI_VERSION`] of the gateway that pinned it.
    pub abi_version: u32,
    /// The gateway's process id (in its own PID namespace).
    pub pid: u32,
    /// Worker threads running.
    pub workers: u32,
    /// Zero.
    pub pad: u32,
}

// SAFETY: AddrKey is #[repr(C)], made only of integers and integer arrays, and has no implicit
// padding (size 20 = 16 + 1 + 3, asserted below), so every bit pattern is valid and every byte
// is initialised.
unsafe impl aya::Pod for AddrKey {}
// SAFETY: LocalAddr is #[repr(C)] with a single u32 field and no padding (size asserted below).
unsafe impl aya::Pod for LocalAddr {}
// SAFETY: SpiKey is #[repr(C)] with a single u32 field and no padding (size asserted below).
unsafe impl aya::Pod for SpiKey {}
// SAFETY: SpiValue is #[repr(C)] with integer fields and no implicit padding (size 8 = 4 + 2 +
// 2, asserted below), so every bit pattern is valid and every byte is initialised.
unsafe impl aya::Pod for SpiValue {}
// SAFETY: Iface is #[repr(C)] with two u32 fields and no padding (size asserted below).
unsafe impl aya::Pod for Iface {}
// SAFETY: PrefixValue is #[repr(C)] with a single u32 field (size asserted below).
unsafe impl aya::Pod for PrefixValue {}
// SAFETY: SaRecord is #[repr(C)], made of integers, integer arrays and Pod records, with no
// implicit padding (fields tile the 288 bytes, asserted below and by the header check).
unsafe impl aya::Pod for SaRecord {}
// SAFETY: EndpointRecord is #[repr(C)] of integers and integer arrays with no implicit
// padding (size 64, asserted below and by the header check).
unsafe impl aya::Pod for EndpointRecord {}
// SAFETY: GatewayReady is #[repr(C)] with four u32 fields and no padding (size 16, asserted
// below and by the header check).
unsafe impl aya::Pod for GatewayReady {}

const _: () = {
    assert!(size_of::<AddrKey>() == 20);
    assert!(align_of::<AddrKey>() == 1);
    assert!(offset_of!(AddrKey, addr) == 0);
    assert!(offset_of!(AddrKey, family) == 16);
    assert!(offset_of!(AddrKey, pad) == 17);

    assert!(size_of::<LocalAddr>() == 4);
    assert!(align_of::<LocalAddr>() == 4);
    assert!(offset_of!(LocalAddr, flags) == 0);

    assert!(size_of::<SpiKey>() == 4);
    assert!(align_of::<SpiKey>() == 4);
    assert!(offset_of!(SpiKey, spi) == 0);

    assert!(size_of::<SpiValue>() == 8);
    assert!(align_of::<SpiValue>() == 4);
    assert!(offset_of!(SpiValue, sa_slot) == 0);
    assert!(offset_of!(SpiValue, flags) == 4);
    assert!(offset_of!(SpiValue, pad) == 6);

    assert!(size_of::<Iface>() == 8);
    assert!(offset_of!(Iface, xsk_base) == 4);
    assert!(size_of::<LpmV4>() == 8);
    assert!(size_of::<LpmV6>() == 20);
    assert!(size_of::<aya::maps::lpm_trie::Key<[u8; 4]>>() == size_of::<LpmV4>());
    assert!(size_of::<aya::maps::lpm_trie::Key<[u8; 16]>>() == size_of::<LpmV6>());
    assert!(size_of::<PrefixValue>() == 4);
    assert!(size_of::<PrefixRecord>() == 20);
    assert!(align_of::<PrefixRecord>() == 1);

    assert!(size_of::<SaRecord>() == 288);
    assert!(align_of::<SaRecord>() == 8);
    assert!(offset_of!(SaRecord, spi) == 8);
    assert!(offset_of!(SaRecord, key) == 20);
    assert!(offset_of!(SaRecord, soft_bytes) == 56);
    assert!(offset_of!(SaRecord, beet_src) == 88);
    assert!(offset_of!(SaRecord, local_ts) == 128);
    assert!(offset_of!(SaRecord, remote_ts) == 208);
    // The sequence lock copies records as 32-bit words.
    assert!(size_of::<SaRecord>().is_multiple_of(8));

    assert!(size_of::<EndpointRecord>() == 64);
    assert!(align_of::<EndpointRecord>() == 4);
    assert!(offset_of!(EndpointRecord, family) == 40);
    assert!(offset_of!(EndpointRecord, local_port) == 42);
    assert!(offset_of!(EndpointRecord, egress_ifindex) == 48);
    assert!(offset_of!(EndpointRecord, next_hop_mac) == 52);
    assert!(offset_of!(EndpointRecord, src_mac) == 58);

    assert!(size_of::<GatewayReady>() == 16);
    assert!(align_of::<GatewayReady>() == 4);
    assert!(offset_of!(GatewayReady, abi_version) == 0);
    assert!(offset_of!(GatewayReady, pid) == 4);
    assert!(offset_of!(GatewayReady, workers) == 8);
    assert!(offset_of!(GatewayReady, pad) == 12);

    assert!(Counter::COUNT as u32 <= COUNTERS_MAX);
};

/// The index of a counter in the per-CPU `counters` map (`RG_CNT_*`).
///
/// Classes: every frame is counted in exactly one of [`Counter::Esp`] … [`Counter::Malformed`].
/// Outcomes: every ESP and ESP-in-UDP frame is counted in exactly one of
/// [`Counter::EspRedirected`] … [`Counter::EspNoXsk`]. Details are counted in addition to a
/// class.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Class: IP protocol 50 (`RG_CNT_ESP`).
    Esp = 0,
    /// Class: UDP 4500 whose first four payload bytes (the SPI) are not zero
    /// (`RG_CNT_ESP_IN_UDP`).
    EspInUdp = 1,
    /// Class: UDP 500, or UDP 4500 with the four-zero-byte non-ESP marker (`RG_CNT_IKE`).
    Ike = 2,
    /// Class: UDP 4500 carrying the one-byte 0xFF NAT keepalive, [RFC 3948 § 2.3]
    /// (`RG_CNT_NAT_KEEPALIVE`).
    ///
    /// [RFC 3948 § 2.3]: https://www.rfc-editor.org/rfc/rfc3948#section-2.3
    NatKeepalive = 3,
    /// Class: anything else, passed to the kernel (`RG_CNT_OTHER`).
    Other = 4,
    /// Class: truncated or inconsistent headers (`RG_CNT_MALFORMED`).
    Malformed = 5,
    /// Outcome: local address, known SPI, sent to the RX queue's AF_XDP socket
    /// (`RG_CNT_ESP_REDIRECTED`).
    EspRedirected = 6,
    /// Outcome: local address, unknown SPI, dropped (`RG_CNT_ESP_UNKNOWN_SPI`).
    EspUnknownSpi = 7,
    /// Outcome: not for a local address, passed (`RG_CNT_ESP_NOT_LOCAL`).
    EspNotLocal = 8,
    /// Outcome: known SPI but no AF_XDP socket in the RX queue's slot, passed
    /// (`RG_CNT_ESP_NO_XSK`).
    EspNoXsk = 9,
    /// Detail of [`Counter::Other`]: an IPv4 or IPv6 fragment (`RG_CNT_FRAGMENT`).
    Fragment = 10,
    /// Detail of [`Counter::Other`]: more than [`IPV6_EXT_MAX`] IPv6 extension headers
    /// (`RG_CNT_IPV6_EXT_LIMIT`).
    Ipv6ExtLimit = 11,
    /// Detail of [`Counter::Malformed`]: IPv4 IHL below 5, dropped (`RG_CNT_IPV4_BAD_IHL`).
    Ipv4BadIhl = 12,
    /// LAN outcome: to a protected prefix, sent to the RX queue's AF_XDP socket
    /// (`RG_CNT_LAN_REDIRECTED`).
    LanRedirected = 13,
    /// LAN outcome: to a protected prefix, no AF_XDP socket in the queue's slot, passed
    /// (`RG_CNT_LAN_NO_XSK`).
    LanNoXsk = 14,
    /// LAN outcome: not to a protected prefix (or not IP, or to a local address), passed
    /// (`RG_CNT_LAN_PASSED`).
    LanPassed = 15,
    /// LAN outcome: to a protected prefix with TTL or hop limit ≤ 1, passed so the kernel
    /// answers with ICMP time exceeded (`RG_CNT_LAN_TTL_EXPIRED`).
    LanTtlExpired = 16,
}

impl Counter {
    /// Number of counters in use (`RG_CNT_MAX`).
    pub const COUNT: usize = 17;

    /// Every counter, in index order.
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::Esp,
        Counter::EspInUdp,
        Counter::Ike,
        Counter::NatKeepalive,
        Counter::Other,
        Counter::Malformed,
        Counter::EspRedirected,
        Counter::EspUnknownSpi,
        Counter::EspNotLocal,
        Counter::EspNoXsk,
        Counter::Fragment,
        Counter::Ipv6ExtLimit,
        Counter::Ipv4BadIhl,
        Counter::LanRedirected,
        Counter::LanNoXsk,
        Counter::LanPassed,
        Counter::LanTtlExpired,
    ];

    /// The LAN outcomes: each frame on a LAN interface is counted in exactly one (and in no
    /// class).
    pub const LAN_OUTCOMES: [Counter; 4] = [
        Counter::LanRedirected,
        Counter::LanNoXsk,
        Counter::LanPassed,
        Counter::LanTtlExpired,
    ];

    /// The frame classes: each frame is counted in exactly one.
    pub const CLASSES: [Counter; 6] = [
        Counter::Esp,
        Counter::EspInUdp,
        Counter::Ike,
        Counter::NatKeepalive,
        Counter::Other,
        Counter::Malformed,
    ];

    /// The ESP outcomes: each ESP or ESP-in-UDP frame is counted in exactly one.
    pub const ESP_OUTCOMES: [Counter; 4] = [
        Counter::EspRedirected,
        Counter::EspUnknownSpi,
        Counter::EspNotLocal,
        Counter::EspNoXsk,
    ];

    /// The slot of this counter in the `counters` map.
    pub fn index(self) -> u32 {
        self as u32
    }

    /// A snake_case name for metrics and logs (`esp_in_udp`).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Esp => "esp",
            Counter::EspInUdp => "esp_in_udp",
            Counter::Ike => "ike",
            Counter::NatKeepalive => "nat_keepalive",
            Counter::Other => "other",
            Counter::Malformed => "malformed",
            Counter::EspRedirected => "esp_redirected",
            Counter::EspUnknownSpi => "esp_unknown_spi",
            Counter::EspNotLocal => "esp_not_local",
            Counter::EspNoXsk => "esp_no_xsk",
            Counter::Fragment => "fragment",
            Counter::Ipv6ExtLimit => "ipv6_ext_limit",
            Counter::Ipv4BadIhl => "ipv4_bad_ihl",
            Counter::LanRedirected => "lan_redirected",
            Counter::LanNoXsk => "lan_no_xsk",
            Counter::LanPassed => "lan_passed",
            Counter::LanTtlExpired => "lan_ttl_expired",
        }
    }

    /// The name of the counter's constant in `roamgate_abi.h` (`RG_CNT_ESP_IN_UDP`).
    pub fn c_name(self) -> String {
        format!("RG_CNT_{}", self.name().to_ascii_uppercase())
    }
}

/// The maps of the classifier: their pin names, kinds and record sizes.
pub mod maps {
    /// `local_addrs`: hash, [`super::AddrKey`] → [`super::LocalAddr`].
    pub const LOCAL_ADDRS: &str = "local_addrs";
    /// `spi_index`: hash, [`super::SpiKey`] → [`super::SpiValue`].
    pub const SPI_INDEX: &str = "spi_index";
    /// `xsk_map`: XSKMAP, `u32` RX queue index → AF_XDP socket.
    pub const XSK_MAP: &str = "xsk_map";
    /// `counters`: per-CPU array, `u32` [`super::Counter`] index → `u64`.
    pub const COUNTERS: &str = "counters";
    /// `ifaces`: hash, `u32` ifindex → [`super::Iface`].
    pub const IFACES: &str = "ifaces";
    /// `prefixes_v4`: LPM trie, `struct rg_lpm_v4` → [`super::PrefixValue`].
    pub const PREFIXES_V4: &str = "prefixes_v4";
    /// `prefixes_v6`: LPM trie, `struct rg_lpm_v6` → [`super::PrefixValue`].
    pub const PREFIXES_V6: &str = "prefixes_v6";
    /// `sa_table`: mmappable array, `u32` SA slot → [`super::SaRecord`].
    pub const SA_TABLE: &str = "sa_table";
    /// `endpoints`: mmappable array, `u32` SA slot → [`super::EndpointRecord`].
    pub const ENDPOINTS: &str = "endpoints";
    /// `sa_seq`: mmappable array, `u32` SA slot → `u64` persisted outbound sequence number.
    pub const SA_SEQ: &str = "sa_seq";
    /// `sa_dirty`: mmappable array, `u32` word → `u64` bits: the SA table's change bitmap
    /// (bit `slot % 64` of word `slot / 64`).
    pub const SA_DIRTY: &str = "sa_dirty";
    /// `gw_counters`: mmappable array of `u64`, worker `w`'s counter `c` at
    /// `w * GW_CNT_STRIDE + c`.
    pub const GW_COUNTERS: &str = "gw_counters";
    /// `gateway_ready`: array, `u32` 0 → [`super::GatewayReady`]: the readiness marker,
    /// pinned by the gateway itself, last (not at load; not in [`super::MAPS`]).
    pub const GATEWAY_READY: &str = "gateway_ready";
}

/// One map as the program defines it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapSpec {
    /// Name, also the pin file name.
    pub name: &'static str,
    /// The kernel's map type.
    pub map_type: MapType,
    /// Kind, for humans.
    pub kind: &'static str,
    /// Key record name and size.
    pub key: (&'static str, usize),
    /// Value record name and size.
    pub value: (&'static str, usize),
    /// `max_entries`.
    pub max_entries: u32,
}

/// Every map the classifier pins when it is loaded ([`READY_MAP`] is the one it does not).
pub const MAPS: [MapSpec; 12] = [
    MapSpec {
        name: maps::LOCAL_ADDRS,
        map_type: MapType::Hash,
        kind: "hash",
        key: ("struct rg_addr_key", size_of::<AddrKey>()),
        value: ("struct rg_local_addr", size_of::<LocalAddr>()),
        max_entries: LOCAL_ADDRS_MAX,
    },
    MapSpec {
        name: maps::SPI_INDEX,
        map_type: MapType::Hash,
        kind: "hash",
        key: ("struct rg_spi_key", size_of::<SpiKey>()),
        value: ("struct rg_spi_value", size_of::<SpiValue>()),
        max_entries: SPI_INDEX_MAX,
    },
    MapSpec {
        name: maps::XSK_MAP,
        map_type: MapType::XskMap,
        kind: "xskmap",
        key: ("__u32 rx queue", 4),
        value: ("__u32 socket fd", 4),
        max_entries: XSK_MAP_MAX,
    },
    MapSpec {
        name: maps::COUNTERS,
        map_type: MapType::PerCpuArray,
        kind: "percpu_array",
        key: ("__u32 RG_CNT_*", 4),
        value: ("__u64 per CPU", 8),
        max_entries: COUNTERS_MAX,
    },
    MapSpec {
        name: maps::IFACES,
        map_type: MapType::Hash,
        kind: "hash",
        key: ("__u32 ifindex", 4),
        value: ("struct rg_iface", size_of::<Iface>()),
        max_entries: IFACES_MAX,
    },
    MapSpec {
        name: maps::PREFIXES_V4,
        map_type: MapType::LpmTrie,
        kind: "lpm_trie",
        key: ("struct rg_lpm_v4", size_of::<LpmV4>()),
        value: ("struct rg_prefix_value", size_of::<PrefixValue>()),
        max_entries: PREFIXES_MAX,
    },
    MapSpec {
        name: maps::PREFIXES_V6,
        map_type: MapType::LpmTrie,
        kind: "lpm_trie",
        key: ("struct rg_lpm_v6", size_of::<LpmV6>()),
        value: ("struct rg_prefix_value", size_of::<PrefixValue>()),
        max_entries: PREFIXES_MAX,
    },
    MapSpec {
        name: maps::SA_TABLE,
        map_type: MapType::Array,
        kind: "array (mmapable)",
        key: ("__u32 sa_slot", 4),
        value: ("struct rg_sa", size_of::<SaRecord>()),
        max_entries: SA_MAX,
    },
    MapSpec {
        name: maps::ENDPOINTS,
        map_type: MapType::Array,
        kind: "array (mmapable)",
        key: ("__u32 sa_slot", 4),
        value: ("struct rg_endpoint", size_of::<EndpointRecord>()),
        max_entries: SA_MAX,
    },
    MapSpec {
        name: maps::SA_SEQ,
        map_type: MapType::Array,
        kind: "array (mmapable)",
        key: ("__u32 sa_slot", 4),
        value: ("__u64 next outbound sequence number", 8),
        max_entries: SA_MAX,
    },
    MapSpec {
        name: maps::SA_DIRTY,
        map_type: MapType::Array,
        kind: "array (mmapable)",
        key: ("__u32 word", 4),
        value: ("__u64 one bit per SA slot", 8),
        max_entries: SA_DIRTY_WORDS,
    },
    MapSpec {
        name: maps::GW_COUNTERS,
        map_type: MapType::Array,
        kind: "array (mmapable)",
        key: ("__u32 worker * RG_GW_CNT_STRIDE + counter", 4),
        value: ("__u64", 8),
        max_entries: GW_COUNTERS_MAX,
    },
];

/// The readiness marker `gateway_ready`: defined in the object like the others, but pinned by
/// the gateway at the end of its start ([`crate::ReadyMarker`]), not at load.
pub const READY_MAP: MapSpec = MapSpec {
    name: maps::GATEWAY_READY,
    map_type: MapType::Array,
    kind: "array (pinned last, by the gateway)",
    key: ("__u32 0", 4),
    value: ("struct rg_gateway_ready", size_of::<GatewayReady>()),
    max_entries: GATEWAY_READY_MAX,
};

/// Size of a field, from an accessor (`field_size(|r: &AddrKey| &r.addr)`).
const fn field_size<R, F>(_: fn(&R) -> &F) -> usize {
    size_of::<F>()
}

/// Appends one record's layout in the format of `bpf/host/abi_dump.c`.
macro_rules! record {
    ($out:expr, $c_name:literal, $ty:ty { $($field:ident),+ $(,)? }) => {{
        let _ = writeln!(
            $out,
            "struct {}: size {}, align {}",
            $c_name,
            size_of::<$ty>(),
            align_of::<$ty>()
        );
        $(
            let _ = writeln!(
                $out,
                "  {}: offset {}, size {}",
                stringify!($field),
                offset_of!($ty, $field),
                field_size(|r: &$ty| &r.$field)
            );
        )+
    }};
}

/// The records and constants of the ABI, one per line, in exactly the format the C compiler's
/// view of `roamgate_abi.h` is printed in (`bpf/host/abi_dump.c`), so the two compare equal.
pub fn layout() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "roamgate map ABI version {ABI_VERSION}");
    record!(out, "rg_addr_key", AddrKey { addr, family, pad });
    record!(out, "rg_local_addr", LocalAddr { flags });
    record!(out, "rg_spi_key", SpiKey { spi });
    record!(
        out,
        "rg_spi_value",
        SpiValue {
            sa_slot,
            flags,
            pad
        }
    );
    record!(out, "rg_iface", Iface { role, xsk_base });
    record!(out, "rg_lpm_v4", LpmV4 { prefixlen, addr });
    record!(out, "rg_lpm_v6", LpmV6 { prefixlen, addr });
    record!(out, "rg_prefix_value", PrefixValue { sa_slot });
    record!(
        out,
        "rg_prefix",
        PrefixRecord {
            addr,
            family,
            prefixlen,
            pad
        }
    );
    record!(
        out,
        "rg_sa",
        SaRecord {
            seq,
            generation,
            spi,
            state,
            direction,
            mode,
            cipher,
            flags,
            key_len,
            n_local_ts,
            n_remote_ts,
            key,
            soft_bytes,
            hard_bytes,
            soft_packets,
            hard_packets,
            beet_src,
            beet_dst,
            local_ts,
            remote_ts,
        }
    );
    record!(
        out,
        "rg_endpoint",
        EndpointRecord {
            seq,
            generation,
            local,
            remote,
            family,
            flags,
            local_port,
            remote_port,
            pad,
            egress_ifindex,
            next_hop_mac,
            src_mac,
        }
    );
    record!(
        out,
        "rg_gateway_ready",
        GatewayReady {
            abi_version,
            pid,
            workers,
            pad
        }
    );
    let consts: [(&str, u64); 32] = [
        ("RG_LOCAL_ADDRS_MAX", LOCAL_ADDRS_MAX.into()),
        ("RG_SPI_INDEX_MAX", SPI_INDEX_MAX.into()),
        ("RG_XSK_MAP_MAX", XSK_MAP_MAX.into()),
        ("RG_COUNTERS_MAX", COUNTERS_MAX.into()),
        ("RG_GATEWAY_READY_MAX", GATEWAY_READY_MAX.into()),
        ("RG_IFACES_MAX", IFACES_MAX.into()),
        ("RG_SA_MAX", SA_MAX.into()),
        ("RG_SA_DIRTY_WORDS", SA_DIRTY_WORDS.into()),
        ("RG_PREFIXES_MAX", PREFIXES_MAX.into()),
        ("RG_WORKERS_MAX", WORKERS_MAX.into()),
        ("RG_GW_CNT_STRIDE", GW_CNT_STRIDE.into()),
        ("RG_GW_COUNTERS_MAX", GW_COUNTERS_MAX.into()),
        ("RG_IKE_PORT", IKE_PORT.into()),
        ("RG_NATT_PORT", NATT_PORT.into()),
        ("RG_FAMILY_IPV4", FAMILY_IPV4.into()),
        ("RG_FAMILY_IPV6", FAMILY_IPV6.into()),
        ("RG_SPI_F_UDP_ENCAP", SPI_F_UDP_ENCAP.into()),
        ("RG_IPV6_EXT_MAX", IPV6_EXT_MAX.into()),
        ("RG_IFACE_ROLE_WAN", IFACE_ROLE_WAN.into()),
        ("RG_IFACE_ROLE_LAN", IFACE_ROLE_LAN.into()),
        ("RG_SA_STATE_EMPTY", SA_STATE_EMPTY.into()),
        ("RG_SA_STATE_ACTIVE", SA_STATE_ACTIVE.into()),
        ("RG_SA_DIR_IN", SA_DIR_IN.into()),
        ("RG_SA_DIR_OUT", SA_DIR_OUT.into()),
        ("RG_SA_MODE_TUNNEL", SA_MODE_TUNNEL.into()),
        ("RG_SA_MODE_BEET", SA_MODE_BEET.into()),
        ("RG_SA_CIPHER_AES128GCM16", SA_CIPHER_AES128GCM16.into()),
        ("RG_SA_CIPHER_AES256GCM16", SA_CIPHER_AES256GCM16.into()),
        ("RG_SA_F_ESN", SA_F_ESN.into()),
        ("RG_SA_KEY_MAX", SA_KEY_MAX as u64),
        ("RG_SA_TS_MAX", SA_TS_MAX as u64),
        ("RG_EP_F_UDP_ENCAP", EP_F_UDP_ENCAP.into()),
    ];
    for (name, value) in consts {
        let _ = writeln!(out, "const {name} = {value}");
    }
    for counter in Counter::ALL {
        let _ = writeln!(out, "const {} = {}", counter.c_name(), counter.index());
    }
    let _ = writeln!(out, "const RG_CNT_MAX = {}", Counter::COUNT);
    out
}

/// Describes the map ABI for operators (`roamgate map-abi`): every map with its key, value and
/// size, the pinning layout, then every record's size and field offsets and every constant.
pub fn describe() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "maps (pinned by name under the instance's pin directory, e.g. /sys/fs/bpf/roamgate/<instance>/<map>):"
    );
    for map in MAPS.iter().chain([&READY_MAP]) {
        let _ = writeln!(
            out,
            "map {}: {}, key {} ({} bytes), value {} ({} bytes), max_entries {}",
            map.name, map.kind, map.key.0, map.key.1, map.value.0, map.value.1, map.max_entries
        );
    }
    out.push_str(&layout());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// What the C compiler says about `bpf/roamgate_abi.h` (built and run by build.rs).
    const HEADER_LAYOUT: &str = include_str!(concat!(env!("OUT_DIR"), "/abi_layout.txt"));

    #[test]
    fn header_and_mirror_agree() {
        let mirror = layout();
        if HEADER_LAYOUT != mirror {
            let diff: Vec<String> = diff_lines(HEADER_LAYOUT, &mirror);
            panic!(
                "bpf/roamgate_abi.h and src/abi.rs disagree (- header, + mirror):\n{}",
                diff.join("\n")
            );
        }
    }

    #[test]
    fn header_records_have_no_gaps() {
        // The fields listed for each record must tile it exactly: no implicit padding in the
        // header, and no field of the header missing from the dump (and so from the check).
        let mut record: Option<(String, usize)> = None;
        let mut end = 0;
        let finish = |record: &Option<(String, usize)>, end: usize| {
            if let Some((name, size)) = record {
                assert_eq!(
                    end, *size,
                    "struct {name}: fields end at {end}, size is {size}"
                );
            }
        };
        for line in HEADER_LAYOUT.lines() {
            if let Some(rest) = line.strip_prefix("struct ") {
                finish(&record, end);
                let (name, rest) = rest.split_once(": size ").expect("record line");
                let size = rest.split(',').next().unwrap().parse().unwrap();
                record = Some((name.to_string(), size));
                end = 0;
            } else if let Some(rest) = line.strip_prefix("  ") {
                let (field, rest) = rest.split_once(": offset ").expect("field line");
                let (offset, size) = rest.split_once(", size ").expect("field line");
                let offset: usize = offset.parse().unwrap();
                let size: usize = size.parse().unwrap();
                assert_eq!(offset, end, "field {field} leaves a gap or overlaps");
                end = offset + size;
            } else {
                finish(&record, end);
                record = None;
            }
        }
        finish(&record, end);
    }

    #[test]
    fn the_check_notices_a_difference() {
        // A layout that differs in one offset must not compare equal, and the report names it.
        let tampered = HEADER_LAYOUT.replacen("family: offset 16", "family: offset 15", 1);
        assert_ne!(
            HEADER_LAYOUT, tampered,
            "the header dump lists rg_addr_key.family"
        );
        assert_eq!(
            diff_lines(HEADER_LAYOUT, &tampered),
            [
                "-   family: offset 16, size 1",
                "+   family: offset 15, size 1"
            ]
        );
    }

    #[test]
    fn counters_are_dense_and_named() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index() as usize, i);
        }
        assert!(describe().contains("map spi_index: hash, key struct rg_spi_key (4 bytes)"));
    }

    #[test]
    fn the_readiness_marker_is_described_but_not_pinned_at_load() {
        assert!(MAPS.iter().all(|m| m.name != maps::GATEWAY_READY));
        assert!(describe().contains(
            "map gateway_ready: array (pinned last, by the gateway), key __u32 0 (4 bytes), \
             value struct rg_gateway_ready (16 bytes), max_entries 1"
        ));
    }

    #[test]
    fn keys_are_in_network_byte_order() {
        let key = AddrKey::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(key.addr[10..], [0xff, 0xff, 192, 0, 2, 1]);
        assert_eq!(key.family, FAMILY_IPV4);
        let mapped = AddrKey::new(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()));
        assert_eq!(mapped.addr, key.addr);
        assert_ne!(
            mapped, key,
            "the family tag keeps IPv4 and IPv4-mapped IPv6 apart"
        );
        let v6 = AddrKey::new(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(v6.family, FAMILY_IPV6);

        let spi = SpiKey::new(0x1234_5678);
        // The key's bytes in memory are the SPI's wire bytes.
        assert_eq!(spi.spi.to_ne_bytes(), [0x12, 0x34, 0x56, 0x78]);
        assert_eq!(spi.spi(), 0x1234_5678);
    }

    fn diff_lines(header: &str, mirror: &str) -> Vec<String> {
        let h: Vec<&str> = header.lines().collect();
        let m: Vec<&str> = mirror.lines().collect();
        let mut out = Vec::new();
        for i in 0..h.len().max(m.len()) {
            match (h.get(i), m.get(i)) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => {
                    if let Some(a) = a {
                        out.push(format!("- {a}"));
                    }
                    if let Some(b) = b {
                        out.push(format!("+ {b}"));
                    }
                }
            }
        }
        out
    }
}
