//! Bad input: lengths that lie, forbidden values, unknown critical payloads, caps. Each is
//! rejected with the error naming the structure, and maps to the Notify the peer should see.

use roamgate_control::wire::codec::{MAX_ATTRIBUTES, MAX_PAYLOADS};
use roamgate_control::wire::header::Flags;
use roamgate_control::wire::payload::{
    Delete, Encrypted, EncryptedFragment, Nonce, Notify, Payload, Proposal, SecurityAssociation,
    Transform, decode_chain,
};
use roamgate_control::wire::{
    DecodeError, DhGroup, EncodeError, EncrId, ExchangeType, Message, NotifyType, PayloadType,
    ProtocolId, Structure,
};

fn message(payloads: Vec<Payload>) -> Message {
    Message {
        spi_i: 1,
        spi_r: 2,
        exchange_type: ExchangeType::INFORMATIONAL,
        flags: Flags::new(true, false),
        message_id: 3,
        minor_version: 0,
        payloads,
    }
}

fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn set_len(b: &mut [u8]) {
    let len = b.len() as u32;
    b[24..28].copy_from_slice(&len.to_be_bytes());
}

fn nonce() -> Payload {
    Payload::Nonce(Nonce { data: vec![7; 32] })
}

/// Header (28) + one payload whose generic header is at 28.
const FIRST: usize = 28;

#[test]
fn header_lengths_that_lie() {
    let good = message(vec![nonce()]).encode().unwrap();
    for claimed in [
        0u32,
        27,
        good.len() as u32 - 1,
        good.len() as u32 + 1,
        u32::MAX,
    ] {
        let mut b = good.clone();
        b[24..28].copy_from_slice(&claimed.to_be_bytes());
        let err = Message::decode(&b).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::BadLength(Structure::Header)
                    | DecodeError::Truncated(_)
                    | DecodeError::BadLength(_)
            ),
            "{claimed}: {err:?}"
        );
    }
    // A datagram longer than the message it carries.
    let mut b = good.clone();
    b.push(0);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::BadLength(Structure::Header))
    );
}

#[test]
fn payload_lengths_that_lie() {
    let good = message(vec![
        nonce(),
        Payload::Notify(Notify::new(NotifyType::MOBIKE_SUPPORTED, vec![])),
    ])
    .encode()
    .unwrap();
    let nonce_len = 4 + 32;
    for (claimed, expected) in [
        (0u16, DecodeError::BadLength(Structure::PayloadHeader)),
        (3, DecodeError::BadLength(Structure::PayloadHeader)),
        // Too short: the Nonce is cut (still valid, 16 octets), the rest is not a payload header.
        (4 + 16, DecodeError::BadLength(Structure::PayloadHeader)),
        // Too long: swallows the Notify's header.
        (nonce_len + 4, DecodeError::InvalidValue(Structure::Notify)),
        (
            nonce_len + 9,
            DecodeError::BadLength(Structure::PayloadHeader),
        ),
        (u16::MAX, DecodeError::BadLength(Structure::PayloadHeader)),
    ] {
        let mut b = good.clone();
        set_u16(&mut b, FIRST + 2, claimed);
        let err = Message::decode(&b).unwrap_err();
        assert_eq!(
            err.notify(),
            Some(NotifyType::INVALID_SYNTAX),
            "{claimed}: {err:?}"
        );
        if claimed != nonce_len + 4 {
            assert_eq!(err, expected, "{claimed}");
        } else {
            assert!(matches!(
                err,
                DecodeError::BadLength(_) | DecodeError::InvalidValue(_)
            ));
        }
    }
}

#[test]
fn trailing_bytes_after_the_last_payload() {
    let mut b = message(vec![nonce()]).encode().unwrap();
    b.extend_from_slice(&[0, 0, 0, 4]);
    set_len(&mut b);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::TrailingBytes(Structure::PayloadChain))
    );
}

#[test]
fn bytes_after_an_sk_payload() {
    let sk = Payload::Encrypted(Encrypted {
        first_inner: PayloadType::IDI,
        data: vec![1; 48],
    });
    let mut b = message(vec![sk]).encode().unwrap();
    // Shrink the SK payload by 4: now 4 bytes follow it.
    let l = u16::from_be_bytes([b[FIRST + 2], b[FIRST + 3]]);
    set_u16(&mut b, FIRST + 2, l - 4);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::TrailingBytes(Structure::PayloadChain))
    );
}

