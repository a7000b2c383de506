//! Certificate authentication in the engine (RFC 7296 § 2.15, RFC 7427): two engines in the
//! simulator authenticate each other with certificates made by strongSwan's `pki` tool (not by
//! the code under test), for ECDSA P-256 and P-384, RSA-2048 with PKCS#1 v1.5 and PSS, and
//! Ed25519. A wrong CA, a wrong identity or a certificate outside its validity period ends in
//! AUTHENTICATION_FAILED on the side that checks, no SA on either side, and a counted failure.
//!
//! Needs strongSwan's `pki` (`cargo xtask deps`): fails, saying so, without it.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use roamgate_control::auth::{Credential, Identity, RsaPadding, TrustStore};
use roamgate_control::engine::{
    ConnectionConfig, EngineConfig, Event, FailureReason, LocalAuth, RemoteAuth, SendCert,
};
use roamgate_control::wire::IdType;
use roamgate_lab::pki::{Issued, KeyKind, LabCa};
use support::*;

const LIMIT: Duration = Duration::from_secs(120);
const GW: &str = "gw.roamgate.test";
const RW: &str = "rw@roamgate.test";

/// A CA and two end entities made by `pki` in a temporary folder.
struct Pki {
    _dir: tempfile::TempDir,
    ca: LabCa,
    gw: Issued,
    rw: Issued,
}

fn pki(kind: KeyKind) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::new(dir.path(), kind)
        .unwrap_or_else(|e| panic!("strongSwan's pki is needed to make certificates: {e}"));
    let gw = ca.issue(GW, kind).unwrap();
    let rw = ca.issue(RW, kind).unwrap();
    Pki {
        _dir: dir,
        ca,
        gw,
        rw,
    }
}

fn credential(issued: &Issued, padding: RsaPadding) -> Arc<Credential> {
    Arc::new(
        Credential::load(&issued.key, &[issued.cert.as_path()])
            .unwrap()
            .with_rsa_padding(padding),
    )
}

fn trust(ca: &LabCa) -> Arc<TrustStore> {
    let cas = roamgate_control::auth::Certificate::load(&ca.ca().cert).unwrap();
    Arc::new(TrustStore::new(cas).unwrap())
}

fn pubkey(
    mut c: ConnectionConfig,
    local_id: Option<&str>,
    cred: Arc<Credential>,
    remote_id: &str,
    trust: Arc<TrustStore>,
) -> ConnectionConfig {
    c.local_id = local_id.map(|i| Identity::parse(i).unwrap());
    c.local_auth = LocalAuth::PubKey(cred);
    c.remote_id = Identity::parse(remote_id).unwrap();
    c.remote_auth = RemoteAuth::PubKey(trust);
    c
}

/// Road warrior (node 0, `rw@roamgate.test`) → gateway (node 1, `gw.roamgate.test`, accepting
/// `*@roamgate.test`), both with certificates of `p`.
fn configs(p: &Pki, padding: RsaPadding) -> (EngineConfig, EngineConfig) {
    let mut i = connection("gw", INITIATOR, Some(RESPONDER), RW);
    i.children.push(child("net", "10.1.0.0/16", "10.2.0.0/16"));
    let i = pubkey(i, Some(RW), credential(&p.rw, padding), GW, trust(&p.ca));
    let mut r = connection("gw", RESPONDER, None, GW);
    r.children.push(child("net", "10.2.0.0/16", "10.1.0.0/16"));
    let r = pubkey(
        r,
        Some(GW),
        credential(&p.gw, padding),
        "*@roamgate.test",
        trust(&p.ca),
    );
    let config = |c| EngineConfig {
        connections: vec![c],
        ..EngineConfig::default()
    };
    (config(i), config(r))
}

/// Runs one handshake with both wall clocks at `wall`.
fn run(i: EngineConfig, r: EngineConfig, seed: u64, wall: [Option<SystemTime>; 2]) -> Sim {
    let mut sim = sim_pair(seed, i, r);
    for (n, w) in wall.into_iter().enumerate() {
        if let Some(w) = w {
            let now = sim.now;
            sim.nodes[n].engine.set_wall_clock(now, w);
        }
    }
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(LIMIT);
    sim
}

fn now() -> [Option<SystemTime>; 2] {
    [Some(SystemTime::now()); 2]
}

/// Both sides established one IKE SA with one matching CHILD_SA; the responder saw the
/// initiator's identity as `peer_of_responder` (its ID data), when given.
fn assert_established(sim: &Sim, peer_of_responder: Option<&[u8]>) {
    assert_eq!(
        (sim.established(0), sim.established(1)),
        (1, 1),
        "initiator events: {:?}\nresponder events: {:?}",
        sim.nodes[0].events,
        sim.nodes[1].events
    );
    assert_eq!(
        assert_sinks_agree(&sim.nodes[0].sink, &sim.nodes[1].sink),
        1
    );
    if let Some(want) = peer_of_responder {
        assert!(sim.nodes[1].events.iter().any(|e| matches!(e,
            Event::IkeSaEstablished { peer_id, .. } if peer_id.data == want)));
    }
    for n in 0..2 {
        assert_eq!(sim.nodes[n].engine.stats().authentication_failed, 0);
    }
}

