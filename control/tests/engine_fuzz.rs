//! Untrusted input: mutated, truncated and replayed datagrams thrown at an established
//! responder never panic it, never remove or change its SAs, and it keeps working after.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use roamgate_control::engine::Event;
use support::*;

fn established() -> Sim {
    let (mut i, mut r) = pair_configs();
    i.connections[0].mobike = true;
    r.connections[0].mobike = true;
    let mut sim = sim_pair(41, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(
        sim.run_until(Duration::from_secs(60), |s| s.nodes[1].sink.len() == 1
            && s.nodes[0].sink.len() == 1)
    );
    sim
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    SetByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (0usize..40, any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
    ]
}

fn apply(mut d: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        if d.is_empty() {
            break;
        }
        let n = d.len();
        match *m {
            Mutation::Flip(i, b) => d[i % n] ^= b,
            Mutation::Truncate(i) => d.truncate(i % n),
            Mutation::Insert(i, b) => d.insert(i % (n + 1), b),
            Mutation::SetByte(i, b) => d[i % n] = b,
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_datagrams_cannot_hurt_an_established_sa(
        muts in proptest::collection::vec((0usize..4, proptest::collection::vec(mutation(), 1..4)), 1..24)
    ) {
        let mut sim = established();
        let before = sim.nodes[1].sink.clone();
        let seen = sim.nodes[0].sent.clone();
        let events_before = sim.nodes[1].events.len();
        for (which, ms) in &muts {
            let t = &seen[which % seen.len()];
            let d = apply(t.payload.clone(), ms);
            sim.nodes[1].engine.handle_datagram(sim.now, t.remote, t.local, &d);
            // Also raw replays of what was sent.
            sim.nodes[1].engine.handle_datagram(sim.now, t.remote, t.local, &t.payload);
        }
        sim.collect();
        // Nothing about the SAs changed.
        let after = &sim.nodes[1].sink;
        prop_assert_eq!(after.len(), before.len());
        for sa in before.iter() {
            prop_assert_eq!(after.by_inbound(sa.inbound.spi), Some(sa));
        }
        let harmful = sim.nodes[1].events[events_before..].iter().any(|e| matches!(e,
            Event::IkeSaDeleted { .. } | Event::ChildSaDeleted { .. } | Event::PathUpdated { .. }));
        prop_assert!(!harmful, "an unauthenticated datagram changed the SA");
        // And the IKE SA still works: a liveness check is answered, a delete is honoured.
        let h = sim.nodes[0].engine.ike_sas()[0].handle;
        sim.nodes[0].engine.send_dpd(sim.now, h).unwrap();
        sim.run_for(Duration::from_secs(30));
        prop_assert_eq!(sim.nodes[0].engine.stats().exchange_timeouts, 0);
        prop_assert_eq!(sim.nodes[0].sink.len(), 1);
        sim.nodes[0].engine.terminate_ike(sim.now, h).unwrap();
        sim.run_for(Duration::from_secs(30));
        prop_assert!(sim.nodes[1].sink.is_empty());
        prop_assert!(sim.nodes[1].engine.ike_sas().is_empty());
    }

    #[test]
    fn random_bytes_on_both_ports_are_counted_drops(
        data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..32),
        natt in any::<bool>(),
    ) {
        let mut sim = established();
        let t = sim.nodes[0].sent[1].clone();
        let mut local = t.remote;
        if !natt {
            local.set_port(500);
        }
        let received = sim.nodes[1].engine.stats().datagrams_received;
        for d in &data {
            sim.nodes[1].engine.handle_datagram(sim.now, local, t.local, d);
        }
        let st = *sim.nodes[1].engine.stats();
        prop_assert_eq!(st.datagrams_received, received + data.len() as u64);
        prop_assert_eq!(sim.nodes[1].sink.len(), 1);
        prop_assert!(sim.nodes[1].engine.ike_sas()[0].established);
    }
}
