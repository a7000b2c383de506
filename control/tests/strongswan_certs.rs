//! Acceptance with certificates against a real strongSwan 5.9.8 (kernel-libipsec) in the lab:
//! strongSwan → roamgate and roamgate → strongSwan, with (a) ECDSA P-256 certificates,
//! ecp256 and AES-GCM, (b) RSA-2048 certificates (RFC 7427 signatures), modp2048 and
//! AES-CBC + HMAC-SHA2-256, and (c) Ed25519 certificates; RSA also with a fragment size so
//! small that both sides send IKE_AUTH in IKE fragments (RFC 7383). roamgate is configured the way the
//! product is, through a TOML file loaded with `daemon::config::load`; the certificates come
//! from strongSwan's `pki`. Both sides must report the same SPIs and algorithms, every IKE
//! packet roamgate sends must dissect cleanly in tshark, and a CA the other side does not
//! trust, on either side, must leave no SA on either side.
//!
//! Needs root, strongSwan and tshark (`cargo xtask deps`): fails, saying what is missing,
//! without them. Logs (charon's, roamgate's, the configurations, the captures and the
//! certificates) stay in /tmp/roamgate-lab/<test>/.

mod interop;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use interop::{Roamgate, assert_clean_ike, assert_same_child};
use roamgate_control::engine::{Event, FailureReason};
use roamgate_lab::Lab;
use roamgate_lab::capture::Capture;
use roamgate_lab::pki::{Issued, KeyKind, LabCa};
use roamgate_lab::roamgate::{Auth, ControlConfig, SecretEntry};
use roamgate_lab::strongswan::{
    self, Charon, CharonOptions, Credential, GW_ID, LabAuth, RW_ID, TunnelParams,
};
use roamgate_lab::topology::{Options, RoadWarrior};

const TIMEOUT: Duration = Duration::from_secs(20);

/// What one test negotiates.
struct Suite {
    kind: KeyKind,
    /// IKE proposal (strongSwan keywords; roamgate parses the same).
    ike: &'static str,
    /// ESP proposal.
    esp: &'static str,
    /// What `swanctl --list-sas` shows for the IKE SA and the CHILD_SA.
    ike_algorithms: &'static str,
    child_algorithms: &'static str,
    /// The largest IP datagram of an IKE fragment, on both sides (1280 is both defaults).
    fragment_size: u32,
}

const ECDSA_P256: Suite = Suite {
    kind: KeyKind::EcdsaP256,
    ike: "aes256gcm16-prfsha256-ecp256",
    esp: "aes256gcm16",
    ike_algorithms: "AES_GCM_16-256/PRF_HMAC_SHA2_256/ECP_256",
    child_algorithms: "ESP:AES_GCM_16-256",
    fragment_size: 1280,
};

const RSA_2048: Suite = Suite {
    kind: KeyKind::Rsa2048,
    ike: "aes256-sha256-modp2048",
    esp: "aes256-sha256",
    ike_algorithms: "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
    child_algorithms: "ESP:AES_CBC-256/HMAC_SHA2_256_128",
    fragment_size: 1280,
};

/// RSA-2048 with fragments far below the path MTU: every IKE_AUTH message is fragmented
/// ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)) by both sides.
const RSA_2048_SMALL_FRAGMENTS: Suite = Suite {
    fragment_size: 576,
    ..RSA_2048
};

const ED25519: Suite = Suite {
    kind: KeyKind::Ed25519,
    ike: "aes128gcm16-prfsha256-x25519",
    esp: "aes128gcm16",
    ike_algorithms: "AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519",
    child_algorithms: "ESP:AES_GCM_16-128",
    fragment_size: 1280,
};

/// Which side is whom.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// strongSwan is the road warrior, roamgate the gateway.
    StrongSwanInitiates,
    /// roamgate is the road warrior, strongSwan the gateway.
    RoamgateInitiates,
}

