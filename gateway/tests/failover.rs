//! MOBIKE's data-plane half in the lab: rewriting an SA's endpoint in the pinned endpoint
//! table, while traffic flows, moves its next outbound packets to the other uplink — no
//! restart, no rekey, loss only in flight. Then the old uplink is cut silently and traffic
//! keeps flowing, which proves it left through the new one.
//!
//! Needs root and bpffs; fails (never skips) with the reason otherwise.

mod lab;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab::*;
use roamgate_gateway::dataplane::Forward;
use roamgate_lab::faults::SilentCut;
use roamgate_lab::traffic::{self, ProbeConfig, ProbeStream};

/// How many probes may be lost while the endpoint moves: those in flight on the old path.
const IN_FLIGHT: u64 = 10;

#[test]
fn rewriting_the_endpoint_moves_traffic_to_the_other_uplink_without_a_restart() {
    let s = sites("move", Encap::Esp);
    let (lana, lanb) = (&s.lab.lana.ns, &s.lab.lanb.ns);
    let _ = traffic::ping(lana, "10.102.0.2", 3, Duration::from_millis(20));
    let workers = (s.a.workers(), s.b.workers());

    let dst: SocketAddr = "10.102.0.2:7001".parse().unwrap();
    let probe = ProbeStream::start(
        lana,
        lanb,
        dst,
        ProbeConfig {
            duration: Duration::from_secs(3),
            ..ProbeConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    probe
        .wait_received(300, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}: {}", show(&s.pins_a.0)));
    let before = forwarded(&s.pins_a.0, Forward::Encapsulated);
    // Both directions move to ISP 2, as a MOBIKE UPDATE_SA_ADDRESSES would have them.
    let ga = move_endpoint(&s.pins_a.0, "198.18.2.1", "198.18.2.2");
    let gb = move_endpoint(&s.pins_b.0, "198.18.2.2", "198.18.2.1");
    assert!(ga >= 2 && gb >= 2, "a new generation for each endpoint");
    let report = probe.finish();
    println!(
        "{report:?}\nA: {}\nB: {}",
        show(&s.pins_a.0),
        show(&s.pins_b.0)
    );
    assert!(report.sent > 1000, "{report:?}");
    assert!(
        report.lost <= IN_FLIGHT,
        "only packets in flight may be lost: {report:?}"
    );
    assert!(forwarded(&s.pins_a.0, Forward::Encapsulated) > before + 1000);

    // Cut ISP 1 silently at both gateways: traffic that still used it would stop.
    let _cut_a = SilentCut::new(&s.lab.gwa, 0).unwrap_or_else(|e| panic!("{e}"));
    let _cut_b = SilentCut::new(&s.lab.gwb, 0).unwrap_or_else(|e| panic!("{e}"));
    for (from, to) in [
        (lana, "10.102.0.2"),
        (lanb, "10.101.0.2"),
        (lana, "fd00:66::2"),
    ] {
        let r = traffic::ping(from, to, 20, Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.received,
            20,
            "ping {to} over ISP 2: {r:?}\nA: {}\nB: {}",
            show(&s.pins_a.0),
            show(&s.pins_b.0)
        );
    }
    // The same gateways, never restarted.
    assert_eq!((s.a.workers(), s.b.workers()), workers);
    assert_eq!(
        drops(&s.pins_b.0, roamgate_gateway::DropReason::IntegrityFailed),
        0
    );
}

#[test]
fn an_address_added_to_a_wan_interface_is_steered_without_a_restart() {
    let s = sites("newaddr", Encap::Esp);
    let (lana, gwb, pins_b) = (&s.lab.lana.ns, &s.lab.gwb.ns, &s.pins_b.0);
    let ping = |count| {
        traffic::ping(lana, "10.102.0.2", count, Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert!(ping(3).received > 0, "before: {}", show(pins_b));
    let steered = |addr: &str| {
        roamgate_ebpf::LocalAddrs::open(pins_b)
            .and_then(|m| m.list())
            .unwrap_or_else(|e| panic!("{e}"))
            .contains(&addr.parse().unwrap())
    };
    assert!(!steered("198.18.1.12"));

    // B gets a second address on its uplink while it runs; A's SA moves to it.
    gwb.ip(&["addr", "add", "198.18.1.12/24", "dev", "wan1"])
        .unwrap_or_else(|e| panic!("{e}"));
    move_endpoint(&s.pins_a.0, "198.18.1.1", "198.18.1.12");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ping(1).received == 0 {
        assert!(
            Instant::now() < deadline,
            "no ping through B's new address: steered {}\nB: {}",
            steered("198.18.1.12"),
            show(pins_b)
        );
    }
    assert!(steered("198.18.1.12"));
    let r = ping(20);
    assert_eq!(r.received, 20, "{r:?}\nB: {}", show(pins_b));

    // And it stops being steered once it is gone.
    gwb.ip(&["addr", "del", "198.18.1.12/24", "dev", "wan1"])
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while steered("198.18.1.12") {
        assert!(Instant::now() < deadline, "198.18.1.12 still steered");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(steered("198.18.1.2"), "B's first address must stay steered");
}
