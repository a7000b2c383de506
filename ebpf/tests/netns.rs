//! The classifier on a veth pair between two network namespaces, attached in driver (native)
//! mode, with a real AF_XDP socket (copy mode) on RX queue 0: crafted ESP, ESP-in-UDP, IKE,
//! NAT keepalives and garbage sent from the peer namespace must land exactly where they
//! should, with exact counters, and map writes must change the verdict while traffic flows.
//!
//! Neither namespace has IPv6 and both have static neighbour entries, so no frame reaches
//! the program that the test did not send: every counter can be checked exactly.
//!
//! Ordering is the synchronisation: the veth has one RX queue, so frames are classified in
//! the order they are sent. A frame the test expects to be dropped or passed is followed by
//! a "marker" ESP frame that must be the next one on the AF_XDP socket.

mod support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use roamgate_ebpf::abi::{Counter, SPI_F_UDP_ENCAP, SpiValue};
use roamgate_ebpf::{AttachMode, Classifier, Counters};
use roamgate_lab::Netns;
use roamgate_lab::packet::mac_text;
use support::frames::*;
use support::net::{Sender, mac_of};
use support::xsk::XskSocket;

const GW: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// Configured on the gateway's interface but not in `local_addrs`.
const GW_OTHER: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 3);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
const GW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 2);

const SPI_RAW: u32 = 0x1111_0001;
const SPI_UDP: u32 = 0x2222_0002;
const SPI_V6: u32 = 0x3333_0003;
const SPI_LATE: u32 = 0x4444_0004;
/// Sent after frames that must not reach the socket; must be the next frame it gets.
const SPI_MARKER: u32 = 0x5555_0005;

const WAIT: Duration = Duration::from_secs(3);

/// The gateway side: the classifier, its socket and the IKE sockets.
struct Gateway {
    classifier: Classifier,
    xsk: XskSocket,
    ike: UdpSocket,
    natt: UdpSocket,
    mac: [u8; 6],
    baseline: Counters,
    expected: Counters,
}

impl Gateway {
    /// Records that one more frame should have been counted in each of `counters`.
    fn expect(&mut self, counters: &[Counter]) {
        for c in counters {
            self.expected.set(*c, self.expected.get(*c) + 1);
        }
    }

    fn assert_counters(&self, when: &str) {
        let now = self.classifier.counters().unwrap().since(&self.baseline);
        assert_eq!(
            now,
            self.expected,
            "counters {when}: got [{}], expected [{}]",
            support::show(&now),
            support::show(&self.expected)
        );
    }

    /// The next frame on the AF_XDP socket, which must carry ESP with `spi` at `spi_at`.
    fn recv_esp(&mut self, spi: u32, spi_at: usize, what: &str) -> Vec<u8> {
        let frame = self
            .xsk
            .recv(WAIT)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: nothing on the AF_XDP socket within {WAIT:?}"))
            .data;
        assert!(
            frame.len() >= spi_at + 8,
            "{what}: short frame {frame:02x?}"
        );
        let got = u32::from_be_bytes(frame[spi_at..spi_at + 4].try_into().unwrap());
        assert_eq!(
            got, spi,
            "{what}: SPI {got:#x} at offset {spi_at}, expected {spi:#x}"
        );
        assert_eq!(frame[..6], self.mac, "{what}: destination MAC");
        frame
    }

    fn recv_udp(socket: &UdpSocket, what: &str) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let (n, _) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: nothing on the UDP socket: {e}"));
        buf[..n].to_vec()
    }
}

/// The peer side: sockets that send.
struct Peer {
    raw: Sender,
    packet: Sender,
    udp: UdpSocket,
}

impl Peer {
    fn esp(&self, dst: Ipv4Addr, spi: u32, seq: u32) -> Vec<u8> {
        let payload = esp(spi, seq, &esp_body(64));
        self.raw.send_ip(dst, &payload).unwrap();
        payload
    }

    fn udp_to(&self, port: u16, payload: &[u8]) {
        self.udp
            .send_to(payload, SocketAddr::from((GW, port)))
            .unwrap();
    }
}

fn sysctl(ns: &Netns, key: &str, value: &str) {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    ns.enter(|| std::fs::write(&path, value))
        .unwrap()
        .unwrap_or_else(|e| panic!("writing {path} in {}: {e}", ns.name()));
}

