//! The lab's certificate authority: `pki` makes valid chains for every key type, and two real
//! strongSwan peers authenticate each other with them — the reference the IKEv2 engine's
//! certificate tests are held to.

use std::time::Duration;

use roamgate_lab::pki::{KeyKind, LabCa};
use roamgate_lab::strongswan::{
    self, Charon, CharonOptions, Credential, GW_ID, LabAuth, RW_ID, TunnelParams,
};
use roamgate_lab::topology::{Options, RoadWarrior};
use roamgate_lab::{Lab, cmd};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roamgate-pki-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn every_key_kind_gets_a_chain_pki_verifies() {
    let dir = temp_dir("kinds");
    for kind in [
        KeyKind::Rsa2048,
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::Ed25519,
    ] {
        let ca = LabCa::new(&dir, kind).unwrap();
        let leaf = ca.issue(GW_ID, kind).unwrap();
        let out = cmd::run_text(
            "pki",
            &[
                "--verify",
                "--in",
                leaf.cert.to_str().unwrap(),
                "--cacert",
                ca.ca().cert.to_str().unwrap(),
            ],
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(out.contains("certificate trusted"), "{kind:?}: {out}");
        let text = cmd::run_text("pki", &["--print", "--in", leaf.cert.to_str().unwrap()]).unwrap();
        assert!(text.contains(GW_ID), "{kind:?}: SAN missing:\n{text}");
        // A certificate from another CA must not verify against this one.
        let other = LabCa::new(&dir.join("other"), kind).unwrap();
        let stranger = other.issue(GW_ID, kind).unwrap();
        let refused = cmd::run_text(
            "pki",
            &[
                "--verify",
                "--in",
                stranger.cert.to_str().unwrap(),
                "--cacert",
                ca.ca().cert.to_str().unwrap(),
            ],
        );
        assert!(
            refused.is_err() || !refused.as_ref().unwrap().contains("certificate trusted"),
            "{kind:?}: a foreign certificate verified: {refused:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn strongswan_peers_authenticate_with_lab_certificates() {
    let lab = Lab::new("pki_strongswan_certificates").unwrap();
    let topo = RoadWarrior::build(Options::default()).unwrap();
    let ca = LabCa::new(&lab.logs().join("pki"), KeyKind::EcdsaP256).unwrap();
    let gw_cert = ca.issue(GW_ID, KeyKind::EcdsaP256).unwrap();
    let rw_cert = ca.issue(RW_ID, KeyKind::EcdsaP256).unwrap();
    let file = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let gw_params = TunnelParams {
        proposals: "aes256gcm16-prfsha384-ecp256".into(),
        esp_proposals: "aes256gcm16".into(),
        auth: LabAuth::Pubkey {
            cert: file(&gw_cert.cert),
        },
        ..TunnelParams::default()
    };
    let rw_params = TunnelParams {
        auth: LabAuth::Pubkey {
            cert: file(&rw_cert.cert),
        },
        ..gw_params.clone()
    };
    let gw_addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let lan = topo.gw.lan.clone().unwrap();
    let gw = Charon::start_with(
        &lab,
        &topo.gw.ns,
        "gw",
        &strongswan::road_warrior_gateway(&gw_params, &gw_addrs, &lan.prefix_v4),
        &CharonOptions {
            credentials: Credential::peer(ca.ca(), &gw_cert),
            ..CharonOptions::default()
        },
    )
    .unwrap();
    let rw = Charon::start_with(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&rw_params, &gw_addrs, &lan.prefix_v4),
        &CharonOptions {
            credentials: Credential::peer(ca.ca(), &rw_cert),
            ..CharonOptions::default()
        },
    )
    .unwrap();
    rw.initiate("home", "lan").unwrap();
    let sa = rw
        .wait_established("home", "lan", Duration::from_secs(20))
        .unwrap();
    gw.wait_established("rw", "lan", Duration::from_secs(20))
        .unwrap();
    assert_eq!(
        sa.algorithms, "AES_GCM_16-256/PRF_HMAC_SHA2_384/ECP_256",
        "{sa:?}"
    );
    let log = std::fs::read_to_string(gw.log()).unwrap();
    // ECDSA inside an RFC 7427 digital signature (AUTH method 14).
    assert!(
        log.contains("authentication of 'rw@roamgate.test' with ECDSA_WITH_SHA256_DER successful"),
        "the gateway did not log an ECDSA signature authentication; see {}",
        gw.log().display()
    );
    assert!(
        !log.contains("pre-shared key"),
        "PSK was used instead of certificates"
    );
}
