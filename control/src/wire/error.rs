//! Decode and encode errors: small `Copy` enums that name the structure at fault and map to the
//! Notify the peer should see.
//!
//! How to answer is the engine's decision
//! ([RFC 7296 § 2.21.1](https://www.rfc-editor.org/rfc/rfc7296#section-2.21.1): errors in
//! unauthenticated messages are answered only where the RFC says so, and never with a lost
//! established SA); the codec only says which Notify fits.

use super::codes::{NotifyType, PayloadType};

/// The wire structure an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Structure {
    /// The IKE header.
    Header,
    /// The chain of payloads of a message (or of a decrypted SK payload).
    PayloadChain,
    /// A generic payload header.
    PayloadHeader,
    /// An SA payload.
    SecurityAssociation,
    /// A proposal substructure.
    Proposal,
    /// A transform substructure.
    Transform,
    /// A transform attribute.
    Attribute,
    /// A KE payload.
    KeyExchange,
    /// An IDi or IDr payload.
    Identification,
    /// A CERT payload.
    Certificate,
    /// A CERTREQ payload.
    CertificateRequest,
    /// An AUTH payload.
    Authentication,
    /// A Nonce payload.
    Nonce,
    /// A Notify payload.
    Notify,
    /// A Delete payload.
    Delete,
    /// A Vendor ID payload.
    VendorId,
    /// A TSi or TSr payload.
    TrafficSelectors,
    /// One traffic selector.
    TrafficSelector,
    /// An SK payload.
    Encrypted,
    /// An SKF payload.
    EncryptedFragment,
    /// A CP payload.
    Configuration,
    /// A configuration attribute.
    ConfigAttribute,
    /// An EAP payload.
    Eap,
    /// A payload we keep as opaque bytes.
    Unknown,
}

/// Why bytes from the peer do not decode.
///
/// Every variant is something the peer controls; none is a bug of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a fixed-size field.
    #[error("{0:?} truncated")]
    Truncated(Structure),
    /// A length field is below the structure's minimum or runs past its container.
    #[error("{0:?} has a length field that lies")]
    BadLength(Structure),
    /// Bytes remain after the structure's content ended.
    #[error("trailing bytes after {0:?}")]
    TrailingBytes(Structure),
    /// More elements than our named cap allows (see `codec` for the caps).
    #[error("too many elements in {0:?}")]
    TooMany(Structure),
    /// A field holds a value the RFC forbids.
    #[error("invalid value in {0:?}")]
    InvalidValue(Structure),
    /// The header's major version is not 2.
    #[error("unsupported IKE major version {0}")]
    InvalidMajorVersion(u8),
    /// A payload type we do not understand, with the critical bit set.
    #[error("unsupported critical payload {0}")]
    UnsupportedCriticalPayload(PayloadType),
}

impl DecodeError {
    /// The Notify the peer should see for this error, where one applies.
    ///
    /// - [`UnsupportedCriticalPayload`](DecodeError::UnsupportedCriticalPayload) →
    ///   `UNSUPPORTED_CRITICAL_PAYLOAD`, whose data is the one-octet payload type
    ///   ([RFC 7296 § 2.5](https://www.rfc-editor.org/rfc/rfc7296#section-2.5)).
    /// - [`InvalidMajorVersion`](DecodeError::InvalidMajorVersion) with a version above 2 →
    ///   `INVALID_MAJOR_VERSION`; an IKEv1 message (major 1) gets none.
    /// - An invalid fragment (SKF numbering) gets none: such fragments are discarded without
    ///   an answer ([RFC 7383 § 2.6](https://www.rfc-editor.org/rfc/rfc7383#section-2.6)).
    /// - Every other malformation → `INVALID_SYNTAX`
    ///   ([RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1):
    ///   "Indicates the IKE message that was received was malformed"). An error in the header
    ///   itself leaves nothing to answer to; the engine drops and counts it.
    pub fn notify(&self) -> Option<NotifyType> {
        match *self {
            DecodeError::UnsupportedCriticalPayload(_) => {
                Some(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD)
            }
            DecodeError::InvalidMajorVersion(v) if v > 2 => Some(NotifyType::INVALID_MAJOR_VERSION),
            DecodeError::InvalidMajorVersion(_) => None,
            DecodeError::InvalidValue(Structure::EncryptedFragment) => None,
            DecodeError::Truncated(_)
            | DecodeError::BadLength(_)
            | DecodeError::TrailingBytes(_)
            | DecodeError::TooMany(_)
            | DecodeError::InvalidValue(_) => Some(NotifyType::INVALID_SYNTAX),
        }
    }

    /// The structure at fault, if the error names one.
    pub fn structure(&self) -> Option<Structure> {
        match *self {
            DecodeError::Truncated(s)
            | DecodeError::BadLength(s)
            | DecodeError::TrailingBytes(s)
            | DecodeError::TooMany(s)
            | DecodeError::InvalidValue(s) => Some(s),
            DecodeError::InvalidMajorVersion(_) => Some(Structure::Header),
            DecodeError::UnsupportedCriticalPayload(_) => Some(Structure::PayloadChain),
        }
    }
}

/// Why a value of ours cannot be encoded. These are our own mistakes, reported rather than
/// panicked on so a daemon survives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The structure does not fit its length or count field.
    #[error("{0:?} too long for its length field")]
    TooLong(Structure),
    /// A field holds a value the peer would reject (the same rule decoding enforces).
    #[error("invalid value in {0:?}")]
    InvalidValue(Structure),
}
