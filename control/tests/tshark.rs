//! Messages we encode, checked against an independent dissector: tshark must read every
//! payload without a "Malformed" or an error-level expert note, and must name the MOBIKE
//! notifications as we do.
//!
//! Fails, saying what to do, when `tshark` is not installed.

use std::net::{Ipv4Addr, Ipv6Addr};

use roamgate_lab::pcap;

use roamgate_control::wire::header::Flags;
use roamgate_control::wire::payload::{
    AddressRange, Authentication, CertificateRequest, ConfigAttribute, Configuration, Delete, Eap,
    Encrypted, EncryptedFragment, Identification, KeyExchange, Nonce, Notify, Payload, Proposal,
    SecurityAssociation, TrafficSelector, TrafficSelectors, Transform, VendorId,
};
use roamgate_control::wire::{
    AuthMethod, CertEncoding, CfgAttrType, CfgType, DhGroup, EncrId, EsnId, ExchangeType,
    HashAlgorithm, IntegId, Message, NotifyType, PayloadType, PrfId, ProtocolId,
};

fn ike_sa_init() -> Message {
    let ike = Proposal {
        number: 1,
        protocol: ProtocolId::IKE,
        spi: vec![],
        transforms: vec![
            Transform::encr(EncrId::AES_GCM_16, Some(256)),
            Transform::encr(EncrId::AES_CBC, Some(128)),
            Transform::prf(PrfId::HMAC_SHA2_256),
            Transform::integ(IntegId::HMAC_SHA2_256_128),
            Transform::dh(DhGroup::CURVE25519),
            Transform::dh(DhGroup::ECP_256),
        ],
    };
    Message {
        spi_i: 0x1122_3344_5566_7788,
        spi_r: 0,
        exchange_type: ExchangeType::IKE_SA_INIT,
        flags: Flags::new(true, false),
        message_id: 0,
        minor_version: 0,
        payloads: vec![
            Payload::SecurityAssociation(SecurityAssociation {
                proposals: vec![ike],
            }),
            Payload::KeyExchange(KeyExchange {
                group: DhGroup::CURVE25519,
                data: vec![0x42; 32],
            }),
            Payload::Nonce(Nonce {
                data: vec![0x17; 32],
            }),
            Payload::Notify(Notify::new(NotifyType::NAT_DETECTION_SOURCE_IP, [1; 20])),
            Payload::Notify(Notify::new(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                [2; 20],
            )),
            Payload::Notify(Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, [])),
            Payload::Notify(Notify::signature_hash_algorithms(&[
                HashAlgorithm::SHA2_256,
                HashAlgorithm::SHA2_384,
                HashAlgorithm::SHA2_512,
            ])),
            Payload::VendorId(VendorId {
                data: b"roamgate".to_vec(),
            }),
        ],
    }
}

/// An IKE_AUTH as it looks inside the SK payload, sent in the clear for the dissector.
fn ike_auth_plaintext() -> Message {
    let esp = Proposal {
        number: 1,
        protocol: ProtocolId::ESP,
        spi: vec![0xc0, 0x01, 0xd0, 0x0d],
        transforms: vec![
            Transform::encr(EncrId::AES_GCM_16, Some(128)),
            Transform::esn(EsnId::NO_ESN),
        ],
    };
    let eap_identity = {
        let mut m = vec![2, 1, 0, 0, 1];
        m.extend_from_slice(b"user");
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    };
    Message {
        spi_i: 0x1122_3344_5566_7788,
        spi_r: 0x99aa_bbcc_ddee_ff00,
        exchange_type: ExchangeType::IKE_AUTH,
        flags: Flags::new(true, false),
        message_id: 1,
        minor_version: 0,
        payloads: vec![
            Payload::IdInitiator(Identification::fqdn("client.example.org")),
            Payload::CertificateRequest(CertificateRequest {
                encoding: CertEncoding::X509_SIGNATURE,
                authorities: vec![0x5a; 20],
            }),
            Payload::IdResponder(Identification::ipv4(Ipv4Addr::new(192, 0, 2, 1))),
            Payload::Authentication(Authentication {
                method: AuthMethod::SHARED_KEY_MIC,
                data: vec![0x33; 32],
            }),
            Payload::Configuration(Configuration {
                ty: CfgType::REQUEST,
                attributes: vec![
                    ConfigAttribute::request(CfgAttrType::INTERNAL_IP4_ADDRESS),
                    ConfigAttribute::request(CfgAttrType::INTERNAL_IP4_DNS),
                    ConfigAttribute::request(CfgAttrType::INTERNAL_IP6_ADDRESS),
                ],
            }),
            Payload::SecurityAssociation(SecurityAssociation {
                proposals: vec![esp],
            }),
            Payload::TsInitiator(TrafficSelectors {
                selectors: vec![
                    TrafficSelector::Ipv4(AddressRange::any(
                        Ipv4Addr::new(10, 1, 0, 0),
                        Ipv4Addr::new(10, 1, 255, 255),
                    )),
                    TrafficSelector::Ipv6(AddressRange {
                        ip_protocol: 17,
                        start_port: 500,
                        end_port: 4500,
                        start: "2001:db8::".parse::<Ipv6Addr>().unwrap(),
                        end: "2001:db8::ffff".parse::<Ipv6Addr>().unwrap(),
                    }),
                ],
            }),
            Payload::TsResponder(TrafficSelectors {
                selectors: vec![TrafficSelector::Ipv4(AddressRange::any(
                    Ipv4Addr::new(0, 0, 0, 0),
                    Ipv4Addr::new(255, 255, 255, 255),
                ))],
            }),
            Payload::Notify(Notify::new(NotifyType::MOBIKE_SUPPORTED, [])),
            Payload::Notify(Notify::additional_address("198.51.100.7".parse().unwrap())),
            Payload::Notify(Notify::additional_address("2001:db8::7".parse().unwrap())),
            Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, [])),
            Payload::Eap(Eap {
                message: eap_identity,
            }),
        ],
    }
}

