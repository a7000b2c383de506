//! The state of one IKE SA and its CHILD_SAs.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::config::{ConnectionConfig, Mode};
use super::exchange::REASSEMBLY_TIMEOUT;
use super::exchange::Request;
use super::negotiate::{EspAlgorithms, IkeAlgorithms};
use super::path::{AddressPair, HostAddress, Path, Paths, local_set};
use super::timer::{Timer, TimerTable};
use super::{ChildSaInfo, IkeSaHandle, IkeSaInfo};
use crate::crypto::Secret;
use crate::crypto::dh::DhPrivate;
use crate::crypto::prf::Prf;
use crate::crypto::sk::SkCipher;
use crate::wire::payload::{Identification, TrafficSelector};

/// At most this many of our addresses go in an address list (strongSwan sends at most 8
/// too).
pub(super) const MAX_ANNOUNCED: usize = 8;

/// Where the IKE SA is in its life (what an outstanding exchange needs is in its
/// [`Exchange`]).
pub(super) enum State {
    /// Initiator: IKE_SA_INIT sent.
    InitSent,
    /// Initiator: IKE_AUTH sent.
    AuthSent(InitTranscript),
    /// Responder: IKE_SA_INIT answered, IKE_AUTH awaited.
    HalfOpen(InitTranscript),
    /// Both AUTH payloads verified.
    Established,
    /// Our Delete of the IKE SA is outstanding.
    Deleting,
}

/// The IKE_SA_INIT exchange as it went, which IKE_AUTH signs and keys its CHILD_SA with
/// ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15),
/// [§ 2.17](https://www.rfc-editor.org/rfc/rfc7296#section-2.17)); gone once the SA is
/// established, so an established SA does not carry both messages for its lifetime.
#[derive(Clone, Default)]
pub(super) struct InitTranscript {
    /// The request and the response, as sent.
    pub(super) request: Vec<u8>,
    pub(super) response: Vec<u8>,
    pub(super) ni: Vec<u8>,
    pub(super) nr: Vec<u8>,
}

/// The keys of an IKE SA, oriented for our role.
pub(super) struct IkeKeyState {
    pub(super) prf: Prf,
    pub(super) sk_d: Secret,
    pub(super) sk_pi: Secret,
    pub(super) sk_pr: Secret,
    /// Seals what we send.
    pub(super) out: SkCipher,
    /// Opens what we receive.
    pub(super) inb: SkCipher,
}

/// An established CHILD_SA.
#[derive(Debug, Clone)]
pub(super) struct ChildSa {
    pub(super) name: String,
    /// Index of its configuration in the connection's `children`.
    pub(super) cfg_index: usize,
    /// When we rekey it.
    pub(super) rekey_at: Option<Instant>,
    /// Whether a newer CHILD_SA replaced it (its delete is then a rekey, not a loss).
    pub(super) rekeyed: bool,
    /// The PFS group the peer asked for with INVALID_KE_PAYLOAD, for the next rekey.
    pub(super) pfs_group: Option<crate::wire::DhGroup>,
    pub(super) inbound_spi: u32,
    pub(super) outbound_spi: u32,
    pub(super) mode: Mode,
    #[allow(dead_code)]
    pub(super) alg: EspAlgorithms,
    #[allow(dead_code)]
    pub(super) local_ts: Vec<TrafficSelector>,
    #[allow(dead_code)]
    pub(super) remote_ts: Vec<TrafficSelector>,
}

/// Our IKE_SA_INIT request as sent: our private value, the cookie the responder asked us
/// to return, and how many answers asked us to try again (COOKIE, INVALID_KE_PAYLOAD).
pub(super) struct InitAttempt {
    pub(super) ni: Vec<u8>,
    pub(super) dh: DhPrivate,
    pub(super) cookie: Option<Vec<u8>>,
    pub(super) attempts: u8,
}

