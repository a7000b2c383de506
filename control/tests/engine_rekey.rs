//! CREATE_CHILD_SA: CHILD_SA rekeying with and without PFS, from either side, by timer and
//! simultaneously (RFC 7296 § 2.8.1); IKE SA rekeying with the CHILD_SAs moving along.

mod support;

use std::time::Duration;

use roamgate_control::engine::{DeleteReason, Event};
use support::*;

const LIMIT: Duration = Duration::from_secs(120);

fn established(seed: u64, pfs: bool) -> Sim {
    let (mut i, mut r) = pair_configs();
    if pfs {
        i.connections[0].children[0].esp_proposals = vec![esp("aes128gcm16-x25519")];
        r.connections[0].children[0].esp_proposals = vec![esp("aes128gcm16-x25519")];
    }
    let mut sim = sim_pair(seed, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    sim
}

fn spis(sim: &Sim, node: usize) -> Vec<u32> {
    sim.nodes[node].sink.iter().map(|s| s.inbound.spi).collect()
}

fn rekeyed_deletes(sim: &Sim, node: usize) -> usize {
    sim.nodes[node]
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ChildSaDeleted {
                    reason: DeleteReason::Rekeyed,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn child_sa_rekey_without_pfs_from_the_initiator() {
    let mut sim = established(51, false);
    let old = sim.nodes[0].sink.iter().next().unwrap().clone();
    let h = sim.nodes[0].engine.ike_sas()[0].handle;
    sim.nodes[0]
        .engine
        .rekey_child(sim.now, h, old.inbound.spi)
        .unwrap();
    sim.run_for(LIMIT);
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );
    let new = sim.nodes[0].sink.iter().next().unwrap();
    assert_ne!(new.inbound.spi, old.inbound.spi);
    assert_ne!(new.outbound.spi, old.outbound.spi);
    assert_ne!(new.outbound.encryption_key, old.outbound.encryption_key);
    assert_eq!(new.local_ts, old.local_ts);
    assert_eq!(new.ike_sa, h);
    assert_eq!((rekeyed_deletes(&sim, 0), rekeyed_deletes(&sim, 1)), (1, 1));
    // The IKE SA is untouched.
    assert_eq!(sim.nodes[0].engine.ike_sas().len(), 1);
}

#[test]
fn child_sa_rekey_with_pfs_from_the_responder() {
    let mut sim = established(52, true);
    let old = spis(&sim, 1);
    let h = sim.nodes[1].engine.ike_sas()[0].handle;
    sim.nodes[1].engine.rekey_child(sim.now, h, old[0]).unwrap();
    sim.run_for(LIMIT);
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );
    assert_ne!(spis(&sim, 1), old);
    // Both sides derived the same KEYMAT from g^ir (new) | Ni | Nr: with only x25519
    // acceptable, a side without the KE could not have matched the other's keys.
    assert_eq!(sim.nodes[0].engine.stats().invalid_ke_sent, 0);
    assert_eq!(sim.nodes[0].engine.stats().no_proposal_chosen_sent, 0);
}

#[test]
fn pfs_mismatch_keeps_the_old_child_sa() {
    let (mut i, mut r) = pair_configs();
    // The initiator wants PFS on rekey; the responder insists on another group.
    i.connections[0].children[0].esp_proposals = vec![esp("aes128gcm16-x25519")];
    r.connections[0].children[0].esp_proposals = vec![esp("aes128gcm16-ecp384")];
    let mut sim = sim_pair(53, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    let old = spis(&sim, 0);
    let h = sim.nodes[0].engine.ike_sas()[0].handle;
    sim.nodes[0].engine.rekey_child(sim.now, h, old[0]).unwrap();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(spis(&sim, 0), old);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
    assert!(
        sim.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::ChildSaFailed { .. }))
    );
}

#[test]
fn rekey_timer_renews_the_child_sa_again_and_again() {
    let (mut i, r) = pair_configs();
    i.connections[0].children[0].rekey_time = Some(Duration::from_secs(3600));
    let mut sim = sim_pair(54, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(Duration::from_secs(3 * 3600 + 1800));
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );
    assert_eq!(rekeyed_deletes(&sim, 0), 3);
    assert_eq!(rekeyed_deletes(&sim, 1), 3);
    assert_eq!(sim.nodes[0].engine.stats().child_sas_installed, 4);
}

