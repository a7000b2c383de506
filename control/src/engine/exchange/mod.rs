//! The exchanges: IKE_SA_INIT and IKE_AUTH in both roles
//! ([RFC 7296 § 1.2](https://www.rfc-editor.org/rfc/rfc7296#section-1.2)), INFORMATIONAL
//! (Delete, liveness; [§ 1.4](https://www.rfc-editor.org/rfc/rfc7296#section-1.4)), message-ID
//! windows and retransmission ([§ 2.1–2.3](https://www.rfc-editor.org/rfc/rfc7296#section-2.1)).

mod create_child;
mod fragment;
pub(in crate::engine) mod ike_auth;
mod informational;
mod init;
mod mobike;

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::auth::{id_payload_body, local_identity, signed_octets};
use super::config::{ChildConfig, LocalAuth, Mode, RemoteAuth, TsConfig};
use super::ike_sa::{
    CachedResponse, ChildProposal, ChildRekey, ChildSa, Exchange, IkeKeyState, IkeSa, InitAttempt,
    InitTranscript, Pending, State,
};
use super::keylog::{IkeSaKeys, KeyLog};
use super::nat::{cookie, nat_detection_payloads, nat_found};
use super::negotiate::{
    EspAlgorithms, IkeAlgorithms, check_esp_answer, check_ike_answer, esp_answer, ike_answer,
    is_subset, narrow, offer, select_esp, select_ike,
};
use super::path::{AddressPair, Path, PathCheck};
use super::sa::{ChildProtocol, ChildSaInstall, Lifetimes, SaEvent, SaKeys};
use super::timer::Timer;
use super::{
    CommandError, Core, Deferred, DeleteReason, Engine, Event, FailureReason, IKE_PORT,
    IkeSaHandle, NATT_PORT, Others, Transmit,
};
use crate::crypto::Secret;
use crate::crypto::dh::{self, DhPrivate};
use crate::crypto::keys::{IkeKeys, IkeSuite, child_keys, skeyseed, split_salt};
use crate::wire::header::{Flags, Repr};
use crate::wire::message::additional_addresses;
use crate::wire::payload::{
    AddressRange, Authentication, CertificateRequest, ConfigAttribute, Configuration, Delete,
    Identification, KeyExchange, Nonce, Notify, Payload, SecurityAssociation, TrafficSelector,
    TrafficSelectors, decode_chain, encode_chain_to_vec,
};
use crate::wire::{CfgAttrType, CfgType, ExchangeType, Message, NotifyType, ProtocolId};
pub(in crate::engine) use fragment::REASSEMBLY_TIMEOUT;

/// strongSwan's private notify asking for BEET mode.
pub(in crate::engine) const USE_BEET_MODE: NotifyType = NotifyType(40961);

/// Our nonce length: "at least 128 bits" and at least half the PRF key size.
const NONCE_LEN: usize = 32;

/// How often an initiator follows COOKIE or INVALID_KE_PAYLOAD answers before giving up.
const MAX_INIT_ATTEMPTS: u8 = 5;

/// A request we mean to send, queued while another is outstanding (window size 1); once
/// sent, it is an [`Exchange`] with what its answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// An empty INFORMATIONAL (liveness check).
    Dpd,
    /// Delete the IKE SA.
    DeleteIke,
    /// Delete the CHILD_SA with this inbound SPI, for this reason.
    DeleteChild(u32, DeleteReason),
    /// Tell the peer that the CHILD_SA with this inbound SPI, which the data plane refused,
    /// is gone (it was removed already).
    DeleteRefusedChild(u32),
    /// Rekey the CHILD_SA with this inbound SPI (CREATE_CHILD_SA with REKEY_SA).
    RekeyChild(u32),
    /// Rekey the IKE SA.
    RekeyIke,
    /// Create one more CHILD_SA for the connection's `child`-th CHILD_SA configuration
    /// (CREATE_CHILD_SA without REKEY_SA), with the PFS group the peer asked for, if it did.
    CreateChild {
        child: usize,
        group: Option<crate::wire::DhGroup>,
    },
    /// Check the candidate pairs and move to the first that answers (initiator, MOBIKE);
    /// `confirm` as for [`Exchange::PathCheck`].
    Roam { confirm: bool },
    /// Move to this pair, which answered a path check, with UPDATE_SA_ADDRESSES.
    UpdateSaAddresses(AddressPair),
    /// Send our address list.
    AnnounceAddresses,
    /// Check the path an UPDATE_SA_ADDRESSES asked for before moving there (responder).
    CheckReturnRoutability(Path),
}

fn addr_matches(list: &[IpAddr], ip: IpAddr) -> bool {
    list.is_empty() || list.contains(&ip) || ip.is_unspecified()
}

fn host_ts(ip: IpAddr) -> TrafficSelector {
    match ip {
        IpAddr::V4(a) => TrafficSelector::Ipv4(AddressRange::any(a, a)),
        IpAddr::V6(a) => TrafficSelector::Ipv6(AddressRange::any(a, a)),
    }
}

/// Every address of `ip`'s family.
fn family_ts(ip: IpAddr) -> TrafficSelector {
    match ip {
        IpAddr::V4(_) => TrafficSelector::Ipv4(AddressRange::any(
            std::net::Ipv4Addr::UNSPECIFIED,
            std::net::Ipv4Addr::BROADCAST,
        )),
        IpAddr::V6(_) => TrafficSelector::Ipv6(AddressRange::any(
            std::net::Ipv6Addr::UNSPECIFIED,
            std::net::Ipv6Addr::from(u128::MAX),
        )),
    }
}