/// Who trusts a CA that did not issue the other side's certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WrongCa {
    None,
    Roamgate,
    StrongSwan,
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// roamgate's configuration file for `direction`, authenticating with `own` and trusting `ca`.
fn roamgate_toml(
    suite: &Suite,
    direction: Direction,
    gw: &[String],
    lan: &str,
    own: &Issued,
    ca: &Path,
) -> String {
    let params = TunnelParams {
        proposals: suite.ike.into(),
        esp_proposals: suite.esp.into(),
        ..TunnelParams::default()
    };
    let (mut config, name, us, peer) = match direction {
        Direction::StrongSwanInitiates => (
            ControlConfig::road_warrior_gateway(&params, gw, lan),
            "rw",
            GW_ID,
            "*@roamgate.test",
        ),
        Direction::RoamgateInitiates => (
            ControlConfig::road_warrior_client(&params, gw, lan),
            "home",
            RW_ID,
            GW_ID,
        ),
    };
    config.daemon.log_level = Some("debug".into());
    config.daemon.fragment_size = Some(suite.fragment_size);
    let connection = config
        .connections
        .get_mut(name)
        .expect("the lab's connection");
    connection.local = Auth::own_cert(us, &own.cert);
    connection.remote = Auth::peer_cert(peer, ca);
    config.secrets = BTreeMap::from([("private-own".to_string(), SecretEntry::key_file(&own.key))]);
    config.render()
}

