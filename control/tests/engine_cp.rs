//! Virtual IPs through the Configuration payload (RFC 7296 § 2.19): the initiator asks, the
//! responder assigns from a pool, narrows TSi to the address, and gives the same identity its
//! address back after a reconnect; an IPv4 and an IPv6 address together (§ 3.15.1).

mod support;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use roamgate_control::engine::{EngineConfig, Event, FailureReason, PoolConfig, TsConfig};
use roamgate_control::wire::payload::{AddressRange, Identification, TrafficSelector};
use support::*;

const LIMIT: Duration = Duration::from_secs(300);

fn road_warrior(id: &str) -> EngineConfig {
    let mut c = connection("rw", INITIATOR, Some(RESPONDER), id);
    let mut ch = child("home", "0.0.0.0/0", "10.2.0.0/16");
    ch.local_ts = vec![ts("0.0.0.0/0").into()];
    c.children.push(ch);
    c.vips = vec!["0.0.0.0".parse().unwrap()];
    psk_config(vec![c], b"road warrior key")
}

fn gateway(pool_size: u8) -> EngineConfig {
    let mut c = connection("rw", RESPONDER, None, "gw.example");
    c.children.push(child("home", "10.2.0.0/16", "0.0.0.0/0"));
    c.pools = vec!["rw".into()];
    EngineConfig {
        pools: vec![PoolConfig {
            name: "rw".into(),
            first: "10.3.0.1".parse().unwrap(),
            last: IpAddr::V4(std::net::Ipv4Addr::new(10, 3, 0, pool_size)),
        }],
        ..psk_config(vec![c], b"road warrior key")
    }
}

fn vip_of(sim: &Sim, node: usize) -> Option<IpAddr> {
    sim.nodes[node].events.iter().rev().find_map(|e| match e {
        Event::VirtualIp { address, .. } => Some(*address),
        _ => None,
    })
}

#[test]
fn virtual_ip_is_assigned_and_tsi_narrowed() {
    let mut sim = sim_pair(31, road_warrior("alice@example"), gateway(10));
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| !s.nodes[0].sink.is_empty()
        && !s.nodes[1].sink.is_empty()));
    let vip: IpAddr = "10.3.0.1".parse().unwrap();
    assert_eq!(vip_of(&sim, 0), Some(vip));
    assert_eq!(vip_of(&sim, 1), Some(vip));
    assert_eq!(sim.nodes[0].engine.ike_sas()[0].virtual_ip, Some(vip));
    let sa = sim.nodes[0].sink.iter().next().unwrap();
    assert_eq!(sa.local_ts, vec![ts("10.3.0.1/32")]);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
}

#[test]
fn reconnecting_identity_gets_its_address_back() {
    let mut sim = Sim::new(32);
    sim.add(road_warrior("alice@example"), &[INITIATOR], 1);
    sim.add(gateway(10), &[RESPONDER], 2);
    let bob_ip: IpAddr = "192.0.2.2".parse().unwrap();
    let mut bob = road_warrior("bob@example");
    bob.connections[0].local_addrs = vec![bob_ip];
    sim.add(bob, &[bob_ip], 3);

    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| vip_of(s, 0).is_some()));
    let alice_first = vip_of(&sim, 0).unwrap();
    // Alice goes away (deletes her SA), Bob comes, Alice comes back.
    let h = sim.nodes[0].engine.ike_sas()[0].handle;
    sim.nodes[0].engine.terminate_ike(sim.now, h).unwrap();
    sim.run_until(LIMIT, |s| s.nodes[1].engine.ike_sas().is_empty());
    sim.nodes[2].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| vip_of(s, 2).is_some()));
    let bob_vip = vip_of(&sim, 2).unwrap();
    assert_ne!(bob_vip, alice_first, "Alice's lease is kept for her");
    sim.nodes[0].events.clear();
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| vip_of(s, 0).is_some()));
    assert_eq!(vip_of(&sim, 0), Some(alice_first));
    let ids: Vec<Identification> = sim.nodes[1]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaEstablished { peer_id, .. } => Some(peer_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn exhausted_pool_is_internal_address_failure() {
    let mut sim = Sim::new(33);
    sim.add(road_warrior("alice@example"), &[INITIATOR], 1);
    sim.add(gateway(1), &[RESPONDER], 2);
    let bob_ip: IpAddr = "192.0.2.2".parse().unwrap();
    let mut bob = road_warrior("bob@example");
    bob.connections[0].local_addrs = vec![bob_ip];
    sim.add(bob, &[bob_ip], 3);
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| vip_of(s, 0).is_some()));
    sim.nodes[2].engine.initiate(sim.now, "rw").unwrap();
    sim.run_until(LIMIT, |s| s.established(2) == 1);
    assert_eq!(vip_of(&sim, 2), None);
    assert!(sim.nodes[2].sink.is_empty());
    assert!(sim.nodes[2].events.iter().any(|e| matches!(
        e,
        Event::ChildSaFailed {
            reason: FailureReason::InternalAddressFailure,
            ..
        }
    )));
    assert_eq!(sim.nodes[1].engine.stats().internal_address_failure_sent, 1);
}

