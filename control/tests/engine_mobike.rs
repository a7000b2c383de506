//! MOBIKE (RFC 4555) between two engines, both multihomed: the address lists of IKE_AUTH,
//! the initiator's path check and UPDATE_SA_ADDRESSES when its address goes away, the
//! responder's return routability check of an address it was not told about, a replayed
//! UPDATE_SA_ADDRESSES from a spoofed source, and `mobike = false`; and tshark, with both
//! engines' keys, decrypting and dissecting every MOBIKE message they send.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roamgate_control::crypto::Secret;
use roamgate_control::crypto::sk::{Encr, Integ, SkCipher};
use roamgate_control::engine::keylog::{IkeSaKeys, KeyLog};
use roamgate_control::engine::path::HostAddress;
use roamgate_control::engine::{DeleteReason, Event, NATT_PORT, ReturnRoutability, Transmit};
use roamgate_control::wire::payload::{Notify, Payload, decode_chain, encode_chain_to_vec};
use roamgate_control::wire::{ExchangeType, Message, NotifyType};
use roamgate_lab::pcap;
use support::*;

const LIMIT: Duration = Duration::from_secs(120);
/// The initiator's second uplink.
const INITIATOR_2: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
/// The responder's second WAN address.
const RESPONDER_2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));

fn natt(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, NATT_PORT)
}

/// Both sides with MOBIKE and two addresses each. With `announce_second`, the initiator's
/// connection lists both of its addresses and its host reports both, so IKE_AUTH
/// announces the second; without, its connection takes any address (`%any`) and its host
/// has only the first until [`lose_first_uplink`].
fn multihomed(seed: u64, announce_second: bool, policy: ReturnRoutability) -> Sim {
    multihomed_with_keys(seed, announce_second, policy, None)
}

/// Every IKE SA's keys, as records of Wireshark's decryption table, and as they are, for a
/// test that forges a peer's messages.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<IkeSecrets>>>);

#[derive(Clone)]
struct IkeSecrets {
    encr: Encr,
    integ: Option<Integ>,
    sk_er: Vec<u8>,
    sk_ar: Vec<u8>,
    sk_ei: Vec<u8>,
    sk_ai: Vec<u8>,
}

impl IkeSecrets {
    /// The cipher of one direction: the responder's (`true`) or the initiator's.
    fn cipher(&self, responder: bool) -> SkCipher {
        let (e, a) = if responder {
            (&self.sk_er, &self.sk_ar)
        } else {
            (&self.sk_ei, &self.sk_ai)
        };
        SkCipher::new(
            self.encr,
            self.integ,
            &Secret::from_slice(e),
            &Secret::from_slice(a),
        )
        .unwrap()
    }
}

impl KeyLog for Records {
    fn ike_sa_keys(&mut self, keys: &IkeSaKeys<'_>) {
        // Both ends derive the same keys: one record each.
        let record = keys.wireshark_record();
        let mut records = self.0.lock().unwrap();
        if !records.contains(&record) {
            records.push(record);
            self.1.lock().unwrap().push(IkeSecrets {
                encr: keys.encr,
                integ: keys.integ,
                sk_er: keys.sk_er.to_vec(),
                sk_ar: keys.sk_ar.to_vec(),
                sk_ei: keys.sk_ei.to_vec(),
                sk_ai: keys.sk_ai.to_vec(),
            });
        }
    }
}

/// [`multihomed`], both engines' keys going to `keys`.
fn multihomed_with_keys(
    seed: u64,
    announce_second: bool,
    policy: ReturnRoutability,
    keys: Option<&Records>,
) -> Sim {
    let (mut i, mut r) = pair_configs();
    i.connections[0].mobike = true;
    i.connections[0].local_addrs = if announce_second {
        vec![INITIATOR, INITIATOR_2]
    } else {
        vec![]
    };
    r.connections[0].mobike = true;
    r.connections[0].local_addrs = vec![RESPONDER, RESPONDER_2];
    r.connections[0].return_routability = policy;
    let mut sim = sim_pair(seed, i, r);
    if let Some(keys) = keys {
        for node in &mut sim.nodes {
            node.engine.set_key_log(Some(Box::new(keys.clone())));
        }
    }
    sim.nodes[0].addrs.push(INITIATOR_2);
    sim.nodes[1].addrs.push(RESPONDER_2);
    let now = sim.now;
    let host: &[IpAddr] = if announce_second {
        &[INITIATOR, INITIATOR_2]
    } else {
        &[INITIATOR]
    };
    sim.nodes[0].engine.set_local_addresses(now, &on_eth0(host));
    sim.nodes[1]
        .engine
        .set_local_addresses(now, &on_eth0(&[RESPONDER, RESPONDER_2]));
    sim.nodes[0].engine.initiate(now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    sim
}

/// Each side's IKE SA path and its CHILD_SA's endpoints, as (local, remote).
fn paths(sim: &Sim) -> [(SocketAddr, SocketAddr); 4] {
    let i = sim.nodes[0].engine.ike_sa(handle(sim, 0)).unwrap();
    let r = sim.nodes[1].engine.ike_sa(handle(sim, 1)).unwrap();
    let ci = sim.nodes[0].sink.iter().next().unwrap();
    let cr = sim.nodes[1].sink.iter().next().unwrap();
    [
        (i.local, i.remote),
        (ci.local, ci.remote),
        (r.local, r.remote),
        (cr.local, cr.remote),
    ]
}

fn moved_to(sim: &Sim, initiator: IpAddr, responder: IpAddr) -> bool {
    let want_i = (natt(initiator), natt(responder));
    let want_r = (natt(responder), natt(initiator));
    paths(sim) == [want_i, want_i, want_r, want_r]
}

/// The initiator loses its first uplink (nothing from it arrives any more) and the host
/// says so.
fn lose_first_uplink(sim: &mut Sim) {
    sim.drop_if = Some(Box::new(|t| {
        t.local.ip() == INITIATOR || t.remote.ip() == INITIATOR
    }));
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &on_eth0(&[INITIATOR_2]));
}

#[test]
fn ike_auth_carries_each_side_s_other_addresses() {
    let sim = multihomed(1, true, ReturnRoutability::NewAddresses);
    let i = sim.nodes[0].engine.ike_sa(handle(&sim, 0)).unwrap();
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert!(i.mobike && r.mobike);
    assert_eq!(i.peer_addresses, [RESPONDER, RESPONDER_2]);
    assert_eq!(r.peer_addresses, [INITIATOR, INITIATOR_2]);
    assert!(moved_to(&sim, INITIATOR, RESPONDER), "{:?}", paths(&sim));
}

