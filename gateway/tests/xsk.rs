//! AF_XDP on the real kernel: a veth pair between two namespaces, the classifier attached
//! natively on the gateway side, crafted ESP sent by the peer on an AF_PACKET socket, received
//! in batches on an [`XskSocket`] (copy mode: veth has no zero-copy), reflected back out
//! through the TX ring, and received again by the peer. After thousands of packets every frame
//! is back on the free list or in the fill ring.
//!
//! Needs root and bpffs; fails (never skips) with the reason otherwise.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use roamgate_ebpf::abi::SpiValue;
use roamgate_ebpf::{AttachMode, Classifier};
use roamgate_gateway::xsk::{BindMode, Desc, XskConfig, XskError, XskSocket};
use roamgate_lab::Netns;
use roamgate_lab::packet::{ALL_FRAMES, PacketSocket};

const GW: [u8; 4] = [10, 203, 0, 1];
const PEER: [u8; 4] = [10, 203, 0, 2];
const SPI: u32 = 0x0102_0304;

fn ip(ns: &Netns, args: &[&str]) {
    ns.ip(args).unwrap_or_else(|e| panic!("{e}"));
}

fn mac_of(ns: &Netns, dev: &str) -> [u8; 6] {
    ns.mac(dev).unwrap_or_else(|e| panic!("{e}"))
}

/// Ethernet + IPv4 + ESP (SPI, sequence number) + `body` bytes of pattern.
fn esp_frame(dst_mac: [u8; 6], src_mac: [u8; 6], seq: u32, body: usize) -> Vec<u8> {
    let ip_len = 20 + 8 + body;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    iph[8] = 64;
    iph[9] = 50;
    iph[12..16].copy_from_slice(&PEER);
    iph[16..20].copy_from_slice(&GW);
    let c = roamgate_gateway::wire::checksum(&iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&SPI.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend((0..body).map(|i| (i as u8) ^ (seq as u8)));
    f
}

struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = roamgate_ebpf::remove_pins(&self.0);
        let _ = std::fs::remove_dir(self.0.parent().unwrap());
    }
}

struct Lab {
    // Drop order: socket, classifier (detach), pins, namespaces.
    xsk: XskSocket,
    _classifier: Classifier,
    _pins: PinDir,
    peer: PacketSocket,
    gw_mac: [u8; 6],
    peer_mac: [u8; 6],
    _ns: (Netns, Netns),
}

fn lab(tag: &str, config: &XskConfig) -> Lab {
    if let Err(e) = roamgate_lab::require_root() {
        panic!("{e}");
    }
    let pins = PinDir(
        PathBuf::from("/sys/fs/bpf/roamgate-test").join(format!("{}-{tag}", std::process::id())),
    );
    let mut classifier = Classifier::load(&pins.0).unwrap_or_else(|e| panic!("{e}"));
    let gw_ns = Netns::new("kgw").unwrap_or_else(|e| panic!("{e}"));
    let peer_ns = Netns::new("kpr").unwrap_or_else(|e| panic!("{e}"));
    roamgate_lab::veth(&gw_ns, "rgk0", &peer_ns, "rgk1").unwrap_or_else(|e| panic!("{e}"));
    ip(&gw_ns, &["addr", "add", "10.203.0.1/24", "dev", "rgk0"]);
    ip(&peer_ns, &["addr", "add", "10.203.0.2/24", "dev", "rgk1"]);
    let gw_mac = mac_of(&gw_ns, "rgk0");
    let peer_mac = mac_of(&peer_ns, "rgk1");
    let xsk = gw_ns
        .enter(|| {
            let mode = classifier
                .attach("rgk0", AttachMode::Driver)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(mode, AttachMode::Driver);
            XskSocket::open("rgk0", 0, config)
                .unwrap_or_else(|e| panic!("opening AF_XDP on rgk0 queue 0: {e}"))
        })
        .unwrap();
    classifier.register_xsk(0, xsk.as_raw_fd()).unwrap();
    classifier
        .add_local_addr(std::net::Ipv4Addr::from(GW).into())
        .unwrap();
    classifier.insert_spi(SPI, SpiValue::new(1, 0)).unwrap();
    let peer = PacketSocket::open(&peer_ns, "rgk1", ALL_FRAMES).unwrap_or_else(|e| panic!("{e}"));
    peer.set_recv_timeout(Duration::from_millis(20)).unwrap();
    Lab {
        xsk,
        _classifier: classifier,
        _pins: pins,
        peer,
        gw_mac,
        peer_mac,
        _ns: (gw_ns, peer_ns),
    }
}

