//! Credentials made by strongSwan's `pki` tool and signatures made by OpenSSL, checked with
//! roamgate's auth module: key formats, chain validation, identities bound to certificates,
//! CERTREQ key hashes, and end-to-end peer authentication.
//!
//! Needs `pki` (Debian package strongswan-pki) and `openssl`; fails with the reason when either
//! is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use roamgate_control::auth::{
    AuthError, AuthScheme, Certificate, Credential, DistinguishedName, Identity, PrivateKey,
    RsaPadding, SUPPORTED_HASHES, SignatureScheme, SubjectAltName, TrustStore, authenticate_peer,
    rfc7427_auth_data, verify_signature_auth,
};
use roamgate_control::wire::payload::{Authentication, CertificateRequest};
use roamgate_control::wire::{AuthMethod, CertEncoding};

const OCTETS: &[u8] = b"IKE_SA_INIT request | Nr | prf(SK_pi, IDi')";

fn run(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): install it (`pki` comes with the Debian package \
                 strongswan-pki, `openssl` with openssl)"
            )
        });
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pki_to(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
    let bytes = run(dir, "pki", args);
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    path
}

struct Ca {
    key: PathBuf,
    cert: PathBuf,
}

fn make_ca(dir: &Path, name: &str) -> Ca {
    let key = pki_to(
        dir,
        &format!("{name}.key"),
        &[
            "--gen",
            "--type",
            "ecdsa",
            "--size",
            "384",
            "--outform",
            "pem",
        ],
    );
    let dn = format!("C=CH, O=roamgate, CN={name}");
    let cert = pki_to(
        dir,
        &format!("{name}.crt"),
        &[
            "--self",
            "--ca",
            "--lifetime",
            "3650",
            "--in",
            key.to_str().unwrap(),
            "--type",
            "ecdsa",
            "--dn",
            &dn,
            "--outform",
            "pem",
        ],
    );
    Ca { key, cert }
}

/// Generates a key of `keygen` (pki --gen arguments) and a certificate for `cn` issued by `ca`
/// with SubjectAltNames `cn`, `addr` and `email`.
fn make_ee(
    dir: &Path,
    ca: &Ca,
    name: &str,
    keygen: &[&str],
    cn: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let mut args = vec!["--gen"];
    args.extend_from_slice(keygen);
    args.extend_from_slice(&["--outform", "pem"]);
    let key = pki_to(dir, &format!("{name}.key"), &args);
    let dn = format!("C=CH, O=roamgate, CN={cn}");
    let mut args = vec![
        "--issue",
        "--cacert",
        ca.cert.to_str().unwrap(),
        "--cakey",
        ca.key.to_str().unwrap(),
        "--type",
        "priv",
        "--in",
        key.to_str().unwrap(),
        "--dn",
        &dn,
        "--san",
        cn,
        "--outform",
        "pem",
    ];
    args.extend_from_slice(extra);
    let cert = pki_to(dir, &format!("{name}.crt"), &args);
    (key, cert)
}

fn trust(ca: &Ca) -> TrustStore {
    TrustStore::new(Certificate::load(&ca.cert).unwrap()).unwrap()
}

const KEY_TYPES: [(&str, &[&str]); 4] = [
    ("rsa", &["--type", "rsa", "--size", "2048"]),
    ("p256", &["--type", "ecdsa", "--size", "256"]),
    ("p384", &["--type", "ecdsa", "--size", "384"]),
    ("ed25519", &["--type", "ed25519"]),
];

