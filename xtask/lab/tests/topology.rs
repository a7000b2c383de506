//! The lab's topologies and faults on the real kernel: every test builds its own namespaces.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use roamgate_lab::faults::{self, Flap, Side, SilentCut};
use roamgate_lab::topology::{Fabric, Options, RoadWarrior, SiteToSite};
use roamgate_lab::traffic::{iperf3, ping};
use roamgate_lab::{Lab, Netns, netns};

fn reachable(from: &Netns, dst: &str) -> bool {
    ping(from, dst, 2, Duration::from_millis(100))
        .map(|r| r.received > 0)
        .unwrap_or(false)
}

/// Pings `dst` from source address or interface `src`.
fn reachable_from(from: &Netns, src: &str, dst: &str) -> bool {
    from.exec(
        "ping",
        &[
            "-n", "-q", "-c", "2", "-i", "0.1", "-W", "1", "-I", src, dst,
        ],
    )
    .is_ok()
}

#[test]
fn bridges_make_isolated_segments() {
    let _lab = Lab::new("bridges_make_isolated_segments").unwrap();
    let t = RoadWarrior::build(Options::default()).unwrap();
    let gw1 = t.gw.uplink(0).v4.to_string();
    let gw2 = t.gw.uplink(1).v4.to_string();
    assert!(reachable(&t.rw.ns, &gw1), "rw reaches gw over ISP 1");
    assert!(reachable(&t.rw.ns, &gw2), "rw reaches gw over ISP 2");
    // With its ISP 2 link gone, the road warrior cannot reach the gateway's ISP 2 address
    // over ISP 1: the segments are not joined.
    faults::link_down(&t.rw, 1, Side::Fabric).unwrap();
    assert!(!reachable(&t.rw.ns, &gw2), "ISP 1 must not reach ISP 2");
    assert!(reachable(&t.rw.ns, &gw1));
    faults::link_up(&t.rw, 1, Side::Fabric).unwrap();
    let (lan_v4, lan_v6) = t.lan.lan_addr.unwrap();
    assert!(reachable(&t.gw.ns, &lan_v4.to_string()));
    assert!(reachable(&t.gw.ns, &lan_v6.to_string()));
    assert!(reachable(&t.rw.ns, &t.gw.uplink(0).v6.to_string()));
}

#[test]
fn router_reaches_every_address_over_every_uplink() {
    let _lab = Lab::new("router_reaches_every_address").unwrap();
    let t = RoadWarrior::build(Options {
        fabric: Fabric::Router,
        nat: None,
    })
    .unwrap();
    for src in [t.rw.uplink(0).v4, t.rw.uplink(1).v4] {
        for dst in [t.gw.uplink(0).v4, t.gw.uplink(1).v4] {
            assert!(
                reachable_from(&t.rw.ns, &src.to_string(), &dst.to_string()),
                "{src} → {dst}"
            );
        }
    }
    // Policy routing: traffic from uplink 2's address leaves through uplink 2 even though the
    // main table prefers uplink 1 — so cutting uplink 1 at the router must not affect it.
    let _cut = SilentCut::new(&t.rw, 0).unwrap();
    let src2 = t.rw.uplink(1).v4.to_string();
    assert!(reachable_from(
        &t.rw.ns,
        &src2,
        &t.gw.uplink(0).v4.to_string()
    ));
    let src1 = t.rw.uplink(0).v4.to_string();
    assert!(!reachable_from(
        &t.rw.ns,
        &src1,
        &t.gw.uplink(0).v4.to_string()
    ));
}

#[test]
fn nat_masquerades_the_first_uplink() {
    let _lab = Lab::new("nat_masquerades_the_first_uplink").unwrap();
    let t = RoadWarrior::build(Options {
        fabric: Fabric::Bridges,
        nat: Some(0),
    })
    .unwrap();
    let gw1 = t.gw.uplink(0).v4;
    let rx =
        t.gw.ns
            .enter(|| UdpSocket::bind(SocketAddr::new(gw1.into(), 4500)))
            .unwrap()
            .unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let tx =
        t.rw.ns
            .enter(|| UdpSocket::bind("0.0.0.0:4500"))
            .unwrap()
            .unwrap();
    tx.send_to(b"hello", SocketAddr::new(gw1.into(), 4500))
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = rx.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(
        from.ip(),
        t.rw.uplink(0).public_v4,
        "seen from the NAT's outside"
    );
    assert_ne!(
        from.ip(),
        t.rw.uplink(0).v4,
        "the inside address never leaves the NAT"
    );
}

#[test]
fn site_to_site_over_both_fabrics() {
    let _lab = Lab::new("site_to_site_over_both_fabrics").unwrap();
    for fabric in [Fabric::Bridges, Fabric::Router] {
        let t = SiteToSite::build(Options { fabric, nat: None }).unwrap();
        for i in 0..2 {
            assert!(
                reachable(&t.gwa.ns, &t.gwb.uplink(i).v4.to_string()),
                "{fabric:?} uplink {i}"
            );
        }
        let (a, _) = t.lana.lan_addr.unwrap();
        assert!(reachable(&t.gwa.ns, &a.to_string()));
        let (b, _) = t.lanb.lan_addr.unwrap();
        assert!(reachable(&t.gwb.ns, &b.to_string()));
    }
}