#[test]
fn mobike_off_sends_no_address_list_and_nothing_moves() {
    let (mut i, mut r) = pair_configs();
    i.connections[0].local_addrs = vec![INITIATOR, INITIATOR_2];
    r.connections[0].local_addrs = vec![RESPONDER, RESPONDER_2];
    r.connections[0].mobike = true;
    let mut sim = sim_pair(2, i, r);
    sim.nodes[0].addrs.push(INITIATOR_2);
    sim.nodes[1].addrs.push(RESPONDER_2);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    let i = sim.nodes[0].engine.ike_sa(handle(&sim, 0)).unwrap();
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert!(!i.mobike && !r.mobike);
    assert_eq!(i.peer_addresses, [RESPONDER]);
    assert_eq!(r.peer_addresses, [INITIATOR]);
    lose_first_uplink(&mut sim);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.nodes[0].engine.stats().mobike_path_checks, 0);
    assert_eq!(sim.nodes[1].engine.stats().mobike_moves, 0);
}

#[test]
fn the_initiator_that_loses_its_address_checks_the_pairs_and_both_sides_move_in_place() {
    for seed in 1..=5 {
        let mut sim = multihomed(seed, true, ReturnRoutability::NewAddresses);
        let spis: Vec<(u32, u32)> = sim.nodes[0]
            .sink
            .iter()
            .map(|c| (c.inbound.spi, c.outbound.spi))
            .collect();
        let before = sim.nodes[0].sink.applied();
        lose_first_uplink(&mut sim);
        assert!(
            sim.run_until(LIMIT, |s| moved_to(s, INITIATOR_2, RESPONDER)),
            "seed {seed}: {:?}",
            paths(&sim)
        );
        let (i, r) = (sim.nodes[0].engine.stats(), sim.nodes[1].engine.stats());
        assert_eq!(i.mobike_path_checks, 1, "seed {seed}");
        assert_eq!((i.mobike_moves, r.mobike_moves), (1, 1), "seed {seed}");
        // The address was announced in IKE_AUTH: no return routability check.
        assert_eq!(r.mobike_return_routability_checks, 0);
        // In place: the same CHILD_SA, one endpoint write, no rekey.
        let after: Vec<(u32, u32)> = sim.nodes[0]
            .sink
            .iter()
            .map(|c| (c.inbound.spi, c.outbound.spi))
            .collect();
        assert_eq!(after, spis);
        assert_eq!(sim.nodes[0].sink.applied(), before + 1);
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
        // The UPDATE carried the initiator's new list: its lost address is gone from it.
        let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
        assert_eq!(r.peer_addresses, [INITIATOR_2]);
        assert!(sim.nodes[1].events.iter().any(|e| matches!(
            e,
            Event::PathUpdated { remote, .. } if *remote == natt(INITIATOR_2)
        )));
    }
}

#[test]
fn a_move_to_an_address_the_peer_did_not_announce_waits_for_the_return_routability_check() {
    for seed in 1..=3 {
        let mut sim = multihomed(seed, false, ReturnRoutability::NewAddresses);
        let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
        assert_eq!(r.peer_addresses, [INITIATOR]);
        lose_first_uplink(&mut sim);
        let mut moved_before_check = false;
        let ok = sim.run_until(LIMIT, |s| {
            let r = s.nodes[1].engine.ike_sa(handle(s, 1)).unwrap();
            moved_before_check |= r.remote == natt(INITIATOR_2)
                && s.nodes[1].engine.stats().mobike_return_routability_checks == 0;
            moved_to(s, INITIATOR_2, RESPONDER)
        });
        assert!(ok, "seed {seed}: {:?}", paths(&sim));
        assert!(!moved_before_check, "seed {seed}");
        let r = sim.nodes[1].engine.stats();
        assert_eq!(r.mobike_return_routability_checks, 1);
        assert_eq!(r.mobike_moves, 1);
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
    }
}

#[test]
fn with_policy_always_the_responder_checks_the_new_pair_before_it_moves() {
    for (policy, checks) in [
        (ReturnRoutability::Always, 1),
        (ReturnRoutability::Never, 0),
        (ReturnRoutability::NewAddresses, 0),
    ] {
        let mut sim = multihomed(4, true, policy);
        lose_first_uplink(&mut sim);
        let mut moved_before_check = false;
        let ok = sim.run_until(LIMIT, |s| {
            let r = s.nodes[1].engine.ike_sa(handle(s, 1)).unwrap();
            if r.remote == natt(INITIATOR_2)
                && s.nodes[1].engine.stats().mobike_return_routability_checks < checks
            {
                moved_before_check = true;
            }
            moved_to(s, INITIATOR_2, RESPONDER)
        });
        assert!(ok, "{policy:?}: {:?}", paths(&sim));
        assert!(!moved_before_check, "{policy:?}");
        assert_eq!(
            sim.nodes[1].engine.stats().mobike_return_routability_checks,
            checks,
            "{policy:?}"
        );
    }
}

#[test]
fn a_replayed_update_sa_addresses_from_a_spoofed_source_moves_nothing() {
    let mut sim = multihomed(5, true, ReturnRoutability::NewAddresses);
    lose_first_uplink(&mut sim);
    assert!(sim.run_until(LIMIT, |s| moved_to(s, INITIATOR_2, RESPONDER)));
    sim.drop_if = None;
    // The UPDATE as captured on the wire: the initiator's last request from its new
    // address to the responder.
    let update = sim.nodes[0]
        .sent
        .iter()
        .rev()
        .find(|t| {
            // After the non-ESP marker: an INFORMATIONAL (37) request.
            t.local.ip() == INITIATOR_2 && t.payload[4 + 18] == 37 && t.payload[4 + 19] & 0x20 == 0
        })
        .cloned()
        .expect("the UPDATE_SA_ADDRESSES was sent");
    let spoofed: SocketAddr = "203.0.113.66:4500".parse().unwrap();
    let now = sim.now;
    let before = *sim.nodes[1].engine.stats();
    sim.nodes[1]
        .engine
        .handle_datagram(now, natt(RESPONDER), spoofed, &update.payload);
    sim.collect();
    let after = *sim.nodes[1].engine.stats();
    assert_eq!(after.mobike_moves, before.mobike_moves);
    assert!(moved_to(&sim, INITIATOR_2, RESPONDER), "{:?}", paths(&sim));
    // Counted: answered from the cache (a retransmission) or dropped out of the window.
    assert_eq!(
        after.responses_retransmitted + after.drop_out_of_window,
        before.responses_retransmitted + before.drop_out_of_window + 1
    );
}