#[test]
fn pki_keys_and_certificates_authenticate_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = make_ca(d, "rootca");
    let store = trust(&ca);
    for (name, keygen) in KEY_TYPES {
        let cn = format!("{name}.roamgate.test");
        let (key, cert) = make_ee(
            d,
            &ca,
            name,
            keygen,
            &cn,
            &["--san", "198.18.1.1", "--san", "gw@roamgate.test"],
        );
        let cred = Credential::load(&key, &[&cert]).unwrap_or_else(|e| panic!("{name}: {e}"));
        // After the certificate was issued: pki starts its validity at the issuing time.
        let now = SystemTime::now();
        let c = cred.certificate();
        assert_eq!(
            c.subject().to_string(),
            format!("C=CH, O=roamgate, CN={cn}")
        );
        assert_eq!(
            c.subject_alt_names(),
            [
                SubjectAltName::Dns(cn.clone()),
                SubjectAltName::Ip("198.18.1.1".parse().unwrap()),
                SubjectAltName::Email("gw@roamgate.test".into()),
            ]
        );
        store
            .verify_chain(c.der(), &[], now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let auth = cred.sign(Some(SUPPORTED_HASHES), OCTETS).unwrap();
        assert_eq!(auth.method, AuthMethod::DIGITAL_SIGNATURE);
        let certs = cred.cert_payloads(&[]);
        for (sent, configured) in [
            (Identity::Fqdn(cn.clone()), Identity::Any),
            (
                Identity::Fqdn(cn.clone()),
                Identity::parse("*.roamgate.test").unwrap(),
            ),
            (
                cred.default_identity(),
                Identity::parse("C=CH, O=roamgate, CN=*").unwrap(),
            ),
            (
                Identity::parse("198.18.1.1").unwrap(),
                Identity::parse("198.18.1.1").unwrap(),
            ),
            (
                Identity::parse("gw@roamgate.test").unwrap(),
                Identity::parse("*@roamgate.test").unwrap(),
            ),
        ] {
            let peer = authenticate_peer(
                &store,
                &configured,
                &sent.to_wire().unwrap(),
                &certs,
                &auth,
                OCTETS,
                now,
            )
            .unwrap_or_else(|e| panic!("{name} {sent}: {e}"));
            assert_eq!(peer.identity, sent);
        }
        // Tampered octets.
        assert!(matches!(
            authenticate_peer(
                &store,
                &Identity::Any,
                &Identity::Fqdn(cn.clone()).to_wire().unwrap(),
                &certs,
                &auth,
                b"x",
                now
            ),
            Err(AuthError::BadSignature(_))
        ));
        // The configured identity differs.
        assert!(matches!(
            authenticate_peer(
                &store,
                &Identity::parse("other.roamgate.test").unwrap(),
                &Identity::Fqdn(cn.clone()).to_wire().unwrap(),
                &certs,
                &auth,
                OCTETS,
                now
            ),
            Err(AuthError::IdMismatch { .. })
        ));
        // The peer claims an identity its certificate does not carry.
        assert!(matches!(
            authenticate_peer(
                &store,
                &Identity::Any,
                &Identity::Fqdn("evil.roamgate.test".into())
                    .to_wire()
                    .unwrap(),
                &certs,
                &auth,
                OCTETS,
                now
            ),
            Err(AuthError::IdNotInCertificate(_))
        ));
        // No certificate at all.
        assert_eq!(
            authenticate_peer(
                &store,
                &Identity::Any,
                &Identity::Fqdn(cn.clone()).to_wire().unwrap(),
                &[],
                &auth,
                OCTETS,
                now
            )
            .unwrap_err(),
            AuthError::MissingCertificate
        );
    }
}

#[test]
fn wrong_ca_expired_and_not_yet_valid_fail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = make_ca(d, "rootca");
    let other = make_ca(d, "otherca");
    let (_, cert) = make_ee(
        d,
        &ca,
        "gw",
        &["--type", "ecdsa", "--size", "256"],
        "gw.roamgate.test",
        &[],
    );
    let ee = Certificate::load(&cert).unwrap().remove(0);
    let now = SystemTime::now();
    assert!(matches!(
        trust(&other).verify_chain(ee.der(), &[], now),
        Err(AuthError::UntrustedChain(_))
    ));
    assert!(matches!(
        TrustStore::default().verify_chain(ee.der(), &[], now),
        Err(AuthError::UntrustedChain(_))
    ));
    let after = SystemTime::UNIX_EPOCH + Duration::from_secs(ee.not_after_unix() as u64 + 86_400);
    assert_eq!(
        trust(&ca).verify_chain(ee.der(), &[], after).unwrap_err(),
        AuthError::Expired
    );
    let before = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800); // 2000-01-01
    assert_eq!(
        trust(&ca).verify_chain(ee.der(), &[], before).unwrap_err(),
        AuthError::NotYetValid
    );
    // A certificate byte flipped inside its signed part.
    let mut forged = ee.der().to_vec();
    let i = forged.len() / 2;
    forged[i] ^= 1;
    assert!(trust(&ca).verify_chain(&forged, &[], now).is_err());
}

