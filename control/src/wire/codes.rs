//! Wire code points: every registry value IKEv2 puts on the wire, as a newtype over its integer.
//!
//! Each type is made by the `wire_code!` macro and follows one rule: a value is never rejected because
//! we do not know it. An unknown code decodes to the newtype carrying the number and encodes back
//! to the same number, so the engine can decide what "unknown" means in its context — for a
//! payload type that is the critical bit
//! ([RFC 7296 § 2.5](https://www.rfc-editor.org/rfc/rfc7296#section-2.5)), for a transform it is
//! "not acceptable" ([RFC 7296 § 3.3.6](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.6)).
//!
//! The names follow the IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registry.

/// Defines a wire code point newtype with named constants, a name lookup, and the list of every
/// named value.
///
/// The list [`KNOWN`](ExchangeType::KNOWN) lets tests round-trip every value; `name()` returns
/// the registry name of a known value; `Debug` and `Display` print that name, or the number for
/// an unknown value.
macro_rules! wire_code {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($repr:ty);
        $(
            $(#[$cmeta:meta])*
            $cname:ident = $value:literal,
        )+
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $repr);

        impl $name {
            $(
                $(#[$cmeta])*
                pub const $cname: $name = $name($value);
            )+

            /// Every named value, in registry order.
            pub const KNOWN: &'static [$name] = &[$($name::$cname),+];

            /// The registry name of this value, or `None` for a value we do not know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($cname)),)+
                    _ => None,
                }
            }

            /// Whether this value has a name here.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> $name {
                $name(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> $repr {
                value.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(self, f)
            }
        }
    };
}

wire_code! {
    /// Exchange type in the IKE header
    /// ([RFC 7296 § 3.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.1)).
    pub struct ExchangeType(u8);
    /// `IKE_SA_INIT`: the first exchange, negotiating the IKE SA.
    IKE_SA_INIT = 34,
    /// `IKE_AUTH`: authenticates the peers and sets up the first Child SA.
    IKE_AUTH = 35,
    /// `CREATE_CHILD_SA`: new Child SAs and rekeying.
    CREATE_CHILD_SA = 36,
    /// `INFORMATIONAL`: notifications, deletes, liveness checks, MOBIKE address updates.
    INFORMATIONAL = 37,
    /// `IKE_SESSION_RESUME` ([RFC 5723](https://www.rfc-editor.org/rfc/rfc5723)).
    IKE_SESSION_RESUME = 38,
    /// `IKE_INTERMEDIATE` ([RFC 9242](https://www.rfc-editor.org/rfc/rfc9242)).
    IKE_INTERMEDIATE = 43,
    /// `IKE_FOLLOWUP_KE` ([RFC 9370](https://www.rfc-editor.org/rfc/rfc9370)).
    IKE_FOLLOWUP_KE = 44,
}

wire_code! {
    /// Payload type, as carried in the IKE header's and every payload's Next Payload field
    /// ([RFC 7296 § 3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.2)).
    pub struct PayloadType(u8);
    /// "No Next Payload": the end of a payload chain.
    NO_NEXT_PAYLOAD = 0,
    /// Security Association (SA).
    SA = 33,
    /// Key Exchange (KE).
    KE = 34,
    /// Identification - Initiator (IDi).
    IDI = 35,
    /// Identification - Responder (IDr).
    IDR = 36,
    /// Certificate (CERT).
    CERT = 37,
    /// Certificate Request (CERTREQ).
    CERTREQ = 38,
    /// Authentication (AUTH).
    AUTH = 39,
    /// Nonce (Ni, Nr).
    NONCE = 40,
    /// Notify (N).
    NOTIFY = 41,
    /// Delete (D).
    DELETE = 42,
    /// Vendor ID (V).
    VENDOR_ID = 43,
    /// Traffic Selector - Initiator (TSi).
    TSI = 44,
    /// Traffic Selector - Responder (TSr).
    TSR = 45,
    /// Encrypted and Authenticated (SK).
    SK = 46,
    /// Configuration (CP).
    CP = 47,
    /// Extensible Authentication (EAP).
    EAP = 48,
    /// Generic Secure Password Methods (GSPM, RFC 6467); recognised, not decoded.
    GSPM = 49,
    /// Group Identification (IDg, RFC 9838 draft registry); recognised, not decoded.
    IDG = 50,
    /// Group Security Association (GSA); recognised, not decoded.
    GSA = 51,
    /// Key Download (KD); recognised, not decoded.
    KD = 52,
    /// Encrypted and Authenticated Fragment (SKF,
    /// [RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)).
    SKF = 53,
    /// Puzzle Solution (PS, RFC 8019); recognised, not decoded.
    PS = 54,
}

