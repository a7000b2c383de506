//! The gateway's TOML configuration (`roamgate gateway --config FILE`): the AF_XDP and worker
//! settings, the interfaces with their roles, and static SAs (manual keying, like
//! `ip xfrm state add`). See docs/gateway.md for every key.
//!
//! Parsing checks everything before anything touches the kernel, and every error names the
//! file, the key and why — never a key's value.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use roamgate_ebpf::abi;
use roamgate_ebpf::{Cipher, Prefix};
use serde::Deserialize;

use crate::xsk::{BindMode, BusyPoll, MIN_BATCH, XskConfig};

/// A configuration error: which file, which key, why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {why}")]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// The key (`sa[0].key_in`), or `(file)` for the whole file.
    pub key: String,
    /// What is wrong.
    pub why: String,
}

/// Key material from the configuration; `Debug` shows its length only, and it is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Vec<u8>);

impl KeyMaterial {
    /// The bytes (key ‖ salt).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial({} bytes, redacted)", self.0.len())
    }
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: b is a valid, aligned &mut u8; the volatile write keeps the wipe from
            // being optimised away.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// An interface's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Uplink: ESP arrives and leaves here.
    Wan,
    /// Protected side: traffic to protected prefixes arrives here, decapsulated traffic
    /// leaves here.
    Lan,
}

/// How XDP is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) XDP, falling back to generic with a warning.
    #[default]
    Driver,
    /// Generic (skb) XDP.
    Generic,
}

/// One interface the gateway serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// The ESP mode of a static SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticMode {
    /// Tunnel mode.
    Tunnel,
    /// BEET with the inner addresses (ours, the peer's).
    Beet {
        /// Our inner address.
        local: IpAddr,
        /// The peer's inner address.
        remote: IpAddr,
    },
}

/// A static SA pair (inbound and outbound), as `[[sa]]` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticSa {
    /// A name for logs.
    pub name: String,
    /// The SPI we receive with.
    pub spi_in: u32,
    /// The SPI we send with.
    pub spi_out: u32,
    /// The AEAD.
    pub cipher: Cipher,
    /// Inbound key material (key ‖ salt).
    pub key_in: KeyMaterial,
    /// Outbound key material.
    pub key_out: KeyMaterial,
    /// Tunnel or BEET.
    pub mode: StaticMode,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Our outer address.
    pub local: IpAddr,
    /// The peer's outer address.
    pub remote: IpAddr,
    /// UDP encapsulation (our port, the peer's port).
    pub udp: Option<(u16, u16)>,
    /// Our protected prefixes.
    pub local_ts: Vec<Prefix>,
    /// The peer's protected prefixes.
    pub remote_ts: Vec<Prefix>,
}

impl StaticSa {
    /// The SA slot of the inbound SA of `[[sa]]` number `index`.
    pub fn inbound_slot(index: usize) -> u32 {
        2 * index as u32
    }
    /// The SA slot of the outbound SA of `[[sa]]` number `index`.
    pub fn outbound_slot(index: usize) -> u32 {
        2 * index as u32 + 1
    }
}

/// The whole configuration, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The bpffs directory of this instance's maps.
    pub pin_dir: PathBuf,
    /// How XDP is attached.
    pub xdp_mode: XdpMode,
    /// At most this many RX queues per interface (`None`: all).
    pub queues: Option<u32>,
    /// AF_XDP socket settings (one socket per queue and interface).
    pub xsk: XskConfig,
    /// Packets per batch.
    pub batch_size: u32,
    /// CPUs the workers are pinned to, in turn (`None`: CPU `i` for worker `i`, modulo).
    pub cpus: Option<Vec<usize>>,
    /// The interfaces.
    pub interfaces: Vec<Interface>,
    /// Static SAs.
    pub sas: Vec<StaticSa>,
    /// The exception path's TUN device (`None`: none; raw sockets only).
    pub tun_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    gateway: RawGateway,
    #[serde(default)]
    interface: Vec<RawInterface>,
    #[serde(default)]
    sa: Vec<RawSa>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    pin_dir: PathBuf,
    #[serde(default)]
    xdp_mode: XdpMode,
    queues: Option<u32>,
    frame_size: Option<u32>,
    frame_count: Option<u32>,
    ring_size: Option<u32>,
    batch_size: Option<u32>,
    busy_poll_usecs: Option<u32>,
    busy_poll_budget: Option<u16>,
    #[serde(default)]
    zero_copy: Option<bool>,
    cpus: Option<Vec<usize>>,
    tun: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSa {
    name: Option<String>,
    spi_in: i64,
    spi_out: i64,
    cipher: String,
    key_in: String,
    key_out: String,
    #[serde(default = "tunnel")]
    mode: String,
    #[serde(default)]
    esn: bool,
    local: String,
    remote: String,
    #[serde(default)]
    udp_encap: bool,
    local_port: Option<u16>,
    remote_port: Option<u16>,
    beet_local: Option<String>,
    beet_remote: Option<String>,
    local_ts: Vec<String>,
    remote_ts: Vec<String>,
}