/// Our CREATE_CHILD_SA rekeying a CHILD_SA
/// ([RFC 7296 § 2.8](https://www.rfc-editor.org/rfc/rfc7296#section-2.8)).
pub(super) struct ChildRekey {
    /// Our inbound SPI of the CHILD_SA being rekeyed.
    pub(super) old: u32,
    /// Our inbound SPI of its successor.
    pub(super) new_inbound: u32,
    pub(super) ni: Vec<u8>,
    pub(super) dh: Option<DhPrivate>,
    /// The peer rekeyed the same CHILD_SA at the same time: our inbound SPI of the SA its
    /// exchange created and the lowest nonce of that exchange
    /// ([§ 2.8.1](https://www.rfc-editor.org/rfc/rfc7296#section-2.8.1)).
    pub(super) collision: Option<(u32, Vec<u8>)>,
}

/// What our outstanding request is and what its answer needs (rustls' `Expect*` states are
/// the shape): each exchange carries its own secrets and proposals, so nothing on the IKE
/// SA is valid only while some exchange is out.
pub(super) enum Exchange {
    /// IKE_SA_INIT.
    IkeSaInit(InitAttempt),
    /// IKE_AUTH, with the CHILD_SA it proposes.
    IkeAuth { child: Option<ChildProposal> },
    /// An empty INFORMATIONAL (liveness check).
    Dpd,
    /// INFORMATIONAL deleting the IKE SA.
    DeleteIke,
    /// INFORMATIONAL deleting the CHILD_SA with this inbound SPI, for this reason.
    DeleteChild(u32, super::DeleteReason),
    /// INFORMATIONAL telling the peer that the CHILD_SA with this inbound SPI, which the
    /// data plane refused, is gone.
    DeleteRefusedChild(u32),
    /// CREATE_CHILD_SA rekeying a CHILD_SA.
    RekeyChild(ChildRekey),
    /// CREATE_CHILD_SA creating one more CHILD_SA: what we proposed, our nonce and private
    /// value.
    CreateChild {
        proposal: ChildProposal,
        ni: Vec<u8>,
        dh: Option<DhPrivate>,
    },
    /// CREATE_CHILD_SA rekeying the IKE SA: the new SPIi, our nonce and private value.
    RekeyIke {
        new_spi_i: u64,
        ni: Vec<u8>,
        dh: DhPrivate,
    },
    /// The initiator's path check: an empty INFORMATIONAL sent on every candidate pair at
    /// once with one message ID ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5));
    /// the pair its first answer arrives on is where UPDATE_SA_ADDRESSES moves the SA. With
    /// `confirm` (the responder spoke from another pair, so its side may have moved), the
    /// UPDATE follows even when the pair in use answers first: the initiator decides, and
    /// both sides end on the pair it names.
    PathCheck { confirm: bool },
    /// The initiator's UPDATE_SA_ADDRESSES, sent on the new `path` with this COOKIE2: the
    /// SA moves there when the answer echoes the cookie byte for byte.
    UpdateSaAddresses(Cookie2Check),
    /// Our address list (ADDITIONAL_* or NO_ADDITIONAL_ADDRESSES,
    /// [§ 3.6](https://www.rfc-editor.org/rfc/rfc4555#section-3.6)), as sent, and the pair in
    /// use when it was; when that pair lost its local address the list goes on every pair
    /// that still has one.
    AddressUpdate {
        addresses: Vec<IpAddr>,
        from: AddressPair,
    },
    /// The responder's return routability check of the pair an UPDATE_SA_ADDRESSES asked
    /// for ([§ 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)): an INFORMATIONAL
    /// with COOKIE2 on that pair; the SA moves there when the answer echoes it.
    ReturnRoutability(Cookie2Check),
}

/// A request that moves the SA to `path` once its answer echoes `cookie2`
/// ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)).
pub(super) struct Cookie2Check {
    pub(super) path: Path,
    pub(super) cookie2: Vec<u8>,
}

