//! The control/data interface on the real kernel: the mmapped SA and endpoint tables shared by
//! two openers, the maps derived from an SA (SPI index, protected prefixes), and the LAN role
//! of the program through `BPF_PROG_TEST_RUN`, Katran-style: a table of frames with the
//! expected verdict and LAN outcome counter.
//!
//! LAN test runs claim to arrive on `lo` (ifindex 1 in every namespace) RX queue 0, which the
//! test gives the LAN role with its sockets from `xsk_map` slot 8; an AF_XDP socket bound to
//! `lo` in a namespace of the test's own sits in that slot, so a steered frame returns
//! `XDP_REDIRECT`.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use roamgate_ebpf::abi::{self, Counter};
use roamgate_ebpf::{
    Cipher, Classifier, Counters, Direction, Endpoint, EndpointTable, NextHop, Prefix, SaLimits,
    SaMode, SaSpec, SaTable, WorkerCounters, XdpAction,
};
use roamgate_lab::Netns;
use support::frames::*;
use support::xsk::XskSocket;

const LO: u32 = 1;
const LAN_BASE: u32 = 8;
const KEY: [u8; 20] = [0x11; 20];

fn outbound<'a>(spi: u32, remote_ts: &'a [Prefix]) -> SaSpec<'a> {
    SaSpec {
        spi,
        direction: Direction::Outbound,
        mode: SaMode::Tunnel,
        cipher: Cipher::Aes128Gcm16,
        esn: false,
        key: &KEY,
        limits: SaLimits::default(),
        local_ts: &[],
        remote_ts,
    }
}

fn prefixes(list: &[&str]) -> Vec<Prefix> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

#[test]
fn two_openers_share_the_tables_and_see_whole_records() {
    let (_classifier, dir) = support::classifier("tables");
    let mut writer = EndpointTable::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let reader = EndpointTable::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let a = Endpoint {
        local: "198.18.1.1".parse().unwrap(),
        remote: "198.18.1.2".parse().unwrap(),
        udp: None,
        next_hop: None,
    };
    let b = Endpoint {
        local: "fd00:18:2::1".parse().unwrap(),
        remote: "fd00:18:2::2".parse().unwrap(),
        udp: Some((4500, 4501)),
        next_hop: Some(NextHop {
            ifindex: 7,
            next_hop_mac: [2, 0, 0, 0, 0, 9],
            src_mac: [2, 0, 0, 0, 0, 8],
        }),
    };
    assert_eq!(reader.generation(5), 0);
    assert_eq!(writer.update(5, &a).unwrap(), 1);
    assert_eq!(Endpoint::from_record(&reader.read(5).unwrap()), Some(a));
    assert_eq!(writer.update(5, &b).unwrap(), 2);
    assert_eq!(reader.generation(5), 2);
    assert_eq!(Endpoint::from_record(&reader.read(5).unwrap()), Some(b));
    let err = writer.update(abi::SA_MAX, &a).unwrap_err().to_string();
    assert!(err.contains("out of range"), "{err}");

    // A writer rewriting the slot as fast as it can; the reader, through its own mapping,
    // sees only whole records.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut seen = [0u64; 2];
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..100_000 {
                writer.update(6, if i % 2 == 0 { &a } else { &b }).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(r) = reader.read(6) {
                match Endpoint::from_record(&r) {
                    Some(e) if e == a => seen[0] += 1,
                    Some(e) if e == b => seen[1] += 1,
                    None if r.generation == 0 => {}
                    other => panic!("torn endpoint record {other:?} ({r:?})"),
                }
            }
        }
    });
    println!("whole records seen: {seen:?}");

    // The worker counters, through two mappings.
    let c1 = WorkerCounters::open(dir.path()).unwrap();
    let c2 = WorkerCounters::open(dir.path()).unwrap();
    c1.store(3, 5, 42);
    c1.store(4, 5, 8);
    assert_eq!(c2.load(3, 5), 42);
    assert_eq!(c2.total(5), 50);
    c1.reset(3);
    assert_eq!(c2.total(5), 8);
}

