//! CREATE_CHILD_SA ([RFC 7296 § 1.3](https://www.rfc-editor.org/rfc/rfc7296#section-1.3)):
//! rekeying a CHILD_SA with or without PFS ([§ 1.3.3](https://www.rfc-editor.org/rfc/rfc7296#section-1.3.3)),
//! creating one more, rekeying the IKE SA ([§ 1.3.2](https://www.rfc-editor.org/rfc/rfc7296#section-1.3.2),
//! [§ 2.18](https://www.rfc-editor.org/rfc/rfc7296#section-2.18)), and simultaneous CHILD_SA
//! rekeying ([§ 2.8.1](https://www.rfc-editor.org/rfc/rfc7296#section-2.8.1)).
//!
//! A rekeyed IKE SA keeps its [`IkeSaHandle`]: the handle names the SA and all its successors,
//! and its CHILD_SAs move along without any [`SaEvent`]. The predecessor lives on, silent, only
//! to finish its Delete.

use super::*;
use crate::crypto::keys::skeyseed_rekey;
use crate::engine::config::{ChildConfig, StartAction};
use crate::wire::DhGroup;

/// How long a responder keeps a rekeyed-away IKE SA for the initiator's Delete.
const PREDECESSOR_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// The lower of two nonces, compared as unsigned big-endian numbers of their length
/// (a shorter nonce is padded with leading zeros).
fn lower<'a>(a: &'a [u8], b: &'a [u8]) -> &'a [u8] {
    if nonce_cmp(a, b).is_le() { a } else { b }
}

/// After a simultaneous rekey: whether the SA our exchange (nonces `ni`, `nr`) created is the
/// redundant one, given the lowest nonce of the peer's exchange. "The redundant SA that was
/// created with the lowest of the four nonces SHOULD be deleted by the node that created it"
/// ([RFC 7296 § 2.8.1](https://www.rfc-editor.org/rfc/rfc7296#section-2.8.1)).
fn ours_is_redundant(ni: &[u8], nr: &[u8], their_lowest: &[u8]) -> bool {
    nonce_cmp(lower(ni, nr), their_lowest).is_lt()
}

fn nonce_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let pad = |x: &[u8]| {
        let mut v = vec![0u8; n - x.len()];
        v.extend_from_slice(x);
        v
    };
    pad(a).cmp(&pad(b))
}

/// The first DH group of a CHILD_SA configuration's ESP proposals (its PFS group).
fn first_dh_group(cfg: &ChildConfig) -> Option<DhGroup> {
    cfg.esp_proposals.iter().find_map(|p| p.dh.first().copied())
}

/// What we asked for in a CREATE_CHILD_SA for a CHILD_SA.
struct OfferedChild {
    /// Index of its configuration in the connection's `children`.
    cfg_index: usize,
    mode: Mode,
    /// The PFS group we used, for INVALID_KE_PAYLOAD.
    group: Option<DhGroup>,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
}

/// Our CREATE_CHILD_SA request for a CHILD_SA and the secrets its answer needs.
struct ChildRequest {
    payloads: Vec<Payload>,
    new_inbound: u32,
    ni: Vec<u8>,
    dh: Option<DhPrivate>,
}

/// How the peer answered our CREATE_CHILD_SA for a CHILD_SA.
enum ChildAnswer {
    /// The CHILD_SA is installed; the peer's nonce.
    Installed { nr: Vec<u8> },
    /// INVALID_KE_PAYLOAD with a group we accept: ask again with it.
    RetryWith(DhGroup),
    /// Refused or broken.
    Failed(FailureReason),
}

impl Engine {
    /// Rekeys a CHILD_SA (named by our inbound SPI).
    pub fn rekey_child(
        &mut self,
        now: Instant,
        handle: IkeSaHandle,
        inbound_spi: u32,
    ) -> Result<(), CommandError> {
        self.check_child_sa(handle, inbound_spi)?;
        self.command(now, handle, Request::RekeyChild(inbound_spi))
    }

