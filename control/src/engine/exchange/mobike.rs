//! MOBIKE ([RFC 4555](https://www.rfc-editor.org/rfc/rfc4555)) in both roles: address
//! lists, the initiator's path checks and UPDATE_SA_ADDRESSES, the responder's answer to it
//! and its return routability check, and what a change of our own addresses sets off.
//!
//! Every move follows an authenticated exchange: an UPDATE_SA_ADDRESSES request (the SA
//! moves to the pair it arrived on, after a return routability check where the
//! connection's policy asks for one), the answer to our UPDATE_SA_ADDRESSES or to our
//! check (both must echo our COOKIE2), or, for a responder, the answer to the address list
//! it sent on a new pair (a strongSwan initiator moves to such a pair at once). Anything
//! else that hints at a change — a new source on an authenticated message, silence on the
//! pair in use — only starts checks.

use super::*;
use crate::engine::config::ReturnRoutability;
use crate::engine::ike_sa::Cookie2Check;
use crate::engine::path::Path;

/// Our COOKIE2 length (8 to 64 octets are allowed).
const COOKIE2_LEN: usize = 16;

/// After this many unanswered sends on the pair in use, a request goes on every candidate
/// pair too: the pair counts as failed ("a failed liveness check").
const SENDS_BEFORE_SPREAD: u32 = 2;

/// ADDITIONAL_IP4_ADDRESS / ADDITIONAL_IP6_ADDRESS for each of `addresses`, in order, or
/// NO_ADDITIONAL_ADDRESSES when there are none
/// ([RFC 4555 § 3.6](https://www.rfc-editor.org/rfc/rfc4555#section-3.6)).
pub(super) fn address_list_payloads(addresses: &[IpAddr]) -> Vec<Payload> {
    if addresses.is_empty() {
        return vec![notify(NotifyType::NO_ADDITIONAL_ADDRESSES)];
    }
    addresses
        .iter()
        .map(|&a| Payload::Notify(Notify::additional_address(a)))
        .collect()
}

/// The COOKIE2 of a message, if it has a well-formed one.
fn cookie2_of(payloads: &[Payload]) -> Option<&[u8]> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) => n.as_cookie2(),
        _ => None,
    })
}

/// Whether a MOBIKE notification is among `payloads`.
fn has_mobike_notify(payloads: &[Payload]) -> bool {
    payloads.iter().any(|p| {
        matches!(p, Payload::Notify(n) if matches!(n.ty,
            NotifyType::ADDITIONAL_IP4_ADDRESS
            | NotifyType::ADDITIONAL_IP6_ADDRESS
            | NotifyType::NO_ADDITIONAL_ADDRESSES
            | NotifyType::UPDATE_SA_ADDRESSES
            | NotifyType::COOKIE2
            | NotifyType::NO_NATS_ALLOWED
            | NotifyType::NAT_DETECTION_SOURCE_IP))
    })
}

/// The addresses and ports a NO_NATS_ALLOWED says its message was sent from and to
/// ([RFC 4555 § 4](https://www.rfc-editor.org/rfc/rfc4555#section-4): source address,
/// destination address, source port, destination port); `None` if malformed.
fn no_nats_allowed_pair(data: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let ip = |b: &[u8]| -> Option<IpAddr> {
        match b.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
            _ => None,
        }
    };
    let alen = match data.len() {
        12 => 4,
        36 => 16,
        _ => return None,
    };
    let (addrs, ports) = data.split_at(2 * alen);
    let src = ip(&addrs[..alen])?;
    let dst = ip(&addrs[alen..])?;
    let sport = u16::from_be_bytes([ports[0], ports[1]]);
    let dport = u16::from_be_bytes([ports[2], ports[3]]);
    Some((SocketAddr::new(src, sport), SocketAddr::new(dst, dport)))
}

/// The pairs a request of `sa` goes on: the first, and the others it goes on at the same
/// time with the same message ID.
pub(super) fn route(sa: &IkeSa, exchange: &Exchange) -> (AddressPair, Vec<AddressPair>) {
    match exchange {
        Exchange::PathCheck { .. } => spread(sa),
        Exchange::UpdateSaAddresses(c) | Exchange::ReturnRoutability(c) => (c.path.pair, vec![]),
        Exchange::AddressUpdate { .. } if !current_usable(sa) => spread(sa),
        _ => (sa.path.pair, Vec::new()),
    }
}

