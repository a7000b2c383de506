//! Peer-controlled inputs to authentication never panic: identities, DNs, AUTH data,
//! AlgorithmIdentifiers and certificates built from arbitrary bytes give errors.

use proptest::prelude::*;
use roamgate_control::auth::{
    Certificate, DistinguishedName, Identity, SignatureScheme, TrustStore, split_auth_data,
};
use roamgate_control::wire::payload::Identification;
use roamgate_control::wire::{AuthMethod, IdType};

proptest! {
    #[test]
    fn identities_from_any_bytes(ty in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..80)) {
        let id = Identification { ty: IdType(ty), data };
        if let Ok(parsed) = Identity::from_wire(&id) {
            // Whatever decodes encodes back to a payload of the same type.
            prop_assert_eq!(parsed.to_wire().unwrap().ty, id.ty);
        }
    }

    #[test]
    fn dn_der_from_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(dn) = DistinguishedName::from_der(&data) {
            prop_assert_eq!(DistinguishedName::from_der(&dn.to_der()).unwrap(), dn);
        }
    }

    #[test]
    fn auth_data_from_any_bytes(method in prop_oneof![Just(1u8), Just(9), Just(14), any::<u8>()],
                                data in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = split_auth_data(AuthMethod(method), &data);
        let _ = SignatureScheme::from_algorithm_identifier(&data);
    }

    #[test]
    fn certificates_from_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(Certificate::from_der(data.clone()).is_err());
        prop_assert!(TrustStore::default().verify_chain(&data, &[], std::time::SystemTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn identity_strings_never_panic(s in "\\PC{0,40}") {
        let _ = Identity::parse(&s);
        let _ = DistinguishedName::parse(&s);
    }
}