fn tunnel() -> String {
    "tunnel".to_string()
}

impl GatewayConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            key: "(file)".into(),
            why: format!("cannot read it: {e}"),
        })?;
        GatewayConfig::parse(path, &text)
    }

    /// Parses and checks `text`, which came from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<GatewayConfig, ConfigError> {
        let err = |key: &str, why: String| ConfigError {
            file: file.to_path_buf(),
            key: key.to_string(),
            why,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // toml's message names the key and the line; it never echoes a value we keep
            // secret because no key string fails to parse as a string.
            let why = e.message().to_string();
            let key = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].lines().count().max(1);
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(file)".into());
            err(&key, why)
        })?;
        let g = raw.gateway;
        if !g.pin_dir.is_absolute() {
            return Err(err(
                "gateway.pin_dir",
                "must be an absolute path under /sys/fs/bpf".into(),
            ));
        }
        let ring = g.ring_size.unwrap_or(2048);
        let xsk = XskConfig {
            frame_size: g.frame_size.unwrap_or(2048),
            frame_count: g.frame_count.unwrap_or(4096),
            fill_size: ring,
            completion_size: ring,
            rx_size: ring,
            tx_size: ring,
            mode: match g.zero_copy {
                None => BindMode::Auto,
                Some(true) => BindMode::ZeroCopy,
                Some(false) => BindMode::Copy,
            },
            busy_poll: g.busy_poll_usecs.filter(|u| *u > 0).map(|usecs| BusyPoll {
                usecs,
                budget: g.busy_poll_budget.unwrap_or(64),
            }),
            ..XskConfig::default()
        };
        xsk.validate().map_err(|e| {
            err(
                "gateway (frame_size, frame_count, ring_size)",
                e.to_string(),
            )
        })?;
        let batch_size = g.batch_size.unwrap_or(MIN_BATCH);
        if batch_size < MIN_BATCH || batch_size > ring {
            return Err(err(
                "gateway.batch_size",
                format!("{batch_size} must lie between {MIN_BATCH} and ring_size ({ring})"),
            ));
        }
        if g.queues == Some(0) {
            return Err(err("gateway.queues", "must be at least 1".into()));
        }
        if g.cpus.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(err(
                "gateway.cpus",
                "an empty list pins nothing; leave it out".into(),
            ));
        }

        let mut interfaces = Vec::new();
        for (i, r) in raw.interface.iter().enumerate() {
            let key = format!("interface[{i}].name");
            if r.name.is_empty() || r.name.len() >= 16 {
                return Err(err(&key, "an interface name has 1 to 15 characters".into()));
            }
            if interfaces.iter().any(|x: &Interface| x.name == r.name) {
                return Err(err(&key, format!("{} is listed twice", r.name)));
            }
            interfaces.push(Interface {
                name: r.name.clone(),
                role: r.role,
            });
        }
        if !interfaces.iter().any(|i| i.role == Role::Wan) {
            return Err(err(
                "interface",
                "at least one interface needs role = \"wan\"".into(),
            ));
        }
        if !interfaces.iter().any(|i| i.role == Role::Lan) {
            return Err(err(
                "interface",
                "at least one interface needs role = \"lan\"".into(),
            ));
        }
        if interfaces.len() as u32 > abi::IFACES_MAX {
            return Err(err(
                "interface",
                format!("at most {} interfaces", abi::IFACES_MAX),
            ));
        }

        let mut sas = Vec::new();
        for (i, r) in raw.sa.iter().enumerate() {
            sas.push(parse_sa(i, r, &err)?);
        }
        if 2 * sas.len() as u32 > roamgate_ebpf::STATIC_SA_SLOTS {
            return Err(err(
                "sa",
                format!("at most {} static SAs", roamgate_ebpf::STATIC_SA_SLOTS / 2),
            ));
        }
        let mut spis = std::collections::HashSet::new();
        for (i, sa) in sas.iter().enumerate() {
            if !spis.insert(sa.spi_in) {
                return Err(err(
                    &format!("sa[{i}].spi_in"),
                    format!("SPI {:#x} is used by another SA", sa.spi_in),
                ));
            }
        }
        let tun_name = match g.tun.as_deref() {
            None => Some("roamgate0".to_string()),
            Some("") => None,
            Some(n) if n.len() < 16 => Some(n.to_string()),
            Some(_) => {
                return Err(err(
                    "gateway.tun",
                    "an interface name has at most 15 characters (\"\" for no TUN device)".into(),
                ));
            }
        };
        Ok(GatewayConfig {
            tun_name,
            pin_dir: g.pin_dir,
            xdp_mode: g.xdp_mode,
            queues: g.queues,
            xsk,
            batch_size,
            cpus: g.cpus,
            interfaces,
            sas,
        })
    }
}