wire_code! {
    /// Notify message type ([RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1)),
    /// with the MOBIKE types of [RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4).
    ///
    /// "Types in the range 0 - 16383 are intended for reporting errors. [...] Types in the range
    /// 16384 - 65535 are intended for reporting status."
    pub struct NotifyType(u16);
    /// The message carried a critical payload type we do not support; the data is that
    /// one-octet payload type.
    UNSUPPORTED_CRITICAL_PAYLOAD = 1,
    /// A message arrived for an IKE SA we do not know.
    INVALID_IKE_SPI = 4,
    /// The major version is higher than ours; the header carries our highest version.
    INVALID_MAJOR_VERSION = 5,
    /// The message was malformed.
    INVALID_SYNTAX = 7,
    /// The message ID is outside the window.
    INVALID_MESSAGE_ID = 9,
    /// An ESP or AH packet arrived with an SPI we do not know.
    INVALID_SPI = 11,
    /// None of the proposals is acceptable.
    NO_PROPOSAL_CHOSEN = 14,
    /// The KE payload's group is not the one selected; the data is the group we want.
    INVALID_KE_PAYLOAD = 17,
    /// The AUTH payload did not verify.
    AUTHENTICATION_FAILED = 24,
    /// Only a single pair of traffic selectors is acceptable.
    SINGLE_PAIR_REQUIRED = 34,
    /// No more Child SAs are accepted on this IKE SA.
    NO_ADDITIONAL_SAS = 35,
    /// No internal address could be assigned.
    INTERNAL_ADDRESS_FAILURE = 36,
    /// A CP payload was required and not sent.
    FAILED_CP_REQUIRED = 37,
    /// None of the traffic selectors is acceptable.
    TS_UNACCEPTABLE = 38,
    /// A packet's selectors do not match the SA's.
    INVALID_SELECTORS = 39,
    /// MOBIKE: the new addresses are not acceptable
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    UNACCEPTABLE_ADDRESSES = 40,
    /// MOBIKE: a NAT was detected although NO_NATS_ALLOWED was requested
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    UNEXPECTED_NAT_DETECTED = 41,
    /// Mobile IPv6 bootstrapping (RFC 5026).
    USE_ASSIGNED_HOA = 42,
    /// A temporary condition stopped the exchange; retry later (RFC 7296 § 2.25).
    TEMPORARY_FAILURE = 43,
    /// The Child SA named by a request does not exist (RFC 7296 § 2.25).
    CHILD_SA_NOT_FOUND = 44,
    /// Group key management (G-IKEv2).
    INVALID_GROUP_ID = 45,
    /// Group key management (G-IKEv2).
    AUTHORIZATION_FAILED = 46,
    /// Session resumption ticket state not found (RFC 5723).
    STATE_NOT_FOUND = 47,
    /// The sender has just started and has no other IKE SA with the peer.
    INITIAL_CONTACT = 16384,
    /// The sender can process this many requests in parallel.
    SET_WINDOW_SIZE = 16385,
    /// The responder narrowed the traffic selectors; more could be negotiated.
    ADDITIONAL_TS_POSSIBLE = 16386,
    /// IP compression is supported (with the CPI and transform).
    IPCOMP_SUPPORTED = 16387,
    /// NAT detection: hash of the sender's SPIs, address and port.
    NAT_DETECTION_SOURCE_IP = 16388,
    /// NAT detection: hash of the SPIs and the receiver's address and port.
    NAT_DETECTION_DESTINATION_IP = 16389,
    /// Stateless cookie for DoS protection (RFC 7296 § 2.6).
    COOKIE = 16390,
    /// The Child SA is requested in transport mode.
    USE_TRANSPORT_MODE = 16391,
    /// Hash-and-URL certificate lookup is supported.
    HTTP_CERT_LOOKUP_SUPPORTED = 16392,
    /// The CREATE_CHILD_SA rekeys the Child SA with this SPI.
    REKEY_SA = 16393,
    /// The sender does not accept TFC padding.
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
    /// Fragmentation applies to non-first fragments as well.
    NON_FIRST_FRAGMENTS_ALSO = 16395,
    /// MOBIKE is supported ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    MOBIKE_SUPPORTED = 16396,
    /// MOBIKE: one more IPv4 address of the sender
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    ADDITIONAL_IP4_ADDRESS = 16397,
    /// MOBIKE: one more IPv6 address of the sender
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    ADDITIONAL_IP6_ADDRESS = 16398,
    /// MOBIKE: the sender has no addresses beyond the one in the IP header
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    NO_ADDITIONAL_ADDRESSES = 16399,
    /// MOBIKE: move the IKE SA to the addresses this message came from and went to
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    UPDATE_SA_ADDRESSES = 16400,
    /// MOBIKE: return routability check cookie, echoed by the responder
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    COOKIE2 = 16401,
    /// MOBIKE: the addresses must not be changed by a NAT
    /// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4)).
    NO_NATS_ALLOWED = 16402,
    /// Re-authenticate within this many seconds (RFC 4478).
    AUTH_LIFETIME = 16403,
    /// Multiple authentication rounds are supported (RFC 4739).
    MULTIPLE_AUTH_SUPPORTED = 16404,
    /// Another authentication round follows (RFC 4739).
    ANOTHER_AUTH_FOLLOWS = 16405,
    /// Redirection is supported (RFC 5685).
    REDIRECT_SUPPORTED = 16406,
    /// Go to another gateway (RFC 5685).
    REDIRECT = 16407,
    /// Redirected from this gateway (RFC 5685).
    REDIRECTED_FROM = 16408,
    /// Session resumption (RFC 5723).
    TICKET_LT_OPAQUE = 16409,
    /// Session resumption (RFC 5723).
    TICKET_REQUEST = 16410,
    /// Session resumption (RFC 5723).
    TICKET_ACK = 16411,
    /// Session resumption (RFC 5723).
    TICKET_NACK = 16412,
    /// Session resumption (RFC 5723).
    TICKET_OPAQUE = 16413,
    /// IKEv2 link ID (RFC 5739).
    LINK_ID = 16414,
    /// Wrapped ESP (RFC 5840).
    USE_WESP_MODE = 16415,
    /// Robust header compression (RFC 5857).
    ROHC_SUPPORTED = 16416,
    /// EAP-only authentication (RFC 5998).
    EAP_ONLY_AUTHENTICATION = 16417,
    /// Childless IKE SA initiation (RFC 6023).
    CHILDLESS_IKEV2_SUPPORTED = 16418,
    /// Quick crash detection (RFC 6290).
    QUICK_CRASH_DETECTION = 16419,
    /// Message ID synchronisation (RFC 6311).
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
    /// Replay counter synchronisation (RFC 6311).
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
    /// Message ID synchronisation (RFC 6311).
    IKEV2_MESSAGE_ID_SYNC = 16422,
    /// Replay counter synchronisation (RFC 6311).
    IPSEC_REPLAY_COUNTER_SYNC = 16423,
    /// Secure password methods (RFC 6467).
    SECURE_PASSWORD_METHODS = 16424,
    /// PSK persistence (RFC 6631).
    PSK_PERSIST = 16425,
    /// PSK confirmation (RFC 6631).
    PSK_CONFIRM = 16426,
    /// EAP re-authentication (RFC 6867).
    ERX_SUPPORTED = 16427,
    /// Flow mobility (RFC 6989 registry entry).
    IFOM_CAPABILITY = 16428,
    /// Group key management.
    SENDER_REQUEST_ID = 16429,
    /// IKE fragmentation is supported ([RFC 7383 § 2.3](https://www.rfc-editor.org/rfc/rfc7383#section-2.3)).
    IKEV2_FRAGMENTATION_SUPPORTED = 16430,
    /// The hash algorithms the sender accepts in signatures
    /// ([RFC 7427 § 4](https://www.rfc-editor.org/rfc/rfc7427#section-4)).
    SIGNATURE_HASH_ALGORITHMS = 16431,
    /// IKE SA cloning (RFC 7791).
    CLONE_IKE_SA_SUPPORTED = 16432,
    /// IKE SA cloning (RFC 7791).
    CLONE_IKE_SA = 16433,
    /// Client puzzles (RFC 8019).
    PUZZLE = 16434,
    /// Post-quantum preshared keys (RFC 8784).
    USE_PPK = 16435,
    /// Post-quantum preshared keys (RFC 8784).
    PPK_IDENTITY = 16436,
    /// Post-quantum preshared keys (RFC 8784).
    NO_PPK_AUTH = 16437,
    /// IKE_INTERMEDIATE is supported (RFC 9242).
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
    /// IPv4 is allowed (RFC 8983).
    IP4_ALLOWED = 16439,
    /// IPv6 is allowed (RFC 8983).
    IP6_ALLOWED = 16440,
    /// Additional key exchange (RFC 9370).
    ADDITIONAL_KEY_EXCHANGE = 16441,
    /// Aggregation and fragmentation mode (RFC 9347).
    USE_AGGFRAG = 16442,
}

