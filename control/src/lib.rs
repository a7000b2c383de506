//! roamgate's control plane: the sans-IO IKEv2/MOBIKE engine and the daemon around it.
//!
//! - [`wire`]: the IKEv2 codec (RFC 7296 payloads, MOBIKE notifies);
//! - [`crypto`]: key derivation, DH, SK protection (and fragments), proposal strings;
//! - [`auth`]: PSK and RFC 7427 signature authentication, certificates, identities;
//! - [`engine`]: the sans-IO engine (IKE_SA_INIT, IKE_AUTH with PSK or certificates,
//!   CHILD_SAs, NAT traversal, cookies, virtual IPs, Delete, liveness checks, rekeying, IKE
//!   fragmentation), which tells the data plane what to install through
//!   [`engine::SaEvent`]s;
//! - [`config`]: the swanctl-shaped TOML configuration;
//! - [`daemon`]: sockets, signals and the poll loop of `roamgate control`;
//! - [`pinned_sink`]: the [`engine::SaSink`] that writes SAs into the data plane's maps.
//!
//! `docs/architecture.md` shows how the parts fit.
#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod engine;
pub mod pinned_sink;
pub mod wire;
