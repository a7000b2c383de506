//! The sans-IO IKEv2 engine ([RFC 7296](https://www.rfc-editor.org/rfc/rfc7296)).
//!
//! [`Engine`] owns every IKE SA of the process and is driven entirely from outside, like
//! quinn-proto's `Connection`: datagrams come in through [`Engine::handle_datagram`], time
//! through [`Engine::handle_timeout`], operator commands through [`Engine::initiate`],
//! [`Engine::terminate_ike`] and friends; what comes out is polled. Nothing in here reads a
//! clock, opens a socket or touches a global RNG: the same inputs with the same seeded
//! [`Rng`] give the same outputs, byte for byte.
//!
//! # Polling order
//!
//! After every input (datagram, timeout or command), the caller:
//!
//! 1. sends every [`Engine::poll_transmit`] datagram from `local` to `remote`,
//! 2. applies every [`Engine::poll_sa_event`] to the data plane and hands the result back
//!    with [`Engine::handle_sa_result`] (or calls [`Engine::apply_sa_events`] with an
//!    [`SaSink`], which does both); a refusal can queue more to send,
//! 3. handles every [`Engine::poll_event`],
//! 4. sleeps until [`Engine::poll_timeout`] (or the next datagram) and calls
//!    [`Engine::handle_timeout`] when it passes.
//!
//! # Event flow
//!
//! An initiator's [`Engine::initiate`] sends IKE_SA_INIT; when IKE_AUTH completes, both sides
//! emit [`Event::IkeSaEstablished`], then for the CHILD_SA an [`SaEvent::Install`] (both
//! directions, keys, endpoints, selectors) and [`Event::ChildSaEstablished`]. A handshake that
//! fails emits [`Event::IkeSaFailed`] with a [`FailureReason`] and installs nothing; a
//! CHILD_SA the peer refuses emits [`Event::ChildSaFailed`] while the IKE SA stays. One more
//! CHILD_SA on an established IKE SA ([`Engine::initiate_child`], or the peer's
//! CREATE_CHILD_SA) brings the same [`SaEvent::Install`] and [`Event::ChildSaEstablished`];
//! an initiator creates a connection's further start-action CHILD_SAs that way right after
//! IKE_AUTH. A rekeyed
//! CHILD_SA is a new [`SaEvent::Install`] followed by the old one's [`SaEvent::Delete`]
//! ([`DeleteReason::Rekeyed`]); a rekeyed IKE SA keeps its [`IkeSaHandle`] and CHILD_SAs
//! ([`Event::IkeSaRekeyed`], no SA event). A moved IKE SA ([`Engine::update_ike_sa_path`])
//! emits one [`SaEvent::UpdateAddresses`] per CHILD_SA and [`Event::PathUpdated`]. A deleted
//! or dead IKE SA emits [`SaEvent::Delete`] for each CHILD_SA, then [`Event::IkeSaDeleted`].
//!
//! # Decisions
//!
//! - Proposal selection follows strongSwan: the responder's proposals in its order, the
//!   peer's within each; a KE of an acceptable group is used as is.
//! - One request in flight per IKE SA (window size 1); further requests queue. Requests are
//!   retransmitted with exponential backoff ([`RetransmitConfig`], strongSwan's defaults);
//!   retransmitted requests are answered from a cache of the last response, compared byte
//!   for byte; anything else out of the window is a counted drop.
//! - Unprotected input can only end a handshake in progress (as in every IKEv2
//!   implementation); once IKE_AUTH starts, every message must pass the SK integrity check
//!   before anything happens, so no unauthenticated datagram can touch an established SA.
//! - INITIAL_CONTACT makes the responder delete older IKE SAs of the same connection and
//!   identity, so a restarted road warrior gets its virtual IP back at once.
//! - Authentication is by pre-shared key or by signature with X.509 certificates
//!   ([RFC 7427](https://www.rfc-editor.org/rfc/rfc7427)). Both sides announce
//!   SIGNATURE_HASH_ALGORITHMS in IKE_SA_INIT; a side that verifies signatures sends CERTREQ
//!   (responder: in IKE_SA_INIT, initiator: in IKE_AUTH). A responder picks the connection
//!   when IDi arrives: the first whose addresses and remote identity match and whose
//!   credentials verify the peer's AUTH. Certificate validity needs wall-clock time, which
//!   the caller supplies with [`Engine::set_wall_clock`].
//! - IKE fragmentation ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)): announced in
//!   IKE_SA_INIT when the connection allows it; once both sides did, a protected message
//!   larger than [`EngineConfig::fragment_size`] goes out in Encrypted Fragment payloads
//!   (retransmitted together), and received fragments are checked one by one, then put
//!   together (at most 64 per message, 64 KiB, 30 s). A retransmitted first fragment of an
//!   answered request gets the whole cached response again.
//! - Paths ([`path`]): each IKE SA has the pair it uses, with its NAT state, and its
//!   address sets — ours (the connection's `local_addrs` among the host's addresses on its
//!   `links`, which the daemon reports with [`Engine::set_local_addresses`]; all of them for
//!   `%any`) and
//!   the peer's (the address it uses and, with MOBIKE, those it announced in IKE_AUTH) —
//!   with the candidate pairs they make, in preference order, each with its check state
//!   ([`path::PathCheck`]; an authenticated answer on a pair marks it reachable). An
//!   outstanding request remembers the pair it went on; a response is matched whatever
//!   pair it arrives on. [`Engine::update_ike_sa_path`] moves an SA and its CHILD_SAs.
//! - MOBIKE ([RFC 4555](https://www.rfc-editor.org/rfc/rfc4555)), when both sides announce
//!   it: each side's other addresses in IKE_AUTH and, when its set changes, in an
//!   INFORMATIONAL. An initiator whose address in use is gone sends an empty INFORMATIONAL
//!   on every candidate pair at once (one message ID) and moves to the first pair that
//!   answers with UPDATE_SA_ADDRESSES (NAT detection, COOKIE2; an answer that does not echo
//!   the cookie closes the IKE SA). A responder moves to the pair an UPDATE_SA_ADDRESSES
//!   came on, after a return routability check where the connection's
//!   [`ReturnRoutability`] asks for one; a responder whose own address in use is gone sends
//!   its list on every pair still open to it and moves to the one answered (a strongSwan
//!   initiator follows such a list at once) unless the initiator moved the SA meanwhile; an
//!   initiator that gets such a list checks the pairs and always ends with an
//!   UPDATE_SA_ADDRESSES, so that both sides end on its choice. A request unanswered twice
//!   on its pair goes on every candidate pair too; an answer on another pair starts the
//!   same moves. With the connection's `hold`, a peer that answers on no pair keeps its SAs
//!   for that long. Only authenticated exchanges move an SA; a new source on anything only
//!   starts checks.
//!   EAP is not in this engine yet.
//!
//! # Ports
//!
//! IKE runs on [`EngineConfig`]'s `ike_port` (500) and moves to the NAT-T port (4500) when a
//! NAT is detected or MOBIKE is configured
//! ([RFC 7296 § 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23)). The caller tells
//! which port a datagram arrived on through the port of `local`; on the NAT-T port the engine
//! strips and adds the non-ESP marker itself.

