//! AF_XDP throughput on a veth pair (copy mode), against an anchor measured in the same run:
//! the same ESP frames received on a plain AF_PACKET socket (the classifier passes them when no
//! AF_XDP socket is registered).
//!
//! A peer thread sends one prebuilt frame as fast as it can (AF_PACKET, `sendmmsg` of 64,
//! qdisc bypass) for a fixed window; the gateway side counts what it receives in that window:
//! - `anchor`: `recv` on an AF_PACKET socket, one frame per call;
//! - `xsk rx`: `XskSocket::rx_batch` of up to 256, frames released and refilled;
//! - `xsk reflect`: the same, MACs swapped, every frame sent back out through the TX ring.
//!
//! 64 B and 1400 B frames (Ethernet header included, FCS not), median of 5 runs of 1 s.
//!
//! Then end to end, site to site in the lab (topology (b)): UDP datagrams from LAN host A to
//! LAN host B (64 B and 1400 B frames, one sender thread, `send` per datagram) and iperf3 TCP,
//! through
//! - `anchor`: plain kernel forwarding over the same veths and bridges (static routes, no
//!   IPsec);
//! - `roamgate`: two `roamgate gateway` data planes (XDP + AF_XDP workers, AES-128-GCM-16
//!   tunnel mode) with static SAs.
//!
//! Needs root and bpffs: `cargo bench -p roamgate-benches --bench xsk` (both parts), or
//! `-- xsk` / `-- site` for one.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use roamgate_ebpf::abi::SpiValue;
use roamgate_ebpf::{AttachMode, Classifier};
use roamgate_gateway::xsk::{Desc, XskConfig, XskSocket};
use roamgate_lab::Netns;
use roamgate_lab::packet::{IPV4_FRAMES, PacketSocket, SEND_ONLY};

const GW: [u8; 4] = [10, 204, 0, 1];
const PEER: [u8; 4] = [10, 204, 0, 2];
const SPI: u32 = 0x0a0b_0c0d;
const RUNS: usize = 5;
const WINDOW: Duration = Duration::from_secs(1);

fn mac_of(ns: &Netns, dev: &str) -> [u8; 6] {
    ns.mac(dev).unwrap_or_else(|e| panic!("{e}"))
}

fn esp_frame(dst: [u8; 6], src: [u8; 6], frame_len: usize) -> Vec<u8> {
    let ip_len = frame_len - 14;
    let mut f = Vec::with_capacity(frame_len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    iph[8] = 64;
    iph[9] = 50;
    iph[12..16].copy_from_slice(&PEER);
    iph[16..20].copy_from_slice(&GW);
    let sum = roamgate_gateway::wire::checksum(&iph);
    iph[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&SPI.to_be_bytes());
    f.extend_from_slice(&1u32.to_be_bytes());
    f.resize(frame_len, 0xab);
    f
}

/// Sends `frame` in batches of 64 until `stop`; returns frames sent.
fn generate(socket: &PacketSocket, frame: &[u8], stop: &AtomicBool) -> u64 {
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        sent += socket.send_many(&[frame; 64]) as u64;
    }
    sent
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Anchor,
    Rx,
    Reflect,
}

struct Lab {
    xsk: XskSocket,
    anchor: PacketSocket,
    classifier: Classifier,
    pins: PathBuf,
    peer: Arc<PacketSocket>,
    gw_mac: [u8; 6],
    peer_mac: [u8; 6],
    _ns: (Netns, Netns),
}

