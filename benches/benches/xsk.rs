//! AF_XDP throughput on a veth pair (copy mode), against an anchor measured in the same run:
//! the same ESP frames received on a plain AF_PACKET socket (the classifier passes them when no
//! AF_XDP socket is registered).
//!
//! A peer thread sends one prebuilt frame as fast as it can (AF_PACKET, `sendmmsg` of 64,
//! qdisc bypass) for a fixed window; the gateway side counts what it receives in that window:
//! - `anchor`: `recv` on an AF_PACKET socket, one frame per call;
//! - `xsk rx`: `XskSocket::rx_batch` of up to 256, frames released and refilled;
//! - `xsk reflect`: the same, MACs swapped, every frame sent back out through the TX ring;
//! - `s2n rx`, `s2n reflect`: the same work on a socket whose UMEM and rings are built with the
//!   s2n-quic-xdp crate (the layer the gateway did not pick), with the same sizes.
//!
//! A queue takes one AF_XDP socket at a time, so each round opens the socket its modes need
//! and closes the other one (outside the timed windows).
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

use std::ffi::CStr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use roamgate_benches::median;
use roamgate_ebpf::abi::SpiValue;
use roamgate_ebpf::{AttachMode, Classifier};
use roamgate_gateway::xsk::{Desc, XskConfig, XskSocket};
use roamgate_lab::Netns;
use roamgate_lab::packet::{IPV4_FRAMES, PacketSocket, SEND_ONLY};
use s2n_quic_xdp::if_xdp::{Address, RxTxDescriptor, UmemDescriptor, UmemFlags, XdpFlags};
use s2n_quic_xdp::{ring, socket, syscall, umem};

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
    S2nRx,
    S2nReflect,
}

/// An AF_XDP socket built with s2n-quic-xdp: its socket, UMEM, rings and syscalls. The crate
/// leaves frame bookkeeping to the caller; here that is a free list of frames and a count of
/// frames handed to the TX ring and not yet completed.
struct S2nSocket {
    fd: socket::Fd,
    umem: umem::Umem,
    fill: ring::Fill,
    completion: ring::Completion,
    rx: ring::Rx,
    tx: ring::Tx,
    free: Vec<UmemDescriptor>,
    in_flight: usize,
    need_wakeup: bool,
}

impl S2nSocket {
    /// Opens a copy-mode socket on `queue` of `ifname` (in the calling thread's namespace) with
    /// `config`'s sizes; like `XskSocket::open`, it primes the fill ring with up to half the
    /// frames and keeps the rest free for transmitting.
    fn open(ifname: &CStr, queue: u32, config: &XskConfig) -> std::io::Result<S2nSocket> {
        let fd = socket::Fd::open()?;
        let umem = umem::Builder {
            frame_size: config.frame_size,
            frame_count: config.frame_count,
            frame_headroom: config.frame_headroom,
            flags: UmemFlags::default(),
            hugepage: config.hugepages,
        }
        .build()?;
        fd.attach_umem(&umem)?;
        let offsets = syscall::offsets(&fd)?;
        let mut fill = ring::Fill::new(fd.clone(), &offsets, config.fill_size)?;
        let completion = ring::Completion::new(fd.clone(), &offsets, config.completion_size)?;
        let rx = ring::Rx::new(fd.clone(), &offsets, config.rx_size)?;
        let tx = ring::Tx::new(fd.clone(), &offsets, config.tx_size)?;
        let mut free: Vec<UmemDescriptor> = umem.frames().collect();
        let primed = config.fill_size.min(config.frame_count / 2) as usize;
        fill.init(free.drain(..primed));
        let mut address = Address {
            flags: XdpFlags::COPY,
            queue_id: queue,
            ..Address::default()
        };
        if config.need_wakeup {
            address.flags |= XdpFlags::USE_NEED_WAKEUP;
        }
        address.set_if_name(ifname)?;
        syscall::bind(&fd, &mut address)?;
        Ok(S2nSocket {
            fd,
            umem,
            fill,
            completion,
            rx,
            tx,
            free,
            in_flight: 0,
            need_wakeup: config.need_wakeup,
        })
    }

    /// Takes up to `out.len()` received packets off the RX ring.
    fn rx_batch(&mut self, out: &mut [RxTxDescriptor]) -> usize {
        let n = (self.rx.acquire(out.len() as u32) as usize).min(out.len());
        let (head, tail) = self.rx.data();
        for (o, d) in out.iter_mut().zip(head.iter().chain(tail.iter())).take(n) {
            *o = *d;
        }
        self.rx.release(n as u32);
        n
    }