// Deterministic and sans-IO: no clock, OS randomness, socket or file (control/clippy.toml).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod auth;
pub mod config;
mod exchange;
mod ike_sa;
pub mod keylog;
pub mod nat;
pub mod negotiate;
pub mod path;
mod pool;
pub mod sa;
pub mod stats;
mod table;
mod timer;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use config::{
    ChildConfig, ConnectionConfig, EngineConfig, LocalAuth, Mode, PoolConfig, RemoteAuth,
    RetransmitConfig, ReturnRoutability, SendCert, StartAction, TsConfig,
};
pub use sa::{
    ChildProtocol, ChildSaInstall, Lifetimes, MemorySaSink, SaEvent, SaKeys, SaSink, SaSinkError,
};
pub use stats::EngineStats;

use crate::crypto::Rng;
use crate::wire::message::NatTraversalDatagram;
use crate::wire::payload::Identification;
use crate::wire::{Message, NotifyType};
use ike_sa::IkeSa;
use table::{Others, SaTable};

/// The standard IKE port.
pub const IKE_PORT: u16 = 500;
/// The NAT traversal port ([RFC 3948](https://www.rfc-editor.org/rfc/rfc3948)).
pub const NATT_PORT: u16 = 4500;

/// Names one IKE SA for as long as it (and its rekeyed successors) live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaHandle(pub u64);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from.
    pub local: SocketAddr,
    /// The destination.
    pub remote: SocketAddr,
    /// The UDP payload (with the non-ESP marker on the NAT-T port).
    pub payload: Vec<u8>,
}

/// Why an IKE SA or CHILD_SA could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// No proposal in common (we sent or received NO_PROPOSAL_CHOSEN).
    NoProposalChosen,
    /// The peer's AUTH payload did not verify, or its identity matched no connection.
    AuthenticationFailed,
    /// The peer rejected our authentication (AUTHENTICATION_FAILED received).
    PeerAuthenticationFailed,
    /// No traffic selectors in common (TS_UNACCEPTABLE).
    TsUnacceptable,
    /// The responder could not assign a virtual IP (INTERNAL_ADDRESS_FAILURE).
    InternalAddressFailure,
    /// The peer stopped answering.
    Timeout,
    /// The configuration asks for something this engine cannot do.
    Unsupported(&'static str),
    /// The peer sent another error notification.
    Notify(NotifyType),
    /// The peer's message broke the protocol.
    Protocol(&'static str),
}

/// Why an established IKE SA or CHILD_SA went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// We deleted it (command).
    Local,
    /// The peer deleted it.
    Peer,
    /// The peer stopped answering (DPD or another exchange timed out).
    DeadPeer,
    /// Replaced by a rekeyed SA.
    Rekeyed,
    /// Its hard lifetime (rekey time + over time) ran out before a rekey succeeded.
    Expired,
    /// The data plane refused to install or move it ([`Engine::handle_sa_result`]); the
    /// peer is told with a Delete.
    DataPlaneRefused,
    /// The answer to our UPDATE_SA_ADDRESSES or return routability check did not echo our
    /// COOKIE2 ([RFC 4555 § 3.7](https://www.rfc-editor.org/rfc/rfc4555#section-3.7)); the
    /// peer is told with a Delete.
    Cookie2Mismatch,
}

