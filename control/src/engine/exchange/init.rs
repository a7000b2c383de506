//! IKE_SA_INIT in both roles ([RFC 7296 § 1.2](https://www.rfc-editor.org/rfc/rfc7296#section-1.2)):
//! proposal selection, INVALID_KE_PAYLOAD, cookies ([§ 2.6](https://www.rfc-editor.org/rfc/rfc7296#section-2.6)),
//! NAT detection ([§ 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23)).

use super::*;

impl Core {
    // ----- initiator: IKE_SA_INIT -----

    pub(in crate::engine) fn start_initiator(
        &mut self,
        now: Instant,
        conn: usize,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> IkeSaHandle {
        let handle = self.alloc_handle();
        let spi_i = self.alloc_ike_spi();
        let ni = self.random(NONCE_LEN);
        let c = self.conns[conn].clone();
        let group = c
            .ike_proposals
            .iter()
            .flat_map(|p| p.dh.iter())
            .copied()
            .find(|g| dh::is_supported(*g));
        let connection = c.name.clone();
        let mut sa = IkeSa {
            spi_i,
            ..IkeSa::half_open(handle, conn, c.clone(), true, local, remote, now)
        };
        let dh = group.and_then(|g| DhPrivate::generate(g, &mut *self.rng).ok());
        let Some(dh) = dh else {
            self.events.push_back(Event::IkeSaFailed {
                handle,
                connection,
                reason: FailureReason::Unsupported("no supported DH group in the IKE proposals"),
            });
            return handle;
        };
        sa.state = State::InitSent;
        let attempt = InitAttempt {
            ni,
            dh,
            cookie: None,
            attempts: 0,
        };
        if self.send_init_request(now, &mut sa, attempt) {
            self.by_spi.insert(spi_i, handle);
            self.adopt(sa);
        }
        handle
    }

    /// Sends (again) our IKE_SA_INIT request for `attempt`; returns whether the SA lives
    /// on (it does not when the request cannot be encoded).
    pub(in crate::engine) fn send_init_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        attempt: InitAttempt,
    ) -> bool {
        let InitAttempt { ni, dh, cookie, .. } = &attempt;
        let c = &sa.cfg.clone();
        let mut payloads = Vec::new();
        if let Some(cookie) = cookie {
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::COOKIE,
                cookie.clone(),
            )));
        }
        payloads.push(Payload::SecurityAssociation(SecurityAssociation {
            proposals: offer(&c.ike_proposals, &[], true),
        }));
        payloads.push(Payload::KeyExchange(KeyExchange {
            group: dh.group(),
            data: dh.public().to_vec(),
        }));
        payloads.push(Payload::Nonce(Nonce { data: ni.clone() }));
        payloads.extend(nat_detection_payloads(sa.spi_i, 0, sa.path.pair));
        payloads.push(Payload::Notify(Notify::signature_hash_algorithms(
            crate::auth::SUPPORTED_HASHES,
        )));
        if c.fragmentation {
            payloads.push(notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED));
        }
        let msg = Message {
            spi_i: sa.spi_i,
            spi_r: 0,
            exchange_type: ExchangeType::IKE_SA_INIT,
            flags: Flags::new(true, false),
            message_id: 0,
            minor_version: 0,
            payloads,
        };
        let Some(bytes) = self.send_plain(sa.path.local(), sa.path.remote(), &msg) else {
            self.fail(sa, FailureReason::Protocol("cannot encode IKE_SA_INIT"));
            return false;
        };
        sa.pending = Some(Pending {
            message_id: 0,
            fragments: Vec::new(),
            bytes,
            sends: 1,
            via: sa.path.pair,
            also: Vec::new(),
            exchange: Exchange::IkeSaInit(attempt),
        });
        sa.timers
            .set(Timer::Retransmit, now + self.config.retransmit.wait(0));
        true
    }

    pub(in crate::engine) fn fail(&mut self, sa: &IkeSa, reason: FailureReason) {
        if sa.silent {
            return;
        }
        tracing::info!(connection = %sa.connection, ?reason, "IKE SA failed");
        self.events.push_back(Event::IkeSaFailed {
            handle: sa.handle,
            connection: sa.connection.clone(),
            reason,
        });
    }

    /// The answer to our IKE_SA_INIT. Returns whether the SA lives on.
    pub(in crate::engine) fn init_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        others: &Others<'_>,
        local: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        let Ok(msg) = Message::decode(bytes) else {
            self.stats.drop_malformed += 1;
            return true;
        };
        let outstanding = matches!(
            sa.pending.as_ref().map(|p| &p.exchange),
            Some(Exchange::IkeSaInit(_))
        );
        if !outstanding || msg.message_id != 0 {
            self.stats.drop_unexpected_response += 1;
            return true;
        }
        let Some(Pending {
            exchange: Exchange::IkeSaInit(mut attempt),
            bytes: request_sent,
            ..
        }) = sa.pending.take()
        else {
            return true;
        };
        if let Some(n) = msg.notify(NotifyType::COOKIE) {
            if attempt.attempts >= MAX_INIT_ATTEMPTS
                || !crate::wire::payload::notify::COOKIE_LEN.contains(&n.data.len())
            {
                self.fail(sa, FailureReason::Protocol("COOKIE loop"));
                return false;
            }
            attempt.attempts += 1;
            attempt.cookie = Some(n.data.clone());
            return self.send_init_request(now, sa, attempt);
        }
        if let Some(n) = msg.notify(NotifyType::INVALID_KE_PAYLOAD) {
            let ours = &sa.cfg.ike_proposals;
            let group = n.as_invalid_ke_payload();
            let acceptable =
                group.filter(|g| dh::is_supported(*g) && ours.iter().any(|p| p.dh.contains(g)));
            let Some(g) = acceptable.filter(|_| attempt.attempts < MAX_INIT_ATTEMPTS) else {
                self.fail(sa, FailureReason::NoProposalChosen);
                return false;
            };
            attempt.attempts += 1;
            let Ok(new) = DhPrivate::generate(g, &mut *self.rng) else {
                self.fail(sa, FailureReason::Unsupported("DH group"));
                return false;
            };
            attempt.dh = new;
            return self.send_init_request(now, sa, attempt);
        }
        if let Some(ty) = first_error(&msg.payloads) {
            self.fail(sa, failure_of(ty));
            return false;
        }
        let sa_p = sa_of(&msg.payloads);
        let ke = ke_of(&msg.payloads);
        let nr = nonce_of(&msg.payloads);
        let (Some(sa_p), Some(ke), Some(nr)) = (sa_p, ke, nr) else {
            self.fail(
                sa,
                FailureReason::Protocol("IKE_SA_INIT response lacks SA, KE or Nonce"),
            );
            return false;
        };
        if msg.spi_r == 0 {
            self.fail(
                sa,
                FailureReason::Protocol("IKE_SA_INIT response without SPIr"),
            );
            return false;
        }
        let c = &sa.cfg.clone();
        let Some(alg) = check_ike_answer(&c.ike_proposals, &sa_p.proposals) else {
            self.fail(sa, FailureReason::NoProposalChosen);
            return false;
        };
        let dh = &attempt.dh;
        if alg.dh != dh.group() || ke.group != dh.group() {
            self.fail(
                sa,
                FailureReason::Protocol("KE group differs from the chosen one"),
            );
            return false;
        }
        let Ok(shared) = dh.agree(&ke.data) else {
            self.fail(sa, FailureReason::Protocol("invalid KE data"));
            return false;
        };
        let mobike = c.mobike;
        sa.peer_hashes = peer_hash_algorithms(&msg.payloads);
        sa.peer_certreqs = certificate_requests(&msg.payloads);
        sa.fragmentation =
            c.fragmentation && has_notify(&msg.payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED);
        sa.spi_r = msg.spi_r;
        if sa.path.local().ip().is_unspecified() {
            sa.path.pair.local = local;
        }
        self.detect_nat(sa, &msg, sa.spi_r);
        let Some(keys) = derive_keys(
            &alg,
            &shared,
            &attempt.ni,
            &nr.data,
            (sa.spi_i, sa.spi_r),
            true,
            self.key_log.as_deref_mut().map(|l| l as &mut dyn KeyLog),
        ) else {
            self.fail(sa, FailureReason::Protocol("key derivation"));
            return false;
        };
        sa.alg = Some(alg);
        sa.keys = Some(keys);
        sa.next_message_id = 1;
        if (sa.path.udp_encap() || mobike) && sa.path.local().port() == IKE_PORT {
            sa.path.pair.local.set_port(NATT_PORT);
            sa.path.pair.remote.set_port(NATT_PORT);
        }
        sa.state = State::AuthSent(InitTranscript {
            request: request_sent,
            response: bytes.to_vec(),
            ni: attempt.ni,
            nr: nr.data.clone(),
        });
        self.send_auth_request(now, sa, others)
    }

    /// Compares the peer's NAT_DETECTION_* hashes with ours
    /// ([RFC 7296 § 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23)).
    pub(in crate::engine) fn detect_nat(&mut self, sa: &mut IkeSa, msg: &Message, spi_r: u64) {
        if let Some((local, remote)) = nat_found(sa.spi_i, spi_r, sa.path.pair, &msg.payloads) {
            sa.path.nat_local = local;
            sa.path.nat_remote = remote;
        }
    }

    // ----- responder: IKE_SA_INIT -----

    pub(in crate::engine) fn init_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        let Ok(msg) = Message::decode(bytes) else {
            self.stats.drop_malformed += 1;
            return;
        };
        if msg.message_id != 0 {
            self.stats.drop_invalid_init += 1;
            return;
        }
        let sa_p = sa_of(&msg.payloads);
        let ke = ke_of(&msg.payloads);
        let ni = nonce_of(&msg.payloads);
        let (Some(sa_p), Some(ke), Some(ni)) = (sa_p, ke, ni) else {
            self.stats.drop_invalid_init += 1;
            return;
        };
        let stateless = |engine: &mut Core, n: Notify| {
            let m = Message {
                spi_i: msg.spi_i,
                spi_r: 0,
                exchange_type: ExchangeType::IKE_SA_INIT,
                flags: Flags::new(false, true),
                message_id: 0,
                minor_version: 0,
                payloads: vec![Payload::Notify(n)],
            };
            engine.send_plain(local, remote, &m);
        };
        let conn = self.conns.iter().position(|c| {
            addr_matches(&c.local_addrs, local.ip()) && addr_matches(&c.remote_addrs, remote.ip())
        });
        let Some(conn) = conn else {
            self.stats.no_proposal_chosen_sent += 1;
            stateless(
                self,
                Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
            );
            return;
        };
        // Cookies (RFC 7296 § 2.6): above the threshold, demand proof of the return path
        // before keeping any state.
        if self.half_open.len() >= self.config.cookie_threshold {
            self.rotate_cookie_secret(now);
            let cur = cookie(
                self.cookie.version,
                &self.cookie.current,
                &ni.data,
                remote.ip(),
                msg.spi_i,
            );
            let prev = cookie(
                self.cookie.version.wrapping_sub(1),
                &self.cookie.previous,
                &ni.data,
                remote.ip(),
                msg.spi_i,
            );
            let first_is_cookie = matches!(msg.payloads.first(), Some(Payload::Notify(n)) if n.ty == NotifyType::COOKIE);
            match msg.notify(NotifyType::COOKIE) {
                Some(n) if first_is_cookie && (n.data == cur || n.data == prev) => {}
                other => {
                    if other.is_some() {
                        self.stats.cookies_invalid += 1;
                    }
                    self.stats.cookies_sent += 1;
                    stateless(self, Notify::new(NotifyType::COOKIE, cur));
                    return;
                }
            }
        }
        let c = self.conns[conn].clone();
        let Some((number, alg)) = select_ike(&c.ike_proposals, &sa_p.proposals, Some(ke.group))
        else {
            self.stats.no_proposal_chosen_sent += 1;
            stateless(
                self,
                Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
            );
            return;
        };
        if ke.group != alg.dh {
            self.stats.invalid_ke_sent += 1;
            stateless(self, Notify::invalid_ke_payload(alg.dh));
            return;
        }
        let Ok(dh) = DhPrivate::generate(alg.dh, &mut *self.rng) else {
            self.stats.drop_invalid_init += 1;
            return;
        };
        let Ok(shared) = dh.agree(&ke.data) else {
            self.stats.drop_invalid_init += 1;
            stateless(self, Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
            return;
        };
        let handle = self.alloc_handle();
        let spi_r = self.alloc_ike_spi();
        let nr = self.random(NONCE_LEN);
        let mut sa = IkeSa {
            spi_i: msg.spi_i,
            spi_r,
            alg: Some(alg),
            peer_next_message_id: 1,
            ..IkeSa::half_open(handle, conn, c.clone(), false, local, remote, now)
        };
        sa.timers.set_or_stop(
            Timer::Expire,
            now.checked_add(self.config.half_open_timeout),
        );
        self.detect_nat(&mut sa, &msg, 0);
        sa.peer_hashes = peer_hash_algorithms(&msg.payloads);
        sa.fragmentation =
            c.fragmentation && has_notify(&msg.payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED);
        let Some(keys) = derive_keys(
            &alg,
            &shared,
            &ni.data,
            &nr,
            (sa.spi_i, spi_r),
            false,
            self.key_log.as_deref_mut().map(|l| l as &mut dyn KeyLog),
        ) else {
            self.stats.drop_invalid_init += 1;
            return;
        };
        sa.keys = Some(keys);
        // CERTREQ for every trust anchor of the connections this peer may end up in (the
        // final choice waits for IDi).
        let mut authorities: Vec<u8> = Vec::new();
        for c in &self.conns {
            if !(addr_matches(&c.local_addrs, local.ip())
                && addr_matches(&c.remote_addrs, remote.ip())
                && c.send_certreq)
            {
                continue;
            }
            if let RemoteAuth::PubKey(trust) = &c.remote_auth {
                for cert in trust.certificates() {
                    let hash = cert.spki_sha1();
                    if !authorities.chunks(20).any(|h| h == hash) {
                        authorities.extend_from_slice(&hash);
                    }
                }
            }
        }
        let mut extra = Vec::new();
        if !authorities.is_empty() {
            extra.push(Payload::CertificateRequest(CertificateRequest {
                encoding: crate::wire::CertEncoding::X509_SIGNATURE,
                authorities,
            }));
        }
        extra.push(Payload::Notify(Notify::signature_hash_algorithms(
            crate::auth::SUPPORTED_HASHES,
        )));
        if sa.fragmentation {
            extra.push(notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED));
        }
        let response = Message {
            spi_i: sa.spi_i,
            spi_r,
            exchange_type: ExchangeType::IKE_SA_INIT,
            flags: Flags::new(false, true),
            message_id: 0,
            minor_version: 0,
            payloads: vec![
                Payload::SecurityAssociation(SecurityAssociation {
                    proposals: vec![ike_answer(number, &alg, Vec::new())],
                }),
                Payload::KeyExchange(KeyExchange {
                    group: alg.dh,
                    data: dh.public().to_vec(),
                }),
                Payload::Nonce(Nonce { data: nr.clone() }),
            ]
            .into_iter()
            .chain(nat_detection_payloads(
                sa.spi_i,
                spi_r,
                AddressPair { local, remote },
            ))
            .chain(extra)
            .collect(),
        };
        let Some(out) = self.send_plain(local, remote, &response) else {
            return;
        };
        sa.state = State::HalfOpen(InitTranscript {
            request: bytes.to_vec(),
            response: out,
            ni: ni.data.clone(),
            nr,
        });
        let _span = tracing::debug_span!(
            "ike_sa",
            spi_i = format_args!("{:016x}", sa.spi_i),
            spi_r = format_args!("{spi_r:016x}")
        )
        .entered();
        tracing::debug!(%remote, nat_local = sa.path.nat_local, nat_remote = sa.path.nat_remote, "IKE_SA_INIT answered");
        self.by_spi.insert(spi_r, handle);
        self.half_open.insert((remote, sa.spi_i), handle);
        self.adopt(sa);
    }

    pub(in crate::engine) fn rotate_cookie_secret(&mut self, now: Instant) {
        match self.cookie.rotate_at {
            None => self.cookie.rotate_at = now.checked_add(self.config.cookie_secret_lifetime),
            Some(at) if now >= at => {
                self.cookie.previous = self.cookie.current;
                let mut fresh = [0u8; 32];
                self.rng.fill(&mut fresh);
                self.cookie.current = fresh;
                self.cookie.version = self.cookie.version.wrapping_add(1);
                self.cookie.rotate_at = now.checked_add(self.config.cookie_secret_lifetime);
            }
            Some(_) => {}
        }
    }
}
