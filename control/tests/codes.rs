//! Every named code point round-trips through the codec, and unknown values survive.

use roamgate_control::wire::header::Flags;
use roamgate_control::wire::payload::{
    Authentication, Certificate, CertificateRequest, ConfigAttribute, Configuration, Delete,
    Identification, KeyExchange, Notify, Payload, Proposal, SecurityAssociation, TrafficSelector,
    TrafficSelectors, Transform,
};
use roamgate_control::wire::{
    AttributeType, AuthMethod, CertEncoding, CfgAttrType, CfgType, DhGroup, EncrId, EsnId,
    ExchangeType, HashAlgorithm, IdType, IntegId, Message, NotifyType, PayloadType, PrfId,
    ProtocolId, TransformType, TsType,
};

fn message(exchange_type: ExchangeType, payloads: Vec<Payload>) -> Message {
    Message {
        spi_i: 0x0102_0304_0506_0708,
        spi_r: 0x1112_1314_1516_1718,
        exchange_type,
        flags: Flags::new(true, false),
        message_id: 7,
        minor_version: 0,
        payloads,
    }
}

fn round_trip(m: &Message) {
    let bytes = m.encode().unwrap();
    assert_eq!(&Message::decode(&bytes).unwrap(), m);
}

/// The values to try for a code type: every named one, plus unknown ones.
fn values<T: Copy>(known: &[T], unknown: impl IntoIterator<Item = T>) -> Vec<T> {
    known.iter().copied().chain(unknown).collect()
}

#[test]
fn names_are_unique_and_display_falls_back_to_the_number() {
    fn check<T: Copy + core::fmt::Debug + Eq>(
        known: &[T],
        name: impl Fn(T) -> Option<&'static str>,
    ) {
        let mut names: Vec<_> = known.iter().map(|v| name(*v).unwrap()).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate names in {known:?}");
        for v in known {
            assert_eq!(format!("{v:?}"), name(*v).unwrap());
        }
    }
    check(ExchangeType::KNOWN, ExchangeType::name);
    check(PayloadType::KNOWN, PayloadType::name);
    check(NotifyType::KNOWN, NotifyType::name);
    check(TransformType::KNOWN, TransformType::name);
    check(EncrId::KNOWN, EncrId::name);
    check(PrfId::KNOWN, PrfId::name);
    check(IntegId::KNOWN, IntegId::name);
    check(DhGroup::KNOWN, DhGroup::name);
    check(EsnId::KNOWN, EsnId::name);
    check(AttributeType::KNOWN, AttributeType::name);
    check(ProtocolId::KNOWN, ProtocolId::name);
    check(AuthMethod::KNOWN, AuthMethod::name);
    check(IdType::KNOWN, IdType::name);
    check(TsType::KNOWN, TsType::name);
    check(CertEncoding::KNOWN, CertEncoding::name);
    check(CfgType::KNOWN, CfgType::name);
    check(CfgAttrType::KNOWN, CfgAttrType::name);
    check(HashAlgorithm::KNOWN, HashAlgorithm::name);
    assert_eq!(format!("{}", NotifyType(12345)), "NotifyType(12345)");
    assert_eq!(NotifyType::from(16401), NotifyType::COOKIE2);
    assert_eq!(u16::from(NotifyType::COOKIE2), 16401);
    assert!(NotifyType::NO_PROPOSAL_CHOSEN.is_error());
    assert!(!NotifyType::MOBIKE_SUPPORTED.is_error());
}