#[test]
fn restarted_road_warrior_replaces_its_stale_sa_and_keeps_its_address() {
    let mut sim = sim_pair(34, road_warrior("alice@example"), gateway(10));
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| vip_of(s, 0).is_some()
        && s.nodes[1].sink.len() == 1));
    let first = vip_of(&sim, 0).unwrap();
    // Alice's machine restarts: a fresh engine, no Delete sent. Its IKE_AUTH carries
    // INITIAL_CONTACT, so the gateway drops the stale SA instead of waiting for DPD.
    sim.nodes[0].engine =
        roamgate_control::engine::Engine::new(road_warrior("alice@example"), engine_rng(999));
    sim.nodes[0].sink = roamgate_control::engine::MemorySaSink::new();
    sim.nodes[0].events.clear();
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| vip_of(s, 0).is_some()
        && !s.nodes[0].sink.is_empty()));
    assert_eq!(vip_of(&sim, 0), Some(first));
    assert_eq!(sim.nodes[1].engine.ike_sas().len(), 1);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
    assert!(
        sim.nodes[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { .. }))
    );
}

#[test]
fn dynamic_selectors_are_the_virtual_ip_on_both_sides() {
    // strongSwan's usual road warrior: `local_ts = dynamic` on the client, `remote_ts =
    // dynamic` on the gateway; both mean the virtual IP once it is assigned.
    let mut client = road_warrior("alice@example");
    client.connections[0].children[0].local_ts = vec![TsConfig::DYNAMIC];
    let mut gw = gateway(10);
    gw.connections[0].children[0].remote_ts = vec![TsConfig::DYNAMIC];
    let mut sim = sim_pair(33, client, gw);
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| !s.nodes[0].sink.is_empty()
        && !s.nodes[1].sink.is_empty()));
    let host = vec![ts("10.3.0.1/32")];
    assert_eq!(sim.nodes[0].sink.iter().next().unwrap().local_ts, host);
    assert_eq!(sim.nodes[1].sink.iter().next().unwrap().remote_ts, host);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
}

fn ts6(cidr: &str) -> TrafficSelector {
    let (a, len) = cidr.split_once('/').unwrap();
    let a = u128::from(a.parse::<Ipv6Addr>().unwrap());
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    TrafficSelector::Ipv6(AddressRange::any(
        Ipv6Addr::from(a & mask),
        Ipv6Addr::from((a & mask) | !mask),
    ))
}

/// A gateway with an IPv4 pool and an IPv6 pool, protecting an IPv4 and an IPv6 LAN, and
/// `dynamic` (the assigned virtual IPs) on the peer's side.
fn dual_stack_gateway() -> EngineConfig {
    let mut gw = gateway(10);
    let c = &mut gw.connections[0];
    c.pools = vec!["rw".into(), "rw6".into()];
    c.children[0].local_ts = vec![ts("10.2.0.0/16").into(), ts6("fd00:2::/64").into()];
    c.children[0].remote_ts = vec![TsConfig::DYNAMIC];
    gw.pools.push(PoolConfig {
        name: "rw6".into(),
        first: "fd00:3::1".parse().unwrap(),
        last: "fd00:3::ff".parse().unwrap(),
    });
    gw
}

