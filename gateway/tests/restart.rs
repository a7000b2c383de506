//! A gateway restart never reuses an outbound sequence number (and so never a (key, IV) pair
//! under a static key): the running gateway reserves sequence numbers in the pinned `sa_seq`
//! map ahead of use, and the restarted one continues above the reservation. Traffic keeps
//! flowing across the restart, with the peer's replay window accepting the jump.
//!
//! Needs root and bpffs; fails (never skips) with the reason otherwise.

mod lab;

use std::time::Duration;

use lab::*;
use roamgate_ebpf::SaTable;
use roamgate_gateway::dataplane::registry::SEQ_RESERVE;
use roamgate_lab::traffic;

#[test]
fn a_restarted_gateway_continues_above_its_reserved_sequence_numbers() {
    let lab = topology();
    let (pins_a, pins_b) = (PinDir::new("restart-a"), PinDir::new("restart-b"));
    let a = start_gateway(&lab.gwa.ns, &pins_a, 1, Encap::Esp);
    let _b = start_gateway(&lab.gwb.ns, &pins_b, 2, Encap::Esp);
    let (lana, lanb) = (&lab.lana.ns, &lab.lanb.ns);
    let r = traffic::ping(lana, "10.102.0.2", 10, Duration::from_millis(20)).unwrap();
    assert!(r.received >= 8, "{r:?}");
    let table = SaTable::open_reader(&pins_a.0).unwrap();
    let first = table.persisted_seq(OUT_SLOT);
    assert!(
        first > SEQ_RESERVE,
        "reserved ahead of the first packet: {first}"
    );

    // Stop A and start it again from the same file, as an operator restart would.
    a.stop()
        .unwrap_or_else(|e| panic!("stopping gateway A: {e}"));
    assert_eq!(
        table.persisted_seq(OUT_SLOT),
        first,
        "stopping never lowers the mark"
    );
    let _a = start_gateway(&lab.gwa.ns, &pins_a, 1, Encap::Esp);
    assert_eq!(
        table.persisted_seq(OUT_SLOT),
        first + SEQ_RESERVE,
        "the restarted SA starts at the old mark and reserves a new block"
    );

    for (from, to) in [(lana, "10.102.0.2"), (lanb, "10.101.0.2")] {
        let r = traffic::ping(from, to, 20, Duration::from_millis(20)).unwrap();
        assert_eq!(
            r.received,
            20,
            "ping {to} after the restart: {r:?}\nA: {}\nB: {}",
            show(&pins_a.0),
            show(&pins_b.0)
        );
    }
}
