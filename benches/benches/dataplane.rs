//! The data plane against its anchors, per worker core, in one run on one lab.
//!
//! Three namespaces in a line: a traffic generator, the device under test (DUT) and a sink.
//!
//! ```text
//!  generator ── bfg0 ═══ bfl0 ── DUT ── bfw0 ═══ bfs0 ── sink
//!  10.250.1.2            10.250.1.1      10.250.2.1       10.250.2.2
//! ```
//!
//! CPU 0 runs the generator and the sink; CPU 1 runs everything the DUT does. The DUT's
//! receiving veth (`bfl0`) and the sink's (`bfs0`) use threaded NAPI, and their NAPI threads
//! are pinned (the DUT's to CPU 1, the sink's to CPU 0), so the receive work of each side
//! (XDP, the AF_XDP copy, the kernel's forwarding) is done on its own core and not in the
//! sender's softirq; the sink's NAPI thread runs `SCHED_FIFO`, so the generator only gets
//! what the sink leaves of CPU 0 and the sink is never the bottleneck. The DUT's CPU 1 time
//! is read from `/proc/stat` over each window; a rate "per worker core" is the forwarded rate
//! divided by that CPU's busy share.
//!
//! The generator sends one prebuilt frame as fast as one core can (AF_PACKET, `sendmmsg` of 64,
//! qdisc bypass). The sink counts and drops what the DUT sends in an nft `ingress` chain.
//! Rates are of generator frames (64 B and 1400 B, Ethernet header included, FCS not).
//!
//! The DUTs, one after another:
//! - `kernel`: plain IPv4 forwarding by the kernel, no IPsec (the anchor);
//! - `afxdp`: the AF_XDP I/O limit: the classifier steers the frames to an AF_XDP socket on
//!   `bfl0`, and one thread on CPU 1 copies each into a TX frame of `bfw0`'s socket, rewrites
//!   the MACs and sends it (the receive, copy and send a gateway worker does, without ESP);
//! - `roamgate esp` / `roamgate esp-in-udp`: the `roamgate gateway` data plane with one
//!   worker on CPU 1, a static AES-128-GCM-16 tunnel-mode SA, encapsulating toward the sink;
//! - `roamgate esp, decapsulating`: the same gateway the other way round (`bfl0` its WAN,
//!   `bfw0` its LAN): the generator encapsulates each frame as it sends it, with the next
//!   sequence number, and the sink receives the decapsulated frames (the sizes are theirs);
//! - `strongswan`: strongSwan 5.9.8's charon with kernel-libipsec (every thread pinned to
//!   CPU 1) in the DUT, the same proposal, tunnelling to a second charon in the sink
//!   namespace; the sink drops the ESP before that charon sees it. Overloaded, it forwards
//!   less than it can (receive livelock: the kernel's forwarding into the TUN device takes the
//!   core from charon), so its row is the best of the generator at full speed and at 25k, 50k,
//!   100k and 200k frames/s.
//!
//! Then the data plane's memory per CHILD_SA: the pinned maps' share (from the map ABI, checked
//! against the maps the kernel holds), and the gateway's own: the heap bytes that stay live
//! with 20 000 CHILD_SAs in the workers' snapshot, counted by this benchmark's global allocator
//! (the gateway runs in this process). Resident memory growth would not do: this process
//! freed memory in the forwarding part, and the allocator reuses it without growing.
//! The memory part fails (non-zero exit) when a figure is impossible: below the records each
//! CHILD_SA must hold, or absurdly large.
//!
//! Needs root, bpffs and strongSwan: `cargo bench -p roamgate-benches --bench dataplane`
//! (`-- forwarding` or `-- memory` for one part).
//! `ROAMGATE_BENCH_RUNS` windows of 1 s per DUT and size (default 5); medians.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use roamgate_benches::{Counting, Live, median};
use roamgate_ebpf::abi::{self, EndpointRecord, SaRecord, SpiValue};
use roamgate_ebpf::{
    AttachMode, Cipher, Classifier, Direction, Prefix, STATIC_SA_SLOTS, SaLimits, SaMode, SaSpec,
    SaTable, WorkerCounters,
};
use roamgate_gateway::DropReason;
use roamgate_gateway::config::GatewayConfig;
use roamgate_gateway::dataplane::registry::{InboundEntry, OutboundEntry};
use roamgate_gateway::dataplane::{Forward, Gateway};
use roamgate_gateway::esp::{HEADROOM, Lifetime, Mode, OutboundSa, OuterPolicy, SaConfig, SaPath};
use roamgate_gateway::xsk::{Desc, XskConfig, XskSocket};
use roamgate_lab::packet::{self, PacketSocket, SEND_ONLY};
use roamgate_lab::process::{pin_all_threads, pin_to_cpu};
use roamgate_lab::strongswan::{Charon, SiteEnd, TunnelParams, site_to_site};
use roamgate_lab::topology::{load_nft, sysctl};
use roamgate_lab::{Lab, Netns};