/// A road warrior asking for an address of each family (strongSwan's `vips = 0.0.0.0,::`)
/// with `dynamic` local selectors.
fn dual_stack_road_warrior(id: &str) -> EngineConfig {
    let mut client = road_warrior(id);
    let c = &mut client.connections[0];
    c.vips = vec!["0.0.0.0".parse().unwrap(), "::".parse().unwrap()];
    c.children[0].local_ts = vec![TsConfig::DYNAMIC];
    c.children[0].remote_ts = vec![ts("10.2.0.0/16").into(), ts6("fd00:2::/64").into()];
    client
}

#[test]
fn both_families_are_assigned_and_carried_by_one_child_sa() {
    // RFC 7296 § 3.15.1: one INTERNAL_IP4_ADDRESS and one INTERNAL_IP6_ADDRESS in the same
    // request each get an address; the CHILD_SA's peer side is both hosts.
    let mut sim = sim_pair(
        35,
        dual_stack_road_warrior("alice@example"),
        dual_stack_gateway(),
    );
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| !s.nodes[0].sink.is_empty()
        && !s.nodes[1].sink.is_empty()));
    let v4: IpAddr = "10.3.0.1".parse().unwrap();
    let v6: IpAddr = "fd00:3::1".parse().unwrap();
    for node in 0..2 {
        let vips: Vec<IpAddr> = sim.nodes[node]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::VirtualIp { address, .. } => Some(*address),
                _ => None,
            })
            .collect();
        assert_eq!(vips, [v4, v6], "node {node}");
        let info = &sim.nodes[node].engine.ike_sas()[0];
        assert_eq!(info.virtual_ips, [v4, v6], "node {node}");
        assert_eq!(info.virtual_ip, Some(v4), "node {node}");
    }
    let hosts = vec![ts("10.3.0.1/32"), ts6("fd00:3::1/128")];
    let lans = vec![ts("10.2.0.0/16"), ts6("fd00:2::/64")];
    let client = sim.nodes[0].sink.iter().next().unwrap();
    assert_eq!((&client.local_ts, &client.remote_ts), (&hosts, &lans));
    let gw = sim.nodes[1].sink.iter().next().unwrap();
    assert_eq!((&gw.local_ts, &gw.remote_ts), (&lans, &hosts));
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);

    // Both addresses go back to the pools with the SA and come back to the same identity.
    let h = sim.nodes[0].engine.ike_sas()[0].handle;
    sim.nodes[0].engine.terminate_ike(sim.now, h).unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[1].engine.ike_sas().is_empty()));
    sim.nodes[0].events.clear();
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| {
        s.nodes[1]
            .engine
            .ike_sas()
            .first()
            .is_some_and(|sa| sa.virtual_ips.len() == 2)
    }));
    assert_eq!(sim.nodes[1].engine.ike_sas()[0].virtual_ips, [v4, v6]);
}

#[test]
fn family_without_a_pool_is_left_out_of_the_reply() {
    // Only an IPv6 pool: the IPv4 request goes unanswered, the IPv6 one is served, and the
    // CHILD_SA carries what the peer got.
    let mut gw = dual_stack_gateway();
    gw.connections[0].pools = vec!["rw6".into()];
    let mut sim = sim_pair(36, dual_stack_road_warrior("alice@example"), gw);
    sim.nodes[0].engine.initiate(sim.now, "rw").unwrap();
    assert!(sim.run_until(LIMIT, |s| !s.nodes[0].sink.is_empty()
        && !s.nodes[1].sink.is_empty()));
    let v6: IpAddr = "fd00:3::1".parse().unwrap();
    assert_eq!(sim.nodes[0].engine.ike_sas()[0].virtual_ips, [v6]);
    assert_eq!(sim.nodes[1].engine.ike_sas()[0].virtual_ips, [v6]);
    let gw = sim.nodes[1].sink.iter().next().unwrap();
    assert_eq!(gw.remote_ts, vec![ts6("fd00:3::1/128")]);
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
}
