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
pub const ABI_VERSION: u32 = 1;

/// `max_entries` of `local_addrs` (`RG_LOCAL_ADDRS_MAX`).
pub const LOCAL_ADDRS_MAX: u32 = 1024;
/// `max_entries` of `spi_index` (`RG_SPI_INDEX_MAX`).
pub const SPI_INDEX_MAX: u32 = 131_072;
/// `max_entries` of `xsk_map`: one slot per RX queue (`RG_XSK_MAP_MAX`).
pub const XSK_MAP_MAX: u32 = 256;
/// `max_entries` of `counters` (`RG_COUNTERS_MAX`); more than [`Counter::COUNT`] so that new
/// counters keep pinned maps compatible.
pub const COUNTERS_MAX: u32 = 64;

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
}

impl Counter {
    /// Number of counters in use (`RG_CNT_MAX`).
    pub const COUNT: usize = 13;

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

/// Every map of the classifier.
pub const MAPS: [MapSpec; 4] = [
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
];

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
    let consts: [(&str, u64); 10] = [
        ("RG_LOCAL_ADDRS_MAX", LOCAL_ADDRS_MAX.into()),
        ("RG_SPI_INDEX_MAX", SPI_INDEX_MAX.into()),
        ("RG_XSK_MAP_MAX", XSK_MAP_MAX.into()),
        ("RG_COUNTERS_MAX", COUNTERS_MAX.into()),
        ("RG_IKE_PORT", IKE_PORT.into()),
        ("RG_NATT_PORT", NATT_PORT.into()),
        ("RG_FAMILY_IPV4", FAMILY_IPV4.into()),
        ("RG_FAMILY_IPV6", FAMILY_IPV6.into()),
        ("RG_SPI_F_UDP_ENCAP", SPI_F_UDP_ENCAP.into()),
        ("RG_IPV6_EXT_MAX", IPV6_EXT_MAX.into()),
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
    for map in MAPS {
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
        let tampered = HEADER_LAYOUT.replace("family: offset 16", "family: offset 15");
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