#[test]
fn tshark_decrypts_and_dissects_every_mobike_message_both_engines_send() {
    let keys = Records::default();
    // The initiator's second address was not announced: the responder checks it (COOKIE2 in
    // an INFORMATIONAL) after the path check and the UPDATE_SA_ADDRESSES.
    let mut sim = multihomed_with_keys(7, false, ReturnRoutability::NewAddresses, Some(&keys));
    lose_first_uplink(&mut sim);
    assert!(sim.run_until(LIMIT, |s| moved_to(s, INITIATOR_2, RESPONDER)));
    // The responder's address in use goes away: it sends its list from the other one.
    sim.drop_if = Some(Box::new(|t| {
        t.local.ip() == RESPONDER || t.remote.ip() == RESPONDER
    }));
    let now = sim.now;
    sim.nodes[1]
        .engine
        .set_local_addresses(now, &on_eth0(&[RESPONDER_2]));
    assert!(
        sim.run_until(LIMIT, |s| moved_to(s, INITIATOR_2, RESPONDER_2)),
        "{:?}\n{:#?}\n{:#?}\n{:#?}",
        paths(&sim),
        sim.nodes[0].engine.stats(),
        sim.nodes[0].engine.ike_sa(handle(&sim, 0)),
        sim.nodes[0].events,
    );
    // The initiator's first address comes back: it announces its new list.
    sim.drop_if = None;
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &on_eth0(&[INITIATOR, INITIATOR_2]));
    sim.run_for(Duration::from_secs(5));

    let v4 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => (ip, a.port()),
        IpAddr::V6(_) => unreachable!("the simulation is IPv4"),
    };
    let sent: Vec<_> = sim.nodes.iter().flat_map(|n| n.sent.iter()).collect();
    let frames: Vec<Vec<u8>> = sent
        .iter()
        .map(|t| pcap::ethernet_ipv4_udp(v4(t.local), v4(t.remote), &t.payload))
        .collect();
    let path = std::env::temp_dir().join(format!("roamgate-mobike-{}.pcap", std::process::id()));
    pcap::write_pcap(&path, pcap::LINKTYPE_ETHERNET, &frames).unwrap();
    let prefs: Vec<String> = keys
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| format!("uat:ikev2_decryption_table:{r}"))
        .collect();
    assert!(!prefs.is_empty());
    let text = pcap::tshark_verbose(&path, &prefs).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("ROAMGATE_KEEP_PCAP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
    let problems = pcap::dissection_problems(&text);
    assert!(problems.is_empty(), "tshark reports {problems:?}");
    // Every protected message was decrypted, not only parsed around.
    let protected = frames.len() - text.matches("Exchange type: IKE_SA_INIT (34)").count();
    assert_eq!(
        text.matches("Decrypted Data").count(),
        protected,
        "every SK payload decrypted"
    );
    for name in [
        "MOBIKE_SUPPORTED (16396)",
        "ADDITIONAL_IP4_ADDRESS (16397)",
        "UPDATE_SA_ADDRESSES (16400)",
        "COOKIE2 (16401)",
        "NAT_DETECTION_SOURCE_IP (16388)",
        "NAT_DETECTION_DESTINATION_IP (16389)",
    ] {
        assert!(text.contains(name), "tshark names no {name}");
    }
    println!(
        "tshark dissected {} datagrams, {protected} of them decrypted, with nothing malformed",
        frames.len()
    );
}

/// A datagram of `sent`'s (with the non-ESP marker of port 4500) opened with `cipher`: its
/// header (no payloads) and its plaintext payloads; `None` if `cipher` does not open it.
fn opened(t: &Transmit, cipher: &SkCipher) -> Option<(Message, Vec<Payload>)> {
    let opened = cipher.open(t.payload.get(4..)?).ok()?;
    let inner = decode_chain(opened.first_inner, &opened.plaintext).ok()?;
    let mut header = opened.message;
    header.payloads.clear();
    Some((header, inner))
}

/// `header` and `inner` sealed with `cipher` under an IV its real sender never uses (the
/// test's own, all ones: one forged message per key), with the non-ESP marker: what a peer
/// holding the keys would send.
fn sealed(header: Message, inner: &[Payload], cipher: &SkCipher) -> Vec<u8> {
    let (first, plain) = encode_chain_to_vec(inner).unwrap();
    let iv = vec![0xff; cipher.iv_len()];
    let mut datagram = vec![0u8; 4];
    datagram.extend(cipher.seal(&iv, header, first, &plain).unwrap());
    datagram
}

fn has(inner: &[Payload], ty: NotifyType) -> bool {
    inner
        .iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.ty == ty))
}

/// Whether `t`, opened with `cipher`, is an INFORMATIONAL `response` (or request) carrying
/// notification `ty`.
fn informational_with(t: &Transmit, cipher: &SkCipher, response: bool, ty: NotifyType) -> bool {
    opened(t, cipher).is_some_and(|(h, inner)| {
        h.exchange_type == ExchangeType::INFORMATIONAL
            && h.flags.response() == response
            && has(&inner, ty)
    })
}

/// Drops what `lose_first_uplink` drops, and holds back (drops, keeping a copy) every
/// datagram `hold` picks.
fn lose_first_uplink_holding(
    sim: &mut Sim,
    hold: impl Fn(&Transmit) -> bool + 'static,
) -> Arc<Mutex<Vec<Transmit>>> {
    let held: Arc<Mutex<Vec<Transmit>>> = Arc::default();
    let keep = held.clone();
    sim.drop_if = Some(Box::new(move |t| {
        if t.local.ip() == INITIATOR || t.remote.ip() == INITIATOR {
            return true;
        }
        if hold(t) {
            keep.lock().unwrap().push(t.clone());
            return true;
        }
        false
    }));
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &on_eth0(&[INITIATOR_2]));
    held
}

/// The first datagram held back, opened with `cipher`, its COOKIE2 off by one bit, sealed
/// again: what a peer that echoes a wrong cookie sends.
fn with_wrong_cookie2(held: &[Transmit], cipher: &SkCipher) -> (Transmit, Vec<u8>) {
    let echo = held
        .first()
        .expect("the COOKIE2 echo was held back")
        .clone();
    let (header, mut inner) = opened(&echo, cipher).unwrap();
    for p in &mut inner {
        if let Payload::Notify(n) = p
            && n.ty == NotifyType::COOKIE2
        {
            n.data[0] ^= 1;
        }
    }
    let forged = sealed(header, &inner, cipher);
    (echo, forged)
}