/// Runs one handshake; with `wrong_ca` checks that neither side ends up with an SA.
fn run(name: &str, suite: &Suite, direction: Direction, wrong_ca: WrongCa) {
    let lab = Lab::new(name).unwrap();
    let topo = RoadWarrior::build(Options::default()).unwrap();
    let pki_dir = lab.logs().join("pki");
    let ca = LabCa::new(&pki_dir, suite.kind)
        .unwrap_or_else(|e| panic!("strongSwan's pki is needed for the certificates: {e}"));
    let other = LabCa::new(&pki_dir.join("other"), suite.kind).unwrap();
    let gw_cert = ca.issue(GW_ID, suite.kind).unwrap();
    let rw_cert = ca.issue(RW_ID, suite.kind).unwrap();
    let gw_v4 = topo.gw.wan_v4();
    let gw_addrs: Vec<String> = gw_v4.iter().map(|a| a.to_string()).collect();
    let lan = topo.gw.lan.clone().unwrap();
    let (ours, theirs, our_cert, their_cert) = match direction {
        Direction::StrongSwanInitiates => (&topo.gw, &topo.rw, &gw_cert, &rw_cert),
        Direction::RoamgateInitiates => (&topo.rw, &topo.gw, &rw_cert, &gw_cert),
    };
    let our_ca = if wrong_ca == WrongCa::Roamgate {
        &other.ca().cert
    } else {
        &ca.ca().cert
    };
    let their_ca = if wrong_ca == WrongCa::StrongSwan {
        other.ca()
    } else {
        ca.ca()
    };
    let capture = Capture::start(
        &ours.ns,
        &ours.uplink(0).ifname,
        "udp port 500 or udp port 4500",
        &lab.logs().join("roamgate-uplink1.pcap"),
    )
    .unwrap();
    let toml = roamgate_toml(
        suite,
        direction,
        &gw_addrs,
        &lan.prefix_v4,
        our_cert,
        our_ca,
    );
    let config: PathBuf = lab.logs().join("roamgate.toml");
    std::fs::write(&config, toml).unwrap();
    let params = TunnelParams {
        proposals: suite.ike.into(),
        esp_proposals: suite.esp.into(),
        auth: LabAuth::Pubkey {
            cert: file_name(&their_cert.cert),
        },
        ..TunnelParams::default()
    };
    // The peer's own certificate and key, and the CA it trusts (ours, or the other one).
    let options = CharonOptions {
        credentials: Credential::peer(their_ca, their_cert),
        settings: vec![("fragment_size", suite.fragment_size.to_string())],
        ..CharonOptions::default()
    };
    let (swanctl, ike, child) = match direction {
        Direction::StrongSwanInitiates => (
            strongswan::road_warrior_client(&params, &gw_addrs, &lan.prefix_v4),
            "home",
            "lan",
        ),
        Direction::RoamgateInitiates => (
            strongswan::road_warrior_gateway(&params, &gw_addrs, &lan.prefix_v4),
            "rw",
            "lan",
        ),
    };
    let peer = Charon::start_with(&lab, &theirs.ns, "peer", &swanctl, &options).unwrap();
    let roamgate = Roamgate::start_from_file(&lab, &ours.ns, "roamgate", &config);
    match direction {
        Direction::StrongSwanInitiates => {
            // A refused handshake makes `swanctl --initiate` fail; that is checked below.
            let initiated = peer.initiate("home", "lan");
            if wrong_ca == WrongCa::None {
                initiated.unwrap();
            }
        }
        Direction::RoamgateInitiates => {
            roamgate.handle.initiate("home").unwrap();
        }
    }
    if wrong_ca != WrongCa::None {
        assert_no_sa(&roamgate, &peer, wrong_ca);
        return;
    }
    let sa = peer.wait_established(ike, child, TIMEOUT).unwrap();
    let info = roamgate.wait_established(TIMEOUT);
    assert_eq!(sa.state, "ESTABLISHED", "{sa:?}");
    assert_eq!(sa.children[0].state, "INSTALLED", "{sa:?}");
    assert_eq!(sa.algorithms, suite.ike_algorithms, "{sa:?}");
    assert_eq!(sa.children[0].algorithms, suite.child_algorithms, "{sa:?}");
    // The road warrior's virtual IP comes from the gateway's pool, whoever that is.
    let vip = match direction {
        Direction::StrongSwanInitiates => sa.local_vips.first().cloned(),
        Direction::RoamgateInitiates => info.virtual_ip.map(|v| v.to_string()),
    };
    assert!(
        vip.as_deref().is_some_and(|v| v.starts_with("10.200.0.")),
        "{sa:?} {info:?}"
    );
    assert_same_child(
        &sa,
        &roamgate
            .sink
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
    );
    if suite.fragment_size < 1000 {
        // Both IKE_AUTH messages went out in fragments and were put together again.
        let stats = roamgate.snapshot().stats;
        assert!(stats.fragments_sent >= 2, "{stats:?}");
        assert_eq!(stats.messages_reassembled, 1, "{stats:?}");
        assert_eq!(stats.drop_fragment, 0, "{stats:?}");
        let log = std::fs::read_to_string(peer.log()).unwrap();
        assert!(
            log.contains("reassembled fragmented IKE message"),
            "strongSwan reassembled nothing: {}",
            peer.log().display()
        );
        assert!(
            log.contains("into") && log.contains("fragments"),
            "strongSwan fragmented nothing: {}",
            peer.log().display()
        );
    }
    let pcap = capture.stop().unwrap();
    let n = assert_clean_ike(&pcap, &ours.uplink(0).v4.to_string());
    println!(
        "{n} IKE packets from roamgate dissected cleanly; logs: {}",
        lab.logs().display()
    );
}