#[test]
fn intermediate_chains_and_certreq_selection() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = make_ca(d, "rootca");
    let ikey = pki_to(
        d,
        "inter.key",
        &[
            "--gen",
            "--type",
            "ecdsa",
            "--size",
            "256",
            "--outform",
            "pem",
        ],
    );
    let icert = pki_to(
        d,
        "inter.crt",
        &[
            "--issue",
            "--ca",
            "--cacert",
            root.cert.to_str().unwrap(),
            "--cakey",
            root.key.to_str().unwrap(),
            "--type",
            "priv",
            "--in",
            ikey.to_str().unwrap(),
            "--dn",
            "C=CH, O=roamgate, CN=Intermediate",
            "--outform",
            "pem",
        ],
    );
    let inter = Ca {
        key: ikey,
        cert: icert.clone(),
    };
    let (key, cert) = make_ee(
        d,
        &inter,
        "gw",
        &["--type", "rsa", "--size", "2048"],
        "gw.roamgate.test",
        &[],
    );
    let cred = Credential::load(&key, &[&cert, &icert]).unwrap();
    let store = trust(&root);
    let now = SystemTime::now();
    let chain = cred.chain();
    assert_eq!(chain.len(), 2);
    store
        .verify_chain(chain[0].der(), &[chain[1].der()], now)
        .unwrap();
    assert!(matches!(
        store.verify_chain(chain[0].der(), &[], now),
        Err(AuthError::UntrustedChain(_))
    ));

    // CERTREQ naming the root: send the intermediate too; naming the intermediate: only the
    // end-entity certificate.
    let req = |c: &Certificate| CertificateRequest {
        encoding: CertEncoding::X509_SIGNATURE,
        authorities: c.spki_sha1().to_vec(),
    };
    let root_cert = Certificate::load(&root.cert).unwrap().remove(0);
    assert_eq!(cred.cert_payloads(&[req(&root_cert)]).len(), 2);
    assert_eq!(cred.cert_payloads(&[req(&chain[1])]).len(), 1);
    assert_eq!(
        cred.cert_payloads(&[req(&chain[1])])[0].data,
        chain[0].der()
    );

    // The end-to-end check with the intermediate carried in CERT payloads.
    let auth = cred.sign(Some(SUPPORTED_HASHES), OCTETS).unwrap();
    authenticate_peer(
        &store,
        &Identity::parse("C=CH, O=roamgate, CN=gw.roamgate.test").unwrap(),
        &cred.default_identity().to_wire().unwrap(),
        &cred.cert_payloads(&[req(&root_cert)]),
        &auth,
        OCTETS,
        now,
    )
    .unwrap();
}

fn pki_keyids(dir: &Path, cert: &Path) -> (Vec<u8>, Vec<u8>) {
    let out = String::from_utf8(run(
        dir,
        "pki",
        &["--keyid", "--type", "x509", "--in", cert.to_str().unwrap()],
    ))
    .unwrap();
    let mut hashes = out.lines().filter(|l| !l.contains('(')).map(|l| {
        l.trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect::<Vec<u8>>()
    });
    (hashes.next().unwrap(), hashes.next().unwrap())
}

#[test]
fn dn_strings_encode_like_pki() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = pki_to(
        d,
        "k.key",
        &[
            "--gen",
            "--type",
            "ecdsa",
            "--size",
            "256",
            "--outform",
            "pem",
        ],
    );
    for dn in [
        "C=CH, O=roamgate, CN=gw.roamgate.test",
        "C=CH, O=Zürich AG, E=a@b.c, DC=example, OU=x y, CN=gw",
        "CN=rw@roamgate.test",
    ] {
        let cert = pki_to(
            d,
            "c.pem",
            &[
                "--self",
                "--in",
                key.to_str().unwrap(),
                "--type",
                "ecdsa",
                "--dn",
                dn,
                "--outform",
                "pem",
            ],
        );
        let cert = Certificate::load(&cert).unwrap().remove(0);
        let ours = DistinguishedName::parse(dn).unwrap();
        assert_eq!(ours.to_der(), cert.subject().to_der(), "{dn}");
        assert_eq!(&ours, cert.subject());
        assert_eq!(cert.subject().to_string(), dn);
    }
}