impl NotifyType {
    /// "Types in the range 0 - 16383 are intended for reporting errors"
    /// ([RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1)).
    pub const LAST_ERROR: u16 = 16383;

    /// Whether this is an error type (as opposed to a status type).
    pub const fn is_error(self) -> bool {
        self.0 <= Self::LAST_ERROR
    }
}

wire_code! {
    /// Transform type ([RFC 7296 § 3.3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2)).
    pub struct TransformType(u8);
    /// Encryption Algorithm (ENCR).
    ENCR = 1,
    /// Pseudorandom Function (PRF).
    PRF = 2,
    /// Integrity Algorithm (INTEG).
    INTEG = 3,
    /// Diffie-Hellman group (D-H), "Key Exchange Method" since RFC 9370.
    DH = 4,
    /// Extended Sequence Numbers (ESN).
    ESN = 5,
}

wire_code! {
    /// Transform IDs of transform type 1, encryption
    /// ([RFC 7296 § 3.3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2)).
    pub struct EncrId(u16);
    /// DES with a 64-bit IV.
    DES_IV64 = 1,
    /// DES.
    DES = 2,
    /// Triple DES.
    TRIPLE_DES = 3,
    /// RC5.
    RC5 = 4,
    /// IDEA.
    IDEA = 5,
    /// CAST.
    CAST = 6,
    /// Blowfish.
    BLOWFISH = 7,
    /// Triple IDEA.
    TRIPLE_IDEA = 8,
    /// DES with a 32-bit IV.
    DES_IV32 = 9,
    /// NULL encryption (ESP only).
    NULL = 11,
    /// AES-CBC ([RFC 3602](https://www.rfc-editor.org/rfc/rfc3602)); needs a key length.
    AES_CBC = 12,
    /// AES-CTR ([RFC 3686](https://www.rfc-editor.org/rfc/rfc3686)); needs a key length.
    AES_CTR = 13,
    /// AES-CCM with an 8-octet ICV.
    AES_CCM_8 = 14,
    /// AES-CCM with a 12-octet ICV.
    AES_CCM_12 = 15,
    /// AES-CCM with a 16-octet ICV.
    AES_CCM_16 = 16,
    /// AES-GCM with an 8-octet ICV.
    AES_GCM_8 = 18,
    /// AES-GCM with a 12-octet ICV.
    AES_GCM_12 = 19,
    /// AES-GCM with a 16-octet ICV ([RFC 4106](https://www.rfc-editor.org/rfc/rfc4106)).
    AES_GCM_16 = 20,
    /// NULL encryption with AES-GMAC authentication.
    NULL_AUTH_AES_GMAC = 21,
    /// Camellia-CBC.
    CAMELLIA_CBC = 23,
    /// Camellia-CTR.
    CAMELLIA_CTR = 24,
    /// Camellia-CCM with an 8-octet ICV.
    CAMELLIA_CCM_8 = 25,
    /// Camellia-CCM with a 12-octet ICV.
    CAMELLIA_CCM_12 = 26,
    /// Camellia-CCM with a 16-octet ICV.
    CAMELLIA_CCM_16 = 27,
    /// ChaCha20-Poly1305 ([RFC 7634](https://www.rfc-editor.org/rfc/rfc7634)).
    CHACHA20_POLY1305 = 28,
}