/// Neither side holds an SA after the handshake had every chance to finish, and the side
/// with the wrong CA counted the refusal.
fn assert_no_sa(roamgate: &Roamgate, peer: &Charon, wrong_ca: WrongCa) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let s = roamgate.snapshot();
        let refused = match wrong_ca {
            WrongCa::Roamgate => s.stats.authentication_failed >= 1,
            _ => {
                s.events.iter().any(|e| {
                    matches!(
                        e,
                        Event::IkeSaFailed {
                            reason: FailureReason::PeerAuthenticationFailed,
                            ..
                        }
                    )
                }) || s
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::IkeSaDeleted { .. }))
            }
        };
        if refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal seen; events: {:#?}; stats: {:#?}",
            s.events,
            s.stats
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Give a late retransmission or DELETE time to arrive, then look at both sides.
    std::thread::sleep(Duration::from_secs(2));
    let s = roamgate.snapshot();
    assert!(
        s.ike_sas.iter().all(|sa| !sa.established),
        "roamgate kept an IKE SA: {:#?}",
        s.ike_sas
    );
    assert!(
        roamgate.sink.lock().unwrap().is_empty(),
        "roamgate kept a CHILD_SA"
    );
    let theirs = peer.list_sas().unwrap();
    assert!(
        theirs.iter().all(|sa| sa.state != "ESTABLISHED"),
        "strongSwan kept an IKE SA: {theirs:?}"
    );
}

#[test]
fn strongswan_initiates_to_roamgate_ecdsa_p256_ecp256_aes256gcm16() {
    run(
        "certs_strongswan_initiates_p256",
        &ECDSA_P256,
        Direction::StrongSwanInitiates,
        WrongCa::None,
    );
}

#[test]
fn roamgate_initiates_to_strongswan_ecdsa_p256_ecp256_aes256gcm16() {
    run(
        "certs_roamgate_initiates_p256",
        &ECDSA_P256,
        Direction::RoamgateInitiates,
        WrongCa::None,
    );
}

#[test]
fn strongswan_initiates_to_roamgate_rsa2048_modp2048_aes256_sha256() {
    run(
        "certs_strongswan_initiates_rsa",
        &RSA_2048,
        Direction::StrongSwanInitiates,
        WrongCa::None,
    );
}

#[test]
fn roamgate_initiates_to_strongswan_rsa2048_modp2048_aes256_sha256() {
    run(
        "certs_roamgate_initiates_rsa",
        &RSA_2048,
        Direction::RoamgateInitiates,
        WrongCa::None,
    );
}

#[test]
fn strongswan_initiates_to_roamgate_rsa2048_in_ike_fragments() {
    run(
        "certs_strongswan_initiates_rsa_fragments",
        &RSA_2048_SMALL_FRAGMENTS,
        Direction::StrongSwanInitiates,
        WrongCa::None,
    );
}

#[test]
fn roamgate_initiates_to_strongswan_rsa2048_in_ike_fragments() {
    run(
        "certs_roamgate_initiates_rsa_fragments",
        &RSA_2048_SMALL_FRAGMENTS,
        Direction::RoamgateInitiates,
        WrongCa::None,
    );
}

#[test]
fn strongswan_initiates_to_roamgate_ed25519() {
    run(
        "certs_strongswan_initiates_ed25519",
        &ED25519,
        Direction::StrongSwanInitiates,
        WrongCa::None,
    );
}

#[test]
fn roamgate_initiates_to_strongswan_ed25519() {
    run(
        "certs_roamgate_initiates_ed25519",
        &ED25519,
        Direction::RoamgateInitiates,
        WrongCa::None,
    );
}

#[test]
fn roamgate_trusting_another_ca_refuses_strongswan() {
    run(
        "certs_wrong_ca_roamgate_responder",
        &ECDSA_P256,
        Direction::StrongSwanInitiates,
        WrongCa::Roamgate,
    );
    run(
        "certs_wrong_ca_roamgate_initiator",
        &ECDSA_P256,
        Direction::RoamgateInitiates,
        WrongCa::Roamgate,
    );
}

#[test]
fn strongswan_trusting_another_ca_refuses_roamgate() {
    run(
        "certs_wrong_ca_strongswan_responder",
        &ECDSA_P256,
        Direction::RoamgateInitiates,
        WrongCa::StrongSwan,
    );
    run(
        "certs_wrong_ca_strongswan_initiator",
        &ECDSA_P256,
        Direction::StrongSwanInitiates,
        WrongCa::StrongSwan,
    );
}