/// Resolves configured selectors: `dynamic` becomes `hosts` (an IKE address or the virtual
/// IPs, one selector each) with the configured protocol and ports.
fn resolve_ts(list: &[TsConfig], hosts: &[IpAddr]) -> Vec<TrafficSelector> {
    list.iter()
        .flat_map(|t| match t {
            TsConfig::Fixed(ts) => vec![ts.clone()],
            TsConfig::Dynamic {
                ip_protocol,
                start_port,
                end_port,
            } => hosts
                .iter()
                .map(|&host| {
                    let mut ts = host_ts(host);
                    if let TrafficSelector::Ipv4(r) = &mut ts {
                        (r.ip_protocol, r.start_port, r.end_port) =
                            (*ip_protocol, *start_port, *end_port);
                    }
                    if let TrafficSelector::Ipv6(r) = &mut ts {
                        (r.ip_protocol, r.start_port, r.end_port) =
                            (*ip_protocol, *start_port, *end_port);
                    }
                    ts
                })
                .collect(),
        })
        .collect()
}

/// Our side's selectors of a CHILD_SA configuration on `sa`: `dynamic` is our virtual IPs
/// once we have them, else our IKE address.
fn local_ts_of(sa: &IkeSa, list: &[TsConfig]) -> Vec<TrafficSelector> {
    if sa.virtual_ips.is_empty() {
        resolve_ts(list, &[sa.path.local().ip()])
    } else {
        resolve_ts(list, &sa.virtual_ips)
    }
}

/// The peer's side's selectors: the virtual IPs we assigned replace them all (one host
/// selector per address); otherwise `dynamic` is the peer's IKE address.
fn remote_ts_of(sa: &IkeSa, list: &[TsConfig]) -> Vec<TrafficSelector> {
    if sa.assigned_vips.is_empty() {
        resolve_ts(list, &[sa.path.remote().ip()])
    } else {
        sa.assigned_vips.iter().map(|&v| host_ts(v)).collect()
    }
}

/// The first of `candidates` (index and configuration) whose selectors, narrowed against the
/// proposed TSi and TSr ([RFC 7296 § 2.9](https://www.rfc-editor.org/rfc/rfc7296#section-2.9)),
/// leave both sides non-empty; with the narrowed TSi and TSr. `None` means TS_UNACCEPTABLE.
fn narrow_to_first_child<'a>(
    sa: &IkeSa,
    candidates: impl IntoIterator<Item = (usize, &'a ChildConfig)>,
    tsi: &TrafficSelectors,
    tsr: &TrafficSelectors,
) -> Option<(usize, Vec<TrafficSelector>, Vec<TrafficSelector>)> {
    candidates.into_iter().find_map(|(i, ch)| {
        let ntsi = narrow(&tsi.selectors, &remote_ts_of(sa, &ch.remote_ts));
        let ntsr = narrow(&tsr.selectors, &local_ts_of(sa, &ch.local_ts));
        (!ntsi.is_empty() && !ntsr.is_empty()).then_some((i, ntsi, ntsr))
    })
}

/// The IPsec mode of a CHILD_SA: the transport or BEET mode one side `wanted`, if the other
/// side's message carries the matching USE_TRANSPORT_MODE or (strongSwan's) [`USE_BEET_MODE`]
/// notify; tunnel mode otherwise
/// ([RFC 7296 § 1.3.1](https://www.rfc-editor.org/rfc/rfc7296#section-1.3.1)).
fn agreed_mode(wanted: Mode, payloads: &[Payload]) -> Mode {
    match wanted {
        Mode::Transport if has_notify(payloads, NotifyType::USE_TRANSPORT_MODE) => Mode::Transport,
        Mode::Beet if has_notify(payloads, USE_BEET_MODE) => Mode::Beet,
        _ => Mode::Tunnel,
    }
}

/// The notify that asks for or accepts `mode` (USE_TRANSPORT_MODE or USE_BEET_MODE); none for
/// tunnel mode, the default ([RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1)).
fn mode_notify(mode: Mode) -> Option<Payload> {
    match mode {
        Mode::Transport => Some(notify(NotifyType::USE_TRANSPORT_MODE)),
        Mode::Beet => Some(notify(USE_BEET_MODE)),
        Mode::Tunnel => None,
    }
}

fn find<'a, T>(payloads: &'a [Payload], f: impl Fn(&'a Payload) -> Option<&'a T>) -> Option<&'a T> {
    payloads.iter().find_map(f)
}

/// The Nonce payload of a message ([RFC 7296 § 3.9](https://www.rfc-editor.org/rfc/rfc7296#section-3.9)).
fn nonce_of(payloads: &[Payload]) -> Option<&Nonce> {
    find(payloads, |p| match p {
        Payload::Nonce(n) => Some(n),
        _ => None,
    })
}

/// The Key Exchange payload of a message ([RFC 7296 § 3.4](https://www.rfc-editor.org/rfc/rfc7296#section-3.4)).
fn ke_of(payloads: &[Payload]) -> Option<&KeyExchange> {
    find(payloads, |p| match p {
        Payload::KeyExchange(k) => Some(k),
        _ => None,
    })
}

/// The Security Association payload of a message ([RFC 7296 § 3.3](https://www.rfc-editor.org/rfc/rfc7296#section-3.3)).
fn sa_of(payloads: &[Payload]) -> Option<&SecurityAssociation> {
    find(payloads, |p| match p {
        Payload::SecurityAssociation(s) => Some(s),
        _ => None,
    })
}