#[test]
fn certreq_hash_and_key_id_match_strongswan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = make_ca(d, "rootca");
    let (subjkey, spki_sha1) = pki_keyids(d, &ca.cert);
    let store = trust(&ca);
    let req = store.certificate_request().unwrap();
    assert_eq!(req.encoding, CertEncoding::X509_SIGNATURE);
    assert_eq!(req.authorities, spki_sha1);
    assert!(store.certificates()[0].binds(&Identity::KeyId(subjkey)));
}

#[test]
fn key_formats_from_pki_and_openssl_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = make_ca(d, "rootca");
    for (name, keygen) in KEY_TYPES {
        let (key, cert) = make_ee(d, &ca, name, keygen, "x.roamgate.test", &[]);
        let want = Certificate::load(&cert).unwrap().remove(0);
        // pki's DER output (PKCS#1 / SEC1 / PKCS#8), and PKCS#8 PEM via openssl.
        let mut args = vec!["--gen"];
        args.extend_from_slice(keygen);
        let der_key = run(d, "pki", &args);
        assert!(
            PrivateKey::from_pem_or_der(&der_key).is_ok(),
            "{name}: pki DER key"
        );
        let pkcs8 = run(
            d,
            "openssl",
            &["pkcs8", "-topk8", "-nocrypt", "-in", key.to_str().unwrap()],
        );
        let k = PrivateKey::from_pem_or_der(&pkcs8).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(k.public_key(), want.public_key(), "{name}");
        let encrypted = run(
            d,
            "openssl",
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes256",
                "-passout",
                "pass:secret",
                "-in",
                key.to_str().unwrap(),
            ],
        );
        let err = PrivateKey::from_pem_or_der(&encrypted).unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
    }
    // A key that does not belong to the certificate.
    let (k1, _) = make_ee(
        d,
        &ca,
        "a",
        &["--type", "ecdsa", "--size", "256"],
        "a.roamgate.test",
        &[],
    );
    let (_, c2) = make_ee(
        d,
        &ca,
        "b",
        &["--type", "ecdsa", "--size", "256"],
        "b.roamgate.test",
        &[],
    );
    assert!(matches!(
        Credential::load(&k1, &[&c2]),
        Err(AuthError::KeyMismatch(_))
    ));
    // Garbage.
    assert!(matches!(
        PrivateKey::from_pem_or_der(b"not a key"),
        Err(AuthError::BadKey(_))
    ));
}