fn ip(ns: &Netns, args: &[&str]) {
    ns.ip(args).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn esp_is_steered_to_af_xdp_on_a_veth_in_driver_mode() {
    let (mut classifier, _dir) = support::classifier("veth");
    let gw_ns = Netns::new("xgw").unwrap_or_else(|e| panic!("{e}"));
    let peer_ns = Netns::new("xpr").unwrap_or_else(|e| panic!("{e}"));
    for ns in [&gw_ns, &peer_ns] {
        sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
        sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1");
    }
    roamgate_lab::veth(&gw_ns, "rgx0", &peer_ns, "rgx1").unwrap_or_else(|e| panic!("{e}"));
    let gw_mac = mac_of(&gw_ns, "rgx0");
    let peer_mac = mac_of(&peer_ns, "rgx1");
    ip(&gw_ns, &["addr", "add", "10.201.0.1/24", "dev", "rgx0"]);
    ip(&gw_ns, &["addr", "add", "10.201.0.3/24", "dev", "rgx0"]);
    ip(&peer_ns, &["addr", "add", "10.201.0.2/24", "dev", "rgx1"]);
    let (gw_mac_text, peer_mac_text) = (mac_text(gw_mac), mac_text(peer_mac));
    for (ns, dev, addr, mac) in [
        (&gw_ns, "rgx0", "10.201.0.2", &peer_mac_text),
        (&peer_ns, "rgx1", "10.201.0.1", &gw_mac_text),
        (&peer_ns, "rgx1", "10.201.0.3", &gw_mac_text),
    ] {
        ip(
            ns,
            &[
                "neigh",
                "replace",
                addr,
                "lladdr",
                mac,
                "dev",
                dev,
                "nud",
                "permanent",
            ],
        );
    }

    // Attach natively, bind the AF_XDP socket and the IKE sockets, all inside the namespace.
    let (mode, xsk, ike, natt) = gw_ns
        .enter(|| {
            let mode = classifier
                .attach("rgx0", AttachMode::Driver)
                .unwrap_or_else(|e| panic!("{e}"));
            let ifindex = roamgate_ebpf::Iface::from("rgx0").index().unwrap();
            let xsk = XskSocket::bind(ifindex, 0)
                .unwrap_or_else(|e| panic!("binding AF_XDP to rgx0 queue 0 (copy mode): {e}"));
            let ike = UdpSocket::bind("0.0.0.0:500").unwrap();
            let natt = UdpSocket::bind("0.0.0.0:4500").unwrap();
            (mode, xsk, ike, natt)
        })
        .unwrap();
    assert_eq!(
        mode,
        AttachMode::Driver,
        "veth must take native XDP on this kernel"
    );
    let link = gw_ns.ip(&["-d", "link", "show", "rgx0"]).unwrap();
    assert!(
        link.contains("xdp") && !link.contains("xdpgeneric"),
        "{link}"
    );
    for s in [&ike, &natt] {
        s.set_read_timeout(Some(WAIT)).unwrap();
    }
    classifier.register_xsk(0, xsk.as_raw_fd()).unwrap();
    classifier.add_local_addr(GW.into()).unwrap();
    classifier.add_local_addr(GW6.into()).unwrap();
    classifier.insert_spi(SPI_RAW, SpiValue::new(1, 0)).unwrap();
    classifier
        .insert_spi(SPI_UDP, SpiValue::new(2, SPI_F_UDP_ENCAP))
        .unwrap();
    classifier.insert_spi(SPI_V6, SpiValue::new(3, 0)).unwrap();
    classifier
        .insert_spi(SPI_MARKER, SpiValue::new(4, 0))
        .unwrap();

    let peer_ifindex = peer_ns.ifindex("rgx1").unwrap();
    let peer = peer_ns
        .enter(|| Peer {
            raw: Sender::raw_ipv4(IPPROTO_ESP).unwrap(),
            packet: Sender::packet(peer_ifindex).unwrap(),
            udp: UdpSocket::bind("0.0.0.0:4500").unwrap(),
        })
        .unwrap();

    let baseline = classifier.counters().unwrap();
    let mut gw = Gateway {
        classifier,
        xsk,
        ike,
        natt,
        mac: gw_mac,
        baseline,
        expected: Counters::default(),
    };
    use Counter::*;
    // Offsets of the SPI in what the socket receives.
    const ESP_AT: usize = 14 + 20;
    const UDP_ESP_AT: usize = 14 + 20 + 8;
    const V6_ESP_AT: usize = 14 + 40;

    // 1. Raw ESP (IP protocol 50) to the local address, known SPI: on the socket, whole.
    let sent = peer.esp(GW, SPI_RAW, 1);
    gw.expect(&[Esp, EspRedirected]);
    let frame = gw.recv_esp(SPI_RAW, ESP_AT, "raw ESP");
    assert_eq!(u16::from_be_bytes([frame[12], frame[13]]), ETH_P_IP);
    assert_eq!(frame[14 + 9], IPPROTO_ESP);
    assert_eq!(frame[14 + 16..14 + 20], GW.octets());
    assert_eq!(&frame[ESP_AT..], &sent[..], "ESP bytes arrive unchanged");
    gw.assert_counters("after raw ESP");

    // 2. ESP-in-UDP to 4500, known SPI: on the socket, not on the UDP socket.
    let payload = esp(SPI_UDP, 1, &esp_body(80));
    peer.udp_to(4500, &payload);
    gw.expect(&[EspInUdp, EspRedirected]);
    let frame = gw.recv_esp(SPI_UDP, UDP_ESP_AT, "ESP-in-UDP");
    assert_eq!(frame[14 + 9], IPPROTO_UDP);
    assert_eq!(&frame[UDP_ESP_AT..], &payload[..]);
    gw.assert_counters("after ESP-in-UDP");

    // 3. IPv6 ESP, crafted (the namespaces have no IPv6 stack; the program does not care).
    let v6 = eth_to(
        gw_mac,
        peer_mac,
        ETH_P_IPV6,
        &ipv6(PEER6, GW6, IPPROTO_ESP, &[], &esp(SPI_V6, 1, &esp_body(40))),
    );
    peer.packet.send_frame(&v6).unwrap();
    gw.expect(&[Esp, EspRedirected]);
    let frame = gw.recv_esp(SPI_V6, V6_ESP_AT, "IPv6 ESP");
    assert_eq!(frame, v6);
    gw.assert_counters("after IPv6 ESP");

    // 4. IKE on 500, IKE with the non-ESP marker on 4500, a NAT keepalive: to the stack.
    peer.udp_to(500, &ike_message());
    gw.expect(&[Ike]);
    assert_eq!(Gateway::recv_udp(&gw.ike, "IKE on 500"), ike_message());
    peer.udp_to(4500, &ike_with_marker());
    gw.expect(&[Ike]);
    assert_eq!(
        Gateway::recv_udp(&gw.natt, "IKE on 4500"),
        ike_with_marker()
    );
    peer.udp_to(4500, &[0xff]);
    gw.expect(&[NatKeepalive]);
    assert_eq!(Gateway::recv_udp(&gw.natt, "NAT keepalive"), vec![0xff]);
    gw.assert_counters("after IKE and keepalive");

    // 5. Unknown SPI to the local address: dropped, so the marker is the next frame.
    peer.esp(GW, SPI_LATE, 1);
    gw.expect(&[Esp, EspUnknownSpi]);
    peer.esp(GW, SPI_MARKER, 1);
    gw.expect(&[Esp, EspRedirected]);
    gw.recv_esp(SPI_MARKER, ESP_AT, "marker after the unknown SPI");
    gw.assert_counters("after the unknown SPI");

    // 6. Known SPI to an address of the box that is not in local_addrs: passed.
    peer.esp(GW_OTHER, SPI_RAW, 2);
    gw.expect(&[Esp, EspNotLocal]);
    peer.esp(GW, SPI_MARKER, 2);
    gw.expect(&[Esp, EspRedirected]);
    gw.recv_esp(SPI_MARKER, ESP_AT, "marker after ESP to another address");
    gw.assert_counters("after ESP to another address");

    // 7. Garbage: another UDP port, an unknown ethertype, a truncated IPv4 datagram, an IPv4
    //    header with IHL 3, a frame of two bytes past the Ethernet header.
    peer.udp_to(9, b"discard me");
    gw.expect(&[Other]);
    let mut junk = eth_to(gw_mac, peer_mac, 0x88b5, &[0xa5; 50]);
    peer.packet.send_frame(&junk).unwrap();
    gw.expect(&[Other]);
    let mut truncated = eth_to(
        gw_mac,
        peer_mac,
        ETH_P_IP,
        &V4::new(PEER, GW, IPPROTO_ESP).packet(&esp(SPI_RAW, 3, &esp_body(64))),
    );
    truncated.truncate(14 + 20 + 12);
    peer.packet.send_frame(&truncated).unwrap();
    gw.expect(&[Malformed]);
    let mut bad_ihl = V4::new(PEER, GW, IPPROTO_ESP);
    bad_ihl.ihl = Some(3);
    junk = eth_to(
        gw_mac,
        peer_mac,
        ETH_P_IP,
        &bad_ihl.packet(&esp(SPI_RAW, 4, &esp_body(16))),
    );
    peer.packet.send_frame(&junk).unwrap();
    gw.expect(&[Malformed, Ipv4BadIhl]);
    junk = eth_to(gw_mac, peer_mac, ETH_P_IP, &[0x45, 0x00]);
    peer.packet.send_frame(&junk).unwrap();
    gw.expect(&[Malformed]);
    peer.esp(GW, SPI_MARKER, 3);
    gw.expect(&[Esp, EspRedirected]);
    gw.recv_esp(SPI_MARKER, ESP_AT, "marker after the garbage");
    gw.assert_counters("after the garbage");

    // 8. An SPI inserted while traffic flows changes the verdict at once.
    gw.classifier
        .insert_spi(SPI_LATE, SpiValue::new(5, 0))
        .unwrap();
    let sent = peer.esp(GW, SPI_LATE, 2);
    gw.expect(&[Esp, EspRedirected]);
    let frame = gw.recv_esp(SPI_LATE, ESP_AT, "ESP with the SPI inserted live");
    assert_eq!(&frame[ESP_AT..], &sent[..]);
    // ... and a removal as well.
    assert!(gw.classifier.remove_spi(SPI_LATE).unwrap());
    peer.esp(GW, SPI_LATE, 3);
    gw.expect(&[Esp, EspUnknownSpi]);
    peer.esp(GW, SPI_MARKER, 4);
    gw.expect(&[Esp, EspRedirected]);
    gw.recv_esp(SPI_MARKER, ESP_AT, "marker after the SPI was removed");
    gw.assert_counters("after the live SPI changes");

    // 9. No socket in the queue's slot: known ESP is passed and counted as such.
    gw.classifier.unregister_xsk(0).unwrap();
    peer.esp(GW, SPI_RAW, 5);
    gw.expect(&[Esp, EspNoXsk]);
    let target = gw.expected;
    let seen = support::wait_for(WAIT, || {
        let now = gw.classifier.counters().unwrap().since(&gw.baseline);
        (now == target).then_some(())
    });
    assert!(seen.is_some(), "esp_no_xsk never counted");
    assert!(gw.xsk.recv(Duration::from_millis(100)).unwrap().is_none());

    // 10. A socket bound to another interface in the slot: the program redirects (and counts
    //     it so), the kernel then drops the frame, and neither socket sees it.
    let mut wrong = gw_ns
        .enter(|| XskSocket::bind(1, 0))
        .unwrap()
        .unwrap_or_else(|e| panic!("binding AF_XDP to lo: {e}"));
    gw.classifier.register_xsk(0, wrong.as_raw_fd()).unwrap();
    peer.esp(GW, SPI_RAW, 6);
    gw.expect(&[Esp, EspRedirected]);
    let target = gw.expected;
    let seen = support::wait_for(WAIT, || {
        let now = gw.classifier.counters().unwrap().since(&gw.baseline);
        (now == target).then_some(())
    });
    assert!(seen.is_some(), "the redirect was never counted");
    assert!(gw.xsk.recv(Duration::from_millis(100)).unwrap().is_none());
    assert!(wrong.recv(Duration::from_millis(50)).unwrap().is_none());
    // Not even the socket's own statistics count it.
    assert_eq!(wrong.stats().unwrap(), (0, 0, 0));
    drop(wrong);

    gw.classifier.register_xsk(0, gw.xsk.as_raw_fd()).unwrap();
    peer.esp(GW, SPI_MARKER, 5);
    gw.expect(&[Esp, EspRedirected]);
    gw.recv_esp(SPI_MARKER, ESP_AT, "marker after the socket came back");
    gw.assert_counters("at the end");

    // Nothing else was left on any socket, and the AF_XDP socket dropped nothing.
    assert!(gw.xsk.recv(Duration::from_millis(50)).unwrap().is_none());
    gw.natt.set_nonblocking(true).unwrap();
    gw.ike.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        gw.natt.recv_from(&mut buf).is_err(),
        "stray datagram on 4500"
    );
    assert!(gw.ike.recv_from(&mut buf).is_err(), "stray datagram on 500");
    let (dropped, ring_full, fill_empty) = gw.xsk.stats().unwrap();
    assert_eq!((dropped, ring_full, fill_empty), (0, 0, 0), "AF_XDP drops");
}