/// The TSi (`initiator`) or TSr payload of a message ([RFC 7296 § 3.13](https://www.rfc-editor.org/rfc/rfc7296#section-3.13)).
fn ts_of(payloads: &[Payload], initiator: bool) -> Option<&TrafficSelectors> {
    find(payloads, |p| match p {
        Payload::TsInitiator(t) if initiator => Some(t),
        Payload::TsResponder(t) if !initiator => Some(t),
        _ => None,
    })
}

/// The SA, TSi and TSr payloads that together propose or accept a CHILD_SA
/// ([RFC 7296 § 1.2](https://www.rfc-editor.org/rfc/rfc7296#section-1.2),
/// [§ 1.3.1](https://www.rfc-editor.org/rfc/rfc7296#section-1.3.1)); `None` unless all three are there.
fn child_sa_payloads(
    payloads: &[Payload],
) -> Option<(&SecurityAssociation, &TrafficSelectors, &TrafficSelectors)> {
    Some((
        sa_of(payloads)?,
        ts_of(payloads, true)?,
        ts_of(payloads, false)?,
    ))
}

/// The IV for the next encrypted payload ([RFC 7296 § 3.14](https://www.rfc-editor.org/rfc/rfc7296#section-3.14)):
/// for AES-GCM's 8-octet IVs the SA's message counter, unique per key by construction
/// ([RFC 5282 § 3.1](https://www.rfc-editor.org/rfc/rfc5282#section-3.1)); fresh random octets
/// otherwise.
fn next_iv(rng: &mut dyn crate::crypto::Rng, iv_counter: &mut u64, len: usize) -> Vec<u8> {
    if len == 8 {
        *iv_counter += 1;
        iv_counter.to_be_bytes().to_vec()
    } else {
        let mut iv = vec![0u8; len];
        rng.fill(&mut iv);
        iv
    }
}

/// The IKE header of an encrypted (SK or SKF) message of `sa`; its payloads travel inside the
/// Encrypted payload ([RFC 7296 § 3.14](https://www.rfc-editor.org/rfc/rfc7296#section-3.14)).
fn encrypted_message_header(
    sa: &IkeSa,
    exchange: ExchangeType,
    response: bool,
    mid: u32,
) -> Message {
    Message {
        spi_i: sa.spi_i,
        spi_r: sa.spi_r,
        exchange_type: exchange,
        flags: Flags::new(sa.initiator, response),
        message_id: mid,
        minor_version: 0,
        payloads: Vec::new(),
    }
}

fn has_notify(payloads: &[Payload], ty: NotifyType) -> bool {
    payloads
        .iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.ty == ty))
}

/// The peer's SIGNATURE_HASH_ALGORITHMS ([RFC 7427 § 4](https://www.rfc-editor.org/rfc/rfc7427#section-4)),
/// if it sent a well-formed one.
fn peer_hash_algorithms(payloads: &[Payload]) -> Option<Vec<crate::wire::HashAlgorithm>> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty == NotifyType::SIGNATURE_HASH_ALGORITHMS => {
            n.as_signature_hash_algorithms()
        }
        _ => None,
    })
}

/// The CERTREQ payloads of a message.
fn certificate_requests(payloads: &[Payload]) -> Vec<CertificateRequest> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::CertificateRequest(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// The CERT payloads of a message.
fn certificates(payloads: &[Payload]) -> Vec<crate::wire::payload::Certificate> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn first_error(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
        _ => None,
    })
}

fn failure_of(ty: NotifyType) -> FailureReason {
    match ty {
        NotifyType::NO_PROPOSAL_CHOSEN => FailureReason::NoProposalChosen,
        NotifyType::AUTHENTICATION_FAILED => FailureReason::PeerAuthenticationFailed,
        NotifyType::TS_UNACCEPTABLE => FailureReason::TsUnacceptable,
        NotifyType::INTERNAL_ADDRESS_FAILURE => FailureReason::InternalAddressFailure,
        other => FailureReason::Notify(other),
    }
}

fn notify(ty: NotifyType) -> Payload {
    Payload::Notify(Notify::new(ty, Vec::new()))
}

/// The IKE SA's cipher state from its keys; the keys go to the `key_log` first, if any.
fn key_state(
    alg: &IkeAlgorithms,
    keys: IkeKeys,
    initiator: bool,
    (spi_i, spi_r): (u64, u64),
    key_log: Option<&mut dyn KeyLog>,
) -> Option<IkeKeyState> {
    if let Some(log) = key_log {
        log.ike_sa_keys(&IkeSaKeys {
            spi_i,
            spi_r,
            encr: alg.encr,
            integ: alg.integ,
            sk_ei: keys.sk_ei.expose(),
            sk_er: keys.sk_er.expose(),
            sk_ai: keys.sk_ai.expose(),
            sk_ar: keys.sk_ar.expose(),
        });
    }
    let ci =
        crate::crypto::sk::SkCipher::new(alg.encr, alg.integ, &keys.sk_ei, &keys.sk_ai).ok()?;
    let cr =
        crate::crypto::sk::SkCipher::new(alg.encr, alg.integ, &keys.sk_er, &keys.sk_ar).ok()?;
    let (out, inb) = if initiator { (ci, cr) } else { (cr, ci) };
    Some(IkeKeyState {
        prf: alg.prf,
        sk_d: keys.sk_d,
        sk_pi: keys.sk_pi,
        sk_pr: keys.sk_pr,
        out,
        inb,
    })
}