/// The responder refused the initiator: AUTHENTICATION_FAILED, counted, nothing anywhere.
fn assert_responder_refused(sim: &Sim) {
    assert_eq!(sim.established(0) + sim.established(1), 0);
    assert!(sim.nodes[0].sink.is_empty() && sim.nodes[1].sink.is_empty());
    assert!(
        matches!(
            sim.failures(1)[..],
            [Event::IkeSaFailed {
                reason: FailureReason::AuthenticationFailed,
                ..
            }]
        ),
        "{:?}",
        sim.nodes[1].events
    );
    assert!(
        matches!(
            sim.failures(0)[..],
            [Event::IkeSaFailed {
                reason: FailureReason::PeerAuthenticationFailed,
                ..
            }]
        ),
        "{:?}",
        sim.nodes[0].events
    );
    assert_eq!(sim.nodes[1].engine.stats().authentication_failed, 1);
    assert!(sim.nodes[0].engine.ike_sas().is_empty() && sim.nodes[1].engine.ike_sas().is_empty());
}

fn establishes(kind: KeyKind, padding: RsaPadding, seed: u64) {
    let p = pki(kind);
    let (i, r) = configs(&p, padding);
    let sim = run(i, r, seed, now());
    assert_established(&sim, Some(RW.as_bytes()));
    // The first IKE_AUTH request carried the certificate and its CERTREQ: far larger than a
    // PSK one.
    assert!(sim.nodes[0].sent[1].payload.len() > 400);
}

#[test]
fn ecdsa_p256_certificates() {
    establishes(KeyKind::EcdsaP256, RsaPadding::Pkcs1, 1);
}

#[test]
fn ecdsa_p384_certificates() {
    establishes(KeyKind::EcdsaP384, RsaPadding::Pkcs1, 2);
}

#[test]
fn rsa_2048_certificates_pkcs1() {
    establishes(KeyKind::Rsa2048, RsaPadding::Pkcs1, 3);
}

#[test]
fn rsa_2048_certificates_pss() {
    establishes(KeyKind::Rsa2048, RsaPadding::Pss, 4);
}

#[test]
fn ed25519_certificates() {
    establishes(KeyKind::Ed25519, RsaPadding::Pkcs1, 5);
}

#[test]
fn default_identity_is_the_subject_dn_and_dn_patterns_match_it() {
    let p = pki(KeyKind::EcdsaP256);
    let (mut i, mut r) = configs(&p, RsaPadding::Pkcs1);
    i.connections[0].local_id = None;
    r.connections[0].remote_id = Identity::parse("C=CH, O=roamgate lab, CN=*").unwrap();
    let sim = run(i, r, 6, now());
    assert_established(&sim, None);
    let peer = sim.nodes[1].events.iter().find_map(|e| match e {
        Event::IkeSaEstablished { peer_id, .. } => Some(peer_id.clone()),
        _ => None,
    });
    let peer = peer.unwrap();
    assert_eq!(peer.ty, IdType::DER_ASN1_DN);
    assert_eq!(
        Identity::from_wire(&peer).unwrap(),
        Identity::parse(&p.rw.dn).unwrap()
    );
}

#[test]
fn send_cert_always_without_certreq() {
    let p = pki(KeyKind::EcdsaP256);
    let (mut i, mut r) = configs(&p, RsaPadding::Pkcs1);
    for c in [&mut i.connections[0], &mut r.connections[0]] {
        c.send_certreq = false;
        c.send_cert = SendCert::Always;
    }
    assert_established(&run(i, r, 7, now()), Some(RW.as_bytes()));
}

#[test]
fn no_certificate_without_certreq_and_send_cert_ifasked_fails() {
    let p = pki(KeyKind::EcdsaP256);
    let (mut i, r) = configs(&p, RsaPadding::Pkcs1);
    // The responder asks (CERTREQ) but the initiator never sends its certificate.
    i.connections[0].send_cert = SendCert::Never;
    assert_responder_refused(&run(i, r, 8, now()));
}

#[test]
fn responder_with_another_ca_refuses_the_initiator() {
    let p = pki(KeyKind::EcdsaP256);
    let other = pki(KeyKind::EcdsaP256);
    let (i, mut r) = configs(&p, RsaPadding::Pkcs1);
    r.connections[0].remote_auth = RemoteAuth::PubKey(trust(&other.ca));
    assert_responder_refused(&run(i, r, 9, now()));
}

#[test]
fn initiator_with_another_ca_refuses_the_responder() {
    let p = pki(KeyKind::EcdsaP256);
    let other = pki(KeyKind::EcdsaP256);
    let (mut i, r) = configs(&p, RsaPadding::Pkcs1);
    i.connections[0].remote_auth = RemoteAuth::PubKey(trust(&other.ca));
    let sim = run(i, r, 10, now());
    assert!(
        matches!(
            sim.failures(0)[..],
            [Event::IkeSaFailed {
                reason: FailureReason::AuthenticationFailed,
                ..
            }]
        ),
        "{:?}",
        sim.nodes[0].events
    );
    assert_eq!(sim.nodes[0].engine.stats().authentication_failed, 1);
    assert!(sim.nodes[0].sink.is_empty());
    // The responder had installed its side, and removes it when told.
    assert!(sim.nodes[1].engine.ike_sas().is_empty());
    assert!(sim.nodes[1].sink.is_empty());
}