#[test]
fn an_update_answer_whose_cookie2_echo_is_wrong_closes_the_ike_sa_and_moves_nothing() {
    let keys = Records::default();
    let mut sim = multihomed_with_keys(8, true, ReturnRoutability::NewAddresses, Some(&keys));
    let secrets = keys.1.lock().unwrap()[0].clone();
    let before = paths(&sim);
    // The initiator loses its first uplink; the responder's answer to the UPDATE never
    // arrives — a forged one does, its COOKIE2 echo off by one bit.
    let c = secrets.cipher(true);
    let held = lose_first_uplink_holding(&mut sim, move |t| {
        informational_with(t, &c, true, NotifyType::COOKIE2)
    });
    assert!(sim.run_until(LIMIT, |_| !held.lock().unwrap().is_empty()));
    let (echo, forged) = with_wrong_cookie2(&held.lock().unwrap(), &secrets.cipher(true));
    let now = sim.now;
    sim.nodes[0]
        .engine
        .handle_datagram(now, echo.remote, echo.local, &forged);
    sim.collect();
    let stats = sim.nodes[0].engine.stats();
    assert_eq!(stats.mobike_cookie2_mismatch, 1);
    assert_eq!(stats.mobike_moves, 0, "nothing moved on the forged answer");
    assert!(
        sim.nodes[0].events.iter().any(|e| matches!(
            e,
            Event::IkeSaDeleted {
                reason: DeleteReason::Cookie2Mismatch,
                ..
            }
        )),
        "the IKE SA is closed: {:?}",
        sim.nodes[0].events
    );
    assert_eq!(sim.nodes[0].sink.len(), 0, "its CHILD_SA is gone with it");
    assert_eq!(before[0], (natt(INITIATOR), natt(RESPONDER)));
}

#[test]
fn a_return_routability_answer_whose_cookie2_echo_is_wrong_closes_the_ike_sa_and_moves_nothing() {
    let keys = Records::default();
    // The initiator's second address was not announced: the responder checks it first.
    let mut sim = multihomed_with_keys(9, false, ReturnRoutability::NewAddresses, Some(&keys));
    let secrets = keys.1.lock().unwrap()[0].clone();
    let c = secrets.cipher(false);
    let held = lose_first_uplink_holding(&mut sim, move |t| {
        informational_with(t, &c, true, NotifyType::COOKIE2)
    });
    assert!(sim.run_until(LIMIT, |_| !held.lock().unwrap().is_empty()));
    let (echo, forged) = with_wrong_cookie2(&held.lock().unwrap(), &secrets.cipher(false));
    let now = sim.now;
    sim.nodes[1]
        .engine
        .handle_datagram(now, echo.remote, echo.local, &forged);
    sim.collect();
    let stats = sim.nodes[1].engine.stats();
    assert_eq!(stats.mobike_return_routability_checks, 1);
    assert_eq!(stats.mobike_cookie2_mismatch, 1);
    assert_eq!(stats.mobike_moves, 0, "nothing moved on the forged answer");
    assert!(
        sim.nodes[1].events.iter().any(|e| matches!(
            e,
            Event::IkeSaDeleted {
                reason: DeleteReason::Cookie2Mismatch,
                ..
            }
        )),
        "the IKE SA is closed: {:?}",
        sim.nodes[1].events
    );
    assert_eq!(sim.nodes[1].sink.len(), 0);
}

/// The initiator's UPDATE_SA_ADDRESSES held back, given a NO_NATS_ALLOWED saying it went
/// from `claimed_from` to the responder's address, sealed again and delivered on its real
/// path; returns the responder's answer, opened.
fn update_with_no_nats_allowed(seed: u64, claimed_from: SocketAddr) -> (Sim, Vec<Payload>) {
    let keys = Records::default();
    let mut sim = multihomed_with_keys(seed, true, ReturnRoutability::NewAddresses, Some(&keys));
    let secrets = keys.1.lock().unwrap()[0].clone();
    let c = secrets.cipher(false);
    let held = lose_first_uplink_holding(&mut sim, move |t| {
        informational_with(t, &c, false, NotifyType::UPDATE_SA_ADDRESSES)
    });
    assert!(sim.run_until(LIMIT, |_| !held.lock().unwrap().is_empty()));
    let update = held.lock().unwrap()[0].clone();
    let (header, mut inner) = opened(&update, &secrets.cipher(false)).unwrap();
    let mut data = Vec::new();
    for a in [claimed_from.ip(), update.remote.ip()] {
        match a {
            IpAddr::V4(v4) => data.extend(v4.octets()),
            IpAddr::V6(v6) => data.extend(v6.octets()),
        }
    }
    data.extend(claimed_from.port().to_be_bytes());
    data.extend(update.remote.port().to_be_bytes());
    inner.insert(
        1,
        Payload::Notify(Notify::new(NotifyType::NO_NATS_ALLOWED, data)),
    );
    let forged = sealed(header, &inner, &secrets.cipher(false));
    // Nothing else is held back from now on: the answer reaches the initiator.
    sim.drop_if = Some(Box::new(|t| {
        t.local.ip() == INITIATOR || t.remote.ip() == INITIATOR
    }));
    let answers_before = sim.nodes[1].sent.len();
    let now = sim.now;
    sim.nodes[1]
        .engine
        .handle_datagram(now, update.remote, update.local, &forged);
    sim.collect();
    let responder = secrets.cipher(true);
    let answer = sim.nodes[1].sent[answers_before..]
        .iter()
        .find_map(|t| opened(t, &responder).filter(|(h, _)| h.flags.response()))
        .expect("the responder answered")
        .1;
    (sim, answer)
}

#[test]
fn no_nats_allowed_that_matches_the_ip_header_lets_the_update_move_the_sas() {
    let (mut sim, answer) = update_with_no_nats_allowed(10, natt(INITIATOR_2));
    assert!(!has(&answer, NotifyType::UNEXPECTED_NAT_DETECTED));
    assert!(has(&answer, NotifyType::COOKIE2));
    assert!(
        sim.run_until(LIMIT, |s| moved_to(s, INITIATOR_2, RESPONDER)),
        "{:?}",
        paths(&sim)
    );
    assert_eq!(sim.nodes[1].engine.stats().mobike_updates_refused, 0);
}

#[test]
fn no_nats_allowed_that_does_not_match_the_ip_header_is_answered_with_unexpected_nat_detected() {
    // The UPDATE says it left from the initiator's old address: on the way, something
    // changed its source (a NAT, or an attacker's rewrite).
    let (sim, answer) = update_with_no_nats_allowed(11, natt(INITIATOR));
    assert!(has(&answer, NotifyType::UNEXPECTED_NAT_DETECTED));
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert_eq!(
        (r.local, r.remote),
        (natt(RESPONDER), natt(INITIATOR)),
        "the responder did not move"
    );
    let stats = sim.nodes[1].engine.stats();
    assert_eq!(stats.mobike_updates_refused, 1);
    assert_eq!(stats.mobike_moves, 0);
    // Nor is the refused UPDATE's address list applied (RFC 4555 § 3.9).
    assert_eq!(stats.mobike_address_lists_received, 0);
}

