//! The SA-state invariants with several queues, in the lab: two gateways site to site over
//! veths with two queues each, two workers per gateway, one SA pair with static keys. UDP
//! datagrams of many flows, each carrying a unique id, go from LAN host A to LAN host B.
//!
//! - Both workers of gateway A encapsulate packets of the one outbound SA, and both workers of
//!   gateway B decapsulate packets of its inbound twin: the sequence counter and the replay
//!   window are shared for real.
//! - No ESP sequence number is seen twice on the WAN (a (key, IV) pair is used once), every id
//!   arrives exactly once at host B, and B counts no replay.
//! - After the SA's endpoint moves to the other uplink mid-stream, traffic continues, sequence
//!   numbers stay unique across both uplinks, and a packet captured on the first uplink and
//!   replayed on the second is dropped as a replay, not delivered.
//!
//! Needs root, bpffs and ethtool; fails (never skips) with the reason otherwise.

mod lab;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lab::*;
use roamgate_gateway::DropReason;
use roamgate_gateway::dataplane::Forward;
use roamgate_gateway::esp::replay::WINDOW;
use roamgate_lab::Netns;
use roamgate_lab::traffic;

/// Queues on every veth of the lab, and workers per gateway.
const QUEUES: u16 = 2;
/// UDP flows (source ports) from LAN host A: enough that the flow hash of LAN host A's
/// socket spreads them over both queues of gateway A's LAN link.
const FLOWS: u16 = 32;
/// The receiving port on LAN host B.
const PORT: u16 = 9000;
/// The receiver's socket buffer: every datagram of the longest stream (4096), at the kernel's
/// accounting of about 1 KiB per small datagram, four times over.
const RECV_BUFFER: usize = 16 << 20;
/// The second half of every datagram (the first is its id).
const MARK: [u8; 4] = [0xa5, 0x5a, 0xc3, 0x3c];

/// One gateway's configuration: the lab's site-to-site SA pair, two queues, two CPUs.
fn config(pins: &Path, h: u8) -> String {
    let text = config_text(pins, h, Encap::Esp);
    let two = text.replacen("queues = 1\n", "queues = 2\ncpus = [0, 1]\n", 1);
    assert_ne!(two, text, "the lab configuration names its queue count");
    two
}

/// Two gateways with two workers each over a lab whose veths have two queues.
fn multiqueue_sites(tag: &str) -> Sites {
    let lab = topology_with_queues(QUEUES);
    let pins_a = PinDir::new(&format!("{tag}-a"));
    let pins_b = PinDir::new(&format!("{tag}-b"));
    let a = start_with(&lab.gwa.ns, &config(&pins_a.0, 1));
    let b = start_with(&lab.gwb.ns, &config(&pins_b.0, 2));
    assert_eq!(
        (a.workers(), b.workers()),
        (u32::from(QUEUES), u32::from(QUEUES))
    );
    // The first packets resolve the neighbours through the exception path.
    let _ = traffic::ping(&lab.lana.ns, "10.102.0.2", 3, Duration::from_millis(20));
    Sites {
        a,
        b,
        pins_a,
        pins_b,
        lab,
    }
}

/// Datagrams with unique ids from many sockets of LAN host A to one socket of LAN host B,
/// which records every id it receives.
struct Datagrams {
    senders: Vec<UdpSocket>,
    dst: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    receiver: Option<JoinHandle<Vec<u32>>>,
}

