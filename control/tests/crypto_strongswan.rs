//! Interop with strongSwan 5.9.8: our key derivation reproduces the keys charon logged, and our
//! SK decryption of its IKE_AUTH request yields the plaintext charon logged
//! (`tests/fixtures/README.md`, `strongswan-5.9.8-kat-*`).

use roamgate_control::crypto::Secret;
use roamgate_control::crypto::keys::{IkeKeys, IkeSuite, skeyseed};
use roamgate_control::crypto::prf::Prf;
use roamgate_control::crypto::sk::{Encr, SkCipher};
use roamgate_control::wire::payload::decode_chain;
use roamgate_control::wire::{Message, Payload};

const DIR: &str = "tests/fixtures/";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}strongswan-5.9.8-kat-{name}")).unwrap()
}

fn logged(key: &str) -> Secret {
    let text = String::from_utf8(fixture("keys.txt")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap();
    Secret::new(
        (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect(),
    )
}

fn nonce(msg: &Message) -> Vec<u8> {
    msg.payloads
        .iter()
        .find_map(|p| match p {
            Payload::Nonce(n) => Some(n.data.clone()),
            _ => None,
        })
        .unwrap()
}

fn derive() -> IkeKeys {
    let req = Message::decode(&fixture("ike-sa-init-request.bin")).unwrap();
    let resp = Message::decode(&fixture("ike-sa-init-response.bin")).unwrap();
    let (ni, nr) = (nonce(&req), nonce(&resp));
    let suite = IkeSuite {
        prf: Prf::HmacSha256,
        encr: Encr::AesGcm16(16),
        integ: None,
    };
    let seed = skeyseed(suite.prf, &ni, &nr, &logged("g_ir"));
    IkeKeys::derive(suite, seed, &ni, &nr, resp.spi_i, resp.spi_r).unwrap()
}

#[test]
fn derivation_reproduces_charons_keys() {
    let keys = derive();
    assert_eq!(keys.skeyseed, logged("skeyseed"));
    assert_eq!(keys.sk_d, logged("sk_d"));
    assert!(keys.sk_ai.is_empty() && keys.sk_ar.is_empty());
    assert_eq!(keys.sk_ei, logged("sk_ei"));
    assert_eq!(keys.sk_er, logged("sk_er"));
    assert_eq!(keys.sk_pi, logged("sk_pi"));
    assert_eq!(keys.sk_pr, logged("sk_pr"));
}

#[test]
fn decrypts_charons_ike_auth_request() {
    let keys = derive();
    let c = SkCipher::new(Encr::AesGcm16(16), None, &keys.sk_ei, &keys.sk_ai).unwrap();
    let datagram = fixture("ike-auth-request.bin");
    let opened = c.open(&datagram).unwrap();
    assert_eq!(opened.plaintext, fixture("ike-auth-request.plain.bin"));
    decode_chain(opened.first_inner, &opened.plaintext).unwrap();
    // The responder's key must not open it.
    let wrong = SkCipher::new(Encr::AesGcm16(16), None, &keys.sk_er, &keys.sk_ar).unwrap();
    assert!(wrong.open(&datagram).is_err());
    // The response opens with SK_er.
    let resp = wrong.open(&fixture("ike-auth-response.bin")).unwrap();
    decode_chain(resp.first_inner, &resp.plaintext).unwrap();
}