/// Something the daemon should know about (the data plane's instructions are [`SaEvent`]s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An IKE SA is established (both AUTH payloads verified).
    IkeSaEstablished {
        /// Its handle.
        handle: IkeSaHandle,
        /// The connection's name.
        connection: String,
        /// Whether we are the original initiator.
        initiator: bool,
        /// Our endpoint.
        local: SocketAddr,
        /// The peer's endpoint.
        remote: SocketAddr,
        /// The peer's authenticated identity.
        peer_id: Identification,
    },
    /// An IKE SA could not be set up; nothing was installed for it.
    IkeSaFailed {
        /// Its handle.
        handle: IkeSaHandle,
        /// The connection's name.
        connection: String,
        /// Why.
        reason: FailureReason,
    },
    /// An established IKE SA and all its CHILD_SAs are gone.
    IkeSaDeleted {
        /// Its handle.
        handle: IkeSaHandle,
        /// Why.
        reason: DeleteReason,
    },
    /// A CHILD_SA was installed.
    ChildSaEstablished {
        /// The IKE SA.
        handle: IkeSaHandle,
        /// The CHILD_SA configuration's name.
        name: String,
        /// Our inbound SPI.
        inbound_spi: u32,
        /// Our outbound SPI.
        outbound_spi: u32,
    },
    /// A CHILD_SA could not be set up (the IKE SA stays).
    ChildSaFailed {
        /// The IKE SA.
        handle: IkeSaHandle,
        /// The CHILD_SA configuration's name.
        name: String,
        /// Why.
        reason: FailureReason,
    },
    /// A CHILD_SA was deleted.
    ChildSaDeleted {
        /// The IKE SA.
        handle: IkeSaHandle,
        /// Our inbound SPI.
        inbound_spi: u32,
        /// Why.
        reason: DeleteReason,
    },
    /// The peer assigned us a virtual IP (initiator) or we assigned one (responder).
    VirtualIp {
        /// The IKE SA.
        handle: IkeSaHandle,
        /// The address.
        address: IpAddr,
    },
    /// The IKE SA was rekeyed ([RFC 7296 § 2.18](https://www.rfc-editor.org/rfc/rfc7296#section-2.18)):
    /// same handle and CHILD_SAs, new SPIs and keys.
    IkeSaRekeyed {
        /// The IKE SA.
        handle: IkeSaHandle,
        /// The new SPIi.
        spi_i: u64,
        /// The new SPIr.
        spi_r: u64,
    },
    /// The IKE SA (and every CHILD_SA with it) moved to another address pair.
    PathUpdated {
        /// The IKE SA.
        handle: IkeSaHandle,
        /// Our new endpoint.
        local: SocketAddr,
        /// The peer's new endpoint.
        remote: SocketAddr,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No connection of that name.
    #[error("no connection named `{0}`")]
    UnknownConnection(String),
    /// The connection has no remote address to initiate to.
    #[error("connection `{0}` has no remote address")]
    NoRemoteAddress(String),
    /// No IKE SA with that handle.
    #[error("no IKE SA {0:?}")]
    UnknownIkeSa(IkeSaHandle),
    /// No CHILD_SA with that inbound SPI.
    #[error("no CHILD_SA with inbound SPI {0:#010x}")]
    UnknownChildSa(u32),
    /// The IKE SA's connection has no CHILD_SA configuration of that name.
    #[error("no CHILD_SA configuration named `{0}`")]
    UnknownChildConfig(String),
    /// The IKE SA is not established.
    #[error("IKE SA {0:?} is not established")]
    NotEstablished(IkeSaHandle),
}

/// The IKEv2 engine: every IKE SA of one daemon. See the [module docs](self) for the polling
/// order.
pub struct Engine {
    /// Every IKE SA. A handler works on one of them in place ([`SaTable::split`]), beside
    /// the rest.
    sas: SaTable,
    /// When each IKE SA next has timer work, as last scheduled: a min-heap with lazy
    /// deletion (an entry whose SA is gone or rescheduled is skipped when it comes due), so
    /// `poll_timeout` and `handle_timeout` cost O(log n), not O(n), with many IKE SAs.
    timers: BinaryHeap<Reverse<(Instant, IkeSaHandle)>>,
    core: Core,
}