impl Exchange {
    pub(super) fn exchange_type(&self) -> crate::wire::ExchangeType {
        use crate::wire::ExchangeType as T;
        match self {
            Exchange::IkeSaInit(_) => T::IKE_SA_INIT,
            Exchange::IkeAuth { .. } => T::IKE_AUTH,
            Exchange::Dpd
            | Exchange::DeleteIke
            | Exchange::DeleteChild(..)
            | Exchange::DeleteRefusedChild(_)
            | Exchange::PathCheck { .. }
            | Exchange::UpdateSaAddresses(_)
            | Exchange::AddressUpdate { .. }
            | Exchange::ReturnRoutability(_) => T::INFORMATIONAL,
            Exchange::RekeyChild(_) | Exchange::CreateChild { .. } | Exchange::RekeyIke { .. } => {
                T::CREATE_CHILD_SA
            }
        }
    }
}

/// What the initiator proposed for a CHILD_SA and still needs when the answer comes.
#[derive(Debug, Clone)]
pub(super) struct ChildProposal {
    pub(super) child: usize,
    pub(super) inbound_spi: u32,
    pub(super) local_ts: Vec<TrafficSelector>,
    pub(super) remote_ts: Vec<TrafficSelector>,
}

/// Our outstanding request (window size 1).
pub(super) struct Pending {
    pub(super) message_id: u32,
    /// The IKE message as sent (without the non-ESP marker); its first fragment when it was
    /// fragmented.
    pub(super) bytes: Vec<u8>,
    /// Every fragment, when it was fragmented (all are retransmitted together).
    pub(super) fragments: Vec<Vec<u8>>,
    /// How many times it was sent (its next retransmission is [`Timer::Retransmit`]).
    pub(super) sends: u32,
    /// The pair it was last sent on (a retransmission goes there too; a response is
    /// matched whatever pair it arrives on).
    pub(super) via: AddressPair,
    /// The other pairs it goes on at the same time, with the same message ID: a path
    /// check's candidates, an address list's when the pair in use lost its local address,
    /// the candidates of a request whose pair stopped answering.
    pub(super) also: Vec<AddressPair>,
    pub(super) exchange: Exchange,
}

/// The last response we sent, for retransmitted requests.
pub(super) struct CachedResponse {
    pub(super) message_id: u32,
    pub(super) request: Vec<u8>,
    /// The request's fragments, when it came in fragments (fragment 1 first).
    pub(super) request_fragments: Vec<Vec<u8>>,
    pub(super) response: Vec<u8>,
    /// The response's fragments, when it went out in fragments.
    pub(super) response_fragments: Vec<Vec<u8>>,
}

