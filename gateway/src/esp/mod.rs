//! ESP ([RFC 4303]) with AES-GCM-16 ([RFC 4106]): the transforms the workers run per packet.
//!
//! - [`sa`]: SAs, keys, modes, paths.
//! - [`encap`] / [`decap`]: the transforms, in place on the caller's frame.
//! - [`replay`]: the shared, lock-free anti-replay window.
//! - [`seq`]: outbound sequence numbers, lifetimes and the events they raise.
//! - [`pmtu`]: path MTU and the ICMP answers to inner senders.
//!
//! [RFC 4303]: https://www.rfc-editor.org/rfc/rfc4303
//! [RFC 4106]: https://www.rfc-editor.org/rfc/rfc4106

pub mod decap;
pub mod encap;
pub mod pmtu;
pub mod replay;
pub mod sa;
pub mod seq;

pub use decap::{Decapsulated, OuterSource, decapsulate};
pub use encap::{EncapError, Encapsulated, HEADROOM, TAILROOM, emit_nat_keepalive};
pub use pmtu::{PacketTooBig, fragment_ipv4, icmp_too_big, parse_packet_too_big};
pub use replay::ReplayWindow;
pub use sa::{
    BeetAddrs, DfPolicy, GcmKey, InboundSa, KeySize, Mode, OutboundSa, OuterAddrs, OuterPolicy,
    Padding, SaConfig, SaError, SaPath, UdpPorts,
};
pub use seq::{Lifetime, LimitKind, SaEvent, SeqCounter};