#[test]
fn simultaneous_child_rekey_leaves_one_pair() {
    let mut collisions = 0;
    for seed in 0..16 {
        let mut sim = established(60 + seed, seed % 2 == 0);
        let spi0 = spis(&sim, 0)[0];
        let spi1 = spis(&sim, 1)[0];
        let h0 = sim.nodes[0].engine.ike_sas()[0].handle;
        let h1 = sim.nodes[1].engine.ike_sas()[0].handle;
        sim.nodes[0].engine.rekey_child(sim.now, h0, spi0).unwrap();
        sim.nodes[1].engine.rekey_child(sim.now, h1, spi1).unwrap();
        sim.run_for(LIMIT);
        assert_eq!(
            assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
            1,
            "seed {seed}: exactly one CHILD_SA pair survives"
        );
        assert_ne!(spis(&sim, 0)[0], spi0);
        assert!(sim.nodes[0].engine.ike_sas()[0].established);
        collisions += sim.nodes[0].engine.stats().child_rekey_collisions
            + sim.nodes[1].engine.stats().child_rekey_collisions;
    }
    assert_eq!(collisions, 32, "every run had both requests cross");
}

#[test]
fn ike_sa_rekey_keeps_the_handle_and_the_child_sas() {
    for side in [0, 1] {
        let mut sim = established(70 + side as u64, false);
        let before = sim.nodes[0].engine.ike_sas()[0].clone();
        let sink_before = sim.nodes[0].sink.clone();
        let applied = sim.nodes[0].sink.applied();
        let h = sim.nodes[side].engine.ike_sas()[0].handle;
        sim.nodes[side].engine.rekey_ike(sim.now, h).unwrap();
        sim.run_for(LIMIT);
        for n in 0..2 {
            let sas = sim.nodes[n].engine.ike_sas();
            assert_eq!(
                sas.len(),
                1,
                "side {side} node {n}: the predecessor is gone"
            );
            assert!(sas[0].established);
            assert_ne!((sas[0].spi_i, sas[0].spi_r), (before.spi_i, before.spi_r));
            assert!(
                sim.nodes[n]
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::IkeSaRekeyed { .. }))
            );
            assert!(
                !sim.nodes[n]
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::IkeSaDeleted { .. }))
            );
        }
        let a = sim.nodes[0].engine.ike_sas()[0].clone();
        let b = sim.nodes[1].engine.ike_sas()[0].clone();
        assert_eq!((a.spi_i, a.spi_r), (b.spi_i, b.spi_r));
        assert_eq!(a.handle, before.handle);
        // The rekey initiator is the new IKE SA's original initiator.
        assert_eq!(a.initiator, side == 0);
        // CHILD_SAs untouched: no SA event at all.
        assert_eq!(sim.nodes[0].sink.applied(), applied);
        assert_eq!(
            sim.nodes[0].sink.iter().collect::<Vec<_>>(),
            sink_before.iter().collect::<Vec<_>>()
        );
        // The new IKE SA works: a CHILD_SA rekey and then a delete run over it.
        let spi = spis(&sim, 0)[0];
        sim.nodes[0]
            .engine
            .rekey_child(sim.now, a.handle, spi)
            .unwrap();
        sim.run_for(LIMIT);
        assert_eq!(
            assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
            1
        );
        sim.nodes[0]
            .engine
            .terminate_ike(sim.now, a.handle)
            .unwrap();
        sim.run_for(LIMIT);
        assert!(sim.nodes[1].engine.ike_sas().is_empty() && sim.nodes[1].sink.is_empty());
    }
}