#[test]
fn esp_is_received_in_batches_and_reflected_with_no_frame_lost() {
    let config = XskConfig {
        frame_count: 512,
        fill_size: 256,
        completion_size: 256,
        rx_size: 256,
        tx_size: 256,
        ..XskConfig::default()
    };
    let mut lab = lab("reflect", &config);
    assert!(!lab.xsk.is_zero_copy(), "veth has no zero-copy AF_XDP");
    let total = config.frame_count;
    const BURST: u32 = 64;
    const ROUNDS: u32 = 80;
    let mut descs = [Desc::default(); 256];
    let mut buf = vec![0u8; 2048];
    let mut biggest_batch = 0;
    for round in 0..ROUNDS {
        let body = if round % 2 == 0 { 64 } else { 1400 };
        for i in 0..BURST {
            let f = esp_frame(lab.gw_mac, lab.peer_mac, round * BURST + i, body);
            lab.peer.send(&f).unwrap();
        }
        // Receive the burst in batches.
        let mut got = 0u32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got < BURST {
            assert!(
                Instant::now() < deadline,
                "round {round}: {got} of {BURST} received; stats {:?}",
                lab.xsk.stats()
            );
            lab.xsk.poll(10).unwrap();
            let n = lab.xsk.rx_batch(&mut descs);
            biggest_batch = biggest_batch.max(n);
            for d in &mut descs[..n] {
                let seq = round * BURST + got;
                let expect = esp_frame(lab.gw_mac, lab.peer_mac, seq, body);
                let frame = lab.xsk.frame_mut(d).expect("received frame is ours");
                assert_eq!(frame, &expect[..], "round {round} packet {got}");
                // Reflect: swap the MACs.
                frame[..6].copy_from_slice(&lab.peer_mac);
                frame[6..12].copy_from_slice(&lab.gw_mac);
                got += 1;
            }
            let mut sent = 0;
            while sent < n {
                sent += lab.xsk.tx_batch(&descs[sent..n]);
                lab.xsk.complete();
            }
            lab.xsk.refill();
        }
        // The peer sees each frame back, in order.
        let mut back = 0u32;
        while back < BURST {
            lab.xsk.complete();
            let Some(len) = lab.peer.recv_incoming(&mut buf) else {
                panic!("round {round}: peer got {back} of {BURST} reflected frames");
            };
            let mut expect = esp_frame(lab.peer_mac, lab.gw_mac, round * BURST + back, body);
            expect.truncate(len.max(expect.len()));
            if buf[12..14] != [0x08, 0x00] {
                continue; // not ours (e.g. IPv6 router solicitations)
            }
            assert_eq!(&buf[..len], &expect[..], "round {round} reflected {back}");
            back += 1;
        }
        lab.xsk.complete();
        lab.xsk.refill();
        let c = lab.xsk.frame_counts();
        assert_eq!(c.total(), total, "{c:?}");
        assert_eq!(
            (c.app, c.tx),
            (0, 0),
            "round {round}: frames not returned {c:?}"
        );
    }
    let c = lab.xsk.frame_counts();
    assert_eq!(c.fill, config.fill_size.min(total), "{c:?}");
    assert_eq!(c.free + c.fill, total, "{c:?}");
    let stats = lab.xsk.stats().unwrap();
    assert_eq!(stats.rx_dropped + stats.rx_ring_full, 0, "{stats:?}");
    println!(
        "{} packets received and reflected; biggest batch {biggest_batch}; {c:?}; {stats:?}",
        ROUNDS * BURST
    );
}

#[test]
fn errors_are_sentences() {
    if let Err(e) = roamgate_lab::require_root() {
        panic!("{e}");
    }
    let ns = Netns::new("kerr").unwrap_or_else(|e| panic!("{e}"));
    let peer = Netns::new("kerp").unwrap_or_else(|e| panic!("{e}"));
    roamgate_lab::veth(&ns, "rge0", &peer, "rge1").unwrap_or_else(|e| panic!("{e}"));
    let (missing, queue, zc) = ns
        .enter(|| {
            let c = XskConfig::default();
            let missing = XskSocket::open("rg-nonexist", 0, &c).err();
            let queue = XskSocket::open("rge0", 7, &c).err();
            let zc = XskSocket::open(
                "rge0",
                0,
                &XskConfig {
                    mode: BindMode::ZeroCopy,
                    ..c
                },
            )
            .err();
            (missing, queue, zc)
        })
        .unwrap();
    let missing = missing.expect("no such interface");
    assert!(
        matches!(missing, XskError::InterfaceNotFound(_)),
        "{missing}"
    );
    assert!(missing.to_string().contains("not found"), "{missing}");
    let queue = queue.expect("queue 7 of a one-queue veth");
    assert!(
        matches!(queue, XskError::QueueOutOfRange { queue: 7, .. }),
        "{queue}"
    );
    let zc = zc.expect("veth has no zero-copy");
    assert!(matches!(zc, XskError::ZeroCopyUnsupported { .. }), "{zc}");
    println!("{missing}\n{queue}\n{zc}");
}