fn carrier(ns: &Netns, ifname: &str) -> bool {
    !ns.ip(&["-o", "link", "show", ifname])
        .unwrap()
        .contains("NO-CARRIER")
}

#[test]
fn faults_on_either_side_of_a_bridge() {
    let _lab = Lab::new("faults_on_either_side_of_a_bridge").unwrap();
    let t = RoadWarrior::build(Options::default()).unwrap();
    let gw1 = t.gw.uplink(0).v4.to_string();

    // The gateway's port on the bridge goes down: the gateway loses carrier, the road
    // warrior does not.
    faults::link_down(&t.gw, 0, Side::Fabric).unwrap();
    assert!(!carrier(&t.gw.ns, "wan1"));
    assert!(carrier(&t.rw.ns, "wan1"));
    assert!(!reachable(&t.rw.ns, &gw1));
    faults::link_up(&t.gw, 0, Side::Fabric).unwrap();
    assert!(reachable(&t.rw.ns, &gw1));

    // A silent cut: carrier stays up on both sides, packets vanish.
    let mut cut = SilentCut::new(&t.gw, 0).unwrap();
    assert!(carrier(&t.gw.ns, "wan1") && carrier(&t.rw.ns, "wan1"));
    assert!(!reachable(&t.rw.ns, &gw1));
    cut.restore().unwrap();
    assert!(reachable(&t.rw.ns, &gw1));

    // The road warrior's own interface.
    faults::link_down(&t.rw, 0, Side::Host).unwrap();
    assert!(!reachable(&t.rw.ns, &gw1));
    faults::link_up(&t.rw, 0, Side::Host).unwrap();
    assert!(reachable(&t.rw.ns, &gw1));

    // Flapping at a 200 ms period for a second: about ten transitions, link up afterwards.
    let flap = Flap::start(&t.rw, 1, Side::Fabric, Duration::from_millis(200));
    std::thread::sleep(Duration::from_secs(1));
    let transitions = flap.stop().unwrap();
    assert!((6..=14).contains(&transitions), "{transitions} transitions");
    assert!(carrier(&t.rw.ns, "wan2"));
}

#[test]
fn namespaces_are_removed_on_drop_and_on_panic() {
    let ns = Netns::new("t").unwrap();
    let name = ns.name().to_string();
    ns.exec("sleep", &["0"]).unwrap();
    let mut child = ns.command("sleep").arg("60").spawn().unwrap();
    // `ip netns exec` enters the namespace before it execs sleep: wait until it is inside.
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !ns.pids().contains(&pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "sleep never entered {name}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(ns);
    let list = roamgate_lab::cmd::run_text("ip", &["netns", "list"]).unwrap();
    assert!(!list.contains(&name), "{name} still listed");
    // The process inside was killed, not left to run out its 60 s.
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(status.signal().is_some(), "{status}");

    let result = std::panic::catch_unwind(|| {
        let ns = Netns::new("p").unwrap();
        let name = ns.name().to_string();
        std::panic::panic_any(name);
    });
    let name = *result.unwrap_err().downcast::<String>().unwrap();
    let list = roamgate_lab::cmd::run_text("ip", &["netns", "list"]).unwrap();
    assert!(!list.contains(&name), "{name} survived a panic");
}

#[test]
fn stale_namespaces_of_killed_runs_are_cleaned() {
    // A name as a run with a pid that cannot exist would have left it.
    let stale = format!("{}4194999-0stale", netns::PREFIX);
    roamgate_lab::cmd::run("ip", &["netns", "add", &stale]).unwrap();
    let _lab = Lab::new("stale_namespaces_of_killed_runs_are_cleaned").unwrap();
    let list = roamgate_lab::cmd::run_text("ip", &["netns", "list"]).unwrap();
    assert!(!list.contains(&stale));
}

#[test]
fn ping_and_iperf3_measure_the_path() {
    let lab = Lab::new("ping_and_iperf3_measure_the_path").unwrap();
    let t = RoadWarrior::build(Options::default()).unwrap();
    let gw1 = t.gw.uplink(0).v4.to_string();
    let p = ping(&t.rw.ns, &gw1, 5, Duration::from_millis(20)).unwrap();
    assert_eq!((p.transmitted, p.received), (5, 5));
    let tcp = iperf3(&t.gw.ns, &t.rw.ns, &gw1, 1, None, lab.logs()).unwrap();
    assert!(tcp.bits_per_second > 1e8, "{tcp:?}");
    let udp = iperf3(&t.gw.ns, &t.rw.ns, &gw1, 1, Some("20M"), lab.logs()).unwrap();
    assert!((1.5e7..2.5e7).contains(&udp.bits_per_second), "{udp:?}");
    assert!(udp.lost_percent.is_some());
    faults::link_down(&t.rw, 0, Side::Host).unwrap();
    let p = ping(&t.rw.ns, &gw1, 3, Duration::from_millis(20)).unwrap();
    assert_eq!(p.received, 0);
}
