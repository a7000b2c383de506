//! Support for the lab tests: two gateways site to site (topology (b)), each running the data
//! plane in its own namespace with static SAs, and what the tests read back.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use roamgate_ebpf::WorkerCounters;
use roamgate_gateway::DropReason;
use roamgate_gateway::config::GatewayConfig;
use roamgate_gateway::dataplane::{Forward, Gateway};
use roamgate_lab::Netns;
use roamgate_lab::packet::{ALL_FRAMES, PacketSocket, SEND_ONLY};
use roamgate_lab::topology::{Options, SiteToSite};

pub const KEY_AB: &str = "000102030405060708090a0b0c0d0e0f10111213";
pub const KEY_BA: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3";
pub const SPI_AB: u32 = 0x0000_a001;
pub const SPI_BA: u32 = 0x0000_b001;
/// The outbound SA's slot of the first `[[sa]]` (its endpoint lives there too).
pub const OUT_SLOT: u32 = 1;

/// Fails the test, loudly and with the reason, unless it runs as root.
pub fn require_root() {
    if let Err(e) = roamgate_lab::require_root() {
        panic!("{e}");
    }
}

/// A pin directory of its own, removed (with its pinned maps) on drop.
pub struct PinDir(pub PathBuf);

impl PinDir {
    pub fn new(tag: &str) -> PinDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        PinDir(
            Path::new("/sys/fs/bpf/roamgate-test")
                .join(format!("{}-{n}-{tag}", std::process::id())),
        )
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = roamgate_ebpf::remove_pins(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// How the SA pair is encapsulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// Raw ESP (IP protocol 50) over IPv4, tunnel mode.
    Esp,
    /// ESP in UDP 4500 (RFC 3948) over IPv4, tunnel mode.
    Udp,
    /// Raw ESP over IPv6 (the uplinks' IPv6 addresses), tunnel mode.
    Ipv6Outer,
    /// Raw ESP over IPv4 in BEET mode between the two LAN hosts' IPv4 addresses.
    Beet,
}

/// The TOML of one gateway: host number `h` (1 = A, 2 = B).
pub fn config_text(pin_dir: &Path, h: u8, encap: Encap) -> String {
    let (me, peer) = (h, 3 - h);
    let (spi_in, spi_out, key_in, key_out) = if h == 1 {
        (SPI_BA, SPI_AB, KEY_BA, KEY_AB)
    } else {
        (SPI_AB, SPI_BA, KEY_AB, KEY_BA)
    };
    let lme = 100 + u32::from(me);
    let lpeer = 100 + u32::from(peer);
    let (xme, xpeer) = (0x64 + u32::from(me), 0x64 + u32::from(peer));
    let (local, remote) = match encap {
        Encap::Ipv6Outer => (format!("fd00:18:1::{me}"), format!("fd00:18:1::{peer}")),
        _ => (format!("198.18.1.{me}"), format!("198.18.1.{peer}")),
    };
    let mut extra = match encap {
        Encap::Udp => "udp_encap = true\n".to_string(),
        Encap::Beet => format!(
            "mode = \"beet\"\nbeet_local = \"10.{lme}.0.2\"\nbeet_remote = \"10.{lpeer}.0.2\"\n"
        ),
        _ => String::new(),
    };
    if encap == Encap::Beet {
        extra +=
            &format!("local_ts = [\"10.{lme}.0.2/32\"]\nremote_ts = [\"10.{lpeer}.0.2/32\"]\n");
    } else {
        extra += &format!(
            "local_ts = [\"10.{lme}.0.0/24\", \"fd00:{xme:x}::/64\"]\nremote_ts = [\"10.{lpeer}.0.0/24\", \"fd00:{xpeer:x}::/64\"]\n"
        );
    }
    format!(
        r#"[gateway]
pin_dir = "{pin}"
queues = 1
frame_count = 2048
ring_size = 512
batch_size = 64

[[interface]]
name = "wan1"
role = "wan"

[[interface]]
name = "wan2"
role = "wan"

[[interface]]
name = "lan"
role = "lan"

[[sa]]
name = "site{peer}"
spi_in = {spi_in}
spi_out = {spi_out}
cipher = "aes128gcm16"
key_in = "{key_in}"
key_out = "{key_out}"
local = "{local}"
remote = "{remote}"
{extra}"#,
        pin = pin_dir.display(),
    )
}

/// Two gateways running site to site over the lab.
pub struct Sites {
    // Drop order: gateways (detach XDP), pins, then the namespaces.
    pub a: Gateway,
    pub b: Gateway,
    pub pins_a: PinDir,
    pub pins_b: PinDir,
    pub lab: SiteToSite,
}

pub fn start_gateway(ns: &Netns, pins: &PinDir, h: u8, encap: Encap) -> Gateway {
    start_with(ns, &config_text(&pins.0, h, encap))
}

/// Starts a gateway in `ns` from the configuration `text`.
pub fn start_with(ns: &Netns, text: &str) -> Gateway {
    let config =
        GatewayConfig::parse(Path::new("lab.toml"), text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    ns.enter(|| Gateway::start(&config))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("starting the gateway in {}: {e}", ns.name()))
}

/// The site-to-site topology, ready for AF_XDP on veth.
pub fn topology() -> SiteToSite {
    topology_with_queues(1)
}

/// The site-to-site topology with `queues` TX/RX queues on every veth, ready for AF_XDP.
pub fn topology_with_queues(queues: u16) -> SiteToSite {
    require_root();
    let lab =
        SiteToSite::build_with_queues(Options::default(), queues).unwrap_or_else(|e| panic!("{e}"));
    // veth hands AF_XDP (copy mode) packets whose TCP/UDP checksum the sender left to the
    // "hardware" (CHECKSUM_PARTIAL); a real NIC's receive path never does. Make the LAN hosts
    // compute their checksums, as hosts behind a real NIC do.
    for host in [&lab.lana.ns, &lab.lanb.ns] {
        host.exec("ethtool", &["-K", "eth0", "tx", "off"])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    lab
}

pub fn sites(tag: &str, encap: Encap) -> Sites {
    let lab = topology();
    let pins_a = PinDir::new(&format!("{tag}-a"));
    let pins_b = PinDir::new(&format!("{tag}-b"));
    let a = start_gateway(&lab.gwa.ns, &pins_a, 1, encap);
    let b = start_gateway(&lab.gwb.ns, &pins_b, 2, encap);
    Sites {
        a,
        b,
        pins_a,
        pins_b,
        lab,
    }
}

/// A worker counter summed over workers.
pub fn drops(pin_dir: &Path, reason: DropReason) -> u64 {
    WorkerCounters::open(pin_dir).unwrap().total(reason as u32)
}

/// A forwarding counter summed over workers.
pub fn forwarded(pin_dir: &Path, f: Forward) -> u64 {
    WorkerCounters::open(pin_dir).unwrap().total(f.slot())
}

/// A counter of one worker (`slot`: a [`DropReason`] or a [`Forward::slot`]).
pub fn worker_counter(pin_dir: &Path, worker: u32, slot: u32) -> u64 {
    WorkerCounters::open(pin_dir).unwrap().load(worker, slot)
}

/// Every non-zero worker counter, for messages.
pub fn show(pin_dir: &Path) -> String {
    roamgate_gateway::dataplane::counter_summary(pin_dir).unwrap_or_else(|e| panic!("{e}"))
}

/// The MAC address of `dev` in `ns`.
pub fn mac_of(ns: &Netns, dev: &str) -> [u8; 6] {
    ns.mac(dev).unwrap_or_else(|e| panic!("{e}"))
}

/// An AF_PACKET socket bound to one interface, for sending whole crafted frames.
pub struct RawLink(PacketSocket);

impl RawLink {
    /// Opens it on `dev` inside `ns`.
    pub fn open(ns: &Netns, dev: &str) -> RawLink {
        RawLink(PacketSocket::open(ns, dev, SEND_ONLY).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Sends one frame (Ethernet header included).
    pub fn send(&self, frame: &[u8]) {
        self.0.send(frame).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A small deterministic generator for crafted frames.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Ethernet + IPv4 (`src` → `dst`, protocol `proto`) around `payload`.
pub fn ipv4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    roamgate_lab::packet::ipv4_frame((dst_mac, src_mac), (src, dst), proto, payload)
}

/// An AF_PACKET socket bound to one interface that records every frame sent or received
/// there, on a thread of its own, until [`PacketTap::stop`].
pub struct PacketTap {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Vec<u8>>>>,
}

impl PacketTap {
    /// Starts recording on `dev` inside `ns`.
    pub fn start(ns: &Netns, dev: &str) -> PacketTap {
        let socket = PacketSocket::open(ns, dev, ALL_FRAMES).unwrap_or_else(|e| panic!("{e}"));
        // Room for every frame of a test's stream, so the record is complete.
        socket
            .set_recv_buffer(64 << 20)
            .and_then(|()| socket.set_recv_timeout(std::time::Duration::from_millis(50)))
            .unwrap_or_else(|e| panic!("{e}"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut frames = Vec::new();
                let mut buf = vec![0u8; 65_536];
                loop {
                    if let Some((n, _)) = socket.recv(&mut buf) {
                        frames.push(buf[..n].to_vec());
                    } else if stop.load(std::sync::atomic::Ordering::Acquire) {
                        // Nothing queued any more (the timeout expired): the record is whole.
                        return frames;
                    }
                }
            })
        };
        PacketTap {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops recording and returns the frames, Ethernet header included, in arrival order.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for PacketTap {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Rewrites the endpoint of the outbound SA of the first `[[sa]]` in the pinned endpoint
/// table, as a MOBIKE UPDATE_SA_ADDRESSES would; returns the endpoint's new generation.
pub fn move_endpoint(pins: &Path, local: &str, remote: &str) -> u32 {
    set_endpoint(pins, OUT_SLOT, local, remote)
}

/// Writes the endpoint of SA slot `slot` (raw ESP, no next hop given); returns the
/// endpoint's new generation.
pub fn set_endpoint(pins: &Path, slot: u32, local: &str, remote: &str) -> u32 {
    let mut table = roamgate_ebpf::EndpointTable::open(pins).unwrap_or_else(|e| panic!("{e}"));
    table
        .update(
            slot,
            &roamgate_ebpf::Endpoint {
                local: local.parse().unwrap(),
                remote: remote.parse().unwrap(),
                udp: None,
                next_hop: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
}
