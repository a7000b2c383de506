//! roamgate's control plane: the sans-IO IKEv2/MOBIKE engine and the daemon around it.
//!
//! The crate is filled in by the IKEv2 work; see `docs/architecture.md` for the layout it
//! follows.
#![warn(missing_docs, unreachable_pub)]
