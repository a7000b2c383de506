//! Signature and PSK authentication: round trips for every algorithm, tampering, wrong keys,
//! the RFC 7427 AlgorithmIdentifiers, hash negotiation and malformed AUTH data.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair};
use roamgate_control::auth::{
    AuthError, AuthScheme, KeyKind, PrivateKey, RsaPadding, SignatureScheme, psk_auth_data,
    psk_authentication, split_auth_data, verify_psk_auth, verify_signature_auth,
};
use roamgate_control::crypto::Secret;
use roamgate_control::crypto::prf::Prf;
use roamgate_control::wire::payload::Authentication;
use roamgate_control::wire::{AuthMethod, HashAlgorithm};

const OCTETS: &[u8] = b"RealMessage1 | NonceRData | prf(SK_pi, IDi')";

fn rsa_key() -> PrivateKey {
    let k = sig::RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = k.as_der().unwrap();
    PrivateKey::from_pkcs8(der.as_ref()).unwrap()
}

fn ec_key(alg: &'static sig::EcdsaSigningAlgorithm) -> PrivateKey {
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
    PrivateKey::from_pkcs8(doc.as_ref()).unwrap()
}

fn ed_key() -> PrivateKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    PrivateKey::from_pkcs8(doc.as_ref()).unwrap()
}

fn all_keys() -> Vec<(PrivateKey, Vec<SignatureScheme>)> {
    use SignatureScheme as S;
    vec![
        (
            rsa_key(),
            vec![
                S::RsaPkcs1Sha256,
                S::RsaPkcs1Sha384,
                S::RsaPkcs1Sha512,
                S::RsaPssSha256,
                S::RsaPssSha384,
                S::RsaPssSha512,
            ],
        ),
        (
            ec_key(&sig::ECDSA_P256_SHA256_ASN1_SIGNING),
            vec![S::EcdsaSha256],
        ),
        (
            ec_key(&sig::ECDSA_P384_SHA384_ASN1_SIGNING),
            vec![S::EcdsaSha384],
        ),
        (
            ec_key(&sig::ECDSA_P521_SHA512_ASN1_SIGNING),
            vec![S::EcdsaSha512],
        ),
        (ed_key(), vec![S::Ed25519]),
    ]
}

fn rfc7427_auth(key: &PrivateKey, scheme: SignatureScheme, octets: &[u8]) -> Authentication {
    Authentication {
        method: AuthMethod::DIGITAL_SIGNATURE,
        data: roamgate_control::auth::rfc7427_auth_data(scheme, &key.sign(scheme, octets).unwrap()),
    }
}

#[test]
fn every_scheme_round_trips_and_rejects_tampering() {
    let keys = all_keys();
    for (key, schemes) in &keys {
        for &scheme in schemes {
            let auth = rfc7427_auth(key, scheme, OCTETS);
            assert_eq!(
                verify_signature_auth(key.public_key(), &auth, OCTETS).unwrap(),
                AuthScheme::Rfc7427(scheme),
                "{scheme}"
            );
            let mut tampered = OCTETS.to_vec();
            tampered[3] ^= 1;
            assert!(
                matches!(
                    verify_signature_auth(key.public_key(), &auth, &tampered),
                    Err(AuthError::BadSignature(_))
                ),
                "{scheme} accepted tampered octets"
            );
            let mut bad_sig = auth.clone();
            let last = bad_sig.data.len() - 1;
            bad_sig.data[last] ^= 0x80;
            assert!(verify_signature_auth(key.public_key(), &bad_sig, OCTETS).is_err());
        }
    }
    // A signature from one key never verifies under another key of the same kind.
    let (other, _) = &all_keys()[0];
    let auth = rfc7427_auth(&keys[0].0, SignatureScheme::RsaPkcs1Sha256, OCTETS);
    assert!(verify_signature_auth(other.public_key(), &auth, OCTETS).is_err());
}