#[test]
fn unknown_critical_payload_names_its_type() {
    let m = message(vec![
        nonce(),
        Payload::Unknown {
            ty: PayloadType(200),
            body: vec![1, 2],
        },
    ]);
    let mut b = m.encode().unwrap();
    let second = FIRST + 4 + 32;
    assert_eq!(Message::decode(&b).unwrap(), m);
    b[second + 1] = 0x80;
    let err = Message::decode(&b).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnsupportedCriticalPayload(PayloadType(200))
    );
    assert_eq!(err.notify(), Some(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD));
    let answer = Notify::unsupported_critical_payload(PayloadType(200));
    assert_eq!(answer.data, [200]);
    assert_eq!(
        answer.as_unsupported_critical_payload(),
        Some(PayloadType(200))
    );
    // The critical bit on a payload we understand is ignored; the reserved bits too.
    b[FIRST + 1] = 0xff;
    b[second + 1] = 0x7f;
    assert_eq!(Message::decode(&b).unwrap(), m);
}

#[test]
fn recognised_but_undecoded_types_follow_the_critical_bit() {
    for ty in [
        PayloadType::GSPM,
        PayloadType::IDG,
        PayloadType::GSA,
        PayloadType::KD,
        PayloadType::PS,
    ] {
        let m = message(vec![Payload::Unknown { ty, body: vec![] }]);
        let mut b = m.encode().unwrap();
        assert_eq!(Message::decode(&b).unwrap(), m);
        b[FIRST + 1] = 0x80;
        assert_eq!(
            Message::decode(&b),
            Err(DecodeError::UnsupportedCriticalPayload(ty))
        );
    }
}

#[test]
fn major_versions() {
    let mut b = message(vec![]).encode().unwrap();
    b[17] = 0x10;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::InvalidMajorVersion(1))
    );
    assert_eq!(Message::decode(&b).unwrap_err().notify(), None);
    b[17] = 0x30;
    assert_eq!(
        Message::decode(&b).unwrap_err().notify(),
        Some(NotifyType::INVALID_MAJOR_VERSION)
    );
    // The minor version is kept, not checked.
    b[17] = 0x21;
    assert_eq!(Message::decode(&b).unwrap().minor_version, 1);
}

fn sa_message() -> (Message, Vec<u8>) {
    let sa = SecurityAssociation {
        proposals: vec![
            Proposal {
                number: 1,
                protocol: ProtocolId::IKE,
                spi: vec![],
                transforms: vec![
                    Transform::encr(EncrId::AES_GCM_16, Some(256)),
                    Transform::dh(DhGroup::CURVE25519),
                ],
            },
            Proposal {
                number: 2,
                protocol: ProtocolId::IKE,
                spi: vec![],
                transforms: vec![Transform::dh(DhGroup::ECP_256)],
            },
        ],
    };
    let m = message(vec![Payload::SecurityAssociation(sa)]);
    let b = m.encode().unwrap();
    (m, b)
}

// Offsets inside the SA message: SA body at 32; proposal 1 header 32..40; its first transform
// at 40 (12 octets with the key length), its second at 52 (8); proposal 2 at 60.
const P1: usize = 32;
const T1: usize = 40;
const T2: usize = 52;
const P2: usize = 60;

#[test]
fn sa_layout_is_as_expected() {
    let (m, b) = sa_message();
    assert_eq!(Message::decode(&b).unwrap(), m);
    assert_eq!(b[P1], 2, "more proposals");
    assert_eq!(b[P2], 0, "last proposal");
    assert_eq!(b[T1], 3, "more transforms");
    assert_eq!(b[T2], 0, "last transform");
    assert_eq!(&b[T1 + 8..T1 + 12], [0x80, 14, 1, 0], "key length 256, TV");
}

/// A change to an encoded message.
type Mutation = Box<dyn Fn(&mut [u8])>;