#[test]
fn an_installed_sa_is_reachable_and_a_removed_one_is_not() {
    let (classifier, dir) = support::classifier("sa");
    // The SA table holds keys: only its owner (root) may open the pin.
    use std::os::unix::fs::PermissionsExt as _;
    for map in [abi::maps::SA_TABLE, abi::maps::ENDPOINTS, abi::maps::SA_SEQ] {
        let mode = std::fs::metadata(dir.path().join(map))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{map} is pinned with mode {mode:o}");
    }
    let mut table = SaTable::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let reader = SaTable::open_reader(dir.path()).unwrap();
    let ts = prefixes(&["10.102.0.0/24", "fd00:66::/64"]);
    let g = table.install(3, &outbound(0x1111, &ts)).unwrap();
    assert_eq!(g, 1);
    let r = reader.read(3).unwrap();
    assert_eq!(r.state, abi::SA_STATE_ACTIVE);
    assert_eq!(r.direction, abi::SA_DIR_OUT);
    assert_eq!(&r.key[..20], &KEY);
    assert_eq!(Prefix::from_record(&r.remote_ts[1]), Some(ts[1]));

    // An inbound SA puts its SPI in the index.
    let inbound = SaSpec {
        direction: Direction::Inbound,
        ..outbound(0x2222, &[])
    };
    table.install(4, &inbound).unwrap();
    assert_eq!(classifier.spi(0x2222).unwrap().map(|v| v.sa_slot), Some(4));

    // Sequence numbers persist per slot, never go down, and a new install resets them.
    reader.persist_seq(3, 1000);
    reader.persist_seq(3, 10);
    assert_eq!(table.persisted_seq(3), 1000);
    table.install(3, &outbound(0x1112, &ts)).unwrap();
    assert_eq!(table.persisted_seq(3), 0);
    assert_eq!(reader.generation(3), 2);

    table.remove(4).unwrap();
    assert_eq!(classifier.spi(0x2222).unwrap(), None);
    assert_eq!(reader.read(4).unwrap().state, abi::SA_STATE_EMPTY);
    assert!(SaTable::open_reader(dir.path()).is_ok());
    let err = reader.persisted_seq(abi::SA_MAX);
    assert_eq!(err, 0);
}

#[test]
fn the_change_bitmap_names_each_written_slot_once() {
    let (_classifier, dir) = support::classifier("dirty");
    let mut writer = SaTable::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let other_writer = SaTable::open(dir.path()).unwrap();
    let reader = SaTable::open_reader(dir.path()).unwrap();
    let changed = || {
        let mut slots = Vec::new();
        reader.take_changed(|s| slots.push(s));
        slots
    };
    assert_eq!(changed(), Vec::<u32>::new());
    let ts = prefixes(&["10.102.0.0/24"]);
    // Slots in several words, the last slot included, one written twice.
    let last = abi::SA_MAX - 1;
    for slot in [70, 3, last, 3, 64] {
        writer.install(slot, &outbound(0x1000 + slot, &ts)).unwrap();
    }
    assert_eq!(changed(), vec![3, 64, 70, last]);
    assert_eq!(changed(), Vec::<u32>::new(), "taken bits are cleared");
    // Removals count, and so do writes of a second process's handle.
    writer.remove(70).unwrap();
    drop(writer);
    let mut other_writer = other_writer;
    other_writer.install(2048, &outbound(0x3000, &ts)).unwrap();
    assert_eq!(changed(), vec![70, 2048]);
    const { assert!(abi::SA_MAX >= 65536 && roamgate_ebpf::STATIC_SA_SLOTS < abi::SA_MAX) };
}

/// A classifier with lo as a LAN interface, an AF_XDP socket in its slot, and protected
/// prefixes from an outbound SA.
struct LanFixture {
    classifier: Classifier,
    table: SaTable,
    _dir: support::PinDir,
    _xsk: XskSocket,
    _ns: Netns,
}

fn lan_fixture(tag: &str) -> LanFixture {
    let (mut classifier, dir) = support::classifier(tag);
    classifier
        .set_iface(LO, abi::IFACE_ROLE_LAN, LAN_BASE)
        .unwrap();
    classifier
        .add_local_addr(IpAddr::V4(Ipv4Addr::new(10, 102, 0, 1)))
        .unwrap();
    let mut table = SaTable::open(dir.path()).unwrap();
    let ts = prefixes(&["10.102.0.0/24", "fd00:66::/64", "172.16.0.0/12"]);
    table.install(1, &outbound(0x5001, &ts)).unwrap();
    let ns = Netns::new("tlan").unwrap_or_else(|e| panic!("{e}"));
    let xsk = ns
        .enter(|| XskSocket::bind(1, 0))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("binding an AF_XDP socket to lo: {e}"));
    classifier.register_xsk(LAN_BASE, xsk.as_raw_fd()).unwrap();
    LanFixture {
        classifier,
        table,
        _dir: dir,
        _xsk: xsk,
        _ns: ns,
    }
}

fn run_lan(classifier: &Classifier, frame: &[u8], queue: u32) -> (XdpAction, Counters) {
    let before = classifier.counters().unwrap();
    let verdict = classifier
        .test_run_on(frame, Some((LO, queue)))
        .unwrap_or_else(|e| panic!("{e}"));
    let d = classifier.counters().unwrap().since(&before);
    let lan: u64 = Counter::LAN_OUTCOMES.iter().map(|c| d.get(*c)).sum();
    assert_eq!(lan, 1, "one LAN outcome per frame: {}", support::show(&d));
    assert_eq!(
        d.frames(),
        0,
        "LAN frames are not WAN classes: {}",
        support::show(&d)
    );
    (verdict, d)
}

fn v4_to(dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let mut f = eth(
        ETH_P_IP,
        &V4::new(Ipv4Addr::new(10, 101, 0, 2), dst, IPPROTO_UDP).packet(&udp(
            4000,
            5000,
            &[1, 2, 3, 4],
        )),
    );
    f[14 + 8] = ttl;
    f
}

