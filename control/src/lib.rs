//! roamgate's control plane: the sans-IO IKEv2/MOBIKE engine and the daemon around it.
//!
//! So far the crate holds the IKEv2 wire codec, [`wire`], and the IKEv2 crypto layer,
//! [`crypto`] (key derivation, DH, SK protection, proposal strings); see
//! `docs/architecture.md` for the layout the rest follows.
#![warn(missing_docs, unreachable_pub)]

pub mod crypto;
pub mod daemon;
pub mod wire;