#[test]
fn sa_substructure_errors() {
    let (_, good) = sa_message();
    let cases: Vec<(Mutation, DecodeError)> = vec![
        (
            Box::new(|b| b[P1] = 1),
            DecodeError::InvalidValue(Structure::Proposal),
        ),
        (
            Box::new(|b| b[P2] = 2),
            DecodeError::Truncated(Structure::SecurityAssociation),
        ),
        (
            Box::new(|b| b[P1] = 0),
            DecodeError::TrailingBytes(Structure::SecurityAssociation),
        ),
        (
            Box::new(|b| b[T1] = 0),
            DecodeError::InvalidValue(Structure::Transform),
        ),
        (
            Box::new(|b| b[T2] = 3),
            DecodeError::InvalidValue(Structure::Transform),
        ),
        (
            Box::new(|b| set_u16(b, P1 + 2, 7)),
            DecodeError::BadLength(Structure::Proposal),
        ),
        (
            Box::new(|b| set_u16(b, P1 + 2, 200)),
            DecodeError::BadLength(Structure::Proposal),
        ),
        (
            Box::new(|b| set_u16(b, T1 + 2, 7)),
            DecodeError::BadLength(Structure::Transform),
        ),
        (
            Box::new(|b| set_u16(b, T1 + 2, 10)),
            DecodeError::Truncated(Structure::Transform),
        ),
        (
            Box::new(|b| set_u16(b, T1 + 2, 30)),
            DecodeError::BadLength(Structure::Transform),
        ),
        // Num Transforms says 3 where there are 2.
        (
            Box::new(|b| b[P1 + 7] = 3),
            DecodeError::InvalidValue(Structure::Transform),
        ),
        // Num Transforms says 1 where there are 2.
        (
            Box::new(|b| b[P1 + 7] = 1),
            DecodeError::InvalidValue(Structure::Transform),
        ),
        // SPI Size runs into the transforms.
        (
            Box::new(|b| b[P1 + 6] = 4),
            DecodeError::InvalidValue(Structure::Transform),
        ),
        // A TLV attribute whose length runs past the transform.
        (
            Box::new(|b| b[T1 + 8] = 0),
            DecodeError::BadLength(Structure::Attribute),
        ),
    ];
    for (i, (mutate, expected)) in cases.into_iter().enumerate() {
        let mut b = good.clone();
        mutate(&mut b);
        let err = Message::decode(&b).unwrap_err();
        assert_eq!(err, expected, "case {i}");
        assert_eq!(err.notify(), Some(NotifyType::INVALID_SYNTAX));
    }
    // An empty SA payload.
    let mut b = good[..P1].to_vec();
    set_u16(&mut b, FIRST + 2, 4);
    set_len(&mut b);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::Truncated(Structure::SecurityAssociation))
    );
}

#[test]
fn attribute_cap() {
    let mut t = Transform::encr(EncrId::AES_CBC, Some(128));
    t.attributes = vec![t.attributes[0].clone(); MAX_ATTRIBUTES + 1];
    let sa = SecurityAssociation {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::IKE,
            spi: vec![],
            transforms: vec![t],
        }],
    };
    let m = message(vec![Payload::SecurityAssociation(sa)]);
    assert_eq!(m.encode(), Err(EncodeError::TooLong(Structure::Transform)));
}

#[test]
fn payload_count_cap() {
    let n = Payload::Notify(Notify::new(NotifyType::MOBIKE_SUPPORTED, vec![]));
    let ok = message(vec![n.clone(); MAX_PAYLOADS]);
    assert_eq!(Message::decode(&ok.encode().unwrap()).unwrap(), ok);
    assert_eq!(
        message(vec![n.clone(); MAX_PAYLOADS + 1]).encode(),
        Err(EncodeError::TooLong(Structure::PayloadChain))
    );
    // Built by hand past the cap: refused on decode.
    let mut bytes = Vec::new();
    for i in 0..=MAX_PAYLOADS {
        let next = if i == MAX_PAYLOADS { 0 } else { 41 };
        bytes.extend_from_slice(&[next, 0, 0, 8, 0, 0, 0x40, 0x0c]);
    }
    assert_eq!(
        decode_chain(PayloadType::NOTIFY, &bytes),
        Err(DecodeError::TooMany(Structure::PayloadChain))
    );
}

