//! Our responder answers strongSwan 5.9.8's real IKE_SA_INIT request (captured on loopback,
//! 127.0.0.1 → 127.0.0.2, `proposals = default`; tests/fixtures/README.md).

mod support;

use std::net::SocketAddr;

use roamgate_control::engine::Engine;
use roamgate_control::wire::payload::notify::NAT_DETECTION_LEN;
use roamgate_control::wire::{DhGroup, EncrId, Message, NotifyType, Payload, PrfId};
use support::*;

fn request() -> Vec<u8> {
    std::fs::read("tests/fixtures/strongswan-5.9.8-ike-sa-init-request.bin").unwrap()
}

fn answer(proposals: &[&str]) -> (Engine, Message) {
    let mut c = connection("ss", "127.0.0.2".parse().unwrap(), None, "gw");
    c.ike_proposals = proposals.iter().map(|p| ike(p)).collect();
    let mut e = Engine::new(psk_config(vec![c], b"psk psk psk psk!"), engine_rng(9));
    let local: SocketAddr = "127.0.0.2:500".parse().unwrap();
    let remote: SocketAddr = "127.0.0.1:500".parse().unwrap();
    e.handle_datagram(std::time::Instant::now(), local, remote, &request());
    let t = e.poll_transmit().expect("an answer");
    assert_eq!((t.local, t.remote), (local, remote));
    assert!(e.poll_transmit().is_none());
    (e, Message::decode(&t.payload).unwrap())
}

#[test]
fn answers_strongswans_ike_sa_init_with_its_aead_proposal() {
    let req = Message::decode(&request()).unwrap();
    let (e, resp) = answer(&["aes128gcm16-prfsha256-x25519"]);
    assert_eq!(resp.spi_i, req.spi_i);
    assert_ne!(resp.spi_r, 0);
    assert!(resp.flags.response() && !resp.flags.initiator());
    let sa = resp
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::SecurityAssociation(s) => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(sa.proposals.len(), 1);
    // strongSwan's default puts the AEAD algorithms in its second proposal.
    assert_eq!(sa.proposals[0].number, 2);
    let t = &sa.proposals[0].transforms;
    assert_eq!(t.len(), 3, "ENCR, PRF, DH");
    assert_eq!(t[0].as_encr(), Some(EncrId::AES_GCM_16));
    assert_eq!(t[0].key_length(), Some(128));
    assert_eq!(t[1].as_prf(), Some(PrfId::HMAC_SHA2_256));
    assert_eq!(t[2].as_dh(), Some(DhGroup::CURVE25519));
    let ke = resp
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::KeyExchange(k) => Some(k),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        ke.group,
        DhGroup::CURVE25519,
        "the group of strongSwan's KE"
    );
    assert_eq!(ke.data.len(), 32);
    assert!(
        resp.payloads
            .iter()
            .any(|p| matches!(p, Payload::Nonce(n) if n.data.len() >= 16))
    );
    for ty in [
        NotifyType::NAT_DETECTION_SOURCE_IP,
        NotifyType::NAT_DETECTION_DESTINATION_IP,
    ] {
        assert_eq!(resp.notify(ty).unwrap().data.len(), NAT_DETECTION_LEN);
    }
    // strongSwan's NAT_DETECTION_DESTINATION_IP is SHA-1(SPIi | 0 | 127.0.0.2 | 500), the
    // hash we compute: no NAT in front of us. Its NAT_DETECTION_SOURCE_IP matches no address
    // of the capture (strongSwan sends a made-up source hash when it wants UDP encapsulation),
    // so we must see the peer as behind a NAT, as strongSwan intends.
    let info = &e.ike_sas()[0];
    assert!(!info.nat_local);
    assert!(info.nat_remote);
    assert!(!info.established);
}

#[test]
fn answers_strongswans_ike_sa_init_with_its_cbc_proposal() {
    let (_, resp) = answer(&["aes256-sha256-x25519"]);
    let sa = resp
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::SecurityAssociation(s) => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(sa.proposals[0].number, 1);
    assert_eq!(sa.proposals[0].transforms.len(), 4, "ENCR, PRF, INTEG, DH");
}

#[test]
fn asks_strongswan_for_another_group() {
    let (e, resp) = answer(&["aes128gcm16-prfsha256-ecp256"]);
    assert_eq!(resp.spi_r, 0);
    let n = resp.notify(NotifyType::INVALID_KE_PAYLOAD).unwrap();
    assert_eq!(n.as_invalid_ke_payload(), Some(DhGroup::ECP_256));
    assert!(e.ike_sas().is_empty(), "no state for INVALID_KE_PAYLOAD");
}

#[test]
fn retransmitted_request_gets_the_same_answer() {
    let (mut e, first) = answer(&["aes128gcm16-prfsha256-x25519"]);
    let local: SocketAddr = "127.0.0.2:500".parse().unwrap();
    let remote: SocketAddr = "127.0.0.1:500".parse().unwrap();
    e.handle_datagram(std::time::Instant::now(), local, remote, &request());
    let again = Message::decode(&e.poll_transmit().unwrap().payload).unwrap();
    assert_eq!(again, first);
    assert_eq!(e.ike_sas().len(), 1);
    assert_eq!(e.stats().responses_retransmitted, 1);
}