fn derive_keys(
    alg: &IkeAlgorithms,
    shared: &Secret,
    ni: &[u8],
    nr: &[u8],
    (spi_i, spi_r): (u64, u64),
    initiator: bool,
    key_log: Option<&mut dyn KeyLog>,
) -> Option<IkeKeyState> {
    let suite = IkeSuite {
        prf: alg.prf,
        encr: alg.encr,
        integ: alg.integ,
    };
    let seed = skeyseed(alg.prf, ni, nr, shared);
    let keys = IkeKeys::derive(suite, seed, ni, nr, spi_i, spi_r).ok()?;
    key_state(alg, keys, initiator, (spi_i, spi_r), key_log)
}

fn split_keys(spi: u32, material: &Secret, integ: &Secret, aead: bool) -> SaKeys {
    let (encryption_key, salt) = if aead {
        match split_salt(material) {
            Some((k, s)) => (k, Secret::from_slice(&s)),
            None => (material.clone(), Secret::new(Vec::new())),
        }
    } else {
        (material.clone(), Secret::new(Vec::new()))
    };
    SaKeys {
        spi,
        encryption_key,
        salt,
        integrity_key: integ.clone(),
    }
}

/// What the responder's IKE_AUTH handling decided about the CHILD_SA.
/// A request as received: where it came from, its bytes (for the response cache), its
/// message ID and exchange.
#[derive(Debug, Clone, Copy)]
pub(in crate::engine) struct Received<'a> {
    local: SocketAddr,
    remote: SocketAddr,
    bytes: &'a [u8],
    message_id: u32,
    exchange: ExchangeType,
}

/// A negotiated CHILD_SA, ready to be keyed and installed.
pub(in crate::engine) struct ChildPlan {
    /// Index of its configuration in the connection's `children`.
    child: usize,
    mode: Mode,
    alg: EspAlgorithms,
    inbound_spi: u32,
    outbound_spi: u32,
    /// Our side's selectors.
    local_ts: Vec<TrafficSelector>,
    /// The peer's side's selectors.
    remote_ts: Vec<TrafficSelector>,
}

/// The inputs of a CHILD_SA's KEYMAT ([RFC 7296 § 2.17](https://www.rfc-editor.org/rfc/rfc7296#section-2.17)).
pub(in crate::engine) struct ChildKeying<'a> {
    /// Whether we initiated the exchange that created it ("initiator to responder" keys
    /// come first).
    exchange_initiator: bool,
    ni: &'a [u8],
    nr: &'a [u8],
    /// The new shared secret with PFS.
    pfs: Option<&'a Secret>,
}

pub(in crate::engine) struct ChildOutcome {
    payloads: Vec<Payload>,
    install: Option<ChildPlan>,
    failure: Option<(String, FailureReason)>,
}

impl Core {
    // ----- message plumbing -----

