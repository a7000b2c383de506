//! roamgate's data plane: AF_XDP workers and the ESP transforms they run.
//!
//! The crate is filled in by the data-plane work (ESP core, AF_XDP workers); see
//! `docs/architecture.md` for the layout it follows.
#![warn(missing_docs, unreachable_pub)]