#[test]
fn nat_detection_in_any_informational_request_is_answered_in_kind_and_nothing_else_follows() {
    for with_nat_detection in [false, true] {
        let keys = Records::default();
        let mut sim = multihomed_with_keys(12, true, ReturnRoutability::NewAddresses, Some(&keys));
        let secrets = keys.1.lock().unwrap()[0].clone();
        let c = secrets.cipher(false);
        // The initiator's path check (an empty INFORMATIONAL request) from its second address.
        let held = lose_first_uplink_holding(&mut sim, move |t| {
            t.local.ip() == INITIATOR_2
                && opened(t, &c).is_some_and(|(h, inner)| {
                    h.exchange_type == ExchangeType::INFORMATIONAL
                        && !h.flags.response()
                        && inner.is_empty()
                })
        });
        assert!(sim.run_until(LIMIT, |_| !held.lock().unwrap().is_empty()));
        let check = held.lock().unwrap()[0].clone();
        let (header, mut inner) = opened(&check, &secrets.cipher(false)).unwrap();
        if with_nat_detection {
            inner.push(Payload::Notify(Notify::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                [7; 20],
            )));
            inner.push(Payload::Notify(Notify::new(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                [8; 20],
            )));
        }
        let request = sealed(header, &inner, &secrets.cipher(false));
        let answers_before = sim.nodes[1].sent.len();
        let now = sim.now;
        sim.nodes[1]
            .engine
            .handle_datagram(now, check.remote, check.local, &request);
        sim.collect();
        let responder = secrets.cipher(true);
        let answer = sim.nodes[1].sent[answers_before..]
            .iter()
            .find_map(|t| opened(t, &responder).filter(|(h, _)| h.flags.response()))
            .expect("the responder answered")
            .1;
        for ty in [
            NotifyType::NAT_DETECTION_SOURCE_IP,
            NotifyType::NAT_DETECTION_DESTINATION_IP,
        ] {
            assert_eq!(has(&answer, ty), with_nat_detection, "{ty:?}");
        }
        // No other action: the responder stays where it is (only the initiator moves).
        let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
        assert_eq!((r.local, r.remote), (natt(RESPONDER), natt(INITIATOR)));
        assert_eq!(sim.nodes[1].engine.stats().mobike_moves, 0);
    }
}

/// One step of [`under_any_churn_no_unauthenticated_datagram_moves_an_sa_and_both_sides_agree`].
#[derive(Debug, Clone)]
enum Churn {
    /// Address `which` (0 or 1) of node `node` goes down or comes back, and its host says so.
    Address { node: usize, which: usize, up: bool },
    /// A datagram the other node sent (number `pick`, modulo), one byte (`at`, modulo)
    /// changed, arrives at `node` from a source of the attacker's.
    Forgery { node: usize, pick: usize, at: usize },
    /// Time passes (`millis`), with loss (`loss` / 255 × 30 %), duplication and reordering.
    Run { millis: u16, loss: u8 },
}

fn churn() -> impl proptest::strategy::Strategy<Value = Vec<Churn>> {
    use proptest::prelude::*;
    let step =
        prop_oneof![
            (0..2usize, 0..2usize, any::<bool>()).prop_map(|(node, which, up)| Churn::Address {
                node,
                which,
                up
            }),
            (0..2usize, any::<usize>(), any::<usize>())
                .prop_map(|(node, pick, at)| Churn::Forgery { node, pick, at }),
            (1..20_000u16, any::<u8>()).prop_map(|(millis, loss)| Churn::Run { millis, loss }),
        ];
    proptest::collection::vec(step, 1..14)
}

/// A node's view: its established IKE SA's path (local, remote) and its CHILD_SAs'
/// endpoints.
type View = (SocketAddr, SocketAddr, Vec<(SocketAddr, SocketAddr)>);

/// Each node's [`View`], if it holds an established IKE SA.
fn views(sim: &Sim) -> Vec<Option<View>> {
    sim.nodes
        .iter()
        .map(|n| {
            let sa = n.engine.ike_sas().into_iter().find(|s| s.established)?;
            let children = n.sink.iter().map(|c| (c.local, c.remote)).collect();
            Some((sa.local, sa.remote, children))
        })
        .collect()
}

/// What [`run_churn`] saw across cases: moves, forged datagrams, cases that ended with both
/// sides' SAs.
#[derive(Default)]
struct ChurnCounts {
    moved: std::cell::Cell<u32>,
    forged: std::cell::Cell<u32>,
    agreed: std::cell::Cell<u32>,
}

