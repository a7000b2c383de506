//! The path model of an IKE SA (RFC 4555 § 3.5): its local address set from the connection
//! and the host's addresses ([`Engine::set_local_addresses`]), the candidate pairs they make
//! with the peer's addresses, the check state an authenticated answer gives a pair, and an
//! outstanding request that follows the SA to its new pair with its message ID.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use roamgate_control::engine::path::{AddressPair, PathCheck};
use roamgate_control::engine::{Engine, IKE_PORT};
use support::*;

const LIMIT: Duration = Duration::from_secs(120);
/// The initiator's second uplink.
const INITIATOR_2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn sock(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, IKE_PORT)
}

fn pair(local: IpAddr, remote: IpAddr) -> AddressPair {
    AddressPair {
        local: sock(local),
        remote: sock(remote),
    }
}

/// The site-to-site pair with an initiator that may use both of its uplinks, which the
/// host reports in the other order, plus an address the connection does not list.
fn two_uplinks(seed: u64) -> Sim {
    let (mut i, r) = pair_configs();
    i.connections[0].local_addrs = vec![INITIATOR, INITIATOR_2];
    let mut sim = sim_pair(seed, i, r);
    sim.nodes[0].addrs.push(INITIATOR_2);
    let other: IpAddr = "203.0.113.5".parse().unwrap();
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &on_eth0(&[INITIATOR_2, other, INITIATOR]));
    sim.nodes[0].engine.initiate(now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    sim
}

/// The message ID of an IKE datagram on port 500.
fn message_id(datagram: &[u8]) -> u32 {
    u32::from_be_bytes(datagram[20..24].try_into().unwrap())
}

#[test]
fn the_local_set_is_the_connection_s_addresses_the_host_has_and_the_pairs_follow_it() {
    let mut sim = two_uplinks(1);
    let h = handle(&sim, 0);
    let info = sim.nodes[0].engine.ike_sa(h).unwrap();
    assert_eq!(info.local, sock(INITIATOR));
    // The connection's order, not the host's; the unlisted address is not used.
    assert_eq!(info.local_addresses, [INITIATOR, INITIATOR_2]);
    assert_eq!(info.peer_addresses, [RESPONDER]);
    let pairs: Vec<AddressPair> = info.candidates.iter().map(|c| c.pair).collect();
    assert_eq!(
        pairs,
        [pair(INITIATOR, RESPONDER), pair(INITIATOR_2, RESPONDER)]
    );
    // The responder, whose connection has no remote address, sees one pair.
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert_eq!(r.local_addresses, [RESPONDER]);
    assert_eq!(r.peer_addresses, [INITIATOR]);

    // The first uplink goes away: the set and the pairs follow at once; nothing is sent
    // and nothing moves (only an authenticated exchange moves an SA).
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &on_eth0(&[INITIATOR_2]));
    let info = sim.nodes[0].engine.ike_sa(h).unwrap();
    assert_eq!(info.local_addresses, [INITIATOR_2]);
    let pairs: Vec<AddressPair> = info.candidates.iter().map(|c| c.pair).collect();
    assert_eq!(pairs, [pair(INITIATOR_2, RESPONDER)]);
    assert_eq!(info.local, sock(INITIATOR));
    assert!(info.established);
    assert_eq!(sim.nodes[0].engine.poll_transmit(), None);
    assert_eq!(sim.nodes[0].engine.poll_sa_event(), None);
}

#[test]
fn an_authenticated_answer_marks_the_pair_it_came_on_reachable_and_no_other() {
    let mut sim = two_uplinks(2);
    let h = handle(&sim, 0);
    let checks = |e: &Engine| -> Vec<PathCheck> {
        e.ike_sa(h)
            .unwrap()
            .candidates
            .iter()
            .map(|c| c.check)
            .collect()
    };
    assert_eq!(
        checks(&sim.nodes[0].engine),
        [PathCheck::Untested, PathCheck::Untested],
        "IKE_AUTH's answer came before the pairs were known"
    );
    let now = sim.now;
    sim.nodes[0].engine.send_dpd(now, h).unwrap();
    let sent_at = sim.now;
    assert!(sim.run_until(LIMIT, |s| {
        s.nodes[0].engine.ike_sa(h).unwrap().candidates[0].check != PathCheck::Untested
    }));
    let [first, second] = checks(&sim.nodes[0].engine)[..] else {
        panic!("two candidate pairs")
    };
    assert!(matches!(first, PathCheck::Reachable(at) if at > sent_at));
    assert_eq!(second, PathCheck::Untested);
}

#[test]
fn a_request_outstanding_when_the_sa_moves_is_retransmitted_on_the_new_pair_with_its_message_id() {
    let mut sim = two_uplinks(3);
    let h = handle(&sim, 0);
    // The first uplink is cut: nothing from it reaches the responder any more.
    sim.drop_if = Some(Box::new(|t| t.local.ip() == INITIATOR));
    let now = sim.now;
    let before = sim.nodes[0].sent.len();
    sim.nodes[0].engine.send_dpd(now, h).unwrap();
    sim.collect();
    let first = sim.nodes[0].sent[before].clone();
    assert_eq!(first.local, sock(INITIATOR));
    sim.nodes[0]
        .engine
        .update_ike_sa_path(h, sock(INITIATOR_2), sock(RESPONDER))
        .unwrap();
    assert!(sim.run_until(LIMIT, |s| {
        s.nodes[0].engine.ike_sa(h).unwrap().candidates[1].check != PathCheck::Untested
    }));
    let retransmitted: Vec<_> = sim.nodes[0].sent[before + 1..]
        .iter()
        .filter(|t| t.local == sock(INITIATOR_2))
        .collect();
    assert_eq!(
        retransmitted.len(),
        1,
        "one retransmission, on the new pair"
    );
    assert_eq!(
        message_id(&retransmitted[0].payload),
        message_id(&first.payload)
    );
    assert_eq!(retransmitted[0].payload, first.payload, "the same request");
    assert!(sim.nodes[0].engine.ike_sa(h).unwrap().established);
    assert!(
        sim.nodes[1]
            .engine
            .ike_sa(handle(&sim, 1))
            .unwrap()
            .established
    );
}