#[test]
fn identity_outside_the_pattern_is_refused() {
    let p = pki(KeyKind::EcdsaP256);
    let (i, mut r) = configs(&p, RsaPadding::Pkcs1);
    r.connections[0].remote_id = Identity::parse("*@elsewhere.test").unwrap();
    assert_responder_refused(&run(i, r, 11, now()));
}

#[test]
fn identity_not_in_the_certificate_is_refused() {
    let p = pki(KeyKind::EcdsaP256);
    let (mut i, r) = configs(&p, RsaPadding::Pkcs1);
    // Matches the responder's pattern, but the certificate only names rw@roamgate.test.
    i.connections[0].local_id = Some(Identity::parse("boss@roamgate.test").unwrap());
    assert_responder_refused(&run(i, r, 12, now()));
}

#[test]
fn certificate_outside_its_validity_is_refused() {
    let p = pki(KeyKind::EcdsaP256);
    // pki issues for one day: two days from now every certificate has expired.
    let later = SystemTime::now() + Duration::from_secs(2 * 86_400);
    let (i, r) = configs(&p, RsaPadding::Pkcs1);
    assert_responder_refused(&run(i, r, 13, [Some(SystemTime::now()), Some(later)]));
    // A responder that was never told the time refuses every certificate.
    let (i, r) = configs(&p, RsaPadding::Pkcs1);
    assert_responder_refused(&run(i, r, 14, [Some(SystemTime::now()), None]));
}

#[test]
fn responder_picks_the_connection_by_peer_identity() {
    // Two connections on the same address: PSK for one identity, certificates for the
    // other. The certificate peer must land in the second.
    let p = pki(KeyKind::EcdsaP256);
    let (i, r) = configs(&p, RsaPadding::Pkcs1);
    let mut psk = connection("psk", RESPONDER, None, GW);
    psk.remote_id = Identity::parse("*@psk.roamgate.test").unwrap();
    psk.children
        .push(child("net", "10.2.0.0/16", "10.1.0.0/16"));
    let mut r = EngineConfig {
        connections: vec![psk, r.connections[0].clone()],
        ..psk_config(Vec::new(), b"a key for the psk users")
    };
    r.connections[1].name = "certs".into();
    let sim = run(i, r, 15, now());
    assert_established(&sim, Some(RW.as_bytes()));
    assert!(sim.nodes[1].events.iter().any(|e| matches!(e,
        Event::IkeSaEstablished { connection, .. } if connection == "certs")));
}

/// The IKE_SA_INIT messages: both announce SIGNATURE_HASH_ALGORITHMS (RFC 7427 § 4); the
/// responder asks for a certificate from its CA (CERTREQ with the SHA-1 of the CA's key,
/// RFC 7296 § 3.7) only when a connection that takes signatures matches.
#[test]
fn ike_sa_init_announces_hashes_and_the_responder_requests_its_ca() {
    use roamgate_control::auth::{Certificate, SUPPORTED_HASHES};
    use roamgate_control::wire::{Message, NotifyType, Payload};
    let p = pki(KeyKind::EcdsaP256);
    let (i, r) = configs(&p, RsaPadding::Pkcs1);
    let sim = run(i, r, 16, now());
    assert_established(&sim, Some(RW.as_bytes()));
    let ca_hash = Certificate::load(&p.ca.ca().cert).unwrap()[0].spki_sha1();
    for node in 0..2 {
        let init = Message::decode(&sim.nodes[node].sent[0].payload).unwrap();
        let hashes = init
            .notify(NotifyType::SIGNATURE_HASH_ALGORITHMS)
            .and_then(|n| n.as_signature_hash_algorithms())
            .unwrap_or_else(|| panic!("node {node}: no SIGNATURE_HASH_ALGORITHMS"));
        assert_eq!(hashes, SUPPORTED_HASHES);
        let certreq = init.payloads.iter().find_map(|p| match p {
            Payload::CertificateRequest(c) => Some(c.authorities.clone()),
            _ => None,
        });
        if node == 1 {
            assert_eq!(certreq.as_deref(), Some(&ca_hash[..]));
        } else {
            // The initiator asks in IKE_AUTH, not in IKE_SA_INIT.
            assert_eq!(certreq, None);
        }
    }
    // A PSK-only responder asks for no certificate.
    let (i, r) = pair_configs();
    let mut sim = sim_pair(17, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    sim.run_for(LIMIT);
    let init = Message::decode(&sim.nodes[1].sent[0].payload).unwrap();
    assert!(
        !init
            .payloads
            .iter()
            .any(|p| matches!(p, Payload::CertificateRequest(_)))
    );
}