/// One case of acceptance 7's property: `steps` on two multihomed engines, then the network
/// heals; an error says which half of the property broke.
fn run_churn(steps: &[Churn], counts: &ChurnCounts) -> Result<(), String> {
    use std::collections::HashSet;
    let addresses = [[INITIATOR, INITIATOR_2], [RESPONDER, RESPONDER_2]];
    let mut sim = multihomed(13, true, ReturnRoutability::NewAddresses);
    let down: Arc<Mutex<HashSet<IpAddr>>> = Arc::default();
    let filter = down.clone();
    sim.drop_if = Some(Box::new(move |t| {
        let down = filter.lock().unwrap();
        down.contains(&t.local.ip()) || down.contains(&t.remote.ip())
    }));
    sim.faults.duplicate = 0.05;
    sim.faults.reorder = 0.1;
    sim.faults.delay_max = Duration::from_millis(40);
    for step in steps.iter().cloned() {
        match step {
            Churn::Address { node, which, up } => {
                let a = addresses[node][which];
                {
                    let mut down = down.lock().unwrap();
                    if up {
                        down.remove(&a);
                    } else {
                        down.insert(a);
                    }
                }
                let up_now: Vec<IpAddr> = {
                    let down = down.lock().unwrap();
                    addresses[node]
                        .iter()
                        .copied()
                        .filter(|a| !down.contains(a))
                        .collect()
                };
                let now = sim.now;
                sim.nodes[node]
                    .engine
                    .set_local_addresses(now, &on_eth0(&up_now));
                sim.collect();
            }
            Churn::Forgery { node, pick, at } => {
                let other = &sim.nodes[1 - node].sent;
                let mut datagram = other[pick % other.len()].clone();
                let at = at % datagram.payload.len();
                datagram.payload[at] ^= 0x5a;
                let before = views(&sim);
                let events = sim.nodes[node].events.len();
                let now = sim.now;
                let spoofed: SocketAddr = "203.0.113.66:4500".parse().unwrap();
                sim.nodes[node].engine.handle_datagram(
                    now,
                    datagram.remote,
                    spoofed,
                    &datagram.payload,
                );
                sim.collect();
                counts.forged.set(counts.forged.get() + 1);
                if views(&sim) != before
                    || sim.nodes[node].events[events..]
                        .iter()
                        .any(|e| matches!(e, Event::PathUpdated { .. }))
                {
                    return Err(format!(
                        "a forged datagram (byte {at} of {:?}) moved an SA",
                        datagram.payload.get(..28)
                    ));
                }
            }
            Churn::Run { millis, loss } => {
                sim.faults.loss = f64::from(loss) / 255.0 * 0.3;
                sim.run_for(Duration::from_millis(u64::from(millis)));
            }
        }
    }
    // The network heals: every address back, no more loss.
    down.lock().unwrap().clear();
    sim.faults = Default::default();
    for (node, all) in addresses.iter().enumerate() {
        let now = sim.now;
        sim.nodes[node]
            .engine
            .set_local_addresses(now, &on_eth0(all));
    }
    sim.run_for(Duration::from_secs(600));
    counts.moved.set(
        counts.moved.get()
            + sim
                .nodes
                .iter()
                .map(|n| n.engine.stats().mobike_moves as u32)
                .sum::<u32>(),
    );
    if let [Some(i), Some(r)] = views(&sim).as_slice() {
        counts.agreed.set(counts.agreed.get() + 1);
        let (il, ir, ic) = i;
        let (rl, rr, rc) = r;
        if (il, ir) != (rr, rl) {
            return Err(format!(
                "the IKE SA's paths differ: initiator {il} → {ir}, responder {rl} → {rr}"
            ));
        }
        let mirrored: Vec<(SocketAddr, SocketAddr)> = rc.iter().map(|&(l, r)| (r, l)).collect();
        if ic != &mirrored || ic.iter().any(|c| c != &(*il, *ir)) {
            return Err(format!(
                "the CHILD_SAs' endpoints differ from the IKE SA's path: {ic:?} / {rc:?} on {il} → {ir}"
            ));
        }
    }
    Ok(())
}

/// Acceptance 7: under any sequence of address changes (both ends multihomed), losses,
/// duplicates, reordering and forged datagrams, no unauthenticated datagram moves an SA, and
/// once the network heals, two sides that both hold the IKE SA agree on its path and on every
/// CHILD_SA's.
#[test]
fn under_any_churn_no_unauthenticated_datagram_moves_an_sa_and_both_sides_agree() {
    use proptest::test_runner::{Config, TestCaseError, TestRng, TestRunner};
    let counts = ChurnCounts::default();
    // The same 256 cases on every run (CI must not flake); ROAMGATE_CHURN_SEED=<n> explores
    // others, and a case it finds goes into `churn_cases_found_before_stay_fixed`.
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let seed: u64 = std::env::var("ROAMGATE_CHURN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(config.rng_algorithm, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&churn(), |steps| {
        run_churn(&steps, &counts).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Not vacuous: the cases moved SAs, forged datagrams and ended with both sides' SAs.
    let (moved, forged, agreed) = (counts.moved.get(), counts.forged.get(), counts.agreed.get());
    println!("{moved} moves, {forged} forged datagrams, {agreed} cases ending with both SAs");
    assert!(
        moved > 20 && forged > 20 && agreed > 20,
        "{moved} {forged} {agreed}"
    );
}

/// Cases the property test found once, kept.
#[test]
fn churn_cases_found_before_stay_fixed() {
    if std::env::var_os("ROAMGATE_TEST_TRACE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("roamgate_control=debug")
            .with_test_writer()
            .try_init();
    }
    let counts = ChurnCounts::default();
    let cases: Vec<Vec<Churn>> = vec![
        // Both of the responder's addresses and the initiator's first go away at once:
        // the initiator moved to (its second, the responder's first) while the responder
        // stayed on the initiator's first.
        vec![
            Churn::Address {
                node: 1,
                which: 1,
                up: false,
            },
            Churn::Address {
                node: 0,
                which: 0,
                up: false,
            },
            Churn::Address {
                node: 1,
                which: 0,
                up: false,
            },
            Churn::Run {
                millis: 35,
                loss: 0,
            },
        ],
        // The responder's addresses go and one comes back while the initiator's go one by
        // one: they ended on different pairs.
        vec![
            Churn::Address {
                node: 1,
                which: 1,
                up: false,
            },
            Churn::Run {
                millis: 35,
                loss: 0,
            },
            Churn::Address {
                node: 1,
                which: 0,
                up: false,
            },
            Churn::Address {
                node: 0,
                which: 0,
                up: false,
            },
            Churn::Address {
                node: 1,
                which: 1,
                up: true,
            },
            Churn::Run {
                millis: 72,
                loss: 0,
            },
            Churn::Address {
                node: 0,
                which: 1,
                up: false,
            },
        ],
    ];
    for steps in &cases {
        if let Err(e) = run_churn(steps, &counts) {
            panic!("{steps:?}: {e}");
        }
    }
}

/// The initiator's uplinks: `wan1` (its first address) and the costly `lte` (its second);
/// its connection may use `links`.
fn initiator_on_links(seed: u64, links: &[&str]) -> Sim {
    let (mut i, mut r) = pair_configs();
    i.connections[0].mobike = true;
    i.connections[0].local_addrs = vec![];
    i.connections[0].links = links.iter().map(|l| l.to_string()).collect();
    r.connections[0].mobike = true;
    r.connections[0].local_addrs = vec![RESPONDER, RESPONDER_2];
    let mut sim = sim_pair(seed, i, r);
    sim.nodes[0].addrs.push(INITIATOR_2);
    sim.nodes[1].addrs.push(RESPONDER_2);
    let now = sim.now;
    sim.nodes[0].engine.set_local_addresses(
        now,
        &[
            HostAddress::new("wan1", INITIATOR),
            HostAddress::new("lte", INITIATOR_2),
        ],
    );
    sim.nodes[1]
        .engine
        .set_local_addresses(now, &on_eth0(&[RESPONDER, RESPONDER_2]));
    sim.nodes[0].engine.initiate(now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    sim
}

#[test]
fn a_connection_kept_off_the_costly_link_waits_for_its_own_instead_of_moving_there() {
    let mut sim = initiator_on_links(14, &["wan1"]);
    // The costly link is neither used nor announced.
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert_eq!(r.peer_addresses, [INITIATOR]);
    sim.drop_if = Some(Box::new(|t| {
        t.local.ip() == INITIATOR || t.remote.ip() == INITIATOR
    }));
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &[HostAddress::new("lte", INITIATOR_2)]);
    sim.run_for(Duration::from_secs(30));
    let stats = sim.nodes[0].engine.stats();
    assert_eq!(
        stats.mobike_moves, 0,
        "it did not move onto the costly link"
    );
    assert!(
        !sim.nodes[0]
            .sent
            .iter()
            .any(|t| t.local.ip() == INITIATOR_2),
        "nothing went out on the costly link"
    );
    // Its link comes back: the SA is still there, on it.
    sim.drop_if = None;
    let now = sim.now;
    sim.nodes[0].engine.set_local_addresses(
        now,
        &[
            HostAddress::new("wan1", INITIATOR),
            HostAddress::new("lte", INITIATOR_2),
        ],
    );
    sim.run_for(Duration::from_secs(10));
    assert!(moved_to(&sim, INITIATOR, RESPONDER), "{:?}", paths(&sim));
}

#[test]
fn a_connection_allowed_on_the_costly_link_moves_there_when_its_first_link_fails() {
    let mut sim = initiator_on_links(15, &["wan1", "lte"]);
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert_eq!(r.peer_addresses, [INITIATOR, INITIATOR_2]);
    sim.drop_if = Some(Box::new(|t| {
        t.local.ip() == INITIATOR || t.remote.ip() == INITIATOR
    }));
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &[HostAddress::new("lte", INITIATOR_2)]);
    assert!(
        sim.run_until(LIMIT, |s| moved_to(s, INITIATOR_2, RESPONDER)),
        "{:?}",
        paths(&sim)
    );
}

