//! IKE_AUTH in both roles ([RFC 7296 § 1.2](https://www.rfc-editor.org/rfc/rfc7296#section-1.2)):
//! authentication by pre-shared key or by signature with certificates
//! ([§ 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15),
//! [RFC 7427](https://www.rfc-editor.org/rfc/rfc7427)), CERT and CERTREQ, the responder's
//! choice of connection, the first CHILD_SA, traffic selector narrowing, virtual IPs.

use super::*;
use crate::auth::{AuthError, Identity, authenticate_peer, psk_authentication, verify_psk_auth};
use crate::engine::config::{ConnectionConfig, SendCert};

/// A peer whose AUTH payload verified.
pub(in crate::engine) struct VerifiedPeer {
    /// The identity it proved.
    identity: Identity,
    /// The IP addresses its certificate binds (iPAddress subjectAltNames; none with a PSK).
    certificate_addresses: Vec<IpAddr>,
}

impl Core {
    // ----- authentication, both roles -----

    /// Our AUTH payload over `octets` under connection `c`, and the CERT payloads to send
    /// with it. `us` is our identity, `peer` the peer's (or the configured pattern before it
    /// is known).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn our_auth(
        &self,
        sa: &IkeSa,
        c: &ConnectionConfig,
        us: &Identity,
        peer: &Identity,
        octets: &[u8],
        prf: crate::crypto::prf::Prf,
    ) -> Result<(Vec<Payload>, Authentication), FailureReason> {
        match &c.local_auth {
            LocalAuth::Psk => {
                let psk = self.config.secrets.lookup(Some(us), peer).ok_or(
                    FailureReason::Unsupported("no pre-shared key for these identities"),
                )?;
                Ok((Vec::new(), psk_authentication(prf, psk, octets)))
            }
            LocalAuth::PubKey(cred) => {
                let auth = cred.sign(sa.peer_hashes.as_deref(), octets).map_err(|e| {
                    tracing::warn!(error = %e, "cannot sign our AUTH payload");
                    FailureReason::Unsupported("no signature scheme in common with the peer")
                })?;
                let send = match c.send_cert {
                    SendCert::Always => true,
                    SendCert::IfAsked => !sa.peer_certreqs.is_empty(),
                    SendCert::Never => false,
                };
                let certs = if send {
                    cred.cert_payloads(&sa.peer_certreqs)
                        .into_iter()
                        .map(Payload::Certificate)
                        .collect()
                } else {
                    Vec::new()
                };
                Ok((certs, auth))
            }
        }
    }

    /// Checks the peer's identity and AUTH payload against connection `c`: the identity must
    /// match the configured remote identity; with a PSK the MAC must verify with the key for
    /// both identities, with signatures the certificate chain must lead to a trust anchor at
    /// the current wall-clock time, bind the identity and verify the signature.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn verify_peer(
        &self,
        now: Instant,
        c: &ConnectionConfig,
        us: &Identity,
        peer: &Identification,
        certs: &[crate::wire::payload::Certificate],
        auth: &Authentication,
        octets: &[u8],
        prf: crate::crypto::prf::Prf,
    ) -> Result<VerifiedPeer, AuthError> {
        match &c.remote_auth {
            RemoteAuth::Psk => {
                let identity = Identity::from_wire(peer)?;
                if c.remote_id.matches(&identity).is_none() {
                    return Err(AuthError::IdMismatch {
                        expected: c.remote_id.to_string(),
                        got: identity.to_string(),
                    });
                }
                let psk = self
                    .config
                    .secrets
                    .lookup(Some(us), &identity)
                    .ok_or_else(|| AuthError::NoSharedKey {
                        local: us.to_string(),
                        remote: identity.to_string(),
                    })?;
                verify_psk_auth(prf, psk, octets, auth)?;
                Ok(VerifiedPeer {
                    identity,
                    certificate_addresses: Vec::new(),
                })
            }
            RemoteAuth::PubKey(trust) => {
                let wall = self.wall_time(now).ok_or_else(|| {
                    AuthError::UntrustedChain("the wall-clock time is not known".into())
                })?;
                authenticate_peer(trust, &c.remote_id, peer, certs, auth, octets, wall).map(|p| {
                    VerifiedPeer {
                        certificate_addresses: p
                            .certificate
                            .subject_alt_names()
                            .iter()
                            .filter_map(|s| match s {
                                crate::auth::SubjectAltName::Ip(a) => Some(*a),
                                _ => None,
                            })
                            .collect(),
                        identity: p.identity,
                    }
                })
            }
        }
    }

    // ----- initiator: IKE_AUTH -----

    pub(in crate::engine) fn send_auth_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        others: &Others<'_>,
    ) -> bool {
        let c = sa.cfg.clone();
        let Some(init) = sa.transcript().cloned() else {
            return false;
        };
        let Some(keys) = sa.keys.as_ref() else {
            return false;
        };
        let us = local_identity(&c, sa.path.local().ip());
        let Some(id) = us.to_wire() else {
            self.fail(
                sa,
                FailureReason::Unsupported("our identity cannot be sent"),
            );
            return false;
        };
        let octets = signed_octets(
            &init.request,
            &init.nr,
            keys.prf,
            &keys.sk_pi,
            &id_payload_body(&id),
        );
        let (certs, auth) = match self.our_auth(sa, &c, &us, &c.remote_id, &octets, keys.prf) {
            Ok(a) => a,
            Err(reason) => {
                self.fail(sa, reason);
                return false;
            }
        };
        let mut payloads = vec![Payload::IdInitiator(id)];
        payloads.extend(certs);
        if let RemoteAuth::PubKey(trust) = &c.remote_auth
            && c.send_certreq
            && let Some(req) = trust.certificate_request()
        {
            payloads.push(Payload::CertificateRequest(req));
        }
        // INITIAL_CONTACT asserts this is our only IKE SA with the peer (RFC 7296 § 3.10.1):
        // only when no other IKE SA of this connection to this peer exists, or the peer would
        // delete the others.
        if !has_other_ike_sa(others, sa) {
            payloads.push(notify(NotifyType::INITIAL_CONTACT));
        }
        if !c.remote_id.has_wildcard()
            && let Some(r) = c.remote_id.to_wire()
        {
            payloads.push(Payload::IdResponder(r));
        }
        payloads.push(Payload::Authentication(auth));
        if !c.vips.is_empty() {
            let attributes = c
                .vips
                .iter()
                .map(|v| match v {
                    IpAddr::V4(a) if a.is_unspecified() => {
                        ConfigAttribute::request(CfgAttrType::INTERNAL_IP4_ADDRESS)
                    }
                    IpAddr::V4(a) => ConfigAttribute::ipv4(CfgAttrType::INTERNAL_IP4_ADDRESS, *a),
                    IpAddr::V6(a) if a.is_unspecified() => {
                        ConfigAttribute::request(CfgAttrType::INTERNAL_IP6_ADDRESS)
                    }
                    IpAddr::V6(a) => ConfigAttribute::ipv6_with_prefix(*a, 128),
                })
                .collect();
            payloads.push(Payload::Configuration(Configuration {
                ty: CfgType::REQUEST,
                attributes,
            }));
        }
        let mut proposal = None;
        if let Some(child) = c.children.first() {
            let spi = self.alloc_child_spi();
            payloads.push(Payload::SecurityAssociation(SecurityAssociation {
                proposals: offer(&child.esp_proposals, &spi.to_be_bytes(), false),
            }));
            // With virtual IPs requested, `dynamic` asks for the whole of each requested
            // family and the responder narrows it to the addresses it assigns.
            let local_ts = if c.vips.is_empty() {
                local_ts_of(sa, &child.local_ts)
            } else {
                child
                    .local_ts
                    .iter()
                    .flat_map(|t| match t {
                        TsConfig::Fixed(ts) => vec![ts.clone()],
                        TsConfig::Dynamic { .. } => c.vips.iter().map(|&v| family_ts(v)).collect(),
                    })
                    .collect()
            };
            let remote_ts = remote_ts_of(sa, &child.remote_ts);
            payloads.push(Payload::TsInitiator(TrafficSelectors {
                selectors: local_ts.clone(),
            }));
            payloads.push(Payload::TsResponder(TrafficSelectors {
                selectors: remote_ts.clone(),
            }));
            payloads.extend(mode_notify(child.mode));
            proposal = Some(ChildProposal {
                child: 0,
                inbound_spi: spi,
                local_ts,
                remote_ts,
            });
        }
        if c.mobike {
            payloads.push(notify(NotifyType::MOBIKE_SUPPORTED));
            payloads.extend(self.auth_address_list(sa));
        }
        let exchange = Exchange::IkeAuth { child: proposal };
        if !self.send_request(now, sa, exchange, payloads) {
            self.fail(
                sa,
                FailureReason::Unsupported("the IKE_AUTH request cannot be encoded"),
            );
            return false;
        }
        true
    }

    /// The answer to our IKE_AUTH, which proposed the CHILD_SA `child`.
    pub(in crate::engine) fn auth_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        child: Option<ChildProposal>,
        payloads: &[Payload],
    ) -> bool {
        if has_notify(payloads, NotifyType::AUTHENTICATION_FAILED) {
            self.fail(sa, FailureReason::PeerAuthenticationFailed);
            return false;
        }
        let idr = find(payloads, |p| match p {
            Payload::IdResponder(i) => Some(i),
            _ => None,
        });
        let auth = find(payloads, |p| match p {
            Payload::Authentication(a) => Some(a),
            _ => None,
        });
        let (Some(idr), Some(auth)) = (idr, auth) else {
            let reason = first_error(payloads).map_or(
                FailureReason::Protocol("IKE_AUTH response lacks IDr or AUTH"),
                failure_of,
            );
            self.fail(sa, reason);
            return false;
        };
        let c = &sa.cfg.clone();
        let Some(init) = sa.transcript().cloned() else {
            return false;
        };
        let Some(keys) = sa.keys.as_ref() else {
            return false;
        };
        let octets = signed_octets(
            &init.response,
            &init.ni,
            keys.prf,
            &keys.sk_pr,
            &id_payload_body(idr),
        );
        let us = local_identity(c, sa.path.local().ip());
        let verified = self.verify_peer(
            now,
            c,
            &us,
            idr,
            &certificates(payloads),
            auth,
            &octets,
            keys.prf,
        );
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                tracing::info!(connection = %sa.connection, error = %e, "the responder failed authentication");
                self.stats.authentication_failed += 1;
                // Tell the responder, which considers the IKE SA established
                // (RFC 7296 § 2.21.2), then forget the SA.
                let mid = sa.next_message_id;
                sa.next_message_id += 1;
                if let Some(bytes) = self.seal(
                    sa,
                    ExchangeType::INFORMATIONAL,
                    false,
                    mid,
                    vec![notify(NotifyType::AUTHENTICATION_FAILED)],
                ) {
                    self.send_raw(sa.path.local(), sa.path.remote(), &bytes);
                }
                self.fail(sa, FailureReason::AuthenticationFailed);
                return false;
            }
        };
        sa.peer_id = Some(idr.clone());
        sa.peer_certificate_addresses = verified.certificate_addresses;
        sa.peer_mobike = c.mobike && has_notify(payloads, NotifyType::MOBIKE_SUPPORTED);
        if let Some(cp) = find(payloads, |p| match p {
            Payload::Configuration(c) if c.ty == CfgType::REPLY => Some(c),
            _ => None,
        }) {
            // One address per family (RFC 7296 § 3.15.1): the first of each.
            let mut v4 = None;
            let mut v6 = None;
            for a in &cp.attributes {
                match a.ty {
                    CfgAttrType::INTERNAL_IP4_ADDRESS if v4.is_none() => {
                        v4 = a.as_ipv4().map(IpAddr::V4);
                    }
                    CfgAttrType::INTERNAL_IP6_ADDRESS if v6.is_none() && a.value.len() == 17 => {
                        v6 = <[u8; 16]>::try_from(&a.value[..16])
                            .ok()
                            .map(|b| IpAddr::V6(b.into()));
                    }
                    _ => {}
                }
            }
            sa.virtual_ips = v4.into_iter().chain(v6).collect();
        }
        self.established(now, sa, payloads);
        for &address in &sa.virtual_ips {
            self.events.push_back(Event::VirtualIp {
                handle: sa.handle,
                address,
            });
        }
        if let Some(cp) = child {
            self.auth_child_response(now, sa, &init, cp, payloads);
        }
        true
    }

    pub(in crate::engine) fn auth_child_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        init: &InitTranscript,
        cp: ChildProposal,
        payloads: &[Payload],
    ) {
        let c = &sa.cfg.clone();
        let Some(child) = c.children.get(cp.child) else {
            return;
        };
        let name = child.name.clone();
        let Some((sa_p, tsi, tsr)) = child_sa_payloads(payloads) else {
            let reason = first_error(payloads).map_or(
                FailureReason::Protocol("no CHILD_SA in IKE_AUTH response"),
                failure_of,
            );
            self.events.push_back(Event::ChildSaFailed {
                handle: sa.handle,
                name,
                reason,
            });
            return;
        };
        let Some((outbound_spi, alg)) =
            check_esp_answer(&child.esp_proposals, &sa_p.proposals, false)
        else {
            self.events.push_back(Event::ChildSaFailed {
                handle: sa.handle,
                name,
                reason: FailureReason::NoProposalChosen,
            });
            return;
        };
        let local_ok = is_subset(&tsi.selectors, &cp.local_ts)
            || (!sa.virtual_ips.is_empty()
                && !tsi.selectors.is_empty()
                && tsi
                    .selectors
                    .iter()
                    .all(|t| sa.virtual_ips.iter().any(|&v| *t == host_ts(v))));
        if !local_ok || !is_subset(&tsr.selectors, &cp.remote_ts) {
            self.events.push_back(Event::ChildSaFailed {
                handle: sa.handle,
                name,
                reason: FailureReason::TsUnacceptable,
            });
            return;
        }
        let mode = agreed_mode(child.mode, payloads);
        let (ni, nr) = (init.ni.clone(), init.nr.clone());
        self.install_child(
            now,
            sa,
            ChildPlan {
                child: cp.child,
                mode,
                alg,
                inbound_spi: cp.inbound_spi,
                outbound_spi,
                local_ts: tsi.selectors.clone(),
                remote_ts: tsr.selectors.clone(),
            },
            ChildKeying {
                exchange_initiator: true,
                ni: &ni,
                nr: &nr,
                pfs: None,
            },
        );
    }

    /// The IKE SA is established with the peer's IKE_AUTH `payloads`: its address sets
    /// start from the connection's addresses that the host has and, with MOBIKE, the
    /// peer's announced list ([RFC 4555 § 3.4](https://www.rfc-editor.org/rfc/rfc4555#section-3.4)).
    pub(in crate::engine) fn established(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        payloads: &[Payload],
    ) {
        sa.state = State::Established;
        // The pair may have changed since IKE_SA_INIT (the NAT-T port, our address); what
        // IKE_AUTH announced stays.
        let announced = sa.paths.announced.take();
        sa.begin_paths(self.host_addresses.as_deref());
        sa.paths.announced = announced;
        if sa.peer_mobike
            && let Some(announced) = additional_addresses(payloads)
        {
            sa.paths
                .set_peer(sa.path.remote().ip(), &announced, &sa.path);
        }
        self.arm_ike_lifetime(now, sa);
        sa.timers.stop(Timer::Expire);
        self.heard_from(now, sa);
        self.half_open.retain(|_, h| *h != sa.handle);
        self.stats.ike_sas_established += 1;
        tracing::info!(connection = %sa.connection, local = %sa.path.local(), remote = %sa.path.remote(), "IKE SA established");
        self.events.push_back(Event::IkeSaEstablished {
            handle: sa.handle,
            connection: sa.connection.clone(),
            initiator: sa.initiator,
            local: sa.path.local(),
            remote: sa.path.remote(),
            peer_id: sa.peer_id.clone().unwrap_or(Identification {
                ty: crate::wire::IdType::NULL,
                data: Vec::new(),
            }),
        });
    }

    /// Derives the CHILD_SA's keys and tells the data plane. `exchange_initiator`: whether we
    /// initiated the exchange that created it (its keys are "initiator to responder" first).
    pub(in crate::engine) fn install_child(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        plan: ChildPlan,
        keying: ChildKeying<'_>,
    ) {
        let ChildPlan {
            child,
            mode,
            alg,
            inbound_spi,
            outbound_spi,
            local_ts,
            remote_ts,
        } = plan;
        let ChildKeying {
            exchange_initiator,
            ni,
            nr,
            pfs,
        } = keying;
        let c = &sa.cfg.clone();
        let Some(cfg) = c.children.get(child) else {
            return;
        };
        let Some(keys) = sa.keys.as_ref() else { return };
        let Ok(km) = child_keys(keys.prf, &keys.sk_d, pfs, ni, nr, alg.encr, alg.integ) else {
            return;
        };
        let aead = alg.encr.is_aead();
        let i_to_r = (&km.encr_i, &km.integ_i);
        let r_to_i = (&km.encr_r, &km.integ_r);
        let (inb, out) = if exchange_initiator {
            (r_to_i, i_to_r)
        } else {
            (i_to_r, r_to_i)
        };
        let install = ChildSaInstall {
            ike_sa: sa.handle,
            name: cfg.name.clone(),
            protocol: ChildProtocol::Esp,
            mode,
            encryption: alg.encr,
            integrity: alg.integ,
            esn: alg.esn,
            inbound: split_keys(inbound_spi, inb.0, inb.1, aead),
            outbound: split_keys(outbound_spi, out.0, out.1, aead),
            local: sa.path.local(),
            remote: sa.path.remote(),
            udp_encap: sa.path.udp_encap(),
            local_ts: local_ts.clone(),
            remote_ts: remote_ts.clone(),
            lifetimes: Lifetimes {
                rekey_time: cfg.rekey_time,
            },
        };
        let rekey_at = self.rekey_due(now, cfg.rekey_time, cfg.rand_time);
        sa.children.push(ChildSa {
            name: cfg.name.clone(),
            cfg_index: child,
            rekey_at,
            rekeyed: false,
            pfs_group: None,
            inbound_spi,
            outbound_spi,
            mode,
            alg,
            local_ts,
            remote_ts,
        });
        self.stats.child_sas_installed += 1;
        tracing::info!(name = %cfg.name, inbound_spi = format_args!("{inbound_spi:08x}"), outbound_spi = format_args!("{outbound_spi:08x}"), "CHILD_SA installed");
        self.events.push_back(Event::ChildSaEstablished {
            handle: sa.handle,
            name: cfg.name.clone(),
            inbound_spi,
            outbound_spi,
        });
        self.sa_events
            .push_back(SaEvent::Install(Box::new(install)));
    }

    // ----- responder: IKE_AUTH -----

    pub(in crate::engine) fn auth_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        others: &mut Others<'_>,
        rx: &Received<'_>,
        payloads: &[Payload],
    ) -> bool {
        let (local, remote) = (rx.local, rx.remote);
        let idi = find(payloads, |p| match p {
            Payload::IdInitiator(i) => Some(i),
            _ => None,
        });
        let auth = find(payloads, |p| match p {
            Payload::Authentication(a) => Some(a),
            _ => None,
        });
        let Some(init) = sa.transcript().cloned() else {
            return false;
        };
        let Some(keys) = sa.keys.as_ref() else {
            return false;
        };
        let prf = keys.prf;
        let verified = match (idi, auth) {
            (Some(idi), Some(auth)) => {
                let octets = signed_octets(
                    &init.request,
                    &init.nr,
                    prf,
                    &keys.sk_pi,
                    &id_payload_body(idi),
                );
                // The connection: the first whose addresses and remote identity match and
                // whose credentials verify the AUTH payload, the one chosen at IKE_SA_INIT
                // first. When the initiator names the identity it wants us to have (IDr),
                // connections with that identity go first, as in strongSwan.
                let wanted = find(payloads, |p| match p {
                    Payload::IdResponder(i) => Some(i),
                    _ => None,
                })
                .and_then(|i| Identity::from_wire(i).ok());
                let mut order: Vec<usize> = std::iter::once(sa.conn)
                    .chain(0..self.conns.len())
                    .filter(|&i| i < self.conns.len())
                    .collect();
                if let Some(w) = &wanted {
                    order.sort_by_key(|&i| local_identity(&self.conns[i], local.ip()) != *w);
                }
                let certs = certificates(payloads);
                let mut found = None;
                let mut last_error = None;
                for i in order {
                    let c = &self.conns[i];
                    if !addr_matches(&c.local_addrs, local.ip())
                        || !addr_matches(&c.remote_addrs, remote.ip())
                    {
                        continue;
                    }
                    let us = local_identity(c, local.ip());
                    match self.verify_peer(now, c, &us, idi, &certs, auth, &octets, prf) {
                        Ok(peer) => {
                            found = Some((i, peer));
                            break;
                        }
                        Err(e) => last_error = Some(e),
                    }
                }
                if found.is_none() {
                    let reason = last_error.map_or_else(
                        || "no connection matches the addresses".to_owned(),
                        |e| e.to_string(),
                    );
                    tracing::info!(%remote, error = %reason, "the initiator failed authentication");
                }
                found.map(|(i, identity)| (i, idi.clone(), identity))
            }
            _ => None,
        };
        let Some((conn, idi, peer)) = verified else {
            self.stats.authentication_failed += 1;
            self.respond(sa, rx, vec![notify(NotifyType::AUTHENTICATION_FAILED)]);
            self.fail(sa, FailureReason::AuthenticationFailed);
            return false;
        };
        let c = self.conns[conn].clone();
        sa.conn = conn;
        sa.cfg = c.clone();
        sa.connection = c.name.clone();
        sa.peer_id = Some(idi.clone());
        sa.peer_certificate_addresses = peer.certificate_addresses;
        let peer_identity = peer.identity;
        sa.peer_certreqs = certificate_requests(payloads);
        sa.path.pair = AddressPair { local, remote };
        sa.peer_mobike = c.mobike && has_notify(payloads, NotifyType::MOBIKE_SUPPORTED);
        if has_notify(payloads, NotifyType::INITIAL_CONTACT) {
            self.initial_contact(sa, others);
        }
        let us = local_identity(&c, local.ip());
        let Some(id) = us.to_wire() else {
            self.respond(sa, rx, vec![notify(NotifyType::AUTHENTICATION_FAILED)]);
            self.fail(
                sa,
                FailureReason::Unsupported("our identity cannot be sent"),
            );
            return false;
        };
        let octets = signed_octets(
            &init.response,
            &init.ni,
            prf,
            &keys.sk_pr,
            &id_payload_body(&id),
        );
        let (certs, auth) = match self.our_auth(sa, &c, &us, &peer_identity, &octets, prf) {
            Ok(a) => a,
            Err(reason) => {
                self.stats.authentication_failed += 1;
                self.respond(sa, rx, vec![notify(NotifyType::AUTHENTICATION_FAILED)]);
                self.fail(sa, reason);
                return false;
            }
        };
        let mut out = vec![Payload::IdResponder(id)];
        out.extend(certs);
        out.push(Payload::Authentication(auth));
        // Configuration payload: assign a virtual IP from the connection's pools.
        let mut vip_failed = false;
        if let Some(cp) = find(payloads, |p| match p {
            Payload::Configuration(c) if c.ty == CfgType::REQUEST => Some(c),
            _ => None,
        }) {
            let wants_v4 = cp
                .attributes
                .iter()
                .any(|a| a.ty == CfgAttrType::INTERNAL_IP4_ADDRESS);
            let wants_v6 = cp
                .attributes
                .iter()
                .any(|a| a.ty == CfgAttrType::INTERNAL_IP6_ADDRESS);
            if (wants_v4 || wants_v6) && !c.pools.is_empty() {
                let key = id_payload_body(&idi);
                let mut attributes = Vec::new();
                // One address of each family asked for (RFC 7296 § 3.15.1); a family no
                // pool serves is left out of the reply.
                for (wants, v4) in [(wants_v4, true), (wants_v6, false)] {
                    if !wants || sa.assigned_vips.iter().any(|a| a.is_ipv4() == v4) {
                        continue;
                    }
                    if let Some(addr) = self.pools.allocate(&c.pools, &key, v4) {
                        sa.assigned_vips.push(addr);
                        attributes.push(match addr {
                            IpAddr::V4(a) => {
                                ConfigAttribute::ipv4(CfgAttrType::INTERNAL_IP4_ADDRESS, a)
                            }
                            IpAddr::V6(a) => ConfigAttribute::ipv6_with_prefix(a, 128),
                        });
                    }
                }
                if attributes.is_empty() {
                    vip_failed = true;
                } else {
                    out.push(Payload::Configuration(Configuration {
                        ty: CfgType::REPLY,
                        attributes,
                    }));
                }
            }
        }
        let outcome = if vip_failed {
            self.stats.internal_address_failure_sent += 1;
            ChildOutcome {
                payloads: vec![notify(NotifyType::INTERNAL_ADDRESS_FAILURE)],
                install: None,
                failure: c
                    .children
                    .first()
                    .map(|ch| (ch.name.clone(), FailureReason::InternalAddressFailure)),
            }
        } else {
            self.auth_child_request(sa, &c, payloads)
        };
        out.extend(outcome.payloads);
        if sa.peer_mobike {
            out.push(notify(NotifyType::MOBIKE_SUPPORTED));
            out.extend(self.auth_address_list(sa));
        }
        self.respond(sa, rx, out);
        self.established(now, sa, payloads);
        for &address in &sa.assigned_vips {
            self.events.push_back(Event::VirtualIp {
                handle: sa.handle,
                address,
            });
        }
        if let Some(plan) = outcome.install {
            let (ni, nr) = (init.ni.clone(), init.nr.clone());
            let keying = ChildKeying {
                exchange_initiator: false,
                ni: &ni,
                nr: &nr,
                pfs: None,
            };
            self.install_child(now, sa, plan, keying);
        }
        if let Some((name, reason)) = outcome.failure {
            self.events.push_back(Event::ChildSaFailed {
                handle: sa.handle,
                name,
                reason,
            });
        }
        true
    }

    pub(in crate::engine) fn auth_child_request(
        &mut self,
        sa: &IkeSa,
        c: &crate::engine::config::ConnectionConfig,
        payloads: &[Payload],
    ) -> ChildOutcome {
        let none = ChildOutcome {
            payloads: Vec::new(),
            install: None,
            failure: None,
        };
        let Some((sa_p, tsi, tsr)) = child_sa_payloads(payloads) else {
            return none;
        };
        let first_name = c
            .children
            .first()
            .map_or_else(String::new, |ch| ch.name.clone());
        let Some((i, ntsi, ntsr)) =
            narrow_to_first_child(sa, c.children.iter().enumerate(), tsi, tsr)
        else {
            self.stats.ts_unacceptable_sent += 1;
            return ChildOutcome {
                payloads: vec![notify(NotifyType::TS_UNACCEPTABLE)],
                install: None,
                failure: Some((first_name, FailureReason::TsUnacceptable)),
            };
        };
        let ch = &c.children[i];
        let Some((number, outbound, alg)) = select_esp(&ch.esp_proposals, &sa_p.proposals, false)
        else {
            self.stats.no_proposal_chosen_sent += 1;
            return ChildOutcome {
                payloads: vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)],
                install: None,
                failure: Some((ch.name.clone(), FailureReason::NoProposalChosen)),
            };
        };
        let mode = agreed_mode(ch.mode, payloads);
        let inbound = self.alloc_child_spi();
        let mut out = vec![
            Payload::SecurityAssociation(SecurityAssociation {
                proposals: vec![esp_answer(number, &alg, inbound)],
            }),
            Payload::TsInitiator(TrafficSelectors {
                selectors: ntsi.clone(),
            }),
            Payload::TsResponder(TrafficSelectors {
                selectors: ntsr.clone(),
            }),
        ];
        out.extend(mode_notify(mode));
        ChildOutcome {
            payloads: out,
            // Our side is TSr, the peer's TSi.
            install: Some(ChildPlan {
                child: i,
                mode,
                alg,
                inbound_spi: inbound,
                outbound_spi: outbound,
                local_ts: ntsr,
                remote_ts: ntsi,
            }),
            failure: None,
        }
    }

    /// INITIAL_CONTACT: "the sender has no other IKE SAs with the receiver"
    /// ([RFC 7296 § 3.10.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1)), so
    /// every older IKE SA of this connection with the same authenticated identity is stale:
    /// delete it (and release its virtual IP, which the new SA then gets back).
    pub(in crate::engine) fn initial_contact(&mut self, sa: &IkeSa, others: &mut Others<'_>) {
        let stale: Vec<IkeSaHandle> = others
            .iter()
            .filter(|o| {
                !o.silent
                    && o.is_established()
                    && o.cfg.name == sa.cfg.name
                    && o.peer_id == sa.peer_id
            })
            .map(|o| o.handle)
            .collect();
        for h in stale {
            if let Some(mut old) = others.remove(h) {
                self.deleted(&mut old, DeleteReason::Peer);
                self.forget(old);
            }
        }
    }
}

