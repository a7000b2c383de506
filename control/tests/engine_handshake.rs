//! IKE_SA_INIT + IKE_AUTH with PSK and one CHILD_SA between two engines over the simulated
//! network: proposal selection, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED,
//! traffic selector narrowing, NAT detection, the move to port 4500, retransmission, cookies.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use roamgate_control::auth::{Identity, SharedSecrets};
use roamgate_control::crypto::Secret;
use roamgate_control::crypto::sk::Encr;
use roamgate_control::engine::{Event, FailureReason, NATT_PORT, TsConfig};
use support::*;

const LIMIT: Duration = Duration::from_secs(300);

fn both_established(sim: &Sim) -> bool {
    sim.established(0) == 1
        && sim.established(1) == 1
        && !sim.nodes[0].sink.is_empty()
        && !sim.nodes[1].sink.is_empty()
}

#[test]
fn psk_handshake_installs_matching_child_sas() {
    let (i, r) = pair_configs();
    let mut sim = sim_pair(1, i, r);
    let h = sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );

    let sa = sim.nodes[0].sink.iter().next().unwrap().clone();
    assert_eq!(sa.ike_sa, h);
    assert_eq!(sa.name, "net");
    // The responder's first ESP proposal (AES-GCM-128) wins: 16-byte key, 4-byte salt.
    assert_eq!(sa.encryption, Encr::AesGcm16(16));
    assert_eq!(sa.integrity, None);
    assert_eq!(sa.outbound.encryption_key.len(), 16);
    assert_eq!(sa.outbound.salt.len(), 4);
    assert_eq!(sa.local, SocketAddr::new(INITIATOR, 500));
    assert_eq!(sa.remote, SocketAddr::new(RESPONDER, 500));
    assert!(!sa.udp_encap);
    assert_eq!(sa.local_ts, vec![ts("10.1.0.0/16")]);
    assert_eq!(sa.remote_ts, vec![ts("10.2.0.0/16")]);

    let info = sim.nodes[0].engine.ike_sa(h).unwrap();
    assert!(info.established && info.initiator && !info.nat_local && !info.nat_remote);
    let rinfo = &sim.nodes[1].engine.ike_sas()[0];
    assert_eq!((rinfo.spi_i, rinfo.spi_r), (info.spi_i, info.spi_r));
    assert!(!rinfo.initiator);
    // Both sides report the peer's authenticated identity.
    assert!(sim.nodes[1].events.iter().any(|e| matches!(e,
        Event::IkeSaEstablished { peer_id, .. } if peer_id.data == b"moon.example")));
    assert!(sim.nodes[0].events.iter().any(|e| matches!(e,
        Event::IkeSaEstablished { peer_id, .. } if peer_id.data == b"sun.example")));
    // No retransmission was needed on a clean network.
    assert_eq!(sim.nodes[0].engine.stats().requests_retransmitted, 0);
    assert_eq!(sim.nodes[0].sent.len(), 2);
    assert_eq!(sim.nodes[1].sent.len(), 2);
}

