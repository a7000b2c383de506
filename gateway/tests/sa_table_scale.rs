//! The SA table at scale, on running gateways: thousands of SAs installed while traffic
//! flows are picked up through the table's change bitmap, and SAs in the table's last slots
//! carry traffic (a more specific outbound SA wins the longest-prefix match).
//!
//! Needs root and bpffs; fails (never skips) with the reason otherwise.

mod lab;

use std::time::{Duration, Instant};

use lab::*;
use roamgate_ebpf::abi::SA_MAX;
use roamgate_ebpf::{
    Cipher, Direction, Prefix, STATIC_SA_SLOTS, SaLimits, SaMode, SaSpec, SaTable,
};
use roamgate_gateway::DropReason;
use roamgate_lab::traffic;

/// Filler CHILD_SAs (two slots each) installed on gateway A.
const FILLER: u32 = 10_000;
const KEY2: [u8; 20] = [0x42; 20];
const SPI2: u32 = 0x00c0_ffee;

fn spec<'a>(
    spi: u32,
    direction: Direction,
    key: &'a [u8],
    local_ts: &'a [Prefix],
    remote_ts: &'a [Prefix],
) -> SaSpec<'a> {
    SaSpec {
        spi,
        direction,
        mode: SaMode::Tunnel,
        cipher: Cipher::Aes128Gcm16,
        esn: false,
        key,
        limits: SaLimits::default(),
        local_ts,
        remote_ts,
    }
}

#[test]
fn sas_in_the_last_slots_carry_traffic_beside_thousands_of_others() {
    let s = sites("scale", Encap::Esp);
    let (lana, pins_a, pins_b) = (&s.lab.lana.ns, &s.pins_a.0, &s.pins_b.0);
    let r = traffic::ping(lana, "10.102.0.2", 3, Duration::from_millis(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.received > 0, "static SA: {r:?}\nA: {}", show(pins_a));

    // Thousands of CHILD_SAs on A, each with a prefix of its own.
    let mut table_a = SaTable::open(pins_a).unwrap_or_else(|e| panic!("{e}"));
    let key = [0x17u8; 20];
    for i in 0..FILLER {
        let remote: Vec<Prefix> = vec![
            format!("10.200.{}.{}/32", i / 256, i % 256)
                .parse()
                .unwrap(),
        ];
        let slot = STATIC_SA_SLOTS + 2 * i;
        table_a
            .install(
                slot,
                &spec(0x0010_0000 + i, Direction::Inbound, &key, &[], &remote),
            )
            .unwrap_or_else(|e| panic!("slot {slot}: {e}"));
        table_a
            .install(
                slot + 1,
                &spec(0x0020_0000 + i, Direction::Outbound, &key, &[], &remote),
            )
            .unwrap_or_else(|e| panic!("slot {}: {e}", slot + 1));
    }

    // A new SA pair in the table's last slots, more specific than the static SA: A sends to
    // LAN host B through it, B receives through it.
    let host_b: Vec<Prefix> = vec!["10.102.0.2/32".parse().unwrap()];
    let (lan_a, lan_b): (Vec<Prefix>, Vec<Prefix>) = (
        vec!["10.101.0.0/24".parse().unwrap()],
        vec!["10.102.0.0/24".parse().unwrap()],
    );
    let out_slot = SA_MAX - 1;
    table_a
        .install(
            out_slot,
            &spec(SPI2, Direction::Outbound, &KEY2, &lan_a, &host_b),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    set_endpoint(pins_a, out_slot, "198.18.1.1", "198.18.1.2");
    let mut table_b = SaTable::open(pins_b).unwrap_or_else(|e| panic!("{e}"));
    table_b
        .install(
            SA_MAX - 2,
            &spec(SPI2, Direction::Inbound, &KEY2, &lan_b, &lan_a),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // B's static inbound SA goes: from now on only the new pair carries A → B.
    table_b
        .remove(OUT_SLOT - 1)
        .unwrap_or_else(|e| panic!("{e}"));

    // The gateways pick the changes up without scanning; wait until a ping gets through.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = traffic::ping(lana, "10.102.0.2", 1, Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("{e}"));
        if r.received == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ping through the SAs in slots {} and {}\nA: {}\nB: {}",
            out_slot,
            SA_MAX - 2,
            show(pins_a),
            show(pins_b)
        );
    }
    let unknown = drops(pins_b, DropReason::UnknownSpi);
    let r = traffic::ping(lana, "10.102.0.2", 20, Duration::from_millis(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.received,
        20,
        "{r:?}\nA: {}\nB: {}",
        show(pins_a),
        show(pins_b)
    );
    assert_eq!(
        drops(pins_b, DropReason::UnknownSpi),
        unknown,
        "B saw SPIs it does not know: {}",
        show(pins_b)
    );
    assert_eq!(
        drops(pins_b, DropReason::IntegrityFailed),
        0,
        "{}",
        show(pins_b)
    );
}