/// Every candidate pair, in preference order (the pair in use if there is none).
fn spread(sa: &IkeSa) -> (AddressPair, Vec<AddressPair>) {
    let mut pairs = sa.paths.candidates().iter().map(|c| c.pair);
    match pairs.next() {
        Some(first) => (first, pairs.collect()),
        None => (sa.path.pair, Vec::new()),
    }
}

/// Whether the pair in use still has its local address and did not stop answering.
fn current_usable(sa: &IkeSa) -> bool {
    sa.local_address_present()
        && !matches!(
            sa.paths.check(sa.path.pair),
            Some(PathCheck::Unreachable(_))
        )
}

/// Whether the initiator is moving already (a path check or an update out or queued).
fn roaming(sa: &IkeSa) -> bool {
    matches!(
        sa.pending.as_ref().map(|p| &p.exchange),
        Some(Exchange::PathCheck { .. } | Exchange::UpdateSaAddresses(_))
    ) || sa
        .queue
        .iter()
        .any(|r| matches!(r, Request::Roam { .. } | Request::UpdateSaAddresses(_)))
}

/// Whether MOBIKE runs on `sa` now.
fn active(sa: &IkeSa) -> bool {
    sa.peer_mobike && sa.is_established() && !sa.silent
}

impl Core {
    /// Our address list for IKE_AUTH (none if we have no other address: its absence says
    /// so), remembered as announced.
    pub(super) fn auth_address_list(&self, sa: &mut IkeSa) -> Vec<Payload> {
        sa.begin_paths(self.host_addresses.as_deref());
        let list = sa.address_list(sa.path.local().ip());
        let payloads = if list.is_empty() {
            Vec::new()
        } else {
            address_list_payloads(&list)
        };
        sa.paths.announced = Some(list);
        payloads
    }

    // ----- what sets moves off -----

    /// Our address set changed ([`Engine::set_local_addresses`]): an initiator whose
    /// address in use is gone checks the other pairs and moves; otherwise each side sends
    /// its new list (a responder whose address in use is gone sends it on every pair that
    /// still has one, so that the initiator follows it). An outstanding request on the lost
    /// address goes on every candidate pair at once.
    pub(in crate::engine) fn local_addresses_changed(&mut self, now: Instant, sa: &mut IkeSa) {
        if !active(sa) {
            return;
        }
        let present = sa.local_address_present();
        let (via, also) = spread(sa);
        if !present
            && let Some(p) = &mut sa.pending
            && (via != p.via || !also.is_empty())
        {
            p.via = via;
            p.also = also;
            sa.timers.set(Timer::Retransmit, now);
        }
        if sa.initiator && !present {
            if !roaming(sa) {
                sa.queue.push_front(Request::Roam { confirm: false });
            }
        } else if !sa.queue.contains(&Request::AnnounceAddresses) {
            if present {
                sa.queue.push_back(Request::AnnounceAddresses);
            } else {
                sa.queue.push_front(Request::AnnounceAddresses);
            }
        }
    }

    /// A request of ours went unanswered `sends` times on its pair: from
    /// [`SENDS_BEFORE_SPREAD`] on, the pair counts as unreachable and the request goes on
    /// every candidate pair too, so that an answer on another one shows where to move.
    pub(super) fn pair_silent(&mut self, now: Instant, sa: &mut IkeSa) {
        if !active(sa) {
            return;
        }
        let (pending_via, sends, spread_already) = match &sa.pending {
            // An UPDATE_SA_ADDRESSES or a return routability check is about its own pair;
            // from other source addresses it would have to be a new request (RFC 4555
            // § 3.5).
            Some(p)
                if !matches!(
                    p.exchange,
                    Exchange::UpdateSaAddresses(_) | Exchange::ReturnRoutability(_)
                ) =>
            {
                (p.via, p.sends, !p.also.is_empty())
            }
            _ => return,
        };
        if sends < SENDS_BEFORE_SPREAD || spread_already {
            return;
        }
        sa.paths.record(pending_via, PathCheck::Unreachable(now));
        let also: Vec<AddressPair> = sa
            .paths
            .candidates()
            .iter()
            .map(|c| c.pair)
            .filter(|&p| p != pending_via)
            .collect();
        if let Some(p) = &mut sa.pending {
            p.also = also;
        }
    }

