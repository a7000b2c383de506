//! roamgate's data plane: the ESP transforms the AF_XDP workers run on every packet.
//!
//! The transforms are pure functions over byte slices that work in place on a frame the caller
//! owns (headroom and tailroom included): [`esp::OutboundSa::encapsulate`] and
//! [`esp::decapsulate`]. They allocate nothing, do a bounded amount of work, and answer bad
//! input with a [`DropReason`], never a panic. Wire formats live in [`wire`]; every drop is
//! named and counted through [`drop`].
//!
//! See README.md for the design of the anti-replay window shared by workers and for the
//! measurements behind the choice of AES-GCM implementation.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod dataplane;
pub mod drop;
pub mod esp;
pub mod netlink;
pub mod wire;
pub mod xsk;

pub use drop::{DropCounters, DropReason};