    /// Encrypts `payloads` into a message of this IKE SA.
    pub(in crate::engine) fn seal(
        &mut self,
        sa: &mut IkeSa,
        exchange: ExchangeType,
        response: bool,
        mid: u32,
        payloads: Vec<Payload>,
    ) -> Option<Vec<u8>> {
        let (first, plain) = encode_chain_to_vec(&payloads).ok()?;
        let keys = sa.keys.as_ref()?;
        let iv = next_iv(&mut *self.rng, &mut sa.iv_counter, keys.out.iv_len());
        let msg = encrypted_message_header(sa, exchange, response, mid);
        match keys.out.seal(&iv, msg, first, &plain) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot seal a message");
                None
            }
        }
    }

    /// Sends a request and arms its retransmission.
    pub(in crate::engine) fn send_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        exchange: Exchange,
        payloads: Vec<Payload>,
    ) -> bool {
        let mid = sa.next_message_id;
        let Some(mut datagrams) =
            self.seal_datagrams(sa, exchange.exchange_type(), false, mid, payloads)
        else {
            return false;
        };
        sa.next_message_id = mid.wrapping_add(1);
        sa.last_outbound = now;
        let (via, also) = mobike::route(sa, &exchange);
        for pair in std::iter::once(via).chain(also.iter().copied()) {
            for d in &datagrams {
                self.send_raw(pair.local, pair.remote, d);
            }
        }
        let bytes = datagrams.first().cloned().unwrap_or_default();
        if datagrams.len() == 1 {
            datagrams.clear();
        }
        sa.pending = Some(Pending {
            message_id: mid,
            fragments: datagrams,
            bytes,
            sends: 1,
            via,
            also,
            exchange,
        });
        sa.timers
            .set(Timer::Retransmit, now + self.config.retransmit.wait(0));
        true
    }

    /// Answers the request `mid` to where it came from, and caches the answer.
    pub(in crate::engine) fn respond(
        &mut self,
        sa: &mut IkeSa,
        rx: &Received<'_>,
        payloads: Vec<Payload>,
    ) {
        let mid = rx.message_id;
        sa.peer_next_message_id = mid.wrapping_add(1);
        let request_fragments = std::mem::take(&mut sa.reassembled_from);
        let Some(mut datagrams) = self.seal_datagrams(sa, rx.exchange, true, mid, payloads) else {
            return;
        };
        for d in &datagrams {
            self.send_raw(rx.local, rx.remote, d);
        }
        let response = datagrams.first().cloned().unwrap_or_default();
        if datagrams.len() == 1 {
            datagrams.clear();
        }
        sa.cached = Some(CachedResponse {
            message_id: mid,
            request: rx.bytes.to_vec(),
            request_fragments,
            response,
            response_fragments: datagrams,
        });
    }

    /// Sends the next queued request if none is outstanding.
    pub(in crate::engine) fn pump_queue(&mut self, now: Instant, sa: &mut IkeSa) -> bool {
        while sa.pending.is_none() && sa.is_established() {
            let Some(req) = sa.queue.pop_front() else {
                break;
            };
            let (exchange, payloads) = match req {
                Request::Dpd => (Exchange::Dpd, Vec::new()),
                Request::DeleteIke => (Exchange::DeleteIke, vec![Payload::Delete(Delete::ike())]),
                Request::DeleteChild(spi, reason) => {
                    if !sa.children.iter().any(|c| c.inbound_spi == spi) {
                        continue;
                    }
                    (
                        Exchange::DeleteChild(spi, reason),
                        vec![Payload::Delete(Delete::esp(&[spi]))],
                    )
                }
                Request::DeleteRefusedChild(spi) => (
                    Exchange::DeleteRefusedChild(spi),
                    vec![Payload::Delete(Delete::esp(&[spi]))],
                ),
                Request::RekeyChild(spi) => match self.start_rekey_child(sa, spi) {
                    Some(x) => x,
                    None => continue,
                },
                Request::RekeyIke => match self.start_rekey_ike(sa) {
                    Some(x) => x,
                    None => continue,
                },
                Request::CreateChild { child, group } => {
                    match self.start_create_child(sa, child, group) {
                        Some(x) => x,
                        None => continue,
                    }
                }
                Request::Roam { confirm } => match self.start_path_check(sa, confirm) {
                    Some(x) => x,
                    None => continue,
                },
                Request::UpdateSaAddresses(pair) => self.start_update_sa_addresses(sa, pair),
                Request::AnnounceAddresses => match self.start_address_update(sa) {
                    Some(x) => x,
                    None => continue,
                },
                Request::CheckReturnRoutability(path) => self.start_return_routability(path),
            };
            let deleting = matches!(exchange, Exchange::DeleteIke);
            if !self.send_request(now, sa, exchange, payloads) {
                return false;
            }
            if deleting {
                sa.state = State::Deleting;
                sa.queue.clear();
            }
        }
        true
    }

    /// Moves the IKE SA and its CHILD_SAs to (`local`, `remote`), with the NAT state it has.
    pub(in crate::engine) fn set_path(
        &mut self,
        sa: &mut IkeSa,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        let path = Path {
            pair: AddressPair { local, remote },
            ..sa.path
        };
        self.move_to(sa, path);
    }

    /// Moves the IKE SA and its CHILD_SAs to `path` (one [`SaEvent::UpdateAddresses`] each:
    /// new endpoints, UDP encapsulation as the NAT state asks).
    pub(in crate::engine) fn move_to(&mut self, sa: &mut IkeSa, path: Path) {
        if sa.path == path {
            return;
        }
        sa.path = path;
        sa.paths.moved(&sa.path);
        // The old pair is given up: an outstanding request goes on on the new one.
        if let Some(p) = &mut sa.pending {
            p.via = sa.path.pair;
            p.also.clear();
        }
        let AddressPair { local, remote } = path.pair;
        for c in &sa.children {
            self.sa_events.push_back(SaEvent::UpdateAddresses {
                ike_sa: sa.handle,
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
                local,
                remote,
                udp_encap: sa.path.udp_encap(),
            });
        }
        if sa.is_established() {
            self.events.push_back(Event::PathUpdated {
                handle: sa.handle,
                local,
                remote,
            });
        }
    }

    /// Tells the peer the IKE SA is gone (once, without waiting for an answer) and ends it.
    pub(in crate::engine) fn abandon(&mut self, sa: &mut IkeSa, reason: DeleteReason) {
        let mid = sa.next_message_id;
        sa.next_message_id = mid.wrapping_add(1);
        let delete = vec![Payload::Delete(Delete::ike())];
        if let Some(bytes) = self.seal(sa, ExchangeType::INFORMATIONAL, false, mid, delete) {
            self.send_raw(sa.path.local(), sa.path.remote(), &bytes);
        }
        self.deleted(sa, reason);
    }

    pub(in crate::engine) fn delete_children(&mut self, sa: &mut IkeSa, reason: DeleteReason) {
        for c in std::mem::take(&mut sa.children) {
            self.remove_child_events(sa.handle, &c, reason);
        }
    }

    pub(in crate::engine) fn remove_child_events(
        &mut self,
        handle: IkeSaHandle,
        c: &ChildSa,
        reason: DeleteReason,
    ) {
        self.sa_events.push_back(SaEvent::Delete {
            ike_sa: handle,
            inbound_spi: c.inbound_spi,
            outbound_spi: c.outbound_spi,
        });
        self.child_sa_gone(handle, c, reason);
    }

    /// Counts and reports a CHILD_SA that is no longer there, and frees its SPI (the data
    /// plane holds nothing of it, or is told separately).
    pub(in crate::engine) fn child_sa_gone(
        &mut self,
        handle: IkeSaHandle,
        c: &ChildSa,
        reason: DeleteReason,
    ) {
        self.stats.child_sas_deleted += 1;
        self.child_spis.remove(&c.inbound_spi);
        self.events.push_back(Event::ChildSaDeleted {
            handle,
            inbound_spi: c.inbound_spi,
            reason,
        });
    }

    /// Ends an established IKE SA: its CHILD_SAs go, then the event.
    pub(in crate::engine) fn deleted(&mut self, sa: &mut IkeSa, reason: DeleteReason) {
        self.delete_children(sa, reason);
        if sa.silent {
            return;
        }
        self.stats.ike_sas_deleted += 1;
        tracing::info!(connection = %sa.connection, ?reason, "IKE SA deleted");
        self.events.push_back(Event::IkeSaDeleted {
            handle: sa.handle,
            reason,
        });
    }

    pub(in crate::engine) fn invalid_ike_spi(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Repr,
    ) {
        if !self.invalid_spi_allowed(now) {
            self.stats.invalid_ike_spi_rate_limited += 1;
            return;
        }
        self.stats.invalid_ike_spi_sent += 1;
        let m = Message {
            spi_i: header.spi_i,
            spi_r: header.spi_r,
            exchange_type: ExchangeType::INFORMATIONAL,
            flags: Flags::new(!header.flags.initiator(), true),
            message_id: header.message_id,
            minor_version: 0,
            payloads: vec![notify(NotifyType::INVALID_IKE_SPI)],
        };
        self.send_plain(local, remote, &m);
    }

    /// Checks and decrypts a protected message of `sa` with message ID `mid`. A fragment is
    /// kept until its message is complete ([RFC 7383 § 2.6](https://www.rfc-editor.org/rfc/rfc7383#section-2.6));
    /// `None` until then, and for anything that fails.
    pub(in crate::engine) fn open(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        mid: u32,
        bytes: &[u8],
    ) -> Option<Vec<Payload>> {
        let keys = sa.keys.as_ref()?;
        let opened = match keys.inb.open(bytes) {
            Ok(o) => o,
            Err(_) => {
                self.stats.drop_integrity += 1;
                return None;
            }
        };
        let (first_inner, plaintext) = match opened.fragment {
            None => (opened.first_inner, opened.plaintext),
            Some((number, total)) => {
                self.stats.fragments_received += 1;
                let done = self.add_fragment(
                    now,
                    sa,
                    mid,
                    (number, total),
                    opened.first_inner,
                    opened.plaintext,
                    bytes,
                );
                done?
            }
        };
        match decode_chain(first_inner, &plaintext) {
            Ok(p) => Some(p),
            Err(_) => {
                self.stats.drop_malformed += 1;
                None
            }
        }
    }

    /// A protected response, which arrived on `via`: it answers our outstanding request
    /// whatever pair it came on (the request may have been sent on several), and shows that
    /// pair works.
    pub(in crate::engine) fn protected_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        via: AddressPair,
        header: &Repr,
        bytes: &[u8],
    ) -> bool {
        let matches = sa.pending.as_ref().is_some_and(|p| {
            p.message_id == header.message_id && p.exchange.exchange_type() == header.exchange_type
        });
        if !matches {
            self.stats.drop_unexpected_response += 1;
            return true;
        }
        let Some(payloads) = self.open(now, sa, header.message_id, bytes) else {
            return true;
        };
        // Only requests keep their fragments (for the response cache).
        sa.reassembled_from.clear();
        let Some(pending) = sa.pending.take() else {
            return true;
        };
        self.heard_from(now, sa);
        sa.paths.record(via, PathCheck::Reachable(now));
        let keep = match pending.exchange {
            Exchange::IkeAuth { child } => {
                let keep = self.auth_response(now, sa, child, &payloads);
                if keep && sa.is_established() {
                    self.queue_start_children(sa);
                }
                keep
            }
            Exchange::Dpd | Exchange::IkeSaInit(_) => true,
            Exchange::DeleteIke => {
                self.deleted(sa, DeleteReason::Local);
                false
            }
            Exchange::DeleteChild(spi, reason) => {
                if let Some(i) = sa.children.iter().position(|c| c.inbound_spi == spi) {
                    let c = sa.children.remove(i);
                    self.remove_child_events(sa.handle, &c, reason);
                }
                true
            }
            // The peer's Delete of its half: nothing of the CHILD_SA is left here.
            Exchange::DeleteRefusedChild(spi) => {
                tracing::debug!(
                    spi_in = format_args!("{spi:08x}"),
                    "the peer deleted its half of the refused CHILD_SA"
                );
                true
            }
            Exchange::RekeyChild(rekey) => self.rekey_child_response(now, sa, rekey, &payloads),
            Exchange::RekeyIke { new_spi_i, ni, dh } => {
                self.rekey_ike_response(now, sa, new_spi_i, &ni, &dh, &payloads)
            }
            Exchange::CreateChild { proposal, ni, dh } => {
                self.create_child_response(now, sa, proposal, &ni, dh.as_ref(), &payloads)
            }
            Exchange::PathCheck { confirm } => self.path_check_answered(sa, confirm, via),
            Exchange::UpdateSaAddresses(check) => {
                return self.update_answered(now, sa, check, &payloads) && self.pump_queue(now, sa);
            }
            Exchange::AddressUpdate { addresses, from } => {
                return self.address_update_answered(sa, addresses, from, via)
                    && self.pump_queue(now, sa);
            }
            Exchange::ReturnRoutability(check) => {
                return self.return_routability_answered(sa, check, via, &payloads)
                    && self.pump_queue(now, sa);
            }
        };
        if keep {
            self.answered_on(sa, via);
        }
        keep && self.pump_queue(now, sa)
    }

    pub(in crate::engine) fn protected_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        others: &mut Others<'_>,
        via: AddressPair,
        header: &Repr,
        bytes: &[u8],
    ) -> bool {
        let AddressPair { local, remote } = via;
        let mid = header.message_id;
        if mid != sa.peer_next_message_id {
            // A retransmitted request, or the first fragment of one
            // (RFC 7383 § 2.6.1), gets the cached response again.
            let again = sa.cached.as_ref().filter(|c| {
                c.message_id == mid
                    && match c.request_fragments.first() {
                        Some(first) => first == bytes,
                        None => c.request == bytes,
                    }
            });
            match again {
                Some(c) => {
                    let out = if c.response_fragments.is_empty() {
                        vec![c.response.clone()]
                    } else {
                        c.response_fragments.clone()
                    };
                    self.stats.responses_retransmitted += 1;
                    for d in &out {
                        self.send_raw(local, remote, d);
                    }
                }
                None => self.stats.drop_out_of_window += 1,
            }
            return true;
        }
        let Some(payloads) = self.open(now, sa, mid, bytes) else {
            return true;
        };
        let rx = Received {
            local,
            remote,
            bytes,
            message_id: mid,
            exchange: header.exchange_type,
        };
        // A request can queue one of ours (a MOBIKE check, say): it goes out at once.
        let keep = match (header.exchange_type, &sa.state) {
            (ExchangeType::IKE_AUTH, State::HalfOpen(_)) if !sa.initiator => {
                self.auth_request(now, sa, others, &rx, &payloads)
            }
            (ExchangeType::INFORMATIONAL, State::Established | State::Deleting) => {
                self.heard_from(now, sa);
                self.informational_request(now, sa, &rx, &payloads)
            }
            (ExchangeType::CREATE_CHILD_SA, State::Established | State::Deleting) => {
                self.heard_from(now, sa);
                self.create_child_request(now, sa, &rx, &payloads)
            }
            _ => {
                self.stats.drop_unexpected_exchange += 1;
                true
            }
        };
        keep && self.pump_queue(now, sa)
    }

    // ----- timers -----

    /// Runs the SA's due timers ([`Timer::VALUES`] order); returns whether it lives on.
    pub(in crate::engine) fn sa_timeout(&mut self, now: Instant, sa: &mut IkeSa) -> bool {
        for timer in Timer::VALUES {
            if !sa.timers.expire(timer, now) {
                continue;
            }
            let live = sa.is_established() && !sa.silent;
            match timer {
                Timer::Hold => {
                    tracing::warn!(connection = %sa.connection, "the held peer never came back: its SAs go");
                    self.deleted(sa, DeleteReason::DeadPeer);
                    return false;
                }
                Timer::Expire => {
                    if !sa.silent {
                        self.stats.half_open_expired += 1;
                    }
                    return false;
                }
                // Never completed: the peer gave up or lost a fragment for good.
                Timer::Reassembly if sa.reassembly.take().is_some() => {
                    self.stats.drop_fragment += 1;
                }
                Timer::Retransmit if !self.retransmit(now, sa) => return false,
                Timer::HardExpiry if sa.is_established() => {
                    // Rekeying never succeeded and the keys are worn out: tell the peer
                    // and go.
                    self.abandon(sa, DeleteReason::Expired);
                    return false;
                }
                Timer::RekeyIke if sa.is_established() => sa.queue.push_back(Request::RekeyIke),
                Timer::RekeyChild if sa.is_established() => {
                    for c in &mut sa.children {
                        if c.rekey_at.is_some_and(|at| now >= at) {
                            c.rekey_at = None;
                            sa.queue.push_back(Request::RekeyChild(c.inbound_spi));
                        }
                    }
                }
                Timer::Keepalive
                    if live
                        && sa.path.nat_local
                        && self
                            .config
                            .nat_keepalive
                            .and_then(|i| sa.last_outbound.checked_add(i))
                            .is_some_and(|at| at <= now) =>
                {
                    sa.last_outbound = now;
                    self.stats.keepalives_sent += 1;
                    self.stats.datagrams_sent += 1;
                    self.transmits.push_back(Transmit {
                        local: sa.path.local(),
                        remote: sa.path.remote(),
                        payload: vec![crate::wire::message::NAT_KEEPALIVE],
                    });
                }
                // Only after silence with nothing outstanding: an exchange under way checks
                // liveness by itself.
                Timer::Dpd if live && sa.pending.is_none() && sa.queue.is_empty() => {
                    sa.queue.push_back(Request::Dpd);
                }
                // Due in a state where it no longer applies (a rekey timer of an SA being
                // deleted, a keepalive just made unnecessary by another datagram).
                _ => {}
            }
        }
        self.pump_queue(now, sa)
    }

    /// Arms the IKE SA's rekey (its rekey time less a random part of its rand time) and its
    /// hard expiry (rekey time + over time), counted from `now`: when it is established or
    /// rekeyed.
    pub(in crate::engine) fn arm_ike_lifetime(&mut self, now: Instant, sa: &mut IkeSa) {
        let rekey = self.rekey_due(now, sa.cfg.rekey_time, sa.cfg.rand_time);
        sa.timers.set_or_stop(Timer::RekeyIke, rekey);
        let hard = sa
            .cfg
            .rekey_time
            .zip(sa.cfg.over_time)
            .and_then(|(r, o)| now.checked_add(r.saturating_add(o)));
        sa.timers.set_or_stop(Timer::HardExpiry, hard);
    }

    /// An authenticated message from the peer: it is alive, and a held SA resumes.
    pub(in crate::engine) fn heard_from(&mut self, now: Instant, sa: &mut IkeSa) {
        sa.last_inbound = now;
        if sa.timers.get(Timer::Hold).is_some() {
            sa.timers.stop(Timer::Hold);
            self.stats.ike_sas_resumed += 1;
            tracing::info!(connection = %sa.connection, remote = %sa.path.remote(), "the held peer is back: its SAs resume");
        }
    }

    /// Sends the outstanding request again and arms the next retransmission, or ends the
    /// SA when the last try went unanswered (or, with a hold policy, holds it); returns
    /// whether it lives on.
    fn retransmit(&mut self, now: Instant, sa: &mut IkeSa) -> bool {
        let tries = self.config.retransmit.tries;
        let holds = sa
            .cfg
            .hold
            .filter(|_| sa.peer_mobike && sa.is_established());
        let Some(p) = &mut sa.pending else {
            return true;
        };
        if p.sends > tries {
            self.stats.exchange_timeouts += 1;
            if let Some(hold) = holds {
                // The hold policy: the peer answered on no pair. Its SAs stay, and the same
                // request (its message ID cannot be skipped) goes on being sent on every
                // pair at the longest interval, until it is answered or the hold ends.
                p.sends = tries;
                if sa.timers.get(Timer::Hold).is_none() {
                    self.stats.ike_sas_held += 1;
                    tracing::warn!(
                        connection = %sa.connection,
                        remote = %sa.path.remote(),
                        hold = ?hold,
                        "the peer answers on no pair: holding its SAs"
                    );
                    sa.timers.set(Timer::Hold, now + hold);
                }
                return self.retransmit(now, sa);
            }
            match sa.state {
                State::Established => self.deleted(sa, DeleteReason::DeadPeer),
                State::Deleting => self.deleted(sa, DeleteReason::Local),
                _ => self.fail(sa, FailureReason::Timeout),
            }
            return false;
        }
        self.pair_silent(now, sa);
        let Some(p) = &mut sa.pending else {
            return true;
        };
        let wait = self.config.retransmit.wait(p.sends);
        p.sends += 1;
        let datagrams = if p.fragments.is_empty() {
            vec![p.bytes.clone()]
        } else {
            p.fragments.clone()
        };
        let pairs: Vec<AddressPair> = std::iter::once(p.via)
            .chain(p.also.iter().copied())
            .collect();
        sa.timers.set(Timer::Retransmit, now + wait);
        self.stats.requests_retransmitted += 1;
        sa.last_outbound = now;
        for pair in pairs {
            for d in &datagrams {
                self.send_raw(pair.local, pair.remote, d);
            }
        }
        true
    }
}

