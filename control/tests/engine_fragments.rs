//! IKE fragmentation (RFC 7383) between two engines in the simulator: with RSA-2048
//! certificates made by strongSwan's `pki` and a small fragment size the IKE_AUTH messages go
//! out as Encrypted Fragment payloads and are put together on the other side, also when the
//! network loses, duplicates and reorders datagrams; without both sides announcing support,
//! nothing is fragmented.
//!
//! Needs strongSwan's `pki` (`cargo xtask deps`): fails, saying so, without it.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use roamgate_control::auth::{Certificate, Credential, Identity, TrustStore};
use roamgate_control::engine::{EngineConfig, LocalAuth, RemoteAuth};
use roamgate_control::wire::{Message, Payload};
use roamgate_lab::pki::{KeyKind, LabCa};
use support::*;

const LIMIT: Duration = Duration::from_secs(300);

/// A road warrior and a gateway with RSA-2048 certificates (IKE_AUTH well above 1 KiB).
fn configs(dir: &std::path::Path, fragment_size: usize) -> (EngineConfig, EngineConfig) {
    let ca = LabCa::new(dir, KeyKind::Rsa2048)
        .unwrap_or_else(|e| panic!("strongSwan's pki is needed to make certificates: {e}"));
    let trust = Arc::new(TrustStore::new(Certificate::load(&ca.ca().cert).unwrap()).unwrap());
    let mut out = Vec::new();
    for (name, local, remote, peer) in [
        (
            "rw@roamgate.test",
            INITIATOR,
            Some(RESPONDER),
            "gw.roamgate.test",
        ),
        ("gw.roamgate.test", RESPONDER, None, "*@roamgate.test"),
    ] {
        let issued = ca.issue(name, KeyKind::Rsa2048).unwrap();
        let cred = Credential::load(&issued.key, &[issued.cert.as_path()]).unwrap();
        let mut c = connection("gw", local, remote, name);
        let (l, r) = if remote.is_some() {
            ("10.1.0.0/16", "10.2.0.0/16")
        } else {
            ("10.2.0.0/16", "10.1.0.0/16")
        };
        c.children.push(child("net", l, r));
        c.local_id = Some(Identity::parse(name).unwrap());
        c.local_auth = LocalAuth::PubKey(Arc::new(cred));
        c.remote_id = Identity::parse(peer).unwrap();
        c.remote_auth = RemoteAuth::PubKey(trust.clone());
        out.push(EngineConfig {
            connections: vec![c],
            fragment_size,
            ..EngineConfig::default()
        });
    }
    let r = out.pop().unwrap();
    (out.pop().unwrap(), r)
}

fn handshake(i: EngineConfig, r: EngineConfig, seed: u64, faults: Faults) -> Sim {
    let mut sim = sim_pair(seed, i, r);
    sim.faults = faults;
    for n in 0..2 {
        let now = sim.now;
        sim.nodes[n].engine.set_wall_clock(now, SystemTime::now());
    }
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(
        sim.run_until(LIMIT, |s| s.established(0) == 1
            && s.established(1) == 1
            && !s.nodes[0].sink.is_empty()
            && !s.nodes[1].sink.is_empty()),
        "not established; initiator: {:?} {:?}\nresponder: {:?} {:?}",
        sim.nodes[0].events,
        sim.nodes[0].engine.stats(),
        sim.nodes[1].events,
        sim.nodes[1].engine.stats()
    );
    assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink);
    sim
}

/// The IKE messages (non-ESP marker stripped) a node sent, decoded.
fn sent_messages(sim: &Sim, node: usize) -> Vec<(usize, Message)> {
    sim.nodes[node]
        .sent
        .iter()
        .filter(|t| t.payload.len() > 4)
        .map(|t| {
            let ike = if t.local.port() == 4500 {
                &t.payload[4..]
            } else {
                &t.payload[..]
            };
            (t.payload.len(), Message::decode(ike).unwrap())
        })
        .collect()
}

#[test]
fn ike_auth_goes_out_in_fragments_below_the_fragment_size() {
    let dir = tempfile::tempdir().unwrap();
    let (i, r) = configs(dir.path(), 576);
    let sim = handshake(i, r, 1, Faults::default());
    for node in 0..2 {
        let stats = sim.nodes[node].engine.stats();
        assert!(stats.fragments_sent >= 3, "node {node}: {stats:?}");
        assert_eq!(stats.messages_reassembled, 1, "node {node}: {stats:?}");
        assert_eq!(stats.drop_fragment, 0, "node {node}: {stats:?}");
        let fragments: Vec<_> = sent_messages(&sim, node)
            .into_iter()
            .filter(|(_, m)| matches!(m.payloads.last(), Some(Payload::EncryptedFragment(_))))
            .collect();
        assert_eq!(fragments.len() as u64, stats.fragments_sent);
        // Every fragment fits in 576 octets of IPv4 (20) and UDP (8) headers included.
        for (len, _) in &fragments {
            assert!(len + 28 <= 576, "a {len}-octet fragment");
        }
    }
}

#[test]
fn fragments_survive_loss_duplication_and_reordering() {
    let dir = tempfile::tempdir().unwrap();
    let (i, r) = configs(dir.path(), 576);
    let faults = Faults {
        loss: 0.1,
        duplicate: 0.2,
        reorder: 0.3,
        delay_min: Duration::from_millis(5),
        delay_max: Duration::from_millis(40),
    };
    let mut retransmitted = 0;
    for seed in 10..14 {
        let sim = handshake(i.clone(), r.clone(), seed, faults);
        assert!(sim.nodes[1].engine.stats().messages_reassembled >= 1);
        retransmitted += sim.nodes[0].engine.stats().requests_retransmitted
            + sim.nodes[1].engine.stats().responses_retransmitted;
    }
    assert!(
        retransmitted > 0,
        "the faults never forced a retransmission"
    );
}

#[test]
fn no_fragments_unless_both_sides_announce_support() {
    let dir = tempfile::tempdir().unwrap();
    let (i, mut r) = configs(dir.path(), 576);
    r.connections[0].fragmentation = false;
    let sim = handshake(i, r, 2, Faults::default());
    for node in 0..2 {
        let stats = sim.nodes[node].engine.stats();
        assert_eq!(stats.fragments_sent, 0, "node {node}: {stats:?}");
        assert_eq!(stats.fragments_received, 0, "node {node}: {stats:?}");
    }
    // The IKE_AUTH request went out whole, above the fragment size.
    assert!(sent_messages(&sim, 0).iter().any(|(len, _)| *len > 1000));
}