/// One IKE SA.
pub(super) struct IkeSa {
    pub(super) handle: IkeSaHandle,
    /// Index of the connection in the engine's table when the SA was set up.
    pub(super) conn: usize,
    /// The connection's configuration, kept across reconfiguration.
    pub(super) cfg: Arc<ConnectionConfig>,
    pub(super) connection: String,
    /// Whether we are the original initiator.
    pub(super) initiator: bool,
    pub(super) spi_i: u64,
    pub(super) spi_r: u64,
    /// The pair in use, with its NAT state.
    pub(super) path: Path,
    /// The addresses on both sides and the candidate pairs they make.
    pub(super) paths: Paths,
    pub(super) state: State,
    pub(super) alg: Option<IkeAlgorithms>,
    pub(super) keys: Option<IkeKeyState>,
    pub(super) next_message_id: u32,
    pub(super) pending: Option<Pending>,
    pub(super) queue: VecDeque<Request>,
    pub(super) peer_next_message_id: u32,
    pub(super) cached: Option<CachedResponse>,
    pub(super) children: Vec<ChildSa>,
    pub(super) peer_mobike: bool,
    pub(super) peer_id: Option<Identification>,
    /// The IP addresses the peer's certificate binds (its iPAddress subjectAltNames), for
    /// [`ReturnRoutability::Certificate`](super::config::ReturnRoutability::Certificate).
    pub(super) peer_certificate_addresses: Vec<IpAddr>,
    /// The virtual IPs the peer gave us (initiator), at most one per address family.
    pub(super) virtual_ips: Vec<IpAddr>,
    /// The virtual IPs we gave the peer (responder), at most one per address family;
    /// released with the SA.
    pub(super) assigned_vips: Vec<IpAddr>,
    pub(super) last_inbound: Instant,
    /// When we last sent anything to the peer (NAT keepalives fill longer silences).
    pub(super) last_outbound: Instant,
    /// Counter for AES-GCM IVs (unique per key by construction).
    pub(super) iv_counter: u64,
    /// Every deadline of the SA (see [`Timer`]).
    pub(super) timers: TimerTable,
    /// An IKE SA replaced by its rekeyed successor: it lives on only to finish its Delete
    /// and reports nothing.
    pub(super) silent: bool,
    /// Our SPI before the last rekey (where the predecessor lives).
    pub(super) local_spi_before_rekey: u64,
    /// The hash algorithms the peer announced in SIGNATURE_HASH_ALGORITHMS
    /// ([RFC 7427 § 4](https://www.rfc-editor.org/rfc/rfc7427#section-4)); `None` if it sent
    /// none.
    pub(super) peer_hashes: Option<Vec<crate::wire::HashAlgorithm>>,
    /// The CERTREQ payloads the peer sent (IKE_SA_INIT response or IKE_AUTH request).
    pub(super) peer_certreqs: Vec<crate::wire::payload::CertificateRequest>,
    /// Whether both sides announced IKE fragmentation
    /// ([RFC 7383 § 2.3](https://www.rfc-editor.org/rfc/rfc7383#section-2.3)).
    pub(super) fragmentation: bool,
    /// The fragments of a message being reassembled.
    pub(super) reassembly: Option<Reassembly>,
    /// The fragments (datagrams, in fragment order) of the request just reassembled, for
    /// the response cache.
    pub(super) reassembled_from: Vec<Vec<u8>>,
}

/// A fragmented message being put together
/// ([RFC 7383 § 2.6](https://www.rfc-editor.org/rfc/rfc7383#section-2.6)); every piece
/// passed its integrity check before it was kept.
pub(super) struct Reassembly {
    pub(super) message_id: u32,
    pub(super) started: Instant,
    /// The first inner payload type (from fragment 1).
    pub(super) first_inner: crate::wire::PayloadType,
    /// Decrypted pieces by fragment number − 1.
    pub(super) parts: Vec<Option<Vec<u8>>>,
    /// The datagrams, by fragment number − 1.
    pub(super) datagrams: Vec<Option<Vec<u8>>>,
    /// Plaintext octets so far.
    pub(super) len: usize,
}