/// Everything of the engine but its IKE SAs: configuration, randomness, indexes, the
/// output queues and the counters. The exchanges are methods of `Core` working on one
/// [`IkeSa`] (`&mut IkeSa`, in place in the table); what they do to other SAs they do
/// through [`Others`] or leave to [`Engine::settle`] ([`Deferred`]).
pub(in crate::engine) struct Core {
    config: EngineConfig,
    /// The connections, shared with the IKE SAs set up under them.
    conns: Vec<Arc<ConnectionConfig>>,
    rng: Box<dyn Rng + Send>,
    /// Inbound CHILD_SA SPIs in use or in negotiation (see `alloc_child_spi`).
    child_spis: HashSet<u32>,
    /// `child_spis.len()` after its last rebuild.
    child_spis_rebuilt: usize,
    /// Our IKE SPI → handle.
    by_spi: HashMap<u64, IkeSaHandle>,
    /// Half-open responder SAs by (peer address, SPIi), to answer retransmitted IKE_SA_INIT.
    half_open: HashMap<(SocketAddr, u64), IkeSaHandle>,
    next_handle: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    sa_events: VecDeque<SaEvent>,
    stats: EngineStats,
    cookie: CookieSecrets,
    invalid_spi_budget: (Option<Instant>, u32),
    pools: pool::Pools,
    /// The wall-clock time at one monotonic instant, for certificate validity.
    wall_clock: Option<(Instant, SystemTime)>,
    /// The host's addresses, most preferred first, as the daemon last reported them
    /// ([`Engine::set_local_addresses`]); `None` until it does.
    host_addresses: Option<Vec<path::HostAddress>>,
    /// Where every IKE SA's keys go for a dissector ([`Engine::set_key_log`]); `None`.
    key_log: Option<Box<dyn keylog::KeyLog>>,
    /// IKE SAs created by a handler (a new half-open SA, a rekeyed IKE SA's predecessor),
    /// for the table.
    adopted: Vec<IkeSa>,
    /// Work on other SAs that a handler leaves for after it.
    deferred: VecDeque<Deferred>,
}

/// Work on an IKE SA that the handler of another SA asked for, done by [`Engine::settle`]
/// once that handler returned.
pub(in crate::engine) enum Deferred {
    /// Delete this IKE SA (a rekeyed IKE SA's predecessor, which holds the old SPIs).
    DeleteIke(IkeSaHandle),
}