wire_code! {
    /// Transform IDs of transform type 2, pseudorandom functions
    /// ([RFC 7296 § 3.3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2)).
    pub struct PrfId(u16);
    /// HMAC-MD5.
    HMAC_MD5 = 1,
    /// HMAC-SHA1.
    HMAC_SHA1 = 2,
    /// HMAC-Tiger.
    HMAC_TIGER = 3,
    /// AES128-XCBC.
    AES128_XCBC = 4,
    /// HMAC-SHA2-256 ([RFC 4868](https://www.rfc-editor.org/rfc/rfc4868)).
    HMAC_SHA2_256 = 5,
    /// HMAC-SHA2-384.
    HMAC_SHA2_384 = 6,
    /// HMAC-SHA2-512.
    HMAC_SHA2_512 = 7,
    /// AES128-CMAC.
    AES128_CMAC = 8,
}

wire_code! {
    /// Transform IDs of transform type 3, integrity algorithms
    /// ([RFC 7296 § 3.3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2)).
    pub struct IntegId(u16);
    /// No integrity algorithm (with an AEAD cipher).
    NONE = 0,
    /// HMAC-MD5-96.
    HMAC_MD5_96 = 1,
    /// HMAC-SHA1-96.
    HMAC_SHA1_96 = 2,
    /// DES-MAC.
    DES_MAC = 3,
    /// KPDK-MD5.
    KPDK_MD5 = 4,
    /// AES-XCBC-96.
    AES_XCBC_96 = 5,
    /// HMAC-MD5-128.
    HMAC_MD5_128 = 6,
    /// HMAC-SHA1-160.
    HMAC_SHA1_160 = 7,
    /// AES-CMAC-96.
    AES_CMAC_96 = 8,
    /// AES-128-GMAC.
    AES_128_GMAC = 9,
    /// AES-192-GMAC.
    AES_192_GMAC = 10,
    /// AES-256-GMAC.
    AES_256_GMAC = 11,
    /// HMAC-SHA2-256-128.
    HMAC_SHA2_256_128 = 12,
    /// HMAC-SHA2-384-192.
    HMAC_SHA2_384_192 = 13,
    /// HMAC-SHA2-512-256.
    HMAC_SHA2_512_256 = 14,
}

