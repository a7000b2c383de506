//! More CHILD_SAs on one IKE SA: CREATE_CHILD_SA without REKEY_SA (RFC 7296 § 1.3.1) from
//! either side, with and without PFS, refused ones that leave the IKE SA alone, and a
//! connection whose several CHILD_SAs all start with it.

mod support;

use std::time::Duration;

use roamgate_control::engine::{
    CommandError, DeleteReason, EngineConfig, Event, FailureReason, IkeSaHandle, MemorySaSink,
    SaEvent, SaSinkError, StartAction,
};
use support::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The site-to-site pair of [`pair_configs`] with a second CHILD_SA configuration `mgmt`
/// (10.3.0.0/16 ↔ 10.4.0.0/16) on both sides, ESP proposals `i_esp` / `r_esp`.
fn two_child_configs(i_esp: &str, r_esp: &str) -> (EngineConfig, EngineConfig) {
    let (mut i, mut r) = pair_configs();
    let mut mi = child("mgmt", "10.3.0.0/16", "10.4.0.0/16");
    mi.esp_proposals = vec![esp(i_esp)];
    i.connections[0].children.push(mi);
    let mut mr = child("mgmt", "10.4.0.0/16", "10.3.0.0/16");
    mr.esp_proposals = vec![esp(r_esp)];
    r.connections[0].children.push(mr);
    (i, r)
}

/// The names of the CHILD_SAs in `node`'s sink, sorted.
fn sink_names(sim: &Sim, node: usize) -> Vec<String> {
    let mut v: Vec<String> = sim.nodes[node]
        .sink
        .iter()
        .map(|s| s.name.clone())
        .collect();
    v.sort();
    v
}

fn established_children(sim: &Sim, node: usize, name: &str) -> usize {
    sim.nodes[node]
        .events
        .iter()
        .filter(|e| matches!(e, Event::ChildSaEstablished { name: n, .. } if n == name))
        .count()
}