const GEN_CPU: usize = 0;
const DUT_CPU: usize = 1;
const WINDOW: Duration = Duration::from_secs(1);
const WARMUP: Duration = Duration::from_millis(500);
const SIZES: [usize; 2] = [64, 1400];
/// The SPI the `afxdp` frames carry (registered with the classifier).
const SPI: u32 = 0x0a0b_0c0d;
const KEY: &str = "000102030405060708090a0b0c0d0e0f10111213";
/// Offered rates (frames per second) strongSwan is measured at, besides full speed.
const STRONGSWAN_SWEEP: [f64; 4] = [25e3, 50e3, 100e3, 200e3];
/// The inbound SPI of the decapsulating gateway.
const SPI_IN: u32 = 45057;
/// CHILD_SAs installed to measure the memory per CHILD_SA.
const CHILD_SAS: u32 = 20_000;
/// The most heap a CHILD_SA may plausibly take: four pages, about eight times its two
/// entries ([`heap_floor`]: expanded keys, replay window, counters), which leaves room for the
/// selectors, the index and hash-map slots and the snapshot's copy of the maps. More means
/// the count holds something that is not the SAs' (a snapshot kept per change, a leak per
/// install).
const HEAP_PER_CHILD_SA_MAX: f64 = 16384.0;
/// The pinned maps with one value per SA slot.
const PER_SLOT_MAPS: [&str; 3] = [abi::maps::SA_TABLE, abi::maps::ENDPOINTS, abi::maps::SA_SEQ];

/// Every heap allocation of this process, the gateway's included, is counted.
#[global_allocator]
static HEAP: Counting = Counting::new();

/// What one window measured.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Frames per second the generator sent.
    offered: f64,
    /// Frames per second the sink received.
    forwarded: f64,
    /// The DUT core's busy share (0..1).
    busy: f64,
}

impl Sample {
    fn per_core(&self) -> f64 {
        self.forwarded / self.busy.max(0.01)
    }
}

struct Bench {
    generator: Netns,
    dut: Netns,
    sink: Netns,
    lab: Lab,
    dut_lan_mac: [u8; 6],
    dut_wan_mac: [u8; 6],
    sink_mac: [u8; 6],
    runs: usize,
}

fn mac_of(ns: &Netns, dev: &str) -> [u8; 6] {
    ns.mac(dev).unwrap_or_else(|e| panic!("{e}"))
}

fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Pins the threaded-NAPI kernel threads of device `dev` (named `napi/<dev>-<id>`) to `cpu`;
/// fails if there are none (then the device's receive work would run in the sender's
/// softirq, on the sender's core). With `first`, they also run before any ordinary thread
/// of that core (`SCHED_FIFO`): the sink must not lose frames to the generator beside it.
fn pin_napi(dev: &str, cpu: usize, first: bool) {
    let prefix = format!("napi/{dev}-");
    let mut found = 0;
    for entry in must(std::fs::read_dir("/proc")).flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(&prefix) {
            must(pin_to_cpu(pid, cpu));
            if first {
                let param = libc::sched_param { sched_priority: 50 };
                // SAFETY: param is a valid sched_param for the call.
                let rc = unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) };
                assert_eq!(
                    rc,
                    0,
                    "SCHED_FIFO for {comm}: {}",
                    std::io::Error::last_os_error()
                );
            }
            found += 1;
        }
    }
    assert!(found > 0, "no threaded NAPI thread for {dev}");
}

/// (busy, total) jiffies of `cpu` from /proc/stat.
fn cpu_time(cpu: usize) -> (u64, u64) {
    let stat = must(std::fs::read_to_string("/proc/stat"));
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("cpu{cpu} ")))
        .unwrap();
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = v[0] + v[1] + v[2] + v[5] + v[6];
    (busy, v.iter().sum())
}

/// An Ethernet + IPv4 frame of `len` bytes from `src` to `dst`, carrying `proto`
/// (`payload` in front of the filler: the UDP or ESP header).
fn ipv4_frame(
    dst_mac: [u8; 6],
    addrs: ([u8; 4], [u8; 4]),
    proto: u8,
    payload: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut body = payload.to_vec();
    body.resize(len - 34, 0x5a);
    packet::ipv4_frame((dst_mac, [0x02, 0, 0, 0, 0, 0x01]), addrs, proto, &body)
}

/// A UDP datagram (checksum 0: none, valid for IPv4) from the generator (or, with `far`, from
/// the network behind it) to the network behind the sink.
fn udp_frame(dst_mac: [u8; 6], len: usize, far: bool) -> Vec<u8> {
    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    let src = if far {
        [10, 250, 8, 2]
    } else {
        [10, 250, 1, 2]
    };
    ipv4_frame(dst_mac, (src, [10, 250, 9, 2]), 17, &udp, len)
}

/// An ESP-looking frame to the DUT's own address with [`SPI`], which the classifier steers to
/// the AF_XDP socket.
fn esp_frame(dst_mac: [u8; 6], len: usize) -> Vec<u8> {
    let mut esp = [0u8; 8];
    esp[0..4].copy_from_slice(&SPI.to_be_bytes());
    esp[4..8].copy_from_slice(&1u32.to_be_bytes());
    ipv4_frame(dst_mac, ([10, 250, 1, 2], [10, 250, 1, 1]), 50, &esp, len)
}

/// What the generator sends.
enum Source {
    /// One prebuilt frame, again and again.
    Fixed(Vec<u8>),
    /// ESP frames made as they are sent, each with the next sequence number.
    Esp(Box<EspSource>),
}

/// ESP toward the DUT: `inner` encapsulated with `sa` on `path`, behind `eth`.
struct EspSource {
    sa: OutboundSa,
    path: SaPath,
    eth: [u8; 14],
    inner: Vec<u8>,
    bufs: Vec<Vec<u8>>,
}