    /// An answer to a request that is not a MOBIKE one arrived on `via`, not on the pair in
    /// use: that pair works. An initiator checks and moves; a responder sends its address
    /// list so that the initiator moves.
    fn answered_elsewhere(&mut self, sa: &mut IkeSa) {
        if !active(sa) {
            return;
        }
        if sa.initiator {
            if !roaming(sa) {
                sa.queue.push_front(Request::Roam { confirm: false });
            }
        } else if !sa.queue.contains(&Request::AnnounceAddresses) {
            sa.queue.push_front(Request::AnnounceAddresses);
        }
    }

    /// The responder's authenticated request (its address list) came on `pair`, not on the
    /// pair in use: it may have moved its side there (a responder whose address went away
    /// does, and strongSwan does). The initiator checks the pairs and ends with an
    /// UPDATE_SA_ADDRESSES whichever pair answers, so that both sides agree on its choice.
    fn responder_spoke_elsewhere(&mut self, sa: &mut IkeSa) {
        if !active(sa) || !sa.initiator {
            return;
        }
        if let Some(p) = &mut sa.pending
            && let Exchange::PathCheck { confirm } = &mut p.exchange
        {
            *confirm = true;
            return;
        }
        if let Some(Request::Roam { confirm }) = sa
            .queue
            .iter_mut()
            .find(|r| matches!(r, Request::Roam { .. }))
        {
            *confirm = true;
            return;
        }
        // An UPDATE out or queued names a pair already.
        if !roaming(sa) {
            sa.queue.push_front(Request::Roam { confirm: true });
        }
    }

    // ----- our requests -----

    /// A path check on every candidate pair, or `None` if there is none.
    pub(super) fn start_path_check(
        &mut self,
        sa: &IkeSa,
        confirm: bool,
    ) -> Option<(Exchange, Vec<Payload>)> {
        if sa.paths.candidates().is_empty() {
            tracing::warn!(connection = %sa.connection, "no address pair to move to: waiting for an address");
            return None;
        }
        self.stats.mobike_path_checks += 1;
        tracing::info!(
            connection = %sa.connection,
            pairs = sa.paths.candidates().len(),
            "checking the address pairs"
        );
        Some((Exchange::PathCheck { confirm }, Vec::new()))
    }

    /// UPDATE_SA_ADDRESSES on `pair`, with NAT detection for it, a fresh COOKIE2 and our
    /// address list when it is not the one the peer has
    /// ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)).
    pub(super) fn start_update_sa_addresses(
        &mut self,
        sa: &mut IkeSa,
        pair: AddressPair,
    ) -> (Exchange, Vec<Payload>) {
        let cookie2 = self.random(COOKIE2_LEN);
        let mut payloads = vec![notify(NotifyType::UPDATE_SA_ADDRESSES)];
        payloads.extend(nat_detection_payloads(sa.spi_i, sa.spi_r, pair));
        payloads.push(Payload::Notify(Notify::new(
            NotifyType::COOKIE2,
            cookie2.clone(),
        )));
        let list = sa.address_list(pair.local.ip());
        if sa.paths.announced.as_ref() != Some(&list) {
            payloads.extend(address_list_payloads(&list));
            sa.paths.announced = Some(list);
        }
        let path = Path {
            pair,
            nat_local: false,
            nat_remote: false,
        };
        (
            Exchange::UpdateSaAddresses(Cookie2Check { path, cookie2 }),
            payloads,
        )
    }

