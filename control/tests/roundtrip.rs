//! Property tests: arbitrary payloads and messages encode, decode to the same value, and
//! re-encode to the same bytes; arbitrary bytes never panic the decoder.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;
use roamgate_control::wire::header::Flags;
use roamgate_control::wire::payload::{
    AddressRange, Attribute, AttributeValue, Authentication, Certificate, CertificateRequest,
    ConfigAttribute, Configuration, Delete, Eap, Encrypted, EncryptedFragment, Identification,
    KeyExchange, Nonce, Notify, Payload, Proposal, SecurityAssociation, TrafficSelector,
    TrafficSelectors, Transform, VendorId, decode_chain, encode_chain_to_vec,
};
use roamgate_control::wire::{
    AttributeType, AuthMethod, CertEncoding, CfgAttrType, CfgType, DhGroup, ExchangeType, IdType,
    Message, NotifyType, PayloadType, ProtocolId, TransformType, TsType,
};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (
        0u16..0x8000,
        prop_oneof![
            any::<u16>().prop_map(AttributeValue::Tv),
            bytes(8).prop_map(AttributeValue::Tlv)
        ],
    )
        .prop_map(|(ty, value)| Attribute {
            ty: AttributeType(ty),
            value,
        })
}

fn transform() -> impl Strategy<Value = Transform> {
    (any::<u8>(), any::<u16>(), vec(attribute(), 0..=3)).prop_map(|(ty, id, attributes)| {
        Transform {
            ty: TransformType(ty),
            id,
            attributes,
        }
    })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (any::<u8>(), any::<u8>(), bytes(8), vec(transform(), 0..=6)).prop_map(
        |(number, protocol, spi, transforms)| Proposal {
            number,
            protocol: ProtocolId(protocol),
            spi,
            transforms,
        },
    )
}

fn traffic_selector() -> impl Strategy<Value = TrafficSelector> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 4]>(),
            any::<[u8; 4]>()
        )
            .prop_map(
                |(ip_protocol, start_port, end_port, s, e)| TrafficSelector::Ipv4(AddressRange {
                    ip_protocol,
                    start_port,
                    end_port,
                    start: Ipv4Addr::from(s),
                    end: Ipv4Addr::from(e),
                })
            ),
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>()
        )
            .prop_map(
                |(ip_protocol, start_port, end_port, s, e)| TrafficSelector::Ipv6(AddressRange {
                    ip_protocol,
                    start_port,
                    end_port,
                    start: Ipv6Addr::from(s),
                    end: Ipv6Addr::from(e),
                })
            ),
        (
            any::<u8>().prop_filter("typed", |t| *t != 7 && *t != 8),
            any::<u8>(),
            bytes(12)
        )
            .prop_map(|(ty, second, data)| TrafficSelector::Other {
                ty: TsType(ty),
                second,
                data
            }),
    ]
}

fn notify() -> impl Strategy<Value = Notify> {
    let free = (any::<u8>(), bytes(8), any::<u16>(), bytes(24))
        .prop_map(|(p, spi, ty, data)| Notify {
            protocol: ProtocolId(p),
            spi,
            ty: NotifyType(ty),
            data,
        })
        .prop_filter("data shape", Notify::data_is_well_formed);
    prop_oneof![
        free,
        any::<[u8; 4]>().prop_map(|a| Notify::additional_address(Ipv4Addr::from(a).into())),
        any::<[u8; 16]>().prop_map(|a| Notify::additional_address(Ipv6Addr::from(a).into())),
        vec(any::<u8>(), 8..=64).prop_map(|c| Notify::cookie2(&c).unwrap()),
        Just(Notify::new(NotifyType::NO_ADDITIONAL_ADDRESSES, vec![])),
        Just(Notify::new(NotifyType::UPDATE_SA_ADDRESSES, vec![])),
        Just(Notify::new(NotifyType::MOBIKE_SUPPORTED, vec![])),
        any::<[u8; 20]>().prop_map(|h| Notify::new(NotifyType::NAT_DETECTION_SOURCE_IP, h)),
    ]
}