    /// Rekeys the IKE SA; its handle and CHILD_SAs stay.
    pub fn rekey_ike(&mut self, now: Instant, handle: IkeSaHandle) -> Result<(), CommandError> {
        self.command(now, handle, Request::RekeyIke)
    }

    /// Creates one more CHILD_SA on an established IKE SA for the CHILD_SA configuration
    /// `child` of its connection: CREATE_CHILD_SA with SA, Ni, KEi (optional), TSi and TSr,
    /// without REKEY_SA ([RFC 7296 § 1.3.1](https://www.rfc-editor.org/rfc/rfc7296#section-1.3.1)).
    /// With a DH group in the configuration's ESP proposals, the new CHILD_SA has PFS.
    /// The outcome is [`Event::ChildSaEstablished`] (after its [`SaEvent::Install`]) or
    /// [`Event::ChildSaFailed`]; either way the IKE SA stays.
    pub fn initiate_child(
        &mut self,
        now: Instant,
        handle: IkeSaHandle,
        child: &str,
    ) -> Result<(), CommandError> {
        let sa = self
            .sas
            .get(handle)
            .ok_or(CommandError::UnknownIkeSa(handle))?;
        let index = sa
            .cfg
            .children
            .iter()
            .position(|c| c.name == child)
            .ok_or_else(|| CommandError::UnknownChildConfig(child.to_owned()))?;
        self.command(
            now,
            handle,
            Request::CreateChild {
                child: index,
                group: None,
            },
        )
    }
}

impl Core {
    /// How long to wait before retrying a refused rekey: 15 to 30 retransmission timeouts,
    /// at random, so that two peers whose rekeys collided do not collide again.
    fn retry_delay(&mut self) -> std::time::Duration {
        let mut b = [0u8; 1];
        self.rng.fill(&mut b);
        let base = self
            .config
            .retransmit
            .timeout
            .saturating_mul(15)
            .min(std::time::Duration::from_secs(86_400));
        base.saturating_add(base.mul_f64(f64::from(b[0]) / 256.0))
    }