impl Engine {
    pub(in crate::engine) fn command(
        &mut self,
        now: Instant,
        handle: IkeSaHandle,
        req: Request,
    ) -> Result<(), CommandError> {
        let mut result = Ok(());
        let found = self.with_sa(handle, |core, sa, _| {
            if req == Request::DeleteIke && !sa.is_established() {
                if matches!(sa.state, State::Deleting) {
                    return true;
                }
                core.fail(
                    sa,
                    FailureReason::Unsupported("terminated before establishment"),
                );
                return false;
            }
            if !sa.is_established() {
                result = Err(CommandError::NotEstablished(handle));
                return true;
            }
            sa.queue.push_back(req);
            core.pump_queue(now, sa)
        });
        if found.is_none() {
            result = Err(CommandError::UnknownIkeSa(handle));
        }
        self.settle(now);
        result
    }

    // ----- dispatch -----

    pub(in crate::engine) fn dispatch(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Repr,
        bytes: &[u8],
    ) {
        let from_initiator = header.flags.initiator();
        let response = header.flags.response();
        if header.exchange_type == ExchangeType::IKE_SA_INIT {
            if !response && from_initiator {
                if header.spi_r != 0 {
                    self.core.stats.drop_unexpected_exchange += 1;
                    return;
                }
                if let Some(h) = self.core.half_open.get(&(remote, header.spi_i)).copied() {
                    let Some(sa) = self.sas.get(h) else { return };
                    match sa.transcript() {
                        Some(t) if t.request == bytes => {
                            let (l, r, out) =
                                (sa.path.local(), sa.path.remote(), t.response.clone());
                            self.core.stats.responses_retransmitted += 1;
                            self.core.send_raw(l, r, &out);
                        }
                        _ => self.core.stats.drop_out_of_window += 1,
                    }
                    return;
                }
                self.core.init_request(now, local, remote, bytes);
            } else if response && !from_initiator {
                let Some(h) = self.core.by_spi.get(&header.spi_i).copied() else {
                    self.core.stats.drop_unknown_spi += 1;
                    return;
                };
                self.with_sa(h, |core, sa, others| {
                    if !sa.initiator || !matches!(sa.state, State::InitSent) {
                        core.stats.drop_unexpected_response += 1;
                        return true;
                    }
                    let _span =
                        tracing::debug_span!("ike_sa", spi_i = format_args!("{:016x}", sa.spi_i))
                            .entered();
                    core.init_response(now, sa, others, local, bytes)
                });
            } else {
                self.core.stats.drop_malformed += 1;
            }
            return;
        }
        let our_spi = if from_initiator {
            header.spi_r
        } else {
            header.spi_i
        };
        let handle = self
            .core
            .by_spi
            .get(&our_spi)
            .copied()
            .filter(|&h| self.sas.get(h).is_some());
        let Some(handle) = handle else {
            self.core.stats.drop_unknown_spi += 1;
            if !response {
                self.core.invalid_ike_spi(now, local, remote, header);
            }
            return;
        };
        self.with_sa(handle, |core, sa, others| {
            if sa.initiator == from_initiator
                || sa.spi_i != header.spi_i
                || sa.spi_r != header.spi_r
            {
                core.stats.drop_unknown_spi += 1;
                return true;
            }
            let _span = tracing::debug_span!(
                "ike_sa",
                spi_i = format_args!("{:016x}", sa.spi_i),
                spi_r = format_args!("{:016x}", sa.spi_r)
            )
            .entered();
            if response {
                core.protected_response(now, sa, AddressPair { local, remote }, header, bytes)
            } else {
                core.protected_request(
                    now,
                    sa,
                    others,
                    AddressPair { local, remote },
                    header,
                    bytes,
                )
            }
        });
    }
}