/// Any payload that may appear before the end of a chain.
fn inner_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        vec(proposal(), 1..=4)
            .prop_map(|proposals| Payload::SecurityAssociation(SecurityAssociation { proposals })),
        (any::<u16>(), bytes(64)).prop_map(|(g, data)| Payload::KeyExchange(KeyExchange {
            group: DhGroup(g),
            data
        })),
        (any::<u8>(), bytes(32)).prop_map(|(t, data)| Payload::IdInitiator(Identification {
            ty: IdType(t),
            data
        })),
        (any::<u8>(), bytes(32)).prop_map(|(t, data)| Payload::IdResponder(Identification {
            ty: IdType(t),
            data
        })),
        (any::<u8>(), bytes(64)).prop_map(|(e, data)| Payload::Certificate(Certificate {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(60)).prop_map(|(e, authorities)| Payload::CertificateRequest(
            CertificateRequest {
                encoding: CertEncoding(e),
                authorities
            }
        )),
        (any::<u8>(), bytes(64)).prop_map(|(m, data)| Payload::Authentication(Authentication {
            method: AuthMethod(m),
            data
        })),
        vec(any::<u8>(), 16..=256).prop_map(|data| Payload::Nonce(Nonce { data })),
        notify().prop_map(Payload::Notify),
        prop_oneof![
            Just(Delete::ike()),
            (
                prop_oneof![Just(2u8), Just(3), Just(200)],
                vec(any::<u32>(), 0..=8)
            )
                .prop_map(|(p, spis)| Delete {
                    protocol: ProtocolId(p),
                    spis
                }),
        ]
        .prop_map(Payload::Delete),
        bytes(32).prop_map(|data| Payload::VendorId(VendorId { data })),
        vec(traffic_selector(), 0..=4)
            .prop_map(|selectors| Payload::TsInitiator(TrafficSelectors { selectors })),
        vec(traffic_selector(), 0..=4)
            .prop_map(|selectors| Payload::TsResponder(TrafficSelectors { selectors })),
        (any::<u8>(), vec((0u16..0x8000, bytes(17)), 0..=6)).prop_map(|(t, attrs)| {
            Payload::Configuration(Configuration {
                ty: CfgType(t),
                attributes: attrs
                    .into_iter()
                    .map(|(ty, value)| ConfigAttribute {
                        ty: CfgAttrType(ty),
                        value,
                    })
                    .collect(),
            })
        }),
        bytes(40).prop_map(|message| Payload::Eap(Eap { message })),
        (any::<u8>(), bytes(16))
            .prop_filter("not decoded", |(t, _)| *t != 0
                && !Payload::is_decoded(PayloadType(*t)))
            .prop_map(|(t, body)| Payload::Unknown {
                ty: PayloadType(t),
                body
            }),
    ]
}

/// A payload that ends a chain.
fn last_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (any::<u8>(), bytes(64)).prop_map(|(t, data)| Payload::Encrypted(Encrypted {
            first_inner: PayloadType(t),
            data
        })),
        (any::<u8>(), 1u16..=64, 0u16..64, bytes(64)).prop_map(|(t, total, n, data)| {
            Payload::EncryptedFragment(EncryptedFragment {
                first_inner: PayloadType(t),
                number: n % total + 1,
                total,
                data,
            })
        }),
    ]
}

fn chain() -> impl Strategy<Value = Vec<Payload>> {
    (
        vec(inner_payload(), 0..=6),
        proptest::option::of(last_payload()),
    )
        .prop_map(|(mut v, last)| {
            v.extend(last);
            v
        })
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        0u8..16,
        chain(),
    )
        .prop_map(
            |(spi_i, spi_r, ex, flags, message_id, minor_version, payloads)| Message {
                spi_i,
                spi_r,
                exchange_type: ExchangeType(ex),
                flags: Flags(flags),
                message_id,
                minor_version,
                payloads,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_message_round_trips(m in message()) {
        let bytes = m.encode().unwrap();
        let decoded = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &m);
        prop_assert_eq!(decoded.encode().unwrap(), bytes);
    }

    #[test]
    fn any_chain_round_trips(payloads in chain()) {
        let (first, bytes) = encode_chain_to_vec(&payloads).unwrap();
        prop_assert_eq!(decode_chain(first, &bytes).unwrap(), payloads);
    }

    #[test]
    fn every_truncation_of_any_message_fails_cleanly(m in message(), cut in any::<prop::sample::Index>()) {
        let bytes = m.encode().unwrap();
        let len = cut.index(bytes.len());
        prop_assert!(Message::decode(&bytes[..len]).is_err());
        // With the header's Length fixed up, the chain itself must notice.
        if len >= 28 {
            let mut b = bytes[..len].to_vec();
            b[24..28].copy_from_slice(&(len as u32).to_be_bytes());
            if let Ok(d) = Message::decode(&b) {
                // Only possible when the cut fell exactly at the end of an opaque body.
                prop_assert_eq!(d.encode().unwrap(), b);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(512)) {
        if let Ok(m) = Message::decode(&data) {
            let again = m.encode().unwrap();
            prop_assert_eq!(Message::decode(&again).unwrap(), m);
        }
        if let Some((first, rest)) = data.split_first() {
            let _ = decode_chain(PayloadType(*first), rest);
        }
    }

    #[test]
    fn flipped_bytes_never_panic(m in message(), at in any::<prop::sample::Index>(), x in 1u8..) {
        let mut bytes = m.encode().unwrap();
        if bytes.is_empty() { return Ok(()); }
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        if let Ok(d) = Message::decode(&bytes) {
            prop_assert_eq!(Message::decode(&d.encode().unwrap()).unwrap(), d);
        }
    }
}