#[test]
fn ecdsa_signs_only_with_its_curve_hash_and_scheme_key_mismatch_is_unsupported() {
    let p256 = ec_key(&sig::ECDSA_P256_SHA256_ASN1_SIGNING);
    assert!(matches!(
        p256.sign(SignatureScheme::EcdsaSha384, OCTETS),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
    let ed = ed_key();
    let auth = rfc7427_auth(&p256, SignatureScheme::EcdsaSha256, OCTETS);
    assert!(matches!(
        verify_signature_auth(ed.public_key(), &auth, OCTETS),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn classic_ecdsa_methods_round_trip() {
    for (alg, method) in [
        (
            &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            AuthMethod::ECDSA_SHA256_P256,
        ),
        (
            &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
            AuthMethod::ECDSA_SHA384_P384,
        ),
        (
            &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
            AuthMethod::ECDSA_SHA512_P521,
        ),
    ] {
        let key = ec_key(alg);
        let (m, data) = key.sign_classic(OCTETS).unwrap();
        assert_eq!(m, method);
        let auth = Authentication { method: m, data };
        verify_signature_auth(key.public_key(), &auth, OCTETS).unwrap();
        assert!(verify_signature_auth(key.public_key(), &auth, b"other").is_err());
    }
    assert!(matches!(
        ed_key().sign_classic(OCTETS),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn algorithm_identifiers_are_the_standard_encodings() {
    use SignatureScheme as S;
    // RFC 7427 Appendix A and RFC 8420 § 2 (DER as printed there).
    let table = [
        (S::RsaPkcs1Sha256, "300d06092a864886f70d01010b0500"),
        (S::RsaPkcs1Sha384, "300d06092a864886f70d01010c0500"),
        (S::RsaPkcs1Sha512, "300d06092a864886f70d01010d0500"),
        (S::EcdsaSha256, "300a06082a8648ce3d040302"),
        (S::EcdsaSha384, "300a06082a8648ce3d040303"),
        (S::EcdsaSha512, "300a06082a8648ce3d040304"),
        (S::Ed25519, "300506032b6570"),
        (
            S::RsaPssSha256,
            "3041 06092a864886f70d01010a 3034 a00f 300d 0609608648016503040201 0500
             a11c 301a 06092a864886f70d010108 300d 0609608648016503040201 0500 a203 020120",
        ),
    ];
    for (scheme, expected) in table {
        assert_eq!(scheme.algorithm_identifier(), hex(expected), "{scheme}");
    }
    for scheme in SignatureScheme::ALL {
        assert_eq!(
            SignatureScheme::from_algorithm_identifier(&scheme.algorithm_identifier()).unwrap(),
            scheme
        );
    }
    // ECDSA with (tolerated) NULL parameters; PSS without NULL in the hash identifiers.
    assert_eq!(
        SignatureScheme::from_algorithm_identifier(&hex("300c06082a8648ce3d0403020500")).unwrap(),
        S::EcdsaSha256
    );
    assert_eq!(
        SignatureScheme::from_algorithm_identifier(&hex(
            "303d 06092a864886f70d01010a 3030 a00d 300b 0609608648016503040202
             a11a 3018 06092a864886f70d010108 300b 0609608648016503040202 a203 020130"
        ))
        .unwrap(),
        S::RsaPssSha384
    );
}

#[test]
fn unsupported_and_malformed_algorithm_identifiers_are_errors() {
    // sha1WithRSAEncryption.
    assert!(matches!(
        SignatureScheme::from_algorithm_identifier(&hex("300d06092a864886f70d0101050500")),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
    // PSS with a salt of 20 and SHA-256.
    assert!(matches!(
        SignatureScheme::from_algorithm_identifier(&hex(
            "3041 06092a864886f70d01010a 3034 a00f 300d 0609608648016503040201 0500
             a11c 301a 06092a864886f70d010108 300d 0609608648016503040201 0500 a203 020114"
        )),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
    // PSS with default (SHA-1) parameters.
    assert!(matches!(
        SignatureScheme::from_algorithm_identifier(&hex("300d06092a864886f70d01010a3000")),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
    for scheme in SignatureScheme::ALL {
        let alg = scheme.algorithm_identifier();
        for cut in 0..alg.len() {
            assert!(SignatureScheme::from_algorithm_identifier(&alg[..cut]).is_err());
        }
    }
}

#[test]
fn truncated_auth_data_is_an_error_never_a_panic() {
    let key = ec_key(&sig::ECDSA_P256_SHA256_ASN1_SIGNING);
    let auth = rfc7427_auth(&key, SignatureScheme::EcdsaSha256, OCTETS);
    for cut in 0..auth.data.len() {
        let short = Authentication {
            method: auth.method,
            data: auth.data[..cut].to_vec(),
        };
        assert!(verify_signature_auth(key.public_key(), &short, OCTETS).is_err());
    }
    // A length byte pointing past the end.
    assert!(matches!(
        split_auth_data(AuthMethod::DIGITAL_SIGNATURE, &[200, 0x30, 0x00]),
        Err(AuthError::MalformedAuth(_))
    ));
    assert!(matches!(
        split_auth_data(AuthMethod::SHARED_KEY_MIC, &[1, 2, 3]),
        Err(AuthError::UnexpectedMethod(2))
    ));
}

#[test]
fn hash_negotiation_picks_what_the_peer_supports() {
    use HashAlgorithm as H;
    use SignatureScheme as S;
    let strongswan = [H::SHA2_256, H::SHA2_384, H::SHA2_512, H::IDENTITY];
    let cases = [
        (
            KeyKind::Rsa,
            RsaPadding::Pkcs1,
            &strongswan[..],
            Some(S::RsaPkcs1Sha256),
        ),
        (
            KeyKind::Rsa,
            RsaPadding::Pss,
            &strongswan[..],
            Some(S::RsaPssSha256),
        ),
        (
            KeyKind::Rsa,
            RsaPadding::Pkcs1,
            &[H::SHA2_512][..],
            Some(S::RsaPkcs1Sha512),
        ),
        (KeyKind::Rsa, RsaPadding::Pkcs1, &[H::SHA1][..], None),
        (
            KeyKind::EcdsaP256,
            RsaPadding::Pkcs1,
            &strongswan[..],
            Some(S::EcdsaSha256),
        ),
        (
            KeyKind::EcdsaP384,
            RsaPadding::Pkcs1,
            &strongswan[..],
            Some(S::EcdsaSha384),
        ),
        (
            KeyKind::EcdsaP384,
            RsaPadding::Pkcs1,
            &[H::SHA2_256][..],
            None,
        ),
        (
            KeyKind::EcdsaP521,
            RsaPadding::Pkcs1,
            &strongswan[..],
            Some(S::EcdsaSha512),
        ),
        (
            KeyKind::Ed25519,
            RsaPadding::Pkcs1,
            &strongswan[..],
            Some(S::Ed25519),
        ),
        (
            KeyKind::Ed25519,
            RsaPadding::Pkcs1,
            &[H::SHA2_256][..],
            None,
        ),
        (KeyKind::Rsa, RsaPadding::Pkcs1, &[][..], None),
    ];
    for (kind, padding, peer, expected) in cases {
        assert_eq!(
            kind.choose_scheme(peer, padding),
            expected,
            "{kind} {peer:?}"
        );
    }
}

#[test]
fn psk_auth_is_the_rfc_7296_construction() {
    let psk = Secret::from_slice(b"correct horse battery staple");
    for prf in [Prf::HmacSha256, Prf::HmacSha384, Prf::HmacSha512] {
        let alg = match prf {
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
        };
        let inner = hmac::sign(&hmac::Key::new(alg, psk.expose()), b"Key Pad for IKEv2");
        let expected = hmac::sign(&hmac::Key::new(alg, inner.as_ref()), OCTETS);
        assert_eq!(psk_auth_data(prf, &psk, OCTETS), expected.as_ref());
        let auth = psk_authentication(prf, &psk, OCTETS);
        assert_eq!(auth.method, AuthMethod::SHARED_KEY_MIC);
        verify_psk_auth(prf, &psk, OCTETS, &auth).unwrap();
        assert_eq!(
            verify_psk_auth(prf, &Secret::from_slice(b"wrong"), OCTETS, &auth),
            Err(AuthError::BadSharedKeyMic)
        );
        assert_eq!(
            verify_psk_auth(prf, &psk, b"tampered", &auth),
            Err(AuthError::BadSharedKeyMic)
        );
        let mut short = auth.clone();
        short.data.pop();
        assert_eq!(
            verify_psk_auth(prf, &psk, OCTETS, &short),
            Err(AuthError::BadSharedKeyMic)
        );
    }
}

#[test]
fn private_key_debug_is_redacted() {
    let key = rsa_key();
    let s = format!("{key:?}");
    assert_eq!(s, "PrivateKey(RSA, redacted)");
}