fn lab() -> Lab {
    if let Err(e) = roamgate_lab::require_root() {
        panic!("{e}");
    }
    let pins = PathBuf::from("/sys/fs/bpf/roamgate-test")
        .join(format!("{}-bench-xsk", std::process::id()));
    let mut classifier = Classifier::load(&pins).unwrap_or_else(|e| panic!("{e}"));
    let gw_ns = Netns::new("bgw").unwrap_or_else(|e| panic!("{e}"));
    let peer_ns = Netns::new("bpr").unwrap_or_else(|e| panic!("{e}"));
    roamgate_lab::veth(&gw_ns, "rgb0", &peer_ns, "rgb1").unwrap_or_else(|e| panic!("{e}"));
    gw_ns
        .ip(&["addr", "add", "10.204.0.1/24", "dev", "rgb0"])
        .unwrap();
    peer_ns
        .ip(&["addr", "add", "10.204.0.2/24", "dev", "rgb1"])
        .unwrap();
    let (gw_mac, peer_mac) = (mac_of(&gw_ns, "rgb0"), mac_of(&peer_ns, "rgb1"));
    let config = XskConfig::default();
    let xsk = gw_ns
        .enter(|| {
            classifier
                .attach("rgb0", AttachMode::Driver)
                .unwrap_or_else(|e| panic!("{e}"));
            XskSocket::open("rgb0", 0, &config).unwrap_or_else(|e| panic!("{e}"))
        })
        .unwrap();
    let anchor = PacketSocket::open(&gw_ns, "rgb0", IPV4_FRAMES).unwrap_or_else(|e| panic!("{e}"));
    classifier
        .add_local_addr(std::net::Ipv4Addr::from(GW).into())
        .unwrap();
    classifier.insert_spi(SPI, SpiValue::new(1, 0)).unwrap();
    let peer = PacketSocket::open(&peer_ns, "rgb1", SEND_ONLY).unwrap_or_else(|e| panic!("{e}"));
    peer.bypass_qdisc().unwrap_or_else(|e| panic!("{e}"));
    Lab {
        xsk,
        anchor,
        classifier,
        pins,
        peer: Arc::new(peer),
        gw_mac,
        peer_mac,
        _ns: (gw_ns, peer_ns),
    }
}