/// Whether another live IKE SA of `sa`'s connection exists with the same peer address
/// (established or being set up; a rekeyed predecessor finishing its delete does not
/// count).
fn has_other_ike_sa(others: &Others<'_>, sa: &IkeSa) -> bool {
    others.iter().any(|o| {
        !o.silent && o.cfg.name == sa.cfg.name && o.path.remote().ip() == sa.path.remote().ip()
    })
}

#[cfg(test)]
// Tests stand in for the daemon: they read the clock.
#[allow(clippy::disallowed_methods)]
pub(in crate::engine) mod tests {
    use super::*;
    use crate::engine::negotiate::EspAlgorithms;
    use crate::engine::{EngineConfig, IkeSaHandle};
    use crate::wire::AuthMethod;

    /// The orientation rules no simulation between two of our own engines can check (a
    /// mistake on both sides still agrees): the CHILD_SA keys of RFC 7296 § 2.17 and the SK
    /// keys of § 2.14, from a known SK_d and known SK_e*.
    /// A PSK connection with one CHILD_SA and nothing else configured.
    pub(in crate::engine) fn conn() -> crate::engine::config::ConnectionConfig {
        crate::engine::config::ConnectionConfig {
            name: "c".into(),
            local_addrs: vec![],
            links: Vec::new(),
            remote_addrs: vec![],
            ike_proposals: vec![],
            local_id: Some(Identity::Fqdn("a".into())),
            local_auth: LocalAuth::Psk,
            remote_id: Identity::Any,
            remote_auth: RemoteAuth::Psk,
            send_cert: SendCert::IfAsked,
            send_certreq: true,
            fragmentation: true,
            mobike: false,
            return_routability: Default::default(),
            dpd_delay: None,
            hold: None,
            rekey_time: None,
            over_time: None,
            rand_time: None,
            children: vec![crate::engine::config::ChildConfig {
                name: "ch".into(),
                local_ts: vec![],
                remote_ts: vec![],
                esp_proposals: vec![
                    crate::crypto::proposal::ProposalSpec::parse(
                        crate::crypto::proposal::Protocol::Esp,
                        "aes128gcm16",
                    )
                    .unwrap(),
                ],
                mode: Mode::Tunnel,
                start_action: crate::engine::StartAction::None,
                rekey_time: None,
                rand_time: None,
            }],
            pools: vec![],
            vips: vec![],
        }
    }