wire_code! {
    /// Transform IDs of transform type 4, Diffie-Hellman groups
    /// ([RFC 7296 § 3.3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2)), also used in
    /// the KE payload.
    pub struct DhGroup(u16);
    /// No group (a Child SA without PFS).
    NONE = 0,
    /// 768-bit MODP.
    MODP_768 = 1,
    /// 1024-bit MODP.
    MODP_1024 = 2,
    /// 1536-bit MODP.
    MODP_1536 = 5,
    /// 2048-bit MODP.
    MODP_2048 = 14,
    /// 3072-bit MODP.
    MODP_3072 = 15,
    /// 4096-bit MODP.
    MODP_4096 = 16,
    /// 6144-bit MODP.
    MODP_6144 = 17,
    /// 8192-bit MODP.
    MODP_8192 = 18,
    /// 256-bit random ECP group (NIST P-256).
    ECP_256 = 19,
    /// 384-bit random ECP group (NIST P-384).
    ECP_384 = 20,
    /// 521-bit random ECP group (NIST P-521).
    ECP_521 = 21,
    /// 1024-bit MODP with 160-bit prime order subgroup.
    MODP_1024_160 = 22,
    /// 2048-bit MODP with 224-bit prime order subgroup.
    MODP_2048_224 = 23,
    /// 2048-bit MODP with 256-bit prime order subgroup.
    MODP_2048_256 = 24,
    /// 192-bit random ECP group.
    ECP_192 = 25,
    /// 224-bit random ECP group.
    ECP_224 = 26,
    /// brainpoolP224r1.
    BRAINPOOL_P224R1 = 27,
    /// brainpoolP256r1.
    BRAINPOOL_P256R1 = 28,
    /// brainpoolP384r1.
    BRAINPOOL_P384R1 = 29,
    /// brainpoolP512r1.
    BRAINPOOL_P512R1 = 30,
    /// Curve25519 ([RFC 8031](https://www.rfc-editor.org/rfc/rfc8031)).
    CURVE25519 = 31,
    /// Curve448 ([RFC 8031](https://www.rfc-editor.org/rfc/rfc8031)).
    CURVE448 = 32,
}

wire_code! {
    /// Transform IDs of transform type 5, extended sequence numbers
    /// ([RFC 7296 § 3.3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2)).
    pub struct EsnId(u16);
    /// No extended sequence numbers.
    NO_ESN = 0,
    /// Extended sequence numbers.
    ESN = 1,
}

