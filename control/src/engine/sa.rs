//! What the engine tells the data plane: CHILD_SAs to install, endpoint addresses to move,
//! SAs to delete. The data plane applies each [`SaEvent`] through an [`SaSink`]; the in-memory
//! [`MemorySaSink`] serves tests, the pinned-eBPF-map sink lives with the data plane.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::IkeSaHandle;
use super::config::Mode;
use crate::crypto::Secret;
use crate::crypto::sk::{Encr, Integ};
use crate::wire::payload::TrafficSelector;

/// The IPsec protocol of a CHILD_SA (only ESP is negotiated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildProtocol {
    /// Encapsulating Security Payload.
    Esp,
}

/// The keys of one direction of a CHILD_SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaKeys {
    /// The SPI the receiver of this direction chose.
    pub spi: u32,
    /// The encryption key (for AES-GCM without the salt).
    pub encryption_key: Secret,
    /// The AES-GCM salt ([RFC 4106 § 8.1](https://www.rfc-editor.org/rfc/rfc4106#section-8.1)),
    /// empty for other ciphers.
    pub salt: Secret,
    /// The integrity key, empty with an AEAD.
    pub integrity_key: Secret,
}

/// Lifetimes of a CHILD_SA, relative to its installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// When the engine rekeys it, if ever.
    pub rekey_time: Option<Duration>,
}

/// A CHILD_SA pair to install
/// ([RFC 7296 § 2.17](https://www.rfc-editor.org/rfc/rfc7296#section-2.17) for the keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaInstall {
    /// The IKE SA it belongs to; it follows that SA's path.
    pub ike_sa: IkeSaHandle,
    /// The CHILD_SA configuration's name.
    pub name: String,
    /// The protocol.
    pub protocol: ChildProtocol,
    /// The mode.
    pub mode: Mode,
    /// The encryption algorithm.
    pub encryption: Encr,
    /// The integrity algorithm, `None` with an AEAD.
    pub integrity: Option<Integ>,
    /// Whether extended sequence numbers are used.
    pub esn: bool,
    /// Packets we receive.
    pub inbound: SaKeys,
    /// Packets we send.
    pub outbound: SaKeys,
    /// Our tunnel endpoint.
    pub local: SocketAddr,
    /// The peer's tunnel endpoint.
    pub remote: SocketAddr,
    /// Whether ESP is UDP-encapsulated ([RFC 3948](https://www.rfc-editor.org/rfc/rfc3948)),
    /// on the ports of `local` and `remote`.
    pub udp_encap: bool,
    /// Our side's (narrowed) traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Lifetimes.
    pub lifetimes: Lifetimes,
}

/// One instruction for the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaEvent {
    /// Install both directions of a new CHILD_SA.
    Install(Box<ChildSaInstall>),
    /// Move a CHILD_SA to a new address pair, in place.
    UpdateAddresses {
        /// The IKE SA.
        ike_sa: IkeSaHandle,
        /// The CHILD_SA's inbound SPI.
        inbound_spi: u32,
        /// The CHILD_SA's outbound SPI.
        outbound_spi: u32,
        /// The new local endpoint.
        local: SocketAddr,
        /// The new remote endpoint.
        remote: SocketAddr,
        /// Whether ESP is now UDP-encapsulated.
        udp_encap: bool,
    },
    /// Remove both directions of a CHILD_SA.
    Delete {
        /// The IKE SA.
        ike_sa: IkeSaHandle,
        /// The CHILD_SA's inbound SPI.
        inbound_spi: u32,
        /// The CHILD_SA's outbound SPI.
        outbound_spi: u32,
    },
}

/// Why the data plane could not apply an [`SaEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaSinkError {
    /// The SA table is full.
    #[error("SA table full")]
    Full,
    /// No SA with this inbound SPI.
    #[error("no SA with inbound SPI {0:#010x}")]
    UnknownSpi(u32),
    /// An SA with this inbound SPI exists already.
    #[error("an SA with inbound SPI {0:#010x} exists")]
    DuplicateSpi(u32),
    /// Anything else the implementation reports.
    #[error("{0}")]
    Other(String),
}

/// Where the engine's [`SaEvent`]s go: the data plane's SA table.
pub trait SaSink {
    /// Applies one event.
    fn apply(&mut self, event: &SaEvent) -> Result<(), SaSinkError>;
}

/// An [`SaSink`] that keeps the installed SAs in memory, by inbound SPI.
#[derive(Debug, Default, Clone)]
pub struct MemorySaSink {
    sas: BTreeMap<u32, ChildSaInstall>,
    applied: u64,
    /// At most this many SAs, like a data plane's table; unbounded if `None`.
    capacity: Option<usize>,
}

impl MemorySaSink {
    /// An empty table.
    pub fn new() -> MemorySaSink {
        MemorySaSink::default()
    }

    /// An empty table that holds at most `capacity` SAs and refuses further installs with
    /// [`SaSinkError::Full`], as a data plane's full table does.
    pub fn with_capacity(capacity: usize) -> MemorySaSink {
        MemorySaSink {
            capacity: Some(capacity),
            ..MemorySaSink::default()
        }
    }

    /// The SA with this inbound SPI.
    pub fn by_inbound(&self, spi: u32) -> Option<&ChildSaInstall> {
        self.sas.get(&spi)
    }

    /// The SA whose outbound SPI is `spi`.
    pub fn by_outbound(&self, spi: u32) -> Option<&ChildSaInstall> {
        self.sas.values().find(|s| s.outbound.spi == spi)
    }

    /// Every installed SA, by inbound SPI.
    pub fn iter(&self) -> impl Iterator<Item = &ChildSaInstall> {
        self.sas.values()
    }

    /// How many SAs are installed.
    pub fn len(&self) -> usize {
        self.sas.len()
    }

    /// Whether none is installed.
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty()
    }

    /// How many events were applied successfully.
    pub fn applied(&self) -> u64 {
        self.applied
    }
}

impl SaSink for MemorySaSink {
    fn apply(&mut self, event: &SaEvent) -> Result<(), SaSinkError> {
        match event {
            SaEvent::Install(sa) => {
                if self.sas.contains_key(&sa.inbound.spi) {
                    return Err(SaSinkError::DuplicateSpi(sa.inbound.spi));
                }
                if self.capacity.is_some_and(|c| self.sas.len() >= c) {
                    return Err(SaSinkError::Full);
                }
                self.sas.insert(sa.inbound.spi, (**sa).clone());
            }
            SaEvent::UpdateAddresses {
                inbound_spi,
                local,
                remote,
                udp_encap,
                ..
            } => {
                let sa = self
                    .sas
                    .get_mut(inbound_spi)
                    .ok_or(SaSinkError::UnknownSpi(*inbound_spi))?;
                sa.local = *local;
                sa.remote = *remote;
                sa.udp_encap = *udp_encap;
            }
            SaEvent::Delete { inbound_spi, .. } => {
                self.sas
                    .remove(inbound_spi)
                    .ok_or(SaSinkError::UnknownSpi(*inbound_spi))?;
            }
        }
        self.applied += 1;
        Ok(())
    }
}