struct CookieSecrets {
    version: u8,
    current: [u8; 32],
    previous: [u8; 32],
    rotate_at: Option<Instant>,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("ike_sas", &self.sas.len())
            .field("stats", &self.core.stats)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with `config`, drawing every random value (SPIs, nonces, DH keys, IVs,
    /// cookie secrets) from `rng`.
    pub fn new(config: EngineConfig, mut rng: Box<dyn Rng + Send>) -> Engine {
        let mut current = [0u8; 32];
        rng.fill(&mut current);
        let pools = pool::Pools::new(&config.pools);
        let core = Core {
            conns: config.connections.iter().cloned().map(Arc::new).collect(),
            config,
            rng,
            child_spis: HashSet::new(),
            child_spis_rebuilt: 0,
            by_spi: HashMap::new(),
            half_open: HashMap::new(),
            next_handle: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            sa_events: VecDeque::new(),
            stats: EngineStats::default(),
            cookie: CookieSecrets {
                version: 0,
                current,
                previous: current,
                rotate_at: None,
            },
            invalid_spi_budget: (None, 0),
            pools,
            wall_clock: None,
            host_addresses: None,
            key_log: None,
            adopted: Vec::new(),
            deferred: VecDeque::new(),
        };
        Engine {
            sas: SaTable::default(),
            timers: BinaryHeap::new(),
            core,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.core.config
    }

    /// Replaces the configuration. Established and half-open IKE SAs keep the connection
    /// settings they were set up with; new IKE SAs use the new ones. Virtual-IP pools are
    /// rebuilt, except that addresses still in use stay reserved.
    pub fn reconfigure(&mut self, config: EngineConfig) {
        self.core.conns = config.connections.iter().cloned().map(Arc::new).collect();
        let mut pools = pool::Pools::new(&config.pools);
        for sa in self.sas.values() {
            for &v in &sa.assigned_vips {
                pools.reserve(v);
            }
        }
        self.core.pools = pools;
        for sa in self.sas.values_mut() {
            sa.conn = self
                .core
                .conns
                .iter()
                .position(|c| c.name == sa.cfg.name)
                .unwrap_or(usize::MAX);
        }
        self.core.config = config;
        // DPD delays and keepalive intervals may have changed: reschedule every IKE SA.
        for h in self.sas.handles() {
            self.schedule(h);
        }
    }

    /// Tells the engine the wall-clock time `wall` at the monotonic instant `now`; the engine
    /// reads no clock itself. Certificate validity periods are checked against
    /// `wall + (instant - now)` for later instants, so the caller sets it once at start and
    /// again whenever it likes (the daemon does before every datagram). Until it is set,
    /// every certificate is refused.
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) {
        self.core.wall_clock = Some((now, wall));
    }

    /// Tells the engine the host's usable addresses, each with its interface, most
    /// preferred first (the daemon's view, after every change). Each IKE SA's local address
    /// set becomes those on its connection's `links` (all, without links) that are among
    /// its `local_addrs`, or all of them of the scope in use for a connection with none
    /// (`%any`), and its candidate pairs follow (see [`IkeSaInfo::candidates`]). A MOBIKE SA
    /// whose set changed tells the peer: an initiator whose address in use is gone checks
    /// the pairs left and moves with UPDATE_SA_ADDRESSES, anyone else announces its new list
    /// (RFC 4555 § 3.5, § 3.6). Nothing moves before an authenticated answer.
    pub fn set_local_addresses(&mut self, now: Instant, addresses: &[path::HostAddress]) {
        let host: Vec<path::HostAddress> = addresses.to_vec();
        for h in self.sas.handles() {
            self.with_sa(h, |core, sa, _| {
                if !sa.set_host_addresses(Some(&host)) {
                    return true;
                }
                tracing::debug!(
                    connection = %sa.connection,
                    local = ?sa.paths.local(),
                    in_use = sa.local_address_present(),
                    "local address set changed"
                );
                core.local_addresses_changed(now, sa);
                core.pump_queue(now, sa)
            });
        }
        self.core.host_addresses = Some(host);
        self.settle(now);
    }

    /// Hands the keys of every IKE SA set up or rekeyed from now on to `key_log`, for a
    /// dissector to read captures of its protected messages ([`keylog`]). For debugging and
    /// tests only: whoever holds those keys reads and forges the SA's IKE messages.
    pub fn set_key_log(&mut self, key_log: Option<Box<dyn keylog::KeyLog>>) {
        self.core.key_log = key_log;
    }

    /// The counters.
    pub fn stats(&self) -> &EngineStats {
        &self.core.stats
    }

    /// Initiates every connection with a CHILD_SA whose start action is
    /// [`StartAction::Start`]: IKE_AUTH creates the connection's first CHILD_SA, and every
    /// further one with that start action follows with CREATE_CHILD_SA
    /// ([`Engine::initiate_child`]) once the IKE SA is established.
    pub fn start(&mut self, now: Instant) -> Vec<Result<IkeSaHandle, CommandError>> {
        let names: Vec<String> = self
            .core
            .config
            .connections
            .iter()
            .filter(|c| {
                c.children
                    .iter()
                    .any(|ch| ch.start_action == StartAction::Start)
            })
            .map(|c| c.name.clone())
            .collect();
        names.iter().map(|n| self.initiate(now, n)).collect()
    }

    /// Starts an IKE SA (and its first CHILD_SA) for the connection `connection`: sends
    /// IKE_SA_INIT from its first local address (unspecified if none) to its first remote
    /// address.
    pub fn initiate(
        &mut self,
        now: Instant,
        connection: &str,
    ) -> Result<IkeSaHandle, CommandError> {
        let conn = self
            .core
            .config
            .connections
            .iter()
            .position(|c| c.name == connection)
            .ok_or_else(|| CommandError::UnknownConnection(connection.to_owned()))?;
        let c = &self.core.config.connections[conn];
        let remote_ip = *c
            .remote_addrs
            .first()
            .ok_or_else(|| CommandError::NoRemoteAddress(connection.to_owned()))?;
        let local_ip = c.local_addrs.first().copied().unwrap_or(match remote_ip {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        });
        let local = SocketAddr::new(local_ip, IKE_PORT);
        let remote = SocketAddr::new(remote_ip, IKE_PORT);
        let handle = self.core.start_initiator(now, conn, local, remote);
        self.settle(now);
        Ok(handle)
    }

    /// Deletes an IKE SA and its CHILD_SAs (INFORMATIONAL with Delete,
    /// [RFC 7296 § 1.4.1](https://www.rfc-editor.org/rfc/rfc7296#section-1.4.1)). A half-open
    /// SA is dropped at once.
    pub fn terminate_ike(&mut self, now: Instant, handle: IkeSaHandle) -> Result<(), CommandError> {
        self.command(now, handle, exchange::Request::DeleteIke)
    }

    /// Checks that `handle` names an IKE SA with a CHILD_SA whose inbound SPI is `inbound_spi`
    /// (the commands that act on one CHILD_SA name it so).
    fn check_child_sa(&self, handle: IkeSaHandle, inbound_spi: u32) -> Result<(), CommandError> {
        let sa = self
            .sas
            .get(handle)
            .ok_or(CommandError::UnknownIkeSa(handle))?;
        if sa.children.iter().any(|c| c.inbound_spi == inbound_spi) {
            Ok(())
        } else {
            Err(CommandError::UnknownChildSa(inbound_spi))
        }
    }

    /// Deletes one CHILD_SA, named by our inbound SPI.
    pub fn terminate_child(
        &mut self,
        now: Instant,
        handle: IkeSaHandle,
        inbound_spi: u32,
    ) -> Result<(), CommandError> {
        self.check_child_sa(handle, inbound_spi)?;
        self.command(
            now,
            handle,
            exchange::Request::DeleteChild(inbound_spi, DeleteReason::Local),
        )
    }

    /// Sends a liveness check (an empty INFORMATIONAL request) now.
    pub fn send_dpd(&mut self, now: Instant, handle: IkeSaHandle) -> Result<(), CommandError> {
        self.command(now, handle, exchange::Request::Dpd)
    }

    /// The IKE SAs, with their state.
    pub fn ike_sas(&self) -> Vec<IkeSaInfo> {
        let mut v: Vec<IkeSaInfo> = self
            .sas
            .values()
            .filter(|sa| !sa.silent)
            .map(IkeSa::info)
            .collect();
        v.sort_by_key(|i| i.handle);
        v
    }

    /// One IKE SA.
    pub fn ike_sa(&self, handle: IkeSaHandle) -> Option<IkeSaInfo> {
        self.sas
            .get(handle)
            .filter(|sa| !sa.silent)
            .map(IkeSa::info)
    }

    /// Moves an established IKE SA to another address pair and every CHILD_SA with it
    /// (one [`SaEvent::UpdateAddresses`] per CHILD_SA). This is the primitive MOBIKE uses once
    /// a path is authenticated; the engine itself calls it when the peer's authenticated
    /// IKE_AUTH arrives from a new address.
    pub fn update_ike_sa_path(
        &mut self,
        handle: IkeSaHandle,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(), CommandError> {
        let sa = self
            .sas
            .get_mut(handle)
            .ok_or(CommandError::UnknownIkeSa(handle))?;
        self.core.set_path(sa, local, remote);
        self.schedule(handle);
        Ok(())
    }

    /// Handles one received UDP datagram: `local` is the address and port it arrived on,
    /// `remote` where it came from.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.core.stats.datagrams_received += 1;
        let bytes = if local.port() == NATT_PORT {
            match NatTraversalDatagram::classify(datagram) {
                Ok(NatTraversalDatagram::Ike(ike)) => ike,
                Ok(NatTraversalDatagram::Keepalive) => {
                    self.core.stats.keepalives_received += 1;
                    return;
                }
                Ok(NatTraversalDatagram::Esp(_)) => {
                    self.core.stats.drop_esp_on_natt_port += 1;
                    return;
                }
                Err(_) => {
                    self.core.stats.drop_malformed += 1;
                    return;
                }
            }
        } else {
            datagram
        };
        let header = match Message::decode_header(bytes) {
            Ok(h) => h,
            Err(_) => {
                self.core.stats.drop_malformed += 1;
                return;
            }
        };
        self.dispatch(now, local, remote, &header, bytes);
        self.settle(now);
    }

    /// Handles the passing of time: retransmissions, liveness checks, expiries.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((at, h))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            due.push(h);
        }
        due.sort_unstable();
        due.dedup();
        for h in due {
            // A stale entry (the SA was rescheduled later in the meantime) does nothing.
            self.with_sa(h, |core, sa, _| {
                sa.next_timeout().is_none_or(|t| t > now) || core.sa_timeout(now, sa)
            });
        }
        self.settle(now);
    }

    /// The next time [`Engine::handle_timeout`] has work, if any (possibly a little early:
    /// an SA rescheduled later leaves its old entry behind, and that wake-up does nothing).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs `f` on the IKE SA `handle` in place, with every other SA beside it; `f` says
    /// whether the SA lives on. Afterwards the SA is rescheduled, or taken out of the table
    /// and its indexes. `None` if there is no such SA.
    fn with_sa(
        &mut self,
        handle: IkeSaHandle,
        f: impl FnOnce(&mut Core, &mut IkeSa, &mut Others<'_>) -> bool,
    ) -> Option<bool> {
        let (sa, mut others) = self.sas.split(handle)?;
        let keep = f(&mut self.core, sa, &mut others);
        if keep {
            self.schedule(handle);
        } else if let Some(sa) = self.sas.remove(handle) {
            self.core.forget(sa);
        }
        Some(keep)
    }

    /// After every input: takes in the IKE SAs the handlers created, does the work they
    /// left for other SAs ([`Deferred`]), drops the index entries of SAs removed beside a
    /// handler, and rebuilds the set of inbound CHILD_SA SPIs when it has grown (every SA
    /// is in the table now, so the rebuild sees them all).
    fn settle(&mut self, now: Instant) {
        loop {
            for sa in std::mem::take(&mut self.core.adopted) {
                let handle = sa.handle;
                self.sas.insert(sa);
                self.schedule(handle);
            }
            let Some(work) = self.core.deferred.pop_front() else {
                break;
            };
            match work {
                Deferred::DeleteIke(h) => {
                    self.with_sa(h, |core, sa, _| {
                        sa.queue.push_back(exchange::Request::DeleteIke);
                        core.pump_queue(now, sa)
                    });
                }
            }
        }
        self.sas.reap();
        let core = &mut self.core;
        if core.child_spis.len() > 2 * core.child_spis_rebuilt + 1024 {
            core.child_spis = self.sas.values().flat_map(IkeSa::inbound_spis).collect();
            core.child_spis_rebuilt = core.child_spis.len();
        }
    }

    /// Derives the state-dependent timers of the IKE SA `handle` and schedules its next
    /// one, if it has one.
    fn schedule(&mut self, handle: IkeSaHandle) {
        let keepalive = self.core.config.nat_keepalive;
        let Some(sa) = self.sas.get_mut(handle) else {
            return;
        };
        sa.rearm(sa.cfg.dpd_delay, keepalive);
        if let Some(at) = sa.next_timeout() {
            self.timers.push(Reverse((at, handle)));
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.core.transmits.pop_front()
    }

    /// The next event for the daemon.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// The next instruction for the data plane.
    pub fn poll_sa_event(&mut self) -> Option<SaEvent> {
        self.core.sa_events.pop_front()
    }

    /// Applies every pending [`SaEvent`] to `sink` and hands each result to
    /// [`Engine::handle_sa_result`]; returns the refused events with their errors.
    pub fn apply_sa_events(
        &mut self,
        now: Instant,
        sink: &mut dyn SaSink,
    ) -> Vec<(SaEvent, SaSinkError)> {
        let mut failed = Vec::new();
        while let Some(e) = self.core.sa_events.pop_front() {
            let result = sink.apply(&e);
            self.handle_sa_result(now, &e, &result);
            if let Err(err) = result {
                failed.push((e, err));
            }
        }
        failed
    }

    /// The data plane's answer to one [`SaEvent`] taken with [`Engine::poll_sa_event`].
    ///
    /// A CHILD_SA whose install or move was refused (cipher, selectors, table full) does
    /// not stay looking established while its traffic is dropped: it is removed (with an
    /// [`SaEvent::Delete`] if it was installed before, a move), [`Event::ChildSaDeleted`]
    /// with [`DeleteReason::DataPlaneRefused`] reports it, the peer gets an INFORMATIONAL
    /// Delete for it, and it is counted ([`EngineStats::child_sas_refused`]) and logged with
    /// the reason. A refused Delete is counted and logged: the CHILD_SA is gone already.
    /// Every refusal counts in [`EngineStats::sa_sink_errors`].
    pub fn handle_sa_result(
        &mut self,
        now: Instant,
        event: &SaEvent,
        result: &Result<(), SaSinkError>,
    ) {
        let Err(error) = result else {
            return;
        };
        self.core.stats.sa_sink_errors += 1;
        let (ike_sa, inbound_spi, installed) = match event {
            SaEvent::Install(c) => (c.ike_sa, c.inbound.spi, false),
            SaEvent::UpdateAddresses {
                ike_sa,
                inbound_spi,
                ..
            } => (*ike_sa, *inbound_spi, true),
            SaEvent::Delete {
                inbound_spi,
                outbound_spi,
                ..
            } => {
                tracing::warn!(
                    %error,
                    spi_in = format_args!("{inbound_spi:08x}"),
                    spi_out = format_args!("{outbound_spi:08x}"),
                    "the data plane refused to delete a CHILD_SA"
                );
                return;
            }
        };
        self.with_sa(ike_sa, |core, sa, _| {
            if let Some(i) = sa
                .children
                .iter()
                .position(|c| c.inbound_spi == inbound_spi)
            {
                let child = sa.children.remove(i);
                core.stats.child_sas_refused += 1;
                tracing::warn!(
                    %error,
                    connection = %sa.connection,
                    child = %child.name,
                    spi_in = format_args!("{:08x}", child.inbound_spi),
                    spi_out = format_args!("{:08x}", child.outbound_spi),
                    what = if installed { "move" } else { "install" },
                    "the data plane refused a CHILD_SA: deleting it and telling the peer"
                );
                if installed {
                    core.remove_child_events(sa.handle, &child, DeleteReason::DataPlaneRefused);
                } else {
                    core.child_sa_gone(sa.handle, &child, DeleteReason::DataPlaneRefused);
                }
                sa.queue
                    .push_back(exchange::Request::DeleteRefusedChild(child.inbound_spi));
            }
            core.pump_queue(now, sa)
        });
        self.settle(now);
    }
}

impl Core {
    // ----- internals shared by the exchange modules -----

    /// The wall-clock time at `now`, if known.
    fn wall_time(&self, now: Instant) -> Option<SystemTime> {
        let (at, wall) = self.wall_clock?;
        if now >= at {
            wall.checked_add(now - at)
        } else {
            wall.checked_sub(at - now)
        }
    }

    /// Hands an IKE SA a handler created to the table ([`Engine::settle`]).
    fn adopt(&mut self, sa: IkeSa) {
        self.adopted.push(sa);
    }

    fn alloc_handle(&mut self) -> IkeSaHandle {
        let h = IkeSaHandle(self.next_handle);
        self.next_handle += 1;
        h
    }

    /// A fresh IKE SPI, non-zero and not in use.
    fn alloc_ike_spi(&mut self) -> u64 {
        loop {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b);
            let spi = u64::from_be_bytes(b);
            if spi != 0 && !self.by_spi.contains_key(&spi) {
                return spi;
            }
        }
    }

    /// A fresh ESP SPI, at least 256 ("values 1-255 are reserved") and not in use here.
    ///
    /// SPIs handed out stay in `child_spis` until their CHILD_SA is deleted; one allocated for a
    /// negotiation that failed stays there too, so [`Engine::settle`] rebuilds the set from
    /// the SPIs of every IKE SA's CHILD_SAs and negotiations ([`IkeSa::inbound_spis`])
    /// whenever it has grown to twice its size after the last rebuild (amortised O(1) per
    /// allocation).
    fn alloc_child_spi(&mut self) -> u32 {
        loop {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b);
            let spi = u32::from_be_bytes(b);
            if spi >= 256 && self.child_spis.insert(spi) {
                return spi;
            }
        }
    }

    /// When a rekey interval `interval` started at `now` is due, minus a random part of
    /// `rand_time` (less than the interval).
    fn rekey_due(
        &mut self,
        now: Instant,
        interval: Option<std::time::Duration>,
        rand_time: Option<std::time::Duration>,
    ) -> Option<Instant> {
        let interval = interval?;
        let mut jitter = std::time::Duration::ZERO;
        if let Some(r) = rand_time.filter(|r| !r.is_zero()) {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b);
            let fraction = (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
            jitter = r.mul_f64(fraction).min(interval / 2);
        }
        now.checked_add(interval - jitter)
    }

    fn random(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.rng.fill(&mut v);
        v
    }

    /// Queues `message` for sending, framed for the port of `local`.
    fn send_raw(&mut self, local: SocketAddr, remote: SocketAddr, ike: &[u8]) {
        let payload = if local.port() == NATT_PORT {
            let mut p = crate::wire::message::NON_ESP_MARKER.to_vec();
            p.extend_from_slice(ike);
            p
        } else {
            ike.to_vec()
        };
        self.stats.datagrams_sent += 1;
        self.transmits.push_back(Transmit {
            local,
            remote,
            payload,
        });
    }

    /// Encodes and queues an unprotected message.
    fn send_plain(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        message: &Message,
    ) -> Option<Vec<u8>> {
        let bytes = match message.encode() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a message");
                return None;
            }
        };
        self.send_raw(local, remote, &bytes);
        Some(bytes)
    }

    /// Whether an INVALID_IKE_SPI answer fits in this second's budget.
    fn invalid_spi_allowed(&mut self, now: Instant) -> bool {
        let (start, count) = &mut self.invalid_spi_budget;
        if start.is_none_or(|s| now.saturating_duration_since(s).as_secs() >= 1) {
            *start = Some(now);
            *count = 0;
        }
        if *count < self.config.invalid_spi_rate {
            *count += 1;
            true
        } else {
            false
        }
    }

    /// Removes an IKE SA's indexes after it was taken out of `sas` for good.
    fn forget(&mut self, sa: IkeSa) {
        self.by_spi.remove(&sa.local_spi());
        self.half_open.retain(|_, h| *h != sa.handle);
        for &vip in &sa.assigned_vips {
            self.pools.release(vip);
        }
    }
}