wire_code! {
    /// Transform attribute type ([RFC 7296 § 3.3.5](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.5)),
    /// without the Attribute Format bit.
    pub struct AttributeType(u16);
    /// Key Length in bits, always in the TV format: "The only algorithms defined in this
    /// document that accept attributes are the AES-based encryption, integrity, and key
    /// derivation functions, which require a single attribute specifying key width."
    KEY_LENGTH = 14,
}

wire_code! {
    /// Security protocol identifier
    /// ([RFC 7296 § 3.3.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.1)).
    pub struct ProtocolId(u8);
    /// No protocol: Notify payloads that concern no SA.
    NONE = 0,
    /// IKE.
    IKE = 1,
    /// AH.
    AH = 2,
    /// ESP.
    ESP = 3,
}

wire_code! {
    /// Authentication method of the AUTH payload
    /// ([RFC 7296 § 3.8](https://www.rfc-editor.org/rfc/rfc7296#section-3.8)).
    pub struct AuthMethod(u8);
    /// RSA digital signature (PKCS#1 v1.5 with SHA-1).
    RSA_DIGITAL_SIGNATURE = 1,
    /// Shared key message integrity code (PSK).
    SHARED_KEY_MIC = 2,
    /// DSS digital signature.
    DSS_DIGITAL_SIGNATURE = 3,
    /// ECDSA with SHA-256 on the P-256 curve (RFC 4754).
    ECDSA_SHA256_P256 = 9,
    /// ECDSA with SHA-384 on the P-384 curve (RFC 4754).
    ECDSA_SHA384_P384 = 10,
    /// ECDSA with SHA-512 on the P-521 curve (RFC 4754).
    ECDSA_SHA512_P521 = 11,
    /// Generic secure password methods (RFC 6467).
    GENERIC_SECURE_PASSWORD = 12,
    /// NULL authentication (RFC 7619).
    NULL = 13,
    /// Digital signature ([RFC 7427](https://www.rfc-editor.org/rfc/rfc7427)).
    DIGITAL_SIGNATURE = 14,
}

wire_code! {
    /// Identification type of IDi/IDr
    /// ([RFC 7296 § 3.5](https://www.rfc-editor.org/rfc/rfc7296#section-3.5)).
    pub struct IdType(u8);
    /// A single four-octet IPv4 address.
    IPV4_ADDR = 1,
    /// A fully qualified domain name.
    FQDN = 2,
    /// An RFC 822 email address.
    RFC822_ADDR = 3,
    /// A single sixteen-octet IPv6 address.
    IPV6_ADDR = 5,
    /// The binary DER encoding of an ASN.1 X.500 Distinguished Name.
    DER_ASN1_DN = 9,
    /// The binary DER encoding of an ASN.1 X.509 GeneralName.
    DER_ASN1_GN = 10,
    /// An opaque octet stream for vendor-specific information.
    KEY_ID = 11,
    /// Fibre Channel name (RFC 4595).
    FC_NAME = 12,
    /// NULL identity (RFC 7619).
    NULL = 13,
}

wire_code! {
    /// Traffic selector type ([RFC 7296 § 3.13.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.13.1)).
    pub struct TsType(u8);
    /// A range of IPv4 addresses.
    IPV4_ADDR_RANGE = 7,
    /// A range of IPv6 addresses.
    IPV6_ADDR_RANGE = 8,
    /// A range of Fibre Channel addresses (RFC 4595).
    FC_ADDR_RANGE = 9,
}

wire_code! {
    /// Certificate encoding of CERT and CERTREQ
    /// ([RFC 7296 § 3.6](https://www.rfc-editor.org/rfc/rfc7296#section-3.6)).
    pub struct CertEncoding(u8);
    /// PKCS #7 wrapped X.509 certificate.
    PKCS7_X509 = 1,
    /// PGP certificate.
    PGP = 2,
    /// DNS signed key.
    DNS_SIGNED_KEY = 3,
    /// X.509 certificate - signature.
    X509_SIGNATURE = 4,
    /// Kerberos token.
    KERBEROS_TOKEN = 6,
    /// Certificate revocation list (CRL).
    CRL = 7,
    /// Authority revocation list (ARL).
    ARL = 8,
    /// SPKI certificate.
    SPKI = 9,
    /// X.509 certificate - attribute.
    X509_ATTRIBUTE = 10,
    /// Raw RSA key (deprecated).
    RAW_RSA_KEY = 11,
    /// Hash and URL of X.509 certificate.
    HASH_URL_X509 = 12,
    /// Hash and URL of X.509 bundle.
    HASH_URL_X509_BUNDLE = 13,
    /// OCSP content (RFC 4806).
    OCSP_CONTENT = 14,
    /// Raw public key (RFC 7670).
    RAW_PUBLIC_KEY = 15,
}