    /// Our address list in an INFORMATIONAL, or `None` when the peer has it already and
    /// the pair in use works.
    pub(super) fn start_address_update(
        &mut self,
        sa: &mut IkeSa,
    ) -> Option<(Exchange, Vec<Payload>)> {
        let exchange = Exchange::AddressUpdate {
            addresses: Vec::new(),
            from: sa.path.pair,
        };
        let (via, _) = route(sa, &exchange);
        let addresses = sa.address_list(via.local.ip());
        if current_usable(sa) && sa.paths.announced.as_ref() == Some(&addresses) {
            return None;
        }
        self.stats.mobike_address_lists_sent += 1;
        let payloads = address_list_payloads(&addresses);
        Some((
            Exchange::AddressUpdate {
                addresses,
                from: sa.path.pair,
            },
            payloads,
        ))
    }

    /// The responder's return routability check of `path`: an INFORMATIONAL with a fresh
    /// COOKIE2 on it ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)).
    pub(super) fn start_return_routability(&mut self, path: Path) -> (Exchange, Vec<Payload>) {
        let cookie2 = self.random(COOKIE2_LEN);
        self.stats.mobike_return_routability_checks += 1;
        let payloads = vec![Payload::Notify(Notify::new(
            NotifyType::COOKIE2,
            cookie2.clone(),
        ))];
        (
            Exchange::ReturnRoutability(Cookie2Check { path, cookie2 }),
            payloads,
        )
    }

    // ----- answers to them -----

    /// The answer to our path check arrived on `via`: the SA moves there with
    /// UPDATE_SA_ADDRESSES, unless it is the pair in use.
    pub(super) fn path_check_answered(
        &mut self,
        sa: &mut IkeSa,
        confirm: bool,
        via: AddressPair,
    ) -> bool {
        if via != sa.path.pair || confirm {
            sa.queue.push_front(Request::UpdateSaAddresses(via));
        }
        true
    }

    /// The answer to our address list, sent on `from`, arrived on `via`. A responder whose
    /// list went on a new pair moves there: the initiator took the list from that pair and
    /// moved (strongSwan does at once, with no check of its own) — unless the initiator
    /// has moved the SA since, with an UPDATE_SA_ADDRESSES: the initiator decides (RFC 4555
    /// § 3.5), and a late answer must not undo its decision. An initiator checks.
    pub(super) fn address_update_answered(
        &mut self,
        sa: &mut IkeSa,
        addresses: Vec<IpAddr>,
        from: AddressPair,
        via: AddressPair,
    ) -> bool {
        // The list left out the address the first copy went from, which its IP header
        // carries; another copy that was answered carried a list the peer now reads with
        // that copy's source instead: "a new INFORMATIONAL request MUST be sent" (RFC 4555
        // § 3.6), once the SA is on the pair answered.
        let resend = addresses.contains(&via.local.ip());
        sa.paths.announced = Some(addresses);
        if resend && !sa.queue.contains(&Request::AnnounceAddresses) {
            sa.queue.push_back(Request::AnnounceAddresses);
        }
        if via != sa.path.pair {
            if sa.initiator {
                self.answered_elsewhere(sa);
            } else if sa.path.pair != from {
                tracing::debug!(connection = %sa.connection, "the initiator moved the SA since our address list went out: staying");
            } else {
                let path = Path {
                    pair: via,
                    ..sa.path
                };
                self.mobike_move(sa, path, "address list answered on a new pair");
            }
        }
        true
    }

    /// The answer to our return routability check: the SA moves to the checked path if it
    /// echoes our COOKIE2 and came on that path; an answer on another pair moves nothing
    /// (counted); one that does not echo the cookie closes the IKE SA.
    pub(super) fn return_routability_answered(
        &mut self,
        sa: &mut IkeSa,
        check: Cookie2Check,
        via: AddressPair,
        payloads: &[Payload],
    ) -> bool {
        if cookie2_of(payloads) != Some(check.cookie2.as_slice()) {
            // "If the values do not match, the IKE_SA MUST be closed" (RFC 4555 § 3.7).
            self.stats.mobike_cookie2_mismatch += 1;
            tracing::warn!(connection = %sa.connection, "the return routability check's answer does not echo our COOKIE2: closing the IKE SA");
            self.abandon(sa, DeleteReason::Cookie2Mismatch);
            return false;
        } else if via != check.path.pair {
            self.stats.mobike_updates_refused += 1;
            tracing::warn!(connection = %sa.connection, remote = %via.remote, "the return routability check was answered on another pair: not moving");
        } else {
            self.mobike_move(sa, check.path, "return routability checked");
        }
        true
    }

