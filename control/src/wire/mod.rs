//! The IKEv2 wire format ([RFC 7296 § 3](https://www.rfc-editor.org/rfc/rfc7296#section-3)),
//! with MOBIKE's notifications ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4))
//! and IKE fragmentation's SKF payload ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)).
//!
//! The contract, for everything in here: bytes from the peer are checked once, structure by
//! structure, against the length of the buffer that holds them; after the check, nothing can
//! panic or read out of bounds, and nothing is allocated beyond the size of the input. Every
//! count the peer sends has a named cap in [`codec`]. A decode error is a small `Copy` value
//! naming the structure at fault, and [`DecodeError::notify`] says which Notify the peer should
//! see. Decoding then encoding reproduces what the peer sent, except for reserved bits (which
//! "MUST be sent as zero; MUST be ignored on receipt").
//!
//! - [`codes`]: the registries' code points as newtypes; unknown values survive.
//! - [`header`]: the IKE header (`Packet` view and `Repr`).
//! - [`codec`]: the bounded reader and the length-patching writer.
//! - [`payload`]: the generic payload header, each payload, the payload chain.
//! - [`message`]: a whole datagram.

// Deterministic and sans-IO: no clock, OS randomness, socket or file (control/clippy.toml).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod codec;
pub mod codes;
pub mod error;
pub mod header;
pub mod message;
pub mod payload;

pub use codes::*;
pub use error::{DecodeError, EncodeError, Structure};
pub use message::Message;
pub use payload::Payload;