fn child_failures(sim: &Sim, node: usize) -> Vec<(String, FailureReason)> {
    sim.nodes[node]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaFailed { name, reason, .. } => Some((name.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

/// Node `node` initiates child `name` on IKE SA `h`; the network runs until quiet.
fn initiate_child(sim: &mut Sim, node: usize, h: IkeSaHandle, name: &str) {
    sim.nodes[node]
        .engine
        .initiate_child(sim.now, h, name)
        .unwrap();
    sim.run_for(LIMIT);
}

/// Both sinks hold the same `n` CHILD_SAs, named `names` on `node`'s side.
fn assert_children(sim: &Sim, n: usize, node: usize, names: &[&str]) {
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        n
    );
    assert_eq!(sink_names(sim, node), names);
}

#[test]
fn second_child_sa_from_the_initiator_without_pfs() {
    let (i, r) = two_child_configs("aes256-sha256", "aes256-sha256");
    let mut sim = established(81, i, r);
    let first = sim.nodes[0].sink.iter().next().unwrap().clone();
    let h = handle(&sim, 0);
    initiate_child(&mut sim, 0, h, "mgmt");
    assert_children(&sim, 2, 0, &["mgmt", "net"]);
    assert_eq!(sink_names(&sim, 1), ["mgmt", "net"]);
    let mgmt = sim.nodes[0]
        .sink
        .iter()
        .find(|s| s.name == "mgmt")
        .unwrap()
        .clone();
    assert_eq!(mgmt.local_ts, vec![ts("10.3.0.0/16")]);
    assert_eq!(mgmt.remote_ts, vec![ts("10.4.0.0/16")]);
    assert_eq!(mgmt.ike_sa, h);
    assert_ne!(mgmt.outbound.encryption_key, first.outbound.encryption_key);
    // The first CHILD_SA is untouched.
    assert_eq!(
        sim.nodes[0].sink.by_inbound(first.inbound.spi),
        Some(&first)
    );
    assert_eq!(established_children(&sim, 0, "mgmt"), 1);
    assert_eq!(established_children(&sim, 1, "mgmt"), 1);
    assert_eq!(sim.nodes[0].engine.ike_sas()[0].children.len(), 2);
    assert_eq!(sim.nodes[1].engine.ike_sas()[0].children.len(), 2);
    assert!(child_failures(&sim, 0).is_empty());
}

#[test]
fn second_child_sa_from_the_responder_with_pfs() {
    // The original initiator accepts `mgmt` only with PFS: a request without a KE payload
    // would get NO_PROPOSAL_CHOSEN.
    let (i, r) = two_child_configs("aes128gcm16-x25519", "aes128gcm16-x25519");
    let mut sim = established(82, i, r);
    let h = handle(&sim, 1);
    initiate_child(&mut sim, 1, h, "mgmt");
    assert_children(&sim, 2, 0, &["mgmt", "net"]);
    let mgmt = sim.nodes[1].sink.iter().find(|s| s.name == "mgmt").unwrap();
    assert_eq!(mgmt.local_ts, vec![ts("10.4.0.0/16")]);
    assert_eq!(mgmt.remote_ts, vec![ts("10.3.0.0/16")]);
    assert_eq!(sim.nodes[0].engine.stats().no_proposal_chosen_sent, 0);
    assert_eq!(sim.nodes[0].engine.stats().invalid_ke_sent, 0);
    assert_eq!(established_children(&sim, 0, "mgmt"), 1);
    assert_eq!(established_children(&sim, 1, "mgmt"), 1);
}

#[test]
fn invalid_ke_answer_is_retried_with_the_named_group() {
    // We guess x25519 first; the peer wants ecp256, which we also accept.
    let (i, r) = two_child_configs("aes128gcm16-x25519-ecp256", "aes128gcm16-ecp256");
    let mut sim = established(83, i, r);
    let h = handle(&sim, 0);
    initiate_child(&mut sim, 0, h, "mgmt");
    assert_eq!(sim.nodes[1].engine.stats().invalid_ke_sent, 1);
    assert_children(&sim, 2, 0, &["mgmt", "net"]);
    assert!(child_failures(&sim, 0).is_empty());
}

#[test]
fn refused_selectors_fail_the_child_sa_and_keep_the_ike_sa() {
    let (mut i, r) = two_child_configs("aes256-sha256", "aes256-sha256");
    // The responder has no configuration for these selectors.
    i.connections[0]
        .children
        .push(child("other", "10.7.0.0/16", "10.8.0.0/16"));
    let mut sim = established(84, i, r);
    let first = sim.nodes[0].sink.iter().next().unwrap().clone();
    let h = handle(&sim, 0);
    initiate_child(&mut sim, 0, h, "other");
    assert_eq!(
        child_failures(&sim, 0),
        [("other".to_owned(), FailureReason::TsUnacceptable)]
    );
    assert_eq!(sim.nodes[1].engine.stats().ts_unacceptable_sent, 1);
    // The IKE SA and its first CHILD_SA survive on both sides...
    assert_eq!(handle(&sim, 0), h);
    handle(&sim, 1);
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );
    assert_eq!(
        sim.nodes[0].sink.by_inbound(first.inbound.spi),
        Some(&first)
    );
    assert!(
        !sim.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { .. } | Event::ChildSaDeleted { .. }))
    );
    // ...and still work: the next CHILD_SA comes up.
    initiate_child(&mut sim, 0, h, "mgmt");
    assert_children(&sim, 2, 1, &["mgmt", "net"]);
}

#[test]
fn no_proposal_chosen_fails_the_child_sa_and_keeps_the_ike_sa() {
    let (i, r) = two_child_configs("aes128gcm16", "aes256-sha256");
    let mut sim = established(85, i, r);
    let h = handle(&sim, 0);
    initiate_child(&mut sim, 0, h, "mgmt");
    assert_eq!(
        child_failures(&sim, 0),
        [("mgmt".to_owned(), FailureReason::NoProposalChosen)]
    );
    assert_eq!(sim.nodes[1].engine.stats().no_proposal_chosen_sent, 1);
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );
    assert_eq!(handle(&sim, 0), h);
    // A liveness check still gets its answer.
    sim.nodes[0].engine.send_dpd(sim.now, h).unwrap();
    sim.run_for(LIMIT);
    assert_eq!(handle(&sim, 0), h);
    assert_eq!(sim.nodes[0].engine.stats().exchange_timeouts, 0);
}

