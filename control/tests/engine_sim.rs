//! The handshake over a hostile simulated network (loss, duplication, reordering, delay),
//! across many seeds; and the INFORMATIONAL exchanges: Delete from either side, liveness.

mod support;

use std::time::Duration;

use roamgate_control::engine::{DeleteReason, Event, FailureReason};
use support::*;

const LIMIT: Duration = Duration::from_secs(600);

fn both_established(sim: &Sim) -> bool {
    sim.established(0) == 1
        && sim.established(1) == 1
        && !sim.nodes[0].sink.is_empty()
        && !sim.nodes[1].sink.is_empty()
}

#[test]
fn handshake_survives_loss_duplication_and_reordering() {
    let mut retransmitted = 0;
    for seed in 0..64 {
        let (i, r) = pair_configs();
        let mut sim = sim_pair(1000 + seed, i, r);
        sim.faults = Faults {
            loss: 0.2,
            duplicate: 0.2,
            reorder: 0.3,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(400),
        };
        sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
        let ok = sim.run_until(LIMIT, both_established);
        // 20 % loss can, rarely, eat all six sends of one request; then both sides must
        // agree that nothing is up.
        if !ok {
            sim.run_for(LIMIT);
            assert!(
                sim.failures(0).iter().any(|e| matches!(
                    e,
                    Event::IkeSaFailed {
                        reason: FailureReason::Timeout,
                        ..
                    }
                )),
                "seed {seed}: neither established nor failed"
            );
            continue;
        }
        assert_eq!(
            assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
            1,
            "seed {seed}"
        );
        // Let the duplicates and retransmissions in flight land: nothing changes.
        sim.run_for(Duration::from_secs(60));
        assert_eq!(sim.established(0), 1, "seed {seed}");
        assert_eq!(sim.established(1), 1, "seed {seed}");
        assert_eq!(sim.nodes[1].sink.len(), 1, "seed {seed}");
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
        retransmitted += sim.nodes[0].engine.stats().requests_retransmitted;
    }
    assert!(
        retransmitted > 0,
        "the faults must have forced retransmissions"
    );
}

#[test]
fn same_seed_replays_the_same_run() {
    let run = |seed| {
        let (i, r) = pair_configs();
        let mut sim = sim_pair(seed, i, r);
        sim.faults.loss = 0.2;
        sim.faults.duplicate = 0.2;
        sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
        sim.run_until(LIMIT, both_established);
        (
            sim.nodes[0].sent.clone(),
            sim.nodes[1].sent.clone(),
            sim.elapsed(),
        )
    };
    assert_eq!(run(77), run(77));
    assert_ne!(run(77).0, run(78).0);
}

fn established_pair(seed: u64, dpd: Option<Duration>) -> Sim {
    let (mut i, mut r) = pair_configs();
    i.connections[0].dpd_delay = dpd;
    r.connections[0].dpd_delay = dpd;
    let mut sim = sim_pair(seed, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    sim
}

#[test]
fn initiator_deletes_the_ike_sa() {
    let mut sim = established_pair(21, None);
    let h = sim.nodes[0].engine.ike_sas()[0].handle;
    sim.nodes[0].engine.terminate_ike(sim.now, h).unwrap();
    sim.run_for(LIMIT);
    assert!(sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty());
    assert!(sim.nodes[0].engine.ike_sas().is_empty() && sim.nodes[1].engine.ike_sas().is_empty());
    assert!(sim.nodes[0].events.iter().any(|e| matches!(
        e,
        Event::IkeSaDeleted {
            reason: DeleteReason::Local,
            ..
        }
    )));
    assert!(sim.nodes[1].events.iter().any(|e| matches!(
        e,
        Event::IkeSaDeleted {
            reason: DeleteReason::Peer,
            ..
        }
    )));
}

#[test]
fn responder_deletes_the_ike_sa() {
    let mut sim = established_pair(22, None);
    let h = sim.nodes[1].engine.ike_sas()[0].handle;
    sim.nodes[1].engine.terminate_ike(sim.now, h).unwrap();
    sim.run_for(LIMIT);
    assert!(sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty());
    assert!(sim.nodes[0].engine.ike_sas().is_empty() && sim.nodes[1].engine.ike_sas().is_empty());
}

#[test]
fn child_sa_is_deleted_from_either_side() {
    for side in [0, 1] {
        let mut sim = established_pair(23 + side as u64, None);
        let info = sim.nodes[side].engine.ike_sas()[0].clone();
        let spi = info.children[0].inbound_spi;
        sim.nodes[side]
            .engine
            .terminate_child(sim.now, info.handle, spi)
            .unwrap();
        sim.run_for(LIMIT);
        assert!(
            sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty(),
            "side {side}"
        );
        // The IKE SA stays on both.
        assert!(sim.nodes[0].engine.ike_sas()[0].established);
        assert!(sim.nodes[1].engine.ike_sas()[0].established);
        assert!(sim.nodes[1 - side].events.iter().any(|e| matches!(
            e,
            Event::ChildSaDeleted {
                reason: DeleteReason::Peer,
                ..
            }
        )));
    }
}

#[test]
fn dpd_keeps_a_live_peer_and_buries_a_dead_one() {
    let mut sim = established_pair(25, Some(Duration::from_secs(30)));
    // Alive: an hour of liveness checks changes nothing.
    sim.run_for(Duration::from_secs(3600));
    assert_eq!(sim.nodes[0].sink.len(), 1);
    assert!(
        sim.nodes[0].engine.stats().datagrams_sent > 10,
        "DPD requests were sent"
    );
    assert_eq!(sim.nodes[0].engine.stats().exchange_timeouts, 0);
    // Dead: the responder vanishes; both sides give up after the retransmissions.
    sim.drop_if = Some(Box::new(|_| true));
    sim.run_for(Duration::from_secs(3600));
    assert!(sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty());
    for n in 0..2 {
        assert!(sim.nodes[n].events.iter().any(|e| matches!(
            e,
            Event::IkeSaDeleted {
                reason: DeleteReason::DeadPeer,
                ..
            }
        )));
        assert!(sim.nodes[n].engine.ike_sas().is_empty());
    }
}

#[test]
fn unknown_spi_gets_rate_limited_invalid_ike_spi() {
    let mut sim = established_pair(26, None);
    let t = sim.nodes[0].sent.last().unwrap().clone();
    let mut bogus = t.payload.clone();
    bogus[8] ^= 0xff; // SPIr no longer names the IKE SA
    for _ in 0..50 {
        sim.nodes[1]
            .engine
            .handle_datagram(sim.now, t.remote, t.local, &bogus);
    }
    let st = *sim.nodes[1].engine.stats();
    assert_eq!(st.drop_unknown_spi, 50);
    assert_eq!(st.invalid_ike_spi_sent, 10);
    assert_eq!(st.invalid_ike_spi_rate_limited, 40);
    assert_eq!(sim.nodes[1].sink.len(), 1);
}