#[test]
fn the_mobike_and_core_notify_numbers_match_the_registry() {
    for (ty, value) in [
        (NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, 1),
        (NotifyType::INVALID_SYNTAX, 7),
        (NotifyType::UNACCEPTABLE_ADDRESSES, 40),
        (NotifyType::UNEXPECTED_NAT_DETECTED, 41),
        (NotifyType::INITIAL_CONTACT, 16384),
        (NotifyType::NAT_DETECTION_SOURCE_IP, 16388),
        (NotifyType::NAT_DETECTION_DESTINATION_IP, 16389),
        (NotifyType::COOKIE, 16390),
        (NotifyType::REKEY_SA, 16393),
        (NotifyType::MOBIKE_SUPPORTED, 16396),
        (NotifyType::ADDITIONAL_IP4_ADDRESS, 16397),
        (NotifyType::ADDITIONAL_IP6_ADDRESS, 16398),
        (NotifyType::NO_ADDITIONAL_ADDRESSES, 16399),
        (NotifyType::UPDATE_SA_ADDRESSES, 16400),
        (NotifyType::COOKIE2, 16401),
        (NotifyType::NO_NATS_ALLOWED, 16402),
        (NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, 16430),
        (NotifyType::SIGNATURE_HASH_ALGORITHMS, 16431),
    ] {
        assert_eq!(ty.0, value, "{ty}");
    }
}

#[test]
fn every_exchange_type_and_flag_combination_round_trips() {
    for ex in values(ExchangeType::KNOWN, [0, 33, 39, 200, 255].map(ExchangeType)) {
        for flags in [0u8, 0x08, 0x20, 0x28, 0x10, 0xff] {
            let mut m = message(ex, vec![]);
            m.flags = Flags(flags);
            round_trip(&m);
        }
    }
}

#[test]
fn every_notify_type_round_trips() {
    for ty in values(
        NotifyType::KNOWN,
        [0, 2, 8191, 16383, 16500, 40960, 65535].map(NotifyType),
    ) {
        let data = match ty {
            NotifyType::ADDITIONAL_IP4_ADDRESS => vec![192, 0, 2, 1],
            NotifyType::ADDITIONAL_IP6_ADDRESS => {
                vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
            }
            NotifyType::COOKIE2 | NotifyType::COOKIE => vec![0xc0; 16],
            NotifyType::NAT_DETECTION_SOURCE_IP | NotifyType::NAT_DETECTION_DESTINATION_IP => {
                vec![0xaa; 20]
            }
            NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD => vec![99],
            NotifyType::INVALID_KE_PAYLOAD => vec![0, 31],
            _ => vec![1, 2, 3, 4],
        };
        let mut n = Notify::new(ty, data);
        n.protocol = ProtocolId::ESP;
        n.spi = vec![0xde, 0xad, 0xbe, 0xef];
        round_trip(&message(
            ExchangeType::INFORMATIONAL,
            vec![Payload::Notify(n)],
        ));
    }
}

#[test]
fn every_transform_id_and_protocol_round_trips() {
    let mut transforms = Vec::new();
    for id in values(EncrId::KNOWN, [EncrId(0), EncrId(1024), EncrId(65535)]) {
        transforms.push(Transform::encr(id, Some(256)));
        transforms.push(Transform::encr(id, None));
    }
    transforms.extend(
        values(PrfId::KNOWN, [PrfId(0), PrfId(999)])
            .into_iter()
            .map(Transform::prf),
    );
    transforms.extend(
        values(IntegId::KNOWN, [IntegId(15), IntegId(4000)])
            .into_iter()
            .map(Transform::integ),
    );
    transforms.extend(
        values(DhGroup::KNOWN, [DhGroup(33), DhGroup(1030)])
            .into_iter()
            .map(Transform::dh),
    );
    transforms.extend(
        values(EsnId::KNOWN, [EsnId(2)])
            .into_iter()
            .map(Transform::esn),
    );
    for ty in [0u8, 6, 7, 240, 255] {
        transforms.push(Transform::new(TransformType(ty), 42));
    }
    let proposals = values(ProtocolId::KNOWN, [ProtocolId(4), ProtocolId(255)])
        .into_iter()
        .enumerate()
        .map(|(i, protocol)| Proposal {
            number: i as u8 + 1,
            protocol,
            spi: if protocol == ProtocolId::IKE {
                vec![]
            } else {
                vec![1, 2, 3, 4]
            },
            transforms: transforms.clone(),
        })
        .collect();
    round_trip(&message(
        ExchangeType::CREATE_CHILD_SA,
        vec![Payload::SecurityAssociation(SecurityAssociation {
            proposals,
        })],
    ));
    for ty in values(TransformType::KNOWN, [TransformType(9)]) {
        let t = Transform::new(ty, 3);
        assert_eq!(t.as_encr().is_some(), ty == TransformType::ENCR);
        assert_eq!(t.as_prf().is_some(), ty == TransformType::PRF);
        assert_eq!(t.as_integ().is_some(), ty == TransformType::INTEG);
        assert_eq!(t.as_dh().is_some(), ty == TransformType::DH);
        assert_eq!(t.as_esn().is_some(), ty == TransformType::ESN);
    }
}