#[test]
fn unknown_child_config_is_refused() {
    let (i, r) = two_child_configs("aes256-sha256", "aes256-sha256");
    let mut sim = established(86, i, r);
    let h = handle(&sim, 0);
    assert_eq!(
        sim.nodes[0].engine.initiate_child(sim.now, h, "nope"),
        Err(CommandError::UnknownChildConfig("nope".into()))
    );
    assert_eq!(
        sim.nodes[0]
            .engine
            .initiate_child(sim.now, IkeSaHandle(9999), "mgmt"),
        Err(CommandError::UnknownIkeSa(IkeSaHandle(9999)))
    );
}

#[test]
fn every_start_action_child_sa_comes_up_with_the_connection() {
    let (mut i, r) = two_child_configs("aes128gcm16-x25519", "aes128gcm16-x25519");
    i.connections[0].children[0].start_action = StartAction::Start;
    i.connections[0].children[1].start_action = StartAction::Start;
    // Configured but not started: negotiated only on demand.
    i.connections[0]
        .children
        .push(child("spare", "10.5.0.0/16", "10.6.0.0/16"));
    let mut sim = sim_pair(87, i, r);
    let started = sim.nodes[0].engine.start(sim.now);
    assert_eq!(started.len(), 1);
    assert!(started[0].is_ok());
    sim.run_for(LIMIT);
    assert_children(&sim, 2, 0, &["mgmt", "net"]);
    assert_eq!(sink_names(&sim, 1), ["mgmt", "net"]);
    assert_eq!(sim.established(0), 1);
    assert_eq!(sim.established(1), 1);
    handle(&sim, 0);
    assert!(child_failures(&sim, 0).is_empty());
    assert!(child_failures(&sim, 1).is_empty());
}

/// The CHILD_SA deletions `node` reported, as (inbound SPI, reason).
fn child_deletions(sim: &Sim, node: usize) -> Vec<(u32, DeleteReason)> {
    sim.nodes[node]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaDeleted {
                inbound_spi,
                reason,
                ..
            } => Some((*inbound_spi, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_child_sa_the_data_plane_refuses_is_deleted_on_both_sides_and_the_ike_sa_stays() {
    let (i, r) = two_child_configs("aes256-sha256", "aes256-sha256");
    let mut sim = sim_pair(83, i, r);
    // The responder's data plane holds one CHILD_SA: the second does not fit.
    sim.nodes[1].sink = MemorySaSink::with_capacity(1);
    sim.nodes[1].refusals_expected = true;
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    let h = handle(&sim, 0);
    initiate_child(&mut sim, 0, h, "mgmt");

    // The responder's sink refused the install, as a full table does.
    let refused = &sim.nodes[1].refused;
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (SaEvent::Install(mgmt), SaSinkError::Full) = &refused[0] else {
        panic!("not a refused install: {refused:?}");
    };
    assert_eq!(mgmt.name, "mgmt");
    let responder = sim.nodes[1].engine.stats();
    assert_eq!(
        (responder.child_sas_refused, responder.sa_sink_errors),
        (1, 1)
    );
    // Neither side keeps it, in its sink or in its view of the IKE SA; the peer learnt it
    // from the responder's Delete, as a deletion by the peer.
    assert_eq!(
        child_deletions(&sim, 1),
        [(mgmt.inbound.spi, DeleteReason::DataPlaneRefused)]
    );
    assert_eq!(
        child_deletions(&sim, 0),
        [(mgmt.outbound.spi, DeleteReason::Peer)]
    );
    assert_children(&sim, 1, 0, &["net"]);
    for node in 0..2 {
        let sas = sim.nodes[node].engine.ike_sas();
        assert_eq!(sas.len(), 1);
        assert!(sas[0].established, "the IKE SA stays on node {node}");
        let names: Vec<&str> = sas[0].children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["net"], "node {node}");
    }
    assert_eq!(sim.nodes[0].engine.stats().child_sas_refused, 0);
}