#[test]
fn nonce_lengths() {
    for len in [0, 15, 257, 300] {
        let m = message(vec![Payload::Nonce(Nonce { data: vec![1; len] })]);
        assert_eq!(m.encode(), Err(EncodeError::InvalidValue(Structure::Nonce)));
        // Hand-built.
        let mut b = message(vec![]).encode().unwrap();
        b[16] = 40;
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&((4 + len) as u16).to_be_bytes());
        b.extend(std::iter::repeat_n(1, len));
        set_len(&mut b);
        assert_eq!(
            Message::decode(&b),
            Err(DecodeError::InvalidValue(Structure::Nonce)),
            "{len}"
        );
    }
}

#[test]
fn notify_data_shapes() {
    assert!(Notify::cookie2(&[0; 7]).is_err());
    assert!(Notify::cookie2(&[0; 65]).is_err());
    let c = Notify::cookie2(&[9; 8]).unwrap();
    assert_eq!(c.as_cookie2(), Some(&[9u8; 8][..]));
    for (ty, len) in [
        (NotifyType::ADDITIONAL_IP4_ADDRESS, 16),
        (NotifyType::ADDITIONAL_IP6_ADDRESS, 4),
        (NotifyType::COOKIE2, 65),
        (NotifyType::COOKIE, 0),
        (NotifyType::NAT_DETECTION_SOURCE_IP, 19),
        (NotifyType::SIGNATURE_HASH_ALGORITHMS, 3),
        (NotifyType::INVALID_KE_PAYLOAD, 1),
    ] {
        let n = Notify::new(ty, vec![0; len]);
        assert!(!n.data_is_well_formed(), "{ty}");
        assert_eq!(
            message(vec![Payload::Notify(n)]).encode(),
            Err(EncodeError::InvalidValue(Structure::Notify))
        );
        let mut b = message(vec![]).encode().unwrap();
        b[16] = 41;
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&ty.0.to_be_bytes());
        b.extend(std::iter::repeat_n(0, len));
        set_len(&mut b);
        assert_eq!(
            Message::decode(&b),
            Err(DecodeError::InvalidValue(Structure::Notify)),
            "{ty}"
        );
    }
    let addr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        Notify::additional_address(addr).as_additional_address(),
        Some(addr)
    );
    let ke = Notify::invalid_ke_payload(DhGroup::CURVE25519);
    assert_eq!(ke.as_invalid_ke_payload(), Some(DhGroup::CURVE25519));
    // SPI Size running past the payload.
    let mut b = message(vec![Payload::Notify(Notify::new(
        NotifyType::UPDATE_SA_ADDRESSES,
        vec![],
    ))])
    .encode()
    .unwrap();
    b[FIRST + 5] = 1;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::Truncated(Structure::Notify))
    );
}

#[test]
fn delete_shapes() {
    assert_eq!(
        message(vec![Payload::Delete(Delete {
            protocol: ProtocolId::IKE,
            spis: vec![1]
        })])
        .encode(),
        Err(EncodeError::InvalidValue(Structure::Delete))
    );
    let good = message(vec![Payload::Delete(Delete::esp(&[1, 2]))])
        .encode()
        .unwrap();
    for (at, v, expected) in [
        (FIRST + 5, 8u8, DecodeError::InvalidValue(Structure::Delete)), // SPI size 8 for ESP
        (FIRST + 4, 1, DecodeError::InvalidValue(Structure::Delete)),   // IKE with size 4
        (FIRST + 7, 3, DecodeError::BadLength(Structure::Delete)),      // 3 SPIs in 8 octets
        (FIRST + 7, 1, DecodeError::BadLength(Structure::Delete)),
    ] {
        let mut b = good.clone();
        b[at] = v;
        assert_eq!(Message::decode(&b), Err(expected), "{at}={v}");
    }
}