wire_code! {
    /// Configuration payload type
    /// ([RFC 7296 § 3.15](https://www.rfc-editor.org/rfc/rfc7296#section-3.15)).
    pub struct CfgType(u8);
    /// CFG_REQUEST.
    REQUEST = 1,
    /// CFG_REPLY.
    REPLY = 2,
    /// CFG_SET.
    SET = 3,
    /// CFG_ACK.
    ACK = 4,
}

wire_code! {
    /// Configuration attribute type, 15 bits
    /// ([RFC 7296 § 3.15.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.15.1)).
    pub struct CfgAttrType(u16);
    /// INTERNAL_IP4_ADDRESS.
    INTERNAL_IP4_ADDRESS = 1,
    /// INTERNAL_IP4_NETMASK.
    INTERNAL_IP4_NETMASK = 2,
    /// INTERNAL_IP4_DNS.
    INTERNAL_IP4_DNS = 3,
    /// INTERNAL_IP4_NBNS.
    INTERNAL_IP4_NBNS = 4,
    /// INTERNAL_IP4_DHCP.
    INTERNAL_IP4_DHCP = 6,
    /// APPLICATION_VERSION.
    APPLICATION_VERSION = 7,
    /// INTERNAL_IP6_ADDRESS.
    INTERNAL_IP6_ADDRESS = 8,
    /// INTERNAL_IP6_DNS.
    INTERNAL_IP6_DNS = 10,
    /// INTERNAL_IP6_DHCP.
    INTERNAL_IP6_DHCP = 12,
    /// INTERNAL_IP4_SUBNET.
    INTERNAL_IP4_SUBNET = 13,
    /// SUPPORTED_ATTRIBUTES.
    SUPPORTED_ATTRIBUTES = 14,
    /// INTERNAL_IP6_SUBNET.
    INTERNAL_IP6_SUBNET = 15,
    /// MIP6_HOME_PREFIX (RFC 5026).
    MIP6_HOME_PREFIX = 16,
    /// INTERNAL_IP6_LINK (RFC 5739).
    INTERNAL_IP6_LINK = 17,
    /// INTERNAL_IP6_PREFIX (RFC 5739).
    INTERNAL_IP6_PREFIX = 18,
    /// HOME_AGENT_ADDRESS (RFC 5555).
    HOME_AGENT_ADDRESS = 19,
    /// P_CSCF_IP4_ADDRESS (RFC 7651).
    P_CSCF_IP4_ADDRESS = 20,
    /// P_CSCF_IP6_ADDRESS (RFC 7651).
    P_CSCF_IP6_ADDRESS = 21,
    /// FTT_KAT (RFC 8598 registry entry).
    FTT_KAT = 22,
    /// EXTERNAL_SOURCE_IP4_NAT_INFO (RFC 7651 registry entry).
    EXTERNAL_SOURCE_IP4_NAT_INFO = 23,
    /// TIMEOUT_PERIOD_FOR_LIVENESS_CHECK.
    TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24,
    /// INTERNAL_DNS_DOMAIN (RFC 8598).
    INTERNAL_DNS_DOMAIN = 25,
    /// INTERNAL_DNSSEC_TA (RFC 8598).
    INTERNAL_DNSSEC_TA = 26,
}

wire_code! {
    /// Hash algorithm identifiers carried by SIGNATURE_HASH_ALGORITHMS
    /// ([RFC 7427 § 7](https://www.rfc-editor.org/rfc/rfc7427#section-7)).
    pub struct HashAlgorithm(u16);
    /// SHA-1.
    SHA1 = 1,
    /// SHA2-256.
    SHA2_256 = 2,
    /// SHA2-384.
    SHA2_384 = 3,
    /// SHA2-512.
    SHA2_512 = 4,
    /// Identity (RFC 8420, for EdDSA).
    IDENTITY = 5,
}
