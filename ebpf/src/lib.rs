//! roamgate's XDP classifier and the map ABI shared with it.
//!
//! The program (`bpf/xdp_classify.c`, compiled by build.rs with clang and embedded here) steers
//! inbound ESP and ESP-in-UDP for the gateway's own addresses and known SPIs to the AF_XDP
//! socket of the RX queue it arrived on, drops ESP for local addresses with unknown SPIs, and
//! passes everything else (IKE, NAT keepalives, ARP, fragments) to the kernel, counting every
//! frame. [`Classifier`] loads it with its maps pinned in a per-instance bpffs directory,
//! attaches it and writes the maps; [`abi`] mirrors the records of `bpf/roamgate_abi.h`;
//! [`tables`] maps the SA and endpoint tables shared by the control process and the gateway;
//! [`ReadyMarker`] is the gateway's readiness marker, pinned last.
//!
//! On LAN interfaces (see [`Classifier::set_iface`]) the program steers packets to protected
//! prefixes to the AF_XDP sockets instead.
#![warn(missing_docs, unreachable_pub)]

pub mod abi;
mod bpffs;
mod classifier;
mod counters;
mod error;
mod ready;
pub mod tables;

pub use classifier::{
    AttachMode, Classifier, Iface, LocalAddrs, PROGRAM_NAME, XdpAction, remove_pins,
};
pub use counters::Counters;
pub use error::{EbpfError, Result};
pub use ready::{ReadyMarker, read_ready, ready_path, remove_stale_ready};
pub use tables::{
    Cipher, Direction, Endpoint, EndpointTable, NextHop, Prefix, STATIC_SA_SLOTS, SaLimits, SaMode,
    SaSpec, SaTable, WorkerCounters,
};