    /// The bytes of a received packet.
    fn frame_mut(&mut self, d: RxTxDescriptor) -> &mut [u8] {
        // SAFETY: `d` came off the RX ring, so the kernel wrote it inside the UMEM and no longer
        // touches that frame; until it is released or sent, only the caller holds it, and
        // `&mut self` keeps this the only borrow of the UMEM.
        unsafe { self.umem.get_mut(d) }
    }

    /// Gives received frames back to the free list.
    fn release(&mut self, descs: &[RxTxDescriptor]) {
        self.free
            .extend(descs.iter().map(|&d| UmemDescriptor::from(d)));
    }

    /// Moves free frames into the fill ring and wakes the kernel if it asked.
    fn refill(&mut self) -> usize {
        let n = (self.fill.acquire(1) as usize).min(self.free.len());
        let (head, tail) = self.fill.data();
        let from = self.free.len() - n;
        for (slot, d) in head.iter_mut().chain(tail).zip(self.free.drain(from..)) {
            *slot = d;
        }
        self.fill.release(n as u32);
        if n > 0 && self.need_wakeup && self.fill.needs_wakeup() {
            // EAGAIN and the like: the kernel is kicked again on the next refill.
            let _ = syscall::busy_poll(&self.fd);
        }
        n
    }

    /// Queues received frames for transmission; returns how many fit in the TX ring.
    fn tx_batch(&mut self, descs: &[RxTxDescriptor]) -> usize {
        let n = (self.tx.acquire(descs.len() as u32) as usize).min(descs.len());
        let (head, tail) = self.tx.data();
        for (slot, d) in head.iter_mut().chain(tail).zip(&descs[..n]) {
            *slot = *d;
        }
        self.tx.release(n as u32);
        self.in_flight += n;
        if n > 0 && (!self.need_wakeup || self.tx.needs_wakeup()) {
            let _ = syscall::wake_tx(&self.fd);
        }
        n
    }

    /// Frees transmitted frames from the completion ring, and kicks the kernel again if
    /// frames still wait in the TX ring.
    fn complete(&mut self) -> usize {
        let n = self.completion.acquire(u32::MAX);
        let (head, tail) = self.completion.data();
        self.free.extend(head.iter().chain(tail.iter()).copied());
        self.completion.release(n);
        self.in_flight -= n as usize;
        if self.in_flight > 0 && (!self.need_wakeup || self.tx.needs_wakeup()) {
            let _ = syscall::wake_tx(&self.fd);
        }
        n as usize
    }
}