#[test]
fn openssl_signatures_verify_and_ours_verify_in_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = make_ca(d, "rootca");
    std::fs::write(d.join("octets"), OCTETS).unwrap();
    use SignatureScheme as S;
    let cases: [(&str, &[&str], S, &[&str]); 6] = [
        (
            "rsa",
            &["--type", "rsa", "--size", "2048"],
            S::RsaPkcs1Sha256,
            &["dgst", "-sha256"],
        ),
        (
            "rsa",
            &["--type", "rsa", "--size", "2048"],
            S::RsaPkcs1Sha512,
            &["dgst", "-sha512"],
        ),
        (
            "rsa",
            &["--type", "rsa", "--size", "2048"],
            S::RsaPssSha256,
            &[
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ],
        ),
        (
            "p256",
            &["--type", "ecdsa", "--size", "256"],
            S::EcdsaSha256,
            &["dgst", "-sha256"],
        ),
        (
            "p384",
            &["--type", "ecdsa", "--size", "384"],
            S::EcdsaSha384,
            &["dgst", "-sha384"],
        ),
        (
            "ed25519",
            &["--type", "ed25519"],
            S::Ed25519,
            &["pkeyutl", "-rawin"],
        ),
    ];
    for (i, (name, keygen, scheme, tool)) in cases.into_iter().enumerate() {
        let (key, cert) = make_ee(
            d,
            &ca,
            &format!("{name}{i}"),
            keygen,
            "x.roamgate.test",
            &[],
        );
        let cred = Credential::load(&key, &[&cert]).unwrap();
        let key_s = key.to_str().unwrap();
        let is_pkeyutl = tool[0] == "pkeyutl";
        // OpenSSL signs, we verify.
        let mut args: Vec<&str> = tool.to_vec();
        if is_pkeyutl {
            args.extend_from_slice(&["-sign", "-inkey", key_s, "-in", "octets", "-out", "sig"]);
        } else {
            args.extend_from_slice(&["-sign", key_s, "-out", "sig", "octets"]);
        }
        run(d, "openssl", &args);
        let signature = std::fs::read(d.join("sig")).unwrap();
        let auth = Authentication {
            method: AuthMethod::DIGITAL_SIGNATURE,
            data: rfc7427_auth_data(scheme, &signature),
        };
        assert_eq!(
            verify_signature_auth(cred.certificate().public_key(), &auth, OCTETS).unwrap(),
            AuthScheme::Rfc7427(scheme),
            "{name} {scheme}"
        );
        // We sign, OpenSSL verifies.
        let ours = cred.key().sign(scheme, OCTETS).unwrap();
        std::fs::write(d.join("oursig"), ours).unwrap();
        let pubkey = run(d, "openssl", &["pkey", "-in", key_s, "-pubout"]);
        std::fs::write(d.join("pub.pem"), pubkey).unwrap();
        let mut args: Vec<&str> = tool.to_vec();
        if is_pkeyutl {
            args.extend_from_slice(&[
                "-verify", "-pubin", "-inkey", "pub.pem", "-in", "octets", "-sigfile", "oursig",
            ]);
        } else {
            args.extend_from_slice(&["-verify", "pub.pem", "-signature", "oursig", "octets"]);
        }
        run(d, "openssl", &args);
    }
    // strongSwan's default for RSA with RFC 7427 is PKCS#1 v1.5; PSS on request.
    let (key, cert) = make_ee(
        d,
        &ca,
        "rsadefault",
        &["--type", "rsa", "--size", "2048"],
        "x.roamgate.test",
        &[],
    );
    let cred = Credential::load(&key, &[&cert]).unwrap();
    let auth = cred.sign(Some(SUPPORTED_HASHES), OCTETS).unwrap();
    assert_eq!(
        verify_signature_auth(cred.certificate().public_key(), &auth, OCTETS).unwrap(),
        AuthScheme::Rfc7427(S::RsaPkcs1Sha256)
    );
    let cred = cred.with_rsa_padding(RsaPadding::Pss);
    let auth = cred.sign(Some(SUPPORTED_HASHES), OCTETS).unwrap();
    assert_eq!(
        verify_signature_auth(cred.certificate().public_key(), &auth, OCTETS).unwrap(),
        AuthScheme::Rfc7427(S::RsaPssSha256)
    );
    // The classic method 1 (RSASSA-PKCS1-v1_5 with SHA-1, no AlgorithmIdentifier), signed by
    // OpenSSL.
    run(
        d,
        "openssl",
        &[
            "dgst",
            "-sha1",
            "-sign",
            key.to_str().unwrap(),
            "-out",
            "sha1sig",
            "octets",
        ],
    );
    let method1 = Authentication {
        method: AuthMethod::RSA_DIGITAL_SIGNATURE,
        data: std::fs::read(d.join("sha1sig")).unwrap(),
    };
    assert_eq!(
        verify_signature_auth(cred.certificate().public_key(), &method1, OCTETS).unwrap(),
        AuthScheme::RsaSha1
    );
    assert!(verify_signature_auth(cred.certificate().public_key(), &method1, b"other").is_err());
    // Without SIGNATURE_HASH_ALGORITHMS an RSA key cannot sign (no RSA/SHA-1 signing).
    assert!(matches!(
        cred.sign(None, OCTETS),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
}
