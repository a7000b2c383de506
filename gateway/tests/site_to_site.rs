//! roamgate ↔ roamgate site to site in the lab (topology (b)), manual keying: two data planes
//! in their gateways' namespaces with real XDP and AF_XDP, LAN hosts on either side. Ping and
//! iperf3 (TCP, UDP) between the LAN hosts, IPv4 and IPv6 inner traffic, raw ESP and ESP in
//! UDP over IPv4, raw ESP over IPv6, and BEET mode; nftables counters on the gateways prove
//! that no ESP reached their kernel stacks.
//!
//! Needs root, bpffs, iperf3 and nft; fails (never skips) with the reason otherwise.

mod lab;

use std::time::Duration;

use lab::*;
use roamgate_ebpf::abi::Counter;
use roamgate_gateway::DropReason;
use roamgate_gateway::dataplane::Forward;
use roamgate_lab::capture::{count_esp_in_kernel, esp_in_kernel};
use roamgate_lab::traffic;

fn ping_ok(from: &roamgate_lab::Netns, dst: &str, count: u32) -> traffic::PingReport {
    traffic::ping(from, dst, count, Duration::from_millis(20)).unwrap_or_else(|e| panic!("{e}"))
}

fn traffic_flows(encap: Encap) {
    let v6_inner = encap != Encap::Beet;
    let s = sites(&format!("{encap:?}").to_lowercase(), encap);
    count_esp_in_kernel(&s.lab.gwa.ns).unwrap();
    count_esp_in_kernel(&s.lab.gwb.ns).unwrap();
    let (lana, lanb) = (&s.lab.lana.ns, &s.lab.lanb.ns);

    // The first packets resolve the neighbours (through the exception path); then every
    // echo must come back.
    ping_ok(lana, "10.102.0.2", 3);
    let mut pings = vec![("10.102.0.2", lana), ("10.101.0.2", lanb)];
    if v6_inner {
        ping_ok(lana, "fd00:66::2", 3);
        pings.extend([("fd00:66::2", lana), ("fd00:65::2", lanb)]);
    }
    for (dst, from) in pings {
        let r = ping_ok(from, dst, 20);
        assert_eq!(
            (r.transmitted, r.received),
            (20, 20),
            "ping {dst}: {r:?}\nA: {}\nB: {}",
            show(&s.pins_a.0),
            show(&s.pins_b.0)
        );
    }

    let logs = std::env::temp_dir().join(format!("roamgate-s2s-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let tcp = traffic::iperf3(lanb, lana, "10.102.0.2", 3, None, &logs)
        .unwrap_or_else(|e| panic!("{e}\nA: {}\nB: {}", show(&s.pins_a.0), show(&s.pins_b.0)));
    assert!(tcp.bits_per_second > 0.0, "TCP over ESP: {tcp:?}");
    // BEET binds the SA to the two hosts' IPv4 addresses: no IPv6 inside.
    let tcp6 = v6_inner.then(|| {
        let r = traffic::iperf3(lanb, lana, "fd00:66::2", 2, None, &logs)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.bits_per_second > 0.0, "TCP over ESP, IPv6 inner: {r:?}");
        r.bits_per_second / 1e6
    });
    let udp = traffic::iperf3(lanb, lana, "10.102.0.2", 2, Some("50M"), &logs)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(udp.bits_per_second > 0.0, "UDP over ESP: {udp:?}");
    assert!(
        udp.lost_percent.is_some_and(|l| l < 5.0),
        "UDP at 50 Mbit/s over ESP: {udp:?}"
    );
    println!(
        "{encap:?}: TCP {:.0} Mbit/s, TCP/IPv6 {:?} Mbit/s, UDP {:.0} Mbit/s (loss {:?} %)",
        tcp.bits_per_second / 1e6,
        tcp6.map(|t| t.round()),
        udp.bits_per_second / 1e6,
        udp.lost_percent
    );

    // ESP went to the workers, never to the kernels.
    for (name, ns, pins, gw) in [
        ("A", &s.lab.gwa.ns, &s.pins_a.0, &s.a),
        ("B", &s.lab.gwb.ns, &s.pins_b.0, &s.b),
    ] {
        let xdp = gw.classifier().unwrap().counters().unwrap();
        let steered = xdp.get(Counter::EspRedirected);
        let decapsulated = forwarded(pins, Forward::Decapsulated);
        let encapsulated = forwarded(pins, Forward::Encapsulated);
        println!(
            "{name}: XDP esp_redirected={steered} lan_redirected={}; workers: {}",
            xdp.get(Counter::LanRedirected),
            show(pins)
        );
        assert!(
            steered > 1000,
            "{name}: ESP steered to the workers: {steered}"
        );
        assert!(
            decapsulated > 1000 && encapsulated > 1000,
            "{name}: {}",
            show(pins)
        );
        assert_eq!(
            esp_in_kernel(ns).unwrap().raw,
            0,
            "{name}: ESP reached the kernel stack"
        );
        if encap == Encap::Udp {
            assert_eq!(
                xdp.get(Counter::EspInUdp),
                xdp.get(Counter::EspRedirected),
                "{name}: ESP in UDP, all of it steered"
            );
            assert_eq!(
                esp_in_kernel(ns).unwrap().in_udp,
                0,
                "{name}: ESP-in-UDP reached the kernel"
            );
        } else {
            assert_eq!(xdp.get(Counter::EspInUdp), 0, "{name}");
        }
        assert_eq!(
            drops(pins, DropReason::IntegrityFailed),
            0,
            "{name}: {}",
            show(pins)
        );
    }
}

#[test]
fn ping_and_iperf3_flow_through_raw_esp() {
    traffic_flows(Encap::Esp);
}

#[test]
fn ping_and_iperf3_flow_through_esp_in_udp() {
    traffic_flows(Encap::Udp);
}

#[test]
fn ping_and_iperf3_flow_through_esp_over_ipv6() {
    traffic_flows(Encap::Ipv6Outer);
}

#[test]
fn ping_and_iperf3_flow_through_beet_mode() {
    traffic_flows(Encap::Beet);
}

#[test]
fn traffic_of_the_gateways_themselves_goes_through_their_tun_devices() {
    let s = sites("box", Encap::Esp);
    count_esp_in_kernel(&s.lab.gwb.ns).unwrap();
    let (lana, gwa, gwb) = (&s.lab.lana.ns, &s.lab.gwa.ns, &s.lab.gwb.ns);
    let _ = traffic::ping(lana, "10.102.0.1", 3, Duration::from_millis(20));
    let _ = traffic::ping(gwa, "10.102.0.2", 3, Duration::from_millis(20));
    // A LAN host to the far gateway, the far gateway to a LAN host, gateway to gateway.
    for (from, to) in [
        (lana, "10.102.0.1"),
        (gwb, "10.101.0.2"),
        (gwa, "10.102.0.1"),
        (gwa, "fd00:66::1"),
    ] {
        let r = ping_ok(from, to, 20);
        assert_eq!(
            r.received,
            20,
            "ping {to} from {}: {r:?}\nA: {}\nB: {}",
            from.name(),
            show(&s.pins_a.0),
            show(&s.pins_b.0)
        );
    }
    for (name, pins) in [("A", &s.pins_a.0), ("B", &s.pins_b.0)] {
        assert!(
            forwarded(pins, Forward::ToTun) >= 20,
            "{name}: {}",
            show(pins)
        );
        assert!(
            forwarded(pins, Forward::FromTun) >= 20,
            "{name}: {}",
            show(pins)
        );
    }
    assert_eq!(
        esp_in_kernel(gwb).unwrap().raw,
        0,
        "ESP reached B's kernel stack"
    );
}

#[test]
fn a_neighbour_miss_after_decapsulation_goes_through_the_tun_device() {
    let s = sites("nmiss", Encap::Esp);
    let (lana, pins_a, pins_b) = (&s.lab.lana.ns, &s.pins_a.0, &s.pins_b.0);
    // Neither gateway's kernel has seen a LAN host yet (the workers took every frame), so
    // the first decapsulated packet on each side misses its neighbour: it goes into the TUN
    // device, and the kernel forwards it and resolves the neighbour.
    let first = ping_ok(lana, "10.102.0.2", 1);
    assert_eq!(
        first.received,
        1,
        "first ping: {first:?}\nA: {}\nB: {}",
        show(pins_a),
        show(pins_b)
    );
    for (name, pins) in [("A", pins_a), ("B", pins_b)] {
        assert!(
            forwarded(pins, Forward::ToTun) >= 1,
            "{name}: {}",
            show(pins)
        );
    }
    // Once the neighbours are mirrored, decapsulated packets leave through AF_XDP.
    let (tun_b, lan_b) = (
        forwarded(pins_b, Forward::ToTun),
        forwarded(pins_b, Forward::TxLan),
    );
    let r = ping_ok(lana, "10.102.0.2", 20);
    assert_eq!(r.received, 20, "{r:?}\nB: {}", show(pins_b));
    let (tun_b2, lan_b2) = (
        forwarded(pins_b, Forward::ToTun),
        forwarded(pins_b, Forward::TxLan),
    );
    assert!(
        lan_b2 - lan_b >= 15 && tun_b2 - tun_b <= 5,
        "B: to_tun {tun_b} -> {tun_b2}, tx_lan {lan_b} -> {lan_b2}\n{}",
        show(pins_b)
    );
}

#[test]
fn ipv4_packets_too_big_for_the_path_are_fragmented_before_encapsulation() {
    let s = sites("frag", Encap::Esp);
    let (lana, pins_a, pins_b) = (&s.lab.lana.ns, &s.pins_a.0, &s.pins_b.0);
    // Resolve the next hops (and so learn the links' MTU) first.
    ping_ok(lana, "10.102.0.2", 3);
    // 1500-byte datagrams with DF clear: their ESP packets would exceed the 1500-byte path.
    let out = lana
        .exec_text(
            "ping",
            &[
                "-n",
                "-c",
                "5",
                "-i",
                "0.2",
                "-W",
                "2",
                "-M",
                "dont",
                "-s",
                "1472",
                "10.102.0.2",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}\nA: {}\nB: {}", show(pins_a), show(pins_b)));
    assert!(
        out.contains("5 received"),
        "{out}\nA: {}\nB: {}",
        show(pins_a),
        show(pins_b)
    );
    // The echo requests were cut by A, the replies by B; nothing needed outer fragments.
    for (name, pins) in [("A", pins_a), ("B", pins_b)] {
        assert!(
            forwarded(pins, Forward::Fragmented) >= 5,
            "{name}: {}",
            show(pins)
        );
        assert_eq!(
            drops(pins, DropReason::OuterFragmentationNeeded),
            0,
            "{name}: {}",
            show(pins)
        );
    }
}
