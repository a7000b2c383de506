//! roamgate's control plane: the sans-IO IKEv2/MOBIKE engine and the daemon around it.
//!
//! So far the crate holds the IKEv2 wire codec, [`wire`], the IKEv2 crypto layer,
//! [`crypto`] (key derivation, DH, SK protection, proposal strings), and the sans-IO IKEv2
//! engine, [`engine`] (IKE_SA_INIT, IKE_AUTH with PSK, CHILD_SAs, NAT detection and
//! traversal, cookies, virtual IPs, Delete, liveness checks, CHILD_SA and IKE SA rekeying),
//! which tells the data plane what to install through [`engine::SaEvent`]s; see
//! `docs/architecture.md` for the layout the rest follows.
#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod engine;
pub mod pinned_sink;
pub mod wire;