    fn alg() -> IkeAlgorithms {
        IkeAlgorithms {
            encr: crate::crypto::sk::Encr::AesGcm16(16),
            integ: None,
            prf: crate::crypto::prf::Prf::HmacSha256,
            dh: crate::wire::DhGroup::CURVE25519,
        }
    }

    const NI: [u8; 32] = [0x11; 32];
    const NR: [u8; 32] = [0x22; 32];

    fn ike_keys() -> IkeKeys {
        let alg = alg();
        let suite = IkeSuite {
            prf: alg.prf,
            encr: alg.encr,
            integ: alg.integ,
        };
        let shared = Secret::from_slice(&[0x33; 32]);
        IkeKeys::derive(suite, skeyseed(alg.prf, &NI, &NR, &shared), &NI, &NR, 1, 2).unwrap()
    }

    fn test_sa(initiator: bool) -> IkeSa {
        let keys = derive_keys(
            &alg(),
            &Secret::from_slice(&[0x33; 32]),
            &NI,
            &NR,
            (1, 2),
            initiator,
            None,
        )
        .unwrap();
        IkeSa {
            spi_i: 1,
            spi_r: 2,
            state: State::Established,
            alg: Some(alg()),
            keys: Some(keys),
            next_message_id: 1,
            ..IkeSa::half_open(
                IkeSaHandle(1),
                0,
                std::sync::Arc::new(conn()),
                initiator,
                "192.0.2.1:500".parse().unwrap(),
                "192.0.2.2:500".parse().unwrap(),
                Instant::now(),
            )
        }
    }