/// Opens a socket, retrying while the kernel still holds the queue for the socket closed just
/// before (it releases it in deferred work: `EBUSY` until then).
fn open_retrying<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> T {
    let start = Instant::now();
    loop {
        match open() {
            Ok(socket) => return socket,
            Err(e) if start.elapsed() > Duration::from_secs(2) => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

struct Lab {
    xsk: Option<XskSocket>,
    s2n: Option<S2nSocket>,
    anchor: PacketSocket,
    classifier: Classifier,
    pins: PathBuf,
    peer: Arc<PacketSocket>,
    gw_mac: [u8; 6],
    peer_mac: [u8; 6],
    gw_ns: Netns,
    _peer_ns: Netns,
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
    gw_ns
        .enter(|| {
            classifier
                .attach("rgb0", AttachMode::Driver)
                .unwrap_or_else(|e| panic!("{e}"))
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
        xsk: None,
        s2n: None,
        anchor,
        classifier,
        pins,
        peer: Arc::new(peer),
        gw_mac,
        peer_mac,
        gw_ns,
        _peer_ns: peer_ns,
    }
}

impl Lab {
    /// Opens the socket `mode` needs on rgb0's queue 0 (closing the other one first) and
    /// registers it in xsk_map slot 0; the anchor unregisters it.
    fn prepare(&mut self, mode: Mode) {
        let config = XskConfig::default();
        let fd = match mode {
            Mode::Anchor => {
                let _ = self.classifier.unregister_xsk(0);
                return;
            }
            Mode::Rx | Mode::Reflect => {
                self.s2n = None;
                if self.xsk.is_none() {
                    let open = || open_retrying(|| XskSocket::open("rgb0", 0, &config));
                    self.xsk = Some(self.gw_ns.enter(open).unwrap());
                }
                self.xsk.as_ref().unwrap().as_raw_fd()
            }
            Mode::S2nRx | Mode::S2nReflect => {
                self.xsk = None;
                if self.s2n.is_none() {
                    let open = || open_retrying(|| S2nSocket::open(c"rgb0", 0, &config));
                    self.s2n = Some(self.gw_ns.enter(open).unwrap());
                }
                self.s2n.as_ref().unwrap().fd.as_raw_fd()
            }
        };
        self.classifier.register_xsk(0, fd).unwrap();
    }
}

/// One window: packets per second received (and, for reflect, sent back), and offered.
fn run(lab: &mut Lab, mode: Mode, frame_len: usize) -> (f64, f64) {
    lab.prepare(mode);
    let frame = esp_frame(lab.gw_mac, lab.peer_mac, frame_len);
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (stop, peer) = (stop.clone(), lab.peer.clone());
        std::thread::spawn(move || generate(&peer, &frame, &stop))
    };
    let mut descs = [Desc::default(); 256];
    let mut s2n_descs = [RxTxDescriptor::default(); 256];
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
                let xsk = lab.xsk.as_mut().unwrap();
                let n = xsk.rx_batch(&mut descs);
                xsk.release(&descs[..n]);
                xsk.refill();
                count += n as u64;
            }
            Mode::Reflect => {
                let xsk = lab.xsk.as_mut().unwrap();
                let n = xsk.rx_batch(&mut descs);
                for d in &descs[..n] {
                    if let Some(f) = xsk.frame_mut(d) {
                        f.copy_within(0..6, 6);
                        f[..6].copy_from_slice(&lab.peer_mac);
                    }
                }
                let mut sent = 0;
                while sent < n {
                    sent += xsk.tx_batch(&descs[sent..n]);
                    xsk.complete();
                }
                xsk.complete();
                xsk.refill();
                count += n as u64;
            }
            Mode::S2nRx => {
                let s2n = lab.s2n.as_mut().unwrap();
                let n = s2n.rx_batch(&mut s2n_descs);
                s2n.release(&s2n_descs[..n]);
                s2n.refill();
                count += n as u64;
            }
            Mode::S2nReflect => {
                let s2n = lab.s2n.as_mut().unwrap();
                let n = s2n.rx_batch(&mut s2n_descs);
                for &d in &s2n_descs[..n] {
                    let f = s2n.frame_mut(d);
                    f.copy_within(0..6, 6);
                    f[..6].copy_from_slice(&lab.peer_mac);
                }
                let mut sent = 0;
                while sent < n {
                    sent += s2n.tx_batch(&s2n_descs[sent..n]);
                    s2n.complete();
                }
                s2n.complete();
                s2n.refill();
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
        if let Some(xsk) = &mut lab.xsk {
            let n = xsk.rx_batch(&mut descs);
            xsk.release(&descs[..n]);
            xsk.complete();
            xsk.refill();
        }
        if let Some(s2n) = &mut lab.s2n {
            let n = s2n.rx_batch(&mut s2n_descs);
            s2n.release(&s2n_descs[..n]);
            s2n.complete();
            s2n.refill();
        }
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
    if let Some(xsk) = &lab.xsk {
        let c = xsk.frame_counts();
        assert_eq!((c.app, c.total()), (0, 4096), "frames lost: {c:?}");
    }
    if let Some(s2n) = &lab.s2n {
        assert_eq!(s2n.in_flight, 0, "s2n-quic-xdp frames not completed");
    }
    (count as f64 / secs, sent as f64 / secs)
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
        "| frame | offered (median over all runs) | anchor AF_PACKET | xsk rx | rx / anchor | xsk reflect | reflect / anchor | s2n rx | s2n rx / xsk rx | s2n reflect | s2n reflect / xsk reflect |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let modes = [
        Mode::Anchor,
        Mode::Rx,
        Mode::Reflect,
        Mode::S2nRx,
        Mode::S2nReflect,
    ];
    for frame_len in [64usize, 1400] {
        let mut res = modes.map(|_| Vec::new());
        let mut offered = Vec::new();
        for _ in 0..RUNS {
            // Interleaved, so drift in the shared machine hits all modes alike.
            for (i, mode) in modes.into_iter().enumerate() {
                let (pps, sent) = run(&mut lab, mode, frame_len);
                res[i].push(pps);
                offered.push(sent);
            }
        }
        let offered = median(&mut offered);
        let [a, r, f, s2n_r, s2n_f] = res.map(|mut v| median(&mut v));
        let fmt = |pps: f64| {
            if frame_len == 64 {
                format!("{:.3} Mpps", pps / 1e6)
            } else {
                format!("{:.2} Gbit/s", pps * frame_len as f64 * 8.0 / 1e9)
            }
        };
        println!(
            "| {frame_len} B | {} | {} | {} | **{:.0} %** | {} | **{:.0} %** | {} | **{:.0} %** | {} | **{:.0} %** |",
            fmt(offered),
            fmt(a),
            fmt(r),
            100.0 * r / a,
            fmt(f),
            100.0 * f / a,
            fmt(s2n_r),
            100.0 * s2n_r / r,
            fmt(s2n_f),
            100.0 * s2n_f / f
        );
    }
    drop(lab.xsk);
    drop(lab.s2n);
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

    use roamgate_benches::median;
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
            udp[i] = (median(&mut offered), median(&mut got));
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