impl Datagrams {
    fn open(from: &Netns, to: &Netns) -> Datagrams {
        let socket = to
            .enter(|| UdpSocket::bind(("0.0.0.0", PORT)))
            .unwrap()
            .unwrap_or_else(|e| panic!("binding the receiver: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        // Room for every datagram of a stream: on a busy machine the receiver thread may not
        // run for a while, and a full socket buffer would drop what the data plane delivered.
        roamgate_lab::packet::force_recv_buffer(socket.as_fd(), RECV_BUFFER)
            .unwrap_or_else(|e| panic!("{e}"));
        let senders = from
            .enter(|| {
                (0..FLOWS)
                    .map(|i| UdpSocket::bind(("10.101.0.2", 20_000 + i)))
                    .collect::<std::io::Result<Vec<_>>>()
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("binding the senders: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let receiver = {
            let (stop, received) = (Arc::clone(&stop), Arc::clone(&received));
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Acquire) {
                    if let Ok((8, _)) = socket.recv_from(&mut buf) {
                        let (id, mark) = (&buf[..4], &buf[4..8]);
                        assert_eq!(mark, MARK, "a datagram that was not sent");
                        ids.push(u32::from_be_bytes(id.try_into().unwrap()));
                        received.fetch_add(1, Ordering::Release);
                    }
                }
                ids
            })
        };
        Datagrams {
            senders,
            dst: SocketAddr::from(([10, 102, 0, 2], PORT)),
            stop,
            received,
            receiver: Some(receiver),
        }
    }

    /// Sends the ids `ids`, id `i` from flow `i % FLOWS`, paced by rounds of one datagram per
    /// flow, then waits until the datagrams in flight have arrived ([`Datagrams::settle`]).
    fn send(&self, ids: std::ops::Range<u32>) {
        for id in ids {
            let mut payload = [0u8; 8];
            payload[..4].copy_from_slice(&id.to_be_bytes());
            payload[4..].copy_from_slice(&MARK);
            let socket = &self.senders[id as usize % self.senders.len()];
            socket
                .send_to(&payload, self.dst)
                .unwrap_or_else(|e| panic!("sending id {id}: {e}"));
            if id % u32::from(FLOWS) == u32::from(FLOWS) - 1 {
                // Paced, so no ring or socket buffer on the way overflows.
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        self.settle();
    }

    /// Waits until no datagram has arrived for a while.
    fn settle(&self) {
        let mut last = self.received.load(Ordering::Acquire);
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.received.load(Ordering::Acquire);
            if now != last {
                last = now;
                quiet_since = Instant::now();
            }
        }
    }

    /// Stops the receiver and returns how often each id arrived.
    fn finish(mut self) -> HashMap<u32, u32> {
        self.stop.store(true, Ordering::Release);
        let ids = self.receiver.take().unwrap().join().unwrap();
        let mut seen = HashMap::new();
        for id in ids {
            *seen.entry(id).or_insert(0) += 1;
        }
        seen
    }
}

impl Drop for Datagrams {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Asserts that every id of `0..sent` arrived exactly once and nothing else did.
fn assert_exactly_once(seen: &HashMap<u32, u32>, sent: u32, context: &str) {
    let duplicated: Vec<_> = seen.iter().filter(|&(_, &n)| n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "ids delivered twice: {duplicated:?}\n{context}"
    );
    let missing: Vec<u32> = (0..sent).filter(|id| !seen.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {sent} ids never arrived (first: {:?})\n{context}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(
        seen.len(),
        sent as usize,
        "ids never sent arrived\n{context}"
    );
}

/// The fabric port on uplink `uplink` (0-based) that leads to gateway B: its namespace and
/// interface.
fn port_to_b(s: &Sites, uplink: usize) -> (&Netns, &str) {
    let port = &s.lab.gwb.uplink(uplink).port;
    let ns = s
        .lab
        .fabric_ns(&port.netns)
        .unwrap_or_else(|| panic!("no fabric namespace {}", port.netns));
    (ns, &port.ifname)
}

/// Makes the bridge of ISP `uplink + 1` send to gateway B on TX queue `q` what it forwards
/// on CPU `q` (XPS), so B receives on the queue index of the worker of A that sent.
///
/// Gateway A's worker `q` runs on CPU `q` (`cpus = [0, 1]`) and sends on WAN queue `q`; veth
/// hands the frame to the bridge's port on RX queue `q`, and the bridge forwards it on the
/// same CPU. Without XPS the bridge picks the TX queue towards B by flow hash, which for ESP
/// covers the addresses and the SPI: every packet of one SA would reach one queue of B.
fn keep_queue_by_cpu(s: &Sites, uplink: usize) {
    let (ns, dev) = port_to_b(s, uplink);
    for q in 0..QUEUES {
        let path = format!("/sys/class/net/{dev}/queues/tx-{q}/xps_cpus");
        ns.exec("sh", &["-c", &format!("echo {:x} > {path}", 1u32 << q)])
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Records what the fabric sends to gateway B on uplink `uplink` (0-based).
fn tap_to_b(s: &Sites, uplink: usize) -> PacketTap {
    let (ns, dev) = port_to_b(s, uplink);
    PacketTap::start(ns, dev)
}

/// The A → B SA's packets among `frames` (IPv4, from the IP header on).
fn sa_packets(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames
        .into_iter()
        .filter(|f| f.len() > 14 && f[12..14] == [0x08, 0x00])
        .map(|f| f[14..].to_vec())
        .filter(|p| esp_of(p).is_some_and(|(spi, _)| spi == SPI_AB))
        .collect()
}

/// The SPI and sequence number of an IPv4 ESP packet.
fn esp_of(packet: &[u8]) -> Option<(u32, u32)> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || *packet.get(9)? != 50 {
        return None;
    }
    let esp = packet.get(ihl..ihl + 8)?;
    Some((
        u32::from_be_bytes(esp[..4].try_into().ok()?),
        u32::from_be_bytes(esp[4..].try_into().ok()?),
    ))
}

/// Asserts that no sequence number appears twice among `packets`; returns them sorted.
fn assert_unique_seqs(packets: &[&Vec<u8>], context: &str) -> Vec<u32> {
    let mut seqs: Vec<u32> = packets
        .iter()
        .filter_map(|p| esp_of(p))
        .map(|e| e.1)
        .collect();
    seqs.sort_unstable();
    let repeated: Vec<u32> = seqs
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(
        repeated.is_empty(),
        "ESP sequence numbers sent twice: {:?}\n{context}",
        &repeated[..repeated.len().min(10)]
    );
    seqs
}

/// Per-worker values of forwarding counter `f`.
fn per_worker(pins: &Path, f: Forward) -> Vec<u64> {
    (0..u32::from(QUEUES))
        .map(|w| worker_counter(pins, w, f.slot()))
        .collect()
}

/// `ethtool -S` of `dev` in `ns`, for messages.
fn queue_stats(ns: &Netns, dev: &str) -> String {
    ns.exec_text("ethtool", &["-S", dev])
        .unwrap_or_else(|e| format!("{e}"))
        .lines()
        .filter(|l| l.contains("queue") && !l.trim_end().ends_with(": 0"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn context(s: &Sites) -> String {
    format!(
        "A: {} (encapsulated per worker {:?})\nB: {} (decapsulated per worker {:?})\nA lan: {}\nB wan1: {}\nB wan2: {}",
        show(&s.pins_a.0),
        per_worker(&s.pins_a.0, Forward::Encapsulated),
        show(&s.pins_b.0),
        per_worker(&s.pins_b.0, Forward::Decapsulated),
        queue_stats(&s.lab.gwa.ns, "lan"),
        queue_stats(&s.lab.gwb.ns, "wan1"),
        queue_stats(&s.lab.gwb.ns, "wan2"),
    )
}

/// `after - before`, element by element.
fn delta(after: &[u64], before: &[u64]) -> Vec<u64> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

#[test]
fn both_workers_of_each_gateway_carry_one_sa_without_reusing_a_sequence_number() {
    let s = multiqueue_sites("mq");
    keep_queue_by_cpu(&s, 0);
    let (pins_a, pins_b) = (&s.pins_a.0, &s.pins_b.0);
    let enc_before = per_worker(pins_a, Forward::Encapsulated);
    let dec_before = per_worker(pins_b, Forward::Decapsulated);
    let tap = tap_to_b(&s, 0);
    let stream = Datagrams::open(&s.lab.lana.ns, &s.lab.lanb.ns);
    let total = 64 * u32::from(FLOWS);
    stream.send(0..total);
    let seen = stream.finish();
    let esp = sa_packets(tap.stop());
    let ctx = context(&s);
    let encapsulated = delta(&per_worker(pins_a, Forward::Encapsulated), &enc_before);
    let decapsulated = delta(&per_worker(pins_b, Forward::Decapsulated), &dec_before);
    println!(
        "{ctx}\nthe stream: encapsulated per worker {encapsulated:?}, decapsulated per worker {decapsulated:?}, {} ESP packets on the wire",
        esp.len()
    );

    assert!(
        encapsulated.iter().all(|&n| n > 0),
        "every worker of A encapsulates for the SA\n{ctx}"
    );
    assert!(
        decapsulated.iter().all(|&n| n > 0),
        "every worker of B decapsulates for the SA\n{ctx}"
    );
    // Every packet A encapsulated crossed the tap, and none repeats a sequence number.
    let seqs = assert_unique_seqs(&esp.iter().collect::<Vec<_>>(), &ctx);
    assert_eq!(
        seqs.len() as u64,
        encapsulated.iter().sum::<u64>(),
        "the tap saw every ESP packet of the stream\n{ctx}"
    );
    assert_exactly_once(&seen, total, &ctx);
    for reason in [DropReason::Replay, DropReason::ReplayTooOld] {
        assert_eq!(drops(pins_b, reason), 0, "{reason:?}\n{ctx}");
    }
    assert_eq!(
        decapsulated.iter().sum::<u64>(),
        u64::from(total),
        "B decapsulated each packet once\n{ctx}"
    );
}

/// How many of gateway B's packets arriving on `dev` XDP redirected from RX queue `q`.
fn redirected_on_queue(ns: &Netns, dev: &str, q: u16) -> u64 {
    let text = ns
        .exec_text("ethtool", &["-S", dev])
        .unwrap_or_else(|e| panic!("{e}"));
    let name = format!("rx_queue_{q}_xdp_redirect:");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&name))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Sends `frame` on `link` from a thread pinned to CPU `cpu`: the fabric's XPS then picks TX
/// queue `cpu` (see [`keep_queue_by_cpu`]).
fn send_from_cpu(link: &RawLink, cpu: usize, frame: &[u8]) {
    std::thread::scope(|scope| {
        scope.spawn(|| {
            roamgate_lab::process::pin_to_cpu(0, cpu).unwrap_or_else(|e| panic!("{e}"));
            link.send(frame);
        });
    });
}

/// `packet` (an ESP packet of the SA as captured on ISP 1) as it would look on ISP 2: the
/// same ESP bytes between ISP 2's addresses, in a frame for gateway B's second uplink.
fn on_isp2(s: &Sites, packet: &[u8]) -> Vec<u8> {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let (a, b) = (&s.lab.gwa, &s.lab.gwb);
    ipv4_frame(
        mac_of(&b.ns, &b.uplink(1).ifname),
        mac_of(&a.ns, &a.uplink(1).ifname),
        a.uplink(1).v4.octets(),
        b.uplink(1).v4.octets(),
        50,
        &packet[ihl..],
    )
}

#[test]
fn after_the_sa_moves_to_the_other_uplink_sequence_numbers_stay_unique_and_replays_are_dropped() {
    let s = multiqueue_sites("mqmove");
    let (pins_a, pins_b) = (&s.pins_a.0, &s.pins_b.0);
    let (a, b) = (&s.lab.gwa, &s.lab.gwb);
    let (a2, b2) = (a.uplink(1).v4.to_string(), b.uplink(1).v4.to_string());
    // A's data plane learns its next hop on ISP 2 before the stream: otherwise the first
    // packets after the move take the exception path, and the kernel sends all of them on the
    // one TX queue its flow hash picks for the SA.
    let (a1, b1) = (a.uplink(0).v4.to_string(), b.uplink(0).v4.to_string());
    move_endpoint(pins_a, &a2, &b2);
    let resolved = (0..50).any(|_| {
        let exceptions = forwarded(pins_a, Forward::Exception);
        let r = traffic::ping(&s.lab.lana.ns, "10.102.0.2", 1, Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("{e}"));
        r.received == 1 && forwarded(pins_a, Forward::Exception) == exceptions
    });
    assert!(
        resolved,
        "A never resolved its next hop on ISP 2\n{}",
        context(&s)
    );
    move_endpoint(pins_a, &a1, &b1);
    keep_queue_by_cpu(&s, 0);
    keep_queue_by_cpu(&s, 1);
    let enc_before = forwarded(pins_a, Forward::Encapsulated);
    let taps = [tap_to_b(&s, 0), tap_to_b(&s, 1)];
    let stream = Datagrams::open(&s.lab.lana.ns, &s.lab.lanb.ns);
    // More than a replay window before the move, well under one after it.
    const TOTAL: u32 = 4096;
    const AFTER_MOVE: u32 = 1024;
    const { assert!(AFTER_MOVE as u64 + 256 < WINDOW && (TOTAL - AFTER_MOVE) as u64 > WINDOW + 256) };
    let total = TOTAL;
    let move_at = u64::from(TOTAL - AFTER_MOVE);
    let redirected_before: Vec<u64> = (0..QUEUES)
        .map(|q| redirected_on_queue(&b.ns, &b.uplink(1).ifname, q))
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| stream.send(0..total));
        let deadline = Instant::now() + Duration::from_secs(30);
        while stream.received.load(Ordering::Acquire) < move_at {
            assert!(
                Instant::now() < deadline,
                "the stream stalled before the move\n{}",
                context(&s)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Both directions move to ISP 2, mid-stream.
        move_endpoint(pins_a, &a2, &b2);
        move_endpoint(pins_b, &b2, &a2);
    });
    let [tap1, tap2] = taps;
    let (wan1, wan2) = (sa_packets(tap1.stop()), sa_packets(tap2.stop()));
    let ctx = context(&s);
    let encapsulated = forwarded(pins_a, Forward::Encapsulated) - enc_before;
    println!(
        "{ctx}\nthe stream: {encapsulated} packets encapsulated, {} on ISP 1, {} on ISP 2",
        wan1.len(),
        wan2.len()
    );

    // Traffic continued on ISP 2, reaching both of B's queues there, and no sequence number
    // was used twice, on either uplink or across them.
    assert!(!wan1.is_empty() && !wan2.is_empty(), "{ctx}");
    for q in 0..QUEUES {
        let n = redirected_on_queue(&b.ns, &b.uplink(1).ifname, q);
        assert!(
            n > redirected_before[usize::from(q)],
            "B's queue {q} on ISP 2 carried the SA after the move\n{ctx}"
        );
    }
    let both: Vec<&Vec<u8>> = wan1.iter().chain(&wan2).collect();
    let seqs = assert_unique_seqs(&both, &ctx);
    assert_eq!(
        seqs.len() as u64,
        encapsulated,
        "the taps saw every ESP packet\n{ctx}"
    );
    for reason in [DropReason::Replay, DropReason::ReplayTooOld] {
        assert_eq!(
            drops(pins_b, reason),
            0,
            "{reason:?} before any replay\n{ctx}"
        );
    }

    // Replays of ISP 1's packets on ISP 2: the newest one is inside the window, the oldest far
    // behind it. Neither is decapsulated or delivered.
    let seq_of = |p: &Vec<u8>| esp_of(p).unwrap().1;
    let newest = wan1.iter().max_by_key(|p| seq_of(p)).unwrap();
    let oldest = wan1.iter().min_by_key(|p| seq_of(p)).unwrap();
    let highest = u64::from(*seqs.last().unwrap());
    assert!(highest - u64::from(seq_of(newest)) + 64 < WINDOW, "{ctx}");
    assert!(highest - u64::from(seq_of(oldest)) > WINDOW + 64, "{ctx}");
    let decapsulated = forwarded(pins_b, Forward::Decapsulated);
    let (port_ns, port) = port_to_b(&s, 1);
    let link = RawLink::open(port_ns, port);
    let b_wan2 = &b.uplink(1).ifname;
    for (packet, reason) in [
        (newest, DropReason::Replay),
        (oldest, DropReason::ReplayTooOld),
    ] {
        // Into each of B's queues on ISP 2 in turn: every worker must refuse it.
        for q in 0..QUEUES {
            let (counted, redirected) =
                (drops(pins_b, reason), redirected_on_queue(&b.ns, b_wan2, q));
            send_from_cpu(&link, usize::from(q), &on_isp2(&s, packet));
            let deadline = Instant::now() + Duration::from_secs(5);
            while drops(pins_b, reason) == counted && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let ctx = context(&s);
            assert_eq!(
                redirected_on_queue(&b.ns, b_wan2, q),
                redirected + 1,
                "the replay reached B's queue {q} on ISP 2\n{ctx}"
            );
            assert_eq!(
                drops(pins_b, reason),
                counted + 1,
                "sequence number {} replayed into B's queue {q} on ISP 2: {reason:?}\n{ctx}",
                seq_of(packet),
            );
        }
    }
    stream.settle();
    assert_eq!(
        forwarded(pins_b, Forward::Decapsulated),
        decapsulated,
        "a replay was decapsulated\n{}",
        context(&s)
    );
    let ctx = context(&s);
    assert_exactly_once(&stream.finish(), total, &ctx);
    assert_eq!(drops(pins_b, DropReason::IntegrityFailed), 0, "{ctx}");
}