fn v6_to(dst: Ipv6Addr, hop_limit: u8) -> Vec<u8> {
    let mut f = eth(
        ETH_P_IPV6,
        &ipv6(
            "fd00:65::2".parse().unwrap(),
            dst,
            IPPROTO_UDP,
            &[],
            &udp(4000, 5000, &[1, 2, 3, 4]),
        ),
    );
    f[14 + 7] = hop_limit;
    f
}

#[test]
fn lan_frames_to_protected_prefixes_are_steered_and_the_rest_passed() {
    use Counter::*;
    let fx = lan_fixture("lan");
    let cases: Vec<(&str, Vec<u8>, XdpAction, Counter)> = vec![
        (
            "IPv4 to a protected /24",
            v4_to(Ipv4Addr::new(10, 102, 0, 2), 64),
            XdpAction::Redirect,
            LanRedirected,
        ),
        (
            "IPv4 inside a protected /12",
            v4_to(Ipv4Addr::new(172, 20, 1, 1), 64),
            XdpAction::Redirect,
            LanRedirected,
        ),
        (
            "IPv6 to a protected /64",
            v6_to("fd00:66::2".parse().unwrap(), 64),
            XdpAction::Redirect,
            LanRedirected,
        ),
        (
            "IPv4 to an unprotected address",
            v4_to(Ipv4Addr::new(10, 103, 0, 2), 64),
            XdpAction::Pass,
            LanPassed,
        ),
        (
            "IPv6 to an unprotected address",
            v6_to("fd00:67::2".parse().unwrap(), 64),
            XdpAction::Pass,
            LanPassed,
        ),
        (
            "IPv4 to the gateway's own address inside the prefix",
            v4_to(Ipv4Addr::new(10, 102, 0, 1), 64),
            XdpAction::Pass,
            LanPassed,
        ),
        (
            "IPv4 TTL 1 to a protected prefix (the kernel answers with ICMP)",
            v4_to(Ipv4Addr::new(10, 102, 0, 2), 1),
            XdpAction::Pass,
            LanTtlExpired,
        ),
        (
            "IPv6 hop limit 0",
            v6_to("fd00:66::2".parse().unwrap(), 0),
            XdpAction::Pass,
            LanTtlExpired,
        ),
        ("ARP", arp_request(), XdpAction::Pass, LanPassed),
        (
            "an 802.1Q-tagged frame",
            eth_vlan(
                ETH_P_8021Q,
                5,
                ETH_P_IP,
                &V4::new(
                    Ipv4Addr::new(10, 101, 0, 2),
                    Ipv4Addr::new(10, 102, 0, 2),
                    17,
                )
                .packet(&[0; 8]),
            ),
            XdpAction::Pass,
            LanPassed,
        ),
        (
            "IPv4 header cut short",
            v4_to(Ipv4Addr::new(10, 102, 0, 2), 64)[..30].to_vec(),
            XdpAction::Pass,
            LanPassed,
        ),
    ];
    for (name, frame, verdict, outcome) in cases {
        let (v, d) = run_lan(&fx.classifier, &frame, 0);
        assert_eq!(v, verdict, "{name}: {}", support::show(&d));
        assert_eq!(d.get(outcome), 1, "{name}: {}", support::show(&d));
    }

    // Every truncated prefix of a steered frame is passed or steered whole: never a crash.
    let frame = v6_to("fd00:66::2".parse().unwrap(), 64);
    for len in 14..frame.len() {
        let (v, _) = run_lan(&fx.classifier, &frame[..len], 0);
        let whole_header = len >= 14 + 40;
        assert_eq!(
            v == XdpAction::Redirect,
            whole_header,
            "prefix of {len} bytes: {v:?}"
        );
    }
}

#[test]
fn lan_steering_follows_the_sa_table_and_the_socket_slot() {
    let mut fx = lan_fixture("lanmap");
    let frame = v4_to(Ipv4Addr::new(10, 102, 0, 2), 64);
    assert_eq!(run_lan(&fx.classifier, &frame, 0).0, XdpAction::Redirect);
    // Removing the SA removes its prefixes: the next frame goes to the kernel.
    fx.table.remove(1).unwrap();
    let (v, d) = run_lan(&fx.classifier, &frame, 0);
    assert_eq!((v, d.lan_passed), (XdpAction::Pass, 1));
    // Back, on another slot; with the socket's slot emptied the frame is passed and counted.
    fx.table
        .install(9, &outbound(0x5002, &prefixes(&["10.102.0.0/16"])))
        .unwrap();
    assert_eq!(run_lan(&fx.classifier, &frame, 0).0, XdpAction::Redirect);
    fx.classifier.unregister_xsk(LAN_BASE).unwrap();
    let (v, d) = run_lan(&fx.classifier, &frame, 0);
    assert_eq!((v, d.lan_no_xsk), (XdpAction::Pass, 1));
    // A WAN interface ignores protected prefixes.
    fx.classifier
        .set_iface(LO, abi::IFACE_ROLE_WAN, LAN_BASE)
        .unwrap();
    let before = fx.classifier.counters().unwrap();
    let v = fx.classifier.test_run_on(&frame, Some((LO, 0))).unwrap();
    let d = fx.classifier.counters().unwrap().since(&before);
    assert_eq!((v, d.other, d.lan_passed), (XdpAction::Pass, 1, 0));
}