/// One window: packets per second received (and, for reflect, sent back), and offered.
fn run(lab: &mut Lab, mode: Mode, frame_len: usize) -> (f64, f64) {
    if mode == Mode::Anchor {
        let _ = lab.classifier.unregister_xsk(0);
    } else {
        lab.classifier.register_xsk(0, lab.xsk.as_raw_fd()).unwrap();
    }
    let frame = esp_frame(lab.gw_mac, lab.peer_mac, frame_len);
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (stop, peer) = (stop.clone(), lab.peer.clone());
        std::thread::spawn(move || generate(&peer, &frame, &stop))
    };
    let mut descs = [Desc::default(); 256];
    let mut buf = vec![0u8; 2048];
    let mut count = 0u64;
    let start = Instant::now();
    while start.elapsed() < WINDOW {
        match mode {
            Mode::Anchor => {
                // SAFETY: buf is valid and writable for its length.
                let n = unsafe {
                    libc::recv(
                        lab.anchor.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n == frame_len as isize {
                    count += 1;
                }
            }
            Mode::Rx => {
                let n = lab.xsk.rx_batch(&mut descs);
                lab.xsk.release(&descs[..n]);
                lab.xsk.refill();
                count += n as u64;
            }
            Mode::Reflect => {
                let n = lab.xsk.rx_batch(&mut descs);
                for d in &descs[..n] {
                    if let Some(f) = lab.xsk.frame_mut(d) {
                        f.copy_within(0..6, 6);
                        f[..6].copy_from_slice(&lab.peer_mac);
                    }
                }
                let mut sent = 0;
                while sent < n {
                    sent += lab.xsk.tx_batch(&descs[sent..n]);
                    lab.xsk.complete();
                }
                lab.xsk.complete();
                lab.xsk.refill();
                count += n as u64;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let sent = generator.join().unwrap();
    // Drain what is left so the next run starts empty.
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_millis(100) {
        let n = lab.xsk.rx_batch(&mut descs);
        lab.xsk.release(&descs[..n]);
        lab.xsk.complete();
        lab.xsk.refill();
        // SAFETY: buf is valid and writable for its length.
        unsafe {
            libc::recv(
                lab.anchor.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
    }
    let c = lab.xsk.frame_counts();
    assert_eq!((c.app, c.total()), (0, 4096), "frames lost: {c:?}");
    (count as f64 / secs, sent as f64 / secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = |what: &str| {
        let named: Vec<&String> = args
            .iter()
            .skip(1)
            .filter(|a| *a == "xsk" || *a == "site")
            .collect();
        named.is_empty() || named.iter().any(|a| *a == what)
    };
    if only("xsk") {
        afxdp();
    }
    if only("site") {
        site::site_to_site();
    }
}

fn afxdp() {
    let mut lab = lab();
    println!("AF_XDP on veth (copy mode), median of {RUNS} × {WINDOW:?}, one sender thread");
    println!(
        "| frame | offered (median over all runs) | anchor AF_PACKET | xsk rx | rx / anchor | xsk reflect | reflect / anchor |"
    );
    println!("|---|---|---|---|---|---|---|");
    for frame_len in [64usize, 1400] {
        let mut res = [Vec::new(), Vec::new(), Vec::new()];
        let mut offered = Vec::new();
        for _ in 0..RUNS {
            // Interleaved, so drift in the shared machine hits all three alike.
            for (i, mode) in [Mode::Anchor, Mode::Rx, Mode::Reflect]
                .into_iter()
                .enumerate()
            {
                let (pps, sent) = run(&mut lab, mode, frame_len);
                res[i].push(pps);
                offered.push(sent);
            }
        }
        let offered = median(offered);
        let [a, r, f] = res.map(median);
        let fmt = |pps: f64| {
            if frame_len == 64 {
                format!("{:.3} Mpps", pps / 1e6)
            } else {
                format!("{:.2} Gbit/s", pps * frame_len as f64 * 8.0 / 1e9)
            }
        };
        println!(
            "| {frame_len} B | {} | {} | {} | **{:.0} %** | {} | **{:.0} %** |",
            fmt(offered),
            fmt(a),
            fmt(r),
            100.0 * r / a,
            fmt(f),
            100.0 * f / a
        );
    }
    drop(lab.xsk);
    drop(lab.classifier);
    let _ = roamgate_ebpf::remove_pins(&lab.pins);
    let _ = std::fs::remove_dir(lab.pins.parent().unwrap());
}

/// The end-to-end comparison, site to site.
mod site {
    use std::net::{SocketAddr, UdpSocket};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use roamgate_gateway::config::GatewayConfig;
    use roamgate_gateway::dataplane::Gateway;
    use roamgate_lab::Netns;
    use roamgate_lab::topology::{Options, SiteToSite};
    use roamgate_lab::traffic;

    const RUNS: usize = 3;
    const WINDOW: Duration = Duration::from_secs(1);
    /// Ethernet + IPv4 + UDP in front of the payload.
    const OVERHEAD: usize = 14 + 20 + 8;

    fn config(pins: &Path, h: u8) -> GatewayConfig {
        let (me, peer) = (h, 3 - h);
        let (spi_in, spi_out) = if h == 1 {
            (0xb001, 0xa001)
        } else {
            (0xa001, 0xb001)
        };
        let text = format!(
            r#"[gateway]
pin_dir = "{pins}"
queues = 1

[[interface]]
name = "wan1"
role = "wan"

[[interface]]
name = "lan"
role = "lan"

[[sa]]
spi_in = {spi_in}
spi_out = {spi_out}
cipher = "aes128gcm16"
key_in = "000102030405060708090a0b0c0d0e0f10111213"
key_out = "000102030405060708090a0b0c0d0e0f10111213"
local = "198.18.1.{me}"
remote = "198.18.1.{peer}"
local_ts = ["10.{lme}.0.0/24"]
remote_ts = ["10.{lpeer}.0.0/24"]
"#,
            pins = pins.display(),
            lme = 100 + u32::from(me),
            lpeer = 100 + u32::from(peer),
        );
        GatewayConfig::parse(Path::new("bench.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Datagrams of `payload` bytes from `from` to `dst` in `to` for one window, as fast as
    /// one thread sends them: (sent, received) per second.
    fn blast(from: &Netns, to: &Netns, dst: SocketAddr, payload: usize) -> (f64, f64) {
        let stop = AtomicBool::new(false);
        let received = AtomicU64::new(0);
        let ready = AtomicBool::new(false);
        let mut sent = 0u64;
        std::thread::scope(|s| {
            s.spawn(|| {
                to.enter(|| {
                    let sock = UdpSocket::bind(("0.0.0.0", dst.port())).unwrap();
                    sock.set_read_timeout(Some(Duration::from_millis(50)))
                        .unwrap();
                    ready.store(true, Ordering::Release);
                    let mut buf = [0u8; 2048];
                    while !stop.load(Ordering::Acquire) {
                        if sock.recv(&mut buf).is_ok() {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .unwrap();
            });
            while !ready.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            from.enter(|| {
                let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
                sock.connect(dst).unwrap();
                let data = vec![0x5a; payload];
                let until = Instant::now() + WINDOW;
                while Instant::now() < until {
                    for _ in 0..64 {
                        if sock.send(&data).is_ok() {
                            sent += 1;
                        }
                    }
                }
            })
            .unwrap();
            // Let what is in flight arrive.
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::Release);
        });
        let secs = WINDOW.as_secs_f64();
        (
            sent as f64 / secs,
            received.load(Ordering::Relaxed) as f64 / secs,
        )
    }

    struct Row {
        udp: [(f64, f64); 2],
        tcp: f64,
    }

    fn measure(lab: &SiteToSite, logs: &Path) -> Row {
        let dst: SocketAddr = "10.102.0.2:7100".parse().unwrap();
        let mut udp = [(0.0, 0.0); 2];
        for (i, frame) in [64usize, 1400].into_iter().enumerate() {
            let mut offered = Vec::new();
            let mut got = Vec::new();
            for _ in 0..RUNS {
                let (o, g) = blast(&lab.lana.ns, &lab.lanb.ns, dst, frame - OVERHEAD);
                offered.push(o);
                got.push(g);
            }
            udp[i] = (super::median(offered), super::median(got));
        }
        let tcp = traffic::iperf3(&lab.lanb.ns, &lab.lana.ns, "10.102.0.2", 3, None, logs)
            .map(|r| r.bits_per_second)
            .unwrap_or_else(|e| panic!("{e}"));
        Row { udp, tcp }
    }

    pub(super) fn site_to_site() {
        if let Err(e) = roamgate_lab::require_root() {
            panic!("{e}");
        }
        let lab = SiteToSite::build(Options::default()).unwrap_or_else(|e| panic!("{e}"));
        for host in [&lab.lana.ns, &lab.lanb.ns] {
            // AF_XDP copy mode on veth sees CHECKSUM_PARTIAL packets: let the hosts fill in
            // their checksums, as a real NIC's receiver would see them (the anchor too).
            host.exec("ethtool", &["-K", "eth0", "tx", "off"]).unwrap();
        }
        let logs = std::env::temp_dir().join(format!("roamgate-bench-site-{}", std::process::id()));
        std::fs::create_dir_all(&logs).unwrap();

        // Anchor: the kernel forwards between the LANs over ISP 1.
        let routes = [
            (&lab.gwa.ns, "10.102.0.0/24", "198.18.1.2"),
            (&lab.gwb.ns, "10.101.0.0/24", "198.18.1.1"),
        ];
        for (ns, net, via) in routes {
            ns.ip(&["route", "add", net, "via", via]).unwrap();
        }
        let anchor = measure(&lab, &logs);
        for (ns, net, via) in routes {
            ns.ip(&["route", "del", net, "via", via]).unwrap();
        }

        // roamgate at both ends.
        let pins = |t: &str| {
            std::path::PathBuf::from("/sys/fs/bpf/roamgate-test")
                .join(format!("{}-bench-site-{t}", std::process::id()))
        };
        let (pa, pb) = (pins("a"), pins("b"));
        let ga = lab
            .gwa
            .ns
            .enter(|| Gateway::start(&config(&pa, 1)))
            .unwrap()
            .unwrap();
        let gb = lab
            .gwb
            .ns
            .enter(|| Gateway::start(&config(&pb, 2)))
            .unwrap()
            .unwrap();
        // Resolve the neighbours before measuring.
        let _ = traffic::ping(&lab.lana.ns, "10.102.0.2", 3, Duration::from_millis(20));
        let esp = measure(&lab, &logs);
        drop((ga, gb));
        for p in [&pa, &pb] {
            let _ = roamgate_ebpf::remove_pins(p);
        }

        println!();
        println!(
            "Site to site (topology (b), bridges), one UDP sender thread, median of {RUNS} × {WINDOW:?}; iperf3 TCP 3 s"
        );
        println!("| traffic | anchor: kernel forwarding | roamgate ESP (AES-128-GCM) | ratio |");
        println!("|---|---|---|---|");
        for (i, frame) in [64usize, 1400].into_iter().enumerate() {
            let (ao, ar) = anchor.udp[i];
            let (eo, er) = esp.udp[i];
            println!(
                "| UDP {frame} B frames, received (offered) | {:.3} Mpps ({:.3}) | {:.3} Mpps ({:.3}) | **{:.0} %** |",
                ar / 1e6,
                ao / 1e6,
                er / 1e6,
                eo / 1e6,
                100.0 * er / ar
            );
        }
        println!(
            "| TCP (iperf3) | {:.0} Mbit/s | {:.0} Mbit/s | **{:.0} %** |",
            anchor.tcp / 1e6,
            esp.tcp / 1e6,
            100.0 * esp.tcp / anchor.tcp
        );
    }
}