/// A read-only view of one IKE SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaInfo {
    /// Its handle.
    pub handle: IkeSaHandle,
    /// The connection's name.
    pub connection: String,
    /// Whether we are the original initiator.
    pub initiator: bool,
    /// SPIi.
    pub spi_i: u64,
    /// SPIr (0 until known).
    pub spi_r: u64,
    /// Whether both AUTH payloads verified and no delete is under way.
    pub established: bool,
    /// Our endpoint.
    pub local: SocketAddr,
    /// The peer's endpoint.
    pub remote: SocketAddr,
    /// Whether a NAT was detected in front of us.
    pub nat_local: bool,
    /// Whether a NAT was detected in front of the peer.
    pub nat_remote: bool,
    /// Our addresses this IKE SA can use, most preferred first.
    pub local_addresses: Vec<IpAddr>,
    /// The peer's: the address it uses, then the others it announced.
    pub peer_addresses: Vec<IpAddr>,
    /// The address pairs they make, in preference order, with what is known of each.
    pub candidates: Vec<path::Candidate>,
    /// Whether both sides announced MOBIKE support.
    pub mobike: bool,
    /// Our virtual IP (initiator) or the one we assigned (responder): the first of
    /// [`IkeSaInfo::virtual_ips`].
    pub virtual_ip: Option<IpAddr>,
    /// Every virtual IP, at most one per address family (INTERNAL_IP4_ADDRESS and
    /// INTERNAL_IP6_ADDRESS, [RFC 7296 § 3.15.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.15.1)).
    pub virtual_ips: Vec<IpAddr>,
    /// The CHILD_SAs.
    pub children: Vec<ChildSaInfo>,
}

/// A read-only view of one CHILD_SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaInfo {
    /// The CHILD_SA configuration's name.
    pub name: String,
    /// Our inbound SPI.
    pub inbound_spi: u32,
    /// Our outbound SPI (the peer's inbound SPI).
    pub outbound_spi: u32,
    /// The mode.
    pub mode: Mode,
}

const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<Engine>();
};