impl IkeSa {
    /// A new half-open IKE SA ([RFC 7296 § 1.2](https://www.rfc-editor.org/rfc/rfc7296#section-1.2)):
    /// no SPIs, nonces, algorithms or keys yet, nothing negotiated, no CHILD_SAs, message IDs
    /// at zero; the IKE_SA_INIT code fills in what it has.
    pub(super) fn half_open(
        handle: IkeSaHandle,
        conn: usize,
        cfg: Arc<ConnectionConfig>,
        initiator: bool,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> IkeSa {
        IkeSa {
            handle,
            conn,
            connection: cfg.name.clone(),
            cfg,
            initiator,
            spi_i: 0,
            spi_r: 0,
            path: Path::new(local, remote),
            paths: Paths::new(&Path::new(local, remote)),
            state: State::HalfOpen(InitTranscript::default()),
            alg: None,
            keys: None,
            next_message_id: 0,
            pending: None,
            queue: VecDeque::new(),
            peer_next_message_id: 0,
            cached: None,
            children: Vec::new(),
            peer_mobike: false,
            peer_id: None,
            peer_certificate_addresses: Vec::new(),
            virtual_ips: Vec::new(),
            assigned_vips: Vec::new(),
            last_inbound: now,
            last_outbound: now,
            timers: TimerTable::default(),
            iv_counter: 0,
            silent: false,
            local_spi_before_rekey: 0,
            peer_hashes: None,
            peer_certreqs: Vec::new(),
            fragmentation: false,
            reassembly: None,
            reassembled_from: Vec::new(),
        }
    }

    /// The SPI we chose (the key of `by_spi`).
    pub(super) fn local_spi(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    /// Every inbound CHILD_SA SPI this SA holds: its CHILD_SAs' and those of its
    /// negotiations in flight.
    pub(super) fn inbound_spis(&self) -> impl Iterator<Item = u32> + '_ {
        let negotiating = match self.pending.as_ref().map(|p| &p.exchange) {
            Some(Exchange::RekeyChild(r)) => {
                [Some(r.new_inbound), r.collision.as_ref().map(|c| c.0)]
            }
            Some(
                Exchange::CreateChild { proposal, .. }
                | Exchange::IkeAuth {
                    child: Some(proposal),
                },
            ) => [Some(proposal.inbound_spi), None],
            _ => [None, None],
        };
        self.children
            .iter()
            .map(|c| c.inbound_spi)
            .chain(negotiating.into_iter().flatten())
    }

    /// Sets our address set from the connection's `local_addrs` and the `host`'s addresses
    /// (`None` until the daemon reported them, see [`local_set`]); returns whether it
    /// changed.
    pub(super) fn set_host_addresses(&mut self, host: Option<&[HostAddress]>) -> bool {
        let set = local_set(
            &self.cfg.local_addrs,
            &self.cfg.links,
            host,
            self.path.local().ip(),
        );
        self.paths.set_local(set, &self.path)
    }

    /// Starts the SA's address sets on the pair in use: the peer's is the address it uses,
    /// ours the connection's addresses among the `host`'s (before IKE_AUTH announces them).
    pub(super) fn begin_paths(&mut self, host: Option<&[HostAddress]>) {
        self.paths = Paths::new(&self.path);
        self.set_host_addresses(host);
    }

    /// Our address list for the peer ([RFC 4555 § 3.6](https://www.rfc-editor.org/rfc/rfc4555#section-3.6)):
    /// our set but `in_use`, the address the message goes from (its IP header carries that
    /// one), most preferred first, at most [`MAX_ANNOUNCED`].
    pub(super) fn address_list(&self, in_use: IpAddr) -> Vec<IpAddr> {
        self.paths
            .local()
            .iter()
            .copied()
            .filter(|&a| a != in_use)
            .take(MAX_ANNOUNCED)
            .collect()
    }

    /// Whether our address in use is still one of ours.
    pub(super) fn local_address_present(&self) -> bool {
        self.paths.local().contains(&self.path.local().ip())
    }

    /// The IKE_SA_INIT exchange, until the SA is established.
    pub(super) fn transcript(&self) -> Option<&InitTranscript> {
        match &self.state {
            State::AuthSent(t) | State::HalfOpen(t) => Some(t),
            _ => None,
        }
    }

    pub(super) fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    pub(super) fn mobike(&self) -> bool {
        self.peer_mobike
    }

    /// Our virtual IPs (initiator) or the ones we assigned (responder).
    fn vips(&self) -> &[IpAddr] {
        if self.virtual_ips.is_empty() {
            &self.assigned_vips
        } else {
            &self.virtual_ips
        }
    }

    pub(super) fn info(&self) -> IkeSaInfo {
        IkeSaInfo {
            handle: self.handle,
            connection: self.connection.clone(),
            initiator: self.initiator,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            established: self.is_established(),
            local: self.path.local(),
            remote: self.path.remote(),
            nat_local: self.path.nat_local,
            nat_remote: self.path.nat_remote,
            local_addresses: self.paths.local().to_vec(),
            peer_addresses: self.paths.peer().to_vec(),
            candidates: self.paths.candidates().to_vec(),
            mobike: self.mobike(),
            virtual_ip: self.vips().first().copied(),
            virtual_ips: self.vips().to_vec(),
            children: self
                .children
                .iter()
                .map(|c| ChildSaInfo {
                    name: c.name.clone(),
                    inbound_spi: c.inbound_spi,
                    outbound_spi: c.outbound_spi,
                    mode: c.mode,
                })
                .collect(),
        }
    }

    /// Derives the timers that follow from the SA's state (see [`Timer`]): a liveness
    /// check `dpd` after the peer's last authenticated message while nothing is outstanding,
    /// a NAT keepalive `keepalive` after our last datagram while we are behind a NAT, the
    /// earliest CHILD_SA rekey time, the end of a reassembly under way; and disarms the
    /// retransmission when nothing is outstanding. The engine calls it after every input.
    pub(super) fn rearm(
        &mut self,
        dpd: Option<std::time::Duration>,
        keepalive: Option<std::time::Duration>,
    ) {
        let established = self.is_established();
        let live = established && !self.silent;
        let idle = self.pending.is_none() && self.queue.is_empty();
        let t = &mut self.timers;
        t.set_or_stop(
            Timer::Dpd,
            dpd.filter(|_| live && idle)
                .and_then(|d| self.last_inbound.checked_add(d)),
        );
        t.set_or_stop(
            Timer::Keepalive,
            keepalive
                .filter(|_| live && self.path.nat_local)
                .and_then(|i| self.last_outbound.checked_add(i)),
        );
        t.set_or_stop(
            Timer::RekeyChild,
            self.children
                .iter()
                .filter_map(|c| c.rekey_at)
                .min()
                .filter(|_| established),
        );
        t.set_or_stop(
            Timer::Reassembly,
            self.reassembly
                .as_ref()
                .and_then(|r| r.started.checked_add(REASSEMBLY_TIMEOUT)),
        );
        if self.pending.is_none() {
            t.stop(Timer::Retransmit);
        }
    }

    /// When the SA next has timer work.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Splits off the IKE SA this one was before a rekey: the old SPIs, keys, message IDs and
    /// response cache go to the returned SA (silent, no CHILD_SAs); `self` keeps the handle,
    /// the CHILD_SAs and everything else, and awaits its new keys.
    pub(super) fn split_predecessor(&mut self, handle: IkeSaHandle, expires_at: Instant) -> IkeSa {
        IkeSa {
            handle,
            conn: self.conn,
            cfg: self.cfg.clone(),
            connection: self.connection.clone(),
            initiator: self.initiator,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            path: self.path,
            paths: self.paths.clone(),
            state: State::Established,
            alg: self.alg,
            keys: self.keys.take(),
            next_message_id: self.next_message_id,
            pending: None,
            queue: VecDeque::new(),
            peer_next_message_id: self.peer_next_message_id,
            cached: self.cached.take(),
            children: Vec::new(),
            peer_mobike: self.peer_mobike,
            peer_id: self.peer_id.clone(),
            peer_certificate_addresses: self.peer_certificate_addresses.clone(),
            virtual_ips: Vec::new(),
            assigned_vips: Vec::new(),
            last_inbound: self.last_inbound,
            last_outbound: self.last_outbound,
            timers: {
                let mut timers = TimerTable::default();
                timers.set(Timer::Expire, expires_at);
                timers
            },
            iv_counter: self.iv_counter,
            silent: true,
            local_spi_before_rekey: 0,
            peer_hashes: None,
            peer_certreqs: Vec::new(),
            fragmentation: self.fragmentation,
            reassembly: None,
            reassembled_from: Vec::new(),
        }
    }
}