    /// Queues the CHILD_SAs of `sa`'s connection that start with it, beyond the first (which
    /// IKE_AUTH created).
    pub(in crate::engine) fn queue_start_children(&mut self, sa: &mut IkeSa) {
        let more = sa
            .cfg
            .children
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, c)| c.start_action == StartAction::Start)
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        for child in more {
            sa.queue
                .push_back(Request::CreateChild { child, group: None });
        }
    }

    /// A CREATE_CHILD_SA request for a CHILD_SA (a rekey of `rekey`, or a new one), with a
    /// fresh inbound SPI, nonce and, with a PFS group, private value.
    fn child_offer(
        &mut self,
        cfg: &ChildConfig,
        rekey: Option<u32>,
        offered: &OfferedChild,
    ) -> Option<ChildRequest> {
        let new_inbound = self.alloc_child_spi();
        let ni = self.random(NONCE_LEN);
        let dh = match offered.group {
            Some(g) => Some(DhPrivate::generate(g, &mut *self.rng).ok()?),
            None => None,
        };
        let mut payloads = Vec::new();
        if let Some(old) = rekey {
            payloads.push(Payload::Notify(Notify {
                protocol: ProtocolId::ESP,
                spi: old.to_be_bytes().to_vec(),
                ty: NotifyType::REKEY_SA,
                data: Vec::new(),
            }));
        }
        payloads.push(Payload::SecurityAssociation(SecurityAssociation {
            proposals: offer(&cfg.esp_proposals, &new_inbound.to_be_bytes(), true),
        }));
        payloads.push(Payload::Nonce(Nonce { data: ni.clone() }));
        if let Some(dh) = &dh {
            payloads.push(Payload::KeyExchange(KeyExchange {
                group: dh.group(),
                data: dh.public().to_vec(),
            }));
        }
        payloads.push(Payload::TsInitiator(TrafficSelectors {
            selectors: offered.local_ts.clone(),
        }));
        payloads.push(Payload::TsResponder(TrafficSelectors {
            selectors: offered.remote_ts.clone(),
        }));
        payloads.extend(mode_notify(offered.mode));
        Some(ChildRequest {
            payloads,
            new_inbound,
            ni,
            dh,
        })
    }

    /// Our CHILD_SA rekey request and its payloads; `None` when there is nothing to rekey.
    pub(in crate::engine) fn start_rekey_child(
        &mut self,
        sa: &mut IkeSa,
        old: u32,
    ) -> Option<(Exchange, Vec<Payload>)> {
        let child = sa
            .children
            .iter()
            .find(|c| c.inbound_spi == old && !c.rekeyed)?;
        let cfg = sa.cfg.children.get(child.cfg_index)?.clone();
        let offered = OfferedChild {
            cfg_index: child.cfg_index,
            mode: child.mode,
            group: child.pfs_group.or_else(|| first_dh_group(&cfg)),
            local_ts: child.local_ts.clone(),
            remote_ts: child.remote_ts.clone(),
        };
        let ChildRequest {
            payloads,
            new_inbound,
            ni,
            dh,
        } = self.child_offer(&cfg, Some(old), &offered)?;
        let rekey = ChildRekey {
            old,
            new_inbound,
            ni,
            dh,
            collision: None,
        };
        Some((Exchange::RekeyChild(rekey), payloads))
    }

    /// Our request for one more CHILD_SA and its payloads; `None` when the configuration
    /// is gone.
    pub(in crate::engine) fn start_create_child(
        &mut self,
        sa: &mut IkeSa,
        child: usize,
        group: Option<DhGroup>,
    ) -> Option<(Exchange, Vec<Payload>)> {
        let cfg = sa.cfg.children.get(child)?.clone();
        let offered = OfferedChild {
            cfg_index: child,
            mode: cfg.mode,
            group: group.or_else(|| first_dh_group(&cfg)),
            local_ts: local_ts_of(sa, &cfg.local_ts),
            remote_ts: remote_ts_of(sa, &cfg.remote_ts),
        };
        let ChildRequest {
            payloads,
            new_inbound,
            ni,
            dh,
        } = self.child_offer(&cfg, None, &offered)?;
        let proposal = ChildProposal {
            child,
            inbound_spi: new_inbound,
            local_ts: offered.local_ts,
            remote_ts: offered.remote_ts,
        };
        Some((Exchange::CreateChild { proposal, ni, dh }, payloads))
    }

    /// Checks the answer to our CREATE_CHILD_SA for a CHILD_SA and, if it is good, installs
    /// the new CHILD_SA.
    #[allow(clippy::too_many_arguments)]
    fn child_answer(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        payloads: &[Payload],
        offered: &OfferedChild,
        new_inbound: u32,
        ni: &[u8],
        dh: Option<&DhPrivate>,
    ) -> ChildAnswer {
        let Some(cfg) = sa.cfg.children.get(offered.cfg_index).cloned() else {
            return ChildAnswer::Failed(FailureReason::Protocol(
                "the CHILD_SA configuration is gone",
            ));
        };
        // "INVALID_KE_PAYLOAD ... the initiator will need to retry" with the group the
        // responder names, if we accept it ([RFC 7296 § 1.3](https://www.rfc-editor.org/rfc/rfc7296#section-1.3)).
        let wanted = payloads.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == NotifyType::INVALID_KE_PAYLOAD => {
                n.as_invalid_ke_payload()
            }
            _ => None,
        });
        if let Some(g) = wanted
            && dh::is_supported(g)
            && offered.group != Some(g)
            && cfg.esp_proposals.iter().any(|p| p.dh.contains(&g))
        {
            return ChildAnswer::RetryWith(g);
        }
        if let Some(ty) = first_error(payloads) {
            return ChildAnswer::Failed(failure_of(ty));
        }
        let (Some((sa_p, tsi, tsr)), Some(nr)) = (child_sa_payloads(payloads), nonce_of(payloads))
        else {
            return ChildAnswer::Failed(FailureReason::Protocol(
                "CREATE_CHILD_SA response incomplete",
            ));
        };
        let Some((outbound, alg)) =
            check_esp_answer(&cfg.esp_proposals, &sa_p.proposals, dh.is_some())
        else {
            return ChildAnswer::Failed(FailureReason::NoProposalChosen);
        };
        let shared = match (dh, ke_of(payloads)) {
            (Some(dh), Some(ke)) if ke.group == dh.group() && alg.dh == Some(dh.group()) => {
                match dh.agree(&ke.data) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        return ChildAnswer::Failed(FailureReason::Protocol("invalid KE data"));
                    }
                }
            }
            (None, None) => None,
            _ => {
                return ChildAnswer::Failed(FailureReason::Protocol("KE payload does not match"));
            }
        };
        if !is_subset(&tsi.selectors, &offered.local_ts)
            || !is_subset(&tsr.selectors, &offered.remote_ts)
        {
            return ChildAnswer::Failed(FailureReason::TsUnacceptable);
        }
        let plan = ChildPlan {
            child: offered.cfg_index,
            mode: offered.mode,
            alg,
            inbound_spi: new_inbound,
            outbound_spi: outbound,
            local_ts: tsi.selectors.clone(),
            remote_ts: tsr.selectors.clone(),
        };
        let keying = ChildKeying {
            exchange_initiator: true,
            ni,
            nr: &nr.data,
            pfs: shared.as_ref(),
        };
        self.install_child(now, sa, plan, keying);
        ChildAnswer::Installed {
            nr: nr.data.clone(),
        }
    }

    /// The answer to our CHILD_SA rekey.
    pub(in crate::engine) fn rekey_child_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        rekey: ChildRekey,
        payloads: &[Payload],
    ) -> bool {
        let ChildRekey {
            old,
            new_inbound,
            ni,
            dh,
            collision,
        } = rekey;
        let Some(child) = sa.children.iter().find(|c| c.inbound_spi == old).cloned() else {
            return true;
        };
        let offered = OfferedChild {
            cfg_index: child.cfg_index,
            mode: child.mode,
            group: child.pfs_group,
            local_ts: child.local_ts.clone(),
            remote_ts: child.remote_ts.clone(),
        };
        let nr = match self.child_answer(now, sa, payloads, &offered, new_inbound, &ni, dh.as_ref())
        {
            ChildAnswer::Installed { nr } => nr,
            ChildAnswer::RetryWith(g) => {
                if let Some(c) = sa.children.iter_mut().find(|c| c.inbound_spi == old) {
                    c.pfs_group = Some(g);
                }
                sa.queue.push_front(Request::RekeyChild(old));
                return true;
            }
            ChildAnswer::Failed(reason) => {
                // The peer may have rekeyed it first (and we answered that): nothing lost.
                if child.rekeyed && first_error(payloads).is_some() {
                    return true;
                }
                // Try again later rather than never.
                let at = now.checked_add(self.retry_delay());
                if let Some(c) = sa.children.iter_mut().find(|c| c.inbound_spi == old) {
                    c.rekey_at = at;
                }
                self.events.push_back(Event::ChildSaFailed {
                    handle: sa.handle,
                    name: child.name.clone(),
                    reason,
                });
                return true;
            }
        };
        if let Some(c) = sa.children.iter_mut().find(|c| c.inbound_spi == old) {
            c.rekeyed = true;
            c.rekey_at = None;
        }
        if collision.is_some() {
            self.stats.child_rekey_collisions += 1;
        }
        match collision {
            // Simultaneous rekey: "the redundant SA that was created with the lowest of the
            // four nonces SHOULD be deleted by the node that created it"; the node that
            // initiated the surviving exchange deletes the old SA.
            Some((_, their_lowest)) if ours_is_redundant(&ni, &nr, &their_lowest) => {
                sa.queue
                    .push_back(Request::DeleteChild(new_inbound, DeleteReason::Rekeyed));
            }
            _ => sa
                .queue
                .push_back(Request::DeleteChild(old, DeleteReason::Rekeyed)),
        }
        true
    }

    /// The answer to our request for one more CHILD_SA, `proposal`, made with our nonce
    /// `ni` and private value `dh`.
    pub(in crate::engine) fn create_child_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        proposal: ChildProposal,
        ni: &[u8],
        dh: Option<&DhPrivate>,
        payloads: &[Payload],
    ) -> bool {
        let (child, new_inbound) = (proposal.child, proposal.inbound_spi);
        let Some(cfg) = sa.cfg.children.get(child).cloned() else {
            return true;
        };
        // The mode we asked for, if the peer agreed to it.
        let mode = agreed_mode(cfg.mode, payloads);
        let offered = OfferedChild {
            cfg_index: child,
            mode,
            group: dh.map(DhPrivate::group),
            local_ts: proposal.local_ts,
            remote_ts: proposal.remote_ts,
        };
        match self.child_answer(now, sa, payloads, &offered, new_inbound, ni, dh) {
            ChildAnswer::Installed { .. } => {}
            ChildAnswer::RetryWith(g) => {
                sa.queue.push_front(Request::CreateChild {
                    child,
                    group: Some(g),
                });
            }
            ChildAnswer::Failed(reason) => {
                tracing::info!(connection = %sa.connection, child = %cfg.name, ?reason, "CHILD_SA not created");
                self.events.push_back(Event::ChildSaFailed {
                    handle: sa.handle,
                    name: cfg.name.clone(),
                    reason,
                });
            }
        }
        true
    }

    /// A CREATE_CHILD_SA request from the peer.
    pub(in crate::engine) fn create_child_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        rx: &Received<'_>,
        payloads: &[Payload],
    ) -> bool {
        let Some(sa_p) = sa_of(payloads) else {
            self.respond(sa, rx, vec![notify(NotifyType::INVALID_SYNTAX)]);
            return true;
        };
        if sa_p
            .proposals
            .first()
            .is_some_and(|p| p.protocol == ProtocolId::IKE)
        {
            return self.rekey_ike_request(now, sa, rx, payloads);
        }
        self.child_request(now, sa, rx, payloads);
        true
    }

    fn child_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        rx: &Received<'_>,
        payloads: &[Payload],
    ) {
        let (Some((sa_p, tsi, tsr)), Some(ni)) = (child_sa_payloads(payloads), nonce_of(payloads))
        else {
            self.respond(sa, rx, vec![notify(NotifyType::INVALID_SYNTAX)]);
            return;
        };
        if !sa.is_established() || sa.queue.contains(&Request::DeleteIke) {
            self.respond(sa, rx, vec![notify(NotifyType::TEMPORARY_FAILURE)]);
            return;
        }
        // REKEY_SA names the peer's inbound SPI, our outbound one.
        let rekey = payloads.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == NotifyType::REKEY_SA => Some(
                <[u8; 4]>::try_from(&n.spi[..])
                    .map(u32::from_be_bytes)
                    .unwrap_or(0),
            ),
            _ => None,
        });
        let old = match rekey {
            Some(spi) => match sa.children.iter().find(|c| c.outbound_spi == spi) {
                Some(c)
                    if c.rekeyed
                        && !matches!(
                            sa.pending.as_ref().map(|p| &p.exchange),
                            Some(Exchange::RekeyChild(r)) if r.old == c.inbound_spi
                        ) =>
                {
                    // Already replaced by our own rekey.
                    self.respond(sa, rx, vec![notify(NotifyType::TEMPORARY_FAILURE)]);
                    return;
                }
                Some(c) => Some(c.clone()),
                None => {
                    let mut n = Notify::new(NotifyType::CHILD_SA_NOT_FOUND, Vec::new());
                    n.protocol = ProtocolId::ESP;
                    n.spi = spi.to_be_bytes().to_vec();
                    self.respond(sa, rx, vec![Payload::Notify(n)]);
                    return;
                }
            },
            None => None,
        };
        let c = sa.cfg.clone();
        // The configuration: the old CHILD_SA's, or the first whose selectors fit.
        let candidates: Vec<usize> = match &old {
            Some(o) => vec![o.cfg_index],
            None => (0..c.children.len()).collect(),
        };
        let chosen = candidates
            .into_iter()
            .filter_map(|i| c.children.get(i).map(|ch| (i, ch)));
        let Some((i, ntsi, ntsr)) = narrow_to_first_child(sa, chosen, tsi, tsr) else {
            self.stats.ts_unacceptable_sent += 1;
            self.respond(sa, rx, vec![notify(NotifyType::TS_UNACCEPTABLE)]);
            return;
        };
        let ch = &c.children[i];
        let ke = ke_of(payloads);
        let Some((number, outbound, alg)) =
            select_esp(&ch.esp_proposals, &sa_p.proposals, ke.is_some())
        else {
            self.stats.no_proposal_chosen_sent += 1;
            self.respond(sa, rx, vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]);
            return;
        };
        if ke.is_none()
            && !ch.esp_proposals.is_empty()
            && ch.esp_proposals.iter().all(|p| !p.dh.is_empty())
        {
            // We insist on PFS.
            self.stats.no_proposal_chosen_sent += 1;
            self.respond(sa, rx, vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]);
            return;
        }
        let mut nr_dh = None;
        if let Some(ke) = ke {
            let Some(group) = alg.dh else {
                self.stats.no_proposal_chosen_sent += 1;
                self.respond(sa, rx, vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]);
                return;
            };
            if ke.group != group {
                self.stats.invalid_ke_sent += 1;
                self.respond(
                    sa,
                    rx,
                    vec![Payload::Notify(Notify::invalid_ke_payload(group))],
                );
                return;
            }
            let Ok(dh) = DhPrivate::generate(group, &mut *self.rng) else {
                self.respond(sa, rx, vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]);
                return;
            };
            let Ok(shared) = dh.agree(&ke.data) else {
                self.respond(sa, rx, vec![notify(NotifyType::INVALID_SYNTAX)]);
                return;
            };
            nr_dh = Some((dh, shared));
        }
        let mode = agreed_mode(old.as_ref().map_or(ch.mode, |o| o.mode), payloads);
        let inbound = self.alloc_child_spi();
        let nr = self.random(NONCE_LEN);
        let mut out = vec![
            Payload::SecurityAssociation(SecurityAssociation {
                proposals: vec![esp_answer(number, &alg, inbound)],
            }),
            Payload::Nonce(Nonce { data: nr.clone() }),
        ];
        if let Some((dh, _)) = &nr_dh {
            out.push(Payload::KeyExchange(KeyExchange {
                group: dh.group(),
                data: dh.public().to_vec(),
            }));
        }
        out.push(Payload::TsInitiator(TrafficSelectors {
            selectors: ntsi.clone(),
        }));
        out.push(Payload::TsResponder(TrafficSelectors {
            selectors: ntsr.clone(),
        }));
        out.extend(mode_notify(mode));
        self.respond(sa, rx, out);
        let plan = ChildPlan {
            child: i,
            mode,
            alg,
            inbound_spi: inbound,
            outbound_spi: outbound,
            local_ts: ntsr,
            remote_ts: ntsi,
        };
        let keying = ChildKeying {
            exchange_initiator: false,
            ni: &ni.data,
            nr: &nr,
            pfs: nr_dh.as_ref().map(|(_, s)| s),
        };
        self.install_child(now, sa, plan, keying);
        if let Some(o) = &old {
            // The old CHILD_SA stays until the peer deletes it.
            if let Some(c) = sa
                .children
                .iter_mut()
                .find(|c| c.inbound_spi == o.inbound_spi)
            {
                c.rekeyed = true;
                c.rekey_at = None;
            }
            // Are we rekeying the same CHILD_SA right now?
            if let Some(Pending {
                exchange: Exchange::RekeyChild(ours),
                ..
            }) = &mut sa.pending
                && ours.old == o.inbound_spi
            {
                ours.collision = Some((inbound, lower(&ni.data, &nr).to_vec()));
            }
        }
    }

    /// Our IKE SA rekey request and its payloads.
    pub(in crate::engine) fn start_rekey_ike(
        &mut self,
        sa: &mut IkeSa,
    ) -> Option<(Exchange, Vec<Payload>)> {
        let alg = sa.alg?;
        let new_spi_i = self.alloc_ike_spi();
        let ni = self.random(NONCE_LEN);
        let dh = DhPrivate::generate(alg.dh, &mut *self.rng).ok()?;
        let payloads = vec![
            Payload::SecurityAssociation(SecurityAssociation {
                proposals: offer(&sa.cfg.ike_proposals, &new_spi_i.to_be_bytes(), true),
            }),
            Payload::Nonce(Nonce { data: ni.clone() }),
            Payload::KeyExchange(KeyExchange {
                group: dh.group(),
                data: dh.public().to_vec(),
            }),
        ];
        Some((Exchange::RekeyIke { new_spi_i, ni, dh }, payloads))
    }

    /// The answer to our IKE SA rekey.
    /// The answer to our IKE SA rekey, made with the SPIi `new_spi_i`, our nonce `ni` and
    /// private value `dh`.
    pub(in crate::engine) fn rekey_ike_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        new_spi_i: u64,
        ni: &[u8],
        dh: &DhPrivate,
        payloads: &[Payload],
    ) -> bool {
        let retry_later = |engine: &mut Core, sa: &mut IkeSa| {
            let at = now.checked_add(engine.retry_delay());
            sa.timers.set_or_stop(Timer::RekeyIke, at);
        };
        let (Some(sa_p), Some(nr), Some(ke)) =
            (sa_of(payloads), nonce_of(payloads), ke_of(payloads))
        else {
            retry_later(self, sa);
            return true;
        };
        let Some(alg) = check_ike_answer(&sa.cfg.ike_proposals, &sa_p.proposals) else {
            retry_later(self, sa);
            return true;
        };
        let Some(new_spi_r) = sa_p.proposals[0]
            .spi
            .as_slice()
            .try_into()
            .ok()
            .map(u64::from_be_bytes)
            .filter(|s| *s != 0)
        else {
            retry_later(self, sa);
            return true;
        };
        if ke.group != dh.group() || alg.dh != dh.group() {
            retry_later(self, sa);
            return true;
        }
        let Ok(shared) = dh.agree(&ke.data) else {
            retry_later(self, sa);
            return true;
        };
        let ok = self.replace_ike_keys(
            now, sa, alg, &shared, ni, &nr.data, new_spi_i, new_spi_r, true,
        );
        if ok {
            // Delete the predecessor, which now holds the old SPIs.
            if let Some(h) = self.by_spi.get(&sa.local_spi_before_rekey).copied() {
                self.deferred.push_back(Deferred::DeleteIke(h));
            }
        }
        true
    }

    fn rekey_ike_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        rx: &Received<'_>,
        payloads: &[Payload],
    ) -> bool {
        let (Some(sa_p), Some(ni), Some(ke)) =
            (sa_of(payloads), nonce_of(payloads), ke_of(payloads))
        else {
            self.respond(sa, rx, vec![notify(NotifyType::INVALID_SYNTAX)]);
            return true;
        };
        if sa.pending.is_some() || !sa.is_established() {
            // Window 1: no rekey while our own request is out (§ 2.25).
            self.respond(sa, rx, vec![notify(NotifyType::TEMPORARY_FAILURE)]);
            return true;
        }
        let Some((number, alg)) =
            select_ike(&sa.cfg.ike_proposals, &sa_p.proposals, Some(ke.group))
        else {
            self.stats.no_proposal_chosen_sent += 1;
            self.respond(sa, rx, vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]);
            return true;
        };
        if ke.group != alg.dh {
            self.stats.invalid_ke_sent += 1;
            self.respond(
                sa,
                rx,
                vec![Payload::Notify(Notify::invalid_ke_payload(alg.dh))],
            );
            return true;
        }
        let Some(new_spi_i) = sa_p
            .proposals
            .iter()
            .find(|p| p.number == number)
            .and_then(|p| <[u8; 8]>::try_from(&p.spi[..]).ok())
            .map(u64::from_be_bytes)
            .filter(|s| *s != 0)
        else {
            self.respond(sa, rx, vec![notify(NotifyType::INVALID_SYNTAX)]);
            return true;
        };
        let Ok(dh) = DhPrivate::generate(alg.dh, &mut *self.rng) else {
            self.respond(sa, rx, vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]);
            return true;
        };
        let Ok(shared) = dh.agree(&ke.data) else {
            self.respond(sa, rx, vec![notify(NotifyType::INVALID_SYNTAX)]);
            return true;
        };
        let new_spi_r = self.alloc_ike_spi();
        let nr = self.random(NONCE_LEN);
        self.respond(
            sa,
            rx,
            vec![
                Payload::SecurityAssociation(SecurityAssociation {
                    proposals: vec![ike_answer(number, &alg, new_spi_r.to_be_bytes().to_vec())],
                }),
                Payload::Nonce(Nonce { data: nr.clone() }),
                Payload::KeyExchange(KeyExchange {
                    group: alg.dh,
                    data: dh.public().to_vec(),
                }),
            ],
        );
        self.replace_ike_keys(
            now, sa, alg, &shared, &ni.data, &nr, new_spi_i, new_spi_r, false,
        );
        true
    }

    /// Moves `sa` to its rekeyed keys and SPIs; the predecessor is split off under the old
    /// SPIs. `initiator`: whether we initiated the rekey, which makes us the new IKE SA's
    /// original initiator.
    #[allow(clippy::too_many_arguments)]
    fn replace_ike_keys(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        alg: IkeAlgorithms,
        shared: &Secret,
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
        initiator: bool,
    ) -> bool {
        let Some(old) = sa.keys.as_ref() else {
            return false;
        };
        let seed = skeyseed_rekey(old.prf, &old.sk_d, shared, ni, nr);
        let suite = IkeSuite {
            prf: alg.prf,
            encr: alg.encr,
            integ: alg.integ,
        };
        let Some(keys) = IkeKeys::derive(suite, seed, ni, nr, spi_i, spi_r)
            .ok()
            .and_then(|k| {
                key_state(
                    &alg,
                    k,
                    initiator,
                    (spi_i, spi_r),
                    self.key_log.as_deref_mut().map(|l| l as &mut dyn KeyLog),
                )
            })
        else {
            return false;
        };
        let old_local_spi = sa.local_spi();
        let pred_handle = self.alloc_handle();
        let pred = sa.split_predecessor(pred_handle, now + PREDECESSOR_LIFETIME);
        self.by_spi.insert(old_local_spi, pred_handle);
        self.adopt(pred);
        sa.local_spi_before_rekey = old_local_spi;
        sa.initiator = initiator;
        sa.spi_i = spi_i;
        sa.spi_r = spi_r;
        sa.alg = Some(alg);
        sa.keys = Some(keys);
        sa.next_message_id = 0;
        sa.peer_next_message_id = 0;
        sa.iv_counter = 0;
        self.arm_ike_lifetime(now, sa);
        self.by_spi.insert(sa.local_spi(), sa.handle);
        tracing::info!(
            connection = %sa.connection,
            spi_i = format_args!("{spi_i:016x}"),
            spi_r = format_args!("{spi_r:016x}"),
            "IKE SA rekeyed"
        );
        self.events.push_back(Event::IkeSaRekeyed {
            handle: sa.handle,
            spi_i,
            spi_r,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_of_four_nonces_loses() {
        // Our exchange holds the lowest nonce (0x01..): ours goes.
        assert!(ours_is_redundant(&[0x01; 32], &[0xf0; 32], &[0x02; 32]));
        assert!(ours_is_redundant(&[0xf0; 32], &[0x01; 32], &[0x02; 32]));
        // The peer's exchange holds it: theirs goes, ours stays.
        assert!(!ours_is_redundant(&[0x03; 32], &[0xf0; 32], &[0x02; 32]));
        // Nonces are compared as numbers: a shorter one is padded with leading zeros.
        assert!(ours_is_redundant(&[0xff; 16], &[0xff; 32], &[0x01; 32]));
        assert!(!ours_is_redundant(&[0x01; 32], &[0xff; 32], &[0xff; 16]));
    }
}