/// A MOBIKE address update as it looks inside SK, in the clear.
fn update_sa_addresses_plaintext() -> Message {
    Message {
        spi_i: 0x1122_3344_5566_7788,
        spi_r: 0x99aa_bbcc_ddee_ff00,
        exchange_type: ExchangeType::INFORMATIONAL,
        flags: Flags::new(true, false),
        message_id: 2,
        minor_version: 0,
        payloads: vec![
            Payload::Notify(Notify::new(NotifyType::UPDATE_SA_ADDRESSES, [])),
            Payload::Notify(Notify::cookie2(&[0xc2; 16]).unwrap()),
            Payload::Notify(Notify::new(NotifyType::NO_ADDITIONAL_ADDRESSES, [])),
            Payload::Delete(Delete::esp(&[0xc001_d00d])),
            Payload::Delete(Delete::ike()),
        ],
    }
}

fn encrypted() -> Vec<Message> {
    let base = Message {
        spi_i: 0x1122_3344_5566_7788,
        spi_r: 0x99aa_bbcc_ddee_ff00,
        exchange_type: ExchangeType::INFORMATIONAL,
        flags: Flags::new(false, true),
        message_id: 3,
        minor_version: 0,
        payloads: vec![Payload::Encrypted(Encrypted {
            first_inner: PayloadType::NOTIFY,
            data: vec![0x99; 64],
        })],
    };
    let mut fragment = base.clone();
    fragment.exchange_type = ExchangeType::IKE_AUTH;
    fragment.payloads = vec![Payload::EncryptedFragment(EncryptedFragment {
        first_inner: PayloadType::IDI,
        number: 1,
        total: 2,
        data: vec![0x98; 64],
    })];
    vec![base, fragment]
}

#[test]
fn tshark_dissects_what_we_encode_without_errors() {
    let mut messages = vec![
        ike_sa_init(),
        ike_auth_plaintext(),
        update_sa_addresses_plaintext(),
    ];
    messages.extend(encrypted());
    let datagrams: Vec<Vec<u8>> = messages.iter().map(|m| m.encode().unwrap()).collect();
    for (m, d) in messages.iter().zip(&datagrams) {
        assert_eq!(&Message::decode(d).unwrap(), m);
    }
    let path = std::env::temp_dir().join(format!("roamgate-wire-{}.pcap", std::process::id()));
    let a: Ipv4Addr = "192.0.2.1".parse().unwrap();
    let b: Ipv4Addr = "192.0.2.2".parse().unwrap();
    let frames: Vec<Vec<u8>> = datagrams
        .iter()
        .map(|d| pcap::ethernet_ipv4_udp((a, 500), (b, 500), d))
        .collect();
    pcap::write_pcap(&path, pcap::LINKTYPE_ETHERNET, &frames).unwrap();
    let text = pcap::tshark_verbose(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("ROAMGATE_KEEP_PCAP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
    let problems = pcap::dissection_problems(&text);
    assert!(problems.is_empty(), "tshark reports {problems:?}:\n{text}");
    for name in [
        "IKE_SA_INIT",
        "IKE_AUTH",
        "INFORMATIONAL",
        "MOBIKE_SUPPORTED (16396)",
        "ADDITIONAL_IP4_ADDRESS (16397)",
        "ADDITIONAL_IP6_ADDRESS (16398)",
        "NO_ADDITIONAL_ADDRESSES (16399)",
        "UPDATE_SA_ADDRESSES (16400)",
        "COOKIE2 (16401)",
        "NAT_DETECTION_SOURCE_IP (16388)",
        "NAT_DETECTION_DESTINATION_IP (16389)",
        "IKEV2_FRAGMENTATION_SUPPORTED (16430)",
        "SIGNATURE_HASH_ALGORITHMS (16431)",
        "Encrypted and Authenticated Fragment (53)",
        "Encrypted and Authenticated (46)",
        "Traffic Selector - Initiator (44)",
        "Configuration (47)",
        "Extensible Authentication (48)",
        "Delete (42)",
    ] {
        assert!(text.contains(name), "tshark output lacks {name:?}:\n{text}");
    }
    assert!(text.matches("Frame ").count() >= datagrams.len());
}