#[test]
fn every_small_registry_round_trips() {
    let mut payloads = Vec::new();
    for g in values(DhGroup::KNOWN, [DhGroup(777)]) {
        payloads.push(Payload::KeyExchange(KeyExchange {
            group: g,
            data: vec![5; 8],
        }));
    }
    for ty in values(IdType::KNOWN, [IdType(0), IdType(200)]) {
        payloads.push(Payload::IdInitiator(Identification {
            ty,
            data: b"id".to_vec(),
        }));
        payloads.push(Payload::IdResponder(Identification { ty, data: vec![] }));
    }
    for encoding in values(CertEncoding::KNOWN, [CertEncoding(0), CertEncoding(201)]) {
        payloads.push(Payload::Certificate(Certificate {
            encoding,
            data: vec![0x30, 0],
        }));
        payloads.push(Payload::CertificateRequest(CertificateRequest {
            encoding,
            authorities: vec![7; 20],
        }));
    }
    for method in values(AuthMethod::KNOWN, [AuthMethod(0), AuthMethod(222)]) {
        payloads.push(Payload::Authentication(Authentication {
            method,
            data: vec![1; 32],
        }));
    }
    for protocol in values(ProtocolId::KNOWN, [ProtocolId(9)]) {
        let spis = if protocol == ProtocolId::IKE {
            vec![]
        } else {
            vec![1, 0xffff_ffff]
        };
        payloads.push(Payload::Delete(Delete { protocol, spis }));
    }
    for ty in values(CfgType::KNOWN, [CfgType(0), CfgType(99)]) {
        let attributes = values(CfgAttrType::KNOWN, [CfgAttrType(0), CfgAttrType(0x7fff)])
            .into_iter()
            .map(|ty| ConfigAttribute {
                ty,
                value: vec![10, 0, 0, 1],
            })
            .collect();
        payloads.push(Payload::Configuration(Configuration { ty, attributes }));
    }
    let selectors = values(TsType::KNOWN, [TsType(0), TsType(250)])
        .into_iter()
        .filter(|ty| *ty != TsType::IPV4_ADDR_RANGE && *ty != TsType::IPV6_ADDR_RANGE)
        .map(|ty| TrafficSelector::Other {
            ty,
            second: 6,
            data: vec![1, 2, 3],
        })
        .collect();
    payloads.push(Payload::TsInitiator(TrafficSelectors { selectors }));
    payloads.push(Payload::Notify(Notify::signature_hash_algorithms(&values(
        HashAlgorithm::KNOWN,
        [HashAlgorithm(0), HashAlgorithm(300)],
    ))));
    round_trip(&message(ExchangeType::IKE_AUTH, payloads));
}

#[test]
fn unknown_payload_types_survive() {
    for ty in (1..=32).chain(49..=52).chain(54..=255).map(PayloadType) {
        let m = message(
            ExchangeType::INFORMATIONAL,
            vec![
                Payload::Unknown {
                    ty,
                    body: vec![ty.0; 3],
                },
                Payload::Notify(Notify::new(NotifyType::MOBIKE_SUPPORTED, vec![])),
            ],
        );
        round_trip(&m);
    }
}