#[test]
fn wrong_psk_fails_on_both_sides_and_installs_nothing() {
    let (mut i, r) = pair_configs();
    i.secrets = SharedSecrets::single(Secret::from_slice(b"not the right key"));
    let mut sim = sim_pair(2, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(LIMIT);
    assert!(sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty());
    assert_eq!(sim.established(0) + sim.established(1), 0);
    assert!(matches!(
        sim.failures(1)[..],
        [Event::IkeSaFailed {
            reason: FailureReason::AuthenticationFailed,
            ..
        }]
    ));
    assert!(matches!(
        sim.failures(0)[..],
        [Event::IkeSaFailed {
            reason: FailureReason::PeerAuthenticationFailed,
            ..
        }]
    ));
    assert_eq!(sim.nodes[1].engine.stats().authentication_failed, 1);
    assert!(sim.nodes[0].engine.ike_sas().is_empty() && sim.nodes[1].engine.ike_sas().is_empty());
}

#[test]
fn responder_with_wrong_key_is_rejected_by_the_initiator() {
    // The responder accepts the initiator's AUTH (the key is right) but proves an identity
    // the initiator does not accept: the initiator must refuse and say so.
    let (mut i, mut r) = pair_configs();
    i.connections[0].remote_id = Identity::Fqdn("sun.example".into());
    r.connections[0].local_id = Some(Identity::Fqdn("impostor.example".into()));
    let mut sim = sim_pair(3, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(LIMIT);
    assert!(matches!(
        sim.failures(0)[..],
        [Event::IkeSaFailed {
            reason: FailureReason::AuthenticationFailed,
            ..
        }]
    ));
    assert!(sim.nodes[0].sink.is_empty());
    // The responder had installed its side, and removes it when told.
    assert!(sim.nodes[1].sink.is_empty());
    assert!(sim.nodes[1].engine.ike_sas().is_empty());
}

#[test]
fn invalid_ke_payload_is_retried_with_the_responders_group() {
    let (mut i, mut r) = pair_configs();
    i.connections[0].ike_proposals = vec![ike("aes128gcm16-prfsha256-x25519-ecp256")];
    r.connections[0].ike_proposals = vec![ike("aes128gcm16-prfsha256-ecp256")];
    let mut sim = sim_pair(4, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    assert_eq!(sim.nodes[1].engine.stats().invalid_ke_sent, 1);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
    // The second IKE_SA_INIT carries an ECP-256 KE (64 octets of x | y).
    let second = &sim.nodes[0].sent[1].payload;
    let m = roamgate_control::wire::Message::decode(second).unwrap();
    let ke = m
        .payloads
        .iter()
        .find_map(|p| match p {
            roamgate_control::wire::Payload::KeyExchange(k) => Some(k.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ke.group, roamgate_control::wire::DhGroup::ECP_256);
    assert_eq!(ke.data.len(), 64);
}

#[test]
fn responder_picks_its_own_first_proposal() {
    let (mut i, mut r) = pair_configs();
    i.connections[0].ike_proposals = vec![
        ike("aes256-sha256-x25519"),
        ike("aes128gcm16-prfsha256-x25519"),
    ];
    r.connections[0].ike_proposals = vec![
        ike("aes128gcm16-prfsha256-x25519"),
        ike("aes256-sha256-x25519"),
    ];
    let mut sim = sim_pair(5, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    let resp = roamgate_control::wire::Message::decode(&sim.nodes[1].sent[0].payload).unwrap();
    let sa = resp
        .payloads
        .iter()
        .find_map(|p| match p {
            roamgate_control::wire::Payload::SecurityAssociation(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(sa.proposals.len(), 1);
    // The initiator's proposal number 2 (GCM) is answered.
    assert_eq!(sa.proposals[0].number, 2);
    assert_eq!(
        sa.proposals[0].transforms[0].as_encr(),
        Some(roamgate_control::wire::EncrId::AES_GCM_16)
    );
}

#[test]
fn no_proposal_chosen_fails_the_initiator() {
    let (mut i, mut r) = pair_configs();
    i.connections[0].ike_proposals = vec![ike("aes256-sha384-ecp384")];
    r.connections[0].ike_proposals = vec![ike("aes128gcm16-prfsha256-x25519")];
    let mut sim = sim_pair(6, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(LIMIT);
    assert!(matches!(
        sim.failures(0)[..],
        [Event::IkeSaFailed {
            reason: FailureReason::NoProposalChosen,
            ..
        }]
    ));
    assert_eq!(sim.nodes[1].engine.stats().no_proposal_chosen_sent, 1);
    assert!(
        sim.nodes[1].engine.ike_sas().is_empty(),
        "no responder state"
    );
}

#[test]
fn esp_no_proposal_chosen_keeps_the_ike_sa() {
    let (i, mut r) = pair_configs();
    r.connections[0].children[0].esp_proposals = vec![esp("aes256gcm16")];
    let mut sim = sim_pair(7, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_until(LIMIT, |s| s.established(0) == 1);
    assert_eq!(sim.established(1), 1);
    assert!(sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty());
    assert!(sim.nodes[0].events.iter().any(|e| matches!(
        e,
        Event::ChildSaFailed {
            reason: FailureReason::NoProposalChosen,
            ..
        }
    )));
}

#[test]
fn traffic_selectors_are_narrowed_by_the_responder() {
    let (i, mut r) = pair_configs();
    // The responder only allows 10.1.1.0/24 of the initiator's 10.1.0.0/16.
    r.connections[0].children[0].remote_ts = vec![ts("10.1.1.0/24").into()];
    let mut sim = sim_pair(8, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
    let sa = sim.nodes[0].sink.iter().next().unwrap();
    assert_eq!(sa.local_ts, vec![ts("10.1.1.0/24")]);
    assert_eq!(sa.remote_ts, vec![ts("10.2.0.0/16")]);
}

#[test]
fn disjoint_traffic_selectors_are_ts_unacceptable() {
    let (i, mut r) = pair_configs();
    r.connections[0].children[0].remote_ts = vec![ts("172.16.0.0/12").into()];
    let mut sim = sim_pair(9, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_until(LIMIT, |s| s.established(0) == 1);
    assert_eq!(
        sim.established(1),
        1,
        "the IKE SA stands without a CHILD_SA"
    );
    assert!(sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty());
    assert!(sim.nodes[0].events.iter().any(|e| matches!(
        e,
        Event::ChildSaFailed {
            reason: FailureReason::TsUnacceptable,
            ..
        }
    )));
    assert_eq!(sim.nodes[1].engine.stats().ts_unacceptable_sent, 1);
}

#[test]
fn mobike_moves_ike_to_port_4500_without_nat() {
    let (mut i, mut r) = pair_configs();
    i.connections[0].mobike = true;
    r.connections[0].mobike = true;
    let mut sim = sim_pair(10, i, r);
    let h = sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    let sent = &sim.nodes[0].sent;
    assert_eq!(sent[0].local.port(), 500);
    assert_eq!(sent[1].local.port(), NATT_PORT);
    assert_eq!(sent[1].remote.port(), NATT_PORT);
    assert_eq!(sent[1].payload[..4], [0, 0, 0, 0], "non-ESP marker");
    let info = sim.nodes[0].engine.ike_sa(h).unwrap();
    assert!(info.mobike && !info.nat_local && !info.nat_remote);
    assert_eq!(sim.nodes[1].engine.ike_sas()[0].local.port(), NATT_PORT);
    let sa = sim.nodes[0].sink.iter().next().unwrap();
    assert!(!sa.udp_encap, "no NAT, so ESP is not encapsulated");
    assert_eq!(sa.remote.port(), NATT_PORT);
    // MOBIKE_SUPPORTED went both ways.
    assert!(sim.nodes[1].engine.ike_sas()[0].mobike);
}

#[test]
fn mobike_is_off_unless_both_sides_offer_it() {
    let (mut i, r) = pair_configs();
    i.connections[0].mobike = true;
    let mut sim = sim_pair(11, i, r);
    let h = sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    assert!(!sim.nodes[0].engine.ike_sa(h).unwrap().mobike);
    assert!(!sim.nodes[1].engine.ike_sas()[0].mobike);
}

#[test]
fn nat_is_detected_and_esp_is_encapsulated() {
    let (i, r) = pair_configs();
    let mut sim = sim_pair(12, i, r);
    let public: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    sim.nodes[0].nat = Some(public);
    sim.nodes[0].addrs.push(public);
    let h = sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    let info = sim.nodes[0].engine.ike_sa(h).unwrap();
    assert!(info.nat_local && !info.nat_remote);
    assert_eq!(info.local.port(), NATT_PORT);
    let rinfo = &sim.nodes[1].engine.ike_sas()[0];
    assert!(rinfo.nat_remote && !rinfo.nat_local);
    // The responder follows the NAT's mapping of port 4500.
    assert_eq!(rinfo.remote.ip(), public);
    assert_ne!(rinfo.remote.port(), 500);
    let i_sa = sim.nodes[0].sink.iter().next().unwrap();
    let r_sa = sim.nodes[1].sink.iter().next().unwrap();
    assert!(i_sa.udp_encap && r_sa.udp_encap);
    assert_eq!(r_sa.remote, rinfo.remote);
    assert_eq!(i_sa.outbound, r_sa.inbound);
    // Behind the NAT, the initiator keeps the mapping alive with one-octet keepalives
    // every 20 s of silence; the responder, not behind a NAT, sends none.
    let sent_before = sim.nodes[0].sent.len();
    sim.run_for(Duration::from_secs(65));
    assert_eq!(sim.nodes[0].engine.stats().keepalives_sent, 3);
    assert_eq!(sim.nodes[1].engine.stats().keepalives_sent, 0);
    assert_eq!(sim.nodes[1].engine.stats().keepalives_received, 3);
    let ka = &sim.nodes[0].sent[sent_before];
    assert_eq!(ka.payload, [0xff]);
    assert_eq!((ka.local.port(), ka.remote.port()), (NATT_PORT, NATT_PORT));
}

#[test]
fn lost_ike_auth_response_is_answered_from_the_cache() {
    let (i, r) = pair_configs();
    let mut sim = sim_pair(13, i, r);
    let mut dropped = false;
    // Drop the responder's first IKE_AUTH response (its second datagram).
    let mut count = 0;
    sim.drop_if = Some(Box::new(move |t| {
        if t.local.ip() == RESPONDER {
            count += 1;
            if count == 2 && !dropped {
                dropped = true;
                return true;
            }
        }
        false
    }));
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    assert_eq!(sim.nodes[0].engine.stats().requests_retransmitted, 1);
    assert_eq!(sim.nodes[1].engine.stats().responses_retransmitted, 1);
    assert_eq!(
        sim.nodes[1].sink.len(),
        1,
        "the retransmission installs nothing twice"
    );
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
    // The retransmission waited for the first timeout (4 s by default).
    assert!(sim.elapsed() >= Duration::from_secs(4));
}

#[test]
fn silent_responder_fails_after_the_configured_retransmissions() {
    let (mut i, r) = pair_configs();
    i.retransmit.tries = 2;
    i.retransmit.timeout = Duration::from_secs(1);
    i.retransmit.base = 2.0;
    let mut sim = sim_pair(14, i, r);
    sim.drop_if = Some(Box::new(|_| true));
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(LIMIT);
    assert!(matches!(
        sim.failures(0)[..],
        [Event::IkeSaFailed {
            reason: FailureReason::Timeout,
            ..
        }]
    ));
    assert_eq!(
        sim.nodes[0].sent.len(),
        3,
        "one send and two retransmissions"
    );
    // 1 s + 2 s + 4 s of waiting.
    assert_eq!(sim.elapsed(), Duration::from_secs(7));
    assert_eq!(sim.nodes[0].engine.stats().exchange_timeouts, 1);
    assert!(sim.nodes[0].engine.ike_sas().is_empty());
}

#[test]
fn cookie_is_demanded_and_returned() {
    let (i, mut r) = pair_configs();
    r.cookie_threshold = 0;
    let mut sim = sim_pair(15, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    assert_eq!(sim.nodes[1].engine.stats().cookies_sent, 1);
    let retry = roamgate_control::wire::Message::decode(&sim.nodes[0].sent[1].payload).unwrap();
    assert!(matches!(&retry.payloads[0],
        roamgate_control::wire::Payload::Notify(n) if n.ty == roamgate_control::wire::NotifyType::COOKIE));
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
}

#[test]
fn forged_cookie_is_refused() {
    let (_, mut r) = pair_configs();
    r.cookie_threshold = 0;
    let mut sim = Sim::new(16);
    sim.add(r, &[RESPONDER], 99);
    // An IKE_SA_INIT with a made-up COOKIE gets a fresh COOKIE demand, and no state.
    let (i, _) = pair_configs();
    let mut other = roamgate_control::engine::Engine::new(i, engine_rng(5));
    other.initiate(sim.now, "gw").unwrap();
    let t = other.poll_transmit().unwrap();
    let mut m = roamgate_control::wire::Message::decode(&t.payload).unwrap();
    m.payloads.insert(
        0,
        roamgate_control::wire::Payload::Notify(roamgate_control::wire::payload::Notify::new(
            roamgate_control::wire::NotifyType::COOKIE,
            vec![7; 17],
        )),
    );
    let forged = m.encode().unwrap();
    sim.nodes[0].engine.handle_datagram(
        sim.now,
        SocketAddr::new(RESPONDER, 500),
        SocketAddr::new(INITIATOR, 500),
        &forged,
    );
    assert_eq!(sim.nodes[0].engine.stats().cookies_invalid, 1);
    assert!(sim.nodes[0].engine.ike_sas().is_empty());
}

#[test]
fn dynamic_selectors_are_the_ike_addresses() {
    // Host to host: `dynamic` on both sides of both peers is each side's IKE address.
    let (mut i, mut r) = pair_configs();
    for c in [&mut i.connections[0], &mut r.connections[0]] {
        c.children[0].local_ts = vec![TsConfig::DYNAMIC];
        c.children[0].remote_ts = vec![TsConfig::DYNAMIC];
    }
    let mut sim = sim_pair(41, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    let sa = sim.nodes[0].sink.iter().next().unwrap();
    assert_eq!(sa.local_ts, [ts("192.0.2.1/32")]);
    assert_eq!(sa.remote_ts, [ts("198.51.100.1/32")]);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
}

#[test]
fn responder_prefers_the_connection_with_the_identity_the_initiator_asks_for() {
    // Two connections accept the initiator; the one whose identity is the IDr the initiator
    // sent wins, and the responder proves that identity.
    let (mut i, mut r) = pair_configs();
    i.connections[0].remote_id = Identity::Fqdn("vpn2.example".into());
    let mut second = r.connections[0].clone();
    second.name = "second".into();
    second.local_id = Some(Identity::Fqdn("vpn2.example".into()));
    r.connections.push(second);
    let mut sim = sim_pair(42, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, both_established));
    assert!(sim.nodes[1].events.iter().any(|e| matches!(e,
        Event::IkeSaEstablished { connection, .. } if connection == "second")));
    assert!(sim.nodes[0].events.iter().any(|e| matches!(e,
        Event::IkeSaEstablished { peer_id, .. } if peer_id.data == b"vpn2.example")));
}

/// INITIAL_CONTACT (RFC 7296 § 3.10.1) goes only with an initiator's first IKE SA to a peer:
/// a second, concurrent IKE SA of the same connection must not make the peer delete the first.
#[test]
fn concurrent_ike_sas_to_one_peer_all_survive() {
    let (i, r) = pair_configs();
    let mut sim = sim_pair(11, i, r);
    for _ in 0..3 {
        sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    }
    assert!(sim.run_until(LIMIT, |s| s.established(0) == 3 && s.established(1) == 3));
    sim.run_for(Duration::from_secs(1));
    let live = |n: usize| {
        sim.nodes[n]
            .engine
            .ike_sas()
            .iter()
            .filter(|s| s.established)
            .count()
    };
    assert_eq!((live(0), live(1)), (3, 3), "{:#?}", sim.nodes[1].events);
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        3
    );
}