    /// The initiator's AUTH covers its own IKE_SA_INIT request, the responder's nonce and
    /// prf(SK_pi, IDi'), MACed with prf(PSK, "Key Pad for IKEv2") — computed here with
    /// aws-lc-rs's HMAC directly, independent of the engine's helpers.
    #[test]
    fn initiator_auth_is_rfc_7296_psk_mac() {
        use aws_lc_rs::hmac;
        let mac = |k: &[u8], d: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k), d);
        let keys = ike_keys();
        let config = EngineConfig {
            secrets: crate::auth::SharedSecrets::single(Secret::from_slice(b"k")),
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(config, Box::new(|b: &mut [u8]| b.fill(7)));
        let mut sa = test_sa(true);
        sa.state = State::AuthSent(InitTranscript {
            request: b"the IKE_SA_INIT request".to_vec(),
            response: b"the IKE_SA_INIT response".to_vec(),
            ni: NI.to_vec(),
            nr: NR.to_vec(),
        });
        assert!(engine.core.send_auth_request(
            Instant::now(),
            &mut sa,
            &Others::empty(&mut Vec::new())
        ));
        let t = engine.poll_transmit().unwrap();
        let sk_ei =
            crate::crypto::sk::SkCipher::new(alg().encr, None, &keys.sk_ei, &keys.sk_ai).unwrap();
        let opened = sk_ei.open(&t.payload).unwrap();
        let payloads = decode_chain(opened.first_inner, &opened.plaintext).unwrap();
        let Some(Payload::Authentication(auth)) = payloads
            .iter()
            .find(|p| matches!(p, Payload::Authentication(_)))
        else {
            panic!("no AUTH")
        };
        assert_eq!(auth.method, AuthMethod::SHARED_KEY_MIC);
        let id = [&[crate::wire::IdType::FQDN.0, 0, 0, 0][..], b"a"].concat();
        let maced_id = mac(keys.sk_pi.expose(), &id);
        let octets = [&b"the IKE_SA_INIT request"[..], &NR, maced_id.as_ref()].concat();
        let pad = mac(b"k", b"Key Pad for IKEv2");
        assert_eq!(auth.data, mac(pad.as_ref(), &octets).as_ref());
    }

    #[test]
    fn child_keys_follow_the_exchange_roles() {
        let alg = alg();
        let (ni, nr) = (NI, NR);
        let ike = ike_keys();
        let esp = EspAlgorithms {
            encr: crate::crypto::sk::Encr::AesGcm16(16),
            integ: None,
            esn: false,
            dh: None,
        };
        let expected = child_keys(alg.prf, &ike.sk_d, None, &ni, &nr, esp.encr, esp.integ).unwrap();
        for initiator in [true, false] {
            let mut engine =
                Engine::new(EngineConfig::default(), Box::new(|b: &mut [u8]| b.fill(7)));
            let mut sa = test_sa(initiator);
            let keys = sa.keys.as_ref().unwrap();
            // SK: the initiator seals with SK_ei, the responder with SK_er.
            let ours = crate::crypto::sk::SkCipher::new(
                alg.encr,
                None,
                if initiator { &ike.sk_ei } else { &ike.sk_er },
                &ike.sk_ai,
            )
            .unwrap();
            let msg = Message {
                spi_i: 1,
                spi_r: 2,
                exchange_type: ExchangeType::INFORMATIONAL,
                flags: Flags::new(initiator, false),
                message_id: 3,
                minor_version: 0,
                payloads: vec![],
            };
            let sealed = keys
                .out
                .seal(&[0; 8], msg, crate::wire::PayloadType::NO_NEXT_PAYLOAD, &[])
                .unwrap();
            assert!(ours.open(&sealed).is_ok(), "initiator={initiator}");
            let plan = ChildPlan {
                child: 0,
                mode: Mode::Tunnel,
                alg: esp,
                inbound_spi: 0x1000,
                outbound_spi: 0x2000,
                local_ts: vec![],
                remote_ts: vec![],
            };
            let keying = ChildKeying {
                exchange_initiator: initiator,
                ni: &ni,
                nr: &nr,
                pfs: None,
            };
            engine
                .core
                .install_child(Instant::now(), &mut sa, plan, keying);
            let Some(SaEvent::Install(sa)) = engine.poll_sa_event() else {
                panic!("no install")
            };
            // "All keys for SAs carrying data from the initiator to the responder are taken
            // before SAs going from the responder to the initiator"; GCM salt last.
            let (i_to_r, r_to_i) = (expected.encr_i.expose(), expected.encr_r.expose());
            let (out, inb) = if initiator {
                (i_to_r, r_to_i)
            } else {
                (r_to_i, i_to_r)
            };
            assert_eq!(sa.outbound.encryption_key.expose(), &out[..16]);
            assert_eq!(sa.outbound.salt.expose(), &out[16..]);
            assert_eq!(sa.inbound.encryption_key.expose(), &inb[..16]);
            assert_eq!(sa.inbound.salt.expose(), &inb[16..]);
            assert_eq!((sa.inbound.spi, sa.outbound.spi), (0x1000, 0x2000));
        }
    }

    // ----- reassembly limits (RFC 7383 § 2.6) -----

    use super::super::fragment::{MAX_FRAGMENTS, MAX_REASSEMBLED, REASSEMBLY_TIMEOUT};

    const SA: crate::wire::PayloadType = crate::wire::PayloadType::SA;
    const NONE: crate::wire::PayloadType = crate::wire::PayloadType::NO_NEXT_PAYLOAD;

    fn engine() -> Engine {
        Engine::new(EngineConfig::default(), Box::new(|b: &mut [u8]| b.fill(7)))
    }

    #[test]
    fn fragments_reassemble_in_any_order() {
        let (mut e, mut sa, now) = (engine(), test_sa(false), Instant::now());
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (3, 3), NONE, b"cc".to_vec(), b"3")
                .is_none()
        );
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (1, 3), SA, b"aa".to_vec(), b"1")
                .is_none()
        );
        let (first, plain) = e
            .core
            .add_fragment(now, &mut sa, 1, (2, 3), NONE, b"bb".to_vec(), b"2")
            .unwrap();
        assert_eq!((first, &plain[..]), (SA, &b"aabbcc"[..]));
        assert_eq!(
            sa.reassembled_from,
            [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]
        );
        assert_eq!(e.stats().messages_reassembled, 1);
        assert_eq!(e.stats().drop_fragment, 0);
    }

    #[test]
    fn duplicates_and_older_numberings_are_dropped() {
        let (mut e, mut sa, now) = (engine(), test_sa(false), Instant::now());
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (1, 3), SA, b"a".to_vec(), b"1")
                .is_none()
        );
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (1, 3), SA, b"a".to_vec(), b"1")
                .is_none()
        );
        assert_eq!(e.stats().drop_fragment, 1);
        // A smaller Total Fragments is left over from an older fragmentation.
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (2, 2), NONE, b"b".to_vec(), b"2")
                .is_none()
        );
        assert_eq!(e.stats().drop_fragment, 2);
        // A larger one replaces what was kept.
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (4, 4), NONE, b"d".to_vec(), b"4")
                .is_none()
        );
        assert_eq!(sa.reassembly.as_ref().unwrap().parts.len(), 4);
        assert_eq!(e.stats().drop_fragment, 3);
    }

    #[test]
    fn limits_on_count_size_and_time() {
        let (mut e, mut sa, now) = (engine(), test_sa(false), Instant::now());
        // Too many fragments.
        let n = MAX_FRAGMENTS + 1;
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (1, n), SA, vec![0], b"1")
                .is_none()
        );
        assert!(sa.reassembly.is_none());
        assert_eq!(e.stats().drop_fragment, 1);
        // Too large: the whole reassembly goes.
        let big = vec![0u8; MAX_REASSEMBLED / 2 + 1];
        assert!(
            e.core
                .add_fragment(now, &mut sa, 2, (1, 3), SA, big.clone(), b"1")
                .is_none()
        );
        assert!(
            e.core
                .add_fragment(now, &mut sa, 2, (2, 3), NONE, big, b"2")
                .is_none()
        );
        assert!(sa.reassembly.is_none());
        assert_eq!(e.stats().drop_fragment, 2);
        // Too old: a fragment after the timeout starts over, so nothing completes.
        assert!(
            e.core
                .add_fragment(now, &mut sa, 3, (1, 2), SA, b"a".to_vec(), b"1")
                .is_none()
        );
        let later = now + REASSEMBLY_TIMEOUT + std::time::Duration::from_secs(1);
        assert!(
            e.core
                .add_fragment(later, &mut sa, 3, (2, 2), NONE, b"b".to_vec(), b"2")
                .is_none()
        );
        assert_eq!(e.stats().drop_fragment, 3);
        assert_eq!(e.stats().messages_reassembled, 0);
    }

    #[test]
    fn an_incomplete_reassembly_alone_wakes_the_sa_and_is_dropped_at_its_deadline() {
        let (mut e, mut sa, now) = (engine(), test_sa(false), Instant::now());
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (1, 2), SA, b"a".to_vec(), b"1")
                .is_none()
        );
        let handle = sa.handle;
        e.sas.insert(sa);
        e.schedule(handle);
        // Nothing else is armed on this SA: the reassembly's deadline is the next wake-up.
        assert_eq!(e.poll_timeout(), Some(now + REASSEMBLY_TIMEOUT));
        e.handle_timeout(now + REASSEMBLY_TIMEOUT - std::time::Duration::from_millis(1));
        assert_eq!(e.stats().drop_fragment, 0);
        e.handle_timeout(now + REASSEMBLY_TIMEOUT);
        assert_eq!(e.stats().drop_fragment, 1);
        assert!(e.sas.get(handle).unwrap().reassembly.is_none());
        assert_eq!(e.sas.get(handle).unwrap().next_timeout(), None);
    }

    #[test]
    fn fragments_are_refused_when_fragmentation_is_off() {
        let (mut e, mut sa, now) = (engine(), test_sa(false), Instant::now());
        let mut c = conn();
        c.fragmentation = false;
        sa.cfg = std::sync::Arc::new(c);
        assert!(
            e.core
                .add_fragment(now, &mut sa, 1, (1, 1), SA, b"a".to_vec(), b"1")
                .is_none()
        );
        assert_eq!(e.stats().drop_fragment, 1);
    }

    // ----- signing per the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 § 4) -----

    fn credential(
        dir: &std::path::Path,
        kind: roamgate_lab::pki::KeyKind,
    ) -> crate::auth::Credential {
        let ca = roamgate_lab::pki::LabCa::new(dir, kind)
            .unwrap_or_else(|e| panic!("strongSwan's pki is needed to make certificates: {e}"));
        let ee = ca.issue("gw.roamgate.test", kind).unwrap();
        crate::auth::Credential::load(&ee.key, &[ee.cert.as_path()]).unwrap()
    }

    #[test]
    fn signature_method_follows_the_peer_s_hash_announcement() {
        use crate::wire::HashAlgorithm;
        use roamgate_lab::pki::KeyKind;
        let dir = tempfile::tempdir().unwrap();
        let e = engine();
        let mut sa = test_sa(false);
        let mut c = conn();
        c.local_auth = LocalAuth::PubKey(std::sync::Arc::new(credential(
            &dir.path().join("p256"),
            KeyKind::EcdsaP256,
        )));
        c.send_cert = SendCert::Always;
        let us = Identity::Fqdn("gw.roamgate.test".into());
        let prf = crate::crypto::prf::Prf::HmacSha256;
        let sign = |sa: &IkeSa, c: &ConnectionConfig| {
            e.core.our_auth(sa, c, &us, &Identity::Any, b"octets", prf)
        };
        // Announced hashes: RFC 7427 method 14, and the certificate goes along.
        sa.peer_hashes = Some(vec![HashAlgorithm::SHA2_256]);
        let (certs, auth) = sign(&sa, &c).unwrap();
        assert_eq!(auth.method, AuthMethod::DIGITAL_SIGNATURE);
        assert_eq!(certs.len(), 1);
        // None announced: the classic ECDSA method of RFC 4754.
        sa.peer_hashes = None;
        let (_, auth) = sign(&sa, &c).unwrap();
        assert_eq!(auth.method, AuthMethod::ECDSA_SHA256_P256);
        // An RSA key has no classic method here: the handshake fails cleanly.
        c.local_auth = LocalAuth::PubKey(std::sync::Arc::new(credential(
            &dir.path().join("rsa"),
            KeyKind::Rsa2048,
        )));
        assert!(matches!(sign(&sa, &c), Err(FailureReason::Unsupported(_))));
        // With `ifasked` and no CERTREQ from the peer, no certificate is sent.
        sa.peer_hashes = Some(vec![HashAlgorithm::SHA2_256]);
        c.send_cert = SendCert::IfAsked;
        let (certs, auth) = sign(&sa, &c).unwrap();
        assert!(certs.is_empty());
        assert_eq!(auth.method, AuthMethod::DIGITAL_SIGNATURE);
    }
}