    /// An answer to a request that is not a MOBIKE one arrived on `via`: if that is not
    /// the pair in use, the pair works, which may start a move.
    pub(super) fn answered_on(&mut self, sa: &mut IkeSa, via: AddressPair) {
        if via != sa.path.pair {
            self.answered_elsewhere(sa);
        }
    }

    /// The answer to our UPDATE_SA_ADDRESSES: it must echo our COOKIE2 byte for byte, or
    /// the IKE SA is closed ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5));
    /// an error notification (UNACCEPTABLE_ADDRESSES, UNEXPECTED_NAT_DETECTED) leaves the SA
    /// where it is; otherwise it moves, with the NAT state the answer's NAT detection shows.
    pub(super) fn update_answered(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        check: Cookie2Check,
        payloads: &[Payload],
    ) -> bool {
        if cookie2_of(payloads) != Some(check.cookie2.as_slice()) {
            self.stats.mobike_cookie2_mismatch += 1;
            tracing::warn!(connection = %sa.connection, "the UPDATE_SA_ADDRESSES answer does not echo our COOKIE2: closing the IKE SA");
            self.abandon(sa, DeleteReason::Cookie2Mismatch);
            return false;
        }
        if let Some(error) = first_error(payloads) {
            self.stats.mobike_updates_refused += 1;
            sa.paths
                .record(check.path.pair, PathCheck::Unreachable(now));
            tracing::warn!(connection = %sa.connection, ?error, local = %check.path.pair.local, remote = %check.path.pair.remote, "the peer refused the move");
            return true;
        }
        let mut path = check.path;
        if let Some((local, remote)) = nat_found(sa.spi_i, sa.spi_r, path.pair, payloads) {
            path.nat_local = local;
            path.nat_remote = remote;
        }
        self.mobike_move(sa, path, "UPDATE_SA_ADDRESSES answered");
        true
    }

    /// Moves the SA and its CHILD_SAs to `path` (counted and logged).
    fn mobike_move(&mut self, sa: &mut IkeSa, path: Path, why: &'static str) {
        if sa.path == path {
            return;
        }
        self.stats.mobike_moves += 1;
        tracing::info!(
            connection = %sa.connection,
            from_local = %sa.path.local(),
            from_remote = %sa.path.remote(),
            local = %path.local(),
            remote = %path.remote(),
            udp_encap = path.udp_encap(),
            why,
            "IKE SA moved"
        );
        self.move_to(sa, path);
    }

    // ----- the peer's requests -----

