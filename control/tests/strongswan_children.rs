//! One more CHILD_SA on an established IKE SA with a real strongSwan 5.9.8 (kernel-libipsec)
//! in the lab: roamgate as the road warrior (initiator) sends CREATE_CHILD_SA without
//! REKEY_SA (RFC 7296 § 1.3.1) to strongSwan's gateway, with and without PFS. strongSwan must
//! show two INSTALLED CHILD_SAs whose SPIs are the ones in roamgate's data-plane sink.
//!
//! Needs root and strongSwan (`cargo xtask deps`): fails, saying what is missing, without
//! them. Logs stay in /tmp/roamgate-lab/<test>/.

mod interop;

use std::time::{Duration, Instant};

use interop::{ClientToStrongswan, hex_spi, roamgate_client_to_strongswan};
use roamgate_control::engine::Event;
use roamgate_lab::Lab;
use roamgate_lab::strongswan::TunnelParams;
use roamgate_lab::topology::{Options, RoadWarrior};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Brings up roamgate (client) → strongSwan (gateway) with `esp_proposals` on both sides,
/// adds a second `lan` CHILD_SA from roamgate and checks both sides agree on both.
fn second_child(name: &str, esp_proposals: &str) {
    let lab = Lab::new(name).unwrap();
    let topo = RoadWarrior::build(Options::default()).unwrap();
    let params = TunnelParams {
        esp_proposals: esp_proposals.into(),
        ..TunnelParams::default()
    };
    let ClientToStrongswan { gw, rw, ours, .. } =
        roamgate_client_to_strongswan(&lab, &topo, &params);

    rw.handle.initiate_child(ours.handle, "lan");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let theirs = gw.list_sas().unwrap();
        let sink: Vec<(String, String)> = rw
            .sink
            .lock()
            .unwrap()
            .iter()
            .map(|c| (hex_spi(c.inbound.spi), hex_spi(c.outbound.spi)))
            .collect();
        if let [t] = theirs.as_slice() {
            // strongSwan's inbound SPI is our outbound one and the other way round.
            let mut installed: Vec<(String, String)> = t
                .children
                .iter()
                .filter(|c| c.name == "lan" && c.state == "INSTALLED")
                .map(|c| (c.spi_out.clone(), c.spi_in.clone()))
                .collect();
            installed.sort();
            let mut mine = sink.clone();
            mine.sort();
            if t.state == "ESTABLISHED" && installed.len() == 2 && installed == mine {
                break;
            }
        }
        let failed: Vec<Event> = rw
            .snapshot()
            .events
            .into_iter()
            .filter(|e| matches!(e, Event::ChildSaFailed { .. }))
            .collect();
        assert!(
            failed.is_empty(),
            "strongSwan refused the second CHILD_SA: {failed:?}; logs: {}",
            lab.logs().display()
        );
        assert!(
            Instant::now() < deadline,
            "no second CHILD_SA on both sides within {TIMEOUT:?}\nstrongSwan: {theirs:#?}\nroamgate sink: {sink:?}\nlogs: {}",
            lab.logs().display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = rw.snapshot();
    let info = s
        .ike_sas
        .iter()
        .find(|i| i.handle == ours.handle)
        .expect("roamgate keeps its IKE SA");
    assert!(info.established);
    assert_eq!(info.children.len(), 2, "{info:#?}");
    assert_eq!(s.stats.exchange_timeouts, 0, "{:#?}", s.stats);
    let established = s
        .events
        .iter()
        .filter(|e| matches!(e, Event::ChildSaEstablished { name, .. } if name == "lan"))
        .count();
    assert_eq!(established, 2, "{:#?}", s.events);
}

#[test]
fn roamgate_adds_a_child_sa_without_pfs() {
    second_child("children_no_pfs", "aes128gcm16");
}

#[test]
fn roamgate_adds_a_child_sa_with_pfs() {
    second_child("children_pfs", "aes128gcm16-x25519");
}