impl EspSource {
    /// Encapsulates the next 64 frames; returns where each lies in its buffer.
    fn fill(&mut self, spans: &mut [(usize, usize); 64]) {
        let start = 14 + HEADROOM;
        for (buf, span) in self.bufs.iter_mut().zip(spans.iter_mut()) {
            buf[start..start + self.inner.len()].copy_from_slice(&self.inner);
            let e = self
                .sa
                .encapsulate(&self.path, buf, start, self.inner.len())
                .unwrap_or_else(|e| panic!("encapsulating: {e:?}"));
            buf[e.start - 14..e.start].copy_from_slice(&self.eth);
            *span = (e.start - 14, e.len + 14);
        }
    }
}

/// Sends frames from `source` in batches of 64 until `stop`, counting into `sent`; with
/// `pps`, no faster than that many frames per second.
fn generate(
    socket: &PacketSocket,
    source: &mut Source,
    pps: Option<f64>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) {
    let mut spans = [(0usize, 0usize); 64];
    let start = Instant::now();
    let mut batches = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(pps) = pps {
            let due = Duration::from_secs_f64((batches * 64) as f64 / pps);
            if start.elapsed() < due {
                std::hint::spin_loop();
                continue;
            }
        }
        batches += 1;
        let n = match source {
            Source::Fixed(frame) => socket.send_many(&[frame.as_slice(); 64]),
            Source::Esp(esp) => {
                esp.fill(&mut spans);
                let mut frames = [&[][..]; 64];
                for ((f, buf), (at, len)) in frames.iter_mut().zip(&esp.bufs).zip(spans) {
                    *f = &buf[at..at + len];
                }
                socket.send_many(&frames)
            }
        };
        sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}

const SINK_NFT: &str = r#"table netdev rgbench {
    counter delivered { }
    chain ingress {
        type filter hook ingress device "bfs0" priority 0; policy accept;
        ip daddr 10.250.9.0/24 counter name "delivered" drop
        ip protocol esp counter name "delivered" drop
        udp dport 4500 @th,64,32 != 0 counter name "delivered" drop
    }
}
"#;

/// Frames the sink has counted and dropped.
fn sink_count(sink: &Netns) -> u64 {
    let text = must(sink.exec_text(
        "nft",
        &["list", "counter", "netdev", "rgbench", "delivered"],
    ));
    text.split("packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {text}"))
}

impl Bench {
    fn build(runs: usize) -> Bench {
        must(roamgate_lab::require_root());
        let lab = must(Lab::new("bench-dataplane"));
        let generator = must(Netns::new("bfgen"));
        let dut = must(Netns::new("bfdut"));
        let sink = must(Netns::new("bfsink"));
        must(roamgate_lab::veth(&generator, "bfg0", &dut, "bfl0"));
        must(roamgate_lab::veth(&dut, "bfw0", &sink, "bfs0"));
        for (ns, dev, addr) in [
            (&generator, "bfg0", "10.250.1.2/24"),
            (&dut, "bfl0", "10.250.1.1/24"),
            (&dut, "bfw0", "10.250.2.1/24"),
            (&sink, "bfs0", "10.250.2.2/24"),
        ] {
            must(ns.ip(&["addr", "add", addr, "dev", dev]));
            must(ns.ip(&["link", "set", dev, "up"]));
            // No TSO on the sender (or veth skips NAPI), GRO on the receiver (veth's NAPI).
            must(ns.exec(
                "ethtool",
                &[
                    "-K", dev, "tso", "off", "gso", "off", "gro", "on", "tx", "off",
                ],
            ));
        }
        for (ns, dev) in [(&dut, "bfl0"), (&sink, "bfs0")] {
            must(ns.exec(
                "sh",
                &["-c", &format!("echo 1 > /sys/class/net/{dev}/threaded")],
            ));
        }
        must(load_nft(&sink, SINK_NFT));
        // strongSwan's peer routes its end of the tunnel from an address of its own inside
        // the far network.
        must(sink.ip(&["addr", "add", "10.250.9.1/32", "dev", "lo"]));
        let sink_mac = mac_of(&sink, "bfs0");
        // The next hops the DUTs need, resolved up front.
        must(dut.ip(&[
            "neigh",
            "replace",
            "10.250.2.2",
            "lladdr",
            &roamgate_lab::packet::mac_text(sink_mac),
            "dev",
            "bfw0",
            "nud",
            "permanent",
        ]));
        Bench {
            dut_lan_mac: mac_of(&dut, "bfl0"),
            dut_wan_mac: mac_of(&dut, "bfw0"),
            sink_mac,
            generator,
            dut,
            sink,
            lab,
            runs,
        }
    }

