//! Known-answer and round-trip tests for `roamgate_control::crypto`.

use roamgate_control::crypto::Secret;
use roamgate_control::crypto::dh::{DhError, DhPrivate};
use roamgate_control::crypto::keys::{
    IkeKeys, IkeSuite, child_keys, skeyseed, skeyseed_rekey, split_salt,
};
use roamgate_control::crypto::prf::Prf;
use roamgate_control::crypto::sk::{Encr, Integ, SkCipher, SkError};
use roamgate_control::wire::payload::decode_chain;
use roamgate_control::wire::{ExchangeType, Message, header::Flags};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 4231 test case 2 ("Jefe").
#[test]
fn hmac_sha2_rfc4231_case2() {
    let data = b"what do ya want for nothing?";
    let cases = [
        (
            Prf::HmacSha256,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            Prf::HmacSha384,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            Prf::HmacSha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
    ];
    for (prf, want) in cases {
        assert_eq!(prf.prf(b"Jefe", &[data]).expose(), hex(want), "{prf:?}");
    }
}

/// prf+ against an independent, literal reading of RFC 7296 § 2.13.
#[test]
fn prf_plus_matches_definition() {
    for prf in [Prf::HmacSha256, Prf::HmacSha384, Prf::HmacSha512] {
        let key = b"key material";
        let seed = b"seed bytes";
        let mut expect = Vec::new();
        let mut t: Vec<u8> = Vec::new();
        for n in 1u8..=5 {
            let mut input = t.clone();
            input.extend_from_slice(seed);
            input.push(n);
            t = prf.prf(key, &[&input]).expose().to_vec();
            expect.extend_from_slice(&t);
        }
        for len in [0, 1, 31, 32, 33, 100, expect.len()] {
            let got = prf.prf_plus(key, &[&seed[..4], &seed[4..]], len).unwrap();
            assert_eq!(got.expose(), &expect[..len]);
        }
    }
    assert!(Prf::HmacSha256.prf_plus(b"k", &[], 255 * 32 + 1).is_err());
}

#[test]
fn secret_debug_is_redacted() {
    let s = Secret::from_slice(&[0xAB; 16]);
    let d = format!("{s:?}");
    assert!(!d.to_lowercase().contains("ab"), "{d}");
}

/// RFC 7748 § 6.1.
#[test]
fn x25519_rfc7748() {
    use roamgate_control::wire::DhGroup;
    let a = DhPrivate::from_private_bytes(
        DhGroup::CURVE25519,
        &hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    )
    .unwrap();
    assert_eq!(
        a.public(),
        hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    let shared = a
        .agree(&hex(
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        ))
        .unwrap();
    assert_eq!(
        shared.expose(),
        hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    );
    assert_eq!(a.agree(&[0; 31]).unwrap_err(), DhError::Length);
    assert_eq!(a.agree(&[0; 32]).unwrap_err(), DhError::Invalid);
}

/// RFC 5903 § 8.1 (ECP-256) and § 8.2 (ECP-384).
#[test]
fn ecdh_rfc5903() {
    use roamgate_control::wire::DhGroup;
    let cases = [
        (
            DhGroup::ECP_256,
            "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
            "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180\
             5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
            "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63\
             56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
            "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
        ),
        (
            DhGroup::ECP_384,
            "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194",
            "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA\
             9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C",
            "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571\
             DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C",
            "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746",
        ),
    ];
    for (group, i, gi, gr, shared) in cases {
        let k = DhPrivate::from_private_bytes(group, &hex(i)).unwrap();
        assert_eq!(k.public(), hex(gi));
        assert_eq!(k.agree(&hex(gr)).unwrap().expose(), hex(shared));
        let mut bad = hex(gr);
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(k.agree(&bad).unwrap_err(), DhError::Invalid);
        assert_eq!(k.agree(&bad[1..]).unwrap_err(), DhError::Length);
    }
}

fn seeded(seed: u64) -> impl FnMut(&mut [u8]) {
    let mut s = seed;
    move |buf: &mut [u8]| {
        for b in buf {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (s >> 33) as u8;
        }
    }
}

#[test]
fn dh_both_sides_agree_every_group() {
    use roamgate_control::wire::DhGroup;
    for group in [
        DhGroup::CURVE25519,
        DhGroup::ECP_256,
        DhGroup::ECP_384,
        DhGroup::MODP_2048,
    ] {
        let a = DhPrivate::generate(group, &mut seeded(1)).unwrap();
        let b = DhPrivate::generate(group, &mut seeded(2)).unwrap();
        let sa = a.agree(b.public()).unwrap();
        let sb = b.agree(a.public()).unwrap();
        assert_eq!(sa, sb, "{group:?}");
        // Deterministic given the seed.
        assert_eq!(
            DhPrivate::generate(group, &mut seeded(1)).unwrap().public(),
            a.public()
        );
    }
    let m = DhPrivate::generate(DhGroup::MODP_2048, &mut seeded(3)).unwrap();
    let mut one = vec![0u8; 256];
    one[255] = 1;
    assert_eq!(m.agree(&one).unwrap_err(), DhError::Invalid);
    assert_eq!(m.agree(&[0xff; 256]).unwrap_err(), DhError::Invalid);
    assert_eq!(m.agree(&[2; 255]).unwrap_err(), DhError::Length);
    assert!(DhPrivate::generate(DhGroup::MODP_1024, &mut seeded(3)).is_err());
}

fn message() -> Message {
    Message {
        spi_i: 0x1122334455667788,
        spi_r: 0x99aabbccddeeff00,
        exchange_type: ExchangeType::INFORMATIONAL,
        flags: Flags(0x08),
        message_id: 7,
        minor_version: 0,
        payloads: Vec::new(),
    }
}

#[test]
fn sk_roundtrip_and_tamper() {
    let plain_fixture = std::fs::read(
        "tests/fixtures/strongswan-5.9.8-informational-update-sa-addresses-request.plain.bin",
    )
    .unwrap();
    let first = roamgate_control::wire::PayloadType::NOTIFY;
    let suites = [
        (Encr::AesGcm16(16), None),
        (Encr::AesGcm16(32), None),
        (Encr::AesCbc(16), Some(Integ::HmacSha256_128)),
        (Encr::AesCbc(32), Some(Integ::HmacSha384_192)),
        (Encr::AesCbc(32), Some(Integ::HmacSha512_256)),
    ];
    for (encr, integ) in suites {
        let mut rng = seeded(9);
        let mut ek = vec![0; encr.key_material_len()];
        rng(&mut ek);
        let mut ak = vec![0; integ.map_or(0, Integ::key_len)];
        rng(&mut ak);
        let c = SkCipher::new(encr, integ, &Secret::new(ek), &Secret::new(ak)).unwrap();
        for len in [0, 1, 15, 16, 17, plain_fixture.len()] {
            let plain = &plain_fixture[..len];
            let mut iv = vec![0; c.iv_len()];
            rng(&mut iv);
            let wire = c.seal(&iv, message(), first, plain).unwrap();
            let opened = c.open(&wire).unwrap();
            assert_eq!(opened.plaintext, plain);
            assert_eq!(opened.first_inner, first);
            // Every single-bit flip is caught (header, SK header, IV, body, ICV).
            for i in 0..wire.len() {
                let mut bad = wire.clone();
                bad[i] ^= 0x01;
                assert!(c.open(&bad).is_err(), "{encr:?} flip at {i}");
            }
            for n in 0..wire.len() {
                assert!(c.open(&wire[..n]).is_err());
            }
        }
        let wire = c
            .seal(&vec![1; c.iv_len()], message(), first, &plain_fixture)
            .unwrap();
        let opened = c.open(&wire).unwrap();
        decode_chain(opened.first_inner, &opened.plaintext).unwrap();
        assert_eq!(
            c.seal(&[0; 3], message(), first, b"").unwrap_err(),
            SkError::IvLength
        );
    }
    assert_eq!(
        SkCipher::new(
            Encr::AesGcm16(16),
            Some(Integ::HmacSha256_128),
            &Secret::new(vec![0; 20]),
            &Secret::new(vec![0; 32])
        )
        .unwrap_err(),
        SkError::Suite
    );
}

/// SK_* split order (RFC 7296 § 2.14), salt split (RFC 5282 § 7.1), CHILD_SA KEYMAT with and
/// without PFS (§ 2.17) and rekeyed SKEYSEED (§ 2.18), each against its definition.
#[test]
fn key_derivation_layout() {
    let suite = IkeSuite {
        prf: Prf::HmacSha256,
        encr: Encr::AesGcm16(16),
        integ: None,
    };
    let shared = Secret::from_slice(&[7; 32]);
    let seed = skeyseed(Prf::HmacSha256, b"ni-nonce", b"nr-nonce", &shared);
    assert_eq!(seed, Prf::HmacSha256.prf(b"ni-noncenr-nonce", &[&[7; 32]]));
    let keys = IkeKeys::derive(suite, seed.clone(), b"ni-nonce", b"nr-nonce", 1, 2).unwrap();
    let mut s = b"ni-noncenr-nonce".to_vec();
    s.extend_from_slice(&1u64.to_be_bytes());
    s.extend_from_slice(&2u64.to_be_bytes());
    let all = Prf::HmacSha256
        .prf_plus(seed.expose(), &[&s], 32 * 3 + 20 * 2)
        .unwrap();
    let all = all.expose();
    assert_eq!(keys.sk_d.expose(), &all[..32]);
    assert!(keys.sk_ai.is_empty() && keys.sk_ar.is_empty());
    assert_eq!(keys.sk_ei.expose(), &all[32..52]);
    assert_eq!(keys.sk_er.expose(), &all[52..72]);
    assert_eq!(keys.sk_pr.expose(), &all[104..]);
    let (k, salt) = split_salt(&keys.sk_ei).unwrap();
    assert_eq!(k.expose(), &all[32..48]);
    assert_eq!(salt, all[48..52]);
    let ck = child_keys(
        Prf::HmacSha256,
        &keys.sk_d,
        None,
        b"a",
        b"b",
        Encr::AesCbc(16),
        Some(Integ::HmacSha256_128),
    )
    .unwrap();
    let km = Prf::HmacSha256
        .prf_plus(keys.sk_d.expose(), &[b"ab"], 96)
        .unwrap();
    assert_eq!(ck.encr_i.expose(), &km.expose()[..16]);
    assert_eq!(ck.integ_i.expose(), &km.expose()[16..48]);
    assert_eq!(ck.encr_r.expose(), &km.expose()[48..64]);
    assert_eq!(ck.integ_r.expose(), &km.expose()[64..]);
    let pfs = child_keys(
        Prf::HmacSha256,
        &keys.sk_d,
        Some(&shared),
        b"a",
        b"b",
        Encr::AesGcm16(32),
        None,
    )
    .unwrap();
    let km = Prf::HmacSha256
        .prf_plus(keys.sk_d.expose(), &[&[7; 32], b"ab"], 72)
        .unwrap();
    assert_eq!(pfs.encr_i.expose(), &km.expose()[..36]);
    assert_eq!(pfs.encr_r.expose(), &km.expose()[36..]);
    let rekeyed = skeyseed_rekey(Prf::HmacSha256, &keys.sk_d, &shared, b"n1", b"n2");
    assert_eq!(
        rekeyed,
        Prf::HmacSha256.prf(keys.sk_d.expose(), &[&[7; 32], b"n1n2"])
    );
}

#[test]
fn proposal_strings() {
    use roamgate_control::crypto::proposal::{ProposalError, ProposalSpec, Protocol};
    use roamgate_control::wire::{DhGroup, EncrId, EsnId, TransformType};
    let p = ProposalSpec::parse(Protocol::Ike, "aes128gcm16-prfsha256-x25519").unwrap();
    assert_eq!(p.encr, [Encr::AesGcm16(16)]);
    assert_eq!(p.prf, [Prf::HmacSha256]);
    assert!(p.integ.is_empty());
    assert_eq!(p.dh, [DhGroup::CURVE25519]);
    let p = ProposalSpec::parse(Protocol::Ike, "aes256-sha256-modp2048").unwrap();
    assert_eq!(p.prf, [Prf::HmacSha256]);
    assert_eq!(p.integ, [Integ::HmacSha256_128]);
    let p = ProposalSpec::parse(Protocol::Ike, "aes256gcm16-prfsha384-ecp384").unwrap();
    assert_eq!(
        (p.encr[0], p.prf[0], p.dh[0]),
        (Encr::AesGcm16(32), Prf::HmacSha384, DhGroup::ECP_384)
    );
    let p = ProposalSpec::parse(Protocol::Ike, "aes128-sha256-ecp256").unwrap();
    let w = p.to_wire(1, Vec::new());
    assert_eq!(w.transforms.len(), 4);
    assert_eq!(w.transforms[0].id, EncrId::AES_CBC.0);
    assert_eq!(w.transforms[1].ty, TransformType::PRF);
    let p = ProposalSpec::parse(Protocol::Esp, "aes128gcm16").unwrap();
    assert!(p.dh.is_empty() && p.prf.is_empty());
    assert_eq!(p.esn, [EsnId::NO_ESN]);
    let p = ProposalSpec::parse(Protocol::Esp, "aes256gcm16-x25519").unwrap();
    assert_eq!(p.dh, [DhGroup::CURVE25519]);
    ProposalSpec::parse(Protocol::Esp, "aes256-sha256").unwrap();
    assert_eq!(
        ProposalSpec::parse(Protocol::Ike, "aes128-sha256-ecp999").unwrap_err(),
        ProposalError::Unknown("ecp999".into())
    );
    assert!(
        ProposalSpec::parse(Protocol::Ike, "aes128-sha256-ecp999")
            .unwrap_err()
            .to_string()
            .contains("ecp999")
    );
    assert!(matches!(
        ProposalSpec::parse(Protocol::Esp, "aes128gcm16-prfsha256"),
        Err(ProposalError::NotAllowed(..))
    ));
    assert!(matches!(
        ProposalSpec::parse(Protocol::Ike, "aes128gcm16-x25519"),
        Err(ProposalError::NoPrf(_))
    ));
    assert!(matches!(
        ProposalSpec::parse(Protocol::Ike, "aes128-x25519"),
        Err(ProposalError::Integrity(_))
    ));
    assert!(matches!(
        ProposalSpec::parse(Protocol::Ike, "aes128-sha256"),
        Err(ProposalError::NoDh(_))
    ));
}

/// MODP-2048 against an independent computation (Python's `pow`, see the fixture README).
#[test]
fn modp2048_known_answer() {
    use roamgate_control::wire::DhGroup;
    let text = std::fs::read_to_string("tests/fixtures/modp2048-kat.txt").unwrap();
    let lines: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(hex)
        .collect();
    let a = DhPrivate::from_private_bytes(DhGroup::MODP_2048, &[0x11; 64]).unwrap();
    let b = DhPrivate::from_private_bytes(DhGroup::MODP_2048, &[0x22; 64]).unwrap();
    assert_eq!(a.public(), lines[0]);
    assert_eq!(b.public(), lines[1]);
    assert_eq!(a.agree(b.public()).unwrap().expose(), lines[2]);
}

/// The SK payload's AES-GCM against RustCrypto's `aes-gcm` (an independent implementation):
/// nonce = salt | IV, AAD = IKE header .. SK generic header (RFC 5282 § 4, § 5.1).
#[test]
fn sk_gcm_matches_rustcrypto() {
    use aes_gcm::aead::{Aead, KeyInit, Payload as AeadPayload};
    let key: Vec<u8> = (0u8..20).collect();
    let c = SkCipher::new(
        Encr::AesGcm16(16),
        None,
        &Secret::from_slice(&key),
        &Secret::new(vec![]),
    )
    .unwrap();
    let iv = [1, 2, 3, 4, 5, 6, 7, 8];
    let plain = b"some inner payload bytes";
    let wire = c
        .seal(
            &iv,
            message(),
            roamgate_control::wire::PayloadType::NOTIFY,
            plain,
        )
        .unwrap();
    let data_len = 8 + plain.len() + 1 + 16;
    let start = wire.len() - data_len;
    let mut nonce = key[16..20].to_vec();
    nonce.extend_from_slice(&iv);
    let rc = aes_gcm::Aes128Gcm::new_from_slice(&key[..16]).unwrap();
    let mut padded = plain.to_vec();
    padded.push(0);
    let ct = rc
        .encrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            AeadPayload {
                msg: &padded,
                aad: &wire[..start],
            },
        )
        .unwrap();
    assert_eq!(&wire[start..start + 8], iv);
    assert_eq!(&wire[start + 8..], ct.as_slice());
    // The SK generic header is the 4 bytes right before the IV.
    assert_eq!(start, 28 + 4);
}