#[test]
fn ike_rekey_timer() {
    let (mut i, r) = pair_configs();
    i.connections[0].rekey_time = Some(Duration::from_secs(4 * 3600));
    i.connections[0].dpd_delay = Some(Duration::from_secs(60));
    let mut sim = sim_pair(80, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(Duration::from_secs(9 * 3600));
    let rekeys = sim.nodes[0]
        .events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaRekeyed { .. }))
        .count();
    assert_eq!(rekeys, 2);
    assert_eq!(sim.nodes[0].engine.ike_sas().len(), 1);
    assert_eq!(sim.nodes[1].engine.ike_sas().len(), 1);
    assert_eq!(sim.nodes[0].engine.stats().exchange_timeouts, 0);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
}

#[test]
fn simultaneous_ike_rekey_settles_on_one_ike_sa() {
    for seed in 0..8 {
        let mut sim = established(90 + seed, false);
        let before = sim.nodes[0].engine.ike_sas()[0].clone();
        let h0 = before.handle;
        let h1 = sim.nodes[1].engine.ike_sas()[0].handle;
        sim.nodes[0].engine.rekey_ike(sim.now, h0).unwrap();
        sim.nodes[1].engine.rekey_ike(sim.now, h1).unwrap();
        sim.run_for(Duration::from_secs(600));
        let a = sim.nodes[0].engine.ike_sas();
        let b = sim.nodes[1].engine.ike_sas();
        assert_eq!((a.len(), b.len()), (1, 1), "seed {seed}");
        assert_eq!(
            (a[0].spi_i, a[0].spi_r),
            (b[0].spi_i, b[0].spi_r),
            "seed {seed}"
        );
        assert_ne!(
            (a[0].spi_i, a[0].spi_r),
            (before.spi_i, before.spi_r),
            "seed {seed}"
        );
        assert_eq!(
            assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
            1
        );
        // Still alive and usable.
        sim.nodes[1].engine.send_dpd(sim.now, h1).unwrap();
        sim.run_for(LIMIT);
        assert_eq!(sim.nodes[1].engine.stats().exchange_timeouts, 0);
    }
}

#[test]
fn ike_sa_expires_when_rekeying_never_succeeds() {
    let (mut i, r) = pair_configs();
    i.connections[0].rekey_time = Some(Duration::from_secs(100));
    i.connections[0].over_time = Some(Duration::from_secs(50));
    // A long retransmission timeout keeps the stuck rekey from ending as a dead peer first.
    i.retransmit.timeout = Duration::from_secs(1000);
    let mut sim = sim_pair(85, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    let start = sim.elapsed();
    // Every CREATE_CHILD_SA (exchange type 36 in the clear header, after the 4-octet
    // non-ESP marker on port 4500) is lost.
    sim.drop_if = Some(Box::new(|t| {
        let at = if t.local.port() == 4500 { 22 } else { 18 };
        t.payload.get(at) == Some(&36)
    }));
    sim.run_until(Duration::from_secs(400), |s| {
        s.nodes[0].engine.ike_sas().is_empty()
    });
    assert!(sim.nodes[0].engine.ike_sas().is_empty());
    assert!(sim.nodes[0].sink.is_empty());
    assert!(sim.nodes[0].events.iter().any(|e| matches!(
        e,
        Event::IkeSaDeleted {
            reason: DeleteReason::Expired,
            ..
        }
    )));
    // Exactly rekey time + over time after establishment (simulated time).
    assert_eq!(sim.elapsed() - start, Duration::from_secs(150));
}

#[test]
fn child_rekey_follows_invalid_ke_payload() {
    let (mut i, mut r) = pair_configs();
    i.connections[0].children[0].esp_proposals = vec![esp("aes128gcm16-x25519-ecp256")];
    r.connections[0].children[0].esp_proposals = vec![esp("aes128gcm16-ecp256")];
    let mut sim = sim_pair(86, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    let old = spis(&sim, 0);
    let h = sim.nodes[0].engine.ike_sas()[0].handle;
    sim.nodes[0].engine.rekey_child(sim.now, h, old[0]).unwrap();
    sim.run_for(LIMIT);
    assert_eq!(sim.nodes[1].engine.stats().invalid_ke_sent, 1);
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );
    assert_ne!(spis(&sim, 0), old);
    assert!(
        !sim.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::ChildSaFailed { .. }))
    );
}