#[test]
fn udp_encapsulation_follows_the_nat_on_each_new_path() {
    // The initiator's second uplink is behind a NAT; its first is not.
    let public: IpAddr = "203.0.113.2".parse().unwrap();
    let mut sim = multihomed(16, true, ReturnRoutability::NewAddresses);
    sim.nodes[0].nat = Some(public);
    sim.nodes[0].nat_from = Some(INITIATOR_2);
    sim.nodes[0].addrs.push(public);
    let encapsulated = |sim: &Sim| -> Vec<bool> {
        sim.nodes
            .iter()
            .flat_map(|n| n.sink.iter().map(|c| c.udp_encap))
            .collect()
    };
    assert_eq!(
        encapsulated(&sim),
        [false, false],
        "no NAT on the first path"
    );
    // Into the NAT: both sides switch UDP encapsulation on, the responder towards the
    // NAT's mapping.
    lose_first_uplink(&mut sim);
    assert!(
        sim.run_until(LIMIT, |s| {
            let r = s.nodes[1].engine.ike_sa(handle(s, 1)).unwrap();
            r.remote.ip() == public && encapsulated(s) == [true, true]
        }),
        "{:?} {:?}",
        paths(&sim),
        encapsulated(&sim)
    );
    let i = sim.nodes[0].engine.ike_sa(handle(&sim, 0)).unwrap();
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert!(i.nat_local && r.nat_remote);
    let child = sim.nodes[1].sink.iter().next().unwrap();
    assert_eq!(child.remote, r.remote, "ESP goes to the NAT's mapping");
    // Out of it again: the first uplink is back, the second goes; encapsulation off.
    let now = sim.now;
    sim.drop_if = Some(Box::new(|t| {
        t.local.ip() == INITIATOR_2 || t.remote.ip() == INITIATOR_2
    }));
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &on_eth0(&[INITIATOR]));
    assert!(
        sim.run_until(LIMIT, |s| moved_to(s, INITIATOR, RESPONDER)
            && encapsulated(s) == [false, false]),
        "{:?} {:?}",
        paths(&sim),
        encapsulated(&sim)
    );
    let i = sim.nodes[0].engine.ike_sa(handle(&sim, 0)).unwrap();
    assert!(!i.nat_local && !i.nat_remote);
}

/// [`multihomed`] with liveness checks every 2 s on both sides, each holding a silent
/// peer's SAs for `hold`.
fn holding(seed: u64, hold: Option<Duration>) -> Sim {
    let (mut i, mut r) = pair_configs();
    for c in [&mut i.connections[0], &mut r.connections[0]] {
        c.mobike = true;
        c.dpd_delay = Some(Duration::from_secs(2));
        c.hold = hold;
    }
    i.connections[0].local_addrs = vec![INITIATOR, INITIATOR_2];
    r.connections[0].local_addrs = vec![RESPONDER, RESPONDER_2];
    let mut sim = sim_pair(seed, i, r);
    sim.nodes[0].addrs.push(INITIATOR_2);
    sim.nodes[1].addrs.push(RESPONDER_2);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    sim
}

/// Nothing gets through, either way, on any pair.
fn blackout(sim: &mut Sim) {
    sim.drop_if = Some(Box::new(|_| true));
}

#[test]
fn a_held_peer_that_comes_back_within_its_hold_time_finds_its_sas_in_place() {
    let hold = Duration::from_secs(30 * 60);
    let mut sim = holding(17, Some(hold));
    let spis: Vec<u32> = sim.nodes[0].sink.iter().map(|c| c.inbound.spi).collect();
    blackout(&mut sim);
    // Longer than every retransmission of a liveness check on every pair.
    sim.run_for(Duration::from_secs(10 * 60));
    let stats = *sim.nodes[0].engine.stats();
    assert_eq!(stats.ike_sas_held, 1, "{stats:?}");
    assert_eq!(sim.established(0), 1, "the SA is held, not deleted");
    assert_eq!(sim.nodes[0].sink.len(), 1, "its CHILD_SA stays installed");
    // The peer is back before the hold time ends: the next check is answered and the SA
    // goes on as it was, same CHILD_SA, same path.
    sim.drop_if = None;
    assert!(
        sim.run_until(LIMIT, |s| s.nodes[0].engine.stats().ike_sas_resumed == 1
            && s.nodes[1].engine.stats().ike_sas_resumed == 1),
        "{:?}",
        sim.nodes[0].engine.stats()
    );
    let after: Vec<u32> = sim.nodes[0].sink.iter().map(|c| c.inbound.spi).collect();
    assert_eq!(after, spis);
    assert!(moved_to(&sim, INITIATOR, RESPONDER), "{:?}", paths(&sim));
    // And it is not given up later: the hold timer was stopped.
    sim.run_for(hold);
    assert_eq!(sim.established(0), 1);
}