    /// Runs the generator with `source` (at most `pps` frames per second) for a warm-up and
    /// then `self.runs` windows.
    fn measure_at(&self, mut source: Source, pps: Option<f64>) -> Vec<Sample> {
        pin_napi("bfl0", DUT_CPU, false);
        pin_napi("bfs0", GEN_CPU, true);
        let stop = AtomicBool::new(false);
        let sent = AtomicU64::new(0);
        let socket = must(PacketSocket::open(&self.generator, "bfg0", SEND_ONLY));
        must(socket.bypass_qdisc());
        let mut samples = Vec::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                must(pin_to_cpu(0, GEN_CPU));
                generate(&socket, &mut source, pps, &stop, &sent);
            });
            std::thread::sleep(WARMUP);
            for _ in 0..self.runs {
                let (s0, c0, b0, t0) = (
                    sent.load(Ordering::Relaxed),
                    sink_count(&self.sink),
                    cpu_time(DUT_CPU),
                    Instant::now(),
                );
                std::thread::sleep(WINDOW);
                let (s1, c1, b1, secs) = (
                    sent.load(Ordering::Relaxed),
                    sink_count(&self.sink),
                    cpu_time(DUT_CPU),
                    t0.elapsed().as_secs_f64(),
                );
                samples.push(Sample {
                    offered: (s1 - s0) as f64 / secs,
                    forwarded: (c1 - c0) as f64 / secs,
                    busy: (b1.0 - b0.0) as f64 / (b1.1 - b0.1).max(1) as f64,
                });
            }
            stop.store(true, Ordering::Relaxed);
        });
        // Let queues drain before the next DUT.
        std::thread::sleep(Duration::from_millis(200));
        samples
    }

    /// [`Bench::measure_at`] with the generator at full speed.
    fn measure(&self, source: Source) -> Vec<Sample> {
        self.measure_at(source, None)
    }

    fn kernel(&self, len: usize) -> Vec<Sample> {
        must(sysctl(&self.dut, "net.ipv4.ip_forward", "1"));
        must(
            self.dut
                .ip(&["route", "add", "10.250.9.0/24", "via", "10.250.2.2"]),
        );
        let samples = self.measure(Source::Fixed(udp_frame(self.dut_lan_mac, len, false)));
        must(
            self.dut
                .ip(&["route", "del", "10.250.9.0/24", "via", "10.250.2.2"]),
        );
        must(sysctl(&self.dut, "net.ipv4.ip_forward", "0"));
        samples
    }

    fn afxdp(&self, len: usize) -> Vec<Sample> {
        let pins = pin_dir("afxdp");
        let mut classifier = must(Classifier::load(&pins));
        let config = XskConfig::default();
        let (mut lan, mut wan) = must(self.dut.enter(|| {
            must(classifier.attach("bfl0", AttachMode::Driver));
            (
                must(XskSocket::open("bfl0", 0, &config)),
                must(XskSocket::open("bfw0", 0, &config)),
            )
        }));
        must(classifier.add_local_addr(std::net::Ipv4Addr::new(10, 250, 1, 1).into()));
        must(classifier.insert_spi(SPI, SpiValue::new(1, 0)));
        must(classifier.register_xsk(0, lan.as_raw_fd()));
        let stop = AtomicBool::new(false);
        let (sink_mac, wan_mac) = (self.sink_mac, self.dut_wan_mac);
        let samples = std::thread::scope(|s| {
            s.spawn(|| {
                must(pin_to_cpu(0, DUT_CPU));
                forward(&mut lan, &mut wan, sink_mac, wan_mac, &stop);
            });
            let samples = self.measure(Source::Fixed(esp_frame(self.dut_lan_mac, len)));
            stop.store(true, Ordering::Relaxed);
            samples
        });
        drop((lan, wan));
        drop(classifier);
        remove_pins(&pins);
        samples
    }

    fn roamgate(&self, len: usize, udp_encap: bool) -> Vec<Sample> {
        let pins = pin_dir(if udp_encap { "udp" } else { "esp" });
        let config = gateway_config(
            &pins,
            ("bfw0", "bfl0"),
            ("10.250.2.1", "10.250.2.2"),
            ("10.250.1.0/24", "10.250.9.0/24"),
            udp_encap,
        );
        let gateway = must(must(self.dut.enter(|| Gateway::start(&config))));
        let samples = self.measure(Source::Fixed(udp_frame(self.dut_lan_mac, len, false)));
        drop(gateway);
        remove_pins(&pins);
        samples
    }

    /// The gateway decapsulating: ESP from the generator's side (`bfl0` is its WAN), the
    /// inner packets forwarded to the network behind the sink (`bfw0` is its LAN). `len` is
    /// the decapsulated frame's length.
    fn roamgate_decap(&self, len: usize) -> Vec<Sample> {
        let pins = pin_dir("decap");
        must(
            self.dut
                .ip(&["route", "add", "10.250.9.0/24", "via", "10.250.2.2"]),
        );
        let config = gateway_config(
            &pins,
            ("bfl0", "bfw0"),
            ("10.250.1.1", "10.250.1.2"),
            ("10.250.9.0/24", "10.250.8.0/24"),
            false,
        );
        let gateway = must(must(self.dut.enter(|| Gateway::start(&config))));
        let keymat: Vec<u8> = (0..KEY.len() / 2)
            .map(|i| u8::from_str_radix(&KEY[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let sa = must(OutboundSa::new(
            &SaConfig {
                spi: SPI_IN,
                keymat: &keymat,
                mode: Mode::Tunnel,
                esn: false,
                lifetime: Lifetime::UNLIMITED,
            },
            OuterPolicy::default(),
        ));
        let mut eth = [0u8; 14];
        eth[..6].copy_from_slice(&self.dut_lan_mac);
        eth[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        eth[12..].copy_from_slice(&0x0800u16.to_be_bytes());
        let path = must(SaPath::new(
            std::net::Ipv4Addr::new(10, 250, 1, 2).into(),
            std::net::Ipv4Addr::new(10, 250, 1, 1).into(),
            None,
        ));
        let source = EspSource {
            sa,
            path,
            eth,
            inner: udp_frame(self.dut_lan_mac, len, true)[14..].to_vec(),
            bufs: vec![vec![0u8; 2048]; 64],
        };
        let samples = self.measure(Source::Esp(Box::new(source)));
        let counters = must(WorkerCounters::open(&pins));
        let (decapsulated, replays) = (
            counters.total(Forward::Decapsulated.slot()),
            counters.total(DropReason::Replay as u32)
                + counters.total(DropReason::ReplayTooOld as u32),
        );
        assert!(
            decapsulated > 0 && replays == 0,
            "decapsulated {decapsulated}, replays {replays}: {}",
            must(roamgate_gateway::dataplane::counter_summary(&pins))
        );
        drop(gateway);
        must(
            self.dut
                .ip(&["route", "del", "10.250.9.0/24", "via", "10.250.2.2"]),
        );
        remove_pins(&pins);
        samples
    }

    /// The gateway's own memory per CHILD_SA: the heap it holds (expanded keys, replay
    /// windows, the sync thread's tables, the workers' snapshot) before and after `n`
    /// CHILD_SAs (two slots each, a /32 prefix per outbound SA) are in the workers' snapshot,
    /// as this process's counting allocator sees it. The pinned maps are counted apart (they
    /// are allocated up front for every slot); they are checked here against the kernel's
    /// view while the gateway holds them. Fails when a figure is impossible.
    fn memory_per_child_sa(&self, n: u32) -> Result<MemorySample, String> {
        let pins = pin_dir("memory");
        let config = gateway_config(
            &pins,
            ("bfw0", "bfl0"),
            ("10.250.2.1", "10.250.2.2"),
            ("10.250.1.0/24", "10.250.9.0/24"),
            false,
        );
        let gateway = must(must(self.dut.enter(|| Gateway::start(&config))));
        let settled = |want: usize| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while gateway.sa_count() != (want, want) {
                assert!(
                    Instant::now() < deadline,
                    "SAs in the snapshot: {:?}",
                    gateway.sa_count()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        settled(1);
        // Opened before the first reading: the table's own allocations are the benchmark's.
        let mut table = must(SaTable::open(&pins));
        let before = heap_at_rest();
        let key = [0x5au8; 20];
        for i in 0..n {
            let remote = [must(Prefix::new(
                std::net::Ipv4Addr::from(0x0a80_0000 + i).into(),
                32,
            ))];
            for (slot, spi, direction) in [
                (STATIC_SA_SLOTS + 2 * i, 0x0100_0000 + i, Direction::Inbound),
                (
                    STATIC_SA_SLOTS + 2 * i + 1,
                    0x0200_0000 + i,
                    Direction::Outbound,
                ),
            ] {
                let spec = SaSpec {
                    spi,
                    direction,
                    mode: SaMode::Tunnel,
                    cipher: Cipher::Aes128Gcm16,
                    esn: false,
                    key: &key,
                    limits: SaLimits::default(),
                    local_ts: &[],
                    remote_ts: &remote,
                };
                must(table.install(slot, &spec));
            }
        }
        settled(n as usize + 1);
        let after = heap_at_rest();
        let pinned = check_pinned(&pins, n);
        drop(gateway);
        drop(table);
        remove_pins(&pins);
        let sample = MemorySample {
            heap_bytes: (after.bytes as f64 - before.bytes as f64) / f64::from(n),
            heap_blocks: (after.blocks as f64 - before.blocks as f64) / f64::from(n),
            pinned: pinned?,
        };
        check_heap(&sample)?;
        Ok(sample)
    }

    fn strongswan(&self, len: usize) -> Vec<Sample> {
        must(sysctl(&self.dut, "net.ipv4.ip_forward", "1"));
        let params = TunnelParams {
            mobike: false,
            dpd_delay: Duration::ZERO,
            ..TunnelParams::default()
        };
        let dut_end = SiteEnd {
            addr: "10.250.2.1".into(),
            id: "dut.roamgate.test".into(),
            ts: "10.250.1.0/24".into(),
        };
        let sink_end = SiteEnd {
            addr: "10.250.2.2".into(),
            id: "sink.roamgate.test".into(),
            ts: "10.250.9.0/24".into(),
        };
        let peer = must(Charon::start(
            &self.lab,
            &self.sink,
            "sink",
            &site_to_site(&params, &sink_end, &dut_end, false),
        ));
        let charon = must(Charon::start(
            &self.lab,
            &self.dut,
            "dut",
            &site_to_site(&params, &dut_end, &sink_end, true),
        ));
        must(charon.wait_established("site", "net", Duration::from_secs(20)));
        must(pin_all_threads(peer.pid(), GEN_CPU));
        must(pin_all_threads(charon.pid(), DUT_CPU));
        // Overloaded, kernel-libipsec forwards less than it can (the kernel's forwarding into
        // the TUN device, and its drops there, take the core from charon): its figure is the
        // best of a sweep of offered rates.
        let frame = udp_frame(self.dut_lan_mac, len, false);
        let forwarded = |v: &Vec<Sample>| median_of(v, |s| s.forwarded);
        let samples = STRONGSWAN_SWEEP
            .into_iter()
            .map(Some)
            .chain([None])
            .map(|pps| self.measure_at(Source::Fixed(frame.clone()), pps))
            .max_by(|a, b| forwarded(a).total_cmp(&forwarded(b)))
            .unwrap();
        let sas = must(charon.list_sas());
        assert!(
            sas.iter().any(|sa| sa
                .children
                .iter()
                .any(|c| c.algorithms.contains("AES_GCM_16-128"))),
            "strongSwan's CHILD_SA is not AES-GCM-16-128: {sas:?}"
        );
        drop((charon, peer));
        must(sysctl(&self.dut, "net.ipv4.ip_forward", "0"));
        samples
    }
}

/// The configuration of a gateway with one worker on the DUT core, WAN and LAN interfaces
/// `wan` and `lan`, and one static AES-128-GCM-16 SA from `local` to `remote` protecting
/// `local_ts` ↔ `remote_ts` (inbound SPI [`SPI_IN`]).
fn gateway_config(
    pins: &Path,
    (wan, lan): (&str, &str),
    (local, remote): (&str, &str),
    (local_ts, remote_ts): (&str, &str),
    udp_encap: bool,
) -> GatewayConfig {
    let text = format!(
        r#"[gateway]
pin_dir = "{pins}"
queues = 1
cpus = [{DUT_CPU}]
tun = ""

[[interface]]
name = "{wan}"
role = "wan"

[[interface]]
name = "{lan}"
role = "lan"

[[sa]]
name = "bench"
spi_in = {SPI_IN}
spi_out = 40961
cipher = "aes128gcm16"
key_in = "{KEY}"
key_out = "{KEY}"
local = "{local}"
remote = "{remote}"
local_ts = ["{local_ts}"]
remote_ts = ["{remote_ts}"]
udp_encap = {udp_encap}
"#,
        pins = pins.display()
    );
    must(GatewayConfig::parse(Path::new("bench.toml"), &text))
}

/// The AF_XDP I/O limit: every frame received on `lan` is copied into a TX frame of `wan`,
/// its MACs rewritten, and sent, until `stop`.
fn forward(
    lan: &mut XskSocket,
    wan: &mut XskSocket,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    stop: &AtomicBool,
) {
    let mut rx = [Desc::default(); 64];
    let mut tx = Vec::with_capacity(64);
    while !stop.load(Ordering::Relaxed) {
        let n = lan.rx_batch(&mut rx);
        for d in &rx[..n] {
            let Some(addr) = wan.alloc() else {
                break;
            };
            let out = Desc {
                addr,
                len: d.len,
                options: 0,
            };
            if let (Some(src), Some(dst)) = (lan.frame(d), wan.frame_mut(&out)) {
                dst.copy_from_slice(src);
                dst[..6].copy_from_slice(&dst_mac);
                dst[6..12].copy_from_slice(&src_mac);
                tx.push(out);
            } else {
                wan.release(&[out]);
            }
        }
        lan.release(&rx[..n]);
        lan.refill();
        let queued = wan.tx_batch(&tx);
        wan.release(&tx[queued..]);
        tx.clear();
        wan.complete();
    }
}

fn pin_dir(tag: &str) -> PathBuf {
    PathBuf::from("/sys/fs/bpf/roamgate-test")
        .join(format!("{}-bench-dataplane-{tag}", std::process::id()))
}

fn remove_pins(pins: &Path) {
    let _ = roamgate_ebpf::remove_pins(pins);
    if let Some(parent) = pins.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}

/// What one measurement of the memory per CHILD_SA found.
#[derive(Clone, Copy, Debug)]
struct MemorySample {
    /// Heap bytes the gateway holds per CHILD_SA.
    heap_bytes: f64,
    /// Heap blocks the gateway holds per CHILD_SA.
    heap_blocks: f64,
    /// The per-slot pinned maps as the kernel holds them.
    pinned: PinnedMaps,
}

/// The per-slot pinned maps ([`PER_SLOT_MAPS`]) as the kernel reports them.
#[derive(Clone, Copy, Debug)]
struct PinnedMaps {
    /// Bytes per CHILD_SA: two slots of each map's value, 8-byte aligned as the kernel lays
    /// out array elements.
    per_child_sa: usize,
    /// Slots in each map.
    slots: usize,
    /// What the kernel charges for the three maps (`memlock`).
    memlock: usize,
}

/// The heap at rest: the smallest of ten readings 20 ms apart, after a pause, so that what a
/// thread allocates and frees at once (a worker's poll list, a netlink read) is not counted,
/// nor a snapshot a worker has not yet let go of (workers look again every 10 ms at most).
fn heap_at_rest() -> Live {
    std::thread::sleep(Duration::from_millis(200));
    (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            HEAP.live()
        })
        .min_by_key(|l| l.bytes)
        .unwrap()
}

/// The pinned-map bytes per CHILD_SA the map ABI gives: two slots of each per-slot value.
fn abi_pinned_per_child_sa() -> usize {
    2 * PER_SLOT_MAPS
        .iter()
        .map(|m| abi_value_size(m))
        .sum::<usize>()
}

/// The value size of map `name` in the map ABI.
fn abi_value_size(name: &str) -> usize {
    abi::MAPS
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no map {name} in the map ABI"))
        .value
        .1
}

/// Checks the pinned-map figure against the maps pinned in `pins`: each per-slot map's value
/// size is the ABI's, the three have the same number of slots and room for `n` CHILD_SAs
/// above the static ones, and the kernel charges at least a value per slot for each; the
/// figure the kernel's value sizes give must be the ABI's.
fn check_pinned(pins: &Path, n: u32) -> Result<PinnedMaps, String> {
    let mut per_slot = 0;
    let mut memlock = 0;
    let mut slots = None;
    for name in PER_SLOT_MAPS {
        let path = pins.join(name);
        let map = kernel_map(&path)?;
        let want = abi_value_size(name);
        if map.value_size != want {
            return Err(format!(
                "the pinned map {} has {} B values, the map ABI {want} B: the pinned-map figure \
                 per CHILD_SA would be wrong",
                path.display(),
                map.value_size
            ));
        }
        let stride = map.value_size.div_ceil(8) * 8;
        if map.memlock < stride * map.max_entries {
            return Err(format!(
                "the kernel charges {} B for {}, less than its {} slots of {stride} B: \
                 impossible",
                map.memlock,
                path.display(),
                map.max_entries
            ));
        }
        if *slots.get_or_insert(map.max_entries) != map.max_entries {
            return Err(format!(
                "{} has {} slots, the SA table {slots:?}: the per-slot maps disagree",
                path.display(),
                map.max_entries
            ));
        }
        per_slot += stride;
        memlock += map.memlock;
    }
    let slots = slots.unwrap_or(0);
    let needed = (STATIC_SA_SLOTS + 2 * n) as usize;
    if slots < needed {
        return Err(format!(
            "the per-slot maps have {slots} slots, fewer than the {needed} the {n} CHILD_SAs \
             were installed in"
        ));
    }
    let per_child_sa = 2 * per_slot;
    let from_abi = abi_pinned_per_child_sa();
    if per_child_sa != from_abi || per_child_sa < 2 * size_of::<SaRecord>() {
        return Err(format!(
            "the pinned maps hold {per_child_sa} B per CHILD_SA as the kernel lays them out, \
             the map ABI says {from_abi} B: the pinned-map figure is wrong"
        ));
    }
    Ok(PinnedMaps {
        per_child_sa,
        slots,
        memlock,
    })
}

/// The heap a CHILD_SA must hold at least: its inbound and outbound entries.
fn heap_floor() -> usize {
    size_of::<InboundEntry>() + size_of::<OutboundEntry>()
}

/// Fails when the heap per CHILD_SA is impossible: below the inbound and outbound entries
/// (each in its own block) every CHILD_SA must hold, or above [`HEAP_PER_CHILD_SA_MAX`].
fn check_heap(sample: &MemorySample) -> Result<(), String> {
    let floor = heap_floor();
    let (bytes, blocks) = (sample.heap_bytes, sample.heap_blocks);
    if bytes < floor as f64 {
        return Err(format!(
            "the gateway's heap grew by {bytes:.0} B per CHILD_SA, less than the {floor} B of \
             the inbound and outbound entries each CHILD_SA must hold: the measurement is \
             wrong, not the gateway's memory"
        ));
    }
    if blocks < 2.0 {
        return Err(format!(
            "the gateway's heap holds {blocks:.2} more blocks per CHILD_SA, fewer than the \
             two entries each CHILD_SA must hold: the measurement is wrong"
        ));
    }
    if bytes > HEAP_PER_CHILD_SA_MAX {
        return Err(format!(
            "the gateway's heap grew by {bytes:.0} B per CHILD_SA, more than the \
             {HEAP_PER_CHILD_SA_MAX:.0} B any CHILD_SA plausibly takes: the count holds \
             something that is not the SAs'"
        ));
    }
    Ok(())
}

/// A map pinned at `path` as the kernel reports it (`/proc/self/fdinfo` of a descriptor of
/// it).
#[derive(Clone, Copy, Debug)]
struct KernelMap {
    value_size: usize,
    max_entries: usize,
    memlock: usize,
}

fn kernel_map(path: &Path) -> Result<KernelMap, String> {
    /// `union bpf_attr` as `BPF_OBJ_GET` reads it (the rest must be zero).
    #[repr(C)]
    struct ObjGet {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        pad: u32,
    }
    const BPF_OBJ_GET: libc::c_long = 7;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL", path.display()))?;
    let attr = ObjGet {
        pathname: name.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
        path_fd: 0,
        pad: 0,
    };
    // SAFETY: `attr` is a valid `BPF_OBJ_GET` argument of the size passed, and the path it
    // points to lives until the call returns.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            &attr as *const ObjGet,
            size_of::<ObjGet>(),
        )
    };
    if fd < 0 {
        return Err(format!(
            "opening the pinned map {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just returned this new descriptor, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map_err(|e| format!("reading the fdinfo of {}: {e}", path.display()))?;
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| format!("no {key} in the fdinfo of {}: {info}", path.display()))
    };
    Ok(KernelMap {
        value_size: field("value_size")?,
        max_entries: field("max_entries")?,
        memlock: field("memlock")?,
    })
}

/// The median of `f` over `samples`.
fn median_of(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(&mut samples.iter().map(f).collect::<Vec<_>>())
}

/// Medians of the samples' offered and forwarded rates, busy share and per-core rate.
fn summary(samples: &[Sample]) -> (f64, f64, f64, f64) {
    (
        median_of(samples, |s| s.offered),
        median_of(samples, |s| s.forwarded),
        median_of(samples, |s| s.busy),
        median_of(samples, Sample::per_core),
    )
}

fn rate(len: usize, pps: f64) -> String {
    if len == 64 {
        format!("{:.3} Mpps", pps / 1e6)
    } else {
        format!("{:.2} Gbit/s", pps * len as f64 * 8.0 / 1e9)
    }
}

fn main() -> ExitCode {
    let runs = std::env::var("ROAMGATE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5);
    let bench = Bench::build(runs);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = |what: &str| {
        let named: Vec<&String> = args
            .iter()
            .filter(|a| *a == "forwarding" || *a == "memory")
            .collect();
        named.is_empty() || named.iter().any(|a| *a == what)
    };
    if only("forwarding") {
        forwarding(&bench, runs);
    }
    if only("memory")
        && let Err(e) = memory(&bench)
    {
        eprintln!("The data plane's memory per CHILD_SA cannot be right: {e}.");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The memory per CHILD_SA: the pinned maps' share, then the gateway's heap, three times.
fn memory(bench: &Bench) -> Result<(), String> {
    println!(
        "Data-plane memory per CHILD_SA: 2 slots × ({} B SA record + {} B endpoint + {} B sequence) = {} B in the pinned maps",
        size_of::<SaRecord>(),
        size_of::<EndpointRecord>(),
        abi_value_size(abi::maps::SA_SEQ),
        abi_pinned_per_child_sa()
    );
    let mut samples = Vec::new();
    for run in 1..=3 {
        let sample = bench.memory_per_child_sa(CHILD_SAS)?;
        println!(
            "measurement {run}: heap {:.1} B in {:.2} blocks per CHILD_SA (accepted: {} to {HEAP_PER_CHILD_SA_MAX:.0} B)",
            sample.heap_bytes,
            sample.heap_blocks,
            heap_floor()
        );
        samples.push(sample);
    }
    let pinned = samples[0].pinned;
    println!(
        "Checked against the kernel: {} B per CHILD_SA in {} slots of the three maps, {:.1} MiB charged for them in all",
        pinned.per_child_sa,
        pinned.slots,
        pinned.memlock as f64 / f64::from(1 << 20)
    );
    let pick = |f: fn(&MemorySample) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
    println!(
        "The gateway process's own memory per CHILD_SA (heap bytes live with {CHILD_SAS} CHILD_SAs in the workers' snapshot, counted by the global allocator, median of 3): {:.0} B in {:.2} blocks",
        pick(|s| s.heap_bytes),
        pick(|s| s.heap_blocks)
    );
    Ok(())
}

/// The per-core table: every DUT at both frame sizes, then the ratios.
fn forwarding(bench: &Bench, runs: usize) {
    type Dut<'a> = (&'a str, Box<dyn Fn(usize) -> Vec<Sample> + 'a>);
    let duts: Vec<Dut> = vec![
        ("kernel forwarding (anchor)", Box::new(|l| bench.kernel(l))),
        ("AF_XDP forwarding, no crypto", Box::new(|l| bench.afxdp(l))),
        ("roamgate ESP", Box::new(|l| bench.roamgate(l, false))),
        ("roamgate ESP-in-UDP", Box::new(|l| bench.roamgate(l, true))),
        (
            "roamgate ESP, decapsulating",
            Box::new(|l| bench.roamgate_decap(l)),
        ),
        (
            "strongSwan kernel-libipsec",
            Box::new(|l| bench.strongswan(l)),
        ),
    ];
    let mut per_core = vec![[0.0f64; 2]; duts.len()];
    println!(
        "One DUT core (CPU {DUT_CPU}); generator and sink on CPU {GEN_CPU}; median of {runs} × {WINDOW:?}"
    );
    println!("| DUT | frame | offered | forwarded | DUT core busy | per DUT core |");
    println!("|---|---|---|---|---|---|");
    for (d, (name, run)) in duts.iter().enumerate() {
        for (i, len) in SIZES.into_iter().enumerate() {
            let (offered, forwarded, busy, core) = summary(&run(len));
            per_core[d][i] = core;
            // Below 90 % the DUT was not the bottleneck: its per-core rate is extrapolated.
            let mark = if busy < 0.9 { " (not saturated)" } else { "" };
            println!(
                "| {name} | {len} B | {} | {} | {:.0} %{mark} | **{}** |",
                rate(len, offered),
                rate(len, forwarded),
                busy * 100.0,
                rate(len, core)
            );
        }
    }
    let [kernel, afxdp, esp, udp, decap, swan] = [0, 1, 2, 3, 4, 5].map(|i| per_core[i]);
    println!();
    println!("| per DUT core, ratio | 64 B | 1400 B |");
    println!("|---|---|---|");
    for (what, a, b) in [
        ("roamgate ESP / strongSwan", esp, swan),
        ("roamgate ESP-in-UDP / strongSwan", udp, swan),
        ("roamgate ESP decapsulating / strongSwan", decap, swan),
        ("roamgate ESP / AF_XDP no-crypto limit", esp, afxdp),
        ("roamgate ESP-in-UDP / AF_XDP no-crypto limit", udp, afxdp),
        (
            "roamgate ESP decapsulating / AF_XDP no-crypto limit",
            decap,
            afxdp,
        ),
        ("AF_XDP no-crypto / kernel forwarding", afxdp, kernel),
        ("roamgate ESP / kernel forwarding", esp, kernel),
    ] {
        println!(
            "| {what} | {:.2}× | {:.2}× |",
            a[0] / b[0].max(1.0),
            a[1] / b[1].max(1.0)
        );
    }
}
