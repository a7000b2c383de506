//! Identities: strongSwan's string syntax, the IDi/IDr wire form, and matching tables.

use std::net::{Ipv4Addr, Ipv6Addr};

use roamgate_control::auth::{DistinguishedName, IdMatch, Identity};
use roamgate_control::wire::IdType;
use roamgate_control::wire::payload::Identification;

fn id(s: &str) -> Identity {
    Identity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn strings_parse_like_strongswan() {
    let dn = |s: &str| Identity::Dn(DistinguishedName::parse(s).unwrap());
    let table = [
        (
            "gw.roamgate.test",
            Identity::Fqdn("gw.roamgate.test".into()),
        ),
        ("user@example", Identity::Rfc822("user@example".into())),
        ("192.0.2.1", Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1))),
        (
            "2001:db8::1",
            Identity::Ipv6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
        ),
        ("C=CH, O=x, CN=y", dn("C=CH, O=x, CN=y")),
        ("%any", Identity::Any),
        ("%any6", Identity::Any),
        ("0.0.0.0", Identity::Any),
        ("@gw", Identity::Fqdn("gw".into())),
        ("@@gw.example", Identity::Rfc822("gw.example".into())),
        ("@#0a0b", Identity::KeyId(vec![10, 11])),
        ("fqdn:user@example", Identity::Fqdn("user@example".into())),
        ("email:x", Identity::Rfc822("x".into())),
        ("ipv4:10.0.0.1", Identity::Ipv4(Ipv4Addr::new(10, 0, 0, 1))),
        ("keyid:#0102", Identity::KeyId(vec![1, 2])),
    ];
    for (s, want) in table {
        assert_eq!(id(s), want, "{s}");
    }
    for bad in ["", "ipv4:not-an-ip", "@#abc", "C=CH, XX=y", "keyid:zz"] {
        assert!(Identity::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn dn_string_encodes_like_strongswan_atodn() {
    // DER of "C=CH, O=x, CN=y" with PrintableStrings, one attribute per RDN, as `pki` writes.
    let der = DistinguishedName::parse("C=CH, O=x, CN=y")
        .unwrap()
        .to_der();
    let expected: Vec<u8> = [
        &[0x30, 0x25][..],
        &[
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'C', b'H',
        ],
        &[
            0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x13, 0x01, b'x',
        ],
        &[
            0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x01, b'y',
        ],
    ]
    .concat();
    assert_eq!(der, expected);
    let email = DistinguishedName::parse("E=a@b").unwrap().to_der();
    assert_eq!(email[email.len() - 5], 0x16, "emailAddress is an IA5String");
    let utf8 = DistinguishedName::parse("CN=Zürich").unwrap().to_der();
    assert!(
        utf8.windows(2).any(|w| w == [0x0c, 7]),
        "non-printable text is a UTF8String"
    );
}

#[test]
fn wire_round_trip_and_malformed_payloads() {
    for s in [
        "gw.roamgate.test",
        "rw@roamgate.test",
        "198.18.1.1",
        "fd00::1",
        "C=CH, O=roamgate, CN=gw",
        "@#0102",
    ] {
        let i = id(s);
        let wire = i.to_wire().unwrap();
        assert_eq!(Identity::from_wire(&wire).unwrap(), i, "{s}");
    }
    assert_eq!(
        id("rw@roamgate.test").to_wire().unwrap().ty,
        IdType::RFC822_ADDR
    );
    assert!(Identity::Any.to_wire().is_none());
    let bad = [
        Identification {
            ty: IdType::IPV4_ADDR,
            data: vec![1, 2, 3],
        },
        Identification {
            ty: IdType::IPV6_ADDR,
            data: vec![0; 15],
        },
        Identification {
            ty: IdType::FQDN,
            data: vec![],
        },
        Identification {
            ty: IdType::FQDN,
            data: b"a\0b".to_vec(),
        },
        Identification {
            ty: IdType::RFC822_ADDR,
            data: vec![0xff, 0xfe],
        },
        Identification {
            ty: IdType::DER_ASN1_DN,
            data: vec![0x30, 0x05, 0x31],
        },
        Identification {
            ty: IdType::KEY_ID,
            data: vec![],
        },
        Identification {
            ty: IdType::FC_NAME,
            data: vec![1],
        },
    ];
    for b in bad {
        assert!(Identity::from_wire(&b).is_err(), "{b:?}");
    }
}

#[test]
fn matching_table() {
    use IdMatch::*;
    let table: &[(&str, &str, Option<IdMatch>)] = &[
        ("%any", "gw.roamgate.test", Some(Any)),
        ("%any", "C=CH, CN=x", Some(Any)),
        ("gw.roamgate.test", "gw.roamgate.test", Some(Exact)),
        ("gw.roamgate.test", "GW.Roamgate.TEST", Some(Exact)),
        ("gw.roamgate.test", "gw2.roamgate.test", None),
        ("*.roamgate.test", "gw.roamgate.test", Some(Wildcard)),
        ("*.roamgate.test", "roamgate.test", None),
        ("*.roamgate.test", "gw.roamgate.test.evil", None),
        ("*@roamgate.test", "rw@roamgate.test", Some(Wildcard)),
        ("*@roamgate.test", "rw@evil.test", None),
        ("rw@roamgate.test", "rw@roamgate.test", Some(Exact)),
        // An FQDN never matches an email address of the same text.
        ("@@gw.roamgate.test", "gw.roamgate.test", None),
        ("192.0.2.1", "192.0.2.1", Some(Exact)),
        ("192.0.2.1", "192.0.2.2", None),
        ("192.0.2.1", "gw.roamgate.test", None),
        (
            "C=CH, O=roamgate, CN=gw",
            "C=CH, O=roamgate, CN=gw",
            Some(Exact),
        ),
        (
            "C=CH, O=roamgate, CN=gw",
            "c=ch, o=ROAMGATE, cn=GW",
            Some(Exact),
        ),
        (
            "C=CH, O=roamgate, CN=*",
            "C=CH, O=roamgate, CN=gw",
            Some(Wildcard),
        ),
        ("C=CH, O=roamgate, CN=*", "C=CH, O=other, CN=gw", None),
        ("C=CH, O=roamgate, CN=gw", "C=CH, O=roamgate", None),
        ("C=CH, O=roamgate, CN=gw", "O=roamgate, C=CH, CN=gw", None),
        ("C=CH, O=roamgate", "C=CH, O=roamgate, CN=gw", None),
    ];
    for (pattern, peer, want) in table {
        assert_eq!(id(pattern).matches(&id(peer)), *want, "{pattern} vs {peer}");
    }
    assert!(Exact > Wildcard && Wildcard > Any);
}

#[test]
fn display_is_parseable() {
    for s in [
        "gw.roamgate.test",
        "rw@roamgate.test",
        "198.18.1.1",
        "C=CH, O=roamgate, CN=gw",
        "@#0aff",
        "%any",
    ] {
        assert_eq!(id(&id(s).to_string()), id(s), "{s}");
    }
}