#[test]
fn a_held_peer_that_stays_away_loses_its_sas_when_the_hold_time_ends_and_without_a_hold_at_once() {
    let hold = Duration::from_secs(30 * 60);
    let mut held = holding(18, Some(hold));
    let mut plain = holding(18, None);
    blackout(&mut held);
    blackout(&mut plain);
    let start = held.now;
    held.run_until(Duration::from_secs(2 * 3600), |s| s.established(0) == 0);
    plain.run_until(Duration::from_secs(2 * 3600), |s| s.established(0) == 0);
    let gone_after = held.now - start;
    let plain_after = plain.now - start;
    assert!(
        gone_after >= hold && gone_after < hold + Duration::from_secs(600),
        "held SA gone after {gone_after:?}"
    );
    assert!(
        plain_after < Duration::from_secs(600),
        "unheld SA gone after {plain_after:?}"
    );
    assert_eq!(held.nodes[0].engine.stats().ike_sas_held, 1);
    assert_eq!(plain.nodes[0].engine.stats().ike_sas_held, 0);
    assert!(held.nodes[0].events.iter().any(|e| matches!(
        e,
        Event::IkeSaDeleted {
            reason: DeleteReason::DeadPeer,
            ..
        }
    )));
    assert_eq!(held.nodes[0].sink.len(), 0);
}

#[test]
fn an_update_to_an_address_the_connection_may_not_use_is_answered_with_unacceptable_addresses() {
    // The responder's connection may use its `wan1` address only; its `lte` one is the
    // initiator's target in a forged copy of its UPDATE_SA_ADDRESSES.
    let keys = Records::default();
    let (mut i, mut r) = pair_configs();
    i.connections[0].mobike = true;
    i.connections[0].local_addrs = vec![INITIATOR, INITIATOR_2];
    r.connections[0].mobike = true;
    r.connections[0].local_addrs = vec![];
    r.connections[0].links = vec!["wan1".into()];
    let mut sim = sim_pair(19, i, r);
    for node in &mut sim.nodes {
        node.engine.set_key_log(Some(Box::new(keys.clone())));
    }
    sim.nodes[0].addrs.push(INITIATOR_2);
    sim.nodes[1].addrs.push(RESPONDER_2);
    let now = sim.now;
    sim.nodes[0]
        .engine
        .set_local_addresses(now, &on_eth0(&[INITIATOR, INITIATOR_2]));
    sim.nodes[1].engine.set_local_addresses(
        now,
        &[
            HostAddress::new("wan1", RESPONDER),
            HostAddress::new("lte", RESPONDER_2),
        ],
    );
    sim.nodes[0].engine.initiate(now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    let i = sim.nodes[0].engine.ike_sa(handle(&sim, 0)).unwrap();
    assert_eq!(
        i.peer_addresses,
        [RESPONDER],
        "the lte address is not announced"
    );
    let secrets = keys.1.lock().unwrap()[0].clone();
    let c = secrets.cipher(false);
    let held = lose_first_uplink_holding(&mut sim, move |t| {
        informational_with(t, &c, false, NotifyType::UPDATE_SA_ADDRESSES)
    });
    assert!(sim.run_until(LIMIT, |_| !held.lock().unwrap().is_empty()));
    let update = held.lock().unwrap()[0].clone();
    let answers_before = sim.nodes[1].sent.len();
    let now = sim.now;
    // The same authenticated UPDATE, arriving at the lte address.
    sim.nodes[1]
        .engine
        .handle_datagram(now, natt(RESPONDER_2), update.local, &update.payload);
    sim.collect();
    let responder = secrets.cipher(true);
    let answer = sim.nodes[1].sent[answers_before..]
        .iter()
        .find_map(|t| opened(t, &responder).filter(|(h, _)| h.flags.response()))
        .expect("the responder answered")
        .1;
    assert!(has(&answer, NotifyType::UNACCEPTABLE_ADDRESSES));
    let r = sim.nodes[1].engine.ike_sa(handle(&sim, 1)).unwrap();
    assert_eq!((r.local, r.remote), (natt(RESPONDER), natt(INITIATOR)));
    let stats = sim.nodes[1].engine.stats();
    assert_eq!((stats.mobike_moves, stats.mobike_updates_refused), (0, 1));
}

#[test]
fn an_address_list_answered_through_another_copy_is_sent_again_as_a_new_request() {
    // The responder has three addresses; it loses the one in use, and its list goes on
    // every pair left, one copy from each of its other two addresses. The copy from the
    // second is lost, the one from the third answered: the list it carried names the second
    // but not the third (its IP header does), so the initiator would lack the second
    // without a new request (RFC 4555 § 3.6).
    let responder_3: IpAddr = "198.51.100.3".parse().unwrap();
    let (mut i, mut r) = pair_configs();
    i.connections[0].mobike = true;
    i.connections[0].local_addrs = vec![INITIATOR];
    r.connections[0].mobike = true;
    r.connections[0].local_addrs = vec![RESPONDER, RESPONDER_2, responder_3];
    let mut sim = sim_pair(20, i, r);
    sim.nodes[1].addrs.extend([RESPONDER_2, responder_3]);
    let now = sim.now;
    sim.nodes[1]
        .engine
        .set_local_addresses(now, &on_eth0(&[RESPONDER, RESPONDER_2, responder_3]));
    sim.nodes[0].engine.initiate(now, "gw").unwrap();
    assert!(sim.run_until(LIMIT, |s| s.nodes[0].sink.len() == 1
        && s.nodes[1].sink.len() == 1));
    let sent_before = sim.nodes[1].sent.len();
    // Everything from the lost address, and the first copies from the second, vanish.
    let second_copies = Arc::new(Mutex::new(0u32));
    let count = second_copies.clone();
    sim.drop_if = Some(Box::new(move |t| {
        if t.local.ip() == RESPONDER || t.remote.ip() == RESPONDER {
            return true;
        }
        if t.local.ip() == RESPONDER_2 {
            let mut n = count.lock().unwrap();
            *n += 1;
            return *n <= 3;
        }
        false
    }));
    let now = sim.now;
    sim.nodes[1]
        .engine
        .set_local_addresses(now, &on_eth0(&[RESPONDER_2, responder_3]));
    sim.run_for(Duration::from_secs(30));
    let i = sim.nodes[0].engine.ike_sa(handle(&sim, 0)).unwrap();
    assert!(
        i.peer_addresses.contains(&RESPONDER_2) && i.peer_addresses.contains(&responder_3),
        "the initiator has both of the responder's addresses: {:?}",
        i.peer_addresses
    );
    assert!(!i.peer_addresses.contains(&RESPONDER));
    assert!(
        sim.nodes[1].engine.stats().mobike_address_lists_sent >= 2,
        "{:?}",
        sim.nodes[1].engine.stats()
    );
    assert!(sim.nodes[1].sent.len() > sent_before);
}