    /// The MOBIKE part of the peer's INFORMATIONAL request `rx` (already authenticated):
    /// takes its address list, answers UPDATE_SA_ADDRESSES (NAT detection, NO_NATS_ALLOWED,
    /// the move or the return routability check the policy asks for first) and echoes
    /// COOKIE2. Returns what goes into the answer.
    pub(super) fn mobike_request(
        &mut self,
        sa: &mut IkeSa,
        rx: &Received<'_>,
        payloads: &[Payload],
    ) -> Vec<Payload> {
        if !has_mobike_notify(payloads) {
            return Vec::new();
        }
        if !sa.peer_mobike {
            self.stats.mobike_ignored += 1;
            return Vec::new();
        }
        let pair = AddressPair {
            local: rx.local,
            remote: rx.remote,
        };
        let mut out = Vec::new();
        let list = additional_addresses(payloads);
        let update = has_notify(payloads, NotifyType::UPDATE_SA_ADDRESSES);
        if update && sa.initiator {
            // Only the initiator moves an SA (RFC 4555 § 3.5).
            self.stats.mobike_updates_refused += 1;
            tracing::warn!(connection = %sa.connection, "UPDATE_SA_ADDRESSES from the responder: ignored");
        } else if update {
            out.extend(self.update_requested(sa, pair, payloads));
        }
        // A refused UPDATE changes nothing: its list would count the address a NAT put in
        // its IP header as the peer's (RFC 4555 § 3.9).
        let refused = out.iter().any(
            |p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::UNEXPECTED_NAT_DETECTED),
        );
        if !update && has_notify(payloads, NotifyType::NAT_DETECTION_SOURCE_IP) {
            // NAT detection in any INFORMATIONAL request is answered in kind, and nothing
            // else follows from it (RFC 4555 § 3.8).
            out.extend(nat_detection_payloads(sa.spi_i, sa.spi_r, pair));
        }
        if let Some(list) = list
            && !refused
        {
            self.stats.mobike_address_lists_received += 1;
            sa.paths.set_peer(pair.remote.ip(), &list, &sa.path);
            tracing::debug!(connection = %sa.connection, peer = ?sa.paths.peer(), "the peer's address list");
            // A list from a new source is a hint, not a move: the initiator checks, and
            // names the pair both sides end on.
            if sa.initiator && pair != sa.path.pair {
                self.responder_spoke_elsewhere(sa);
            }
        }
        if let Some(cookie2) = cookie2_of(payloads) {
            out.push(Payload::Notify(Notify::new(
                NotifyType::COOKIE2,
                cookie2.to_vec(),
            )));
        }
        out
    }

    /// The responder's part of an UPDATE_SA_ADDRESSES that arrived on `pair`; returns the
    /// NAT detection (or UNEXPECTED_NAT_DETECTED) for the answer.
    fn update_requested(
        &mut self,
        sa: &mut IkeSa,
        pair: AddressPair,
        payloads: &[Payload],
    ) -> Vec<Payload> {
        let no_nats = payloads.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == NotifyType::NO_NATS_ALLOWED => Some(n.data.as_slice()),
            _ => None,
        });
        if let Some(data) = no_nats
            && no_nats_allowed_pair(data) != Some((pair.remote, pair.local))
        {
            self.stats.mobike_updates_refused += 1;
            tracing::warn!(connection = %sa.connection, local = %pair.local, remote = %pair.remote, "NO_NATS_ALLOWED, but the addresses changed on the way: UNEXPECTED_NAT_DETECTED");
            return vec![notify(NotifyType::UNEXPECTED_NAT_DETECTED)];
        }
        let restricted =
            sa.cfg.local_addrs.iter().any(|a| !a.is_unspecified()) || !sa.cfg.links.is_empty();
        if restricted && !sa.paths.local().contains(&pair.local.ip()) {
            // Our policy (`local_addrs`, `links`) does not let this SA use the address the
            // UPDATE came to (RFC 4555 § 3.5: UNACCEPTABLE_ADDRESSES).
            self.stats.mobike_updates_refused += 1;
            tracing::warn!(connection = %sa.connection, local = %pair.local, remote = %pair.remote, "UPDATE_SA_ADDRESSES to an address this connection may not use: UNACCEPTABLE_ADDRESSES");
            return vec![notify(NotifyType::UNACCEPTABLE_ADDRESSES)];
        }
        let mut path = Path { pair, ..sa.path };
        if let Some((local, remote)) = nat_found(sa.spi_i, sa.spi_r, pair, payloads) {
            path.nat_local = local;
            path.nat_remote = remote;
        }
        let checked = match sa.cfg.return_routability {
            ReturnRoutability::Never => false,
            ReturnRoutability::Always => true,
            ReturnRoutability::NewAddresses => !sa.paths.peer().contains(&pair.remote.ip()),
            ReturnRoutability::Certificate => {
                !sa.peer_certificate_addresses.contains(&pair.remote.ip())
            }
        };
        if pair == sa.path.pair || !checked {
            self.mobike_move(sa, path, "UPDATE_SA_ADDRESSES");
        } else {
            tracing::info!(connection = %sa.connection, local = %pair.local, remote = %pair.remote, "UPDATE_SA_ADDRESSES to a new address: checking it first");
            sa.queue
                .retain(|r| !matches!(r, Request::CheckReturnRoutability(_)));
            sa.queue.push_front(Request::CheckReturnRoutability(path));
        }
        if no_nats.is_some() {
            Vec::new()
        } else {
            nat_detection_payloads(sa.spi_i, sa.spi_r, pair).to_vec()
        }
    }
}