#[test]
fn traffic_selector_lengths() {
    use roamgate_control::wire::payload::{AddressRange, TrafficSelector, TrafficSelectors};
    let ts = TrafficSelectors {
        selectors: vec![TrafficSelector::Ipv4(AddressRange::any(
            "10.0.0.0".parse().unwrap(),
            "10.0.0.255".parse().unwrap(),
        ))],
    };
    let good = message(vec![Payload::TsInitiator(ts)]).encode().unwrap();
    let sel = FIRST + 8;
    for (claimed, expected) in [
        (0u16, DecodeError::BadLength(Structure::TrafficSelector)),
        (15, DecodeError::BadLength(Structure::TrafficSelector)),
        (17, DecodeError::BadLength(Structure::TrafficSelector)),
    ] {
        let mut b = good.clone();
        set_u16(&mut b, sel + 2, claimed);
        assert_eq!(Message::decode(&b), Err(expected), "{claimed}");
    }
    // An IPv6 type with an IPv4 body.
    let mut b = good.clone();
    b[sel] = 8;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::BadLength(Structure::TrafficSelector))
    );
    // Number of TSs larger than what follows.
    let mut b = good.clone();
    b[FIRST + 4] = 2;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::Truncated(Structure::TrafficSelectors))
    );
    // Smaller.
    let mut b = good.clone();
    b[FIRST + 4] = 0;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::TrailingBytes(Structure::TrafficSelectors))
    );
}

#[test]
fn fragment_numbering() {
    for (number, total) in [(0u16, 1u16), (2, 1), (1, 0), (0, 0)] {
        let f = EncryptedFragment {
            first_inner: PayloadType::NO_NEXT_PAYLOAD,
            number,
            total,
            data: vec![],
        };
        assert_eq!(
            message(vec![Payload::EncryptedFragment(f)]).encode(),
            Err(EncodeError::InvalidValue(Structure::EncryptedFragment))
        );
        let ok = EncryptedFragment {
            first_inner: PayloadType::IDI,
            number: 1,
            total: 1,
            data: vec![1; 20],
        };
        let mut b = message(vec![Payload::EncryptedFragment(ok)])
            .encode()
            .unwrap();
        set_u16(&mut b, FIRST + 4, number);
        set_u16(&mut b, FIRST + 6, total);
        let err = Message::decode(&b).unwrap_err();
        assert_eq!(err, DecodeError::InvalidValue(Structure::EncryptedFragment));
        assert_eq!(err.notify(), None, "invalid fragments are dropped silently");
    }
}

#[test]
fn encoder_refuses_what_the_decoder_would_read_differently() {
    let sk = Payload::Encrypted(Encrypted {
        first_inner: PayloadType::NO_NEXT_PAYLOAD,
        data: vec![],
    });
    assert_eq!(
        message(vec![sk, nonce()]).encode(),
        Err(EncodeError::InvalidValue(Structure::PayloadChain))
    );
    for ty in [
        PayloadType::NO_NEXT_PAYLOAD,
        PayloadType::NONCE,
        PayloadType::SK,
    ] {
        assert_eq!(
            message(vec![Payload::Unknown { ty, body: vec![] }]).encode(),
            Err(EncodeError::InvalidValue(Structure::Unknown))
        );
    }
    assert_eq!(
        message(vec![Payload::SecurityAssociation(SecurityAssociation {
            proposals: vec![]
        })])
        .encode(),
        Err(EncodeError::InvalidValue(Structure::SecurityAssociation))
    );
    let big = Payload::VendorId(roamgate_control::wire::payload::VendorId {
        data: vec![0; 70_000],
    });
    assert_eq!(
        message(vec![big]).encode(),
        Err(EncodeError::TooLong(Structure::VendorId))
    );
}

#[test]
fn the_header_survives_a_bad_chain() {
    let m = message(vec![nonce()]);
    let mut b = m.encode().unwrap();
    b[FIRST + 1] = 0x80;
    b[16] = 222; // an unknown, critical first payload
    let err = Message::decode(&b).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnsupportedCriticalPayload(PayloadType(222))
    );
    let h = Message::decode_header(&b).unwrap();
    assert_eq!((h.spi_i, h.spi_r, h.message_id), (1, 2, 3));
    assert_eq!(h.exchange_type, ExchangeType::INFORMATIONAL);
    assert!(h.flags.initiator() && !h.flags.response());
}
