//! Decodes arbitrary bytes as an IKE message; whatever decodes must encode, and decode again
//! to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roamgate_control::wire::Message;
use roamgate_control::wire::payload::{Payload, decode_chain};

fuzz_target!(|data: &[u8]| {
    // The same bytes as a plaintext chain too (what an SK payload decrypts to), starting from
    // the type the first octet names.
    if let Some((&first, rest)) = data.split_first()
        && let Ok(chain) = decode_chain(first.into(), rest)
    {
        let (ty, bytes) =
            roamgate_control::wire::payload::encode_chain_to_vec(&chain).expect("re-encode chain");
        assert_eq!(ty, chain.first().map_or(0.into(), Payload::payload_type));
        assert_eq!(
            decode_chain(ty, &bytes).expect("decode re-encoded chain"),
            chain
        );
    }
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let bytes = message.encode().expect("a decoded message re-encodes");
    let again = Message::decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(again, message);
    // Only reserved bits may differ, so the length is the same.
    assert_eq!(bytes.len(), data.len());
});