fn parse_sa(
    i: usize,
    r: &RawSa,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<StaticSa, ConfigError> {
    let key = |k: &str| format!("sa[{i}].{k}");
    let spi = |k: &str, v: i64| -> Result<u32, ConfigError> {
        u32::try_from(v).ok().filter(|s| *s >= 256).ok_or_else(|| {
            err(
                &key(k),
                format!("{v} is not an SPI (256 to 2^32-1; 1-255 are reserved by RFC 4303 § 2.1)"),
            )
        })
    };
    let spi_in = spi("spi_in", r.spi_in)?;
    let spi_out = spi("spi_out", r.spi_out)?;
    let cipher = match r.cipher.as_str() {
        "aes128gcm16" => Cipher::Aes128Gcm16,
        "aes256gcm16" => Cipher::Aes256Gcm16,
        other => {
            return Err(err(
                &key("cipher"),
                format!("{other:?} is not supported; use \"aes128gcm16\" or \"aes256gcm16\""),
            ));
        }
    };
    let hex_key = |k: &str, text: &str| -> Result<KeyMaterial, ConfigError> {
        let t = text.strip_prefix("0x").unwrap_or(text);
        let want = cipher.keymat_len();
        if t.len() != 2 * want || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(
                &key(k),
                format!(
                    "must be {} hex digits ({want} bytes: the {}-bit key and the 4-byte salt); the value is not shown",
                    2 * want,
                    (want - 4) * 8
                ),
            ));
        }
        let bytes = (0..want)
            .map(|j| u8::from_str_radix(&t[2 * j..2 * j + 2], 16).unwrap_or(0))
            .collect();
        Ok(KeyMaterial(bytes))
    };
    let key_in = hex_key("key_in", &r.key_in)?;
    let key_out = hex_key("key_out", &r.key_out)?;
    let addr = |k: &str, v: &str| -> Result<IpAddr, ConfigError> {
        v.parse()
            .map_err(|_| err(&key(k), format!("{v:?} is not an IP address")))
    };
    let local = addr("local", &r.local)?;
    let remote = addr("remote", &r.remote)?;
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(err(
            &key("remote"),
            format!("{remote} and local {local} are of different address families"),
        ));
    }
    let mode = match r.mode.as_str() {
        "tunnel" => StaticMode::Tunnel,
        "beet" => {
            let (Some(l), Some(rm)) = (&r.beet_local, &r.beet_remote) else {
                return Err(err(
                    &key("mode"),
                    "BEET needs beet_local and beet_remote (the inner addresses)".into(),
                ));
            };
            let (l, rm) = (addr("beet_local", l)?, addr("beet_remote", rm)?);
            if l.is_ipv4() != rm.is_ipv4() {
                return Err(err(
                    &key("beet_remote"),
                    "inner addresses of different families".into(),
                ));
            }
            StaticMode::Beet {
                local: l,
                remote: rm,
            }
        }
        other => {
            return Err(err(
                &key("mode"),
                format!("{other:?} is not a mode; use \"tunnel\" or \"beet\""),
            ));
        }
    };
    let udp = if r.udp_encap {
        Some((
            r.local_port.unwrap_or(abi::NATT_PORT),
            r.remote_port.unwrap_or(abi::NATT_PORT),
        ))
    } else {
        if r.local_port.is_some() || r.remote_port.is_some() {
            return Err(err(
                &key("local_port"),
                "ports are for UDP encapsulation: set udp_encap = true".into(),
            ));
        }
        None
    };
    let prefixes = |k: &str, list: &[String]| -> Result<Vec<Prefix>, ConfigError> {
        if list.is_empty() {
            return Err(err(&key(k), "needs at least one prefix".into()));
        }
        if list.len() > abi::SA_TS_MAX {
            return Err(err(&key(k), format!("at most {} prefixes", abi::SA_TS_MAX)));
        }
        list.iter()
            .map(|p| p.parse().map_err(|why: String| err(&key(k), why)))
            .collect()
    };
    Ok(StaticSa {
        name: r.name.clone().unwrap_or_else(|| format!("sa{i}")),
        spi_in,
        spi_out,
        cipher,
        key_in,
        key_out,
        mode,
        esn: r.esn,
        local,
        remote,
        udp,
        local_ts: prefixes("local_ts", &r.local_ts)?,
        remote_ts: prefixes("remote_ts", &r.remote_ts)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY20: &str = "00112233445566778899aabbccddeeff01020304";

    fn good() -> String {
        format!(
            r#"
[gateway]
pin_dir = "/sys/fs/bpf/roamgate/a"
queues = 1
batch_size = 64
cpus = [0]

[[interface]]
name = "wan1"
role = "wan"

[[interface]]
name = "lan"
role = "lan"

[[sa]]
name = "to-b"
spi_in = 0x1001
spi_out = 0x2001
cipher = "aes128gcm16"
key_in = "{KEY20}"
key_out = "{KEY20}"
local = "198.18.1.1"
remote = "198.18.1.2"
udp_encap = true
local_ts = ["10.101.0.0/24", "fd00:65::/64"]
remote_ts = ["10.102.0.0/24", "fd00:66::/64"]
"#
        )
    }

    fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse(Path::new("gw.toml"), text)
    }

    #[test]
    fn a_good_file_parses() {
        let c = parse(&good()).unwrap();
        assert_eq!(c.interfaces.len(), 2);
        let sa = &c.sas[0];
        assert_eq!((sa.spi_in, sa.spi_out), (0x1001, 0x2001));
        assert_eq!(sa.udp, Some((4500, 4500)));
        assert_eq!(sa.key_in.bytes()[0..2], [0x00, 0x11]);
        assert_eq!(sa.remote_ts[1].to_string(), "fd00:66::/64");
        assert_eq!(c.batch_size, 64);
        assert_eq!(
            c.tun_name.as_deref(),
            Some("roamgate0"),
            "the TUN device is on by default"
        );
        let none = parse(&good().replacen("cpus = [0]", "cpus = [0]\ntun = \"\"", 1)).unwrap();
        assert_eq!(none.tun_name, None);
        let e = error_of("cpus = [0]", "cpus = [0]\ntun = \"a-very-long-tun-name\"");
        assert!(e.contains("gateway.tun"), "{e}");
        assert!(!format!("{c:?}").contains("8899aabb"), "Debug shows no key");
    }

    fn error_of(from: &str, to: &str) -> String {
        let text = good().replacen(from, to, 1);
        assert_ne!(text, good(), "{from} not in the sample");
        parse(&text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_file_the_key_and_why_without_the_key() {
        let e = error_of(KEY20, "0011");
        assert!(
            e.starts_with("gw.toml: sa[0].key_in: must be 40 hex digits"),
            "{e}"
        );
        assert!(!e.contains("0011"), "{e}");
        let e = error_of("aes128gcm16", "aes128cbc");
        assert!(e.contains("sa[0].cipher") && e.contains("aes128cbc"), "{e}");
        let e = error_of("spi_out = 0x2001", "spi_out = 7");
        assert!(e.contains("sa[0].spi_out") && e.contains("reserved"), "{e}");
        let e = error_of("\"10.101.0.0/24\"", "\"10.101.0.1/24\"");
        assert!(
            e.contains("sa[0].local_ts") && e.contains("host bits"),
            "{e}"
        );
        let e = error_of("remote = \"198.18.1.2\"", "remote = \"fd00::2\"");
        assert!(e.contains("different address families"), "{e}");
        let e = error_of("role = \"lan\"", "role = \"dmz\"");
        assert!(e.contains("gw.toml: line"), "{e}");
        let e = error_of("batch_size = 64", "batch_size = 16");
        assert!(e.contains("gateway.batch_size"), "{e}");
        let e = error_of("queues = 1", "queues = 1\nfrobnicate = 2");
        assert!(e.contains("frobnicate"), "{e}");
        let e = error_of(
            "name = \"lan\"\nrole = \"lan\"",
            "name = \"lan\"\nrole = \"wan\"",
        );
        assert!(e.contains("role = \"lan\""), "{e}");
        let e = error_of("udp_encap = true", "local_port = 4600");
        assert!(e.contains("udp_encap = true"), "{e}");
    }

    #[test]
    fn beet_needs_its_inner_addresses() {
        let e = error_of("udp_encap = true", "mode = \"beet\"");
        assert!(e.contains("beet_local"), "{e}");
        let text = good().replacen(
            "udp_encap = true",
            "mode = \"beet\"\nbeet_local = \"10.101.0.2\"\nbeet_remote = \"10.102.0.2\"",
            1,
        );
        let c = parse(&text).unwrap();
        assert!(matches!(c.sas[0].mode, StaticMode::Beet { .. }));
    }
}
